//! The portal: server-rendered HTML pages over the catalog and the plugins.
//!
//! Every page is rendered with `maud`, which escapes all interpolated text,
//! so catalog data can never inject markup; plugin views arrive as HTML the
//! host rendered from the plugins' UI data (`crate::views`), escaped the
//! same way. No page ships JavaScript: the Content-Security-Policy forbids
//! scripts outright, and everything works with links and GET forms (filters
//! live in the URL, entity tabs are links).
//!
//! Catalog reads are blocking SQLite calls, so each page is read *and*
//! rendered on a blocking thread; the time it takes is sent back in a
//! `Server-Timing` header (what the web benchmark reads). Plugin views are
//! fetched before that, in parallel and under `plugins.view_deadline_ms`,
//! and reported beside it (`views;dur=`).

mod actions;
mod admin;
mod audit;
mod catalog;
mod definition;
mod docs;
pub(crate) use docs::asset_response;
pub(crate) use docs::stylesheet as docs_stylesheet;
pub use docs::{PreviewSite, preview_page};
pub(crate) use layout::stylesheet;
mod entity;
mod graph;
mod home;
mod layout;
mod plugin_actions;
mod plugins;
mod roles;
mod search;
mod signin;

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use callboard_catalog::{
    Catalog, CatalogError, CatalogEvent, EntityRef, FacetCount, Page, Predicate, Selection, Start,
};
use maud::Markup;
use serde_json::Value;

use crate::{
    identity::{Identity, access::Scope},
    permissions::CATALOG_ENTITY_READ,
    server::AppState,
};

