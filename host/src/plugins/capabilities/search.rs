//! `callboard:plugin/search` (API 0.4+): a plugin's own documents in the
//! portal's index, and queries of the index as the call's principal.
//! Granted as `capabilities.search`; the index itself is the portal's
//! ([`Portal`](crate::plugins::portal::Portal)).

use std::sync::Arc;

use crate::plugins::{
    admission::Budgets,
    portal::{Document, Hit, IndexError, Portal, Rights},
    state::Grants,
};

/// What the `search` glue sees of a call: the portal's index (if the
/// plugin was granted search), the plugin's declared permissions, the call
/// principal's rights and the host-call budget.
pub struct SearchView<'a> {
    pub(in crate::plugins) label: &'a str,
    /// The plugin id: the namespace of its documents.
    pub(in crate::plugins) plugin: &'a str,
    pub(in crate::plugins) grants: &'a Grants,
    pub(in crate::plugins) portal: Option<&'a Arc<dyn Portal>>,
    pub(in crate::plugins) rights: &'a Arc<dyn Rights>,
    pub(in crate::plugins) budgets: &'a Budgets,
}

/// The linker's projection onto [`SearchView`].
pub struct Search;

impl wasmtime::component::HasData for Search {
    type Data<'a> = SearchView<'a>;
}

/// Most documents one `put` carries.
pub const MAX_PUT: usize = 1000;
/// Longest document id.
pub const MAX_ID: usize = 256;
/// Most hits one query returns.
pub const MAX_HITS: u32 = 100;
/// Longest query term.
pub const MAX_TERM: usize = 512;

/// Why an operation was refused (every version's `search.error`).
#[derive(Debug)]
pub enum SearchError {
    /// Not granted.
    Denied,
    /// The index refused or failed.
    Index(IndexError),
}

impl From<IndexError> for SearchError {
    fn from(e: IndexError) -> Self {
        Self::Index(e)
    }
}

fn invalid(why: String) -> SearchError {
    SearchError::Index(IndexError::Invalid(why))
}

