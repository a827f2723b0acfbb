//! Read the software catalog (needs the `catalog` capability). Entities come
//! back as JSON values in the Backstage shape.

use serde_json::Value;

use crate::bindings::callboard::plugin::catalog as wit;

/// Why a catalog read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// The operator has not granted this plugin catalog access.
    Denied,
    /// The ref or filter is malformed.
    Invalid(String),
    /// The host could not complete the read.
    Unavailable(String),
    /// The host returned something that is not JSON (a host bug).
    Json(String),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogError::Denied => f.write_str("catalog access is not granted to this plugin"),
            CatalogError::Invalid(why) => write!(f, "invalid catalog request: {why}"),
            CatalogError::Unavailable(why) => write!(f, "catalog unavailable: {why}"),
            CatalogError::Json(why) => write!(f, "catalog returned invalid JSON: {why}"),
        }
    }
}

impl std::error::Error for CatalogError {}

impl From<wit::Error> for CatalogError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied => CatalogError::Denied,
            wit::Error::Invalid(why) => CatalogError::Invalid(why),
            wit::Error::Unavailable(why) => CatalogError::Unavailable(why),
        }
    }
}

fn parse(text: &str) -> Result<Value, CatalogError> {
    serde_json::from_str(text).map_err(|e| CatalogError::Json(e.to_string()))
}

/// One entity by ref (`[kind:][namespace/]name`), or `None`.
pub fn get(entity_ref: &str) -> Result<Option<Value>, CatalogError> {
    wit::get_entity(entity_ref)?
        .as_deref()
        .map(parse)
        .transpose()
}

/// Entities matching Backstage filters: each string is an alternative (OR)
/// of comma-separated `key=value` conditions (AND). At most `limit`.
///
/// ```no_run
/// let services = callboard_sdk::catalog::query(&["kind=component,spec.type=service"], 1000);
/// ```
pub fn query(filter: &[&str], limit: u32) -> Result<Vec<Value>, CatalogError> {
    let filter: Vec<String> = filter.iter().map(|f| (*f).to_owned()).collect();
    wit::query(&filter, limit)?
        .iter()
        .map(|text| parse(text))
        .collect()
}

/// `kind:namespace/name` of an entity JSON value, lower-cased as Backstage
/// compares refs.
pub fn entity_ref(entity: &Value) -> String {
    let kind = entity["kind"].as_str().unwrap_or("component");
    let namespace = entity["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = entity["metadata"]["name"].as_str().unwrap_or("");
    format!("{kind}:{namespace}/{name}").to_ascii_lowercase()
}