/// No script at all, styles only from our own stylesheet, nothing framed,
/// forms only posted back here. Plugin views are data the host renders, so
/// they need nothing more.
const CSP: &str = "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The portal's routes: `/`, `/search`, `/catalog`, `/catalog/{namespace}/{kind}/{name}`,
/// `/plugins/{plugin}/...` (plugin pages), `/admin` (plugin administration)
/// and the stylesheet under `/static/`.
pub fn router(state: AppState) -> Router {
    let web = Web::new(state);
    Router::new()
        .route("/", get(home::handler))
        .route("/catalog", get(catalog::handler))
        .route("/catalog/{namespace}/{kind}/{name}", get(entity::handler))
        .route("/search", get(search::handler))
        .route("/docs", get(docs::index))
        .route("/docs/{namespace}/{kind}/{name}", get(docs::site_root))
        .route("/docs/{namespace}/{kind}/{name}/", get(docs::site_index))
        .route(
            "/docs/{namespace}/{kind}/{name}/{*path}",
            get(docs::site_path),
        )
        .route("/static/docs.css", get(docs::stylesheet))
        .route("/plugins", get(plugins::index))
        .route("/plugins/{plugin}", get(plugins::root))
        .route("/plugins/{plugin}/{*path}", get(plugins::page_at))
        .route("/static/callboard.css", get(layout::stylesheet))
        .merge(admin::routes(&web))
        .merge(signin::routes(&web))
        .merge(actions::routes(&web))
        .merge(plugin_actions::routes())
        .merge(roles::routes(&web))
        .merge(audit::routes(&web))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            signin::gate,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(web)
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A response that set its own (a docs file's sandbox) keeps it.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// State shared by the pages: the app plus what the portal derives from the
/// catalog's change events (facet cache, recent changes).
#[derive(Clone)]
pub(crate) struct Web {
    pub(crate) app: AppState,
    live: Arc<Live>,
    runtime: tokio::runtime::Handle,
    /// Who is looking ([`Scoped`] sets it per request; anonymous otherwise).
    pub(crate) identity: Arc<Identity>,
    /// What they may read: `None` is everything; otherwise every catalog
    /// read of the page is narrowed to this predicate, inside the query.
    scope: Option<Arc<Predicate>>,
}

/// The portal's state for one request: [`Web`] narrowed to what the
/// request's identity may read. Every page handler takes this, so no page
/// reads the catalog beyond the caller's `catalog.entity.read` scope.
pub(crate) struct Scoped(pub(crate) Web);

impl axum::extract::FromRequestParts<Web> for Scoped {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        web: &Web,
    ) -> Result<Self, Self::Rejection> {
        let identity = parts
            .extensions
            .get::<Identity>()
            .cloned()
            .unwrap_or_else(Identity::anonymous);
        Ok(Scoped(web.scoped(identity)))
    }
}

/// The catalog as page renderers read it. Renderers run on blocking threads
/// (maud is synchronous), where waiting on the runtime for an async read is
/// allowed; the reads themselves run on the store's own pool, never on an
/// async worker.
#[derive(Clone)]
pub(crate) struct Reads {
    catalog: Catalog,
    runtime: tokio::runtime::Handle,
    scope: Option<Arc<Predicate>>,
}

impl Reads {
    fn wait<T>(&self, read: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(read)
    }

    /// `predicate` narrowed to the reader's scope.
    fn narrow(&self, predicate: Option<&Predicate>) -> Option<Predicate> {
        match (&self.scope, predicate) {
            (None, p) => p.cloned(),
            (Some(scope), None) => Some((**scope).clone()),
            (Some(scope), Some(p)) => Some(p.clone().and((**scope).clone())),
        }
    }

    fn narrowed<'a>(&self, selection: &'a Selection) -> std::borrow::Cow<'a, Selection> {
        if self.scope.is_none() {
            return std::borrow::Cow::Borrowed(selection);
        }
        let mut narrowed = selection.clone();
        narrowed.predicate = self.narrow(selection.predicate.as_ref());
        std::borrow::Cow::Owned(narrowed)
    }

    pub(crate) fn count(&self, selection: &Selection) -> Result<u64, CatalogError> {
        self.wait(self.catalog.count(&self.narrowed(selection)))
    }

    pub(crate) fn query(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Page, CatalogError> {
        self.wait(self.catalog.query(&self.narrowed(selection), start, limit))
    }

    pub(crate) fn get_by_refs(
        &self,
        refs: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<Vec<Option<serde_json::Value>>, CatalogError> {
        let predicate = self.narrow(predicate);
        self.wait(self.catalog.get_by_refs(refs, predicate.as_ref()))
    }

    pub(crate) fn facets(&self, fields: &[String]) -> Result<Facets, CatalogError> {
        let predicate = self.narrow(None);
        self.wait(self.catalog.facets(fields, predicate.as_ref()))
    }
}

/// How old facet counts may get before they are counted again even without
/// a change event (events can be missed when a receiver lags).
const FACETS_MAX_AGE: Duration = Duration::from_secs(30);
/// How many recent changes the home page remembers.
const RECENT: usize = 12;

#[derive(Default)]
struct Live {
    facets: Mutex<Option<(Instant, u64, Arc<Facets>)>>,
    state: Mutex<LiveState>,
    /// A background facet count is running.
    counting_facets: AtomicBool,
}

impl Live {
    fn generation(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// Counts the facets now and caches them.
    fn count_facets(&self, catalog: &Reads) -> Result<Arc<Facets>, CatalogError> {
        let generation = self.generation();
        let fields: Vec<String> = FACET_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        let facets = Arc::new(catalog.facets(&fields)?);
        *self.facets.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), generation, facets.clone()));
        Ok(facets)
    }

    /// Counts the facets again on another thread, unless that is under way.
    fn recount_facets_later(self: &Arc<Self>, catalog: &Reads) {
        if self.counting_facets.swap(true, Ordering::AcqRel) {
            return;
        }
        let (live, catalog) = (self.clone(), catalog.clone());
        std::thread::spawn(move || {
            if let Err(e) = live.count_facets(&catalog) {
                tracing::warn!("web: counting facets failed: {e}");
            }
            live.counting_facets.store(false, Ordering::Release);
        });
    }
}

#[derive(Default)]
struct LiveState {
    generation: u64,
    recent: VecDeque<RecentChange>,
}

/// One catalog change, as the home page lists it.
#[derive(Debug, Clone)]
pub(crate) struct RecentChange {
    pub(crate) key: String,
    pub(crate) what: &'static str,
    pub(crate) at: SystemTime,
}

/// Facet values over the whole catalog, for the filter controls and the
/// counts on the home page.
pub(crate) type Facets = BTreeMap<String, Vec<FacetCount>>;

/// How many entities facet counts cover (every entity has one kind).
pub(crate) fn facets_total(facets: &Facets) -> u64 {
    facets
        .get("kind")
        .map(|k| k.iter().map(|f| f.count).sum())
        .unwrap_or(0)
}

/// Facets the filter bar offers.
pub(crate) const FACET_FIELDS: &[&str] = &[
    "kind",
    "spec.type",
    "spec.lifecycle",
    "relations.ownedBy",
    "metadata.tags",
    "metadata.namespace",
];

