//! `/search`: one search over the catalog, the docs and plugins' documents,
//! as the caller may see them ([`crate::search::Search`]). Facets by type
//! and kind with counts, highlighted snippets, paging; links and a GET form
//! only, so it works from the keyboard and without script.

use axum::{
    extract::Query,
    response::{IntoResponse, Response},
};
use callboard_store::search::{
    CATALOG_TYPE, MAX_OFFSET, SearchHit, SearchQuery, SearchResults, TECHDOCS_TYPE,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Scoped, WebError, layout};
use crate::search::{Search, SearchError, marked};

/// Results per page.
const PAGE: usize = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Params {
    query: String,
    #[serde(rename = "type")]
    doc_type: String,
    kind: String,
    page: usize,
}

impl Params {
    /// This search with some parameters changed (empty ones left out).
    fn href(&self, doc_type: &str, kind: &str, page: usize) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("query", &self.query);
        for (k, v) in [("type", doc_type), ("kind", kind)] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if page > 0 {
            q.append_pair("page", &page.to_string());
        }
        format!("/search?{}", q.finish())
    }
}

/// What a type is called on the page.
fn type_label(t: &str) -> &str {
    match t {
        CATALOG_TYPE => "Catalog",
        TECHDOCS_TYPE => "Docs",
        other => other,
    }
}

pub(super) async fn handler(
    Scoped(web): Scoped,
    Query(params): Query<Params>,
) -> Result<Response, WebError> {
    if (params.page + 1) * PAGE > MAX_OFFSET {
        return Err(WebError::BadRequest(format!(
            "Results beyond the first {MAX_OFFSET} are not shown; narrow the search instead."
        )));
    }
    let search = Search::new(web.app.stores.search.clone(), web.app.access.clone());
    let mut query = SearchQuery::new(&params.query, params.page * PAGE, PAGE);
    if !params.doc_type.is_empty() {
        query.types = vec![params.doc_type.clone()];
    }
    if !params.kind.is_empty() {
        query.filters = vec![("kind".into(), vec![params.kind.to_lowercase()])];
    }
    let terms = query.terms.clone();
    let results = match search.query(&web.identity, query).await {
        Ok(r) => r,
        Err(SearchError::NothingReadable) => SearchResults::default(),
        Err(SearchError::Store(e)) => return Err(WebError::Catalog(e.into())),
        Err(SearchError::Refused(m)) => return Err(WebError::BadRequest(m)),
        Err(e @ SearchError::TooMany { .. }) => return Err(WebError::BadRequest(e.to_string())),
    };
    let body = page(&params, &terms, &results);
    let mut response = axum::response::Html(
        layout::page("Search", layout::Nav::None, &params.query, &body).into_string(),
    )
    .into_response();
    let text = params.query.trim();
    if !text.is_empty() && params.page == 0 {
        response.extensions_mut().insert(crate::usage::SearchNote {
            text: text.to_owned(),
            results: results.total.count,
        });
    }
    Ok(response)
}

