//! API definitions: OpenAPI (3.x and Swagger 2) rendered as operations,
//! parameters and responses; every other type shown as source with light
//! highlighting (YAML keys, protobuf and GraphQL keywords, comments, strings).

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

use maud::{Markup, PreEscaped, html};
use serde_json::{Map, Value};

use super::catalog::truncate;

/// Definitions larger than this are shown as (truncated) source, unparsed:
/// the page must stay cheap whatever a descriptor file holds.
const MAX_DEFINITION_BYTES: usize = 1024 * 1024;
/// Characters of an oversized definition's source shown.
const OVERSIZED_PREVIEW_CHARS: usize = 200_000;
/// Rendered definitions kept, by count and by bytes of HTML.
const CACHE_ENTRIES: usize = 128;
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Rendered definitions by digest of type and text: an entity version is
/// parsed once, not on every page view.
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

#[derive(Default)]
struct Cache {
    html: HashMap<[u8; 32], String>,
    order: VecDeque<[u8; 32]>,
    bytes: usize,
}

impl Cache {
    fn insert(&mut self, key: [u8; 32], html: String) {
        if html.len() > CACHE_BYTES || self.html.contains_key(&key) {
            return;
        }
        self.bytes += html.len();
        self.html.insert(key, html);
        self.order.push_back(key);
        while self.order.len() > CACHE_ENTRIES || self.bytes > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(h) = self.html.remove(&old) {
                self.bytes -= h.len();
            }
        }
    }
}

fn digest(api_type: &str, definition: &str) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(api_type.as_bytes());
    h.update([0]);
    h.update(definition.as_bytes());
    h.finalize().into()
}

/// The definition of an API entity of type `api_type`, from the cache when
/// this exact text was rendered before.
pub(crate) fn render(api_type: &str, definition: &str) -> Markup {
    if definition.len() > MAX_DEFINITION_BYTES {
        return html! {
            p.muted { "This definition is larger than " (MAX_DEFINITION_BYTES / 1024) " KiB, so it is not rendered; here is the start of its source." }
            (highlighted(api_type, &truncate(definition, OVERSIZED_PREVIEW_CHARS)))
        };
    }
    let key = digest(api_type, definition);
    let lock = || {
        CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(html) = lock().html.get(&key).cloned() {
        return PreEscaped(html);
    }
    let markup = render_uncached(api_type, definition);
    lock().insert(key, markup.0.clone());
    markup
}

const METHODS: &[&str] = &[
    "get", "put", "post", "patch", "delete", "head", "options", "trace",
];

fn render_uncached(api_type: &str, definition: &str) -> Markup {
    let is_openapi = api_type.eq_ignore_ascii_case("openapi");
    if is_openapi
        && let Ok(doc) = callboard_catalog::yaml::parse_value(definition)
        && doc.get("paths").is_some_and(Value::is_object)
    {
        return html! {
            (openapi(&doc))
            details.raw {
                summary { "Definition source" }
                (highlighted(api_type, definition))
            }
        };
    }
    html! {
        @if is_openapi {
            p.muted { "This OpenAPI definition could not be read as a document with paths; here is its source." }
        }
        (highlighted(api_type, definition))
    }
}

/// Follows a local `$ref` (a few hops at most).
fn resolve<'a>(root: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..5 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(target) => v = target,
            None => break,
        }
    }
    v
}

