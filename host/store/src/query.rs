//! The query model every backend answers: predicates (Backstage's
//! `filter` parameters and JSON predicates), full-text filters, ordering,
//! keyset positions, pages and facets; and the pure helpers backends share
//! (splicing relations into a stored body, projecting `fields`).

use serde_json::{Map, Value};

use crate::StoreError;

/// Most entities one page holds (held in memory).
pub const MAX_PAGE: usize = 1000;

/// Fields the full-text index holds; `fullTextFilterFields` within this set
/// are answered from the index, others by scanning the search rows.
pub const FULL_TEXT_FIELDS: &[&str] = &[
    "kind",
    "metadata.name",
    "metadata.title",
    "metadata.description",
    "metadata.tags",
    "spec.type",
    "spec.lifecycle",
    "spec.owner",
    "spec.system",
];

/// Most field conditions one parsed predicate (the `filter` parameters, or
/// a `query` body) may hold. Each is a probe of the search rows, and a
/// database plans them all: PostgreSQL planned 256 in ~60 ms at 10,000
/// entities. Backstage's clients send a few dozen (`useRelatedEntities`
/// asks in batches).
pub const MAX_CONDITIONS: usize = 256;
/// Most values all of a predicate's conditions may list together (`$in`,
/// repeated keys in one `filter`).
pub const MAX_VALUES: usize = 1024;
/// Deepest nesting of `$all`, `$any` and `$not` in a predicate.
pub const MAX_NESTING: usize = 16;

/// A condition on entities. Keys are dotted paths, compared lower-cased;
/// `relations.<type>` keys match relation targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// Every one holds.
    All(Vec<Predicate>),
    /// At least one holds.
    Any(Vec<Predicate>),
    /// It does not hold.
    Not(Box<Predicate>),
    /// A field matcher.
    Field {
        /// Lower-cased dotted path.
        key: String,
        /// What the field must satisfy.
        matcher: Matcher,
    },
}

/// How a field is matched (values lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Equals one of the values (for arrays: contains one of them).
    AnyOf(Vec<String>),
    /// The field is present (or absent).
    Exists(bool),
    /// A value starts with the prefix.
    HasPrefix(String),
}

impl Predicate {
    /// This condition and `other`. The conjuncts of a top-level `All` on
    /// either side stay top-level conjuncts, where a store may drive the
    /// query from any of them (an owner scope's relation condition, say); a
    /// nested `All` stays nested, a caller's way of saying "test this, do
    /// not drive from it".
    #[must_use]
    pub fn and(self, other: Predicate) -> Predicate {
        let mut items = match self {
            Predicate::All(items) => items,
            p => vec![p],
        };
        match other {
            Predicate::All(more) => items.extend(more),
            p => items.push(p),
        }
        Predicate::All(items)
    }

    /// Field equals one of `values`.
    pub fn eq(key: &str, values: &[&str]) -> Self {
        Self::Field {
            key: key.to_lowercase(),
            matcher: Matcher::AnyOf(values.iter().map(|v| v.to_lowercase()).collect()),
        }
    }

