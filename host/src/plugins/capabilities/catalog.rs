//! `callboard:plugin/catalog` (API 0.3+): read-only catalog access for
//! plugins granted `catalog`.

use callboard_catalog::{CatalogError, EntityRef, Predicate, Selection, Start};

use crate::plugins::{CatalogReader, admission::Budgets};

/// Most entities one `query` returns.
const MAX_QUERY: u32 = 10_000;

/// Why a catalog read was refused (every API version's `catalog.error`).
#[derive(Debug)]
pub enum ReadError {
    /// Not granted.
    Denied,
    /// A malformed ref or filter.
    Invalid(String),
    /// The read failed (logged).
    Unavailable(String),
}

fn unavailable(plugin: &str, e: &CatalogError) -> ReadError {
    tracing::error!(plugin, error = %e, "catalog read for a plugin failed");
    ReadError::Unavailable("catalog read failed; see the host log".into())
}

/// What the `catalog` glue sees of a call: the catalog if granted, what
/// the call's principal may read, and the host-call budget.
pub struct CatalogView<'a> {
    pub(in crate::plugins) label: &'a str,
    pub(in crate::plugins) catalog: Option<&'a callboard_catalog::Catalog>,
    pub(in crate::plugins) reader: &'a CatalogReader,
    pub(in crate::plugins) budgets: &'a Budgets,
}

/// The linker's projection onto [`CatalogView`].
pub struct CatalogData;

impl wasmtime::component::HasData for CatalogData {
    type Data<'a> = CatalogView<'a>;
}

impl CatalogView<'_> {
    /// The catalog, if the plugin was granted it (a refusal is counted).
    fn catalog(&self) -> Result<&callboard_catalog::Catalog, ReadError> {
        self.catalog.ok_or_else(|| {
            crate::telemetry::metrics::plugin_denied(self.label);
            ReadError::Denied
        })
    }

    // Catalog reads are async all the way down (SQLite runs on the store's
    // own bounded blocking pool), so a plugin waiting on one never holds an
    // async worker.

    /// `catalog.get-entity`.
    pub(in crate::plugins) async fn catalog_get(
        &mut self,
        entity_ref: String,
    ) -> Result<Option<String>, ReadError> {
        let catalog = self.catalog()?;
        let r = EntityRef::parse_with_defaults(&entity_ref, Some("component"), "default")
            .map_err(|e| ReadError::Invalid(e.to_string()))?;
        // Only what the person (or the plugin's service principal) this
        // call runs for may read: asked with the same predicate as a list.
        let only = self.reader.narrow(None);
        let refs = [r.to_string()];
        let entity = self
            .budgets
            .host_call(
                "catalog.get_entity",
                catalog.get_by_refs(&refs, only.as_ref()),
            )
            .await
            .map_err(|e| unavailable(self.label, &CatalogError::Task(e)))?
            .map_err(|e| unavailable(self.label, &e))?
            .into_iter()
            .next()
            .flatten();
        Ok(entity.map(|e| e.to_string()))
    }

    /// `catalog.query`.
    pub(in crate::plugins) async fn catalog_query(
        &mut self,
        filter: Vec<String>,
        limit: u32,
    ) -> Result<Vec<String>, ReadError> {
        let catalog = self.catalog()?;
        let predicate =
            Predicate::parse_filters(&filter).map_err(|e| ReadError::Invalid(e.to_string()))?;
        let selection = Selection {
            predicate: self.reader.narrow(predicate),
            ..Selection::default()
        };
        let page = self
            .budgets
            .host_call(
                "catalog.query",
                catalog.query(&selection, &Start::Beginning, limit.min(MAX_QUERY) as usize),
            )
            .await
            .map_err(|e| unavailable(self.label, &CatalogError::Task(e)))?
            .map_err(|e| unavailable(self.label, &e))?;
        Ok(page.items)
    }
}

/// The WIT glue for every API version with this interface.
macro_rules! catalog_glue {
    ($wit:path) => {
        const _: () = {
            use $crate::plugins::capabilities::catalog::{CatalogView, ReadError};
            use $wit as wit;

            impl From<ReadError> for wit::Error {
                fn from(e: ReadError) -> Self {
                    match e {
                        ReadError::Denied => wit::Error::Denied,
                        ReadError::Invalid(why) => wit::Error::Invalid(why),
                        ReadError::Unavailable(why) => wit::Error::Unavailable(why),
                    }
                }
            }

            impl wit::Host for CatalogView<'_> {
                async fn get_entity(
                    &mut self,
                    entity_ref: String,
                ) -> Result<Option<String>, wit::Error> {
                    Ok(self.catalog_get(entity_ref).await?)
                }

                async fn query(
                    &mut self,
                    filter: Vec<String>,
                    limit: u32,
                ) -> Result<Vec<String>, wit::Error> {
                    Ok(self.catalog_query(filter, limit).await?)
                }
            }
        };
    };
}

pub(in crate::plugins) use catalog_glue;
