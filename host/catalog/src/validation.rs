//! Entity validation, following Backstage's `catalog-model` rules. Every
//! message names the field it is about.

use serde_json::{Map, Value};

use crate::entity_ref::{DEFAULT_NAMESPACE, EntityRef};
use crate::relations::{REF_FIELDS, RefFieldShape};

/// One problem with an entity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationError {
    /// Dotted path of the offending field, e.g. `metadata.name`.
    pub field: String,
    /// Message that names the field.
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

const RESERVED: [&str; 10] = [
    "apiVersion",
    "kind",
    "uid",
    "etag",
    "generation",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
];

const NAME_RULE: &str = "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total";
const NAMESPACE_RULE: &str =
    "a string that is sequences of [a-z0-9] separated by [-], at most 63 characters in total";
const KIND_RULE: &str =
    "a string that is a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters in total";
const API_VERSION_RULE: &str = "a string that is an optional DNS subdomain prefix and /, followed by a sequence of [a-zA-Z0-9], at most 63 characters";
const KEY_RULE: &str =
    "a string that is an optional lower-case DNS subdomain prefix and /, followed by a valid name";
const TAG_RULE: &str =
    "a string that is sequences of [a-z0-9+#:] separated by [-], at most 63 characters in total";

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`, 1-63 characters.
pub fn is_valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `^[a-z0-9]+(-[a-z0-9]+)*$`, 1-63 characters.
pub fn is_valid_namespace(s: &str) -> bool {
    s.len() <= 63 && dash_separated(s, |c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// `^[a-zA-Z][a-z0-9A-Z]*$`, 1-63 characters.
pub fn is_valid_kind(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter().all(u8::is_ascii_alphanumeric)
}

/// `^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$`, 1-63 characters.
pub fn is_valid_tag(s: &str) -> bool {
    s.len() <= 63
        && dash_separated(s, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b':' | b'+' | b'#')
        })
}

fn dash_separated(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    !s.is_empty()
        && s.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(&allowed))
}

/// A lower-case DNS subdomain of at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            label.len() <= 63
                && dash_separated(label, |c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

pub fn is_valid_api_version(s: &str) -> bool {
    let (prefix, version) = match s.split_once('/') {
        Some((prefix, version)) => (Some(prefix), version),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain_any_case)
        && !version.is_empty()
        && version.len() <= 63
        && version.bytes().all(|c| c.is_ascii_alphanumeric())
}

fn is_dns_subdomain_any_case(s: &str) -> bool {
    is_dns_subdomain(&s.to_ascii_lowercase())
}

/// Label and annotation keys: optional `prefix/` plus a valid name.
pub fn is_valid_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => {
            !name.contains('/') && is_dns_subdomain(prefix) && is_valid_name(name)
        }
        None => is_valid_name(s),
    }
}

struct Errors(Vec<ValidationError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            field: field.into(),
            message: message.into(),
        });
    }
    fn invalid(&mut self, field: &str, rule: &str, found: &Value) {
        let found = match found {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        self.push(
            field,
            format!("\"{field}\" is not valid; expected {rule} but found {found}"),
        );
    }
}

/// Validates an input entity (as read from a file or sent to
/// `/validate-entity`). An empty result means it is valid.
pub fn validate_entity(entity: &Value) -> Vec<ValidationError> {
    let mut errors = Errors(Vec::new());
    let Some(root) = entity.as_object() else {
        errors.push("", "Entity must be an object");
        return errors.0;
    };
    for key in root.keys() {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "spec") {
            errors.push(key.clone(), format!("Unknown field {key}"));
        }
    }
    let api_version = check_string(&mut errors, root, "apiVersion", "apiVersion", true, |s| {
        is_valid_api_version(s)
            .then_some(())
            .ok_or(API_VERSION_RULE)
    });
    let kind = check_string(&mut errors, root, "kind", "kind", true, |s| {
        is_valid_kind(s).then_some(()).ok_or(KIND_RULE)
    });
    let namespace = match root.get("metadata") {
        Some(Value::Object(metadata)) => validate_metadata(&mut errors, metadata),
        Some(_) => {
            errors.push("metadata", "\"metadata\" must be an object");
            DEFAULT_NAMESPACE.to_owned()
        }
        None => {
            errors.push("metadata", "\"metadata\" is required");
            DEFAULT_NAMESPACE.to_owned()
        }
    };
    let spec = match root.get("spec") {
        None => None,
        Some(Value::Object(spec)) => Some(spec),
        Some(_) => {
            errors.push("spec", "\"spec\" must be an object");
            return errors.0;
        }
    };
    if let Some(spec) = spec {
        for key in spec.keys() {
            if RESERVED.contains(&key.as_str()) {
                errors.push(
                    format!("spec.{key}"),
                    format!("\"spec.{key}\" is a reserved field name"),
                );
            }
        }
    }
    if let (Some(api_version), Some(kind)) = (api_version, kind) {
        validate_kind(&mut errors, api_version, kind, spec, &namespace);
    }
    errors.0
}

fn check_string<'a>(
    errors: &mut Errors,
    obj: &'a Map<String, Value>,
    key: &str,
    field: &str,
    required: bool,
    rule: impl Fn(&str) -> Result<(), &'static str>,
) -> Option<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            if required {
                errors.push(field, format!("\"{field}\" is required"));
            }
            None
        }
        Some(value @ Value::String(s)) => match rule(s) {
            Ok(()) => Some(s),
            Err(expected) => {
                errors.invalid(field, expected, value);
                None
            }
        },
        Some(other) => {
            errors.invalid(field, "a string", other);
            None
        }
    }
}

fn validate_metadata(errors: &mut Errors, metadata: &Map<String, Value>) -> String {
    check_string(errors, metadata, "name", "metadata.name", true, |s| {
        is_valid_name(s).then_some(()).ok_or(NAME_RULE)
    });
    let namespace = check_string(
        errors,
        metadata,
        "namespace",
        "metadata.namespace",
        false,
        |s| is_valid_namespace(s).then_some(()).ok_or(NAMESPACE_RULE),
    )
    .unwrap_or(DEFAULT_NAMESPACE)
    .to_owned();
    for output_only in ["uid", "etag", "generation"] {
        if metadata.contains_key(output_only) {
            errors.push(
                format!("metadata.{output_only}"),
                format!("\"metadata.{output_only}\" is set by the catalog and must not be given"),
            );
        }
    }
    for field in ["title", "description"] {
        check_string(
            errors,
            metadata,
            field,
            &format!("metadata.{field}"),
            false,
            |_| Ok(()),
        );
    }
    for (section, value_rule) in [("labels", true), ("annotations", false)] {
        match metadata.get(section) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    let field = format!("metadata.{section}.{key}");
                    if RESERVED.contains(&key.as_str()) {
                        errors.push(&field, format!("\"{field}\" uses a reserved key name"));
                    } else if !is_valid_key(key) {
                        errors.invalid(
                            &format!("metadata.{section}"),
                            KEY_RULE,
                            &Value::String(key.clone()),
                        );
                    }
                    match value {
                        Value::String(v) if value_rule && !v.is_empty() && !is_valid_name(v) => {
                            errors.invalid(&field, NAME_RULE, value)
                        }
                        Value::String(_) => {}
                        other => errors.invalid(&field, "a string", other),
                    }
                }
            }
            Some(other) => errors.invalid(&format!("metadata.{section}"), "an object", other),
        }
    }
    match metadata.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tags)) => {
            for (i, tag) in tags.iter().enumerate() {
                match tag {
                    Value::String(t) if is_valid_tag(t) => {}
                    other => errors.invalid(&format!("metadata.tags[{i}]"), TAG_RULE, other),
                }
            }
        }
        Some(other) => errors.invalid("metadata.tags", "an array of strings", other),
    }
    match metadata.get("links") {
        None | Some(Value::Null) => {}
        Some(Value::Array(links)) => {
            for (i, link) in links.iter().enumerate() {
                let field = format!("metadata.links[{i}]");
                let Some(link) = link.as_object() else {
                    errors.invalid(&field, "an object", link);
                    continue;
                };
                check_string(errors, link, "url", &format!("{field}.url"), true, |s| {
                    url::Url::parse(s).map(drop).map_err(|_| "a valid URL")
                });
                for key in ["title", "icon", "type"] {
                    check_string(errors, link, key, &format!("{field}.{key}"), false, |_| {
                        Ok(())
                    });
                }
            }
        }
        Some(other) => errors.invalid("metadata.links", "an array", other),
    }
    namespace
}

/// Spec fields a kind requires (by shape) and allows.
struct KindSchema {
    required_strings: &'static [&'static str],
    required_arrays: &'static [&'static str],
    optional_strings: &'static [&'static str],
    optional_arrays: &'static [&'static str],
}

fn schema_for(api_version: &str, kind: &str) -> Option<KindSchema> {
    let core = api_version == "backstage.io/v1alpha1"
        || (api_version == "backstage.io/v1beta1" && kind.eq_ignore_ascii_case("component"));
    let schema = |rs, ra, os, oa| KindSchema {
        required_strings: rs,
        required_arrays: ra,
        optional_strings: os,
        optional_arrays: oa,
    };
    match kind.to_ascii_lowercase().as_str() {
        "component" if core => Some(schema(
            &["type", "lifecycle", "owner"],
            &[],
            &["system", "subcomponentOf"],
            &["providesApis", "consumesApis", "dependsOn", "dependencyOf"],
        )),
        "api" if core => Some(schema(
            &["type", "lifecycle", "owner", "definition"],
            &[],
            &["system"],
            &[],
        )),
        "resource" if core => Some(schema(
            &["type", "owner"],
            &[],
            &["system"],
            &["dependsOn", "dependencyOf"],
        )),
        "system" if core => Some(schema(&["owner"], &[], &["domain", "type"], &[])),
        "domain" if core => Some(schema(&["owner"], &[], &["subdomainOf", "type"], &[])),
        "group" if core => Some(schema(&["type"], &["children"], &["parent"], &["members"])),
        "user" if core => Some(schema(&[], &["memberOf"], &[], &[])),
        "location" if core => Some(schema(
            &[],
            &[],
            &["type", "target", "presence"],
            &["targets"],
        )),
        "template" if api_version == "scaffolder.backstage.io/v1beta3" => {
            Some(schema(&["type"], &["steps"], &["owner"], &[]))
        }
        _ => None,
    }
}

fn validate_kind(
    errors: &mut Errors,
    api_version: &str,
    kind: &str,
    spec: Option<&Map<String, Value>>,
    namespace: &str,
) {
    let Some(schema) = schema_for(api_version, kind) else {
        errors.push(
            "kind",
            format!("Unsupported \"kind\" {kind} for \"apiVersion\" {api_version}: no schema knows this kind"),
        );
        return;
    };
    let empty = Map::new();
    let spec_map = spec.unwrap_or(&empty);
    let lower = kind.to_ascii_lowercase();
    if spec.is_none() && lower != "location" {
        errors.push("spec", "\"spec\" is required");
        return;
    }
    for key in schema.required_strings {
        let field = format!("spec.{key}");
        match spec_map.get(*key) {
            None | Some(Value::Null) => errors.push(&field, format!("\"{field}\" is required")),
            Some(Value::String(s)) if s.is_empty() => {
                errors.push(&field, format!("\"{field}\" must not be empty"))
            }
            Some(Value::String(_)) => {}
            Some(other) => errors.invalid(&field, "a string", other),
        }
    }
    for key in schema.required_arrays.iter().chain(schema.optional_arrays) {
        let field = format!("spec.{key}");
        let required = schema.required_arrays.contains(key);
        match spec_map.get(*key) {
            None | Some(Value::Null) if required => {
                errors.push(&field, format!("\"{field}\" is required"))
            }
            None | Some(Value::Null) => {}
            // Template steps are objects; every other list holds strings.
            Some(Value::Array(_)) if lower == "template" => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !matches!(item, Value::String(s) if !s.is_empty()) {
                        errors.invalid(&format!("{field}[{i}]"), "a non-empty string", item);
                    }
                }
            }
            Some(other) => errors.invalid(&field, "an array", other),
        }
    }
    for key in schema.optional_strings {
        let field = format!("spec.{key}");
        match spec_map.get(*key) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => errors.invalid(&field, "a string", other),
        }
    }
    if lower == "location"
        && let Some(Value::String(p)) = spec_map.get("presence")
        && p != "required"
        && p != "optional"
    {
        errors.invalid(
            "spec.presence",
            "one of \"required\" or \"optional\"",
            &Value::String(p.clone()),
        );
    }
    if lower == "template" {
        match spec_map.get("parameters") {
            None | Some(Value::Null) => {
                errors.push("spec.parameters", "\"spec.parameters\" is required")
            }
            Some(Value::Object(_) | Value::Array(_)) => {}
            Some(other) => errors.invalid("spec.parameters", "an object or array", other),
        }
    }
    if matches!(lower.as_str(), "group" | "user") {
        match spec_map.get("profile") {
            None | Some(Value::Null) => {}
            Some(Value::Object(profile)) => {
                for key in ["displayName", "email", "picture"] {
                    check_string(
                        errors,
                        profile,
                        key,
                        &format!("spec.profile.{key}"),
                        false,
                        |_| Ok(()),
                    );
                }
            }
            Some(other) => errors.invalid("spec.profile", "an object", other),
        }
    }
    // References must parse, with the field's default kind if it has one.
    for field in REF_FIELDS
        .iter()
        .filter(|f| f.kinds.contains(&lower.as_str()))
    {
        let targets: Vec<&str> = match (field.shape, spec_map.get(field.field)) {
            (RefFieldShape::One, Some(Value::String(s))) => vec![s],
            (RefFieldShape::Many, Some(Value::Array(items))) => {
                items.iter().filter_map(Value::as_str).collect()
            }
            _ => continue,
        };
        for target in targets {
            if let Err(e) = EntityRef::parse_with_defaults(target, field.default_kind, namespace) {
                errors.push(
                    format!("spec.{}", field.field),
                    format!("\"spec.{}\" is not valid: {e}", field.field),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(v: &Value) -> Vec<String> {
        validate_entity(v).into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn accepts_a_valid_component() {
        let e = json!({"apiVersion":"backstage.io/v1alpha1","kind":"Component",
            "metadata":{"name":"artist-web","tags":["java","c++"],"labels":{"a.b/c":"x"},
                        "annotations":{"backstage.io/x":"any thing"},"links":[{"url":"https://x.y"}]},
            "spec":{"type":"service","lifecycle":"production","owner":"team-a","dependsOn":["resource:db"]}});
        assert_eq!(messages(&e), Vec::<String>::new());
    }

    #[test]
    fn names_the_field() {
        let e = json!({"apiVersion":"backstage.io/v1alpha1","kind":"Component","extra":1,
            "metadata":{"name":"-bad","uid":"x","tags":["Bad Tag"],"links":[{"url":"nope"}]},
            "spec":{"type":"service","owner":"team-a","dependsOn":["db"]}});
        let m = messages(&e).join("\n");
        assert!(m.contains("Unknown field extra"), "{m}");
        assert!(
            m.contains("\"metadata.name\" is not valid; expected"),
            "{m}"
        );
        assert!(m.contains("found \"-bad\""), "{m}");
        assert!(m.contains("metadata.uid"), "{m}");
        assert!(m.contains("metadata.tags[0]"), "{m}");
        assert!(m.contains("metadata.links[0].url"), "{m}");
        assert!(m.contains("\"spec.lifecycle\" is required"), "{m}");
        assert!(m.contains("\"spec.dependsOn\" is not valid"), "{m}");
    }

    #[test]
    fn rules() {
        assert!(
            is_valid_name("a")
                && is_valid_name("a_b.c-D9")
                && !is_valid_name("a-")
                && !is_valid_name(&"a".repeat(64))
        );
        assert!(
            is_valid_namespace("my-ns") && !is_valid_namespace("My") && !is_valid_namespace("a--b")
        );
        assert!(is_valid_kind("Component") && !is_valid_kind("9x"));
        assert!(
            is_valid_api_version("backstage.io/v1alpha1")
                && is_valid_api_version("v1")
                && !is_valid_api_version("a/b/c")
        );
        assert!(
            is_valid_key("backstage.io/orphan")
                && !is_valid_key("a/b/c")
                && !is_valid_key("UP.io/x")
        );
        assert!(is_valid_tag("c++") && !is_valid_tag("Java"));
    }
}
