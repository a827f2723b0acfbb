//! The permission catalogue: Backstage's catalog permissions, Callboard's
//! own, and those plugins declare in their manifests.

use std::collections::HashMap;

use serde::Serialize;

use super::PolicyError;

/// Reading catalog entities (resource `catalog-entity`).
pub const CATALOG_ENTITY_READ: &str = "catalog.entity.read";
/// Registering entities (basic).
pub const CATALOG_ENTITY_CREATE: &str = "catalog.entity.create";
/// Deleting an entity (resource `catalog-entity`).
pub const CATALOG_ENTITY_DELETE: &str = "catalog.entity.delete";
/// Refreshing an entity (resource `catalog-entity`, action update).
pub const CATALOG_ENTITY_REFRESH: &str = "catalog.entity.refresh";
/// Validating an entity without storing it (basic).
pub const CATALOG_ENTITY_VALIDATE: &str = "catalog.entity.validate";
/// Reading locations (basic).
pub const CATALOG_LOCATION_READ: &str = "catalog.location.read";
/// Adding locations (basic).
pub const CATALOG_LOCATION_CREATE: &str = "catalog.location.create";
/// Removing locations (basic).
pub const CATALOG_LOCATION_DELETE: &str = "catalog.location.delete";
/// Analysing a location before adding it (basic).
pub const CATALOG_LOCATION_ANALYZE: &str = "catalog.location.analyze";
/// Reading an entity's TechDocs (resource `catalog-entity`), checked with
/// `catalog.entity.read` as Backstage's TechDocs backend does.
pub const TECHDOCS_ENTITY_READ: &str = "techdocs.entity.read";
/// Installing, updating, removing and granting plugins (basic).
pub const CALLBOARD_PLUGINS_MANAGE: &str = "callboard.plugins.manage";
/// Reading the permission policy (basic).
pub const CALLBOARD_POLICY_READ: &str = "callboard.policy.read";
/// Changing the permission policy (basic).
pub const CALLBOARD_POLICY_MANAGE: &str = "callboard.policy.manage";
/// Creating and revoking API tokens (basic).
pub const CALLBOARD_TOKENS_MANAGE: &str = "callboard.tokens.manage";
/// Reading the audit log (basic).
pub const CALLBOARD_AUDIT_READ: &str = "callboard.audit.read";

pub use callboard_plugin_contract::permission::{Action, CATALOG_ENTITY};

/// Longest permission name.
pub const MAX_PERMISSION_NAME: usize = 128;
/// Most permissions plugins may declare together.
pub const MAX_PLUGIN_PERMISSIONS: usize = 10_000;

/// One permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionInfo {
    /// Its name, e.g. `catalog.entity.read`. Names hold a dot; resource
    /// types never do.
    pub name: String,
    /// The resource type of a resource permission (decided per resource,
    /// with conditions); `None` for a basic permission.
    pub resource_type: Option<String>,
    /// What it does.
    pub action: Action,
}

/// The permissions a policy may name: the built-ins plus those installed
/// plugins declare.
#[derive(Debug, Clone)]
pub struct Permissions {
    list: Vec<PermissionInfo>,
    index: HashMap<String, usize>,
    builtin: usize,
}

const BUILTIN: &[(&str, Option<&str>, Action)] = &[
    (CATALOG_ENTITY_READ, Some(CATALOG_ENTITY), Action::Read),
    (CATALOG_ENTITY_CREATE, None, Action::Create),
    (CATALOG_ENTITY_DELETE, Some(CATALOG_ENTITY), Action::Delete),
    (CATALOG_ENTITY_REFRESH, Some(CATALOG_ENTITY), Action::Update),
    (CATALOG_ENTITY_VALIDATE, None, Action::Read),
    (CATALOG_LOCATION_READ, None, Action::Read),
    (CATALOG_LOCATION_CREATE, None, Action::Create),
    (CATALOG_LOCATION_DELETE, None, Action::Delete),
    (CATALOG_LOCATION_ANALYZE, None, Action::Read),
    (TECHDOCS_ENTITY_READ, Some(CATALOG_ENTITY), Action::Read),
    (CALLBOARD_PLUGINS_MANAGE, None, Action::Update),
    (CALLBOARD_POLICY_READ, None, Action::Read),
    (CALLBOARD_POLICY_MANAGE, None, Action::Update),
    (CALLBOARD_TOKENS_MANAGE, None, Action::Update),
    (CALLBOARD_AUDIT_READ, None, Action::Read),
];

