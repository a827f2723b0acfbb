//! Plugin calls' callers: the runtime's [`Caller`] and [`Portal`] made
//! from identities, the policy, the catalog and the search index. The
//! runtime (`crate::plugins`) never sees an [`Identity`]: it gets the
//! principal to tell the plugin, the catalog reader, and [`Rights`] that
//! answer `permissions.check` and `search.query` for that identity.

use std::sync::Arc;

use callboard_catalog::{Catalog, EntityRef};
use callboard_store::search::{SearchDoc, SearchQuery};

use super::{
    Identity, Principal as Who,
    access::{Access, Scope},
};
use crate::{
    permissions::CATALOG_ENTITY_READ,
    plugins::portal::{Caller, Document, Hit, IndexError, Portal, Principal, Rights},
    search::{MAX_PLUGIN_DOCUMENTS, Search, SearchError},
};

/// Makes callers for plugin calls, and is the runtime's [`Portal`].
#[derive(Clone)]
pub struct Callers {
    /// One shared allocation: a request clones one pointer, not four (on
    /// two cores every clone of a shared pointer moves its cache line).
    inner: Arc<Shared>,
}

struct Shared {
    access: Arc<Access>,
    catalog: Catalog,
    search: Search,
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callers").finish_non_exhaustive()
    }
}

impl Callers {
    /// Callers over the policy, the catalog and the index.
    pub fn new(access: Arc<Access>, catalog: Catalog, search: Search) -> Self {
        Self {
            inner: Arc::new(Shared {
                access,
                catalog,
                search,
            }),
        }
    }

    /// The caller for a call `who` makes.
    pub fn of(&self, who: &Identity) -> Caller {
        let principal = match &who.principal {
            Who::Anonymous => Principal::Anonymous,
            Who::Admin => Principal::Service(crate::auth::ADMIN_SUBJECT.into()),
            Who::User(r) => Principal::User {
                user_ref: r.clone(),
                display_name: who.display_name.as_deref().map(str::to_owned),
                ownership: who.ownership.to_vec(),
            },
            Who::Token { name, .. } => Principal::Service(format!("token:{name}")),
        };
        Caller {
            principal,
            reader: self.inner.access.reader(who),
            rights: Arc::new(IdentityRights {
                who: who.clone(),
                callers: self.clone(),
            }),
        }
    }
}

/// The rights of one identity.
struct IdentityRights {
    who: Identity,
    callers: Callers,
}

#[async_trait::async_trait]
impl Rights for IdentityRights {
    async fn allows(&self, permission: &str, entity_ref: Option<&str>) -> Result<bool, String> {
        let access = &self.callers.inner.access;
        let Some(entity_ref) = entity_ref else {
            return Ok(access.allows(&self.who, permission));
        };
        let r = EntityRef::parse_with_defaults(entity_ref, Some("component"), "default")
            .map_err(|e| format!("{entity_ref:?}: {e}"))?
            .to_string();
        // The entity must be readable, and within the permission's scope
        // (its conditions, e.g. "owners only", checked against it).
        for scope in [
            access.scope(&self.who, CATALOG_ENTITY_READ),
            access.scope(&self.who, permission),
        ] {
            if matches!(scope, Scope::Nothing) {
                return Ok(false);
            }
            match scope.reaches(&self.callers.inner.catalog, &r).await {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    tracing::error!(permission, "a plugin's permission check failed: {e}");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    async fn search(
        &self,
        term: String,
        types: Vec<String>,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let mut query = SearchQuery::new(&term, 0, limit);
        query.types = types;
        let results = match self
            .callers
            .inner
            .search
            .query(&self.who, query.clone())
            .await
        {
            Ok(results) => results,
            Err(SearchError::NothingReadable) => return Ok(Vec::new()),
            Err(e) => return Err(index_error(e)),
        };
        Ok(results
            .hits
            .into_iter()
            .map(|hit| {
                let text = crate::search::marked(&hit.doc.text, &query.terms, hit.tier, true)
                    .map(|pieces| pieces.into_iter().map(|(p, _)| p).collect::<String>())
                    .unwrap_or_else(|| {
                        crate::plugins::capabilities::log::truncate(
                            &hit.doc.text,
                            crate::search::SNIPPET,
                        )
                        .to_owned()
                    });
                Hit {
                    doc_type: hit.doc.doc_type,
                    title: hit.doc.title,
                    text,
                    location: hit.doc.location,
                    entity_ref: hit.doc.entity_ref,
                }
            })
            .collect())
    }
}

fn index_error(e: SearchError) -> IndexError {
    match e {
        SearchError::Refused(why) => IndexError::Invalid(why),
        SearchError::NothingReadable | SearchError::TooMany { .. } => {
            IndexError::Invalid(e.to_string())
        }
        SearchError::Store(e) => {
            tracing::error!("a plugin's search call failed: {e}");
            IndexError::Unavailable("the search index failed; see the host log".into())
        }
    }
}

#[async_trait::async_trait]
impl Portal for Callers {
    fn service(&self, plugin: &str) -> Caller {
        let name = format!("plugin:{plugin}");
        let who = Identity {
            principal: Who::Token {
                name: name.clone(),
                id: Some(name.clone()),
            },
            refs: Arc::from(vec![name.clone()]),
            ..Identity::anonymous()
        };
        Caller {
            principal: Principal::Service(name),
            ..self.of(&who)
        }
    }

    async fn put_documents(&self, plugin: &str, docs: Vec<Document>) -> Result<(), IndexError> {
        if docs.len() > MAX_PLUGIN_DOCUMENTS {
            return Err(IndexError::TooMany(MAX_PLUGIN_DOCUMENTS as u32));
        }
        let docs = docs
            .into_iter()
            .map(|d| SearchDoc {
                doc_type: d.doc_type,
                key: d.id,
                entity_ref: d
                    .entity_ref
                    .and_then(|r| {
                        EntityRef::parse_with_defaults(&r, Some("component"), "default").ok()
                    })
                    .map(|r| r.to_string().to_lowercase()),
                permission: d.permission,
                title: d.title,
                names: String::new(),
                text: d.text,
                location: d.location,
                fields: serde_json::Map::new(),
            })
            .collect();
        self.inner
            .search
            .put_plugin_documents(plugin, docs)
            .await
            .map_err(|e| match e {
                SearchError::TooMany { .. } => IndexError::TooMany(MAX_PLUGIN_DOCUMENTS as u32),
                e => index_error(e),
            })
    }

    async fn remove_documents(&self, plugin: &str, ids: Vec<String>) -> Result<(), IndexError> {
        self.inner
            .search
            .remove_plugin_document_keys(plugin, &ids)
            .await
            .map_err(index_error)
    }

    async fn clear_documents(&self, plugin: &str) -> Result<(), IndexError> {
        self.inner
            .search
            .remove_plugin_documents(plugin)
            .await
            .map_err(index_error)
    }
}
