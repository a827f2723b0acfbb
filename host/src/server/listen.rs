//! The accept loop. `axum::serve` has no header-read timeout, no connection
//! cap and waits forever for connections at shutdown; this loop serves the
//! same router through hyper's HTTP/1 server with all three.

use std::{future::Future, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet, time::Instant};
use tower_http::add_extension::AddExtension;

use super::config::ServerConfig;

/// Largest request head (request line and headers) a client may send, in
/// bytes; also caps each connection's read buffer.
const MAX_HEAD: usize = 64 << 10;
/// Most headers in one request.
const MAX_HEADERS: usize = 100;

/// How serving ended.
pub(super) struct Served {
    /// The accept loop's outcome.
    pub(super) result: std::io::Result<()>,
    /// When the drain that began at shutdown must be over; what is still
    /// running then is cut off.
    pub(super) drain_deadline: Instant,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting, lets connections finish their requests in flight until
/// `server.shutdown_drain_secs` has passed, and closes what is left.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    server: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Served {
    let permits = std::sync::Arc::new(Semaphore::new(server.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // Hyper starts this timer whenever it waits for a request head,
        // so it also ends idle keep-alive connections.
        .header_read_timeout(server.header_read_timeout())
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let mut shutdown = std::pin::pin!(shutdown);
    let result = loop {
        // Reap finished connections so the set stays as small as the
        // number of open ones.
        while connections.try_join_next().is_some() {}
        // At the cap, wait for a connection to close before accepting:
        // new clients queue in the kernel's backlog meanwhile.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break Ok(()),
            },
            () = &mut shutdown => break Ok(()),
        };
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, typically: wait for some to
                    // be released instead of spinning.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break Ok(()),
        };
        super::no_delay(&mut stream);
        // The router takes hyper's body type as it is. Each request carries
        // the peer's address: `[proxy] trusted` decides whose
        // `x-forwarded-user` counts.
        let service = TowerToHyperService::new(AddExtension::new(app.clone(), ConnectInfo(peer)));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    };
    drop(listener);
    let drain_deadline = Instant::now() + server.shutdown_drain();
    tracing::info!(
        connections = connections.len(),
        "stopped accepting; draining requests in flight"
    );
    if tokio::time::timeout_at(drain_deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            "shutdown: requests still running at the drain deadline were cut off"
        );
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Served {
        result,
        drain_deadline,
    }
}

/// Errors of one connection that the listener survives.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
