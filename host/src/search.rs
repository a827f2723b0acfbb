//! Search across the catalog, the docs and plugins' documents, as the
//! caller may see it: one query of the store's index ([`SearchStore`]),
//! narrowed inside the query to the entities the caller may read
//! (`catalog.entity.read`, and `techdocs.entity.read` when the policy
//! narrows that further) and to the plugin permissions they hold.
//!
//! The REST API (`api/search.rs`, Backstage's shape) and the portal's
//! search page (`web/search.rs`) both ask through [`Search::query`].

use std::sync::Arc;

use callboard_catalog::Predicate;
use callboard_store::StoreError;
use callboard_store::search::{SearchQuery, SearchResults, SearchStore, Tier, segments};

use crate::identity::Identity;
use crate::identity::access::{Access, Scope};
use crate::permissions::{CATALOG_ENTITY_READ, TECHDOCS_ENTITY_READ};

/// Longest snippet of a document's text, in bytes.
pub const SNIPPET: usize = 240;

/// The search service.
#[derive(Clone)]
pub struct Search {
    store: Arc<dyn SearchStore>,
    access: Arc<Access>,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search").finish_non_exhaustive()
    }
}

/// Most documents one plugin may keep in the index.
pub const MAX_PLUGIN_DOCUMENTS: usize = 10_000;

/// The search group of a plugin's documents.
fn plugin_group(plugin: &str) -> String {
    format!("plugin:{plugin}")
}

/// What the groups of a plugin's documents start with.
fn plugin_docs_prefix(plugin: &str) -> String {
    format!("plugin:{plugin}/")
}

/// The search group of one of a plugin's documents.
fn plugin_doc_group(plugin: &str, key: &str) -> String {
    format!("plugin:{plugin}/{key}")
}

