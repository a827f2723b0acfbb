//! What an identity may do: the published policy (stored, shared by every
//! replica), the permission catalogue, and the decisions routes ask for.
//!
//! The policy is data ([`crate::permissions::Policy`]): a new install
//! stores the default one at its first start; administrators draft,
//! review and publish changes (`PolicyStore`). A publication appends an
//! `access` event to the change feed, and every replica swaps the new
//! policy in when it reads it (and compares the published version every
//! [`RESYNC`] in any case). Decisions read the policy without locks.
//!
//! Resource permissions (`catalog.entity.read`, ...) answer with a
//! [`Scope`]: all entities, the entities a catalog predicate selects (the
//! policy's conditions, applied inside the catalog's query), or none.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use callboard_store::{Feed, PolicyStore, query::Predicate};

use super::{Identity, Principal, config::Anonymous};
use crate::permissions::{Action, Decision, Permissions, Policy, Subject};

/// What anonymous callers may be allowed with `auth.anonymous = "read"`
/// (if the policy lets everyone do it).
const ANONYMOUS_READS: &[&str] = &[
    crate::permissions::CATALOG_ENTITY_READ,
    crate::permissions::CATALOG_LOCATION_READ,
    crate::permissions::CATALOG_ENTITY_VALIDATE,
    crate::permissions::TECHDOCS_ENTITY_READ,
];

/// How often every replica compares the published policy version, in case
/// a feed event was missed.
const RESYNC: Duration = Duration::from_secs(30);

/// The policy in force.
#[derive(Debug)]
struct Loaded {
    /// Its version (0: none stored, the built-in default).
    version: i64,
    policy: Policy,
}

/// Which entities a resource permission reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every entity.
    All,
    /// The entities this predicate selects.
    Where(Predicate),
    /// None.
    Nothing,
}

impl Scope {
    /// Whether entity `r` (a ref string) is within this scope: asked of the
    /// store with the same predicate a list would use.
    pub async fn reaches(
        &self,
        catalog: &callboard_catalog::Catalog,
        r: &str,
    ) -> Result<bool, callboard_catalog::CatalogError> {
        match self {
            Scope::All => Ok(true),
            Scope::Nothing => Ok(false),
            Scope::Where(p) => Ok(catalog
                .get_by_refs(&[r.to_owned()], Some(p))
                .await?
                .first()
                .is_some_and(Option::is_some)),
        }
    }

    /// `predicate` narrowed to this scope (`None` when nothing may be seen).
    pub fn narrow(&self, predicate: Option<Predicate>) -> Option<Option<Predicate>> {
        match self {
            Scope::All => Some(predicate),
            Scope::Nothing => None,
            Scope::Where(scope) => Some(Some(match predicate {
                None => scope.clone(),
                Some(p) => p.and(scope.clone()),
            })),
        }
    }
}

/// The decisions.
pub struct Access {
    permissions: ArcSwap<Permissions>,
    /// Where plugins declare permissions, and the live-plugin token the
    /// catalogue was last built for.
    plugins: std::sync::OnceLock<crate::plugins::PluginHost>,
    plugins_seen: std::sync::atomic::AtomicUsize,
    policy: ArcSwap<Loaded>,
    anonymous: Anonymous,
    store: Option<Arc<dyn PolicyStore>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("version", &self.policy.load().version)
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

impl Access {
    /// Stores the default policy (administrators: `admins`) if none is
    /// stored yet, then loads the published one.
    pub async fn open(
        store: Arc<dyn PolicyStore>,
        anonymous: Anonymous,
        admins: &[String],
    ) -> anyhow::Result<Arc<Self>> {
        let default = Policy::default_policy(admins);
        let text = serde_json::to_string(&default)?;
        if store.seed(&text, crate::auth::now_ms()).await? {
            tracing::info!(
                admins = admins.len(),
                "access: stored the default policy (everyone signed in reads; owners refresh and \
                 delete their entities; role:default/admin does everything)"
            );
        }
        let access = Arc::new(Self {
            permissions: ArcSwap::from_pointee(Permissions::builtin()),
            plugins: std::sync::OnceLock::new(),
            plugins_seen: std::sync::atomic::AtomicUsize::new(0),
            policy: ArcSwap::from_pointee(Loaded {
                version: 0,
                policy: default,
            }),
            anonymous,
            store: Some(store),
        });
        access.reload().await?;
        Ok(access)
    }

