//! Relations derived from spec references, in both directions.

use serde_json::Value;

use crate::entity_ref::EntityRef;

/// Whether a spec field holds one reference or a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefFieldShape {
    /// A single string.
    One,
    /// An array of strings.
    Many,
}

/// A spec field that refers to other entities.
#[derive(Debug)]
pub struct RefField {
    /// Lower-cased kinds that carry the field.
    pub kinds: &'static [&'static str],
    /// Field name inside `spec`.
    pub field: &'static str,
    /// One reference or many.
    pub shape: RefFieldShape,
    /// Relation on the referring entity.
    pub forward: &'static str,
    /// Relation on the target.
    pub reverse: &'static str,
    /// Kind assumed for a bare name; `None` makes a bare name an error.
    pub default_kind: Option<&'static str>,
}

const fn field(
    kinds: &'static [&'static str],
    field: &'static str,
    shape: RefFieldShape,
    forward: &'static str,
    reverse: &'static str,
    default_kind: Option<&'static str>,
) -> RefField {
    RefField {
        kinds,
        field,
        shape,
        forward,
        reverse,
        default_kind,
    }
}

use RefFieldShape::{Many, One};

/// Every reference field of every kind (backstage-compat.md, "Relations").
pub const REF_FIELDS: &[RefField] = &[
    field(
        &[
            "component",
            "api",
            "resource",
            "system",
            "domain",
            "template",
        ],
        "owner",
        One,
        "ownedBy",
        "ownerOf",
        Some("Group"),
    ),
    field(
        &["component", "api", "resource"],
        "system",
        One,
        "partOf",
        "hasPart",
        Some("System"),
    ),
    field(
        &["component"],
        "subcomponentOf",
        One,
        "partOf",
        "hasPart",
        Some("Component"),
    ),
    field(
        &["system"],
        "domain",
        One,
        "partOf",
        "hasPart",
        Some("Domain"),
    ),
    field(
        &["domain"],
        "subdomainOf",
        One,
        "partOf",
        "hasPart",
        Some("Domain"),
    ),
    field(
        &["component"],
        "providesApis",
        Many,
        "providesApi",
        "apiProvidedBy",
        Some("API"),
    ),
    field(
        &["component"],
        "consumesApis",
        Many,
        "consumesApi",
        "apiConsumedBy",
        Some("API"),
    ),
    field(
        &["component", "resource"],
        "dependsOn",
        Many,
        "dependsOn",
        "dependencyOf",
        None,
    ),
    field(
        &["component", "resource"],
        "dependencyOf",
        Many,
        "dependencyOf",
        "dependsOn",
        None,
    ),
    field(
        &["group"],
        "parent",
        One,
        "childOf",
        "parentOf",
        Some("Group"),
    ),
    field(
        &["group"],
        "children",
        Many,
        "parentOf",
        "childOf",
        Some("Group"),
    ),
    field(
        &["group"],
        "members",
        Many,
        "hasMember",
        "memberOf",
        Some("User"),
    ),
    field(
        &["user"],
        "memberOf",
        Many,
        "memberOf",
        "hasMember",
        Some("Group"),
    ),
];

/// One relation row: `source` has relation `kind` to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The entity the relation is listed on.
    pub source: EntityRef,
    /// Relation type, e.g. `ownedBy`.
    pub kind: &'static str,
    /// The other end.
    pub target: EntityRef,
}

/// Every relation a (valid) entity's spec implies: the forward one on the
/// entity and the reverse one on each target. References that do not parse
/// are skipped here; validation reports them.
pub fn relations_of(entity: &Value, me: &EntityRef) -> Vec<Relation> {
    let mut out = Vec::new();
    let kind = me.kind.to_ascii_lowercase();
    let Some(spec) = entity.get("spec").and_then(Value::as_object) else {
        return out;
    };
    for f in REF_FIELDS
        .iter()
        .filter(|f| f.kinds.contains(&kind.as_str()))
    {
        let targets: Vec<&str> = match (f.shape, spec.get(f.field)) {
            (One, Some(Value::String(s))) => vec![s],
            (Many, Some(Value::Array(items))) => items.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        for t in targets {
            if let Ok(target) = EntityRef::parse_with_defaults(t, f.default_kind, &me.namespace) {
                out.push(Relation {
                    source: me.clone(),
                    kind: f.forward,
                    target: target.clone(),
                });
                out.push(Relation {
                    source: target,
                    kind: f.reverse,
                    target: me.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_directions_with_defaults() {
        let me = EntityRef::new("Component", "payments", "checkout");
        let e = json!({"spec":{"owner":"team-a","system":"other/shop","providesApis":["checkout-api"],
                               "dependsOn":["resource:db","bare"]}});
        let rels: Vec<String> = relations_of(&e, &me)
            .iter()
            .map(|r| format!("{} {} {}", r.source, r.kind, r.target))
            .collect();
        assert_eq!(
            rels,
            [
                "component:payments/checkout ownedBy group:payments/team-a",
                "group:payments/team-a ownerOf component:payments/checkout",
                "component:payments/checkout partOf system:other/shop",
                "system:other/shop hasPart component:payments/checkout",
                "component:payments/checkout providesApi api:payments/checkout-api",
                "api:payments/checkout-api apiProvidedBy component:payments/checkout",
                "component:payments/checkout dependsOn resource:payments/db",
                "resource:payments/db dependencyOf component:payments/checkout",
            ]
        );
    }
}
