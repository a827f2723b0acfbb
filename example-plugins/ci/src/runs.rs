//! Fetching, caching and summarising workflow runs, and the tab's view.

use std::fmt;

use callboard_sdk::{
    fetch::{self, FetchError},
    kv, log,
    ui::{Block, Card, Cell, Change, Chart, Notice, Stat, Table, Tone, View},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::setting;

/// Where the API is when `base_url` is not set.
const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// How long fetched runs are served from key-value storage, by default.
const DEFAULT_TTL_SECS: u64 = 60;

/// Runs asked for per fetch.
const PER_PAGE: u32 = 20;

/// How long to wait for the API; the host also caps it at what is left of
/// the call's deadline.
const FETCH_TIMEOUT_MS: u32 = 700;

/// The plugin's settings.
pub struct Settings {
    /// The API's base URL, without a trailing `/`.
    pub base_url: String,
    /// The API token, if configured.
    pub token: Option<String>,
    /// How long fetched runs are served from the cache.
    pub ttl_ms: u64,
}

impl Settings {
    /// Reads `base_url`, `token` and `cache_ttl_secs` from `[plugins.settings.ci]`.
    pub fn load() -> Self {
        let ttl_secs = match setting("cache_ttl_secs").map(|v| v.parse::<u64>()) {
            None => DEFAULT_TTL_SECS,
            Some(Ok(secs)) => secs,
            Some(Err(e)) => {
                log::warn(&format!(
                    "plugins.settings.ci.cache_ttl_secs is not a number of seconds ({e}); \
                     using {DEFAULT_TTL_SECS}"
                ));
                DEFAULT_TTL_SECS
            }
        };
        Self {
            ttl_ms: ttl_secs.saturating_mul(1000),
            base_url: setting("base_url")
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            token: setting("token"),
        }
    }
}

/// `owner/repo`, checked to be safe in a URL path.
pub struct RepoRef {
    owner: String,
    name: String,
}

impl RepoRef {
    /// Parses `owner/repo`; `None` unless both parts are GitHub-style names.
    pub fn parse(slug: &str) -> Option<Self> {
        let (owner, name) = slug.trim().split_once('/')?;
        let valid = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (valid(owner) && valid(name)).then(|| Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    fn cache_key(&self) -> String {
        format!("runs/{self}").to_ascii_lowercase()
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A workflow run: the fields of GitHub's run object this plugin uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    head_sha: String,
    #[serde(default)]
    display_title: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    run_number: u64,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    run_started_at: Option<String>,
}

impl Run {
    fn completed(&self) -> bool {
        self.status.as_deref() == Some("completed")
    }

    /// `success`, `failure`, `in_progress`...: the conclusion once
    /// completed, the status before.
    fn outcome(&self) -> &str {
        if self.completed() {
            self.conclusion.as_deref().unwrap_or("completed")
        } else {
            self.status.as_deref().unwrap_or("unknown")
        }
    }

    /// Seconds from start to last update (to now while running).
    fn duration_secs(&self, now_ms: u64) -> Option<i64> {
        let start = timestamp(
            self.run_started_at
                .as_deref()
                .or(self.created_at.as_deref())?,
        )?;
        let end = if self.completed() {
            timestamp(self.updated_at.as_deref()?)?
        } else {
            i64::try_from(now_ms / 1000).ok()?
        };
        (end >= start).then_some(end - start)
    }

    /// The run as the JSON route reports it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "workflow": self.name,
            "run_number": self.run_number,
            "branch": self.head_branch,
            "sha": self.head_sha,
            "title": self.display_title,
            "event": self.event,
            "status": self.status,
            "conclusion": self.conclusion,
            "duration_secs": if self.completed() { self.duration_secs(0) } else { None },
            "created_at": self.created_at,
            "html_url": self.html_url,
        })
    }
}

/// Seconds since the epoch of an RFC 3339 timestamp.
fn timestamp(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// One page of GitHub's `List workflow runs for a repository`, as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cached {
    /// When it was fetched, ms since the epoch.
    #[serde(default)]
    pub fetched_at_ms: u64,
    /// The base URL it was fetched from (a changed setting is a cache miss).
    #[serde(default)]
    pub base_url: String,
    /// Runs in the repository (all pages).
    pub total_count: u64,
    /// The newest runs, newest first.
    pub workflow_runs: Vec<Run>,
}

/// Why no runs can be shown.
#[derive(Debug, Clone)]
pub enum Failure {
    /// `token` is not set; the API was not called.
    NoToken,
    /// The fetch failed.
    Fetch(FetchError),
}

impl Failure {
    /// One line naming the cause, and the base URL where it matters.
    pub fn title(&self, settings: &Settings, repo: &RepoRef) -> String {
        let base = &settings.base_url;
        match self {
            Failure::NoToken => "CI token missing: set plugins.settings.ci.token".to_owned(),
            Failure::Fetch(e) => match e {
                FetchError::Denied(host) => {
                    format!("CI API host {host} is not granted to the ci plugin")
                }
                FetchError::InvalidUrl(_) => format!("CI base URL {base} is not a valid URL"),
                FetchError::Timeout => format!("CI API at {base} timed out"),
                FetchError::TooLarge(cap) => {
                    format!("CI API at {base} answered more than {cap} bytes")
                }
                FetchError::Connection(_) => format!("CI API unreachable at {base}"),
                FetchError::Status(401) => {
                    format!("CI API at {base} rejected the token (HTTP 401)")
                }
                FetchError::Status(403) => {
                    format!("CI API at {base} refused access to {repo} (HTTP 403)")
                }
                FetchError::Status(404) => {
                    format!("Repository {repo} not found at {base} (HTTP 404)")
                }
                FetchError::Status(status) => format!("CI API at {base} answered HTTP {status}"),
                FetchError::Json(_) => {
                    format!("CI API at {base} did not answer with workflow runs")
                }
            },
        }
    }

    /// What to do about it.
    pub fn detail(&self, settings: &Settings, repo: &RepoRef) -> String {
        let base = &settings.base_url;
        match self {
            Failure::NoToken => format!(
                "Add `token = \"...\"` under [plugins.settings.ci] in callboard.toml; \
                 the plugin does not call {base} without one."
            ),
            Failure::Fetch(e) => match e {
                FetchError::Denied(host) => format!(
                    "Grant it in callboard.toml: [grants.plugins.ci] http_hosts = [\"{host}\"]."
                ),
                FetchError::InvalidUrl(why) => {
                    format!("Fix plugins.settings.ci.base_url: {why}.")
                }
                FetchError::Timeout => "No complete answer in time; try again later.".to_owned(),
                FetchError::TooLarge(_) => {
                    "Raise the operator's response size cap for outbound HTTP.".to_owned()
                }
                FetchError::Connection(why) => {
                    format!("{why}. Check plugins.settings.ci.base_url.")
                }
                FetchError::Status(401) => {
                    "Check plugins.settings.ci.token: it is wrong or expired.".to_owned()
                }
                FetchError::Status(403) => {
                    "The token may lack access to the repository, or the rate limit is exhausted."
                        .to_owned()
                }
                FetchError::Status(404) => format!(
                    "Check the entity's github.com/project-slug annotation ({repo}) and that \
                     the token can read the repository."
                ),
                FetchError::Status(_) => "Try again later.".to_owned(),
                FetchError::Json(why) => format!("Check plugins.settings.ci.base_url ({why})."),
            },
        }
    }
}

/// Where shown runs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Fetched just now.
    Live,
    /// From key-value storage, within the TTL.
    Cache,
    /// From key-value storage, past the TTL, because the fetch failed.
    Stale,
}

