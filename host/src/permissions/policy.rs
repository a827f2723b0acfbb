//! The policy model (roles, members, rules), its validation and decisions.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{
    Action, Criteria, MAX_MEMBERS, MAX_PERMISSION_NAME, MAX_ROLES, MAX_RULES, PermissionInfo,
    Permissions, PolicyError,
};

/// Longest role name.
pub const MAX_ROLE_NAME: usize = 128;
/// Longest role description.
pub const MAX_DESCRIPTION: usize = 1024;
/// Longest member ref.
pub const MAX_MEMBER: usize = 256;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants the permission.
    Allow,
    /// Refuses it, over any allow.
    Deny,
}

/// One rule of a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A permission name (`catalog.entity.read`), a resource type
    /// (`catalog-entity`), or `*` for every permission.
    pub permission: String,
    /// The action: required with a resource type (the rule covers that
    /// type's permissions of this action); with a name, left out or equal to
    /// the permission's own; with `*`, every permission of this action
    /// (left out: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Allow or deny.
    pub effect: Effect,
    /// Conditions (resource permissions only): the rule applies to the
    /// resources they hold for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Criteria>,
}

/// A role: who has it and what it allows or denies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// `role:<namespace>/<name>`, e.g. `role:default/developers`.
    pub name: String,
    /// What the role is for.
    #[serde(default)]
    pub description: String,
    /// Lower-cased refs of users, groups (`user:default/alice`,
    /// `group:default/team-a`) and API tokens (`token:<name>`), or `*` for
    /// every signed-in principal.
    #[serde(default)]
    pub members: Vec<String>,
    /// Its rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// The permission policy: the stored document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Its roles.
    pub roles: Vec<Role>,
}

/// Who is asking, as the engine needs it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Refs the principal is known by, lower-cased: a user's own ref plus its
    /// ownership refs (groups and parent groups); for an API token
    /// `token:<name>` (a service principal has no groups). Empty for a
    /// guest, whom `*` does not cover.
    pub refs: &'a [String],
    /// The caller's ownership refs, substituted for `$ownerRefs` (the same
    /// list as `refs` for a user).
    pub owner_refs: &'a [String],
    /// A super-administrator (the bootstrap admin token): everything is
    /// allowed, no policy consulted.
    pub superuser: bool,
    /// An API token's restrictions: when `Some`, only these permission names
    /// can be allowed at all (others DENY).
    pub restricted_to: Option<&'a [String]>,
}

/// The answer for one permission.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Granted.
    Allow,
    /// Refused.
    Deny,
    /// Granted for the resources these criteria hold for (`$ownerRefs`
    /// already expanded).
    Conditional(Criteria),
}

impl Rule {
    /// Whether the rule covers `p` (conditions aside).
    fn covers(&self, p: &PermissionInfo) -> bool {
        let named = self.permission == "*"
            || self.permission == p.name
            || p.resource_type.as_deref() == Some(self.permission.as_str());
        named && self.action.is_none_or(|a| a == p.action)
    }

    fn validate(&self, perms: &Permissions) -> Result<(), PolicyError> {
        let err = |m: String| Err(PolicyError::new(m));
        let name = &self.permission;
        if name.len() > MAX_PERMISSION_NAME {
            return err(format!(
                "a permission of {} bytes, longer than the {MAX_PERMISSION_NAME} allowed",
                name.len()
            ));
        }
        if name == "*" {
            if self.conditions.is_some() {
                return err(
                    "conditions on \"*\": only resource permissions take conditions".into(),
                );
            }
            return Ok(());
        }
        let resource_type = if let Some(info) = perms.get(name) {
            if let Some(action) = self.action
                && action != info.action
            {
                return err(format!(
                    "action {action} on \"{name}\", whose action is {}",
                    info.action
                ));
            }
            match (&info.resource_type, &self.conditions) {
                (None, Some(_)) => {
                    return err(format!(
                        "conditions on the basic permission \"{name}\": only resource permissions take conditions"
                    ));
                }
                (resource_type, _) => resource_type.clone(),
            }
        } else if perms.is_resource_type(name) {
            if self.action.is_none() {
                return err(format!("resource type \"{name}\" without an action"));
            }
            Some(name.clone())
        } else {
            return err(format!("unknown permission or resource type \"{name}\""));
        };
        match (&self.conditions, resource_type) {
            (Some(c), Some(rt)) => c.validate(&rt),
            _ => Ok(()),
        }
    }
}