impl Web {
    fn new(app: AppState) -> Self {
        let live = Arc::new(Live::default());
        let runtime = tokio::runtime::Handle::current();
        let reads = Reads {
            catalog: app.catalog.clone(),
            runtime: runtime.clone(),
            scope: None,
        };
        // Counting facets over 100k entities takes tens of milliseconds, far
        // too much per page view; change events tell us when to count again.
        {
            let mut events = app.catalog.subscribe();
            let weak = Arc::downgrade(&live);
            let catalog = reads;
            runtime.spawn(async move {
                loop {
                    let event = events.recv().await;
                    let Some(live) = weak.upgrade() else { return };
                    let mut state = live.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.generation += 1;
                    let (key, what) = match event {
                        Ok(CatalogEvent::Added(key)) => (key, "added"),
                        Ok(CatalogEvent::Changed(key)) => (key, "changed"),
                        Ok(CatalogEvent::Removed(key)) => (key, "removed"),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                    state.recent.retain(|r| r.key != key);
                    state.recent.push_front(RecentChange {
                        key,
                        what,
                        at: SystemTime::now(),
                    });
                    state.recent.truncate(RECENT);
                    drop(state);
                    // A burst of changes is over: count again now, so no
                    // page view pays for it.
                    if events.is_empty() {
                        live.recount_facets_later(&catalog);
                    }
                }
            });
        }
        Self {
            app,
            live,
            runtime,
            identity: Arc::new(Identity::anonymous()),
            scope: None,
        }
    }

    /// This state for `identity`: its reads narrowed to what it may read.
    fn scoped(&self, identity: Identity) -> Web {
        let scope = match self.app.access.scope(&identity, CATALOG_ENTITY_READ) {
            Scope::All => None,
            Scope::Where(p) => Some(Arc::new(p)),
            Scope::Nothing => Some(Arc::new(Predicate::Any(Vec::new()))),
        };
        Web {
            identity: Arc::new(identity),
            scope,
            ..self.clone()
        }
    }

    /// The catalog as this request's identity may read it, synchronously
    /// (for renderers).
    pub(crate) fn catalog(&self) -> Reads {
        Reads {
            catalog: self.app.catalog.clone(),
            runtime: self.runtime.clone(),
            scope: self.scope.clone(),
        }
    }

    /// Whether this request's identity may read `r` (asked of the store
    /// with the scope's predicate; async, for handlers).
    pub(crate) async fn may_read(&self, r: &EntityRef) -> Result<bool, CatalogError> {
        let scope = match &self.scope {
            None => Scope::All,
            Some(p) => Scope::Where((**p).clone()),
        };
        scope.reaches(&self.app.catalog, &r.to_string()).await
    }

    /// Facet counts over what this request's identity may read. Over the
    /// whole catalog they are cached: after a change they are counted
    /// again in the background, and until then pages get the previous
    /// counts. A narrowed scope is counted by the catalog (remembered there
    /// until the catalog changes).
    pub(crate) fn facets(&self) -> Result<Arc<Facets>, CatalogError> {
        if self.scope.is_some() {
            let fields: Vec<String> = FACET_FIELDS.iter().map(|f| (*f).to_owned()).collect();
            return Ok(Arc::new(self.catalog().facets(&fields)?));
        }
        self.catalog_facets()
    }

    /// The share of the whole catalog this request's identity may read: 1
    /// unless its scope is narrowed, else its facets' total over the whole
    /// catalog's (cached) total. The catalog page plans its reads with it;
    /// it is never shown (it says how many entities exist, not which).
    pub(crate) fn scope_share(&self, scoped: &Facets) -> Result<f64, CatalogError> {
        if self.scope.is_none() {
            return Ok(1.0);
        }
        let all = facets_total(&*self.catalog_facets()?);
        Ok((facets_total(scoped) as f64 / all.max(1) as f64).min(1.0))
    }

    /// Facet counts over the whole catalog, cached (see [`Web::facets`]).
    fn catalog_facets(&self) -> Result<Arc<Facets>, CatalogError> {
        let whole = Web {
            scope: None,
            ..self.clone()
        };
        whole.cached_facets()
    }

    fn cached_facets(&self) -> Result<Arc<Facets>, CatalogError> {
        let generation = self.live.generation();
        let cached = self
            .live
            .facets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match cached {
            Some((at, seen, facets)) => {
                if seen != generation || at.elapsed() >= FACETS_MAX_AGE {
                    self.live.recount_facets_later(&self.catalog());
                }
                Ok(facets)
            }
            None => self.live.count_facets(&self.catalog()),
        }
    }

    /// The most recent catalog changes, newest first.
    pub(crate) fn recent(&self) -> Vec<RecentChange> {
        self.live
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recent
            .iter()
            .cloned()
            .collect()
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    /// No such entity or page.
    #[error("{0}")]
    NotFound(String),
    /// Bad input in the URL (a malformed cursor, say).
    #[error("{0}")]
    BadRequest(String),
    /// The catalog failed; details go to the log only.
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// A blocking render task died.
    #[error("render task: {0}")]
    Task(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m.clone()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m.clone()),
            WebError::Catalog(CatalogError::Input(m)) => {
                (StatusCode::BAD_REQUEST, "Bad request", m.clone())
            }
            other => {
                tracing::error!("web: {other}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The page could not be rendered; the server log has the details.".to_owned(),
                )
            }
        };
        (
            status,
            Html(layout::error_page(title, &message).into_string()),
        )
            .into_response()
    }
}