/// What [`lookup`] found.
pub enum Lookup {
    /// Runs to show; `warning` says why they are stale.
    Runs {
        /// The runs.
        cached: Cached,
        /// Where they came from.
        source: Source,
        /// Why a fetch failed, when `source` is [`Source::Stale`].
        warning: Option<Failure>,
    },
    /// Nothing to show, and why.
    Failed(Failure),
}

/// Milliseconds since the epoch (WASI wall clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The runs of `repo`: from the cache within the TTL, else fetched (and
/// cached), else the stale cache with the failure, else the failure.
pub fn lookup(settings: &Settings, repo: &RepoRef, now_ms: u64) -> Lookup {
    let Some(token) = &settings.token else {
        return Lookup::Failed(Failure::NoToken);
    };
    let key = repo.cache_key();
    let cached = match kv::get_json::<Cached>(&key) {
        Ok(cached) => cached.filter(|c| c.base_url == settings.base_url),
        Err(e) => {
            log::warn(&format!("reading cached runs of {repo}: {e}"));
            None
        }
    };
    if let Some(cached) = &cached
        && now_ms.saturating_sub(cached.fetched_at_ms) < settings.ttl_ms
    {
        return Lookup::Runs {
            cached: cached.clone(),
            source: Source::Cache,
            warning: None,
        };
    }
    match fetch_runs(settings, token, repo) {
        Ok((total_count, workflow_runs)) => {
            let fresh = Cached {
                fetched_at_ms: now_ms,
                base_url: settings.base_url.clone(),
                total_count,
                workflow_runs,
            };
            if let Err(e) = kv::set_json(&key, &fresh) {
                log::warn(&format!("caching runs of {repo}: {e}"));
            }
            Lookup::Runs {
                cached: fresh,
                source: Source::Live,
                warning: None,
            }
        }
        Err(e) => {
            log::warn(&format!(
                "fetching runs of {repo} from {}: {e}",
                settings.base_url
            ));
            match cached {
                Some(cached) => Lookup::Runs {
                    cached,
                    source: Source::Stale,
                    warning: Some(Failure::Fetch(e)),
                },
                None => Lookup::Failed(Failure::Fetch(e)),
            }
        }
    }
}

