//! Kubernetes label selectors (the string syntax of `labelSelector`), and
//! what an entity selects: its `backstage.io/kubernetes-id` or
//! `backstage.io/kubernetes-label-selector`, narrowed by
//! `backstage.io/kubernetes-namespace`.
//!
//! The plugin parses a selector before it sends it (so a malformed
//! annotation is a notice, not a 400 from every cluster) and evaluates it
//! itself to attribute objects of a combined query to entities and to check
//! that a deployment someone asks to restart really belongs to the entity.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// The entity annotation naming the value of the `backstage.io/kubernetes-id` label.
pub const ID_ANNOTATION: &str = "backstage.io/kubernetes-id";
/// The entity annotation with a whole label selector (overrides the id).
pub const SELECTOR_ANNOTATION: &str = "backstage.io/kubernetes-label-selector";
/// The entity annotation narrowing the search to one namespace.
pub const NAMESPACE_ANNOTATION: &str = "backstage.io/kubernetes-namespace";
/// The label objects of an entity carry.
pub const ID_LABEL: &str = "backstage.io/kubernetes-id";

/// Longest selector accepted (Kubernetes accepts far longer; URLs do not).
pub const MAX_SELECTOR_LEN: usize = 2048;
/// Most requirements in one selector.
const MAX_REQUIREMENTS: usize = 32;
/// Most values of one `in`/`notin` requirement.
pub const MAX_SET_VALUES: usize = 100;

/// Characters escaped in a query value: everything but unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &Value) -> bool {
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => f.write_str(k),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// A parsed label selector: every requirement must hold. Empty selects
/// everything (the plugin never sends an empty one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    /// Parses Kubernetes' selector syntax: `a=b,c!=d,e in (f,g),h notin
    /// (i),j,!k`; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_SELECTOR_LEN {
            return Err(format!(
                "the selector is longer than {MAX_SELECTOR_LEN} characters"
            ));
        }
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        let mut requirements = Vec::new();
        parser.skip_spaces();
        if parser.done() {
            return Ok(Self(requirements));
        }
        loop {
            requirements.push(parser.requirement()?);
            if requirements.len() > MAX_REQUIREMENTS {
                return Err(format!("more than {MAX_REQUIREMENTS} requirements"));
            }
            parser.skip_spaces();
            if parser.done() {
                break;
            }
            parser.expect(',')?;
        }
        Ok(Self(requirements))
    }

    /// `key=value`.
    pub fn equals(key: &str, value: &str) -> Self {
        Self(vec![Requirement::Equals(key.to_owned(), value.to_owned())])
    }

    /// Whether an object whose `metadata.labels` are `labels` is selected.
    pub fn matches(&self, labels: &Value) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// The selector, percent-encoded for a `labelSelector=` query value.
    pub fn query_value(&self) -> String {
        utf8_percent_encode(&self.to_string(), QUERY_VALUE).to_string()
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn done(&self) -> bool {
        self.at >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(match self.peek() {
                Some(_) => format!("expected `{c}` at {:?}", self.rest()),
                None => format!("expected `{c}` at the end"),
            })
        }
    }

    fn rest(&self) -> String {
        self.chars[self.at..].iter().take(20).collect()
    }

    /// A run of label characters (a key or a value).
    fn word(&mut self) -> String {
        self.skip_spaces();
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn key(&mut self) -> Result<String, String> {
        let key = self.word();
        valid_key(&key)?;
        Ok(key)
    }

    fn value(&mut self) -> Result<String, String> {
        let value = self.word();
        valid_value(&value)?;
        Ok(value)
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_spaces();
        if self.peek() == Some('!') {
            self.at += 1;
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        self.skip_spaces();
        match self.peek() {
            None | Some(',') => Ok(Requirement::Exists(key)),
            Some('=') => {
                self.at += 1;
                if self.peek() == Some('=') {
                    self.at += 1;
                }
                Ok(Requirement::Equals(key, self.value()?))
            }
            Some('!') => {
                self.at += 1;
                if self.peek() != Some('=') {
                    return Err(format!("expected `!=` after {key:?}"));
                }
                self.at += 1;
                Ok(Requirement::NotEquals(key, self.value()?))
            }
            Some(_) => {
                let operator = self.word();
                let values = self.set()?;
                match operator.as_str() {
                    "in" => Ok(Requirement::In(key, values)),
                    "notin" => Ok(Requirement::NotIn(key, values)),
                    other => Err(format!(
                        "unknown operator {other:?} after {key:?} (expected =, ==, !=, in, notin)"
                    )),
                }
            }
        }
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        self.expect('(')?;
        let mut values = Vec::new();
        loop {
            self.skip_spaces();
            if self.peek() == Some(')') && values.is_empty() {
                return Err("an empty set of values".to_owned());
            }
            values.push(self.value()?);
            if values.len() > MAX_SET_VALUES {
                return Err(format!("more than {MAX_SET_VALUES} values in a set"));
            }
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(')') => {
                    self.at += 1;
                    return Ok(values);
                }
                _ => return Err("a set of values must end with `)`".to_owned()),
            }
        }
    }
}

