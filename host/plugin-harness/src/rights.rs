//! The harness's stand-in for the portal's access policy and search index:
//! which of the plugin's declared permissions a principal holds (on which
//! entities), and an in-memory index of the documents plugins put.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use callboard::plugins::portal::{Caller, Document, Hit, IndexError, Portal, Rights};
use callboard::plugins::{CatalogReader, Principal};
use callboard_catalog::{Catalog, EntityRef};
use serde_json::Value;

/// Where a permission the harness allows holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// For every principal, on every entity (and without one).
    Everywhere,
    /// On the entities the principal owns (`spec.owner` is the user or
    /// one of their groups); never without an entity.
    Owners,
}

/// The permissions the harness allows, the catalog they are checked
/// against, and the index.
pub(crate) struct Policy {
    pub(crate) rules: Vec<(String, Reach)>,
    pub(crate) catalog: Catalog,
    /// Documents by (plugin, id).
    pub(crate) index: Mutex<BTreeMap<(String, String), Document>>,
}

impl Policy {
    /// The caller a call made as `principal` runs for: it reads the whole
    /// catalog, and holds what the rules allow it.
    pub(crate) fn caller(self: &Arc<Self>, principal: Principal) -> Caller {
        Caller {
            principal: principal.clone(),
            reader: CatalogReader::All,
            rights: Arc::new(HarnessRights {
                principal,
                policy: self.clone(),
            }),
        }
    }

    async fn allows(
        &self,
        principal: &Principal,
        permission: &str,
        entity_ref: Option<&str>,
    ) -> Result<bool, String> {
        let reaches: Vec<Reach> = self
            .rules
            .iter()
            .filter(|(p, _)| p == permission || p == "*")
            .map(|(_, r)| *r)
            .collect();
        let Some(entity_ref) = entity_ref else {
            return Ok(reaches.contains(&Reach::Everywhere));
        };
        let parsed = EntityRef::parse_with_defaults(entity_ref, Some("component"), "default")
            .map_err(|e| format!("{entity_ref:?}: {e}"))?;
        if reaches.is_empty() {
            return Ok(false);
        }
        // As the portal: an entity that is not there is never allowed.
        let Ok(Some(entity)) = self.catalog.get_by_ref(&parsed).await else {
            return Ok(false);
        };
        Ok(reaches.contains(&Reach::Everywhere)
            || (reaches.contains(&Reach::Owners) && owns(principal, &entity)))
    }
}

/// Whether `principal`'s ownership refs hold `entity`'s `spec.owner`.
fn owns(principal: &Principal, entity: &Value) -> bool {
    let Principal::User { ownership, .. } = principal else {
        return false;
    };
    let namespace = entity["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let Some(owner) = entity["spec"]["owner"]
        .as_str()
        .and_then(|o| EntityRef::parse_with_defaults(o, Some("group"), namespace).ok())
    else {
        return false;
    };
    let owner = owner.to_string().to_lowercase();
    ownership.iter().any(|r| r.to_lowercase() == owner)
}

/// One principal's rights under the harness policy.
struct HarnessRights {
    principal: Principal,
    policy: Arc<Policy>,
}

#[async_trait::async_trait]
impl Rights for HarnessRights {
    async fn allows(&self, permission: &str, entity_ref: Option<&str>) -> Result<bool, String> {
        self.policy
            .allows(&self.principal, permission, entity_ref)
            .await
    }

    /// A plain case-insensitive substring search of the documents plugins
    /// put (not the portal's ranking); documents behind a permission only
    /// when the principal holds it.
    async fn search(
        &self,
        term: String,
        types: Vec<String>,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let term = term.to_lowercase();
        let docs: Vec<(String, Document)> = {
            let index = self.policy.index.lock().unwrap_or_else(|e| e.into_inner());
            index
                .iter()
                .map(|((plugin, _), d)| (plugin.clone(), d.clone()))
                .collect()
        };
        let mut hits = Vec::new();
        for (plugin, doc) in docs {
            if hits.len() >= limit {
                break;
            }
            let doc_type = if doc.doc_type.is_empty() {
                plugin
            } else {
                doc.doc_type.clone()
            };
            if !types.is_empty() && !types.contains(&doc_type) {
                continue;
            }
            if !doc.title.to_lowercase().contains(&term) && !doc.text.to_lowercase().contains(&term)
            {
                continue;
            }
            if let Some(permission) = &doc.permission
                && !self
                    .policy
                    .allows(&self.principal, permission, doc.entity_ref.as_deref())
                    .await
                    .unwrap_or(false)
            {
                continue;
            }
            hits.push(Hit {
                doc_type,
                title: doc.title,
                text: doc.text,
                location: doc.location,
                entity_ref: doc.entity_ref,
            });
        }
        Ok(hits)
    }
}

/// The runtime's portal in the harness: service principals and the index.
pub(crate) struct HarnessPortal(pub(crate) Arc<Policy>);

#[async_trait::async_trait]
impl Portal for HarnessPortal {
    fn service(&self, plugin: &str) -> Caller {
        self.0.caller(Principal::plugin(plugin))
    }

    async fn put_documents(&self, plugin: &str, docs: Vec<Document>) -> Result<(), IndexError> {
        let mut index = self.0.index.lock().unwrap_or_else(|e| e.into_inner());
        for doc in docs {
            index.insert((plugin.to_owned(), doc.id.clone()), doc);
        }
        Ok(())
    }

    async fn remove_documents(&self, plugin: &str, ids: Vec<String>) -> Result<(), IndexError> {
        let mut index = self.0.index.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            index.remove(&(plugin.to_owned(), id));
        }
        Ok(())
    }

    async fn clear_documents(&self, plugin: &str) -> Result<(), IndexError> {
        let mut index = self.0.index.lock().unwrap_or_else(|e| e.into_inner());
        index.retain(|(p, _), _| p != plugin);
        Ok(())
    }
}
