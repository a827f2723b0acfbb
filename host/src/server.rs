//! Building the server's state from a [`Config`] and serving it.

pub mod config;
mod listen;
mod memory;
mod projections;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use callboard_catalog::Catalog;

use crate::{
    config::Config,
    plugins::{FolderWatch, PluginHost},
};

/// Everything the routers share.
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The plugin runtime.
    pub plugins: PluginHost,
    /// The software catalog.
    pub catalog: Catalog,
    /// The storage backend every store and replica shares.
    pub stores: callboard_store::Stores,
    /// The bearer token the admin API requires.
    pub admin_token: Arc<str>,
    /// The tokens that may write to the catalog (admin and API tokens).
    pub tokens: Arc<crate::auth::Tokens>,
    /// Sessions (people and the admin token).
    pub sessions: Arc<crate::auth::Sessions>,
    /// Who each request is from.
    pub identities: Arc<crate::identity::Identities>,
    /// What each identity may do (the published policy).
    pub access: Arc<crate::identity::access::Access>,
    /// The OpenID Connect provider, when `[auth.oidc]` configures one.
    pub oidc: Option<Arc<crate::identity::signin::Oidc>>,
    /// Signs the sign-in flow cookie (a key every replica shares).
    pub flow: crate::identity::signin::FlowSigner,
    /// The plugins-folder watch (None when `plugins.watch` is off).
    pub watch: Option<Arc<FolderWatch>>,
    /// The Prometheus recorder (None when `telemetry.metrics.enabled` is off).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// TechDocs: builds and stored sites.
    pub techdocs: crate::techdocs::Techdocs,
    /// Who plugin calls run for (the runtime's portal).
    pub callers: crate::identity::callers::Callers,
}

