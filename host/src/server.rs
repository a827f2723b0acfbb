//! Building the server's state from a [`Config`] and serving it.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use callboard_catalog::Catalog;

use crate::{config::Config, plugins::PluginHost};

/// Everything the routers share.
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The plugin runtime.
    pub plugins: PluginHost,
    /// The software catalog.
    pub catalog: Catalog,
}

impl AppState {
    /// Creates the data directory, the plugin runtime, and loads the plugins
    /// folder. Blocking: compiles plugins that are not in the cache.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let database = config
            .catalog
            .database
            .clone()
            .unwrap_or_else(|| config.data_dir.join("catalog.sqlite"));
        let catalog = Catalog::open(&database, &config.catalog)
            .with_context(|| format!("cannot open the catalog database {}", database.display()))?;
        let plugins = PluginHost::new(&config).context("cannot start the plugin runtime")?;
        let dir = config.plugins_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create plugins directory {}", dir.display()))?;
        let results = plugins.load_dir(&dir);
        let failed = results.iter().filter(|r| r.is_err()).count();
        tracing::info!(dir = %dir.display(), loaded = results.len() - failed, failed, "plugins directory loaded");
        Ok(Self {
            config: Arc::new(config),
            plugins,
            catalog,
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
}

impl Running {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and waits.
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
    let state = tokio::task::spawn_blocking(move || AppState::build(config)).await??;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let app = crate::api::router(&state);
    // Ingests the configured locations now, then on every refresh interval.
    let refresh = tokio::spawn(state.catalog.clone().run_refresh_loop());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        refresh.abort();
        served
    });
    tracing::info!("Callboard listening on http://{addr}");
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}
