//! `callboard:plugin/catalog` (API 0.3+): read-only catalog access for
//! plugins granted `catalog`.

use callboard_catalog::{CatalogError, EntityRef, Predicate, Selection, Start};

use crate::plugins::{bindings::v0_3_0::callboard::plugin::catalog as wit, state::HostState};

/// Most entities one `query` returns.
const MAX_QUERY: u32 = 10_000;

fn unavailable(plugin: &str, e: &CatalogError) -> wit::Error {
    tracing::error!(plugin, error = %e, "catalog read for a plugin failed");
    wit::Error::Unavailable("catalog read failed; see the host log".into())
}

impl HostState {
    /// The catalog, if the plugin was granted it (a refusal is counted).
    fn catalog(&self) -> Result<callboard_catalog::Catalog, wit::Error> {
        self.grants.catalog.clone().ok_or_else(|| {
            crate::telemetry::metrics::plugin_denied(&self.label);
            wit::Error::Denied
        })
    }
}

// Catalog reads are async all the way down (SQLite runs on the store's own
// bounded blocking pool), so a plugin waiting on one never holds an async
// worker.
impl wit::Host for HostState {
    async fn get_entity(&mut self, entity_ref: String) -> Result<Option<String>, wit::Error> {
        let catalog = self.catalog()?;
        let r = EntityRef::parse_with_defaults(&entity_ref, Some("component"), "default")
            .map_err(|e| wit::Error::Invalid(e.to_string()))?;
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
            .map_err(|e| unavailable(&self.label, &CatalogError::Task(e)))?
            .map_err(|e| unavailable(&self.label, &e))?
            .into_iter()
            .next()
            .flatten();
        Ok(entity.map(|e| e.to_string()))
    }

    async fn query(&mut self, filter: Vec<String>, limit: u32) -> Result<Vec<String>, wit::Error> {
        let catalog = self.catalog()?;
        let predicate =
            Predicate::parse_filters(&filter).map_err(|e| wit::Error::Invalid(e.to_string()))?;
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
            .map_err(|e| unavailable(&self.label, &CatalogError::Task(e)))?
            .map_err(|e| unavailable(&self.label, &e))?;
        Ok(page.items)
    }
}