    /// Parses Backstage `filter` query parameters: conditions joined by `,`
    /// must all hold (repeated keys in one filter are alternatives), and
    /// separate filters are alternatives. `None` when there is no filter.
    pub fn parse_filters<S: AsRef<str>>(filters: &[S]) -> Result<Option<Self>, StoreError> {
        let mut any = Vec::new();
        for filter in filters {
            let mut by_key: Vec<(String, Option<Vec<String>>)> = Vec::new();
            for part in filter.as_ref().split(',') {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                let (key, value) = match part.split_once('=') {
                    Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim().to_lowercase())),
                    None => (part.to_lowercase(), None),
                };
                if key.is_empty() {
                    return Err(StoreError::input(format!(
                        "Invalid filter \"{}\": empty key",
                        filter.as_ref()
                    )));
                }
                match (by_key.iter_mut().find(|(k, _)| *k == key), value) {
                    (Some((_, Some(values))), Some(v)) => values.push(v),
                    // `key` alone (exists) absorbs any value condition on the same key
                    (Some((_, slot)), None) => *slot = None,
                    (Some((_, None)), Some(_)) => {}
                    (None, v) => by_key.push((key, v.map(|v| vec![v]))),
                }
            }
            let all: Vec<Predicate> = by_key
                .into_iter()
                .map(|(key, values)| Predicate::Field {
                    key,
                    matcher: values.map_or(Matcher::Exists(true), Matcher::AnyOf),
                })
                .collect();
            if !all.is_empty() {
                any.push(Predicate::All(all));
            }
        }
        let parsed = match any.len() {
            0 => None,
            1 => any.pop(),
            _ => Some(Predicate::Any(any)),
        };
        if let Some(p) = &parsed {
            p.check_bounds("filter")?;
        }
        Ok(parsed)
    }

    /// Refuses a predicate past [`MAX_CONDITIONS`], [`MAX_VALUES`] or
    /// [`MAX_NESTING`], naming the bound; `what` names its source. The
    /// parsers check what they parse; a caller that joins two predicates
    /// checks the join.
    pub fn check_bounds(&self, what: &str) -> Result<(), StoreError> {
        /// What a predicate holds, counted against the bounds.
        #[derive(Default)]
        struct Size {
            conditions: usize,
            values: usize,
            depth: usize,
        }
        fn walk(p: &Predicate, depth: usize, size: &mut Size) {
            size.depth = size.depth.max(depth);
            match p {
                Predicate::All(items) | Predicate::Any(items) => {
                    for item in items {
                        walk(item, depth + 1, size);
                    }
                }
                Predicate::Not(inner) => walk(inner, depth + 1, size),
                Predicate::Field { matcher, .. } => {
                    size.conditions += 1;
                    size.values += match matcher {
                        Matcher::AnyOf(values) => values.len(),
                        Matcher::Exists(_) | Matcher::HasPrefix(_) => 1,
                    };
                }
            }
        }
        let mut size = Size::default();
        walk(self, 0, &mut size);
        let refuse = |n: usize, max: usize, of: &str| {
            StoreError::input(format!(
                "Invalid {what}: {n} {of}, more than the {max} allowed"
            ))
        };
        if size.conditions > MAX_CONDITIONS {
            return Err(refuse(size.conditions, MAX_CONDITIONS, "field conditions"));
        }
        if size.values > MAX_VALUES {
            return Err(refuse(size.values, MAX_VALUES, "values"));
        }
        if size.depth > MAX_NESTING {
            return Err(refuse(size.depth, MAX_NESTING, "levels of nesting"));
        }
        Ok(())
    }

    /// Parses a Backstage filter predicate (`$all`, `$any`, `$not`, field
    /// matchers with literals, `$exists`, `$in`, `$hasPrefix`, `$contains`).
    pub fn from_json(value: &Value) -> Result<Self, StoreError> {
        let parsed = Self::from_json_unbounded(value)?;
        parsed.check_bounds("predicate")?;
        Ok(parsed)
    }

    fn from_json_unbounded(value: &Value) -> Result<Self, StoreError> {
        let obj = value.as_object().ok_or_else(|| {
            StoreError::input(format!("Invalid predicate {value}: expected an object"))
        })?;
        let mut all = Vec::new();
        for (key, v) in obj {
            all.push(match key.as_str() {
                "$all" | "$any" => {
                    let items = v.as_array().ok_or_else(|| {
                        StoreError::input(format!("Invalid predicate: {key} must be an array"))
                    })?;
                    let parsed = items
                        .iter()
                        .map(Self::from_json_unbounded)
                        .collect::<Result<Vec<_>, _>>()?;
                    if key == "$all" {
                        Self::All(parsed)
                    } else {
                        Self::Any(parsed)
                    }
                }
                "$not" => Self::Not(Box::new(Self::from_json_unbounded(v)?)),
                k if k.starts_with('$') => {
                    return Err(StoreError::input(format!(
                        "Invalid predicate: unknown operator {k}"
                    )));
                }
                field => Self::Field {
                    key: field.to_lowercase(),
                    matcher: parse_matcher(field, v)?,
                },
            });
        }
        Ok(if all.len() == 1 {
            all.pop().unwrap_or(Self::All(Vec::new()))
        } else {
            Self::All(all)
        })
    }
}

