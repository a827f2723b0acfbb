//! The portal's search index (plugin API 0.4, needs the `search`
//! capability): this plugin's own documents, found with the catalog and
//! TechDocs from the portal's search and Backstage's search API, and
//! queries of the whole index as the current call's principal.
//!
//! ```no_run
//! use callboard_sdk::search::{self, Document};
//!
//! search::put(&[Document::new("runbook-42", "Restarting the gateway", "/plugins/ops/runbooks/42")
//!     .text("Drain the pods first, then ...")
//!     .entity("component:default/payment-gateway")])?;
//! let hits = search::query("gateway restart", &[], 10)?;
//! # Ok::<(), search::SearchError>(())
//! ```

use crate::bindings::callboard::plugin::search as wit;

/// Why a search operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchError {
    /// The operator has not granted this plugin `search`.
    Denied,
    /// A document or query is malformed or over a bound.
    Invalid(String),
    /// This plugin holds as many documents as it may (carried).
    TooMany(u32),
    /// The host could not complete the operation.
    Unavailable(String),
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied => f.write_str("search is not granted to this plugin"),
            Self::Invalid(why) => write!(f, "invalid search request: {why}"),
            Self::TooMany(cap) => write!(f, "a plugin holds at most {cap} search documents"),
            Self::Unavailable(why) => write!(f, "search unavailable: {why}"),
        }
    }
}

impl std::error::Error for SearchError {}

impl From<wit::Error> for SearchError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied => Self::Denied,
            wit::Error::Invalid(why) => Self::Invalid(why),
            wit::Error::TooMany(cap) => Self::TooMany(cap),
            wit::Error::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

/// A document this plugin contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    id: String,
    doc_type: String,
    title: String,
    text: String,
    location: String,
    entity_ref: Option<String>,
    permission: Option<String>,
}

impl Document {
    /// A document with the plugin's own key `id`, a title, and where a
    /// result leads (a portal path or an http(s) URL).
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        location: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            doc_type: String::new(),
            title: title.into(),
            text: String::new(),
            location: location.into(),
            entity_ref: None,
            permission: None,
        }
    }

    /// The body text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// The search type (default: the plugin's id).
    pub fn doc_type(mut self, doc_type: impl Into<String>) -> Self {
        self.doc_type = doc_type.into();
        self
    }

    /// The entity it is about: readers who may not read it never see it.
    pub fn entity(mut self, entity_ref: impl Into<String>) -> Self {
        self.entity_ref = Some(entity_ref.into());
        self
    }

    /// A permission this plugin declared that readers must hold.
    pub fn permission(mut self, permission: impl Into<String>) -> Self {
        self.permission = Some(permission.into());
        self
    }

    fn into_wit(self) -> wit::Document {
        wit::Document {
            id: self.id,
            doc_type: self.doc_type,
            title: self.title,
            text: self.text,
            location: self.location,
            entity_ref: self.entity_ref,
            permission: self.permission,
        }
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// `software-catalog`, `techdocs`, or a plugin's type.
    pub doc_type: String,
    /// The title.
    pub title: String,
    /// A snippet of the text around the matches.
    pub text: String,
    /// Where the result leads.
    pub location: String,
    /// The entity it belongs to, when it has one.
    pub entity_ref: Option<String>,
}

/// Adds or replaces documents (at most 1000 per call), all or nothing.
pub fn put(documents: &[Document]) -> Result<(), SearchError> {
    let docs: Vec<wit::Document> = documents.iter().cloned().map(Document::into_wit).collect();
    Ok(wit::put(&docs)?)
}

/// Removes this plugin's documents with these ids.
pub fn remove(ids: &[&str]) -> Result<(), SearchError> {
    let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    Ok(wit::remove(&ids)?)
}

/// Removes every document of this plugin.
pub fn clear() -> Result<(), SearchError> {
    Ok(wit::clear()?)
}

/// Searches the index as the current call's principal: at most `limit`
/// hits (the host caps it at 100), of `types` (empty: all).
pub fn query(term: &str, types: &[&str], limit: u32) -> Result<Vec<Hit>, SearchError> {
    let hits = wit::query(&wit::SearchQuery {
        term: term.to_owned(),
        types: types.iter().map(|s| (*s).to_owned()).collect(),
        limit,
    })?;
    Ok(hits
        .into_iter()
        .map(|h| Hit {
            doc_type: h.doc_type,
            title: h.title,
            text: h.text,
            location: h.location,
            entity_ref: h.entity_ref,
        })
        .collect())
}
