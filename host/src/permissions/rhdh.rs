//! Red Hat Developer Hub's policy files: the CSV of roles and rules, and the
//! conditional policies (YAML or JSON).
//!
//! CSV lines are `p, <role>, <permission name or resource type>, <action>,
//! <allow|deny>` and `g, <user or group ref>, <role>`; spaces around commas,
//! `#` comments, blank lines and double-quoted fields are accepted. A
//! conditional policy is a document `{result: CONDITIONAL, roleEntityRef,
//! pluginId, resourceType, permissionMapping: [actions], conditions}`; a
//! file holds several (`---`-separated YAML documents, or a YAML/JSON list).
//!
//! Callboard's own forms, which RHDH lacks, are written the same way: `*` as
//! a permission (every permission) or as an action (every action), `*` as a
//! member (every signed-in principal), and in a conditional document
//! `permission: <name>` (a named permission rather than the whole resource
//! type) and `effect: deny` (a conditional deny).
//!
//! The export is canonical: rules on a named built-in permission carry no
//! action (the CSV writes the permission's own, which the import drops
//! again). `import(export(p)) == p` holds for a valid policy without
//! descriptions whose roles list their unconditional rules before their
//! conditional ones, and where every role has a member or an unconditional
//! rule (a role named only by conditional documents is placed after the
//! others; a role with neither members nor rules has no line at all).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::names::builtin_info;
use super::policy::{member_problem, valid_role_name};
use super::shown;
use super::{
    Action, CATALOG_ENTITY, Criteria, Effect, MAX_MEMBERS, MAX_ROLES, MAX_RULES, Policy,
    PolicyError, Role, Rule,
};

/// Largest CSV or conditional-policy text accepted.
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;

const CSV: &str = "CSV";
const CONDITIONAL: &str = "conditional policies";

/// One RHDH conditional policy.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConditionalDoc {
    result: String,
    role_entity_ref: String,
    plugin_id: String,
    resource_type: String,
    permission_mapping: Vec<Action>,
    conditions: Criteria,
    /// Callboard: a named permission instead of the whole resource type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permission: Option<String>,
    /// Callboard: `deny` for a conditional deny (RHDH's are all allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effect: Option<Effect>,
    /// RHDH's REST API numbers its policies; the number is not kept.
    #[serde(default, rename = "id", skip_serializing)]
    _id: Option<Value>,
}

/// The policy being imported, with its counts.
#[derive(Default)]
struct Builder {
    roles: Vec<Role>,
    /// Role index by lower-cased name.
    index: HashMap<String, usize>,
    /// (role index, member) pairs already added.
    members: HashSet<(usize, String)>,
    rules: usize,
}

impl Builder {
    /// The index of role `name`, added if new.
    fn role(&mut self, name: &str) -> Result<usize, PolicyError> {
        let key = name.to_lowercase();
        if let Some(&i) = self.index.get(&key) {
            return Ok(i);
        }
        if !valid_role_name(name) {
            return Err(PolicyError::new(format!(
                "\"{}\" is not a role name (role:<namespace>/<name>)",
                shown(name)
            )));
        }
        if self.roles.len() >= MAX_ROLES {
            return Err(PolicyError::new(format!(
                "more than the {MAX_ROLES} roles allowed"
            )));
        }
        self.roles.push(Role {
            name: name.to_owned(),
            description: String::new(),
            members: Vec::new(),
            rules: Vec::new(),
        });
        self.index.insert(key, self.roles.len() - 1);
        Ok(self.roles.len() - 1)
    }

    fn rule(&mut self, role: &str, rule: Rule) -> Result<(), PolicyError> {
        let i = self.role(role)?;
        if self.rules >= MAX_RULES {
            return Err(PolicyError::new(format!(
                "more than the {MAX_RULES} rules allowed"
            )));
        }
        self.rules += 1;
        self.roles[i].rules.push(rule);
        Ok(())
    }