/// Whether `name` is `role:<namespace>/<name>`.
pub(crate) fn valid_role_name(name: &str) -> bool {
    let part = |s: &str| {
        (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    name.len() <= MAX_ROLE_NAME
        && name
            .strip_prefix("role:")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(ns, n)| part(ns) && part(n))
}

/// Why `member` is not a member ref, if it is not.
pub(crate) fn member_problem(member: &str) -> Option<String> {
    if member == "*" {
        return None;
    }
    if member.len() > MAX_MEMBER {
        return Some(format!(
            "a member of {} bytes, longer than the {MAX_MEMBER} allowed",
            member.len()
        ));
    }
    let bad = || {
        Some(format!(
            "member \"{}\" is not \"*\", a lower-cased user:<namespace>/<name>, \
             group:<namespace>/<name> or token:<name>",
            super::shown(member)
        ))
    };
    if member
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        return bad();
    }
    if let Some(token) = member.strip_prefix("token:") {
        return if token.is_empty() { bad() } else { None };
    }
    let part = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            })
    };
    let ok = member
        .strip_prefix("user:")
        .or_else(|| member.strip_prefix("group:"))
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(ns, name)| part(ns) && part(name));
    if ok { None } else { bad() }
}

impl Policy {
    /// Checks the policy against the permission catalogue and the bounds:
    /// role names (`role:<namespace>/<name>`, unique case-insensitively),
    /// member refs, rules (known permission or resource type, actions, known
    /// rule names with valid parameters, conditions only on resource
    /// permissions), and the counts. Every error names the role and the rule
    /// (1-based).
    pub fn validate(&self, perms: &Permissions) -> Result<(), PolicyError> {
        if self.roles.len() > MAX_ROLES {
            return Err(PolicyError::new(format!(
                "{} roles, more than the {MAX_ROLES} allowed",
                self.roles.len()
            )));
        }
        let mut names = HashSet::new();
        let (mut members, mut rules) = (0usize, 0usize);
        for role in &self.roles {
            let in_role = |e: PolicyError| e.in_role(&role.name);
            if !valid_role_name(&role.name) {
                return Err(in_role(PolicyError::new(
                    "a role name is role:<namespace>/<name>, each part 1 to 63 characters of [A-Za-z0-9_.-]",
                )));
            }
            if !names.insert(role.name.to_lowercase()) {
                return Err(in_role(PolicyError::new("a second role of this name")));
            }
            if role.description.len() > MAX_DESCRIPTION {
                return Err(in_role(PolicyError::new(format!(
                    "a description longer than the {MAX_DESCRIPTION} bytes allowed"
                ))));
            }
            members += role.members.len();
            if members > MAX_MEMBERS {
                return Err(in_role(PolicyError::new(format!(
                    "more than the {MAX_MEMBERS} members allowed in all roles"
                ))));
            }
            if let Some(problem) = role.members.iter().find_map(|m| member_problem(m)) {
                return Err(in_role(PolicyError::new(problem)));
            }
            rules += role.rules.len();
            if rules > MAX_RULES {
                return Err(in_role(PolicyError::new(format!(
                    "more than the {MAX_RULES} rules allowed in all roles"
                ))));
            }
            for (i, rule) in role.rules.iter().enumerate() {
                rule.validate(perms).map_err(|e| in_role(e.at_rule(i)))?;
            }
        }
        Ok(())
    }