fn literal(field: &str, v: &Value) -> Result<String, StoreError> {
    match v {
        Value::String(s) => Ok(s.to_lowercase()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(StoreError::input(format!(
            "Invalid predicate for \"{field}\": {other} is not a literal"
        ))),
    }
}

fn parse_matcher(field: &str, v: &Value) -> Result<Matcher, StoreError> {
    let Some(obj) = v.as_object() else {
        return Ok(Matcher::AnyOf(vec![literal(field, v)?]));
    };
    let mut entries = obj.iter();
    let (Some((op, arg)), None) = (entries.next(), entries.next()) else {
        return Err(StoreError::input(format!(
            "Invalid predicate for \"{field}\": expected exactly one operator"
        )));
    };
    match op.as_str() {
        "$exists" => match arg {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            _ => Err(StoreError::input(format!(
                "Invalid predicate for \"{field}\": $exists takes a boolean"
            ))),
        },
        "$in" => match arg {
            Value::Array(items) => Ok(Matcher::AnyOf(
                items
                    .iter()
                    .map(|i| literal(field, i))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(StoreError::input(format!(
                "Invalid predicate for \"{field}\": $in takes an array"
            ))),
        },
        "$hasPrefix" => Ok(Matcher::HasPrefix(literal(field, arg)?)),
        // Arrays are indexed one row per element, so "contains" is equality.
        "$contains" => Ok(Matcher::AnyOf(vec![literal(field, arg)?])),
        other => Err(StoreError::input(format!(
            "Invalid predicate for \"{field}\": unknown operator {other}"
        ))),
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderField {
    /// Dotted path, e.g. `metadata.name`.
    pub field: String,
    /// Descending instead of ascending.
    pub descending: bool,
}

/// Substring search over some fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FullTextFilter {
    /// The text to find, case-insensitively.
    pub term: String,
    /// Fields to search; empty means the default set ([`FULL_TEXT_FIELDS`]).
    pub fields: Vec<String>,
}

/// What to select and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Condition, if any.
    pub predicate: Option<Predicate>,
    /// Full-text filter, if any.
    pub full_text: Option<FullTextFilter>,
    /// Sort keys; entity id (insertion order) breaks ties and is the default.
    pub order: Vec<OrderField>,
}

/// A row's place in the order, for keyset pagination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Sort values of the row, one per order field.
    pub values: Vec<String>,
    /// The row's entity id.
    pub id: i64,
}

/// One facet value and how many entities have it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FacetCount {
    /// The value as written in the entity.
    pub value: String,
    /// Number of entities.
    pub count: u64,
}

/// Where to start a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Start {
    /// From the beginning.
    #[default]
    Beginning,
    /// Skip this many rows.
    Offset(usize),
    /// Right after a position.
    After(Position),
    /// Right before a position (the page ends there).
    Before(Position),
}

/// A page of a selection.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Entities as served (with relations), each one JSON object as text:
    /// an answer copies them out without parsing or building a tree of
    /// each. The text is the store's own (bodies it serialised when writing,
    /// relations spliced by [`Splice`]), never text from a request, so it
    /// is not validated again on the way out; debug builds check it.
    pub items: Vec<String>,
    /// Position of the first item, for cursors.
    pub first: Option<Position>,
    /// Position of the last item.
    pub last: Option<Position>,
    /// Whether more rows follow in the direction read.
    pub more: bool,
}

impl Page {
    /// The items as JSON values (for readers that look inside them).
    pub fn values(&self) -> Vec<Value> {
        self.items.iter().map(|json| entity_value(json)).collect()
    }
}

/// An item of a [`Page`] as a value. Items are JSON objects within
/// serde_json's nesting limit (ingestion refuses deeper documents), so
/// this does not fail; `Null` stands in if a stored body was damaged.
pub fn entity_value(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// Writes `items` as one JSON array.
pub fn push_json_array(items: &[String], out: &mut String) {
    out.reserve(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
}

/// Checks, in debug builds, that a store built valid JSON for `key`.
pub fn debug_check_json(key: &str, json: &str) {
    debug_assert!(
        serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok(),
        "the store rendered invalid JSON for {key}: {json}"
    );
}

/// `key` of a `relations.<type>` filter key.
pub fn relation_type(key: &str) -> Option<&str> {
    key.strip_prefix("relations.")
}

/// Splices relations (`(type, target as displayed)`, pushed sorted so
/// duplicates are adjacent) into a stored body, which has none, as
/// Backstage serves entities: a relation at a time, for a caller reading
/// them from rows it cannot keep.
pub struct Splice<'o> {
    out: &'o mut String,
    /// Where the previous relation's object starts in `out`, to skip an
    /// adjacent duplicate.
    previous: Option<usize>,
    scratch: String,
}

impl<'o> Splice<'o> {
    /// Writes `body` without its closing brace, and opens `relations`.
    pub fn open(body: &str, out: &'o mut String) -> Self {
        let trimmed = body.trim_end();
        let open = trimmed.strip_suffix('}').unwrap_or(trimmed);
        out.push_str(open);
        out.push_str(",\"relations\":[");
        Self {
            out,
            previous: None,
            scratch: String::new(),
        }
    }

    /// Adds one relation unless it equals the one before.
    pub fn push(&mut self, kind: &str, target: &str) {
        self.scratch.clear();
        self.scratch.push_str("{\"type\":");
        push_json_string(&mut self.scratch, kind);
        self.scratch.push_str(",\"targetRef\":");
        push_json_string(&mut self.scratch, target);
        self.scratch.push('}');
        if let Some(at) = self.previous {
            if self.out[at..] == self.scratch {
                return;
            }
            self.out.push(',');
        }
        self.previous = Some(self.out.len());
        self.out.push_str(&self.scratch);
    }

    /// Closes `relations` and the entity.
    pub fn close(self) {
        self.out.push_str("]}");
    }
}

fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_owned()).to_string());
    }
}

