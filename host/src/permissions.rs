//! The permission engine: Backstage-style permissions whose policy is data.
//!
//! A [`Policy`] is a list of [`Role`]s. A role has members (lower-cased
//! entity refs such as `user:default/alice` or `group:default/team-a`,
//! `token:<name>` for an API token, or `*` for every signed-in principal)
//! and [`Rule`]s. A rule names a permission (`catalog.entity.read`), a
//! resource type with an action (`catalog-entity` + `read`: every
//! permission of that type with that action, as RHDH's CSV does), or `*`
//! (every permission, optionally of one action); it allows or denies, and a
//! rule on a resource permission may carry [`Criteria`]: Backstage's
//! `PermissionCriteria` over the catalog's permission rules
//! (`IS_ENTITY_OWNER`, `IS_ENTITY_KIND`, `HAS_ANNOTATION`, `HAS_LABEL`,
//! `HAS_METADATA`, `HAS_SPEC`). The engine is pure: no I/O, no storage.
//!
//! # Decisions
//!
//! [`Policy::decide`] answers, for a [`Subject`] and a permission name:
//!
//! 1. a permission the catalogue ([`Permissions`]) does not hold: DENY;
//! 2. a superuser (the bootstrap admin token): ALLOW, no policy consulted;
//! 3. a restricted API token asking for a permission outside its list: DENY;
//! 4. otherwise every rule of every role whose members hold one of the
//!    subject's refs (or `*`, when the subject has at least one ref) and that
//!    matches the permission (by name, by resource type + action, or `*`)
//!    is collected, and:
//!    - an unconditional deny wins: DENY;
//!    - an unconditional allow: ALLOW, or, when conditional denies matched,
//!      CONDITIONAL(`not(anyOf(denies))`);
//!    - no unconditional allow but conditional allows: CONDITIONAL(
//!      `anyOf(allows)`), joined as `allOf([anyOf(allows), not(anyOf(denies))])`
//!      when conditional denies matched too;
//!    - nothing allowing: DENY.
//!
//!    Single-element `anyOf`/`allOf` are replaced by their element.
//!    Conditions are only meaningful on resource permissions: should an
//!    unvalidated policy put them on a basic permission (or on another
//!    resource type), a conditional allow is ignored and a conditional deny
//!    denies (the engine fails closed).
//!
//! The string `$ownerRefs` in condition parameters (RHDH's alias) is
//! replaced at decision time by the subject's ownership refs, so the
//! criteria of a CONDITIONAL decision are ready for [`to_predicate`], which
//! turns them into the catalog's query predicate, applied inside queries.
//!
//! # Formats
//!
//! The stored policy is the JSON (serde) form of [`Policy`]; [`rhdh`]
//! imports and exports Red Hat Developer Hub's CSV and conditional-policy
//! YAML. [`Policy::validate`] checks a policy against the catalogue and the
//! bounds below before it is stored; its errors name the role and the rule
//! (1-based), import errors the line.

mod conditions;
mod default;
mod names;
mod policy;
pub mod rhdh;
mod rules;

pub use conditions::{Criteria, OWNER_REFS};
pub use default::{ADMIN_ROLE, EVERYONE_ROLE};
pub use names::*;
pub use policy::{Decision, Effect, Policy, Role, Rule, Subject};
pub use rules::{CATALOG_RULES, MAX_PARAM_LEN, MAX_PARAM_VALUES, to_predicate};

/// Most roles a policy holds.
pub const MAX_ROLES: usize = 1_000;
/// Most members all roles of a policy hold together.
pub const MAX_MEMBERS: usize = 10_000;
/// Most rules all roles of a policy hold together.
pub const MAX_RULES: usize = 10_000;
/// Deepest nesting of a rule's criteria (a lone condition is depth 1).
pub const MAX_CRITERIA_DEPTH: usize = 8;
/// Most conditions (leaves) one rule's criteria hold.
pub const MAX_CONDITIONS_PER_RULE: usize = 64;

/// Why a policy, a permission declaration or an import was refused, and
/// where: the role, the rule (1-based) and the line of the imported text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", self.place())]
pub struct PolicyError {
    /// The file an import read (`CSV`, `conditional policies`).
    pub source_name: Option<&'static str>,
    /// 1-based line of that file.
    pub line: Option<usize>,
    /// The role, as named.
    pub role: Option<String>,
    /// 1-based index of the rule within the role.
    pub rule: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl PolicyError {
    /// An error with no place.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            source_name: None,
            line: None,
            role: None,
            rule: None,
            message: message.into(),
        }
    }

    /// The same error, in `role`.
    pub(crate) fn in_role(mut self, role: &str) -> Self {
        self.role = Some(shown(role));
        self
    }

    /// The same error, at rule `index` (0-based; shown 1-based).
    pub(crate) fn at_rule(mut self, index: usize) -> Self {
        self.rule = Some(index + 1);
        self
    }

    /// The same error, at `line` of `source_name`.
    pub(crate) fn at_line(mut self, source_name: &'static str, line: usize) -> Self {
        self.source_name = Some(source_name);
        self.line = Some(line);
        self
    }

    fn place(&self) -> String {
        let mut parts = Vec::new();
        match (self.source_name, self.line) {
            (Some(source), Some(line)) => parts.push(format!("{source} line {line}")),
            (Some(source), None) => parts.push(source.to_owned()),
            (None, Some(line)) => parts.push(format!("line {line}")),
            (None, None) => {}
        }
        if let Some(role) = &self.role {
            parts.push(format!("role {role}"));
        }
        if let Some(rule) = self.rule {
            parts.push(format!("rule {rule}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("{}: ", parts.join(", "))
        }
    }
}

/// Text from outside, cut to a length an error message can carry.
pub(crate) fn shown(text: &str) -> String {
    const MAX_SHOWN: usize = 80;
    match text.char_indices().nth(MAX_SHOWN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}