    fn member(&mut self, role: &str, member: &str) -> Result<(), PolicyError> {
        let member = normalise_member(member);
        if let Some(problem) = member_problem(&member) {
            return Err(PolicyError::new(problem));
        }
        let i = self.role(role)?;
        if self.members.contains(&(i, member.clone())) {
            return Ok(());
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(PolicyError::new(format!(
                "more than the {MAX_MEMBERS} members allowed"
            )));
        }
        self.members.insert((i, member.clone()));
        self.roles[i].members.push(member);
        Ok(())
    }
}

/// A member ref as stored: lower-cased, `user:`/`group:` refs without a
/// namespace in `default`.
fn normalise_member(member: &str) -> String {
    let member = member.to_lowercase();
    match member.split_once(':') {
        Some((kind @ ("user" | "group"), name)) if !name.contains('/') => {
            format!("{kind}:default/{name}")
        }
        _ => member,
    }
}

/// The fields of one CSV line: comma-separated, trimmed, optionally
/// double-quoted (`""` inside quotes is a quote).
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    const MAX_FIELDS: usize = 8;
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut field = String::new();
        let more = if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err("a quoted field is not closed".into()),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            match chars.next() {
                None => false,
                Some(',') => true,
                Some(c) => return Err(format!("'{c}' after a quoted field")),
            }
        } else {
            let mut more = false;
            for c in chars.by_ref() {
                if c == ',' {
                    more = true;
                    break;
                }
                field.push(c);
            }
            field.truncate(field.trim_end().len());
            more
        };
        fields.push(field);
        if fields.len() > MAX_FIELDS {
            return Err(format!("more than {MAX_FIELDS} fields"));
        }
        if !more {
            return Ok(fields);
        }
    }
}

/// A field for a CSV line, quoted when it must be.
fn quote(field: &str) -> String {
    let plain = !field.is_empty()
        && field.trim() == field
        && !field.starts_with('#')
        && !field.contains([',', '"', '\n', '\r']);
    if plain {
        field.to_owned()
    } else {
        format!("\"{}\"", field.replace('"', "\"\""))
    }
}

/// The action a rule stores: none for a named built-in permission's own.
fn stored_action(permission: &str, action: Option<Action>) -> Option<Action> {
    match (builtin_info(permission), action) {
        (Some((_, own)), Some(a)) if own == a => None,
        _ => action,
    }
}

/// Imports RHDH's policy CSV and, optionally, its conditional policies (YAML
/// documents or a YAML/JSON list). The result is not yet checked against
/// the permission catalogue: call [`Policy::validate`] before storing it.
/// Errors name the file and line.
pub fn import(csv: &str, conditional: Option<&str>) -> Result<Policy, PolicyError> {
    for (name, text) in [(CSV, Some(csv)), (CONDITIONAL, conditional)] {
        if let Some(text) = text
            && text.len() > MAX_IMPORT_BYTES
        {
            return Err(PolicyError {
                source_name: Some(name),
                ..PolicyError::new(format!(
                    "{} bytes, more than the {MAX_IMPORT_BYTES} allowed",
                    text.len()
                ))
            });
        }
    }
    let mut b = Builder::default();
    for (n, line) in csv.lines().enumerate() {
        import_line(&mut b, line).map_err(|e| e.at_line(CSV, n + 1))?;
    }
    if let Some(text) = conditional {
        import_conditional(&mut b, text)?;
    }
    Ok(Policy { roles: b.roles })
}

