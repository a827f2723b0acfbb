//! The catalog's permission rules (Backstage's `catalogConditions`, RHDH's
//! names): their parameters, and their translation into the catalog's query
//! predicate.

use callboard_store::query::{Matcher, Predicate};
use serde::Deserialize;
use serde_json::Value;

use super::{CATALOG_ENTITY, Criteria, MAX_CRITERIA_DEPTH, OWNER_REFS, PolicyError, shown};

/// The catalog's permission rules (resource type `catalog-entity`).
pub const CATALOG_RULES: &[&str] = &[
    "IS_ENTITY_OWNER",
    "IS_ENTITY_KIND",
    "HAS_ANNOTATION",
    "HAS_LABEL",
    "HAS_METADATA",
    "HAS_SPEC",
];

/// Most values a list parameter (`claims`, `kinds`) holds as written.
pub const MAX_PARAM_VALUES: usize = 256;
/// Longest string parameter.
pub const MAX_PARAM_LEN: usize = 256;

/// A catalog permission rule with its parameters parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CatalogRule {
    IsEntityOwner {
        claims: Vec<String>,
    },
    IsEntityKind {
        kinds: Vec<String>,
    },
    HasAnnotation {
        annotation: String,
        value: Option<String>,
    },
    HasLabel {
        label: String,
    },
    HasMetadata {
        key: String,
        value: Option<String>,
    },
    HasSpec {
        key: String,
        value: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    claims: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kinds {
    kinds: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Annotation {
    annotation: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Label {
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyValue {
    key: String,
    value: Option<String>,
}

impl CatalogRule {
    pub(crate) fn parse(rule: &str, params: &Value) -> Result<Self, String> {
        fn read<T: serde::de::DeserializeOwned>(rule: &str, params: &Value) -> Result<T, String> {
            T::deserialize(params).map_err(|e| format!("{rule}: bad params: {e}"))
        }
        Ok(match rule {
            "IS_ENTITY_OWNER" => CatalogRule::IsEntityOwner {
                claims: read::<Claims>(rule, params)?.claims,
            },
            "IS_ENTITY_KIND" => CatalogRule::IsEntityKind {
                kinds: read::<Kinds>(rule, params)?.kinds,
            },
            "HAS_ANNOTATION" => {
                let a: Annotation = read(rule, params)?;
                CatalogRule::HasAnnotation {
                    annotation: a.annotation,
                    value: a.value,
                }
            }
            "HAS_LABEL" => CatalogRule::HasLabel {
                label: read::<Label>(rule, params)?.label,
            },
            "HAS_METADATA" => {
                let kv: KeyValue = read(rule, params)?;
                CatalogRule::HasMetadata {
                    key: kv.key,
                    value: kv.value,
                }
            }
            "HAS_SPEC" => {
                let kv: KeyValue = read(rule, params)?;
                CatalogRule::HasSpec {
                    key: kv.key,
                    value: kv.value,
                }
            }
            other => {
                return Err(format!(
                    "unknown rule \"{}\" (known: {})",
                    shown(other),
                    CATALOG_RULES.join(", ")
                ));
            }
        })
    }

    /// The bounds a stored policy keeps to (an expanded `$ownerRefs` may
    /// exceed the list bound; the store's own bounds apply to it).
    pub(crate) fn check_bounds(&self, rule: &str) -> Result<(), String> {
        let (list, names): (&[String], Vec<&String>) = match self {
            CatalogRule::IsEntityOwner { claims } => (claims, Vec::new()),
            CatalogRule::IsEntityKind { kinds } => (kinds, Vec::new()),
            CatalogRule::HasAnnotation { annotation, value } => {
                (&[], std::iter::once(annotation).chain(value).collect())
            }
            CatalogRule::HasLabel { label } => (&[], vec![label]),
            CatalogRule::HasMetadata { key, value } | CatalogRule::HasSpec { key, value } => {
                (&[], std::iter::once(key).chain(value).collect())
            }
        };
        if list.len() > MAX_PARAM_VALUES {
            return Err(format!(
                "{rule}: {} values, more than the {MAX_PARAM_VALUES} allowed",
                list.len()
            ));
        }
        if let Some(long) = list.iter().chain(names).find(|s| s.len() > MAX_PARAM_LEN) {
            return Err(format!(
                "{rule}: a parameter of {} bytes, longer than the {MAX_PARAM_LEN} allowed",
                long.len()
            ));
        }
        let path = match self {
            CatalogRule::HasAnnotation { annotation: k, .. }
            | CatalogRule::HasLabel { label: k }
            | CatalogRule::HasMetadata { key: k, .. }
            | CatalogRule::HasSpec { key: k, .. } => Some(k),
            _ => None,
        };
        if let Some(k) = path
            && (k.trim().is_empty() || k.chars().any(char::is_whitespace))
        {
            return Err(format!("{rule}: \"{k}\" is not a field name"));
        }
        Ok(())
    }

    fn to_predicate(&self) -> Result<Predicate, String> {
        let field = |key: String, value: &Option<String>| Predicate::Field {
            key: key.to_lowercase(),
            matcher: match value {
                Some(v) => Matcher::AnyOf(vec![v.to_lowercase()]),
                None => Matcher::Exists(true),
            },
        };
        let any_of = |key: &str, values: &[String]| {
            if values.is_empty() {
                // Never holds: both backends compile an empty `Any` to false.
                Predicate::Any(Vec::new())
            } else {
                let mut seen = std::collections::HashSet::new();
                let unique: Vec<String> = values
                    .iter()
                    .map(|v| v.to_lowercase())
                    .filter(|v| seen.insert(v.clone()))
                    .collect();
                Predicate::Field {
                    key: key.to_owned(),
                    matcher: Matcher::AnyOf(unique),
                }
            }
        };
        Ok(match self {
            CatalogRule::IsEntityOwner { claims } => {
                if claims.iter().any(|c| c == OWNER_REFS) {
                    return Err(format!(
                        "IS_ENTITY_OWNER: {OWNER_REFS} was not expanded before translation"
                    ));
                }
                any_of("relations.ownedby", claims)
            }
            CatalogRule::IsEntityKind { kinds } => any_of("kind", kinds),
            CatalogRule::HasAnnotation { annotation, value } => {
                field(format!("metadata.annotations.{annotation}"), value)
            }
            CatalogRule::HasLabel { label } => field(format!("metadata.labels.{label}"), &None),
            CatalogRule::HasMetadata { key, value } => field(format!("metadata.{key}"), value),
            CatalogRule::HasSpec { key, value } => field(format!("spec.{key}"), value),
        })
    }
}

/// The catalog predicate for criteria on `catalog-entity` (those of a
/// CONDITIONAL decision, `$ownerRefs` already expanded), within the store's
/// predicate bounds.
pub fn to_predicate(c: &Criteria) -> Result<Predicate, PolicyError> {
    fn walk(c: &Criteria, depth: usize) -> Result<Predicate, PolicyError> {
        // A decision nests the rules' criteria up to two levels deeper.
        if depth > MAX_CRITERIA_DEPTH + 2 {
            return Err(PolicyError::new(format!(
                "conditions nest deeper than the {} levels allowed",
                MAX_CRITERIA_DEPTH + 2
            )));
        }
        Ok(match c {
            Criteria::AllOf(items) => Predicate::All(
                items
                    .iter()
                    .map(|i| walk(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Criteria::AnyOf(items) => Predicate::Any(
                items
                    .iter()
                    .map(|i| walk(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Criteria::Not(inner) => Predicate::Not(Box::new(walk(inner, depth + 1)?)),
            Criteria::Rule {
                rule,
                resource_type,
                params,
            } => {
                if resource_type != CATALOG_ENTITY {
                    return Err(PolicyError::new(format!(
                        "condition {} is on resource type \"{}\", not {CATALOG_ENTITY}",
                        shown(rule),
                        shown(resource_type)
                    )));
                }
                CatalogRule::parse(rule, params)
                    .and_then(|r| r.to_predicate())
                    .map_err(PolicyError::new)?
            }
        })
    }
    let predicate = walk(c, 1)?;
    predicate
        .check_bounds("permission conditions")
        .map_err(|e| PolicyError::new(e.to_string()))?;
    Ok(predicate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(rule: &str, params: Value) -> Criteria {
        Criteria::Rule {
            rule: rule.into(),
            resource_type: CATALOG_ENTITY.into(),
            params,
        }
    }

    fn field(key: &str, matcher: Matcher) -> Predicate {
        Predicate::Field {
            key: key.into(),
            matcher,
        }
    }

    #[test]
    fn every_rule_translates_to_the_stores_predicate() {
        let cases = [
            (
                cond(
                    "IS_ENTITY_OWNER",
                    json!({"claims": ["Group:Default/Team-A", "user:default/bob"]}),
                ),
                field(
                    "relations.ownedby",
                    Matcher::AnyOf(vec![
                        "group:default/team-a".into(),
                        "user:default/bob".into(),
                    ]),
                ),
            ),
            (
                cond("IS_ENTITY_KIND", json!({"kinds": ["Component", "API"]})),
                field(
                    "kind",
                    Matcher::AnyOf(vec!["component".into(), "api".into()]),
                ),
            ),
            (
                cond("IS_ENTITY_KIND", json!({"kinds": []})),
                Predicate::Any(vec![]),
            ),
            (
                cond(
                    "HAS_ANNOTATION",
                    json!({"annotation": "backstage.io/TechDocs-Ref"}),
                ),
                field(
                    "metadata.annotations.backstage.io/techdocs-ref",
                    Matcher::Exists(true),
                ),
            ),
            (
                cond(
                    "HAS_ANNOTATION",
                    json!({"annotation": "tier", "value": "Gold"}),
                ),
                field(
                    "metadata.annotations.tier",
                    Matcher::AnyOf(vec!["gold".into()]),
                ),
            ),
            (
                cond("HAS_LABEL", json!({"label": "Secret"})),
                field("metadata.labels.secret", Matcher::Exists(true)),
            ),
            (
                cond("HAS_METADATA", json!({"key": "tags", "value": "Java"})),
                field("metadata.tags", Matcher::AnyOf(vec!["java".into()])),
            ),
            (
                cond("HAS_METADATA", json!({"key": "description"})),
                field("metadata.description", Matcher::Exists(true)),
            ),
            (
                cond(
                    "HAS_SPEC",
                    json!({"key": "lifecycle", "value": "production"}),
                ),
                field("spec.lifecycle", Matcher::AnyOf(vec!["production".into()])),
            ),
            (
                cond("HAS_SPEC", json!({"key": "system"})),
                field("spec.system", Matcher::Exists(true)),
            ),
        ];
        for (c, want) in &cases {
            assert_eq!(&to_predicate(c).unwrap(), want, "{c:?}");
            c.validate(CATALOG_ENTITY).unwrap();
        }
        let joined = Criteria::AllOf(vec![
            cases[1].0.clone(),
            Criteria::AnyOf(vec![
                cases[5].0.clone(),
                Criteria::Not(Box::new(cases[0].0.clone())),
            ]),
        ]);
        assert_eq!(
            to_predicate(&joined).unwrap(),
            Predicate::All(vec![
                cases[1].1.clone(),
                Predicate::Any(vec![
                    cases[5].1.clone(),
                    Predicate::Not(Box::new(cases[0].1.clone()))
                ]),
            ])
        );
    }

    #[test]
    fn translation_refuses_what_it_cannot_apply() {
        for (c, why) in [
            (
                cond("IS_ENTITY_OWNER", json!({"claims": ["$ownerRefs"]})),
                "not expanded",
            ),
            (cond("IS_GREEN", json!({})), "unknown rule \"IS_GREEN\""),
            (
                cond("HAS_LABEL", json!({"labels": "x"})),
                "HAS_LABEL: bad params",
            ),
            (
                Criteria::Rule {
                    rule: "HAS_LABEL".into(),
                    resource_type: "scaffolder-template".into(),
                    params: json!({"label": "x"}),
                },
                "not catalog-entity",
            ),
        ] {
            let err = to_predicate(&c).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        // More values than the store accepts in one predicate.
        let claims: Vec<String> = (0..2000).map(|i| format!("group:default/g{i}")).collect();
        let err = to_predicate(&cond("IS_ENTITY_OWNER", json!({ "claims": claims })))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the 1024"), "{err}");
    }
}