/// A one-line description of a schema: `Quote`, `array of Parcel`, `string (date-time)`.
fn schema_label(root: &Value, schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    let schema = resolve(root, schema);
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let label = match ty {
        "array" => format!(
            "array of {}",
            schema
                .get("items")
                .map(|i| schema_label(root, i))
                .unwrap_or_else(|| "anything".into())
        ),
        "" if schema.get("properties").is_some() => "object".into(),
        "" => ["oneOf", "anyOf", "allOf"]
            .iter()
            .find_map(|k| {
                schema.get(*k).and_then(Value::as_array).map(|alts| {
                    let names: Vec<String> = alts.iter().map(|a| schema_label(root, a)).collect();
                    format!("{} {}", k, names.join(" | "))
                })
            })
            .unwrap_or_else(|| "any".into()),
        t => t.to_owned(),
    };
    let mut label = match schema.get("format").and_then(Value::as_str) {
        Some(f) => format!("{label} ({f})"),
        None => label,
    };
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        label = format!("{label}: {}", truncate(&values.join(", "), 80));
    }
    label
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn openapi(doc: &Value) -> Markup {
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let empty = Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let operations: usize = paths
        .values()
        .map(|p| METHODS.iter().filter(|m| p.get(**m).is_some()).count())
        .sum();
    let servers: Vec<&str> = doc
        .get("servers")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .map(|s| str_of(s, "url"))
                .filter(|u| !u.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let version = doc
        .get("openapi")
        .or_else(|| doc.get("swagger"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let schemas = doc
        .pointer("/components/schemas")
        .or_else(|| doc.get("definitions"))
        .and_then(Value::as_object);
    html! {
        div.api-info {
            h3 { (str_of(&info, "title")) " " span.badge { "v" (str_of(&info, "version")) } " " span.muted { "OpenAPI " (version) } }
            @if !str_of(&info, "description").is_empty() { p { (str_of(&info, "description")) } }
            @if !servers.is_empty() {
                p { "Servers: " @for (i, s) in servers.iter().enumerate() { @if i > 0 { ", " } code { (s) } } }
            }
        }
        h3 #operations { "Operations (" (operations) ")" }
        div.operations {
            @for (path, item) in paths {
                @for method in METHODS {
                    @if let Some(op) = item.get(*method) {
                        (operation(doc, path, method, item, op))
                    }
                }
            }
        }
        @if let Some(schemas) = schemas {
            h3 { "Schemas (" (schemas.len()) ")" }
            @for (name, schema) in schemas {
                details.operation {
                    summary { code.path { (name) } span.muted { (schema_label(doc, schema)) } }
                    div.body { (schema_body(doc, schema)) }
                }
            }
        }
    }
}

fn operation(doc: &Value, path: &str, method: &str, item: &Value, op: &Value) -> Markup {
    let summary = str_of(op, "summary");
    let deprecated = op
        .get("deprecated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let params: Vec<&Value> = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .map(|p| resolve(doc, p))
        .collect();
    let body = op.get("requestBody").map(|b| resolve(doc, b));
    let responses = op.get("responses").and_then(Value::as_object);
    let class = format!("method method-{method}");
    html! {
        details.operation {
            summary {
                span class=(class) { (method.to_uppercase()) }
                code.path.deprecated-op[deprecated] { (path) }
                span { (summary) }
                @if deprecated { span.badge.life-deprecated { "deprecated" } }
            }
            div.body {
                @if !str_of(op, "description").is_empty() { p { (str_of(op, "description")) } }
                @if !str_of(op, "operationId").is_empty() { p.muted { "Operation id: " code { (str_of(op, "operationId")) } } }
                @if !params.is_empty() {
                    h4 { "Parameters" }
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "In" } th scope="col" { "Type" } th scope="col" { "Required" } th scope="col" { "Description" } } }
                        tbody {
                            @for p in &params {
                                tr {
                                    td { code { (str_of(p, "name")) } }
                                    td { (str_of(p, "in")) }
                                    td { (p.get("schema").map(|s| schema_label(doc, s)).unwrap_or_else(|| str_of(p, "type").to_owned())) }
                                    td { (if p.get("required").and_then(Value::as_bool).unwrap_or(false) { "yes" } else { "no" }) }
                                    td { (str_of(p, "description")) }
                                }
                            }
                        }
                    }
                }
                @if let Some(body) = body {
                    h4 { "Request body" @if body.get("required").and_then(Value::as_bool).unwrap_or(false) { " (required)" } }
                    @if !str_of(body, "description").is_empty() { p { (str_of(body, "description")) } }
                    (content(doc, body))
                }
                @if let Some(responses) = responses {
                    h4 { "Responses" }
                    table {
                        thead { tr { th scope="col" { "Status" } th scope="col" { "Description" } th scope="col" { "Body" } } }
                        tbody {
                            @for (code, response) in responses {
                                @let response = resolve(doc, response);
                                tr {
                                    td { code { (code) } }
                                    td { (str_of(response, "description")) }
                                    td { (content(doc, response)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The media types of a request or response body and their schemas.
fn content(doc: &Value, body: &Value) -> Markup {
    let media = body.get("content").and_then(Value::as_object);
    html! {
        @if let Some(media) = media {
            @for (ty, m) in media {
                div { code { (ty) } @if let Some(s) = m.get("schema") { " " (schema_label(doc, s)) } }
            }
        } @else if let Some(s) = body.get("schema") {
            div { (schema_label(doc, s)) }
        }
    }
}

fn schema_body(doc: &Value, schema: &Value) -> Markup {
    let schema = resolve(doc, schema);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        @if !str_of(schema, "description").is_empty() { p { (str_of(schema, "description")) } }
        @if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            table {
                thead { tr { th scope="col" { "Property" } th scope="col" { "Type" } th scope="col" { "Required" } th scope="col" { "Description" } } }
                tbody {
                    @for (name, p) in props {
                        tr {
                            td { code { (name) } }
                            td { (schema_label(doc, p)) }
                            td { (if required.contains(&name.as_str()) { "yes" } else { "no" }) }
                            td { (str_of(resolve(doc, p), "description")) }
                        }
                    }
                }
            }
        }
    }
}

// ----- highlighting -----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Yaml,
    Proto,
    GraphQl,
    Plain,
}

const PROTO_KEYWORDS: &[&str] = &[
    "syntax", "package", "import", "option", "service", "rpc", "returns", "message", "enum",
    "repeated", "optional", "oneof", "map", "stream", "reserved", "public", "weak", "extend",
];
const GRAPHQL_KEYWORDS: &[&str] = &[
    "type",
    "query",
    "mutation",
    "subscription",
    "schema",
    "input",
    "enum",
    "interface",
    "union",
    "scalar",
    "fragment",
    "extend",
    "implements",
    "directive",
    "on",
];

/// Source text with keys, keywords, strings and comments marked up.
pub(crate) fn highlighted(api_type: &str, source: &str) -> Markup {
    let lang = match api_type.to_lowercase().as_str() {
        "openapi" | "asyncapi" | "yaml" if !source.trim_start().starts_with('{') => Lang::Yaml,
        "grpc" | "protobuf" | "proto" => Lang::Proto,
        "graphql" => Lang::GraphQl,
        _ => Lang::Plain,
    };
    html! {
        pre.code tabindex="0" aria-label="Definition source" {
            code {
                @for line in source.lines() {
                    (highlight_line(lang, line)) "\n"
                }
            }
        }
    }
}

fn highlight_line(lang: Lang, line: &str) -> Markup {
    match lang {
        Lang::Plain => html! { (line) },
        Lang::Yaml => yaml_line(line),
        Lang::Proto => code_line(line, "//", PROTO_KEYWORDS),
        Lang::GraphQl => code_line(line, "#", GRAPHQL_KEYWORDS),
    }
}

fn yaml_line(line: &str) -> Markup {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    if trimmed.starts_with('#') {
        return html! { (indent) span.c { (trimmed) } };
    }
    let (dash, rest) = match trimmed.strip_prefix("- ") {
        Some(rest) => ("- ", rest),
        None => ("", trimmed),
    };
    // A key is everything up to the first ": " (or a final ':'), if that
    // stretch has no spaces or is quoted.
    let split = rest
        .find(": ")
        .or_else(|| rest.ends_with(':').then(|| rest.len() - 1));
    match split {
        Some(i) if !rest[..i].contains(' ') || rest.starts_with('"') || rest.starts_with('\'') => {
            let (key, value) = rest.split_at(i);
            let after = &value[1..];
            let v = after.trim_start();
            let quoted = v.starts_with('"') || v.starts_with('\'');
            html! {
                (indent) (dash) span.k { (key) } ":"
                @if quoted { (&after[..after.len() - v.len()]) span.s { (v) } } @else { (after) }
            }
        }
        _ => html! { (indent) (dash) (rest) },
    }
}

fn code_line(line: &str, comment: &str, keywords: &[&str]) -> Markup {
    let (code, rest) = match line.find(comment) {
        // A comment marker inside a string is rare in definitions; accept it.
        Some(i) => line.split_at(i),
        None => (line, ""),
    };
    let mut tokens: Vec<(Option<&'static str>, &str)> = Vec::new();
    let mut start = 0;
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            let end = code[i + 1..].find('"').map_or(code.len(), |j| i + j + 2);
            tokens.push((None, &code[start..i]));
            tokens.push((Some("s"), &code[i..end]));
            i = end;
            start = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let end = code[i..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(code.len(), |j| i + j);
            let word = &code[i..end];
            if keywords.contains(&word) {
                tokens.push((None, &code[start..i]));
                tokens.push((Some("kw"), word));
                start = end;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    tokens.push((None, &code[start..]));
    html! {
        @for (class, t) in tokens {
            @match class {
                Some(class) => span class=(class) { (t) },
                None => (t),
            }
        }
        @if !rest.is_empty() { span.c { (rest) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_definition_is_shown_as_source_without_parsing() {
        let huge = format!(
            "openapi: 3.0.0\npaths: {{}}\nx: \"{}\"\n",
            "y".repeat(MAX_DEFINITION_BYTES)
        );
        let html = render("openapi", &huge).0;
        assert!(html.contains("is not rendered"), "{}", &html[..200]);
        assert!(!html.contains("Operations ("));
        assert!(html.len() < OVERSIZED_PREVIEW_CHARS + 64 * 1024);
    }

    #[test]
    fn a_definition_is_parsed_once_per_version() {
        let text = "openapi: 3.0.0\ninfo: {title: Cached, version: 1.0.0}\npaths:\n  /a:\n    get: {summary: one}\n";
        let first = render("openapi", text).0;
        assert!(first.contains("Operations (1)"));
        let key = digest("openapi", text);
        let cached = CACHE.lock().unwrap().html.get(&key).cloned();
        assert_eq!(cached.as_deref(), Some(first.as_str()));
        assert_eq!(render("openapi", text).0, first);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = Cache::default();
        for i in 0..CACHE_ENTRIES + 10 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(key, "x".repeat(1024));
        }
        assert_eq!(cache.html.len(), CACHE_ENTRIES);
        assert_eq!(cache.bytes, CACHE_ENTRIES * 1024);
    }
}
