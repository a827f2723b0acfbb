//! Conditions: Backstage's `PermissionCriteria` over the catalog's permission
//! rules, their validation and `$ownerRefs` expansion.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::rules::CatalogRule;
use super::{CATALOG_ENTITY, MAX_CONDITIONS_PER_RULE, MAX_CRITERIA_DEPTH, PolicyError, shown};

/// RHDH's alias for the caller's ownership refs in condition parameters.
pub const OWNER_REFS: &str = "$ownerRefs";

/// Backstage's `PermissionCriteria`: conditions joined by `allOf`, `anyOf`
/// and `not`. Serialised exactly as Backstage's JSON: `{"allOf":[..]}`,
/// `{"anyOf":[..]}`, `{"not":{..}}`, and `{"rule":"IS_ENTITY_OWNER",
/// "resourceType":"catalog-entity","params":{..}}` (`params` defaults to
/// `{}` when absent).
#[derive(Debug, Clone, PartialEq)]
pub enum Criteria {
    /// Every one holds.
    AllOf(Vec<Criteria>),
    /// At least one holds.
    AnyOf(Vec<Criteria>),
    /// It does not hold.
    Not(Box<Criteria>),
    /// A permission rule applied with parameters.
    Rule {
        /// The rule's name, e.g. `IS_ENTITY_OWNER`.
        rule: String,
        /// The resource type it applies to, e.g. `catalog-entity`.
        resource_type: String,
        /// Its parameters (a JSON object).
        params: Value,
    },
}

impl Serialize for Criteria {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Criteria::AllOf(items) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("allOf", items)?;
                map.end()
            }
            Criteria::AnyOf(items) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("anyOf", items)?;
                map.end()
            }
            Criteria::Not(inner) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("not", inner)?;
                map.end()
            }
            Criteria::Rule {
                rule,
                resource_type,
                params,
            } => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("rule", rule)?;
                map.serialize_entry("resourceType", resource_type)?;
                map.serialize_entry("params", params)?;
                map.end()
            }
        }
    }
}

/// Every key any shape of criteria may have; exactly one shape must be used.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCriteria {
    all_of: Option<Vec<Criteria>>,
    any_of: Option<Vec<Criteria>>,
    not: Option<Box<Criteria>>,
    rule: Option<String>,
    resource_type: Option<String>,
    params: Option<Value>,
}

impl<'de> Deserialize<'de> for Criteria {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawCriteria::deserialize(d)?;
        let condition = raw.rule.is_some() || raw.resource_type.is_some() || raw.params.is_some();
        let shapes = usize::from(raw.all_of.is_some())
            + usize::from(raw.any_of.is_some())
            + usize::from(raw.not.is_some())
            + usize::from(condition);
        if shapes != 1 {
            return Err(D::Error::custom(
                "criteria must be exactly one of {allOf: [..]}, {anyOf: [..]}, {not: {..}} \
                 or {rule, resourceType, params}",
            ));
        }
        Ok(match raw {
            RawCriteria {
                all_of: Some(items),
                ..
            } => Criteria::AllOf(items),
            RawCriteria {
                any_of: Some(items),
                ..
            } => Criteria::AnyOf(items),
            RawCriteria {
                not: Some(inner), ..
            } => Criteria::Not(inner),
            RawCriteria {
                rule,
                resource_type,
                params,
                ..
            } => Criteria::Rule {
                rule: rule.ok_or_else(|| D::Error::missing_field("rule"))?,
                resource_type: resource_type
                    .ok_or_else(|| D::Error::missing_field("resourceType"))?,
                params: params.unwrap_or_else(|| Value::Object(Map::new())),
            },
        })
    }
}

impl Criteria {
    /// `anyOf(items)`, or the one item alone.
    pub fn any_of(mut items: Vec<Criteria>) -> Criteria {
        if items.len() == 1 {
            items.remove(0)
        } else {
            Criteria::AnyOf(items)
        }
    }

    /// `allOf(items)`, or the one item alone.
    pub fn all_of(mut items: Vec<Criteria>) -> Criteria {
        if items.len() == 1 {
            items.remove(0)
        } else {
            Criteria::AllOf(items)
        }
    }