    /// Decides whether `who` holds `permission` (see the module
    /// documentation for the order of precedence).
    pub fn decide(&self, perms: &Permissions, who: &Subject<'_>, permission: &str) -> Decision {
        let Some(info) = perms.get(permission) else {
            return Decision::Deny;
        };
        if who.superuser {
            return Decision::Allow;
        }
        if let Some(allowed) = who.restricted_to
            && !allowed.iter().any(|p| p == permission)
        {
            return Decision::Deny;
        }
        let refs: HashSet<&str> = who.refs.iter().map(String::as_str).collect();
        let is_member = |m: &String| (m == "*" && !refs.is_empty()) || refs.contains(m.as_str());
        let mut allowed = false;
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        for role in &self.roles {
            if !role.members.iter().any(is_member) {
                continue;
            }
            for rule in role.rules.iter().filter(|r| r.covers(info)) {
                let conditions = match (&rule.conditions, &info.resource_type) {
                    (None, _) => None,
                    (Some(c), Some(rt)) if c.is_on(rt) => Some(c),
                    // Conditions that cannot apply here (an unvalidated
                    // policy): an allow is ignored, a deny denies.
                    (Some(_), _) if rule.effect == Effect::Allow => continue,
                    (Some(_), _) => return Decision::Deny,
                };
                match (rule.effect, conditions) {
                    (Effect::Deny, None) => return Decision::Deny,
                    (Effect::Deny, Some(c)) => denies.push(c),
                    (Effect::Allow, None) => allowed = true,
                    (Effect::Allow, Some(c)) => allows.push(c),
                }
            }
        }
        // Once each (roles often repeat a condition, and each copy would
        // repeat the caller's refs in the predicate), `$ownerRefs` expanded.
        let expand = |list: Vec<&Criteria>| -> Vec<Criteria> {
            let mut seen = HashSet::new();
            list.into_iter()
                .filter(|c| seen.insert(serde_json::to_string(c).unwrap_or_default()))
                .map(|c| c.expand_owner_refs(who.owner_refs))
                .collect()
        };
        let guard = if denies.is_empty() {
            None
        } else {
            Some(Criteria::Not(Box::new(Criteria::any_of(expand(denies)))))
        };
        match (allowed, allows.is_empty(), guard) {
            (true, _, None) => Decision::Allow,
            (true, _, Some(guard)) => Decision::Conditional(guard),
            (false, false, None) => Decision::Conditional(Criteria::any_of(expand(allows))),
            (false, false, Some(guard)) => Decision::Conditional(Criteria::AllOf(vec![
                Criteria::any_of(expand(allows)),
                guard,
            ])),
            (false, true, _) => Decision::Deny,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{
        CALLBOARD_POLICY_MANAGE, CATALOG_ENTITY, CATALOG_ENTITY_DELETE, CATALOG_ENTITY_READ,
        CATALOG_ENTITY_REFRESH, CATALOG_LOCATION_CREATE, CATALOG_LOCATION_READ,
        MAX_CONDITIONS_PER_RULE, MAX_CRITERIA_DEPTH,
    };
    use serde_json::json;

    fn refs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn rule(permission: &str, action: Option<Action>, effect: Effect, c: Option<Criteria>) -> Rule {
        Rule {
            permission: permission.into(),
            action,
            effect,
            conditions: c,
        }
    }

    fn cond(rule: &str, params: serde_json::Value) -> Criteria {
        Criteria::Rule {
            rule: rule.into(),
            resource_type: CATALOG_ENTITY.into(),
            params,
        }
    }

    fn role(name: &str, members: &[&str], rules: Vec<Rule>) -> Role {
        Role {
            name: name.into(),
            description: String::new(),
            members: refs(members),
            rules,
        }
    }

    fn secret() -> Criteria {
        cond("HAS_LABEL", json!({"label": "secret"}))
    }

    fn owned_by(claims: &[&str]) -> Criteria {
        cond("IS_ENTITY_OWNER", json!({ "claims": claims }))
    }

    /// The default policy plus a team role, contractors (denied location
    /// reads and secret entities), and a CI token's role.
    fn setup() -> (Permissions, Policy) {
        let mut perms = Permissions::builtin();
        perms
            .with_plugin("cost", "cost.reports.read", Action::Read)
            .unwrap();
        let mut policy = Policy::default_policy(&refs(&["user:default/root"]));
        policy.roles.extend([
            role(
                "role:default/team-a",
                &["group:default/team-a"],
                vec![
                    rule(CATALOG_LOCATION_CREATE, None, Effect::Allow, None),
                    rule("cost.reports.read", None, Effect::Allow, None),
                ],
            ),
            role(
                "role:default/contractors",
                &["group:default/contractors"],
                vec![
                    rule(CATALOG_LOCATION_READ, None, Effect::Deny, None),
                    rule(
                        CATALOG_ENTITY,
                        Some(Action::Read),
                        Effect::Deny,
                        Some(secret()),
                    ),
                    rule(
                        CATALOG_ENTITY,
                        Some(Action::Update),
                        Effect::Deny,
                        Some(secret()),
                    ),
                ],
            ),
            role(
                "role:default/ci",
                &["token:ci"],
                vec![
                    rule(CATALOG_LOCATION_CREATE, None, Effect::Allow, None),
                    rule(
                        CATALOG_ENTITY,
                        Some(Action::Delete),
                        Effect::Allow,
                        Some(cond("IS_ENTITY_KIND", json!({"kinds": ["Location"]}))),
                    ),
                ],
            ),
        ]);
        policy.validate(&perms).unwrap();
        (perms, policy)
    }

    fn user(refs: &[String]) -> Subject<'_> {
        Subject {
            refs,
            owner_refs: refs,
            superuser: false,
            restricted_to: None,
        }
    }

    #[test]
    fn decision_matrix() {
        let (perms, policy) = setup();
        let decide = |who: &Subject<'_>, p: &str| policy.decide(&perms, who, p);

        let alice = refs(&["user:default/alice", "group:default/team-a"]);
        let bob = refs(&["user:default/bob", "group:default/team-b"]);
        let root = refs(&["user:default/root"]);
        let (alice, bob, root) = (user(&alice), user(&bob), user(&root));

        // Everyone reads; owners change what they own, with their own refs.
        assert_eq!(decide(&alice, CATALOG_ENTITY_READ), Decision::Allow);
        assert_eq!(
            decide(&alice, CATALOG_ENTITY_DELETE),
            Decision::Conditional(owned_by(&["user:default/alice", "group:default/team-a"]))
        );
        // Another team's member gets its own claims, never team-a's.
        assert_eq!(
            decide(&bob, CATALOG_ENTITY_REFRESH),
            Decision::Conditional(owned_by(&["user:default/bob", "group:default/team-b"]))
        );
        // Team roles: alice's team may add locations and read cost reports, bob's not.
        assert_eq!(decide(&alice, CATALOG_LOCATION_CREATE), Decision::Allow);
        assert_eq!(decide(&alice, "cost.reports.read"), Decision::Allow);
        assert_eq!(decide(&bob, CATALOG_LOCATION_CREATE), Decision::Deny);
        assert_eq!(decide(&bob, "cost.reports.read"), Decision::Deny);
        assert_eq!(decide(&bob, CALLBOARD_POLICY_MANAGE), Decision::Deny);

        // The admin role's `*` covers everything, plugins' permissions too;
        // its unconditional allow outweighs everyone's conditional one.
        for p in perms.all() {
            assert_eq!(decide(&root, &p.name), Decision::Allow, "{}", p.name);
        }
        // An unknown permission is denied to anyone, superusers included.
        let superuser = Subject {
            refs: &[],
            owner_refs: &[],
            superuser: true,
            restricted_to: None,
        };
        for who in [&alice, &root, &superuser] {
            assert_eq!(decide(who, "catalog.entity.nope"), Decision::Deny);
        }
        // The superuser needs no role.
        assert_eq!(decide(&superuser, CALLBOARD_POLICY_MANAGE), Decision::Allow);
        assert_eq!(decide(&superuser, "cost.reports.read"), Decision::Allow);
        // A guest (no refs) is not covered by `*`.
        let guest = user(&[]);
        assert_eq!(decide(&guest, CATALOG_ENTITY_READ), Decision::Deny);

        // A restricted token: only its list can be allowed, whatever its roles say.
        let ci = refs(&["token:ci"]);
        let only = refs(&[CATALOG_ENTITY_READ, CATALOG_ENTITY_DELETE]);
        let token = Subject {
            refs: &ci,
            owner_refs: &[],
            superuser: false,
            restricted_to: Some(&only),
        };
        assert_eq!(decide(&token, CATALOG_ENTITY_READ), Decision::Allow);
        assert_eq!(decide(&token, CATALOG_LOCATION_CREATE), Decision::Deny);
        // Two conditional allows: its own role's, and everyone's owner rule
        // (a token owns nothing).
        assert_eq!(
            decide(&token, CATALOG_ENTITY_DELETE),
            Decision::Conditional(Criteria::AnyOf(vec![
                owned_by(&[]),
                cond("IS_ENTITY_KIND", json!({"kinds": ["Location"]})),
            ]))
        );
        let unrestricted = Subject {
            restricted_to: None,
            ..token
        };
        assert_eq!(
            decide(&unrestricted, CATALOG_LOCATION_CREATE),
            Decision::Allow
        );

        // Deny overrides: contractors may not read locations, though everyone may.
        let carol = refs(&[
            "user:default/carol",
            "group:default/team-a",
            "group:default/contractors",
        ]);
        let carol = user(&carol);
        assert_eq!(decide(&carol, CATALOG_LOCATION_READ), Decision::Deny);
        assert_eq!(decide(&carol, CATALOG_LOCATION_CREATE), Decision::Allow);
        // A conditional deny under an unconditional allow.
        assert_eq!(
            decide(&carol, CATALOG_ENTITY_READ),
            Decision::Conditional(Criteria::Not(Box::new(secret())))
        );
        // A conditional allow joined with a conditional deny.
        assert_eq!(
            decide(&carol, CATALOG_ENTITY_REFRESH),
            Decision::Conditional(Criteria::AllOf(vec![
                owned_by(&[
                    "user:default/carol",
                    "group:default/team-a",
                    "group:default/contractors"
                ]),
                Criteria::Not(Box::new(secret())),
            ]))
        );
        // The same condition from two roles appears once.
        let mut twice = policy.clone();
        twice.roles[1].members.push("*".into());
        twice.roles[1].rules = twice.roles[0].rules.clone();
        twice.roles[1].rules.retain(|r| r.conditions.is_some());
        assert_eq!(
            twice.decide(&perms, &bob, CATALOG_ENTITY_DELETE),
            policy.decide(&perms, &bob, CATALOG_ENTITY_DELETE)
        );
        // Only a conditional deny: nothing allows.
        let mut no_everyone = policy.clone();
        no_everyone.roles.remove(0);
        assert_eq!(
            no_everyone.decide(&perms, &carol, CATALOG_ENTITY_READ),
            Decision::Deny
        );
    }

    #[test]
    fn conditions_that_cannot_apply_fail_closed() {
        let perms = Permissions::builtin();
        let everyone = |rules| Policy {
            roles: vec![role("role:default/x", &["*"], rules)],
        };
        let alice = refs(&["user:default/alice"]);
        let alice = user(&alice);
        let allow_all = rule("*", None, Effect::Allow, None);
        // On a basic permission (validation refuses both).
        let p = everyone(vec![
            allow_all.clone(),
            rule(CATALOG_LOCATION_CREATE, None, Effect::Allow, Some(secret())),
        ]);
        assert!(p.validate(&perms).is_err());
        assert_eq!(
            p.decide(&perms, &alice, CATALOG_LOCATION_CREATE),
            Decision::Allow
        );
        let p = everyone(vec![
            allow_all,
            rule(CATALOG_LOCATION_CREATE, None, Effect::Deny, Some(secret())),
        ]);
        assert_eq!(
            p.decide(&perms, &alice, CATALOG_LOCATION_CREATE),
            Decision::Deny
        );
        // On another resource type than the permission's.
        let other = Criteria::Rule {
            rule: "HAS_LABEL".into(),
            resource_type: "scaffolder-template".into(),
            params: json!({"label": "x"}),
        };
        let p = everyone(vec![rule(
            CATALOG_ENTITY_READ,
            None,
            Effect::Allow,
            Some(other),
        )]);
        assert_eq!(
            p.decide(&perms, &alice, CATALOG_ENTITY_READ),
            Decision::Deny
        );
    }

    fn error_of(policy: &Policy) -> String {
        let perms = Permissions::builtin();
        policy.validate(&perms).unwrap_err().to_string()
    }

    #[test]
    fn validation_names_the_role_and_rule() {
        let ok = rule(CATALOG_ENTITY_READ, None, Effect::Allow, None);
        let one = |r: Rule| Policy {
            roles: vec![role(
                "role:default/devs",
                &["group:default/devs"],
                vec![ok.clone(), r],
            )],
        };
        let cases = [
            (
                rule("catalog.entity.reed", None, Effect::Allow, None),
                "unknown permission or resource type \"catalog.entity.reed\"",
            ),
            (
                rule("policy-entity", Some(Action::Read), Effect::Allow, None),
                "unknown permission or resource type \"policy-entity\"",
            ),
            (
                rule(CATALOG_ENTITY, None, Effect::Allow, None),
                "resource type \"catalog-entity\" without an action",
            ),
            (
                rule(
                    CATALOG_ENTITY_READ,
                    Some(Action::Delete),
                    Effect::Allow,
                    None,
                ),
                "action delete on \"catalog.entity.read\", whose action is read",
            ),
            (
                rule(CATALOG_LOCATION_CREATE, None, Effect::Allow, Some(secret())),
                "conditions on the basic permission \"catalog.location.create\"",
            ),
            (
                rule("*", None, Effect::Allow, Some(secret())),
                "conditions on \"*\"",
            ),
            (
                rule(
                    CATALOG_ENTITY_READ,
                    None,
                    Effect::Allow,
                    Some(cond("IS_SHINY", json!({}))),
                ),
                "unknown rule \"IS_SHINY\"",
            ),
            (
                rule(
                    CATALOG_ENTITY_READ,
                    None,
                    Effect::Allow,
                    Some(cond("IS_ENTITY_KIND", json!({"kind": "x"}))),
                ),
                "IS_ENTITY_KIND: bad params",
            ),
        ];
        for (bad, why) in cases {
            let err = error_of(&one(bad));
            assert!(err.starts_with("role role:default/devs, rule 2: "), "{err}");
            assert!(err.contains(why), "{why}: {err}");
        }

        let roles = |roles: Vec<Role>| Policy { roles };
        for (policy, want) in [
            (
                roles(vec![role("devs", &[], vec![])]),
                "role devs: a role name is role:<namespace>/<name>",
            ),
            (
                roles(vec![role("role:default/", &[], vec![])]),
                "a role name is",
            ),
            (
                roles(vec![
                    role("role:default/a", &[], vec![]),
                    role("role:default/A", &[], vec![]),
                ]),
                "role role:default/A: a second role of this name",
            ),
            (
                roles(vec![role(
                    "role:default/a",
                    &["User:default/Alice"],
                    vec![],
                )]),
                "member \"User:default/Alice\"",
            ),
            (
                roles(vec![role("role:default/a", &["alice"], vec![])]),
                "member \"alice\"",
            ),
            (
                roles(vec![role("role:default/a", &["role:default/b"], vec![])]),
                "member \"role:default/b\"",
            ),
        ] {
            let err = error_of(&policy);
            assert!(err.contains(want), "{want}: {err}");
        }
        // Members may be users, groups, tokens and `*`.
        let fine = roles(vec![role(
            "role:default/a",
            &[
                "*",
                "user:default/alice",
                "group:ops/team_a.x",
                "token:ci-deploy",
            ],
            vec![ok],
        )]);
        fine.validate(&Permissions::builtin()).unwrap();
    }

    #[test]
    fn validation_refuses_past_the_bounds() {
        let perms = Permissions::builtin();
        let named = |i: usize| format!("role:default/r{i}");
        let many_roles = Policy {
            roles: (0..=MAX_ROLES)
                .map(|i| role(&named(i), &[], vec![]))
                .collect(),
        };
        assert!(error_of(&many_roles).contains("1001 roles, more than the 1000"));
        let at_bound = Policy {
            roles: many_roles.roles[..MAX_ROLES].to_vec(),
        };
        at_bound.validate(&perms).unwrap();

        let member = |i: usize| format!("user:default/u{i}");
        let members: Vec<String> = (0..=MAX_MEMBERS).map(member).collect();
        let mut policy = Policy {
            roles: vec![
                Role {
                    members: members[..MAX_MEMBERS / 2].to_vec(),
                    ..role(&named(0), &[], vec![])
                },
                Role {
                    members: members[MAX_MEMBERS / 2..].to_vec(),
                    ..role(&named(1), &[], vec![])
                },
            ],
        };
        let err = error_of(&policy);
        assert!(
            err.contains("role role:default/r1: more than the 10000 members"),
            "{err}"
        );
        policy.roles[1].members.pop();
        policy.validate(&perms).unwrap();

        let read = rule(CATALOG_ENTITY_READ, None, Effect::Allow, None);
        let mut policy = Policy {
            roles: vec![role(&named(0), &[], vec![read; MAX_RULES + 1])],
        };
        assert!(error_of(&policy).contains("more than the 10000 rules"));
        policy.roles[0].rules.pop();
        policy.validate(&perms).unwrap();

        let mut deep = secret();
        for _ in 0..MAX_CRITERIA_DEPTH {
            deep = Criteria::Not(Box::new(deep));
        }
        let wide = Criteria::AnyOf(vec![secret(); MAX_CONDITIONS_PER_RULE + 1]);
        for (c, want) in [
            (deep, "deeper than the 8"),
            (wide, "more than the 64 conditions"),
        ] {
            let policy = Policy {
                roles: vec![role(
                    &named(0),
                    &[],
                    vec![rule(CATALOG_ENTITY_READ, None, Effect::Allow, Some(c))],
                )],
            };
            let err = error_of(&policy);
            assert!(err.contains("rule 1: ") && err.contains(want), "{err}");
        }
    }

    #[test]
    fn the_stored_document_is_strict_json() {
        let (_, policy) = setup();
        let text = serde_json::to_string(&policy).unwrap();
        let back: Policy = serde_json::from_str(&text).unwrap();
        assert_eq!(back, policy);
        let doc = json!({"roles": [{"name": "role:default/a", "members": ["*"], "rules": [
            {"permission": "catalog-entity", "action": "read", "effect": "allow",
             "conditions": {"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity", "params": {"claims": ["$ownerRefs"]}}}
        ]}]});
        let parsed: Policy = serde_json::from_value(doc).unwrap();
        assert_eq!(parsed.roles[0].rules[0].action, Some(Action::Read));
        parsed.validate(&Permissions::builtin()).unwrap();
        for bad in [
            json!({"roles": [], "extra": 1}),
            json!({"roles": [{"name": "role:default/a", "owner": "x"}]}),
            json!({"roles": [{"name": "role:default/a", "rules": [{"permission": "x", "effect": "maybe"}]}]}),
            json!({"roles": [{"name": "role:default/a", "rules": [{"permission": "x", "action": "write", "effect": "allow"}]}]}),
        ] {
            assert!(
                serde_json::from_value::<Policy>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
