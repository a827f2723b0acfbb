//! Multi-document YAML with the line each document starts on, parsed under a
//! budget: a descriptor file is semi-trusted input, so nesting, aliases and
//! the size of the value built from it are all bounded.

use std::cell::Cell;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// One YAML document of a file.
#[derive(Debug)]
pub struct Document {
    /// 1-based line of the document's first node.
    pub line: u32,
    /// The document as JSON.
    pub value: Value,
}

/// A file that is not valid YAML.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// 1-based line, when the parser knows it.
    pub line: Option<u32>,
    /// The parser's message.
    pub message: String,
}

/// Deepest nesting of mappings and sequences (entities are shallow; API
/// definitions are strings until a page parses them).
const MAX_DEPTH: usize = 32;
/// Charged per node on top of its text: roughly what a `serde_json::Value`
/// and its map slot cost, so a flood of empty nodes is bounded too.
const NODE_COST: usize = 48;
/// The value built from a text may weigh this many times the text, plus
/// [`EXPANSION_SLACK`]: room for node overhead, not for alias bombs.
const EXPANSION_FACTOR: usize = 16;
const EXPANSION_SLACK: usize = 1024 * 1024;

thread_local! {
    /// Bytes the value being built may still take (see [`Bounded`]).
    static LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn options(text_len: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(text_len.saturating_add(1)),
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: text_len.saturating_add(4096),
            max_documents: 20_000,
            // Alias replays count here too: room for modest reuse only.
            max_total_scalar_bytes: text_len.saturating_mul(2).saturating_add(64 * 1024),
            max_merge_keys: 1_000,
            alias_anchor_min_aliases: 50,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 100,
        },
    }
}

/// Runs `parse` with the expansion budget for a text of `len` bytes.
fn with_budget<T>(len: usize, parse: impl FnOnce() -> T) -> T {
    let budget = len
        .saturating_mul(EXPANSION_FACTOR)
        .saturating_add(EXPANSION_SLACK);
    let before = LEFT.with(|l| l.replace(budget));
    let out = parse();
    LEFT.with(|l| l.set(before));
    out
}

fn to_yaml_error(e: &serde_saphyr::Error) -> YamlError {
    YamlError {
        line: e
            .location()
            .map(|l| u32::try_from(l.line()).unwrap_or(u32::MAX)),
        message: first_line(&e.to_string()),
    }
}

/// Parses every document of a file; empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let docs: Vec<serde_saphyr::Spanned<Bounded>> = with_budget(text.len(), || {
        serde_saphyr::from_multiple_with_options(text, options(text.len()))
    })
    .map_err(|e| to_yaml_error(&e))?;
    Ok(docs
        .into_iter()
        .map(|d| Document {
            line: u32::try_from(d.referenced.line()).unwrap_or(u32::MAX),
            value: d.value.0,
        })
        .collect())
}

/// Parses one document (an API definition, say) under the same budget.
pub fn parse_value(text: &str) -> Result<Value, YamlError> {
    with_budget(text.len(), || {
        serde_saphyr::from_str_with_options::<Bounded>(text, options(text.len()))
    })
    .map(|b| b.0)
    .map_err(|e| to_yaml_error(&e))
}

/// The rendered error carries a source snippet; the first line is the message.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_owned()
}

/// A JSON value whose construction is charged to [`LEFT`]: aliases replay
/// nodes without reading more input, so the parser's input budget alone
/// cannot bound what they build.
struct Bounded(Value);

fn charge<E: de::Error>(bytes: usize) -> Result<(), E> {
    LEFT.with(|left| {
        let cost = bytes.saturating_add(NODE_COST);
        match left.get().checked_sub(cost) {
            Some(rest) => {
                left.set(rest);
                Ok(())
            }
            None => Err(E::custom(
                "the document expands to far more data than its text (too many aliases?)",
            )),
        }
    })
}

impl<'de> Deserialize<'de> for Bounded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoundedVisitor).map(Bounded)
    }
}

struct BoundedVisitor;

impl<'de> Visitor<'de> for BoundedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        charge(0)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        charge(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        charge(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Bounded::deserialize(d).map(|b| b.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        charge(0)?;
        let mut out = Vec::new();
        while let Some(Bounded(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        charge(0)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            charge(key.len())?;
            let Bounded(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_documents() {
        let text = "# head\n---\na: 1\n---\n\n---\nb:\n  - x\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 3);
        assert_eq!(docs[1].line, 7);
        assert_eq!(docs[1].value["b"][0], "x");
    }

    #[test]
    fn error_has_line() {
        let err = parse_documents("a: 1\nb: [\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
    }

    #[test]
    fn aliases_of_a_big_scalar_are_refused() {
        let big = "x".repeat(200_000);
        let mut text = format!("a: &a {big}\nb: [");
        for _ in 0..30 {
            text.push_str("*a, ");
        }
        text.push_str("*a]\n");
        let err = parse_documents(&text).unwrap_err();
        assert!(
            err.message.contains("expands") || err.message.contains("budget"),
            "{err:?}"
        );
    }

    #[test]
    fn nested_aliases_are_bounded_by_the_expansion_budget() {
        // Ten levels of ten aliases each: 10^10 nodes if expanded.
        let mut text = String::from("l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n");
        for i in 1..10 {
            let prev = format!("*l{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("l{i}: &l{i} [{items}]\n"));
        }
        assert!(parse_documents(&text).is_err());
    }

    #[test]
    fn a_few_aliases_are_fine() {
        let docs = parse_documents("a: &o team-a\nb: *o\nc: [*o, *o]\n").unwrap();
        assert_eq!(docs[0].value["c"][1], "team-a");
    }
}