impl SearchView<'_> {
    fn search_granted(&self) -> Result<Arc<dyn Portal>, SearchError> {
        match (self.portal, self.grants.capabilities.search) {
            (Some(portal), true) => Ok(portal.clone()),
            _ => {
                crate::telemetry::metrics::plugin_denied(self.label);
                Err(SearchError::Denied)
            }
        }
    }

    /// `search.put`.
    pub(in crate::plugins) async fn search_put(
        &mut self,
        docs: Vec<Document>,
    ) -> Result<(), SearchError> {
        let portal = self.search_granted()?;
        if docs.len() > MAX_PUT {
            return Err(invalid(format!(
                "{} documents in one put; at most {MAX_PUT}",
                docs.len()
            )));
        }
        for doc in &docs {
            if doc.id.is_empty() || doc.id.len() > MAX_ID || doc.id.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "document id {:?} must be 1-{MAX_ID} bytes without control characters",
                    truncated(&doc.id)
                )));
            }
            if let Some(p) = &doc.permission {
                match self.grants.declared(p) {
                    None => {
                        return Err(invalid(format!(
                            "document {:?} needs permission {p:?}, which this plugin did not declare",
                            truncated(&doc.id)
                        )));
                    }
                    Some(d) if d.resource_type.is_some() => {
                        return Err(invalid(format!(
                            "document {:?} needs permission {p:?}, a permission on entities; \
                             give the document an entity instead, or a basic permission",
                            truncated(&doc.id)
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        let plugin = self.plugin.to_owned();
        let budgets = self.budgets;
        run(budgets, "search.put", portal.put_documents(&plugin, docs)).await
    }

    /// `search.remove`.
    pub(in crate::plugins) async fn search_remove(
        &mut self,
        ids: Vec<String>,
    ) -> Result<(), SearchError> {
        let portal = self.search_granted()?;
        if ids.len() > MAX_PUT {
            return Err(invalid(format!(
                "{} ids in one remove; at most {MAX_PUT}",
                ids.len()
            )));
        }
        let plugin = self.plugin.to_owned();
        let budgets = self.budgets;
        run(
            budgets,
            "search.remove",
            portal.remove_documents(&plugin, ids),
        )
        .await
    }

    /// `search.clear`.
    pub(in crate::plugins) async fn search_clear(&mut self) -> Result<(), SearchError> {
        let portal = self.search_granted()?;
        let plugin = self.plugin.to_owned();
        let budgets = self.budgets;
        run(budgets, "search.clear", portal.clear_documents(&plugin)).await
    }

    /// `search.query`, as the call's principal.
    pub(in crate::plugins) async fn search_query(
        &mut self,
        term: String,
        types: Vec<String>,
        limit: u32,
    ) -> Result<Vec<Hit>, SearchError> {
        self.search_granted()?;
        if term.len() > MAX_TERM || types.len() > 16 {
            return Err(invalid(format!(
                "a query takes at most {MAX_TERM} bytes of terms and 16 types"
            )));
        }
        let rights = self.rights.clone();
        let budgets = self.budgets;
        let limit = limit.min(MAX_HITS) as usize;
        run(budgets, "search.query", rights.search(term, types, limit)).await
    }
}

/// Runs one index call under the plugins' host-call budget.
async fn run<R>(
    budgets: &crate::plugins::admission::Budgets,
    name: &'static str,
    call: impl std::future::Future<Output = Result<R, IndexError>>,
) -> Result<R, SearchError> {
    match budgets.host_call(name, call).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(SearchError::Index(IndexError::Unavailable(format!(
            "the index is busy: {e}"
        )))),
    }
}

fn truncated(s: &str) -> &str {
    super::log::truncate(s, 64)
}

/// The WIT glue for every API version with this interface.
macro_rules! search_glue {
    ($wit:path) => {
        const _: () = {
            use $crate::plugins::{
                capabilities::search::SearchError,
                capabilities::search::SearchView,
                portal::{Document, IndexError},
            };
            use $wit as wit;

            impl From<SearchError> for wit::Error {
                fn from(e: SearchError) -> Self {
                    match e {
                        SearchError::Denied => wit::Error::Denied,
                        SearchError::Index(IndexError::Invalid(why)) => wit::Error::Invalid(why),
                        SearchError::Index(IndexError::TooMany(n)) => wit::Error::TooMany(n),
                        SearchError::Index(IndexError::Unavailable(why)) => {
                            wit::Error::Unavailable(why)
                        }
                    }
                }
            }

            impl wit::Host for SearchView<'_> {
                async fn put(&mut self, documents: Vec<wit::Document>) -> Result<(), wit::Error> {
                    let docs = documents
                        .into_iter()
                        .map(|d| Document {
                            id: d.id,
                            doc_type: d.doc_type,
                            title: d.title,
                            text: d.text,
                            location: d.location,
                            entity_ref: d.entity_ref,
                            permission: d.permission,
                        })
                        .collect();
                    Ok(self.search_put(docs).await?)
                }

                async fn remove(&mut self, ids: Vec<String>) -> Result<(), wit::Error> {
                    Ok(self.search_remove(ids).await?)
                }

                async fn clear(&mut self) -> Result<(), wit::Error> {
                    Ok(self.search_clear().await?)
                }

                async fn query(
                    &mut self,
                    query: wit::SearchQuery,
                ) -> Result<Vec<wit::Hit>, wit::Error> {
                    let hits = self
                        .search_query(query.term, query.types, query.limit)
                        .await?;
                    Ok(hits
                        .into_iter()
                        .map(|h| wit::Hit {
                            doc_type: h.doc_type,
                            title: h.title,
                            text: h.text,
                            location: h.location,
                            entity_ref: h.entity_ref,
                        })
                        .collect())
                }
            }
        };
    };
}

pub(in crate::plugins) use search_glue;