fn import_line(b: &mut Builder, line: &str) -> Result<(), PolicyError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(());
    }
    let fields = split_fields(line).map_err(PolicyError::new)?;
    match fields.as_slice() {
        [p, role, permission, action, effect] if p == "p" => {
            let action = match action.to_lowercase().as_str() {
                "*" => None,
                a => Some(Action::parse(a).ok_or_else(|| {
                    PolicyError::new(format!(
                        "unknown action \"{}\" (create, read, update, delete, use or *)",
                        shown(action)
                    ))
                })?),
            };
            let effect = match effect.to_lowercase().as_str() {
                "allow" => Effect::Allow,
                "deny" => Effect::Deny,
                _ => {
                    return Err(PolicyError::new(format!(
                        "unknown effect \"{}\" (allow or deny)",
                        shown(effect)
                    )));
                }
            };
            if permission.is_empty() {
                return Err(PolicyError::new("an empty permission"));
            }
            let rule = Rule {
                permission: permission.clone(),
                action: stored_action(permission, action),
                effect,
                conditions: None,
            };
            b.rule(role, rule)
        }
        [g, member, role] if g == "g" => b.member(role, member),
        [kind, ..] if kind == "p" || kind == "g" => Err(PolicyError::new(format!(
            "a \"{kind}\" line has {} fields, not {}",
            fields.len(),
            if kind == "p" { 5 } else { 3 }
        ))),
        _ => Err(PolicyError::new(
            "a line is \"p, <role>, <permission>, <action>, <effect>\" or \"g, <member>, <role>\"",
        )),
    }
}

fn import_conditional(b: &mut Builder, text: &str) -> Result<(), PolicyError> {
    let docs = callboard_catalog::yaml::parse_documents(text).map_err(|e| PolicyError {
        source_name: Some(CONDITIONAL),
        line: e.line.map(|l| l as usize),
        ..PolicyError::new(e.message)
    })?;
    let mut count = 0usize;
    for doc in docs {
        let line = doc.line as usize;
        let items = match doc.value {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            one => vec![one],
        };
        for item in items {
            count += 1;
            let at = |e: PolicyError| e.at_line(CONDITIONAL, line);
            if count > MAX_RULES {
                return Err(at(PolicyError::new(format!(
                    "more than the {MAX_RULES} conditional policies allowed"
                ))));
            }
            let doc: ConditionalDoc = serde_json::from_value(item)
                .map_err(|e| at(PolicyError::new(format!("conditional policy {count}: {e}"))))?;
            import_doc(b, doc).map_err(|mut e| {
                e.message = format!("conditional policy {count}: {}", e.message);
                at(e)
            })?;
        }
    }
    Ok(())
}

fn import_doc(b: &mut Builder, doc: ConditionalDoc) -> Result<(), PolicyError> {
    let role = doc.role_entity_ref.as_str();
    let refuse = |m: String| Err(PolicyError::new(m).in_role(role));
    if doc.result != "CONDITIONAL" {
        return refuse(format!(
            "result \"{}\", not CONDITIONAL",
            shown(&doc.result)
        ));
    }
    if doc.plugin_id.is_empty() {
        return refuse("an empty pluginId".into());
    }
    if doc.permission_mapping.is_empty() || doc.permission_mapping.len() > Action::ALL.len() {
        return refuse(format!(
            "permissionMapping lists {} actions, not 1 to {}",
            doc.permission_mapping.len(),
            Action::ALL.len()
        ));
    }
    if !doc.conditions.is_on(&doc.resource_type) {
        return refuse(format!(
            "conditions on another resource type than \"{}\"",
            doc.resource_type
        ));
    }
    let permission = doc.permission.unwrap_or(doc.resource_type);
    for action in doc.permission_mapping {
        let rule = Rule {
            permission: permission.clone(),
            action: stored_action(&permission, Some(action)),
            effect: doc.effect.unwrap_or(Effect::Allow),
            conditions: Some(doc.conditions.clone()),
        };
        b.rule(role, rule).map_err(|e| e.in_role(role))?;
    }
    Ok(())
}