    /// A policy in force without a store behind it (tests of one router).
    pub fn fixed(policy: Policy, anonymous: Anonymous) -> Self {
        Self {
            permissions: ArcSwap::from_pointee(Permissions::builtin()),
            plugins: std::sync::OnceLock::new(),
            plugins_seen: std::sync::atomic::AtomicUsize::new(0),
            policy: ArcSwap::from_pointee(Loaded { version: 0, policy }),
            anonymous,
            store: None,
        }
    }

    /// The version of the policy in force.
    pub fn version(&self) -> i64 {
        self.policy.load().version
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy.load().policy.clone()
    }

    /// The permission catalogue: the built-in permissions and those the
    /// live plugins declare (rebuilt when the live plugins change).
    pub fn permissions(&self) -> Arc<Permissions> {
        if let Some(plugins) = self.plugins.get() {
            use std::sync::atomic::Ordering;
            if self.plugins_seen.load(Ordering::Acquire) != plugins.live_token() {
                let (token, declared) = plugins.declared_permissions();
                let mut catalogue = Permissions::builtin();
                for (plugin, d) in &declared {
                    let action = Action::parse(&d.action).unwrap_or(Action::Use);
                    if let Err(e) = catalogue.with_plugin_resource(
                        plugin,
                        &d.name,
                        action,
                        d.resource_type.as_deref(),
                    ) {
                        tracing::warn!(plugin, permission = %d.name, "access: a declared permission is refused: {e}");
                    }
                }
                self.permissions.store(Arc::new(catalogue));
                self.plugins_seen.store(token, Ordering::Release);
            }
        }
        self.permissions.load_full()
    }

    /// Reads the permissions plugins declare from `plugins` (once, at
    /// start-up).
    pub fn attach_plugins(&self, plugins: crate::plugins::PluginHost) {
        let _ = self.plugins.set(plugins);
    }