fn page(params: &Params, terms: &[String], results: &SearchResults) -> Markup {
    let total = results.total.count;
    let filtered = !params.doc_type.is_empty() || !params.kind.is_empty();
    let last = if results.total.capped {
        results.hits.len() < PAGE
    } else {
        (params.page + 1) * PAGE >= usize::try_from(total).unwrap_or(usize::MAX)
    };
    html! {
        h1 #search-title { "Search" }
        form.search-page role="search" action="/search" method="get" {
            label for="search-query" { "Search the catalog, the docs and plugins" }
            input #search-query type="search" name="query" value=(params.query)
                placeholder="A service, an API, a team, a runbook…";
            @if !params.doc_type.is_empty() { input type="hidden" name="type" value=(params.doc_type); }
            @if !params.kind.is_empty() { input type="hidden" name="kind" value=(params.kind); }
            button type="submit" { "Search" }
        }
        div.search-layout {
            aside.facets aria-label="Narrow the results" {
                h2 { "Type" }
                ul {
                    li { a href=(params.href("", &params.kind, 0)) aria-current=[params.doc_type.is_empty().then_some("true")] { "All types" } }
                    @for (t, n) in &results.types {
                        li { a href=(params.href(t, &params.kind, 0)) aria-current=[(params.doc_type == *t).then_some("true")] {
                            (type_label(t)) " " span.count { (n) }
                        } }
                    }
                }
                @if !results.kinds.is_empty() {
                    h2 { "Kind" }
                    ul {
                        li { a href=(params.href(&params.doc_type, "", 0)) aria-current=[params.kind.is_empty().then_some("true")] { "All kinds" } }
                        @for (k, n) in &results.kinds {
                            li { a href=(params.href(&params.doc_type, k, 0)) aria-current=[(params.kind.eq_ignore_ascii_case(k)).then_some("true")] {
                                (super::kind_label(k)) " " span.count { (n) }
                            } }
                        }
                    }
                }
            }
            section.results aria-labelledby="result-count" {
                @if results.hits.is_empty() {
                    div.panel.no-results #result-count {
                        @if params.query.trim().is_empty() && !filtered {
                            p { "Type what you are looking for: a service, an API, a team, a page of the docs." }
                        } @else {
                            p { strong { "No results for “" (params.query) "”" } @if filtered { " with these filters" } "." }
                            ul {
                                li { "Check the spelling, or try fewer or shorter words: part of a word finds it (“ets” finds “petstore”)." }
                                @if filtered { li { a href=(params.href("", "", 0)) { "Search every type and kind" } } }
                                li { a href=(super::catalog_href(&[("q", params.query.trim())])) { "Browse the catalog" } " instead." }
                            }
                        }
                    }
                } @else {
                    p.count #result-count {
                        (total) @if results.total.capped { "+" } " result" @if total != 1 { "s" }
                        @if !results.hits.is_empty() && results.hits[0].tier == callboard_store::search::Tier::Fuzzy {
                            " (nothing matched exactly: showing close spellings)"
                        }
                    }
                    ol.search-results start=(params.page * PAGE + 1) {
                        @for hit in &results.hits { (result(hit, terms)) }
                    }
                    nav.pager aria-label="Result pages" {
                        @if params.page > 0 {
                            a rel="prev" href=(params.href(&params.doc_type, &params.kind, params.page - 1)) { "← Previous" }
                        }
                        span.muted { "Page " (params.page + 1) }
                        @if !last && (params.page + 2) * PAGE <= MAX_OFFSET {
                            a rel="next" href=(params.href(&params.doc_type, &params.kind, params.page + 1)) { "Next →" }
                        }
                    }
                }
            }
        }
    }
}

/// Pieces of text with the matched ones in `<mark>`.
fn marks(pieces: Option<Vec<(&str, bool)>>, fallback: &str) -> Markup {
    match pieces {
        Some(pieces) => html! {
            @for (piece, hit) in pieces { @if hit { mark { (piece) } } @else { (piece) } }
        },
        None => html! { (fallback) },
    }
}

/// A document's location as a link target: a path on this portal, or an
/// http(s) URL. Anything else (a plugin's `javascript:`, `//host`) is not
/// linked.
fn safe_location(location: &str) -> Option<&str> {
    let local = location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        && !location.chars().any(|c| c.is_control() || c == '\\');
    let remote = (location.starts_with("https://") || location.starts_with("http://"))
        && !location.chars().any(char::is_control);
    (local || remote).then_some(location)
}

fn result(hit: &SearchHit, terms: &[String]) -> Markup {
    let doc = &hit.doc;
    let field = |name: &str| doc.fields.get(name).and_then(|v| v.as_str()).unwrap_or("");
    let title = marks(marked(&doc.title, terms, hit.tier, false), &doc.title);
    let snippet = marked(&doc.text, terms, hit.tier, true);
    let plain: String = doc.text.chars().take(crate::search::SNIPPET).collect();
    html! {
        li.search-result {
            h3 {
                @if let Some(href) = safe_location(&doc.location) { a href=(href) { (title) } } @else { (title) }
            }
            p.meta {
                span.badge { (type_label(&doc.doc_type)) }
                @if !field("kind").is_empty() { " " (layout::kind_badge(field("kind"))) }
                @if doc.doc_type == TECHDOCS_TYPE && !field("entityTitle").is_empty() { " " span { "in " (field("entityTitle")) } }
                @if !field("owner").is_empty() { " " span { "owned by " (field("owner")) } }
                @if !field("lifecycle").is_empty() { " " (layout::lifecycle_badge(field("lifecycle"))) }
            }
            @if !doc.text.is_empty() { p.snippet { (marks(snippet, &plain)) } }
        }
    }
}
