//! A person's ownership refs: their user ref, the groups they are a member
//! of (`memberOf` relations) and those groups' parents (`childOf`), read
//! from the catalog a level at a time.
//!
//! Answers are remembered per user for [`TTL`] and forgotten at once when
//! the catalog changes (any replica's change reaches every replica through
//! the change feed), so a page load does not walk the group tree again, and
//! a membership change counts from the next request.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use callboard_catalog::Catalog;
use serde_json::Value;

/// How long an answer is kept without a catalog change.
const TTL: Duration = Duration::from_secs(60);
/// Most users remembered; beyond it the cache starts over.
const MAX_CACHED: usize = 10_000;
/// Deepest group nesting walked.
const MAX_DEPTH: usize = 16;

/// Ownership refs of users, cached.
#[derive(Clone)]
pub struct Ownership {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Catalog,
    max_refs: usize,
    /// Bumped by every catalog change; entries of an older generation are stale.
    generation: AtomicU64,
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    generation: u64,
    at: Instant,
    refs: Arc<[String]>,
    display_name: Option<Arc<str>>,
}

impl std::fmt::Debug for Ownership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ownership")
            .field("max_refs", &self.inner.max_refs)
            .finish_non_exhaustive()
    }
}

impl Ownership {
    /// Reads memberships from `catalog`, at most `max_refs` refs per user,
    /// and forgets what it read whenever the catalog changes.
    pub fn new(catalog: &Catalog, max_refs: usize) -> Self {
        let inner = Arc::new(Inner {
            catalog: catalog.clone(),
            max_refs: max_refs.max(1),
            generation: AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
        });
        let mut events = catalog.subscribe();
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                let closed = matches!(
                    events.recv().await,
                    Err(tokio::sync::broadcast::error::RecvError::Closed)
                );
                let Some(inner) = weak.upgrade() else { break };
                inner.generation.fetch_add(1, Ordering::Relaxed);
                if closed {
                    break;
                }
            }
        });
        Self { inner }
    }

    /// The user's ref, its groups and their parents (lower-case refs, the
    /// user first). A user the catalog does not hold owns as itself only.
    /// A catalog failure is logged and gives the user ref alone: a person
    /// then sees less, never more.
    pub async fn refs_of(&self, user_ref: &str) -> Arc<[String]> {
        self.profile_of(user_ref).await.0
    }

    /// [`Self::refs_of`], with the user's `spec.profile.displayName`.
    pub async fn profile_of(&self, user_ref: &str) -> (Arc<[String]>, Option<Arc<str>>) {
        let generation = self.inner.generation.load(Ordering::Relaxed);
        if let Some(hit) = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user_ref)
            .filter(|c| c.generation == generation && c.at.elapsed() < TTL)
        {
            return (hit.refs.clone(), hit.display_name.clone());
        }
        let (refs, display_name): (Arc<[String]>, Option<Arc<str>>) =
            match self.walk(user_ref).await {
                Ok((refs, name)) => (Arc::from(refs), name.map(Arc::from)),
                Err(e) => {
                    tracing::error!(user = user_ref, "ownership: reading the catalog: {e}");
                    return (Arc::from(vec![user_ref.to_owned()]), None);
                }
            };
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(
            user_ref.to_owned(),
            Cached {
                generation,
                at: Instant::now(),
                refs: refs.clone(),
                display_name: display_name.clone(),
            },
        );
        (refs, display_name)
    }

    /// The refs, and the display name read on the way.
    async fn walk(
        &self,
        user_ref: &str,
    ) -> Result<(Vec<String>, Option<String>), callboard_catalog::CatalogError> {
        let max = self.inner.max_refs;
        let mut refs = vec![user_ref.to_owned()];
        let mut seen: HashSet<String> = refs.iter().cloned().collect();
        let mut level = vec![user_ref.to_owned()];
        let mut relation = "memberof";
        let mut display_name = None;
        for _ in 0..MAX_DEPTH {
            if level.is_empty() {
                break;
            }
            let entities = self.inner.catalog.get_by_refs(&level, None).await?;
            let mut next = Vec::new();
            if relation == "memberof" {
                display_name = entities
                    .iter()
                    .flatten()
                    .next()
                    .and_then(|e| e.pointer("/spec/profile/displayName"))
                    .and_then(Value::as_str)
                    .map(|n| n.chars().take(256).collect());
            }
            for entity in entities.iter().flatten() {
                for target in targets(entity, relation) {
                    if refs.len() >= max {
                        tracing::warn!(
                            user = user_ref,
                            max,
                            "ownership: more groups than auth.max_ownership_refs; the rest are not counted"
                        );
                        return Ok((refs, display_name));
                    }
                    if seen.insert(target.clone()) {
                        refs.push(target.clone());
                        next.push(target);
                    }
                }
            }
            level = next;
            relation = "childof";
        }
        Ok((refs, display_name))
    }
}

/// Lower-case target refs of an entity's relations of one type.
fn targets(entity: &Value, relation: &str) -> Vec<String> {
    entity
        .get("relations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            r.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(relation))
        })
        .filter_map(|r| r.get("targetRef").and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .collect()
}