    /// Reads the published policy and swaps it in if it changed.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let Some(published) = store.published().await? else {
            return Ok(());
        };
        if published.id == self.version() {
            return Ok(());
        }
        let policy: Policy = serde_json::from_str(&published.document).map_err(|e| {
            anyhow::anyhow!(
                "the published policy (version {}) is not valid: {e}",
                published.id
            )
        })?;
        tracing::info!(version = published.id, "access: policy in force");
        self.policy.store(Arc::new(Loaded {
            version: published.id,
            policy,
        }));
        Ok(())
    }

    /// Follows the change feed: reloads the policy on every `access` event
    /// and every [`RESYNC`].
    pub async fn follow(self: Arc<Self>, feed: Arc<dyn Feed>) {
        let mut seq = feed.head().await.unwrap_or(0);
        loop {
            crate::feed::wait_for(
                &*feed,
                &mut seq,
                callboard_store::access::ACCESS_TOPIC,
                RESYNC,
            )
            .await;
            if let Err(e) = self.reload().await {
                tracing::warn!("access: reloading the policy: {e}");
            }
        }
    }

    /// The decision for `who` on `permission`.
    pub fn decide(&self, who: &Identity, permission: &str) -> Decision {
        let permissions = self.permissions();
        let loaded = self.policy.load();
        match &who.principal {
            Principal::Admin => Decision::Allow,
            // `[server] api_tokens`: the catalog API, as before policies.
            Principal::Token { id: None, .. } => {
                if permission.starts_with("catalog.") {
                    Decision::Allow
                } else {
                    Decision::Deny
                }
            }
            Principal::Anonymous => {
                // Reading, never anything that makes the server fetch or
                // change something (analyze-location reads URLs).
                let reads = permissions
                    .get(permission)
                    .is_some_and(|p| p.action == Action::Read)
                    && ANONYMOUS_READS.contains(&permission);
                if self.anonymous == Anonymous::Read && reads {
                    // Counted among "*" (everyone), owning nothing.
                    let everyone = ["*".to_owned()];
                    let subject = Subject {
                        refs: &everyone,
                        owner_refs: &[],
                        superuser: false,
                        restricted_to: None,
                    };
                    loaded.policy.decide(&permissions, &subject, permission)
                } else {
                    Decision::Deny
                }
            }
            Principal::User(_) | Principal::Token { .. } => {
                let subject = Subject {
                    refs: &who.refs,
                    owner_refs: &who.ownership,
                    superuser: false,
                    restricted_to: who.restricted_to.as_deref(),
                };
                loaded.policy.decide(&permissions, &subject, permission)
            }
        }
    }

    /// Whether `who` may do a basic (resource-less) permission.
    pub fn allows(&self, who: &Identity, permission: &str) -> bool {
        matches!(self.decide(who, permission), Decision::Allow)
    }

    /// What plugin calls made for `who` may read of the catalog: what
    /// `who` may read.
    pub fn reader(&self, who: &Identity) -> crate::plugins::CatalogReader {
        use crate::plugins::CatalogReader;
        match self.scope(who, crate::permissions::CATALOG_ENTITY_READ) {
            Scope::All => CatalogReader::All,
            Scope::Where(p) => CatalogReader::Only(Arc::new(p)),
            Scope::Nothing => CatalogReader::nothing(),
        }
    }

    /// What plugin `id`'s own service principal (`plugin:<id>`: event
    /// handlers and ticks run as it) may read: what the policy grants
    /// that ref.
    pub fn service_reader(&self, plugin: &str) -> crate::plugins::CatalogReader {
        let name = format!("plugin:{plugin}");
        let who = Identity {
            principal: Principal::Token {
                name: name.clone(),
                id: Some(name.clone()),
            },
            refs: Arc::from(vec![name]),
            ..Identity::anonymous()
        };
        self.reader(&who)
    }

    /// Which catalog entities `who` reaches with a resource permission.
    /// Conditions that cannot be turned into a catalog predicate are logged
    /// and reach nothing.
    pub fn scope(&self, who: &Identity, permission: &str) -> Scope {
        match self.decide(who, permission) {
            Decision::Allow => Scope::All,
            Decision::Deny => Scope::Nothing,
            Decision::Conditional(criteria) => match crate::permissions::to_predicate(&criteria) {
                Ok(p) => Scope::Where(p),
                Err(e) => {
                    tracing::error!(permission, "access: a condition cannot be applied: {e}");
                    Scope::Nothing
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{Criteria, Effect, Role, Rule};

    fn owners_only() -> Policy {
        Policy {
            roles: vec![Role {
                name: "role:default/owners".into(),
                description: String::new(),
                members: vec!["*".into()],
                rules: vec![Rule {
                    permission: crate::permissions::CATALOG_ENTITY_READ.into(),
                    action: None,
                    effect: Effect::Allow,
                    conditions: Some(Criteria::Rule {
                        rule: "IS_ENTITY_OWNER".into(),
                        resource_type: "catalog-entity".into(),
                        params: serde_json::json!({"claims": ["$ownerRefs"]}),
                    }),
                }],
            }],
        }
    }

    #[test]
    fn a_plugins_service_principal_reads_what_the_policy_grants_it() {
        use crate::plugins::CatalogReader;
        let open = Access::fixed(Policy::default_policy(&[]), Anonymous::None);
        assert!(matches!(open.service_reader("cost"), CatalogReader::All));
        // Owners read their own: a plugin owns nothing, so reads nothing.
        let owners = Access::fixed(owners_only(), Anonymous::None);
        match owners.service_reader("cost") {
            CatalogReader::Only(p) => assert_eq!(*p, Predicate::Any(Vec::new())),
            CatalogReader::All => panic!("a plugin reads everything under owners-only"),
        }
    }

    #[test]
    fn anonymous_callers_only_ever_read() {
        let access = Access::fixed(Policy::default_policy(&[]), Anonymous::Read);
        let nobody = Identity::anonymous();
        assert_eq!(
            access.decide(&nobody, crate::permissions::CATALOG_ENTITY_READ),
            Decision::Allow
        );
        for never in [
            crate::permissions::CATALOG_LOCATION_ANALYZE,
            crate::permissions::CATALOG_ENTITY_REFRESH,
            crate::permissions::CATALOG_LOCATION_CREATE,
            crate::permissions::CALLBOARD_POLICY_READ,
        ] {
            assert_eq!(access.decide(&nobody, never), Decision::Deny, "{never}");
        }
        let closed = Access::fixed(Policy::default_policy(&[]), Anonymous::None);
        assert_eq!(
            closed.decide(&nobody, crate::permissions::CATALOG_ENTITY_READ),
            Decision::Deny
        );
    }
}