impl AppState {
    /// Creates the data directory and opens the storage backend and the
    /// catalog (what [`AppState::build`] needs).
    pub async fn open_storage(
        config: &Config,
    ) -> anyhow::Result<(callboard_store::Stores, Catalog)> {
        create_private_dir(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let stores = crate::database::open(config).await?;
        if config.database.is_postgres() {
            // Replicas share one admin token: the first one stored wins, and
            // every replica writes it to its own token file.
            let file = config.admin_token_file();
            let local = admin_token(&file)?;
            let shared = stores
                .admin
                .shared_secret("admin-token", &local)
                .await
                .context("cannot read the shared admin token")?;
            if *shared != *local {
                write_token(&file, &shared)?;
                tracing::info!(file = %file.display(), "admin token: the one every replica shares");
            }
        }
        let catalog = Catalog::open(&stores, &config.catalog)
            .await
            .context("cannot open the catalog")?;
        Ok((stores, catalog))
    }

    /// Creates the plugin runtime over opened storage and loads the
    /// plugins folder. Blocking: compiles plugins that are not in the cache.
    pub fn build(
        mut config: Config,
        stores: callboard_store::Stores,
        catalog: Catalog,
    ) -> anyhow::Result<Self> {
        memory::fit_instances(&mut config.plugins)?;
        // Before anything emits, so the first plugin load counts.
        let metrics = if config.telemetry.metrics.enabled {
            crate::telemetry::metrics::install()
        } else {
            None
        };
        let plugins = PluginHost::new(&config.runtime(), &stores)
            .context("cannot start the plugin runtime")?;
        if config.database.is_postgres() {
            // Replicas: the database's plugin files are the source of truth.
            plugins.attach_shared(stores.plugins.clone());
        }
        plugins.attach_catalog(catalog.clone());
        let dir = config.plugins_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create plugins directory {}", dir.display()))?;
        let results = plugins.load_dir(&dir);
        let watch = if config.plugins.watch {
            let debounce = std::time::Duration::from_millis(config.plugins.watch_debounce_ms);
            Some(Arc::new(
                plugins
                    .watch(&dir, debounce)
                    .context("cannot watch the plugins directory")?,
            ))
        } else {
            None
        };
        let admin_token = admin_token(&config.admin_token_file())?;
        let tokens = Arc::new(crate::auth::Tokens::load(&admin_token, &config.server)?);
        let sessions = Arc::new(crate::auth::Sessions::new(
            stores.sessions.clone(),
            &config.server,
        ));
        let runtime = tokio::runtime::Handle::current();
        let access = runtime
            .block_on(crate::identity::access::Access::open(
                stores.policies.clone(),
                config.auth.anonymous,
                &config.auth.admins,
            ))
            .context("cannot load the access policy")?;
        let identities = Arc::new(crate::identity::Identities::new(
            tokens.clone(),
            stores.tokens.clone(),
            sessions.clone(),
            crate::identity::ownership::Ownership::new(&catalog, config.auth.max_ownership_refs),
            config.server.is_https(),
        ));
        let oidc = config
            .auth
            .oidc
            .as_ref()
            .map(crate::identity::signin::Oidc::new)
            .transpose()?
            .map(Arc::new);
        let flow_key = runtime
            .block_on(
                stores
                    .admin
                    .shared_secret("sign-in-flow-key", &crate::auth::random_hex()?),
            )
            .context("cannot read the sign-in key")?;
        let flow = crate::identity::signin::FlowSigner::new(flow_key.as_bytes());
        access.attach_plugins(plugins.clone());
        // Plugin calls run for the request's identity; event handlers and
        // ticks for the plugin's own service principal (`plugin:<id>`), as
        // the policy says. Plugins' search documents go to the shared index.
        let callers = crate::identity::callers::Callers::new(
            access.clone(),
            catalog.clone(),
            crate::search::Search::new(stores.search.clone(), access.clone()),
        );
        plugins.attach_portal(Arc::new(callers.clone()));
        let failed = results.iter().filter(|r| r.is_err()).count();
        tracing::info!(dir = %dir.display(), loaded = results.len() - failed, failed, "plugins directory loaded");
        let techdocs =
            crate::techdocs::Techdocs::new(catalog.clone(), &stores, config.docs.clone());
        Ok(Self {
            config: Arc::new(config),
            plugins,
            catalog,
            stores,
            techdocs,
            admin_token,
            tokens,
            sessions,
            identities,
            access,
            oidc,
            flow,
            watch,
            metrics,
            callers,
        })
    }
}

/// A server running in the background (what tests and benchmarks use).
pub struct Running {
    /// The bound address (with the real port when the config asked for 0).
    pub addr: SocketAddr,
    /// The server's state.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    /// The data directory's shared lock (SQLite): `callboard db restore`
    /// refuses while it is held.
    _lock: Option<crate::backup::DataDirLock>,
}

impl Running {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish and queued plugin
    /// events be delivered, both within `server.shutdown_drain_secs`, and
    /// waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Builds the state, binds `config.bind` and serves in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let bind = config.bind;
    let lock = if config.database.is_postgres() {
        None
    } else {
        create_private_dir(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        Some(crate::backup::DataDirLock::shared(&config.data_dir)?)
    };
    let (stores, catalog) = AppState::open_storage(&config).await?;
    let state =
        tokio::task::spawn_blocking(move || AppState::build(config, stores, catalog)).await??;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    state.plugins.set_own_address(addr);
    if let Some(public) = &state.config.server.public_url {
        state.plugins.set_public_url(public);
    }
    let app = app(&state);
    if let (Some(bind), Some(handle)) = (state.config.telemetry.metrics.bind, &state.metrics) {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind} (telemetry.metrics.bind)"))?;
        tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(crate::telemetry::metrics::serve_separately(
            axum::extract::FromRef::from_ref(&state),
            handle.clone(),
            listener,
        ));
    }
    // Subscribed before the first ingestion starts: a change published with
    // no receiver yet is lost, and plugins must see every entity added.
    let catalog_events = tokio::spawn(crate::usage::forward_catalog_events(
        state.catalog.subscribe(),
        state.plugins.clone(),
    ));
    // Ingests the configured locations now, then on every refresh interval.
    let refresh = tokio::spawn(state.catalog.clone().run_refresh_loop());
    // Builds the docs once the first load is in, then on changes.
    let docs = tokio::spawn(state.techdocs.clone().run());
    let licenses = tokio::spawn(
        state
            .plugins
            .clone()
            .run_license_checks(state.stores.feed.clone()),
    );
    let event_counts = tokio::spawn(sync_event_counts(
        state.plugins.clone(),
        state.stores.counters.clone(),
    ));
    let policy = tokio::spawn(state.access.clone().follow(state.stores.feed.clone()));
    let shared_plugins = tokio::spawn(
        state
            .plugins
            .clone()
            .follow_shared(state.stores.feed.clone()),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let plugins = state.plugins.clone();
    let server = state.config.server.clone();
    let task = tokio::spawn(async move {
        let served = listen::serve(listener, app, &server, async {
            let _ = rx.await;
        })
        .await;
        refresh.abort();
        docs.abort();
        licenses.abort();
        event_counts.abort();
        shared_plugins.abort();
        policy.abort();
        catalog_events.abort();
        // What requests queued for plugins (usage events) goes out before
        // the process ends, within what is left of the drain deadline.
        let deadline = served.drain_deadline;
        if !plugins.events().drain(deadline).await {
            tracing::warn!(
                "shutdown: plugin events still queued at the drain deadline were dropped"
            );
        }
        served.result
    });
    tracing::info!("Callboard listening on http://{addr}");
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        task,
        _lock: lock,
    })
}