/// The built-in permission called `name`, if any.
pub(crate) fn builtin_info(name: &str) -> Option<(Option<&'static str>, Action)> {
    BUILTIN
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, rt, a)| (*rt, *a))
}

impl Permissions {
    /// The built-in permissions only.
    pub fn builtin() -> Self {
        let list: Vec<PermissionInfo> = BUILTIN
            .iter()
            .map(|(name, resource_type, action)| PermissionInfo {
                name: (*name).to_owned(),
                resource_type: resource_type.map(str::to_owned),
                action: *action,
            })
            .collect();
        let index = list
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        Self {
            builtin: list.len(),
            list,
            index,
        }
    }

    /// Adds a basic permission a plugin declares. `name` must start with
    /// `<plugin_id>.` and be 1 to 128 characters of `[a-z0-9.-]`; declaring
    /// the same permission again with the same action is a no-op.
    pub fn with_plugin(
        &mut self,
        plugin_id: &str,
        name: &str,
        action: Action,
    ) -> Result<(), PolicyError> {
        self.with_plugin_resource(plugin_id, name, action, None)
    }

    /// [`Self::with_plugin`], for a permission on catalog entities
    /// (`resource_type` `catalog-entity`): policies may then put conditions
    /// on it (e.g. only the entity's owners), checked against the entity a
    /// plugin asks about.
    pub fn with_plugin_resource(
        &mut self,
        plugin_id: &str,
        name: &str,
        action: Action,
        resource_type: Option<&str>,
    ) -> Result<(), PolicyError> {
        let refuse = |why: &str| {
            PolicyError::new(format!("plugin {plugin_id}: permission \"{name}\" {why}"))
        };
        if resource_type.is_some_and(|t| t != CATALOG_ENTITY) {
            return Err(refuse(&format!(
                "has resource type {:?}; plugins may declare only {CATALOG_ENTITY}",
                resource_type.unwrap_or_default()
            )));
        }
        let valid_chars = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        };
        if name.is_empty() || name.len() > MAX_PERMISSION_NAME || !valid_chars(name) {
            return Err(refuse(&format!(
                "must be 1 to {MAX_PERMISSION_NAME} characters of [a-z0-9.-]"
            )));
        }
        let rest = name
            .strip_prefix(plugin_id)
            .and_then(|r| r.strip_prefix('.'));
        if plugin_id.is_empty() || rest.is_none_or(str::is_empty) {
            return Err(refuse(&format!(
                "must start with \"{plugin_id}.\" and name something after it"
            )));
        }
        if let Some(&i) = self.index.get(name) {
            return match &self.list[i] {
                _ if i < self.builtin => Err(refuse("is a built-in permission")),
                existing
                    if existing.action == action
                        && existing.resource_type.as_deref() == resource_type =>
                {
                    Ok(())
                }
                existing => Err(refuse(&format!(
                    "is already declared with action {}",
                    existing.action
                ))),
            };
        }
        if self.list.len() - self.builtin >= MAX_PLUGIN_PERMISSIONS {
            return Err(refuse(&format!(
                "is one more than the {MAX_PLUGIN_PERMISSIONS} plugin permissions allowed"
            )));
        }
        self.index.insert(name.to_owned(), self.list.len());
        self.list.push(PermissionInfo {
            name: name.to_owned(),
            resource_type: resource_type.map(str::to_owned),
            action,
        });
        Ok(())
    }

    /// Forgets the permissions of a plugin (removed, or about to be
    /// declared again by a new version).
    pub fn remove_plugin(&mut self, plugin_id: &str) {
        let prefix = format!("{plugin_id}.");
        let builtin = self.builtin;
        let mut i = 0;
        self.list.retain(|p| {
            i += 1;
            i <= builtin || !p.name.starts_with(&prefix)
        });
        self.index = self
            .list
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
    }

    /// The permission called `name`.
    pub fn get(&self, name: &str) -> Option<&PermissionInfo> {
        self.index.get(name).map(|&i| &self.list[i])
    }

    /// Every permission, built-ins first.
    pub fn all(&self) -> impl Iterator<Item = &PermissionInfo> {
        self.list.iter()
    }

    /// Whether some permission has this resource type.
    pub fn is_resource_type(&self, resource_type: &str) -> bool {
        self.list
            .iter()
            .any(|p| p.resource_type.as_deref() == Some(resource_type))
    }
}