/// GitHub's answer; `workflow_runs` deserialises into the cached [`Run`].
#[derive(Deserialize)]
struct RunsPage {
    total_count: u64,
    workflow_runs: Vec<Run>,
}

fn fetch_runs(
    settings: &Settings,
    token: &str,
    repo: &RepoRef,
) -> Result<(u64, Vec<Run>), FetchError> {
    let url = format!(
        "{}/repos/{}/{}/actions/runs?per_page={PER_PAGE}",
        settings.base_url, repo.owner, repo.name
    );
    let page: RunsPage = fetch::get(url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", "callboard-ci")
        .timeout_ms(FETCH_TIMEOUT_MS)
        .send()?
        .error_for_status()?
        .json()?;
    let mut runs = page.workflow_runs;
    runs.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    runs.truncate(PER_PAGE as usize);
    Ok((page.total_count, runs))
}

/// Figures over a list of runs.
pub struct Summary {
    /// Successful runs among `conclusive`.
    pub succeeded: usize,
    /// Completed runs that passed or failed (not cancelled or skipped).
    pub conclusive: usize,
    /// `succeeded / conclusive`, when any.
    pub success_rate: Option<f64>,
    /// Median duration of completed runs, in seconds.
    pub median_secs: Option<i64>,
}

impl Summary {
    /// Figures over `runs`.
    pub fn of(runs: &[Run]) -> Self {
        let (succeeded, conclusive) = rate(runs);
        let mut durations: Vec<i64> = runs
            .iter()
            .filter(|r| r.completed())
            .filter_map(|r| r.duration_secs(0))
            .collect();
        durations.sort_unstable();
        let median_secs = match durations.len() {
            0 => None,
            n if n % 2 == 1 => Some(durations[n / 2]),
            n => Some((durations[n / 2 - 1] + durations[n / 2]) / 2),
        };
        Self {
            succeeded,
            conclusive,
            success_rate: (conclusive > 0).then(|| succeeded as f64 / conclusive as f64),
            median_secs,
        }
    }
}

/// `(succeeded, conclusive)`.
fn rate(runs: &[Run]) -> (usize, usize) {
    let conclusive = runs.iter().filter(|r| r.completed()).filter(|r| {
        matches!(
            r.conclusion.as_deref(),
            Some("success" | "failure" | "timed_out" | "startup_failure")
        )
    });
    conclusive.fold((0, 0), |(ok, all), r| {
        (
            ok + usize::from(r.conclusion.as_deref() == Some("success")),
            all + 1,
        )
    })
}

/// The tab's view for whatever [`lookup`] found.
pub fn view(settings: &Settings, repo: &RepoRef, lookup: &Lookup) -> View {
    let view = View::new("CI");
    match lookup {
        Lookup::Failed(failure) => {
            view.card(Card::new(repo.to_string()).block(Block::Notice(Notice::new(
                match failure {
                    Failure::NoToken => Tone::Warning,
                    Failure::Fetch(_) => Tone::Bad,
                },
                failure.title(settings, repo),
                Some(failure.detail(settings, repo)),
            ))))
        }
        Lookup::Runs {
            cached,
            source,
            warning,
        } => runs_view(view, settings, repo, cached, *source, warning.as_ref()),
    }
}

/// The view for an annotation that is not `owner/repo`.
pub fn malformed_slug_view(slug: &str) -> View {
    View::new("CI").card(Card::untitled().block(Block::Notice(Notice::new(
        Tone::Warning,
        format!("github.com/project-slug `{slug}` is not owner/repository"),
        Some("Fix the entity's annotation, e.g. `brightwharf/booking-service`.".to_owned()),
    ))))
}

fn runs_view(
    view: View,
    settings: &Settings,
    repo: &RepoRef,
    cached: &Cached,
    source: Source,
    warning: Option<&Failure>,
) -> View {
    let now = now_ms();
    let runs = &cached.workflow_runs;
    let mut summary_card = Card::new(repo.to_string());
    if let Some(failure) = warning {
        summary_card = summary_card.block(Block::Notice(Notice::new(
            Tone::Warning,
            format!(
                "Showing runs cached {}: {}",
                ago(now, cached.fetched_at_ms),
                failure.title(settings, repo)
            ),
            Some(failure.detail(settings, repo)),
        )));
    }
    if runs.is_empty() {
        return view.card(summary_card.block(Block::Notice(Notice::new(
            Tone::Info,
            format!("No workflow runs yet for {repo}"),
            None,
        ))));
    }
    let summary = Summary::of(runs);
    let mut stats = Vec::new();
    let rate = match summary.success_rate {
        Some(rate) => Stat::new(
            "Success rate",
            format!(
                "{:.0}% ({} of {})",
                rate * 100.0,
                summary.succeeded,
                summary.conclusive
            ),
        ),
        None => Stat::new("Success rate", "no completed runs"),
    };
    stats.push(match trend(runs) {
        Some(change) => rate.with_change(change),
        None => rate,
    });
    let last = &runs[0];
    stats.push(Stat::new(
        "Last run",
        format!(
            "{} · {}",
            label(last.outcome()),
            last.created_at
                .as_deref()
                .and_then(timestamp)
                .map_or_else(String::new, |t| ago(
                    now,
                    u64::try_from(t).unwrap_or(0) * 1000
                ))
        ),
    ));
    stats.push(Stat::new(
        "Median duration",
        summary.median_secs.map_or_else(|| "–".to_owned(), duration),
    ));
    summary_card = summary_card
        .block(Block::Stats(stats))
        .block(Block::Text(format!(
            "{} of {} runs from {}, {} {}.",
            runs.len(),
            cached.total_count,
            settings.base_url,
            match source {
                Source::Live => "fetched",
                Source::Cache | Source::Stale => "cached",
            },
            ago(now, cached.fetched_at_ms)
        )));

    let mut table = Table::new([
        "Status", "Workflow", "Branch", "Commit", "Started", "Duration", "Run",
    ]);
    for run in runs {
        table = table.row(vec![
            Cell::badge(label(run.outcome()), tone(run.outcome())),
            Cell::text(run.name.clone().unwrap_or_default()),
            Cell::text(run.head_branch.clone().unwrap_or_default()),
            Cell::text(run.head_sha.chars().take(7).collect::<String>()),
            Cell::text(
                run.created_at
                    .as_deref()
                    .and_then(timestamp)
                    .map_or_else(String::new, |t| {
                        ago(now, u64::try_from(t).unwrap_or(0) * 1000)
                    }),
            ),
            Cell::number(run.duration_secs(now).map_or_else(String::new, |d| {
                if run.completed() {
                    duration(d)
                } else {
                    format!("{} so far", duration(d))
                }
            })),
            match &run.html_url {
                Some(url) => Cell::link(format!("#{}", run.run_number), url.clone()),
                None => Cell::text(format!("#{}", run.run_number)),
            },
        ]);
    }
    let durations: Vec<(String, f64)> = runs
        .iter()
        .rev()
        .filter(|r| r.completed())
        .filter_map(|r| {
            let secs = r.duration_secs(0)?;
            let minutes = (secs as f64 / 6.0).round() / 10.0;
            Some((
                format!("{} #{}", r.name.as_deref().unwrap_or("run"), r.run_number),
                minutes,
            ))
        })
        .collect();
    let mut runs_card = Card::new("Recent runs").block(Block::Table(table));
    if !durations.is_empty() {
        runs_card = runs_card.block(Block::BarChart(
            // The host shows a unit before values, like `$`: minutes go in the title.
            Chart::new(Some("Minutes per completed run, oldest first"), None)
                .series("Minutes", durations),
        ));
    }
    view.card(summary_card).card(runs_card)
}

/// The success rate of the newer half of the runs against the older half.
fn trend(runs: &[Run]) -> Option<Change> {
    let half = runs.len() / 2;
    let (new_ok, new_all) = rate(&runs[..half]);
    let (old_ok, old_all) = rate(&runs[half..]);
    if new_all < 3 || old_all < 3 {
        return None;
    }
    let points = (new_ok as f64 / new_all as f64 - old_ok as f64 / old_all as f64) * 100.0;
    let text = format!("{points:+.0} pts vs older runs");
    Some(if points >= 0.5 {
        Change::up_good(text)
    } else if points <= -0.5 {
        Change::down_bad(text)
    } else {
        Change::flat("no change vs older runs")
    })
}

fn label(outcome: &str) -> String {
    match outcome {
        "success" => "success".to_owned(),
        "in_progress" => "in progress".to_owned(),
        "timed_out" => "timed out".to_owned(),
        "startup_failure" => "startup failure".to_owned(),
        "action_required" => "action required".to_owned(),
        other => other.replace('_', " "),
    }
}

fn tone(outcome: &str) -> Tone {
    match outcome {
        "success" => Tone::Good,
        "failure" | "timed_out" | "startup_failure" => Tone::Bad,
        "in_progress" | "queued" | "requested" | "waiting" | "pending" => Tone::Info,
        "action_required" => Tone::Warning,
        _ => Tone::Neutral,
    }
}

/// `45s`, `6m 12s`, `1h 05m`.
fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `just now`, `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
fn ago(now_ms: u64, then_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..=4 => "just now".to_owned(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}