/// How often a replica adds its event counts to the shared ones and reads
/// every replica's sums back.
const EVENT_COUNTS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps plugin event counters summed over replicas (see
/// [`crate::plugins::events::EventBus::sync`]). A database outage delays
/// the sums; the counts are kept and added when it is back.
async fn sync_event_counts(plugins: PluginHost, counters: Arc<dyn callboard_store::Counters>) {
    let mut ticks = tokio::time::interval(EVENT_COUNTS_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        match plugins.events().sync(&*counters).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("plugin event counts: not synced with other replicas: {e}");
            }
            Err(_) => {}
        }
    }
}

/// Reads the admin token, creating it (random, readable by the owner only)
/// on first start.
fn admin_token(file: &std::path::Path) -> anyhow::Result<Arc<str>> {
    if let Ok(token) = std::fs::read_to_string(file) {
        let token = token.trim();
        if !token.is_empty() {
            return Ok(token.into());
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot generate the admin token: {e}"))?;
    let token = hex::encode(bytes);
    write_token(file, &token)?;
    tracing::info!(file = %file.display(), "created the admin token");
    Ok(token.into())
}

/// Writes the admin token file, readable by the owner only.
fn write_token(file: &std::path::Path, token: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(file)
        .and_then(|mut f| f.write_all(token.as_bytes()))
        .with_context(|| format!("cannot write the admin token to {}", file.display()))
}

/// Creates `dir` (and missing parents) readable by the owner only: it holds
/// the admin token, key-value data and licences.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Small responses go out at once: without `TCP_NODELAY`, a response written
/// in two parts can wait ~40 ms for the client's delayed ACK.
pub fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
}

/// Every route Callboard serves: the REST API ([`crate::api::router`]) and
/// the portal's pages ([`crate::web::router`]), merged here, with the layers
/// every route shares (outermost first): the request's id and span, the
/// `Host` check, `/metrics` (outside identity: it checks its own tokens),
/// the body timeout, the request's identity, usage events.
pub fn app(state: &AppState) -> axum::Router {
    app_with(state, axum::Router::new())
}

/// [`app`] with `extra` routes merged under the same middleware (identity,
/// usage, host check, request tracking): how the benchmarks compare a
/// native route with a plugin route on equal terms.
pub fn app_with(state: &AppState, extra: axum::Router) -> axum::Router {
    let server = &state.config.server;
    let hosts = crate::api::auth::AllowedHosts::new(server, state.config.bind);
    let app = crate::api::router(state)
        .merge(crate::web::router(state.clone()))
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(
            <crate::usage::Tracking as axum::extract::FromRef<AppState>>::from_ref(state),
            crate::usage::track,
        ))
        // Who the request is from, before anything else reads it.
        .layer(axum::middleware::from_fn_with_state(
            state.identities.clone(),
            crate::identity::resolve,
        ))
        // A client that stops sending its body mid-way holds a connection
        // and a handler until this fires.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            server.body_timeout(),
        ));
    // Scrapers name themselves with the metrics token, which is no identity:
    // `/metrics` checks its own tokens, outside `resolve`. (Merged into, not
    // merged: the merged router's fallback is the one kept, and `app`'s
    // carries the layers above.)
    crate::telemetry::metrics::router(&axum::extract::FromRef::from_ref(state))
        .merge(app)
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            crate::api::auth::check_host,
        ))
        // Outermost: every response, refusals included, carries the request
        // id, and everything below runs in the request's span.
        .layer(axum::middleware::from_fn(crate::telemetry::request::track))
}
