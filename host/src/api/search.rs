//! `GET /api/search/query`: Backstage's search API
//! (`plugins/search-backend/src/schema/openapi.yaml`), so Backstage's search
//! frontend and `@backstage/plugin-search-common` clients work unchanged.
//!
//! Parameters: `term`, `types[]`, `filters[<field>]` (deepObject; a field
//! may repeat, `filters[f][]=a&filters[f][]=b`), `pageCursor` (opaque),
//! `pageLimit` (1-100, default 25). Answer: `results` (`type`, `document`,
//! `highlight` with `preTag`/`postTag`, `rank`), `nextPageCursor`,
//! `previousPageCursor`, `numberOfResults`. Anyone who may read the
//! catalog may search; every hit is within what they may read.

use std::collections::BTreeMap;

use axum::{
    Extension, Json, Router,
    extract::{Query, State},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::Engine as _;
use callboard_store::search::{MAX_FILTERS, MAX_LIMIT, MAX_OFFSET, SearchHit, SearchQuery};
use serde_json::{Map, Value, json};

use crate::api::error::{ApiError, backstage_errors};
use crate::identity::Identity;
use crate::search::{Search, SearchError, marked};

/// Results per page when `pageLimit` is not given (Backstage's default).
pub const DEFAULT_LIMIT: usize = 25;

/// The search router, mounted at `/api/search`.
pub fn router(search: Search) -> Router {
    Router::new()
        .route("/query", get(query))
        .layer(axum::middleware::from_fn(backstage_errors))
        .with_state(search)
}

/// The tags around highlighted words. Backstage's engines use tags no
/// document text contains; these are the same for every response, since
/// clients read them from `highlight.preTag` anyway.
const PRE_TAG: &str = "<cb-hl>";
const POST_TAG: &str = "</cb-hl>";

/// A parsed request.
#[derive(Debug, Default)]
pub struct Params {
    /// What was searched for.
    pub term: String,
    /// `types[]`.
    pub types: Vec<String>,
    /// `filters[field]` values.
    pub filters: BTreeMap<String, Vec<String>>,
    /// Page number (from the cursor).
    pub page: usize,
    /// Page size.
    pub limit: usize,
}

impl Params {
    /// Parses Backstage's query parameters.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut p = Params {
            limit: DEFAULT_LIMIT,
            ..Params::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "term" => p.term.clone_from(value),
                "pageLimit" => {
                    p.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::input(format!(
                                "Invalid pageLimit \"{value}\": expected 1 to {MAX_LIMIT}"
                            ))
                        })?;
                }
                "pageCursor" => p.page = decode_cursor(value)?,
                k if (k == "types" || (k.starts_with("types[") && k.ends_with(']')))
                    && !value.is_empty()
                    && !p.types.contains(value) =>
                {
                    p.types.push(value.clone());
                }
                k if k.starts_with("filters[") => {
                    let field = k["filters[".len()..].split(']').next().unwrap_or_default();
                    if !SearchQuery::valid_field(field) {
                        return Err(ApiError::input(format!(
                            "Invalid filter \"{k}\": a field name is 1 to 64 characters of [A-Za-z0-9_-]"
                        )));
                    }
                    let values = p.filters.entry(field.to_owned()).or_default();
                    values.push(value.to_lowercase());
                    if p.filters.len() > MAX_FILTERS
                        || p.filters.values().any(|v| v.len() > MAX_FILTERS)
                    {
                        return Err(ApiError::input(format!(
                            "Too many filters: at most {MAX_FILTERS} fields of {MAX_FILTERS} values"
                        )));
                    }
                }
                _ => {}
            }
        }
        if p.types.len() > MAX_FILTERS {
            return Err(ApiError::input(format!(
                "Too many types: at most {MAX_FILTERS}"
            )));
        }
        if (p.page + 1) * p.limit > MAX_OFFSET {
            return Err(ApiError::input(format!(
                "Page too deep: results beyond the first {MAX_OFFSET} are not served; narrow the search"
            )));
        }
        Ok(p)
    }

    /// The store query (without the caller's scope, which
    /// [`Search::query`] adds).
    pub fn query(&self) -> SearchQuery {
        let mut q = SearchQuery::new(&self.term, self.page * self.limit, self.limit);
        q.types.clone_from(&self.types);
        q.filters = self
            .filters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        q
    }
}