/// Reads and renders a page on a blocking thread, and reports how long that
/// took in `Server-Timing` (`render;dur=<ms>`).
pub(crate) async fn render(
    web: &Web,
    f: impl FnOnce(&Web) -> Result<Markup, WebError> + Send + 'static,
) -> Result<Response, WebError> {
    render_timed(web, &[], f).await
}

/// [`render`] for pages that did work before rendering (read an entity,
/// waited for plugin views): `before` is reported after `render` in
/// `Server-Timing` (`render;dur=<ms>, views;dur=<ms>`), so the page's whole
/// server time is the sum.
pub(crate) async fn render_timed(
    web: &Web,
    before: &[(&'static str, Duration)],
    f: impl FnOnce(&Web) -> Result<Markup, WebError> + Send + 'static,
) -> Result<Response, WebError> {
    let web = web.clone();
    let (markup, took) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let markup = f(&web)?;
        let html = markup.into_string();
        Ok::<_, WebError>((html, started.elapsed()))
    })
    .await
    .map_err(|e| WebError::Task(e.to_string()))??;
    let mut response = Html(markup).into_response();
    let mut timing = format!("render;dur={:.3}", took.as_secs_f64() * 1000.0);
    for (name, took) in before {
        use std::fmt::Write as _;
        let _ = write!(timing, ", {name};dur={:.3}", took.as_secs_f64() * 1000.0);
    }
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", value);
    }
    Ok(response)
}

// ----- small helpers shared by the pages -----

/// Everything but RFC 3986's unreserved characters, so refs stay readable.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The page of an entity, from its (display or lower-case) ref.
pub fn entity_href(r: &EntityRef) -> String {
    let seg =
        |s: &str| percent_encoding::utf8_percent_encode(&s.to_lowercase(), SEGMENT).to_string();
    format!(
        "/catalog/{}/{}/{}",
        seg(&r.namespace),
        seg(&r.kind),
        seg(&r.name)
    )
}

/// `/catalog?<pairs>`, empty values left out.
pub(crate) fn catalog_href(pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            query.append_pair(k, v);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        "/catalog".to_owned()
    } else {
        format!("/catalog?{query}")
    }
}

/// A string at a dotted path of a JSON value.
pub(crate) fn text<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

/// Short form of a ref for display: `name` in the default namespace,
/// `namespace/name` elsewhere (the kind is shown beside it).
pub(crate) fn short_ref(r: &EntityRef) -> String {
    if r.namespace
        .eq_ignore_ascii_case(callboard_catalog::entity_ref::DEFAULT_NAMESPACE)
    {
        r.name.clone()
    } else {
        format!("{}/{}", r.namespace, r.name)
    }
}

/// The ref of a served entity.
pub fn ref_of(entity: &Value) -> EntityRef {
    EntityRef::new(
        text(entity, "kind").unwrap_or("unknown"),
        text(entity, "metadata.namespace").unwrap_or("default"),
        text(entity, "metadata.name").unwrap_or("unknown"),
    )
}

/// Display names for kinds as users say them (refs are lower-case).
pub(crate) fn kind_label(kind: &str) -> String {
    match kind.to_lowercase().as_str() {
        "api" => "API".to_owned(),
        "component" => "Component".to_owned(),
        "system" => "System".to_owned(),
        "domain" => "Domain".to_owned(),
        "resource" => "Resource".to_owned(),
        "group" => "Group".to_owned(),
        "user" => "User".to_owned(),
        "location" => "Location".to_owned(),
        "template" => "Template".to_owned(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

/// "3 minutes ago" and friends.
pub(crate) fn ago(at: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(at)
        .unwrap_or_default()
        .as_secs();
    match secs {
        0..=59 => "just now".to_owned(),
        60..=3599 => plural(secs / 60, "minute"),
        3600..=86_399 => plural(secs / 3600, "hour"),
        _ => plural(secs / 86_400, "day"),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}