/// A label key: an optional DNS prefix and `/`, then a name of at most 63
/// characters (alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric).
pub fn valid_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !ok {
            return Err(format!("{key:?} has an invalid prefix"));
        }
    }
    if name.is_empty() {
        return Err(if key.is_empty() {
            "a label key is missing".to_owned()
        } else {
            format!("{key:?} has no name after its prefix")
        });
    }
    if !valid_name(name) {
        return Err(format!("{key:?} is not a valid label key"));
    }
    Ok(())
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`,
/// starting and ending alphanumeric.
pub fn valid_value(value: &str) -> Result<(), String> {
    if value.is_empty() || valid_name(value) {
        Ok(())
    } else {
        Err(format!("{value:?} is not a valid label value"))
    }
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 label (namespaces, object names are subdomains but the ones
/// the plugin puts in URLs are checked with this stricter rule plus `.`).
pub fn valid_object_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=253).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
}

/// What an entity selects in every cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The label selector.
    pub selector: Selector,
    /// Only this namespace, when the entity says so.
    pub namespace: Option<String>,
}

impl Target {
    /// The target of an entity from its annotations (`None`: no
    /// Kubernetes annotation); `Err` says which annotation is malformed.
    pub fn of_entity(entity: &Value) -> Option<Result<Self, String>> {
        let annotations = &entity["metadata"]["annotations"];
        let get = |name: &str| {
            annotations
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let selector = match (get(SELECTOR_ANNOTATION), get(ID_ANNOTATION)) {
            (Some(text), _) => Selector::parse(text)
                .and_then(|s| {
                    if s.0.is_empty() {
                        Err("it selects everything".to_owned())
                    } else {
                        Ok(s)
                    }
                })
                .map_err(|e| format!("annotation {SELECTOR_ANNOTATION} `{text}`: {e}")),
            (None, Some(id)) => valid_value(id)
                .map(|()| Selector::equals(ID_LABEL, id))
                .map_err(|e| format!("annotation {ID_ANNOTATION}: {e}")),
            (None, None) => return None,
        };
        let namespace = match get(NAMESPACE_ANNOTATION) {
            None => Ok(None),
            Some(ns) if ns.len() <= 63 && valid_object_name(ns) && !ns.contains('.') => {
                Ok(Some(ns.to_owned()))
            }
            Some(ns) => Err(format!(
                "annotation {NAMESPACE_ANNOTATION}: {ns:?} is not a namespace name"
            )),
        };
        Some(selector.and_then(|selector| {
            Ok(Self {
                selector,
                namespace: namespace?,
            })
        }))
    }

    /// The entity's `backstage.io/kubernetes-id` when that is all it
    /// selects by (so it can share a combined `in (...)` query).
    pub fn plain_id(&self) -> Option<&str> {
        match self.selector.0.as_slice() {
            [Requirement::Equals(k, v)] if k == ID_LABEL => Some(v),
            _ => None,
        }
    }

    /// Whether `object` (a Kubernetes object) is one of the entity's.
    pub fn selects(&self, object: &Value) -> bool {
        let metadata = &object["metadata"];
        self.namespace
            .as_deref()
            .is_none_or(|ns| metadata["namespace"].as_str() == Some(ns))
            && self.selector.matches(&metadata["labels"])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_and_prints_every_operator() {
        let s = Selector::parse(
            " app.kubernetes.io/name = web , tier!=db,env in (prod, staging),zone notin (a),canary,!legacy",
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app.kubernetes.io/name=web,tier!=db,env in (prod,staging),zone notin (a),canary,!legacy"
        );
        assert_eq!(
            Selector::parse("a==b").unwrap(),
            Selector::equals("a", "b"),
            "== is ="
        );
        assert_eq!(Selector::parse("").unwrap(), Selector::default());
    }

    #[test]
    fn refuses_malformed_selectors() {
        for bad in [
            "a=b c",
            "a in b",
            "a in ()",
            "a in (b",
            "a ~ b",
            "=b",
            "a=-b",
            "a=b,",
            "UPPER.example/x=y",
            "a!b",
            "a/=b",
            "a=b;rm",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(Selector::parse(&"a=b,".repeat(1000)).is_err());
    }

    #[test]
    fn matches_labels() {
        let labels = json!({"app": "web", "env": "prod", "backstage.io/kubernetes-id": "web"});
        let yes = [
            "app=web",
            "env in (staging,prod)",
            "tier!=db",
            "zone notin (a)",
            "app",
            "!legacy",
            "backstage.io/kubernetes-id=web,env=prod",
        ];
        let no = [
            "app=api",
            "env notin (prod)",
            "env!=prod",
            "tier",
            "!app",
            "app=web,env=dev",
        ];
        for s in yes {
            assert!(Selector::parse(s).unwrap().matches(&labels), "{s}");
        }
        for s in no {
            assert!(!Selector::parse(s).unwrap().matches(&labels), "{s}");
        }
        assert!(
            !Selector::parse("app=web").unwrap().matches(&Value::Null),
            "no labels"
        );
    }

    #[test]
    fn encodes_for_a_query() {
        let s = Selector::parse("backstage.io/kubernetes-id in (a,b),x!=y").unwrap();
        assert_eq!(
            s.query_value(),
            "backstage.io%2Fkubernetes-id%20in%20%28a%2Cb%29%2Cx%21%3Dy"
        );
    }

    #[test]
    fn entity_targets() {
        let entity = |annotations: Value| json!({"metadata": {"annotations": annotations}});
        let t = Target::of_entity(&entity(json!({ID_ANNOTATION: "ledger-service"})))
            .unwrap()
            .unwrap();
        assert_eq!(
            t.selector.to_string(),
            "backstage.io/kubernetes-id=ledger-service"
        );
        assert_eq!(t.plain_id(), Some("ledger-service"));
        assert_eq!(t.namespace, None);

        let t = Target::of_entity(&entity(json!({
            ID_ANNOTATION: "ignored",
            SELECTOR_ANNOTATION: "app.kubernetes.io/name=web,tier in (api)",
            NAMESPACE_ANNOTATION: "shop",
        })))
        .unwrap()
        .unwrap();
        assert_eq!(
            t.selector.to_string(),
            "app.kubernetes.io/name=web,tier in (api)"
        );
        assert_eq!(t.plain_id(), None);
        assert_eq!(t.namespace.as_deref(), Some("shop"));
        let pod = json!({"metadata": {"namespace": "shop", "labels": {"app.kubernetes.io/name": "web", "tier": "api"}}});
        assert!(t.selects(&pod));
        let elsewhere = json!({"metadata": {"namespace": "other", "labels": {"app.kubernetes.io/name": "web", "tier": "api"}}});
        assert!(!t.selects(&elsewhere));

        assert!(Target::of_entity(&entity(json!({}))).is_none());
        assert!(Target::of_entity(&json!({"metadata": {}})).is_none());
        for bad in [
            json!({ID_ANNOTATION: "not a label"}),
            json!({SELECTOR_ANNOTATION: "a in"}),
            json!({SELECTOR_ANNOTATION: "   "}),
            json!({ID_ANNOTATION: "x", NAMESPACE_ANNOTATION: "../kube-system"}),
        ] {
            let target = Target::of_entity(&entity(bad.clone()));
            if bad.get(SELECTOR_ANNOTATION).is_some_and(|v| v == "   ") {
                assert!(target.is_none(), "a blank annotation is no annotation");
            } else {
                assert!(target.unwrap().is_err(), "{bad}");
            }
        }
    }

    #[test]
    fn object_names() {
        assert!(valid_object_name("ledger-service"));
        assert!(valid_object_name("a.b-c"));
        for bad in ["", "-a", "a-", "A", "a/b", "a%2fb", "a b", ".."] {
            assert!(!valid_object_name(bad), "{bad}");
        }
    }
}