    /// The same criteria with every `$ownerRefs` in parameters replaced by
    /// `owner_refs`: spliced into lists, a list in place of a lone string.
    pub fn expand_owner_refs(&self, owner_refs: &[String]) -> Criteria {
        match self {
            Criteria::AllOf(items) => Criteria::AllOf(
                items
                    .iter()
                    .map(|c| c.expand_owner_refs(owner_refs))
                    .collect(),
            ),
            Criteria::AnyOf(items) => Criteria::AnyOf(
                items
                    .iter()
                    .map(|c| c.expand_owner_refs(owner_refs))
                    .collect(),
            ),
            Criteria::Not(inner) => Criteria::Not(Box::new(inner.expand_owner_refs(owner_refs))),
            Criteria::Rule {
                rule,
                resource_type,
                params,
            } => Criteria::Rule {
                rule: rule.clone(),
                resource_type: resource_type.clone(),
                params: expand_value(params, owner_refs),
            },
        }
    }

    /// Whether every condition is on `resource_type`.
    pub(crate) fn is_on(&self, resource_type: &str) -> bool {
        match self {
            Criteria::AllOf(items) | Criteria::AnyOf(items) => {
                items.iter().all(|c| c.is_on(resource_type))
            }
            Criteria::Not(inner) => inner.is_on(resource_type),
            Criteria::Rule {
                resource_type: rt, ..
            } => rt == resource_type,
        }
    }

    /// Checks the criteria of a rule on `resource_type`: known rules with
    /// valid parameters, non-empty `allOf`/`anyOf`, and the depth and count
    /// bounds.
    pub(crate) fn validate(&self, resource_type: &str) -> Result<(), PolicyError> {
        let mut leaves = 0;
        self.validate_at(resource_type, 1, &mut leaves)
    }

    fn validate_at(
        &self,
        resource_type: &str,
        depth: usize,
        leaves: &mut usize,
    ) -> Result<(), PolicyError> {
        if depth > MAX_CRITERIA_DEPTH {
            return Err(PolicyError::new(format!(
                "conditions nest deeper than the {MAX_CRITERIA_DEPTH} levels allowed"
            )));
        }
        match self {
            Criteria::AllOf(items) | Criteria::AnyOf(items) => {
                if items.is_empty() {
                    let op = if matches!(self, Criteria::AllOf(_)) {
                        "allOf"
                    } else {
                        "anyOf"
                    };
                    return Err(PolicyError::new(format!("conditions: empty {op}")));
                }
                for item in items {
                    item.validate_at(resource_type, depth + 1, leaves)?;
                }
                Ok(())
            }
            Criteria::Not(inner) => inner.validate_at(resource_type, depth + 1, leaves),
            Criteria::Rule {
                rule,
                resource_type: rt,
                params,
            } => {
                *leaves += 1;
                if *leaves > MAX_CONDITIONS_PER_RULE {
                    return Err(PolicyError::new(format!(
                        "more than the {MAX_CONDITIONS_PER_RULE} conditions allowed in one rule"
                    )));
                }
                if rt != resource_type {
                    return Err(PolicyError::new(format!(
                        "condition {} is on resource type \"{}\", the rule's is \"{resource_type}\"",
                        shown(rule),
                        shown(rt)
                    )));
                }
                if rt != CATALOG_ENTITY {
                    return Err(PolicyError::new(format!(
                        "resource type \"{}\" has no permission rules",
                        shown(rt)
                    )));
                }
                let parsed = CatalogRule::parse(rule, params).map_err(PolicyError::new)?;
                parsed.check_bounds(rule).map_err(PolicyError::new)
            }
        }
    }
}

