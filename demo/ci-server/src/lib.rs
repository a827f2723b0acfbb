//! The demo's CI API: a small server speaking the part of GitHub's REST API
//! the `ci` plugin reads, `GET /repos/{owner}/{repo}/actions/runs`, with
//! believable workflow runs for every repository of the demo catalog
//! (`github.com/project-slug` annotations under `demo/catalog/`).
//!
//! The runs are generated once when the server starts, deterministically
//! per repository, over the three weeks before that moment and the week
//! after: mostly green, some red, a few in progress, and a couple of
//! repositories in a bad way. Each request sees the runs created by then,
//! in the state they are in by then.
//! Each run's `html_url` points at a small page this server renders, so the
//! portal's links go somewhere in the demo.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let ci = callboard_demo_ci::serve(listener, callboard_demo_ci::Options {
//!     token: Some("demo-ci-token".to_owned()),
//! })
//! .await?;
//! println!("{} ({} requests so far)", ci.url(), ci.requests());
//! # Ok(()) }
//! ```

mod data;

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::data::{Repo, Run, State as RunState};

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// When set, API requests must carry `Authorization: Bearer <token>` (or
    /// `token <token>`); others get GitHub's 401 `Bad credentials`.
    pub token: Option<String>,
}

/// A server running on its own task; dropping it stops the server: it
/// accepts no more connections and closes the open ones once idle.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:7008` (what the plugin's `base_url` is set to).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far, any route and any status (tests use it to
    /// prove a client caches).
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

/// Starts serving on `listener` (on a spawned task), with runs planned
/// around now.
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: Options,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicU64::new(0));
    let app = router(
        options,
        format!("http://{addr}"),
        Timestamp::now(),
        requests.clone(),
    );
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

struct Api {
    repos: BTreeMap<String, Repo>,
    token: Option<String>,
    /// Where this server is reached, for `url` and `html_url`.
    origin: String,
}

/// The routes: the API under `/repos`, run pages under `/{owner}/{repo}`,
/// and `/` listing the repositories. Runs are planned around `start`;
/// `origin` is where the server is reached (for `url` and `html_url`);
/// `requests` counts every request.
pub fn router(
    options: Options,
    origin: String,
    start: Timestamp,
    requests: Arc<AtomicU64>,
) -> Router {
    let api = Arc::new(Api {
        repos: data::generate(start),
        token: options.token.filter(|t| !t.is_empty()),
        origin,
    });
    let authed = Router::new()
        .route("/repos/{owner}/{repo}/actions/runs", get(list_runs))
        .route("/repos/{owner}/{repo}/actions/runs/{id}", get(one_run))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize));
    Router::new()
        .route("/", get(index))
        .route("/{owner}/{repo}/actions/runs/{id}", get(run_page))
        .merge(authed)
        .fallback(|| async { not_found() })
        .with_state(api)
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            requests.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        }))
}

/// GitHub's error body.
fn github_error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (status, Json(body)).into_response()
}

fn not_found() -> Response {
    github_error(StatusCode::NOT_FOUND, "Not Found")
}

async fn authorize(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    if let Some(token) = &api.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
            })
            .map(|(_, value)| value.trim());
        if presented != Some(token.as_str()) {
            return github_error(StatusCode::UNAUTHORIZED, "Bad credentials");
        }
    }
    next.run(request).await
}

async fn index(State(api): State<Arc<Api>>) -> Json<Value> {
    Json(json!({
        "message": "Callboard demo CI API (a GitHub Actions-compatible subset)",
        "endpoints": ["GET /repos/{owner}/{repo}/actions/runs", "GET /repos/{owner}/{repo}/actions/runs/{run_id}"],
        "repositories": api.repos.values().map(|r| r.full_name.as_str()).collect::<Vec<_>>(),
    }))
}

/// GitHub's `List workflow runs for a repository`: newest first, filtered by
/// `branch`, `event`, `actor` and `status` (a status or a conclusion), paged
/// by `per_page` (default 30, at most 100) and `page` (from 1).
async fn list_runs(
    State(api): State<Arc<Api>>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(repo) = api.repo(&owner, &repo) else {
        return not_found();
    };
    let number = |name: &str, default: usize| {
        query
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let per_page = number("per_page", 30).clamp(1, 100);
    let page = number("page", 1).max(1);
    let filter = |name: &str| query.get(name).filter(|v| !v.is_empty());
    let now = Timestamp::now();
    let matching: Vec<(&Run, RunState)> = repo
        .runs
        .iter()
        .filter(|r| r.created_at <= now)
        .map(|r| (r, r.state_at(now)))
        .filter(|(r, _)| filter("branch").is_none_or(|b| r.head_branch == *b))
        .filter(|(r, _)| filter("event").is_none_or(|e| r.event == e))
        .filter(|(r, _)| filter("actor").is_none_or(|a| r.actor.eq_ignore_ascii_case(a)))
        .filter(|(_, state)| {
            filter("status")
                .is_none_or(|s| state.status == s || state.conclusion == Some(s.as_str()))
        })
        .collect();
    let runs: Vec<Value> = matching
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|(run, state)| api.run_json(repo, run, *state))
        .collect();
    let mut response = Json(json!({
        "total_count": matching.len(),
        "workflow_runs": runs,
    }))
    .into_response();
    github_headers(response.headers_mut());
    response
}

