//! Catalog benchmark: synthetic catalogs of 10k and 100k entities, ingested
//! from files and queried through the real HTTP API on 127.0.0.1, on each
//! backend side by side: the embedded SQLite files and PostgreSQL (a
//! private cluster the benchmark starts, as the tests do).
//!
//! `cargo bench -p callboard-tests --bench catalog [-- SIZES] [sqlite|postgres]`,
//! e.g. `-- 10000` or `-- 10000,100000 sqlite` (default: both sizes, both
//! backends). Prints a Markdown table per size, one column per backend.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use callboard_catalog::{Catalog, CatalogConfig, LocationConfig, LocationKind};

#[path = "shared/rng.rs"]
mod rng;
use rng::Rng;

#[path = "shared/catalog_gen.rs"]
mod catalog_gen;
use catalog_gen::{WORDS, counts, generate};

fn rss_peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// CPU time (user + system) this process has used, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resets the peak-RSS counter (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

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

async fn time_requests(client: &reqwest::Client, urls: &[String]) -> Stats {
    let mut samples = Vec::with_capacity(urls.len());
    for url in urls {
        let started = Instant::now();
        let response = client.get(url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let _ = response.bytes().await.unwrap();
        samples.push(started.elapsed());
    }
    stats(samples)
}

/// One measurement: what, and its value.
type Rows = Vec<(String, String)>;

async fn open_stores(backend: &str, dir: &Path) -> callboard_store::Stores {
    match backend {
        "postgres" => {
            let cluster = tokio::task::spawn_blocking(callboard_store::testing::postgres::shared)
                .await
                .unwrap();
            let url = cluster.create_database();
            callboard_store_postgres::connect(&url, &callboard_store_postgres::PgOptions::default())
                .await
                .unwrap()
        }
        _ => callboard_store_sqlite::open(dir, &callboard_store_sqlite::SqliteOptions::default())
            .unwrap(),
    }
}

async fn bench(n: usize, backend: &str) -> Rows {
    let mut report = Rows::new();
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("CALLBOARD_BENCH_KEEP").is_some() {
        eprintln!("keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    let files = dir.path().join("catalog");
    let generated_at = Instant::now();
    let total = generate(&files, n);
    eprintln!(
        "[{n}] generated {total} entities in {:.1}s",
        generated_at.elapsed().as_secs_f64()
    );

    reset_peak();
    let config = CatalogConfig {
        locations: vec![LocationConfig {
            kind: LocationKind::File,
            target: format!("{}/*.yaml", files.display()),
        }],
        refresh_interval_secs: 0,
        // The caps protect a shared portal from one location; the
        // benchmark's one location is the whole catalog, up to 1M entities.
        max_entities: n * 2,
        max_entities_per_location: n * 2,
        max_bytes_per_location: u64::MAX,
        ..CatalogConfig::default()
    };
    let stores = open_stores(backend, dir.path()).await;
    let catalog = Catalog::open(&stores, &config).await.unwrap();
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    catalog.sync_config_locations().await.unwrap();
    let reports = catalog.refresh_all().await.unwrap();
    let count = catalog
        .count(&callboard_catalog::Selection::default())
        .await
        .unwrap();
    let ingest = started.elapsed();
    let ingest_cpu = cpu_seconds() - cpu_started;
    let ingest_rss = rss_peak_mb();
    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    assert_eq!(problems, 0, "{:?}", reports[0].problems.first());
    assert_eq!(
        count as usize,
        total + 1,
        "every entity (plus the generated Location) is queryable"
    );
    let rate = total as f64 / ingest.as_secs_f64();
    eprintln!(
        "[{n} {backend}] ingested in {:.2}s ({rate:.0}/s), peak RSS {ingest_rss:.0} MB",
        ingest.as_secs_f64()
    );

    // A second read with nothing changed: the periodic refresh's cost.
    let started = Instant::now();
    catalog.refresh_all().await.unwrap();
    let refresh = started.elapsed();
    // One file changed (one entity's description): only it is parsed again.
    let first = files.join("catalog-00000.yaml");
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replacen("The ", "The changed ", 1)).unwrap();
    let started = Instant::now();
    let reports = catalog.refresh_all().await.unwrap();
    let refresh_one = started.elapsed();
    assert_eq!(reports[0].summary.updated, 1, "{:?}", reports[0].summary);
    // `POST /refresh` of one entity (Backstage's refreshEntity): its
    // location is read again, unchanged files skipped by content hash.
    let entity = callboard_catalog::EntityRef::parse("group:default/group-0").unwrap();
    let mut samples = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        catalog.refresh_entity(&entity).await.unwrap();
        samples.push(started.elapsed());
    }
    let refresh_entity = stats(samples);

    reset_peak();
    let router = axum::Router::new().nest(
        "/api/catalog",
        callboard::api::catalog::router(
            catalog.clone(),
            callboard::api::auth::CatalogAccess::admin_only("bench"),
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Without TCP_NODELAY a streamed body's last segment waits for a delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let base = format!("http://{addr}/api/catalog");
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();

    let c = counts(n);
    let mut rng = Rng(42);
    let rounds = 300;
    let lookups: Vec<String> = (0..rounds)
        .map(|_| {
            format!(
                "{base}/entities/by-name/user/default/user-{}",
                rng.below(c.users)
            )
        })
        .collect();
    let lookup = time_requests(&client, &lookups).await;
    let filtered: Vec<String> = (0..rounds)
        .map(|_| {
            format!("{base}/entities?filter=kind=component,spec.lifecycle=production&limit=100")
        })
        .collect();
    let filter = time_requests(&client, &filtered).await;
    let text: Vec<String> = (0..rounds)
        .map(|_| {
            format!(
                "{base}/entities/by-query?fullTextFilterTerm={}-{}&limit=20",
                rng.pick(WORDS),
                rng.pick(WORDS)
            )
        })
        .collect();
    let full_text = time_requests(&client, &text).await;
    let facet_urls: Vec<String> = (0..rounds / 3)
        .map(|_| format!("{base}/entity-facets?facet=spec.type&facet=metadata.tags"))
        .collect();
    let facets = time_requests(&client, &facet_urls).await;
    let filtered_facet_urls: Vec<String> = (0..rounds / 3)
        .map(|_| {
            format!(
                "{base}/entity-facets?facet=spec.type&facet=metadata.tags&filter=kind=component"
            )
        })
        .collect();
    let filtered_facets = time_requests(&client, &filtered_facet_urls).await;

    let started = Instant::now();
    let mut response = client.get(format!("{base}/entities")).send().await.unwrap();
    let mut bytes = 0usize;
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
    }
    let list = started.elapsed();
    let server_rss = rss_peak_mb();
    eprintln!(
        "[{n}] full list {:.2}s, {:.1} MB",
        list.as_secs_f64(),
        bytes as f64 / 1e6
    );

    report.push((
        "ingestion from files, until queryable".into(),
        format!(
            "{:.2} s, **{rate:.0} /s** ({ingest_cpu:.1} CPU-s), peak RSS {ingest_rss:.0} MB",
            ingest.as_secs_f64()
        ),
    ));
    report.push((
        "refresh with nothing changed".into(),
        format!("{:.2} s", refresh.as_secs_f64()),
    ));
    report.push((
        "refresh with one file changed".into(),
        format!("{:.2} s", refresh_one.as_secs_f64()),
    ));
    report.push((
        "refresh of one entity (`refresh_entity`, nothing changed)".into(),
        format!("p50 {} ms", ms(refresh_entity.p50)),
    ));
    for (what, s) in [
        ("by-name lookup (`/entities/by-name/...`)", &lookup),
        (
            "filtered query (`kind=component,spec.lifecycle=production`, limit 100)",
            &filter,
        ),
        (
            "by-query with `fullTextFilterTerm` (limit 20, with totalItems)",
            &full_text,
        ),
        ("entity-facets `spec.type` + `metadata.tags`", &facets),
        (
            "entity-facets, filtered to `kind=component`",
            &filtered_facets,
        ),
    ] {
        report.push((
            what.into(),
            format!("p50 {} ms, p99 {} ms", ms(s.p50), ms(s.p99)),
        ));
    }
    report.push((
        format!("full `GET /entities` ({count} entities, streamed)"),
        format!(
            "{:.2} s, {:.0} MB; Callboard peak RSS {server_rss:.0} MB",
            list.as_secs_f64(),
            bytes as f64 / 1e6
        ),
    ));
    report
}

fn main() {
    // cargo passes `--bench`; everything else that parses is a size list.
    let backends: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a == "sqlite" || a == "postgres")
        .collect();
    let backends = if backends.is_empty() {
        vec!["sqlite".to_owned(), "postgres".to_owned()]
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
        vec![10_000, 100_000]
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
    // One process per backend, one after the other in this command: memory
    // figures are each process's own, not what the previous backend left
    // in the allocator.
    if let [backend] = backends.as_slice()
        && std::env::args().any(|a| a == "--child")
    {
        let rows: Vec<(usize, Rows)> = sizes
            .iter()
            .map(|&n| (n, runtime.block_on(bench(n, backend))))
            .collect();
        println!("{}", serde_json::to_string(&rows).unwrap());
        return;
    }
    let mut columns: Vec<Vec<(usize, Rows)>> = Vec::new();
    for backend in &backends {
        let sizes: Vec<String> = sizes.iter().map(ToString::to_string).collect();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--bench", "--child", backend, &sizes.join(",")])
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "the {backend} run failed");
        columns.push(serde_json::from_slice(&out.stdout).unwrap());
    }
    let mut report = String::new();
    for (i, n) in sizes.iter().enumerate() {
        let _ = writeln!(report, "\n{n} entities\n");
        let _ = writeln!(report, "| measure | {} |", backends.join(" | "));
        let _ = writeln!(report, "|---|{}", "---|".repeat(backends.len()));
        for (j, (what, _)) in columns[0][i].1.iter().enumerate() {
            let values: Vec<&str> = columns.iter().map(|c| c[i].1[j].1.as_str()).collect();
            let _ = writeln!(report, "| {what} | {} |", values.join(" | "));
        }
    }
    println!("{report}");
}
