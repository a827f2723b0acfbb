//! Permissions benchmark: the same catalog reads by a user restricted to what
//! their groups own and by an administrator, side by side in one run, on a
//! synthetic catalog (`shared/catalog_gen.rs`: groups in a tree, users who
//! are members of one group each) served by a real server on 127.0.0.1.
//!
//! The server requires sign-in (`auth.anonymous = "none"`) and has a
//! published policy where everyone reads only what they own
//! (`IS_ENTITY_OWNER` with `$ownerRefs` on `catalog.entity.read`, member
//! `*`). The restricted user is a guest session as `user:default/user-0`
//! (its ownership refs: itself, its group and that group's ancestors); the
//! administrator is the admin token (bearer) for the API and an admin-token
//! session (`POST /admin/login`) for the page. Requests alternate (admin,
//! restricted, admin, ...) after a warm-up; p50 and p99 of the time the
//! client saw, one request at a time.
//!
//! `env -u RUST_BACKTRACE cargo bench -p callboard-tests --bench permissions
//! [-- SIZES] [sqlite|postgres]` (`cargo xtask bench permissions [-- ...]`
//! removes `RUST_BACKTRACE` itself), e.g. `-- 10000` or `-- 100000 sqlite
//! postgres`. Default: 100,000 entities on SQLite. PostgreSQL runs on a
//! private cluster the benchmark starts, as the catalog benchmark does.
//! Prints one Markdown table per backend and size.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use callboard::{
    config::Config,
    identity::config::Anonymous,
    permissions::{Criteria, Effect, Policy, Role, Rule},
    server::Running,
};
use callboard_catalog::{LocationConfig, LocationKind, Selection};
use serde_json::{Value, json};

#[path = "shared/rng.rs"]
mod rng;
use rng::Rng;

#[path = "shared/catalog_gen.rs"]
mod catalog_gen;
use catalog_gen::{WORDS, counts, generate};

/// The user the guest session signs in as.
const RESTRICTED: &str = "user:default/user-0";

/// Requests per caller and operation at most; fewer when a pair of requests
/// takes longer than [`BUDGET`] / `ROUNDS`.
const ROUNDS: usize = 200;
/// At least this many per caller and operation, however slow.
const MIN_ROUNDS: usize = 30;
/// Time one operation's measured pairs should take at most.
const BUDGET: Duration = Duration::from_secs(45);
/// Warm-up pairs before measuring (prepared statements, page cache, the
/// restricted user's ownership refs).
const WARM_UP: usize = 5;

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// How a request names its caller.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Cookie(&'a str),
    Bearer(&'a str),
}

/// The administrator's and the restricted user's credentials for one
/// operation (the API takes the admin token, the page an admin session).
#[derive(Clone, Copy)]
struct Callers<'a> {
    admin: Auth<'a>,
    restricted: Auth<'a>,
}

/// One timed GET; panics on anything but a 2xx (a redirect to the sign-in
/// page would otherwise be measured as a fast answer).
async fn timed(client: &reqwest::Client, url: &str, auth: Auth<'_>) -> (Duration, Vec<u8>) {
    let request = match auth {
        Auth::Cookie(c) => client.get(url).header("cookie", c),
        Auth::Bearer(t) => client.get(url).bearer_auth(t),
    };
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    let elapsed = started.elapsed();
    assert!(status.is_success(), "{url}: {status}");
    (elapsed, body.to_vec())
}

async fn get_json(client: &reqwest::Client, url: &str, auth: Auth<'_>) -> Value {
    let (_, body) = timed(client, url, auth).await;
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// One operation: its name, its path for a round's random state, and who
/// calls it.
struct Op<'a> {
    name: &'static str,
    path: Box<dyn FnMut(&mut Rng) -> String>,
    callers: Callers<'a>,
}

/// One row of the report.
struct Row {
    name: &'static str,
    rounds: usize,
    /// The first request of each (admin, restricted), before any warm-up.
    first: (Duration, Duration),
    admin: Stats,
    restricted: Stats,
}

/// Warms up, then measures `op` in alternating pairs (admin, restricted).
async fn measure(client: &reqwest::Client, base: &str, op: &mut Op<'_>, rng: &mut Rng) -> Row {
    // The first pair: counts and facets are remembered until the catalog
    // changes (per query, so per scope), and the restricted user's
    // ownership refs until then too: this is what a change costs once.
    let url = format!("{base}{}", (op.path)(rng));
    let first = (
        timed(client, &url, op.callers.admin).await.0,
        timed(client, &url, op.callers.restricted).await.0,
    );
    let mut warm = Duration::ZERO;
    for _ in 0..WARM_UP {
        let url = format!("{base}{}", (op.path)(rng));
        warm += timed(client, &url, op.callers.admin).await.0;
        warm += timed(client, &url, op.callers.restricted).await.0;
    }
    let per_pair = warm / WARM_UP as u32;
    let rounds = usize::try_from(BUDGET.as_nanos() / per_pair.as_nanos().max(1))
        .unwrap_or(ROUNDS)
        .clamp(MIN_ROUNDS, ROUNDS);
    let mut admin = Vec::with_capacity(rounds);
    let mut restricted = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // The same URL for both, so both answer the same question.
        let url = format!("{base}{}", (op.path)(rng));
        admin.push(timed(client, &url, op.callers.admin).await.0);
        restricted.push(timed(client, &url, op.callers.restricted).await.0);
    }
    eprintln!("done: {} ({rounds} pairs)", op.name);
    Row {
        name: op.name,
        rounds,
        first,
        admin: stats(admin),
        restricted: stats(restricted),
    }
}

