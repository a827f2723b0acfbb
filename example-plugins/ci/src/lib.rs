//! The ci plugin: build status of a component from a GitHub Actions-compatible
//! REST API, for entities annotated `github.com/project-slug: owner/repo`.
//!
//! Settings (`[plugins.settings.ci]` in callboard.toml): `base_url` (default
//! `https://api.github.com`), `token`, and `cache_ttl_secs` (default 60). The
//! operator grants the API's host (`[grants.plugins.ci] http_hosts`).
//!
//! Runs are cached in key-value storage for `cache_ttl_secs`; when the API
//! cannot be reached the last cached runs are shown with a notice saying why.
//!
//! - entity tab "CI": success rate, last run, median duration, a table of
//!   recent runs and a chart of their durations, or a notice naming what is
//!   wrong (token missing, API unreachable, token rejected, repository unknown);
//! - `GET /runs/{owner}/{repo}`: the same summary as JSON, for scripts;
//! - `GET /health`: the plugin's settings, without calling the API.

mod runs;

use callboard_sdk::{
    Params, Plugin, Request, Response, Router, config, export_plugin,
    ui::{Slot, View, ViewRequest},
};
use serde_json::json;

use crate::runs::{Failure, Lookup, RepoRef, Settings, Source};

/// The annotation naming an entity's repository.
const SLUG: &str = "github.com/project-slug";

struct Ci;

impl Plugin for Ci {
    fn handle(request: Request) -> Response {
        Router::new()
            .get("/health", health)
            .get("/runs/{owner}/{repo}", runs_json)
            .handle(&request)
    }

    fn view(request: ViewRequest) -> Result<Option<View>, callboard_sdk::Error> {
        if matches!(request.slot, Slot::Page) {
            return Ok(None);
        }
        let Some(slug) = request.annotation(SLUG) else {
            return Ok(None);
        };
        let Some(repo) = RepoRef::parse(slug) else {
            return Ok(Some(runs::malformed_slug_view(slug)));
        };
        let settings = Settings::load();
        Ok(Some(runs::view(
            &settings,
            &repo,
            &runs::lookup(&settings, &repo, runs::now_ms()),
        )))
    }
}

fn health(_: &Request, _: &Params) -> Response {
    let settings = Settings::load();
    Response::json(&json!({
        "status": "ok",
        "base_url": settings.base_url,
        "token": if settings.token.is_some() { "configured" } else { "missing" },
        "cache_ttl_secs": settings.ttl_ms / 1000,
    }))
}

fn runs_json(_: &Request, params: &Params) -> Response {
    let slug = format!(
        "{}/{}",
        params.get("owner").unwrap_or(""),
        params.get("repo").unwrap_or("")
    );
    let Some(repo) = RepoRef::parse(&slug) else {
        return Response::error(400, format!("`{slug}` is not an owner/repository name"));
    };
    let settings = Settings::load();
    match runs::lookup(&settings, &repo, runs::now_ms()) {
        Lookup::Runs {
            cached,
            source,
            warning,
        } => {
            let summary = runs::Summary::of(&cached.workflow_runs);
            Response::json(&json!({
                "repository": repo.to_string(),
                "base_url": settings.base_url,
                "source": match source {
                    Source::Live => "live",
                    Source::Cache => "cache",
                    Source::Stale => "stale",
                },
                "fetched_at_ms": cached.fetched_at_ms,
                "total_count": cached.total_count,
                "success_rate": summary.success_rate,
                "succeeded": summary.succeeded,
                "conclusive": summary.conclusive,
                "median_duration_secs": summary.median_secs,
                "last_run": cached.workflow_runs.first().map(runs::Run::to_json),
                "runs": cached.workflow_runs.iter().map(runs::Run::to_json).collect::<Vec<_>>(),
                "warning": warning.map(|f| f.title(&settings, &repo)),
            }))
        }
        Lookup::Failed(failure) => {
            let status = match &failure {
                Failure::NoToken => 503,
                Failure::Fetch(callboard_sdk::fetch::FetchError::Status(404)) => 404,
                Failure::Fetch(callboard_sdk::fetch::FetchError::Timeout) => 504,
                Failure::Fetch(_) => 502,
            };
            Response::json(&json!({
                "error": failure.title(&settings, &repo),
                "detail": failure.detail(&settings, &repo),
                "base_url": settings.base_url,
            }))
            .with_status(status)
        }
    }
}

/// Reads a setting, treating blank as unset.
fn setting(key: &str) -> Option<String> {
    config::get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

export_plugin!(Ci);