/// Exports a policy as RHDH's CSV and conditional policies (a YAML list,
/// `[]` when there are none). Descriptions are not exported (RHDH's files
/// have no place for them).
pub fn export(p: &Policy) -> (String, String) {
    let mut csv = String::new();
    let mut docs = Vec::new();
    for role in &p.roles {
        if !csv.is_empty() && !csv.ends_with("\n\n") {
            csv.push('\n');
        }
        let name = quote(&role.name);
        for rule in &role.rules {
            let builtin = builtin_info(&rule.permission);
            let action = rule.action.or(builtin.map(|(_, a)| a));
            let Some(conditions) = &rule.conditions else {
                let action = action.map_or("*", Action::as_str);
                let effect = match rule.effect {
                    Effect::Allow => "allow",
                    Effect::Deny => "deny",
                };
                let _ = writeln!(
                    csv,
                    "p, {name}, {}, {action}, {effect}",
                    quote(&rule.permission)
                );
                continue;
            };
            let named = rule.permission.contains('.') || rule.permission == "*";
            let resource_type = match (named, builtin) {
                (false, _) => rule.permission.clone(),
                (true, Some((Some(rt), _))) => rt.to_owned(),
                (true, _) => first_resource_type(conditions).unwrap_or_default(),
            };
            let plugin_id = if resource_type == CATALOG_ENTITY {
                "catalog".to_owned()
            } else {
                resource_type
                    .split(['-', '.'])
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            };
            docs.push(ConditionalDoc {
                result: "CONDITIONAL".to_owned(),
                role_entity_ref: role.name.clone(),
                plugin_id,
                resource_type,
                permission_mapping: vec![action.unwrap_or(Action::Use)],
                conditions: conditions.clone(),
                permission: named.then(|| rule.permission.clone()),
                effect: (rule.effect == Effect::Deny).then_some(Effect::Deny),
                _id: None,
            });
        }
        for member in &role.members {
            let _ = writeln!(csv, "g, {}, {name}", quote(member));
        }
    }
    let yaml = if docs.is_empty() {
        "[]\n".to_owned()
    } else {
        // YAML is a superset of JSON: should the YAML writer fail, JSON is
        // still a valid conditional-policies file.
        serde_saphyr::to_string(&docs)
            .ok()
            .or_else(|| serde_json::to_string_pretty(&docs).ok())
            .unwrap_or_default()
    };
    (csv, yaml)
}