impl Default for Permissions {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_carry_backstage_resource_types_and_actions() {
        let perms = Permissions::builtin();
        assert_eq!(perms.all().count(), 15);
        let docs = perms.get(TECHDOCS_ENTITY_READ).unwrap();
        assert_eq!(docs.resource_type.as_deref(), Some(CATALOG_ENTITY));
        let read = perms.get(CATALOG_ENTITY_READ).unwrap();
        assert_eq!(read.resource_type.as_deref(), Some(CATALOG_ENTITY));
        assert_eq!(read.action, Action::Read);
        let refresh = perms.get(CATALOG_ENTITY_REFRESH).unwrap();
        assert_eq!(refresh.action, Action::Update);
        let create = perms.get(CATALOG_ENTITY_CREATE).unwrap();
        assert_eq!(create.resource_type, None);
        assert!(perms.is_resource_type(CATALOG_ENTITY));
        assert!(!perms.is_resource_type("policy-entity"));
        assert!(perms.get("catalog.entity.nope").is_none());
        assert_eq!(
            serde_json::to_value(Action::Update).unwrap(),
            serde_json::json!("update")
        );
    }

    #[test]
    fn plugins_declare_names_under_their_id() {
        let mut perms = Permissions::builtin();
        perms
            .with_plugin("cost", "cost.reports.read", Action::Read)
            .unwrap();
        // Idempotent with the same action.
        perms
            .with_plugin("cost", "cost.reports.read", Action::Read)
            .unwrap();
        assert_eq!(perms.all().count(), 16);
        let info = perms.get("cost.reports.read").unwrap();
        assert_eq!(
            (info.resource_type.as_deref(), info.action),
            (None, Action::Read)
        );

        for (id, name) in [
            ("cost", "costs.read"),
            ("cost", "cost."),
            ("cost", "cost"),
            ("cost", "cost.Reports"),
            ("cost", "cost.re ports"),
            ("", ".x"),
            ("catalog", "catalog.entity.read"),
        ] {
            let err = perms.with_plugin(id, name, Action::Use).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let long = format!("cost.{}", "x".repeat(MAX_PERMISSION_NAME));
        assert!(perms.with_plugin("cost", &long, Action::Use).is_err());
        let err = perms
            .with_plugin("cost", "cost.reports.read", Action::Update)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("already declared with action read"),
            "{err}"
        );

        perms
            .with_plugin("ci", "ci.runs.rerun", Action::Use)
            .unwrap();
        perms.remove_plugin("cost");
        assert!(perms.get("cost.reports.read").is_none());
        assert!(perms.get("ci.runs.rerun").is_some());
        assert!(perms.get(CATALOG_ENTITY_READ).is_some());
        assert_eq!(perms.all().count(), 16);
    }
}