fn expand_value(params: &Value, owner_refs: &[String]) -> Value {
    let refs = || owner_refs.iter().cloned().map(Value::String);
    match params {
        Value::String(s) if s == OWNER_REFS => Value::Array(refs().collect()),
        Value::Array(items) => {
            // Strings once each: a claim listed and also among the owner refs.
            let mut seen = std::collections::HashSet::new();
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            let mut push = |v: Value| match v.as_str() {
                Some(s) if !seen.insert(s.to_owned()) => {}
                _ => out.push(v),
            };
            for item in items {
                if item.as_str() == Some(OWNER_REFS) {
                    refs().for_each(&mut push);
                } else {
                    push(expand_value(item, owner_refs));
                }
            }
            Value::Array(out)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), expand_value(v, owner_refs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{MAX_PARAM_LEN, MAX_PARAM_VALUES};
    use serde_json::json;

    fn cond(rule: &str, params: Value) -> Criteria {
        Criteria::Rule {
            rule: rule.into(),
            resource_type: CATALOG_ENTITY.into(),
            params,
        }
    }

    #[test]
    fn criteria_use_backstages_json_shape() {
        let text = json!({"allOf": [
            {"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity", "params": {"claims": ["$ownerRefs"]}},
            {"not": {"anyOf": [{"rule": "HAS_LABEL", "resourceType": "catalog-entity", "params": {"label": "secret"}}]}},
        ]});
        let c: Criteria = serde_json::from_value(text.clone()).unwrap();
        assert_eq!(
            c,
            Criteria::AllOf(vec![
                cond("IS_ENTITY_OWNER", json!({"claims": ["$ownerRefs"]})),
                Criteria::Not(Box::new(Criteria::AnyOf(vec![cond(
                    "HAS_LABEL",
                    json!({"label": "secret"})
                )]))),
            ])
        );
        assert_eq!(serde_json::to_value(&c).unwrap(), text);
        // `params` may be left out; it serialises as `{}`.
        let bare: Criteria =
            serde_json::from_value(json!({"rule": "X", "resourceType": "catalog-entity"})).unwrap();
        assert_eq!(bare, cond("X", json!({})));
        for bad in [
            json!({"allOf": [], "not": {"rule": "X", "resourceType": "t"}}),
            json!({"rule": "X"}),
            json!({"anyOf": [], "extra": 1}),
            json!({}),
        ] {
            assert!(
                serde_json::from_value::<Criteria>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn owner_refs_are_expanded_into_lists_and_lone_strings() {
        let refs = vec![
            "user:default/alice".to_owned(),
            "group:default/team-a".to_owned(),
        ];
        let c = Criteria::Not(Box::new(Criteria::AnyOf(vec![
            cond(
                "IS_ENTITY_OWNER",
                json!({"claims": ["group:default/ops", "$ownerRefs", "group:default/team-a"]}),
            ),
            cond("IS_ENTITY_OWNER", json!({"claims": "$ownerRefs"})),
        ])));
        let expanded = c.expand_owner_refs(&refs);
        assert_eq!(
            expanded,
            Criteria::Not(Box::new(Criteria::AnyOf(vec![
                cond(
                    "IS_ENTITY_OWNER",
                    json!({"claims": ["group:default/ops", "user:default/alice", "group:default/team-a"]})
                ),
                cond(
                    "IS_ENTITY_OWNER",
                    json!({"claims": ["user:default/alice", "group:default/team-a"]})
                ),
            ])))
        );
        // A principal without ownership refs owns nothing.
        let none =
            cond("IS_ENTITY_OWNER", json!({"claims": ["$ownerRefs"]})).expand_owner_refs(&[]);
        assert_eq!(none, cond("IS_ENTITY_OWNER", json!({"claims": []})));
        assert_eq!(
            crate::permissions::to_predicate(&none).unwrap(),
            callboard_store::query::Predicate::Any(vec![])
        );
    }

    #[test]
    fn validation_bounds_criteria() {
        let leaf = cond("HAS_LABEL", json!({"label": "x"}));
        let mut deep = leaf.clone();
        for _ in 1..MAX_CRITERIA_DEPTH {
            deep = Criteria::Not(Box::new(deep));
        }
        deep.validate(CATALOG_ENTITY).unwrap();
        let err = Criteria::Not(Box::new(deep))
            .validate(CATALOG_ENTITY)
            .unwrap_err();
        assert!(err.to_string().contains("deeper than the 8"), "{err}");

        let wide = Criteria::AnyOf(vec![leaf.clone(); MAX_CONDITIONS_PER_RULE]);
        wide.validate(CATALOG_ENTITY).unwrap();
        let err = Criteria::AnyOf(vec![leaf; MAX_CONDITIONS_PER_RULE + 1])
            .validate(CATALOG_ENTITY)
            .unwrap_err();
        assert!(err.to_string().contains("64 conditions"), "{err}");

        for (c, why) in [
            (Criteria::AllOf(vec![]), "empty allOf"),
            (
                cond("HAS_LABEL", json!({"label": "a b"})),
                "not a field name",
            ),
            (
                cond("HAS_SPEC", json!({"key": "x", "value": 3})),
                "bad params",
            ),
            (
                cond(
                    "IS_ENTITY_KIND",
                    json!({"kinds": vec!["x"; MAX_PARAM_VALUES + 1]}),
                ),
                "257 values",
            ),
            (
                cond("HAS_LABEL", json!({"label": "x".repeat(MAX_PARAM_LEN + 1)})),
                "longer than the 256",
            ),
        ] {
            let err = c.validate(CATALOG_ENTITY).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
