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

/// The blocking pool refused the work (shutting down).
fn pool_failed(plugin: &str, e: &str) -> wit::Error {
    tracing::error!(plugin, error = %e, "catalog read for a plugin failed");
    wit::Error::Unavailable("catalog read failed; see the host log".into())
}

// Catalog reads run SQLite: on the blocking pool, never on the async worker
// that polls the plugin.
impl wit::Host for HostState {
    async fn get_entity(&mut self, entity_ref: String) -> Result<Option<String>, wit::Error> {
        let catalog = self.grants.catalog.clone().ok_or(wit::Error::Denied)?;
        let r = EntityRef::parse_with_defaults(&entity_ref, Some("component"), "default")
            .map_err(|e| wit::Error::Invalid(e.to_string()))?;
        let budgets = self.budgets.clone();
        let entity = budgets
            .blocking(move || catalog.get_by_ref(&r).map(|e| e.map(|e| e.to_string())))
            .await
            .map_err(|e| pool_failed(&self.label, &e))?;
        entity.map_err(|e| unavailable(&self.label, &e))
    }

    async fn query(&mut self, filter: Vec<String>, limit: u32) -> Result<Vec<String>, wit::Error> {
        let catalog = self.grants.catalog.clone().ok_or(wit::Error::Denied)?;
        let predicate = Predicate::parse_filters(&filter).map_err(|e| match e {
            CatalogError::Input(why) => wit::Error::Invalid(why),
            other => wit::Error::Invalid(other.to_string()),
        })?;
        let selection = Selection {
            predicate,
            ..Selection::default()
        };
        let budgets = self.budgets.clone();
        let page = budgets
            .blocking(move || {
                catalog
                    .query(&selection, &Start::Beginning, limit.min(MAX_QUERY) as usize)
                    .map(|page| page.items.iter().map(|e| e.to_string()).collect())
            })
            .await
            .map_err(|e| pool_failed(&self.label, &e))?;
        page.map_err(|e| unavailable(&self.label, &e))
    }
}