/// Backstage's cursors are opaque; ours are base64 of `{"page":n}`.
fn encode_cursor(page: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({ "page": page }).to_string())
}

fn decode_cursor(cursor: &str) -> Result<usize, ApiError> {
    let bad = || ApiError::input(format!("Invalid pageCursor \"{cursor:.64}\""));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    value
        .get("page")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n <= MAX_OFFSET)
        .ok_or_else(bad)
}

pub(crate) fn search_error(e: SearchError) -> ApiError {
    match e {
        SearchError::Refused(m) => ApiError::input(m),
        SearchError::TooMany { .. } => ApiError::input(e.to_string()),
        SearchError::NothingReadable => ApiError::unauthenticated(
            "Searching needs a signed-in user or `Authorization: Bearer <token>`",
        ),
        SearchError::Store(e) if e.is_unavailable() => {
            tracing::error!("search: {e}");
            ApiError::unavailable("The search index is unavailable; try again shortly")
        }
        SearchError::Store(e) => {
            tracing::error!("search: {e}");
            ApiError::internal("search failed")
        }
    }
}

async fn query(
    State(search): State<Search>,
    Extension(identity): Extension<Identity>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let params = Params::parse(&pairs)?;
    let query = params.query();
    let results = search
        .query(&identity, query.clone())
        .await
        .map_err(search_error)?;
    let first_rank = params.page * params.limit;
    let items: Vec<Value> = results
        .hits
        .iter()
        .enumerate()
        .map(|(i, hit)| result(hit, &query.terms, first_rank + i + 1))
        .collect();
    let count = results.total.count;
    let mut body = json!({ "results": items, "numberOfResults": count });
    // Counting stops at 1,000: past it, a full page says more may follow.
    let more = if results.total.capped {
        results.hits.len() == params.limit
    } else {
        ((params.page + 1) * params.limit) < usize::try_from(count).unwrap_or(usize::MAX)
    };
    if more && (params.page + 2) * params.limit <= MAX_OFFSET {
        body["nextPageCursor"] = Value::from(encode_cursor(params.page + 1));
    }
    if params.page > 0 {
        body["previousPageCursor"] = Value::from(encode_cursor(params.page - 1));
    }
    let mut response = Json(body).into_response();
    let term = params.term.trim();
    if !term.is_empty() && params.page == 0 {
        response.extensions_mut().insert(crate::usage::SearchNote {
            text: term.to_owned(),
            results: count,
        });
    }
    Ok(response)
}

/// One result in Backstage's shape.
fn result(hit: &SearchHit, terms: &[String], rank: usize) -> Value {
    let doc = &hit.doc;
    let mut document: Map<String, Value> = doc.fields.clone();
    document.insert("title".into(), Value::from(doc.title.clone()));
    document.insert("text".into(), Value::from(doc.text.clone()));
    document.insert("location".into(), Value::from(doc.location.clone()));
    if let Some(r) = &doc.entity_ref {
        document.insert("authorization".into(), json!({ "resourceRef": r }));
    }
    let mut fields = Map::new();
    for (name, text, snippet) in [("title", &doc.title, false), ("text", &doc.text, true)] {
        if let Some(pieces) = marked(text, terms, hit.tier, snippet) {
            let mut out = String::new();
            for (piece, hit) in pieces {
                if hit {
                    out.push_str(PRE_TAG);
                    out.push_str(piece);
                    out.push_str(POST_TAG);
                } else {
                    out.push_str(piece);
                }
            }
            fields.insert(name.into(), Value::from(out));
        }
    }
    json!({
        "type": doc.doc_type,
        "document": document,
        "highlight": { "preTag": PRE_TAG, "postTag": POST_TAG, "fields": fields },
        "rank": rank,
    })
}
