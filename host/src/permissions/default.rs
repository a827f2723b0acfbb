//! The policy a fresh installation starts with.

use serde_json::json;

use super::{
    CALLBOARD_POLICY_READ, CATALOG_ENTITY, CATALOG_ENTITY_DELETE, CATALOG_ENTITY_READ,
    CATALOG_ENTITY_REFRESH, CATALOG_ENTITY_VALIDATE, CATALOG_LOCATION_ANALYZE,
    CATALOG_LOCATION_READ, Criteria, Effect, OWNER_REFS, Policy, Role, Rule, TECHDOCS_ENTITY_READ,
};

/// Name of the role every signed-in principal has in the default policy.
pub const EVERYONE_ROLE: &str = "role:default/everyone";
/// Name of the administrators' role in the default policy.
pub const ADMIN_ROLE: &str = "role:default/admin";

impl Policy {
    /// The default policy: everyone signed in reads the catalog, its
    /// locations and the policy, validates and analyses, and refreshes or
    /// deletes the entities they own (`IS_ENTITY_OWNER` of `$ownerRefs`);
    /// `admins` (lower-cased) hold every permission, plugins' included
    /// (a rule on `*`).
    pub fn default_policy(admins: &[String]) -> Policy {
        let allow = |permission: &str| Rule {
            permission: permission.to_owned(),
            action: None,
            effect: Effect::Allow,
            conditions: None,
        };
        let owned = Criteria::Rule {
            rule: "IS_ENTITY_OWNER".to_owned(),
            resource_type: CATALOG_ENTITY.to_owned(),
            params: json!({ "claims": [OWNER_REFS] }),
        };
        let allow_owned = |permission: &str| Rule {
            conditions: Some(owned.clone()),
            ..allow(permission)
        };
        Policy {
            roles: vec![
                Role {
                    name: EVERYONE_ROLE.to_owned(),
                    description:
                        "Every signed-in principal: reads the catalog, changes what it owns"
                            .to_owned(),
                    members: vec!["*".to_owned()],
                    rules: vec![
                        allow(CATALOG_ENTITY_READ),
                        allow(CATALOG_LOCATION_READ),
                        allow(CATALOG_ENTITY_VALIDATE),
                        allow(CATALOG_LOCATION_ANALYZE),
                        allow(TECHDOCS_ENTITY_READ),
                        allow(CALLBOARD_POLICY_READ),
                        allow_owned(CATALOG_ENTITY_REFRESH),
                        allow_owned(CATALOG_ENTITY_DELETE),
                    ],
                },
                Role {
                    name: ADMIN_ROLE.to_owned(),
                    description: "Administrators: every permission".to_owned(),
                    members: admins.iter().map(|a| a.to_lowercase()).collect(),
                    rules: vec![allow("*")],
                },
            ],
        }
    }
}