/// GitHub's `Get a workflow run`.
async fn one_run(
    State(api): State<Arc<Api>>,
    Path((owner, repo, id)): Path<(String, String, String)>,
) -> Response {
    let Some(repo) = api.repo(&owner, &repo) else {
        return not_found();
    };
    let now = Timestamp::now();
    match repo
        .runs
        .iter()
        .find(|r| r.id.to_string() == id && r.created_at <= now)
    {
        Some(run) => {
            let mut response = Json(api.run_json(repo, run, run.state_at(now))).into_response();
            github_headers(response.headers_mut());
            response
        }
        None => not_found(),
    }
}

fn github_headers(headers: &mut HeaderMap) {
    headers.insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
}

/// The page a run's `html_url` points at.
async fn run_page(
    State(api): State<Arc<Api>>,
    Path((owner, repo, id)): Path<(String, String, String)>,
) -> Response {
    let now = Timestamp::now();
    let Some(run) = api.repo(&owner, &repo).and_then(|r| {
        r.runs
            .iter()
            .find(|run| run.id.to_string() == id && run.created_at <= now)
    }) else {
        return (StatusCode::NOT_FOUND, Html("<h1>Not Found</h1>".to_owned())).into_response();
    };
    let state = run.state_at(now);
    let outcome = state.conclusion.unwrap_or(state.status).replace('_', " ");
    let duration = run
        .run_started_at
        .duration_until(state.updated_at)
        .as_secs()
        .max(0);
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>{name} #{number} · {owner}/{repo}</title>\
         <h1>{name} #{number}: {outcome}</h1>\
         <p>{owner}/{repo} · branch <code>{branch}</code> · commit <code>{sha}</code></p>\
         <p>{title}</p>\
         <p>Triggered by {actor} via {event} at {created}; ran {minutes}m {seconds}s.</p>\
         <p><small>Served by the Callboard demo CI API.</small></p>",
        name = escape(run.name),
        number = run.run_number,
        owner = escape(&owner),
        repo = escape(&repo),
        branch = escape(&run.head_branch),
        sha = escape(&run.head_sha),
        title = escape(&run.display_title),
        actor = escape(&run.actor),
        event = run.event,
        created = run.created_at,
        minutes = duration / 60,
        seconds = duration % 60,
    );
    Html(page).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Api {
    fn repo(&self, owner: &str, repo: &str) -> Option<&Repo> {
        self.repos
            .get(&format!("{owner}/{repo}").to_ascii_lowercase())
    }

    /// A run in GitHub's shape (the fields clients read; no URLs to things
    /// this server does not serve beyond the run itself).
    fn run_json(&self, repo: &Repo, run: &Run, state: RunState) -> Value {
        let full = &repo.full_name;
        let (owner, name) = full.split_once('/').unwrap_or((full, full));
        let api = format!("{}/repos/{full}", self.origin);
        let actor = {
            let bot = run.actor.ends_with("[bot]");
            json!({
                "login": run.actor,
                "id": 1_000_000 + run.actor.bytes().map(u64::from).sum::<u64>(),
                "type": if bot { "Bot" } else { "User" },
            })
        };
        json!({
            "id": run.id,
            "name": run.name,
            "node_id": format!("WFR_kwLO{:X}", run.id),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.path,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "run_attempt": 1,
            "event": run.event,
            "status": state.status,
            "conclusion": state.conclusion,
            "workflow_id": run.workflow_id,
            "url": format!("{api}/actions/runs/{}", run.id),
            "html_url": format!("{}/{full}/actions/runs/{}", self.origin, run.id),
            "jobs_url": format!("{api}/actions/runs/{}/jobs", run.id),
            "logs_url": format!("{api}/actions/runs/{}/logs", run.id),
            "workflow_url": format!("{api}/actions/workflows/{}", run.workflow_id),
            "created_at": run.created_at.to_string(),
            "updated_at": state.updated_at.to_string(),
            "run_started_at": run.run_started_at.to_string(),
            "actor": actor,
            "triggering_actor": actor,
            "head_commit": {
                "id": run.head_sha,
                "message": run.display_title,
                "timestamp": run.created_at.to_string(),
                "author": { "name": run.actor, "email": format!("{}@users.noreply.brightwharf.example", run.actor) },
            },
            "repository": {
                "id": repo.id,
                "name": name,
                "full_name": full,
                "private": true,
                "owner": { "login": owner, "type": "Organization" },
                "html_url": format!("{}/{full}", self.origin),
                "url": api,
            },
        })
    }
}