/// Keeps only the given dotted paths of an entity (Backstage's `fields`).
pub fn project(entity: &Value, fields: &[String]) -> Value {
    let mut out = Map::new();
    for field in fields {
        let parts: Vec<&str> = field.split('.').collect();
        copy_path(entity, &parts, &mut out);
    }
    Value::Object(out)
}

fn copy_path(src: &Value, parts: &[&str], dst: &mut Map<String, Value>) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    let Some(value) = src.get(*head) else { return };
    if rest.is_empty() {
        dst.insert((*head).to_owned(), value.clone());
        return;
    }
    if value.is_object() {
        let child = dst
            .entry((*head).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(child) = child.as_object_mut() {
            copy_path(value, rest, child);
        }
    } else {
        // The path continues through a non-object (e.g. an array): keep it whole.
        dst.insert((*head).to_owned(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters() {
        let p = Predicate::parse_filters(&["kind=Component,kind=API,spec.type", "metadata.name=x"])
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            Predicate::Any(vec![
                Predicate::All(vec![
                    Predicate::eq("kind", &["component", "api"]),
                    Predicate::Field {
                        key: "spec.type".into(),
                        matcher: Matcher::Exists(true)
                    },
                ]),
                Predicate::All(vec![Predicate::eq("metadata.name", &["x"])]),
            ])
        );
        assert_eq!(Predicate::parse_filters::<&str>(&[]).unwrap(), None);
    }

    #[test]
    fn and_keeps_top_level_conjuncts_and_nested_alls() {
        let kind = Predicate::eq("kind", &["component"]);
        let owner = Predicate::eq("relations.ownedby", &["group:default/a"]);
        let wrapped = Predicate::All(vec![Predicate::eq("spec.type", &["service"])]);
        assert_eq!(
            kind.clone().and(owner.clone()),
            Predicate::All(vec![kind.clone(), owner.clone()])
        );
        // A top-level All on either side is flattened; a nested one stays.
        assert_eq!(
            Predicate::All(vec![kind.clone(), wrapped.clone()])
                .and(Predicate::All(vec![owner.clone()])),
            Predicate::All(vec![kind.clone(), wrapped, owner.clone()])
        );
        // Any and Not are single conjuncts.
        let any = Predicate::Any(vec![kind.clone(), owner]);
        assert_eq!(
            any.clone().and(kind.clone()),
            Predicate::All(vec![any, kind])
        );
    }

    #[test]
    fn predicates() {
        let p = Predicate::from_json(&json!({"$all":[{"kind":"Component"},{"$not":{"spec.type":{"$in":["a"]}}},
            {"metadata.tags":{"$contains":"Java"}},{"spec.owner":{"$exists":true}},{"metadata.name":{"$hasPrefix":"x"}}]}))
        .unwrap();
        let Predicate::All(items) = p else { panic!() };
        assert_eq!(items.len(), 5);
        assert!(Predicate::from_json(&json!({"kind":{"$nope":1}})).is_err());
    }

    #[test]
    fn predicates_past_their_bounds_are_refused_with_the_bound() {
        let conditions: Vec<String> = (0..=MAX_CONDITIONS).map(|i| format!("k{i}=v")).collect();
        let err = Predicate::parse_filters(&[conditions.join(",")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("257 field conditions, more than the 256"),
            "{err}"
        );
        let at_bound = &conditions[..MAX_CONDITIONS];
        assert!(Predicate::parse_filters(&[at_bound.join(",")]).is_ok());
        // Alternatives count together.
        let halves = [conditions[..130].join(","), conditions[130..].join(",")];
        assert!(Predicate::parse_filters(&halves).is_err());

        let values: Vec<String> = (0..=MAX_VALUES).map(|i| format!("kind=v{i}")).collect();
        let err = Predicate::parse_filters(&[values.join(",")]).unwrap_err();
        assert!(err.to_string().contains("1025 values"), "{err}");
        let err =
            Predicate::from_json(&json!({"kind": {"$in": vec!["x"; MAX_VALUES + 1]}})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Invalid predicate: 1025 values"),
            "{err}"
        );

        let mut deep = json!({"kind": "x"});
        for _ in 0..MAX_NESTING {
            deep = json!({"$not": deep});
        }
        assert!(Predicate::from_json(&deep).is_ok());
        let err = Predicate::from_json(&json!({"$any": [deep]})).unwrap_err();
        assert!(err.to_string().contains("17 levels of nesting"), "{err}");
    }

    #[test]
    fn projection() {
        let e = json!({"kind":"A","metadata":{"name":"n","tags":["t"]},"spec":{"x":1}});
        assert_eq!(
            project(&e, &["kind".into(), "metadata.name".into()]),
            json!({"kind":"A","metadata":{"name":"n"}})
        );
    }
}
