//! The demo's Kubernetes API server: a small stand-in, on loopback, that
//! speaks the real API server's wire format for the part a Kubernetes
//! plugin reads, so the demo and the plugin's tests run against something
//! `kubectl` itself accepts.
//!
//! One [`serve`] is one cluster (its own listener, name, token and
//! objects); several clusters are several servers. It serves:
//!
//! - discovery: `/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//!   `/apis/{group}/{version}` for `apps/v1`, `autoscaling/v2`, `batch/v1`,
//!   `networking.k8s.io/v1`, and `/version` (a 1.31 server);
//! - `get` and `list` of namespaces, pods, services, deployments,
//!   replicasets, horizontalpodautoscalers, jobs, cronjobs and ingresses,
//!   cluster-wide (`/api/v1/pods`) and per namespace
//!   (`/api/v1/namespaces/{ns}/pods`), with `labelSelector` (the full
//!   syntax), `fieldSelector` (`metadata.name`, `metadata.namespace`, and a
//!   few per kind), `limit` and `continue`;
//! - answers as JSON, as a server-side `Table` (`Accept:
//!   application/json;as=Table;v=v1;g=meta.k8s.io`, what `kubectl get`
//!   asks for) or as `PartialObjectMetadata`;
//! - one write: `PATCH` of a Deployment with a strategic merge patch or a
//!   merge patch (what `kubectl rollout restart` sends), which bumps the
//!   cluster's resource version and the Deployment's generation;
//! - errors as `Status` objects (`NotFound`, `Unauthorized`, `Forbidden`,
//!   `BadRequest`, `MethodNotAllowed`, ...), and the [`Fault`] modes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! for (name, objects) in callboard_demo_kube::demo_clusters() {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let cluster = callboard_demo_kube::serve(listener, callboard_demo_kube::Options {
//!         cluster: name.clone(),
//!         token: Some(format!("{name}-token")),
//!         objects,
//!         ..Default::default()
//!     })
//!     .await?;
//!     println!("{name}: {}", cluster.url());
//!     # drop(cluster);
//! }
//! # Ok(()) }
//! ```

mod api;
mod demo;
mod objects;
mod selector;
mod table;

use std::{
    fmt,
    net::SocketAddr,
    str::FromStr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{Router, routing::any};
use jiff::Timestamp;

pub use crate::{
    api::MAX_BODY_BYTES,
    demo::{DEMO_CLUSTERS, demo_cluster, demo_cluster_at, demo_clusters},
    objects::{ObjectError, Objects, stable_uid},
    selector::{FieldSelector, LabelSelector, MAX_SELECTOR_LEN},
};

/// How the server misbehaves, for testing clients' error handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Behaves.
    #[default]
    None,
    /// Every request gets 401 `Unauthorized`, whatever its token (an
    /// expired or revoked credential).
    Unauthorized,
    /// Discovery works, every request for resources gets 403 `Forbidden`
    /// naming the verb, resource and namespace (an account without RBAC
    /// grants).
    Forbidden,
    /// Every request waits this long before it is answered (a slow or
    /// overloaded API server, for client timeouts).
    Slow(Duration),
}

impl Fault {
    /// The delay of `slow` when none is given.
    pub const DEFAULT_SLOW: Duration = Duration::from_secs(5);
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::None => f.write_str("none"),
            Fault::Unauthorized => f.write_str("unauthorized"),
            Fault::Forbidden => f.write_str("forbidden"),
            Fault::Slow(delay) => write!(f, "slow:{}ms", delay.as_millis()),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    /// `none`, `unauthorized`, `forbidden`, `slow` (5 s) or `slow:<delay>`
    /// with the delay in `ms` or `s` (`slow:1500ms`, `slow:3s`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Fault::None),
            "unauthorized" => Ok(Fault::Unauthorized),
            "forbidden" => Ok(Fault::Forbidden),
            "slow" => Ok(Fault::Slow(Fault::DEFAULT_SLOW)),
            _ => {
                let delay = s
                    .strip_prefix("slow:")
                    .or_else(|| s.strip_prefix("slow="))
                    .ok_or_else(|| {
                        format!("unknown fault {s:?}: expected none, unauthorized, forbidden, slow or slow:<delay>")
                    })?;
                let (number, unit) = match delay.strip_suffix("ms") {
                    Some(n) => (n, 1),
                    None => (delay.strip_suffix('s').unwrap_or(delay), 1000),
                };
                let number: u64 = number
                    .parse()
                    .map_err(|_| format!("bad delay {delay:?}: expected e.g. 1500ms or 3s"))?;
                Ok(Fault::Slow(Duration::from_millis(
                    number.saturating_mul(unit),
                )))
            }
        }
    }
}

/// One cluster: its name, token, objects and behaviour.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster's name (it seeds resource versions; clients know the
    /// cluster by the name they configured, as with a real one).
    pub cluster: String,
    /// When set, every request must carry `Authorization: Bearer <token>`;
    /// others get 401 `Unauthorized`, as from an API server whose
    /// anonymous access is off.
    pub token: Option<String>,
    /// What the cluster holds.
    pub objects: Objects,
    pub fault: Fault,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cluster: "demo".to_owned(),
            token: None,
            objects: Objects::new(),
            fault: Fault::None,
        }
    }
}

/// A server running on its own task; dropping it stops the server: it
/// accepts no more connections and closes the open ones once idle.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    requests: Arc<std::sync::atomic::AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:7010` (a kubeconfig's `server`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far, any route and any status.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Serves until the server fails (it does not stop by itself).
    pub async fn wait(mut self) -> std::io::Result<()> {
        self.wait_task().await
    }

    /// Stops accepting connections and waits for the open ones to close.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait_task().await
    }

    async fn wait_task(&mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts serving one cluster on `listener` (on a spawned task). The
/// listener is bound by the caller, so the server is reachable as soon as
/// this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: Options,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let (app, requests) = router_with_counter(options, addr.to_string());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Running {
        addr,
        requests,
        stop: Some(stop),
        task: Some(task),
    })
}

/// The API as a router, for mounting in another server; `address` is the
/// `host:port` clients reach it at (reported by `/api`).
pub fn router(options: Options, address: String) -> Router {
    router_with_counter(options, address).0
}

fn router_with_counter(
    options: Options,
    address: String,
) -> (Router, Arc<std::sync::atomic::AtomicU64>) {
    let api = Arc::new(api::Api::new(options, address, Timestamp::now()));
    let requests = api.requests.clone();
    let router = Router::new()
        .route("/", any(api::handle))
        .route("/{*path}", any(api::handle))
        .with_state(api);
    (router, requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse() {
        assert_eq!("none".parse(), Ok(Fault::None));
        assert_eq!("forbidden".parse(), Ok(Fault::Forbidden));
        assert_eq!("unauthorized".parse(), Ok(Fault::Unauthorized));
        assert_eq!("slow".parse(), Ok(Fault::Slow(Fault::DEFAULT_SLOW)));
        assert_eq!(
            "slow:1500ms".parse(),
            Ok(Fault::Slow(Duration::from_millis(1500)))
        );
        assert_eq!("slow:3s".parse(), Ok(Fault::Slow(Duration::from_secs(3))));
        assert_eq!("slow:3".parse(), Ok(Fault::Slow(Duration::from_secs(3))));
        assert!("slow:fast".parse::<Fault>().is_err());
        assert!("broken".parse::<Fault>().is_err());
        let fault = Fault::Slow(Duration::from_millis(250));
        assert_eq!(fault.to_string().parse(), Ok(fault));
    }
}