fn first_resource_type(c: &Criteria) -> Option<String> {
    match c {
        Criteria::AllOf(items) | Criteria::AnyOf(items) => {
            items.iter().find_map(first_resource_type)
        }
        Criteria::Not(inner) => first_resource_type(inner),
        Criteria::Rule { resource_type, .. } => Some(resource_type.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{
        CATALOG_ENTITY_READ, CATALOG_LOCATION_CREATE, Decision, Permissions, Subject,
    };
    use serde_json::json;

    const CSV_TEXT: &str = r#"
# Roles exported from Red Hat Developer Hub
p, role:default/developers, catalog-entity, read, allow
p, role:default/developers, catalog.entity.create, create, allow
p,role:default/developers,catalog.location.read,read,allow
p, role:default/developers, catalog.location.create, create, allow

g, group:default/team-a, role:default/developers
g, user:default/Alice, role:default/developers
g, group:team-b, role:default/developers

  # auditors read everything and delete nothing
p, role:default/auditors, callboard.audit.read, read, allow
p, role:default/auditors, catalog-entity, delete, deny
p, role:default/auditors, "cost.reports.read", read, allow
g, user:default/bob, role:default/auditors
g, user:default/bob, role:default/auditors
"#;

    const CONDITIONAL_YAML: &str = r#"
---
result: CONDITIONAL
roleEntityRef: 'role:default/developers'
pluginId: catalog
resourceType: catalog-entity
permissionMapping:
  - update
  - delete
conditions:
  rule: IS_ENTITY_OWNER
  resourceType: catalog-entity
  params:
    claims:
      - $ownerRefs
---
id: 7
result: CONDITIONAL
roleEntityRef: role:default/auditors
pluginId: catalog
resourceType: catalog-entity
permissionMapping: [read]
conditions:
  anyOf:
    - rule: IS_ENTITY_KIND
      resourceType: catalog-entity
      params: {kinds: [Component, API]}
    - not:
        rule: HAS_ANNOTATION
        resourceType: catalog-entity
        params:
          annotation: backstage.io/managed-by-location
"#;

    fn rule(permission: &str, action: Option<Action>, effect: Effect, c: Option<Criteria>) -> Rule {
        Rule {
            permission: permission.into(),
            action,
            effect,
            conditions: c,
        }
    }

    #[test]
    fn imports_a_realistic_csv_and_conditional_policies() {
        let policy = import(CSV_TEXT, Some(CONDITIONAL_YAML)).unwrap();
        let owner = Criteria::Rule {
            rule: "IS_ENTITY_OWNER".into(),
            resource_type: CATALOG_ENTITY.into(),
            params: json!({"claims": ["$ownerRefs"]}),
        };
        let kinds: Criteria = serde_json::from_value(json!({"anyOf": [
            {"rule": "IS_ENTITY_KIND", "resourceType": "catalog-entity", "params": {"kinds": ["Component", "API"]}},
            {"not": {"rule": "HAS_ANNOTATION", "resourceType": "catalog-entity", "params": {"annotation": "backstage.io/managed-by-location"}}}
        ]}))
        .unwrap();
        let want = Policy {
            roles: vec![
                Role {
                    name: "role:default/developers".into(),
                    description: String::new(),
                    members: vec![
                        "group:default/team-a".into(),
                        "user:default/alice".into(),
                        "group:default/team-b".into(),
                    ],
                    rules: vec![
                        rule(CATALOG_ENTITY, Some(Action::Read), Effect::Allow, None),
                        rule("catalog.entity.create", None, Effect::Allow, None),
                        rule("catalog.location.read", None, Effect::Allow, None),
                        rule(CATALOG_LOCATION_CREATE, None, Effect::Allow, None),
                        rule(
                            CATALOG_ENTITY,
                            Some(Action::Update),
                            Effect::Allow,
                            Some(owner.clone()),
                        ),
                        rule(
                            CATALOG_ENTITY,
                            Some(Action::Delete),
                            Effect::Allow,
                            Some(owner),
                        ),
                    ],
                },
                Role {
                    name: "role:default/auditors".into(),
                    description: String::new(),
                    members: vec!["user:default/bob".into()],
                    rules: vec![
                        rule("callboard.audit.read", None, Effect::Allow, None),
                        rule(CATALOG_ENTITY, Some(Action::Delete), Effect::Deny, None),
                        rule("cost.reports.read", Some(Action::Read), Effect::Allow, None),
                        rule(
                            CATALOG_ENTITY,
                            Some(Action::Read),
                            Effect::Allow,
                            Some(kinds),
                        ),
                    ],
                },
            ],
        };
        assert_eq!(policy, want);

        // Valid once the plugin that declares `cost.reports.read` is installed.
        let mut perms = Permissions::builtin();
        let err = policy.validate(&perms).unwrap_err().to_string();
        assert!(
            err.starts_with("role role:default/auditors, rule 3: unknown permission"),
            "{err}"
        );
        perms
            .with_plugin("cost", "cost.reports.read", Action::Read)
            .unwrap();
        policy.validate(&perms).unwrap();

        // And it decides as RHDH would.
        let alice = vec![
            "user:default/alice".to_owned(),
            "group:default/team-a".to_owned(),
        ];
        let who = Subject {
            refs: &alice,
            owner_refs: &alice,
            superuser: false,
            restricted_to: None,
        };
        assert_eq!(
            policy.decide(&perms, &who, CATALOG_ENTITY_READ),
            Decision::Allow
        );
        assert!(matches!(
            policy.decide(&perms, &who, "catalog.entity.delete"),
            Decision::Conditional(Criteria::Rule { .. })
        ));
        assert_eq!(
            policy.decide(&perms, &who, "callboard.audit.read"),
            Decision::Deny
        );
    }

    #[test]
    fn conditional_policies_may_be_a_json_or_yaml_list() {
        let doc = json!({"result": "CONDITIONAL", "roleEntityRef": "role:default/a", "pluginId": "catalog",
            "resourceType": "catalog-entity", "permissionMapping": ["read"],
            "conditions": {"rule": "HAS_LABEL", "resourceType": "catalog-entity", "params": {"label": "x"}}});
        let json_list = serde_json::to_string(&json!([doc, doc])).unwrap();
        let policy = import("", Some(&json_list)).unwrap();
        assert_eq!(policy.roles.len(), 1);
        assert_eq!(policy.roles[0].rules.len(), 2);
        let yaml_list = "- result: CONDITIONAL\n  roleEntityRef: role:default/a\n  pluginId: catalog\n  resourceType: catalog-entity\n  permissionMapping: [read]\n  conditions: {rule: HAS_LABEL, resourceType: catalog-entity, params: {label: x}}\n";
        assert_eq!(import("", Some(yaml_list)).unwrap().roles[0].rules.len(), 1);
        assert_eq!(import("", Some("")).unwrap(), Policy::default());
        assert_eq!(import("", Some("[]")).unwrap(), Policy::default());
    }

    #[test]
    fn export_round_trips() {
        let mut perms = Permissions::builtin();
        perms
            .with_plugin("cost", "cost.reports.read", Action::Read)
            .unwrap();
        let mut policy = import(CSV_TEXT, Some(CONDITIONAL_YAML)).unwrap();
        policy.roles.extend(
            Policy::default_policy(&["user:default/root".to_owned()])
                .roles
                .into_iter()
                .map(|r| Role {
                    description: String::new(),
                    ..r
                }),
        );
        // A conditional deny and a token member: Callboard's own forms.
        policy.roles.push(Role {
            name: "role:default/ci".into(),
            description: String::new(),
            members: vec!["token:ci-deploy".into()],
            rules: vec![
                rule("*", Some(Action::Read), Effect::Allow, None),
                rule(
                    CATALOG_ENTITY,
                    Some(Action::Read),
                    Effect::Deny,
                    Some(Criteria::Rule {
                        rule: "HAS_LABEL".into(),
                        resource_type: CATALOG_ENTITY.into(),
                        params: json!({"label": "secret"}),
                    }),
                ),
            ],
        });
        policy.validate(&perms).unwrap();
        let (csv, yaml) = export(&policy);
        assert!(
            csv.contains("p, role:default/everyone, catalog.entity.read, read, allow\n"),
            "{csv}"
        );
        assert!(
            csv.contains("p, role:default/admin, *, *, allow\n"),
            "{csv}"
        );
        assert!(csv.contains("g, *, role:default/everyone\n"), "{csv}");
        assert!(
            csv.contains("g, token:ci-deploy, role:default/ci\n"),
            "{csv}"
        );
        assert!(yaml.contains("permission: catalog.entity.delete"), "{yaml}");
        assert!(yaml.contains("effect: deny"), "{yaml}");
        assert_eq!(import(&csv, Some(&yaml)).unwrap(), policy, "{csv}\n{yaml}");

        let default = Policy {
            roles: Policy::default_policy(&[])
                .roles
                .into_iter()
                .map(|r| Role {
                    description: String::new(),
                    ..r
                })
                .collect(),
        };
        let (csv, yaml) = export(&default);
        // The admin role, without members, is kept by its `*` rule.
        assert_eq!(import(&csv, Some(&yaml)).unwrap(), default);
        assert_eq!(
            export(&Policy::default()),
            (String::new(), "[]\n".to_owned())
        );
    }

    #[test]
    fn fields_are_quoted_when_they_must_be() {
        for field in ["plain", "a, b", "say \"hi\"", " padded ", "#hash", ""] {
            let line = format!("p, {}, x", quote(field));
            assert_eq!(split_fields(&line).unwrap(), ["p", field, "x"], "{line}");
        }
        assert_eq!(quote("role:default/a"), "role:default/a");
        assert!(split_fields("\"a\" b, c").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "p, role:default/a, catalog-entity, reed, allow",
                "CSV line 3: unknown action \"reed\"",
            ),
            (
                "p, role:default/a, catalog-entity, read, permit",
                "CSV line 3: unknown effect \"permit\"",
            ),
            (
                "p, role:default/a, catalog-entity, read",
                "CSV line 3: a \"p\" line has 4 fields, not 5",
            ),
            (
                "g, user:default/x",
                "CSV line 3: a \"g\" line has 2 fields, not 3",
            ),
            ("x, y", "CSV line 3: a line is"),
            (
                "g, user:default/x, admins",
                "CSV line 3: \"admins\" is not a role name",
            ),
            (
                "g, user:default/x y, role:default/a",
                "CSV line 3: member \"user:default/x y\"",
            ),
            (
                "p, \"role:default/a, catalog-entity, read, allow",
                "CSV line 3: a quoted field is not closed",
            ),
        ];
        for (line, want) in cases {
            let text = format!("# header\n\n{line}\n");
            let err = import(&text, None).unwrap_err().to_string();
            assert!(err.starts_with(want), "{want}: {err}");
        }
        let doc = |result: &str, mapping: &str| {
            format!(
                "---\nresult: CONDITIONAL\nroleEntityRef: role:default/a\npluginId: catalog\nresourceType: catalog-entity\npermissionMapping: [read]\nconditions: {{rule: HAS_LABEL, resourceType: catalog-entity, params: {{label: x}}}}\n---\nresult: {result}\nroleEntityRef: role:default/a\npluginId: catalog\nresourceType: catalog-entity\npermissionMapping: {mapping}\nconditions: {{rule: HAS_LABEL, resourceType: catalog-entity, params: {{label: x}}}}\n"
            )
        };
        for (text, want) in [
            (
                doc("ALLOW", "[read]"),
                "conditional policies line 9, role role:default/a: conditional policy 2: result \"ALLOW\"",
            ),
            (
                doc("CONDITIONAL", "[]"),
                "conditional policies line 9, role role:default/a: conditional policy 2: permissionMapping lists 0",
            ),
            (
                doc("CONDITIONAL", "[write]"),
                "conditional policies line 9: conditional policy 2: unknown variant `write`",
            ),
            ("result: [".to_owned(), "conditional policies line"),
        ] {
            let err = import("", Some(&text)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{want}: {err}");
        }
    }

    #[test]
    fn imports_are_bounded() {
        // Refused text is echoed cut short.
        let long = format!("g, user:default/x, {}", "r".repeat(100_000));
        let err = import(&long, None).unwrap_err().to_string();
        assert!(
            err.len() < 200 && err.contains("rrr...\" is not a role name"),
            "{err}"
        );
        let big = "#".repeat(MAX_IMPORT_BYTES + 1);
        let err = import(&big, None).unwrap_err().to_string();
        assert!(err.starts_with("CSV: "), "{err}");
        let roles: String = (0..=MAX_ROLES)
            .map(|i| format!("g, user:default/u, role:default/r{i}\n"))
            .collect();
        let err = import(&roles, None).unwrap_err().to_string();
        assert!(
            err.starts_with("CSV line 1001: more than the 1000 roles"),
            "{err}"
        );
        let members: String = (0..=MAX_MEMBERS)
            .map(|i| format!("g, user:default/u{i}, role:default/r\n"))
            .collect();
        let err = import(&members, None).unwrap_err().to_string();
        assert!(
            err.starts_with("CSV line 10001: more than the 10000 members"),
            "{err}"
        );
        let rules = "p, role:default/r, catalog-entity, read, allow\n".repeat(MAX_RULES + 1);
        let err = import(&rules, None).unwrap_err().to_string();
        assert!(
            err.starts_with("CSV line 10001: more than the 10000 rules"),
            "{err}"
        );
    }
}