/// Why a search was refused.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A plugin's documents were refused (the message names the plugin).
    #[error("{0}")]
    Refused(String),
    /// A plugin would hold more than [`MAX_PLUGIN_DOCUMENTS`] documents.
    #[error("plugin {plugin}: {held} documents held and {new} new, at most {MAX_PLUGIN_DOCUMENTS}")]
    TooMany {
        /// The plugin.
        plugin: String,
        /// Documents it holds.
        held: u64,
        /// Documents the refused call would add.
        new: usize,
    },
    /// The caller may read nothing (an anonymous caller should sign in).
    #[error("nothing to search: the caller may not read the catalog")]
    NothingReadable,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Search {
    /// Search over `store`, narrowed by `access`.
    pub fn new(store: Arc<dyn SearchStore>, access: Arc<Access>) -> Self {
        Self { store, access }
    }

    /// A page of hits for `query` as `who` may see them: the caller's scope
    /// and permissions replace whatever `query` carried.
    pub async fn query(
        &self,
        who: &Identity,
        mut query: SearchQuery,
    ) -> Result<SearchResults, SearchError> {
        let catalog = self.access.scope(who, CATALOG_ENTITY_READ);
        if matches!(catalog, Scope::Nothing) && who.is_anonymous() {
            return Err(SearchError::NothingReadable);
        }
        let docs = self.access.scope(who, TECHDOCS_ENTITY_READ);
        if matches!(docs, Scope::Nothing) && !self.without_docs(&mut query).await? {
            return Ok(SearchResults::default());
        }
        query.scope = match (catalog, docs) {
            (Scope::Nothing, _) => Some(Predicate::Any(Vec::new())),
            (Scope::All, Scope::All | Scope::Nothing) => None,
            (Scope::Where(p), Scope::All | Scope::Nothing) | (Scope::All, Scope::Where(p)) => {
                Some(p)
            }
            // Documents are narrowed by one predicate: where the policy
            // narrows TechDocs otherwise than the catalog, both apply to
            // every hit (fails closed: fewer catalog hits, never more docs).
            (Scope::Where(a), Scope::Where(b)) => Some(if a == b { a } else { a.and(b) }),
        };
        query.permissions = self.held_permissions(who);
        Ok(self.store.search(&query).await?)
    }

    /// Adds or replaces documents of plugin `plugin`, all in one
    /// transaction: the host side of the plugin API's `search.put`. A
    /// document's type defaults to the plugin's id and may not be a
    /// built-in one; keys are kept apart per plugin (`plugin:<id>:<key>`,
    /// each document its own group `plugin:<id>/<key>`); locations must be
    /// portal paths or http(s) URLs; a plugin holds at most
    /// [`MAX_PLUGIN_DOCUMENTS`], each cut to the index's bounds.
    pub async fn put_plugin_documents(
        &self,
        plugin: &str,
        docs: Vec<callboard_store::search::SearchDoc>,
    ) -> Result<(), SearchError> {
        use callboard_store::search::{CATALOG_TYPE, TECHDOCS_TYPE};
        let refuse = |why: String| SearchError::Refused(format!("plugin {plugin}: {why}"));
        if docs.len() > MAX_PLUGIN_DOCUMENTS {
            return Err(SearchError::TooMany {
                plugin: plugin.to_owned(),
                held: 0,
                new: docs.len(),
            });
        }
        let mut groups = Vec::with_capacity(docs.len());
        for mut doc in docs {
            if doc.doc_type.is_empty() {
                doc.doc_type = plugin.to_owned();
            }
            if doc.doc_type == CATALOG_TYPE || doc.doc_type == TECHDOCS_TYPE {
                return Err(refuse(format!(
                    "document \"{}\" claims the built-in type {}",
                    doc.key, doc.doc_type
                )));
            }
            let local = doc.location.starts_with('/') && !doc.location.starts_with("//");
            let web = doc.location.starts_with("https://") || doc.location.starts_with("http://");
            if !(local || web) || doc.location.chars().any(|c| c.is_control() || c == '\\') {
                return Err(refuse(format!(
                    "document \"{}\" has location \"{}\": a portal path or an http(s) URL",
                    doc.key, doc.location
                )));
            }
            let group = plugin_doc_group(plugin, &doc.key);
            doc.key = format!("{}:{}", plugin_group(plugin), doc.key);
            doc.bound();
            groups.push((group, vec![doc]));
        }
        let held = self.store.count_groups(&plugin_docs_prefix(plugin)).await?;
        if held as usize + groups.len() > MAX_PLUGIN_DOCUMENTS {
            // Near the cap: count only the documents that are new.
            let mut new = 0;
            for (group, _) in &groups {
                if self.store.count_groups(group).await? == 0 {
                    new += 1;
                }
            }
            if held as usize + new > MAX_PLUGIN_DOCUMENTS {
                return Err(SearchError::TooMany {
                    plugin: plugin.to_owned(),
                    held,
                    new,
                });
            }
        }
        self.store
            .replace_groups(groups)
            .await
            .map_err(SearchError::Store)
    }

    /// Removes plugin `plugin`'s documents with these keys (`search.remove`).
    pub async fn remove_plugin_document_keys(
        &self,
        plugin: &str,
        keys: &[String],
    ) -> Result<(), SearchError> {
        let groups = keys
            .iter()
            .map(|k| (plugin_doc_group(plugin, k), Vec::new()))
            .collect();
        Ok(self.store.replace_groups(groups).await?)
    }

    /// Removes every document plugin `plugin` contributed (it was removed,
    /// or it asked: `search.clear`).
    pub async fn remove_plugin_documents(&self, plugin: &str) -> Result<(), SearchError> {
        // Exact names: a prefix `plugin:ab` would take `plugin:abc`'s too;
        // `/` never occurs in a plugin id.
        self.store
            .replace_group(&plugin_group(plugin), Vec::new())
            .await?;
        self.store
            .remove_groups(&plugin_docs_prefix(plugin))
            .await?;
        Ok(())
    }

    /// Narrows `query` to every type but TechDocs; false when no other
    /// type is left.
    async fn without_docs(&self, query: &mut SearchQuery) -> Result<bool, SearchError> {
        use callboard_store::search::TECHDOCS_TYPE;
        if query.types.is_empty() {
            query.types = self.store.counts().await?.into_keys().collect();
        }
        query.types.retain(|t| t != TECHDOCS_TYPE);
        Ok(!query.types.is_empty())
    }

    /// The plugin permissions `who` holds (`None`: every one, for the
    /// admin token).
    fn held_permissions(&self, who: &Identity) -> Option<Vec<String>> {
        if matches!(who.principal, crate::identity::Principal::Admin) {
            return None;
        }
        let permissions = self.access.permissions();
        Some(
            permissions
                .all()
                .filter(|p| p.resource_type.is_none() && self.access.allows(who, &p.name))
                .map(|p| p.name.clone())
                .collect(),
        )
    }
}

/// `text`'s matches for the hit's terms, as pieces with the matched ones
/// flagged (a snippet of about [`SNIPPET`] bytes when `snippet`).
pub fn marked<'t>(
    text: &'t str,
    terms: &[String],
    tier: Tier,
    snippet: bool,
) -> Option<Vec<(&'t str, bool)>> {
    segments(text, terms, tier, snippet.then_some(SNIPPET))
}
