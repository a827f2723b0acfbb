//! The portal's TechDocs: `/docs` (every site the caller may read, with a
//! filter), and each site at `/docs/{namespace}/{kind}/{name}/<page>/`
//! with its navigation, the page's table of contents, "edit this page",
//! when it last changed, and the site's problems. Files of the site (images,
//! downloads) are served beside the pages with a safe content type and a
//! sandbox, so an SVG can never run script.
//!
//! A page's HTML is what `callboard-docs` rendered and sanitised at build
//! time (an allow-list: no script, no event handlers, no style); it is the
//! only HTML the portal does not escape, and it is stored, never taken from
//! a request.

use axum::{
    extract::{Path, Query},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use callboard_catalog::EntityRef;
use callboard_store::docs::{PageRow, SiteRow};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;

use super::{Scoped, Web, WebError, layout};
use crate::techdocs::docs_base;

/// Whether the caller may read `r`'s docs: the entity and
/// `techdocs.entity.read` on it.
pub(crate) async fn may_read_docs(web: &Web, r: &EntityRef) -> Result<bool, WebError> {
    Ok(crate::techdocs::readable(&web.app.access, &web.app.catalog, &web.identity, r).await?)
}

fn store_error(e: callboard_store::StoreError) -> WebError {
    WebError::Catalog(e.into())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct IndexParams {
    q: String,
}

/// `/docs`: every site the caller may read.
pub(super) async fn index(
    Scoped(web): Scoped,
    Query(params): Query<IndexParams>,
) -> Result<Response, WebError> {
    let sites = web
        .app
        .techdocs
        .store()
        .sites()
        .await
        .map_err(store_error)?;
    let needle = params.q.trim().to_lowercase();
    let mut shown = Vec::new();
    for site in sites {
        let Ok(r) = EntityRef::parse(&site.entity_ref) else {
            continue;
        };
        let name = text(&site.meta, "name");
        let description = text(&site.meta, "description");
        if !needle.is_empty()
            && ![name, description, &site.entity_ref]
                .iter()
                .any(|t| t.to_lowercase().contains(&needle))
        {
            continue;
        }
        if may_read_docs(&web, &r).await? {
            shown.push((r, site));
        }
    }
    let body = html! {
        h1 { "Documentation" }
        p.lead { "Docs written next to the code (" code { "mkdocs.yml" } " and Markdown, as TechDocs sites), rendered by the portal." }
        form.search-page role="search" action="/docs" method="get" {
            label for="docs-filter" { "Filter the sites by name" }
            input #docs-filter type="search" name="q" value=(params.q) placeholder="A site, a service…";
            button type="submit" { "Filter" }
            @if !needle.is_empty() {
                a href=(format!("/search?type=techdocs&query={}", form_urlencoded::byte_serialize(params.q.trim().as_bytes()).collect::<String>())) { "Search inside the docs for “" (params.q.trim()) "”" }
            }
        }
        @if shown.is_empty() {
            div.panel { p { @if needle.is_empty() { "No docs yet. Annotate an entity with " code { "backstage.io/techdocs-ref: dir:." } " next to an " code { "mkdocs.yml" } "." } @else { "No site matches “" (params.q.trim()) "”." } } }
        } @else {
            table.entities #docs-sites {
                thead { tr { th { "Site" } th { "Entity" } th { "Pages" } th { "Problems" } th { "Built" } } }
                tbody {
                    @for (r, site) in &shown {
                        tr {
                            td.name { a href=(docs_base(r)) { (text(&site.meta, "name")) } span.desc { (text(&site.meta, "description")) } }
                            td { a href=(super::entity_href(r)) { (super::short_ref(r)) } }
                            td { (site.meta.get("pages").and_then(Value::as_u64).unwrap_or(0)) }
                            td { (problems_of(&site.meta).len()) }
                            td { (ago_ms(site.built_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(
        axum::response::Html(layout::page("Docs", layout::Nav::Docs, "", &body).into_string())
            .into_response(),
    )
}

/// `/docs/{namespace}/{kind}/{name}`: the site's index needs the slash
/// (its relative links are relative to it).
pub(super) async fn site_root(
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Redirect {
    Redirect::permanent(&docs_base(&EntityRef::new(&kind, &namespace, &name)))
}

/// `/docs/{namespace}/{kind}/{name}/`: the site's index page.
pub(super) async fn site_index(
    scoped: Scoped,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    serve(
        scoped,
        EntityRef::new(&kind, &namespace, &name),
        String::new(),
    )
    .await
}

/// `/docs/{namespace}/{kind}/{name}/{*path}`: a page (paths ending in
/// `/`) or a file of the site.
pub(super) async fn site_path(
    scoped: Scoped,
    Path((namespace, kind, name, path)): Path<(String, String, String, String)>,
) -> Result<Response, WebError> {
    serve(scoped, EntityRef::new(&kind, &namespace, &name), path).await
}

async fn serve(Scoped(web): Scoped, r: EntityRef, path: String) -> Result<Response, WebError> {
    let missing = || WebError::NotFound(format!("No docs page {path} for {r}"));
    if path.split('/').any(|s| s == ".." || s == ".") || path.contains('\\') {
        return Err(missing());
    }
    if !may_read_docs(&web, &r).await? {
        return Err(missing());
    }
    let store = web.app.techdocs.store();
    let key = r.key();
    let Some(site) = store.site(&key, false).await.map_err(store_error)? else {
        return Err(WebError::NotFound(format!(
            "{r} has no docs yet: they are built shortly after the entity is read, if it is annotated backstage.io/techdocs-ref"
        )));
    };
    if path.is_empty() || path.ends_with('/') {
        let page = store
            .page(&key, &path)
            .await
            .map_err(store_error)?
            .ok_or_else(missing)?;
        let entity = web.app.catalog.get_by_ref(&r).await?.unwrap_or(Value::Null);
        let body = page_body(&r, &site, &page, &entity);
        let title = format!("{} · {}", page.title, text(&site.meta, "name"));
        return Ok(axum::response::Html(
            layout::page_with(&title, layout::Nav::Docs, "", &body, &[DOCS_CSS]).into_string(),
        )
        .into_response());
    }
    if store
        .page(&key, &format!("{path}/"))
        .await
        .map_err(store_error)?
        .is_some()
    {
        return Ok(Redirect::permanent(&format!("{}{path}/", docs_base(&r))).into_response());
    }
    let asset = store
        .asset(&key, &path)
        .await
        .map_err(store_error)?
        .ok_or_else(missing)?;
    Ok(asset_response(
        &asset.content_type,
        asset.bytes,
        &asset.hash,
    ))
}

/// A site file: its allow-listed content type, never sniffed, and a
/// sandbox, so even an SVG opened on its own runs no script.
pub(crate) fn asset_response(content_type: &str, bytes: Vec<u8>, hash: &str) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if content_type == "application/octet-stream" {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{hash}\"")) {
        headers.insert(header::ETAG, v);
    }
    response
}

/// The stylesheet of docs pages: highlighting classes and the extensions'
/// blocks.
pub(super) const DOCS_CSS: &str = "/static/docs.css";

pub(crate) async fn stylesheet() -> Response {
    let mut css = callboard_docs::highlight_css();
    css.push_str(include_str!("docs.css"));
    let mut response = css.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn problems_of(meta: &Value) -> Vec<&Value> {
    meta.get("problems")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default()
}

fn ago_ms(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    super::ago(at)
}

fn problem_line(p: &Value) -> Markup {
    let file = text(p, "file");
    let line = p.get("line").and_then(Value::as_u64);
    html! {
        li { code { (file) @if let Some(l) = line { ":" (l) } } " " (text(p, "message")) }
    }
}

/// An `http(s)` URL, or nothing.
fn web_url(s: &str) -> Option<&str> {
    ((s.starts_with("https://") || s.starts_with("http://")) && !s.chars().any(char::is_control))
        .then_some(s)
}

/// "Edit this page": `repo_url` + `edit_uri` (MkDocs' default for GitHub
/// and GitLab) + the page's path under `docs_dir`.
fn edit_link(meta: &Value, source: &str) -> Option<String> {
    let repo = web_url(text(meta, "repo_url"))?.trim_end_matches('/');
    let edit_uri = match text(meta, "edit_uri") {
        "" if repo.contains("github.com") => "edit/master/docs/".to_owned(),
        "" if repo.contains("gitlab") => "-/edit/master/docs/".to_owned(),
        "" => return None,
        e => e.to_owned(),
    };
    let docs_dir = text(meta, "docs_dir");
    let rel = source
        .strip_prefix(docs_dir)
        .map(|s| s.trim_start_matches('/'))
        .unwrap_or(source);
    if let Some(full) = web_url(&edit_uri) {
        return Some(format!("{}/{rel}", full.trim_end_matches('/')));
    }
    Some(format!("{repo}/{}/{rel}", edit_uri.trim_matches('/')))
}

fn nav_tree(items: &[Value], base: &str, current: &str) -> Markup {
    html! {
        ul {
            @for item in items {
                @match text(item, "kind") {
                    "page" => {
                        @let url = text(item, "url");
                        li { a href=(format!("{base}{url}")) aria-current=[(url == current).then_some("page")] { (text(item, "title")) } }
                    }
                    "section" => {
                        li.section {
                            span { (text(item, "title")) }
                            (nav_tree(item.get("children").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default(), base, current))
                        }
                    }
                    "link" => {
                        @if let Some(url) = web_url(text(item, "url")) {
                            li { a href=(url) rel="noopener noreferrer" { (text(item, "title")) " ↗" } }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

pub(crate) fn page_body(r: &EntityRef, site: &SiteRow, page: &PageRow, entity: &Value) -> Markup {
    let base = docs_base(r);
    let meta = &site.meta;
    let nav: &[Value] = meta
        .get("nav")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let toc: &[Value] = page
        .meta
        .get("toc")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let source = text(&page.meta, "source");
    let page_problems = problems_of(&page.meta);
    let site_problems = problems_of(meta);
    let edit = edit_link(meta, source);
    let view_source = entity
        .pointer("/metadata/annotations/backstage.io~1source-location")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix("url:"))
        .and_then(web_url)
        .map(str::to_owned);
    html! {
        div.docs-site {
            nav.docs-nav aria-label="Site navigation" {
                p.docs-site-name { a href=(base) { (text(meta, "name")) } }
                p.muted { "Docs of " a href=(super::entity_href(r)) { (super::short_ref(r)) } }
                (nav_tree(nav, &base, &page.path))
            }
            article.docs-page #docs-content {
                @if !page_problems.is_empty() {
                    div.alert.docs-problems role="note" {
                        strong { "This page has problems" }
                        ul { @for p in &page_problems { (problem_line(p)) } }
                    }
                }
                div.md-typeset { (PreEscaped(&page.html)) }
                footer.docs-meta {
                    span { "Last updated " (ago_ms(page.updated_at)) }
                    @if let Some(edit) = &edit {
                        " · " a.edit href=(edit) rel="noopener noreferrer" { "Edit this page" }
                    } @else if let Some(src) = &view_source {
                        " · " a.edit href=(src) rel="noopener noreferrer" { "View the source" }
                    }
                }
                @if page.path.is_empty() && !site_problems.is_empty() {
                    section.panel.docs-problems #site-problems {
                        h2 { "Build problems (" (site_problems.len()) ")" }
                        p.muted { "The site renders what it can; fix these in its sources." }
                        ul { @for p in &site_problems { (problem_line(p)) } }
                    }
                }
            }
            @if !toc.is_empty() {
                nav.docs-toc aria-label="On this page" {
                    p { strong { "On this page" } }
                    ul {
                        @for t in toc {
                            li.(format!("toc-{}", t.get("level").and_then(Value::as_u64).unwrap_or(2))) {
                                a href=(format!("#{}", text(t, "id"))) { (text(t, "title")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A site rendered by `callboard docs serve`, held in memory.
pub struct PreviewSite {
    site: SiteRow,
    pages: std::collections::HashMap<String, PageRow>,
    assets: std::collections::HashMap<String, (String, Vec<u8>, String)>,
}

impl PreviewSite {
    /// The preview of a build of `files`.
    pub fn new(files: &callboard_docs::Files, build: &callboard_docs::Build) -> Self {
        let now = jiff::Timestamp::now().as_millisecond();
        let site = SiteRow {
            entity_ref: "component:default/preview".into(),
            meta: crate::techdocs::build::site_meta(build, &("dir", String::new())),
            manifest: Value::Null,
            built_at: now,
            etag: String::new(),
        };
        let pages = build
            .pages
            .iter()
            .map(|p| (p.url.clone(), crate::techdocs::build::page_row(p, now)))
            .collect();
        let assets = build
            .assets
            .iter()
            .filter_map(|a| {
                let bytes = files.get(&a.source)?.to_vec();
                Some((
                    a.url.clone(),
                    (a.content_type.clone(), bytes, a.hash.clone()),
                ))
            })
            .collect();
        Self {
            site,
            pages,
            assets,
        }
    }
}

/// A page or file of the preview at `path` (under
/// [`crate::cli::docs::PREVIEW_BASE`]).
pub fn preview_page(site: &PreviewSite, path: &str) -> Response {
    let r = EntityRef::new("component", "default", "preview");
    let Some(rest) = path.strip_prefix(crate::cli::docs::PREVIEW_BASE) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let rest = percent_encoding::percent_decode_str(rest)
        .decode_utf8_lossy()
        .into_owned();
    if let Some(page) = site.pages.get(&rest) {
        let body = page_body(&r, &site.site, page, &Value::Null);
        let title = format!("{} · {}", page.title, text(&site.site.meta, "name"));
        return axum::response::Html(
            layout::page_with(&title, layout::Nav::Docs, "", &body, &[DOCS_CSS]).into_string(),
        )
        .into_response();
    }
    if site.pages.contains_key(&format!("{rest}/")) {
        return Redirect::permanent(&format!("{path}/")).into_response();
    }
    match site.assets.get(&rest) {
        Some((content_type, bytes, hash)) => asset_response(content_type, bytes.clone(), hash),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