/// A policy where everyone reads only what they or their groups own.
fn owners_only() -> Policy {
    Policy {
        roles: vec![Role {
            name: "role:default/owners".into(),
            description: "Everyone reads what their groups own".into(),
            members: vec!["*".into()],
            rules: vec![Rule {
                permission: "catalog.entity.read".into(),
                action: None,
                effect: Effect::Allow,
                conditions: Some(Criteria::Rule {
                    rule: "IS_ENTITY_OWNER".into(),
                    resource_type: "catalog-entity".into(),
                    params: json!({"claims": ["$ownerRefs"]}),
                }),
            }],
        }],
    }
}

/// Waits until `check` holds, for at most `secs` seconds.
async fn wait_for<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `policy` through the store and waits until the server uses it.
async fn publish(running: &Running, policy: &Policy) {
    let stores = &running.state.stores;
    let draft = stores
        .policies
        .save_draft(&serde_json::to_string(policy).unwrap(), "bench", 1)
        .await
        .unwrap();
    assert!(stores.policies.publish(draft, "bench", 2).await.unwrap());
    let access = running.state.access.clone();
    wait_for(60, "the server to use the published policy", || {
        let access = access.clone();
        async move { access.version() == draft }
    })
    .await;
}

/// A session cookie (`name=value`) from a form POST that answers 303.
async fn sign_in(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> String {
    let response = client.post(url).form(form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303, "{url}");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// `totalItems` of a by-query page with `query`.
async fn total(client: &reqwest::Client, base: &str, query: &str, auth: Auth<'_>) -> u64 {
    let page = get_json(
        client,
        &format!("{base}/api/catalog/entities/by-query?limit=1{query}"),
        auth,
    )
    .await;
    page["totalItems"]
        .as_u64()
        .unwrap_or_else(|| panic!("no totalItems: {page}"))
}

/// The number in a `group-N` reference (`group-N`, `group:group-N`,
/// `group:default/group-N`).
fn group_number(reference: &str) -> Option<usize> {
    reference
        .rsplit(['/', ':'])
        .next()?
        .strip_prefix("group-")?
        .parse()
        .ok()
}

async fn bench(n: usize, backend: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("catalog");
    let generated_at = Instant::now();
    let generated = generate(&files, n);
    eprintln!(
        "[{n} {backend}] generated {generated} entities in {:.1}s",
        generated_at.elapsed().as_secs_f64()
    );

    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.auth.anonymous = Anonymous::None;
    config.auth.guest.enabled = true;
    config.auth.guest.user = RESTRICTED.into();
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: format!("{}/*.yaml", files.display()),
    }];
    config.catalog.refresh_interval_secs = 0;
    // The caps protect a shared portal from one location; the benchmark's
    // one location is the whole catalog.
    config.catalog.max_entities = n * 2;
    config.catalog.max_entities_per_location = n * 2;
    config.catalog.max_bytes_per_location = u64::MAX;
    if backend == "postgres" {
        let cluster = tokio::task::spawn_blocking(callboard_store::testing::postgres::shared)
            .await
            .unwrap();
        config.database.url = cluster.create_database();
    }
    let running = callboard::server::start(config).await.unwrap();
    let started = Instant::now();
    let catalog = running.state.catalog.clone();
    // Every generated entity plus the location's own.
    wait_for(3600, "the catalog to load", || {
        let catalog = catalog.clone();
        async move {
            catalog
                .count(&Selection::default())
                .await
                .is_ok_and(|c| c as usize > generated)
        }
    })
    .await;
    eprintln!(
        "[{n} {backend}] ingested in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // Let the refresh loop finish its post-ingest optimize.
    tokio::time::sleep(Duration::from_secs(2)).await;

    publish(&running, &owners_only()).await;
    let base = running.url();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = std::fs::read_to_string(running.state.config.admin_token_file()).unwrap();
    let token = token.trim();
    let guest = sign_in(
        &client,
        &format!("{base}/auth/guest"),
        &[("return", "/catalog")],
    )
    .await;
    let admin_session = sign_in(&client, &format!("{base}/admin/login"), &[("token", token)]).await;
    let (admin, restricted) = (Auth::Bearer(token), Auth::Cookie(&guest));

    // Who the restricted user is and how much of the catalog it reads.
    let user = get_json(
        &client,
        &format!("{base}/api/catalog/entities/by-name/user/default/user-0"),
        admin,
    )
    .await;
    let group = user["spec"]["memberOf"][0]
        .as_str()
        .and_then(group_number)
        .unwrap_or_else(|| panic!("user-0 is in no group-N: {user}"));
    // catalog_gen's tree: group-i's parent is group-(i-1)/4.
    let mut chain = vec![group];
    while let Some(&g) = chain.last().filter(|&&g| g > 0) {
        chain.push((g - 1) / 4);
    }
    let admin_total = total(&client, &base, "", admin).await;
    let restricted_total = total(&client, &base, "", restricted).await;
    let admin_components = total(&client, &base, "&filter=kind=component", admin).await;
    let restricted_components = total(&client, &base, "&filter=kind=component", restricted).await;
    assert!(
        restricted_total > 0 && restricted_total < admin_total,
        "the restricted user reads {restricted_total} of {admin_total}"
    );

    let api = Callers { admin, restricted };
    let page = Callers {
        admin: Auth::Cookie(&admin_session),
        restricted,
    };
    let fixed = |path: &'static str| -> Box<dyn FnMut(&mut Rng) -> String> {
        Box::new(move |_| path.to_owned())
    };
    let mut ops = vec![
        Op {
            name: "`GET /api/catalog/entities?limit=100`",
            path: fixed("/api/catalog/entities?limit=100"),
            callers: api,
        },
        Op {
            name: "`GET /api/catalog/entities?filter=kind=component&limit=100`",
            path: fixed("/api/catalog/entities?filter=kind=component&limit=100"),
            callers: api,
        },
        Op {
            name: "`GET /api/catalog/entities/by-query?limit=100` (with totalItems)",
            path: fixed("/api/catalog/entities/by-query?limit=100"),
            callers: api,
        },
        Op {
            name: "`GET /api/catalog/entities/by-query?limit=20&fullTextFilterTerm=<word>`",
            path: Box::new(|r| {
                format!(
                    "/api/catalog/entities/by-query?limit=20&fullTextFilterTerm={}",
                    r.pick(WORDS)
                )
            }),
            callers: api,
        },
        Op {
            name: "`GET /api/catalog/entity-facets?facet=kind&facet=spec.lifecycle`",
            path: fixed("/api/catalog/entity-facets?facet=kind&facet=spec.lifecycle"),
            callers: api,
        },
        Op {
            name: "page `GET /catalog?kind=component`",
            path: fixed("/catalog?kind=component"),
            callers: page,
        },
    ];
    let mut rng = Rng(7);
    let mut rows = Vec::with_capacity(ops.len());
    for op in &mut ops {
        rows.push(measure(&client, &base, op, &mut rng).await);
    }
    running.shutdown().await.unwrap();

    let c = counts(n);
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\n{backend}, {n} entities ({} components, {} APIs, {} resources, {} groups, {} users)\n",
        c.components, c.apis, c.resources, c.groups, c.users
    );
    let _ = writeln!(
        report,
        "The restricted user `{RESTRICTED}` is a member of group-{group}; its ownership refs are itself and {} groups (group-{group} and its ancestors {}). It reads {restricted_total} of the {admin_total} entities ({:.2}%), {restricted_components} of the {admin_components} components.\n",
        chain.len(),
        chain[1..]
            .iter()
            .map(|g| format!("group-{g}"))
            .collect::<Vec<_>>()
            .join(", "),
        restricted_total as f64 * 100.0 / admin_total as f64,
    );
    let _ = writeln!(
        report,
        "| operation | admin p50 (ms) | restricted p50 (ms) | ratio | admin p99 (ms) | restricted p99 (ms) |\n|---|---|---|---|---|---|"
    );
    for row in &rows {
        let ratio = row.restricted.p50.as_secs_f64() / row.admin.p50.as_secs_f64();
        let mark = if ratio > 1.5 { " (over 1.5)" } else { "" };
        let _ = writeln!(
            report,
            "| {} ({} each) | {} | {} | {ratio:.2}{mark} | {} | {} |",
            row.name,
            row.rounds,
            ms(row.admin.p50),
            ms(row.restricted.p50),
            ms(row.admin.p99),
            ms(row.restricted.p99),
        );
    }
    let _ = writeln!(
        report,
        "\nFirst request of each operation after start-up (one sample each; counts, facets and ownership not yet remembered):\n\n| operation | admin (ms) | restricted (ms) |\n|---|---|---|"
    );
    for row in &rows {
        let _ = writeln!(
            report,
            "| {} | {} | {} |",
            row.name,
            ms(row.first.0),
            ms(row.first.1)
        );
    }
    report
}

fn main() {
    // cargo passes `--bench`; a backend's name selects it, anything else
    // that parses is a size list.
    let backends: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a == "sqlite" || a == "postgres")
        .collect();
    let backends = if backends.is_empty() {
        vec!["sqlite".to_owned()]
    } else {
        backends
    };
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .flat_map(|a| a.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|s| s.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for backend in &backends {
        for &n in &sizes {
            let report = runtime.block_on(bench(n, backend));
            println!("{report}");
        }
    }
}
