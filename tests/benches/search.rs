//! Search benchmark: a synthetic catalog (100k entities by default, read
//! from files by the real catalog) plus 50k TechDocs sections in the index,
//! queried through the real `GET /api/search/query` on 127.0.0.1, on each
//! backend side by side: the embedded SQLite files and PostgreSQL (a
//! private cluster, as the tests start it). Also: the time from a catalog
//! change to the changed text being found.
//!
//! `cargo bench -p callboard-tests --bench search [-- ENTITIES SECTIONS] [sqlite|postgres]`
//! (default 100000 50000, both backends). Prints a Markdown table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callboard::identity::Identity;
use callboard_catalog::{Catalog, CatalogConfig, LocationConfig, LocationKind};

#[path = "shared/rng.rs"]
mod rng;
use rng::Rng;

#[path = "shared/catalog_gen.rs"]
mod catalog_gen;
#[path = "shared/sections.rs"]
mod sections;
#[path = "shared/stores.rs"]
mod stores;
use catalog_gen::{WORDS, generate};
use sections::load_sections;
use stores::open_stores;

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// One word within one edit (a neighbour transposition).
fn typo(word: &str) -> String {
    let mut c: Vec<char> = word.chars().collect();
    if c.len() >= 4 {
        c.swap(1, 2);
    }
    c.into_iter().collect()
}

/// The query mix: (class, term).
fn queries(users: usize) -> Vec<(&'static str, String)> {
    let mut rng = Rng(11);
    let mut out = Vec::new();
    for _ in 0..40 {
        out.push(("entity name", format!("user-{}", rng.below(users.max(1)))));
        let w = rng.pick(WORDS);
        out.push(("word", w.to_owned()));
        out.push(("prefix", w.chars().take(4).collect()));
        let (a, b) = (rng.pick(WORDS), rng.pick(WORDS));
        out.push(("two words", format!("{a} {b}")));
        let long: Vec<char> = rng.pick(WORDS).chars().collect();
        if long.len() >= 6 {
            out.push(("infix", long[2..5].iter().collect()));
        }
        out.push(("typo, nothing exact", format!("{}q", typo(rng.pick(WORDS)))));
    }
    // Words with a tag of two letters (`go`, on a twelfth of the APIs): its
    // prefix is read beside the trigram tier. A generator of its own, so the
    // classes above ask what they asked before this class was added.
    let mut short = Rng(13);
    for i in 0..20 {
        let (a, b) = (short.pick(WORDS), short.pick(WORDS));
        let term = if i % 2 == 0 {
            format!("{a} go")
        } else {
            format!("{a} {b} go")
        };
        out.push(("words and a 2-letter term", term));
    }
    out
}

async fn serve(stores: &callboard_store::Stores) -> String {
    let access = Arc::new(callboard::identity::access::Access::fixed(
        callboard::permissions::Policy::default(),
        callboard::identity::config::Anonymous::None,
    ));
    let search = callboard::search::Search::new(stores.search.clone(), access);
    let router = axum::Router::new()
        .nest("/api/search", callboard::api::search::router(search))
        .layer(axum::Extension(Identity::admin()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/api/search/query")
}

async fn bench(n: usize, sections: usize, backend: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("catalog");
    let total = generate(&files, n);
    let config = CatalogConfig {
        locations: vec![LocationConfig {
            kind: LocationKind::File,
            target: format!("{}/*.yaml", files.display()),
        }],
        refresh_interval_secs: 0,
        max_entities: n * 2,
        max_entities_per_location: n * 2,
        max_bytes_per_location: u64::MAX,
        ..CatalogConfig::default()
    };
    let stores = open_stores(backend, dir.path()).await;
    let catalog = Catalog::open(&stores, &config).await.unwrap();
    let started = Instant::now();
    catalog.sync_config_locations().await.unwrap();
    catalog.refresh_all().await.unwrap();
    let ingest = started.elapsed();
    rows.push((
        format!("ingest {total} entities (catalog + index)"),
        format!(
            "{:.1} s ({:.0}/s)",
            ingest.as_secs_f64(),
            total as f64 / ingest.as_secs_f64()
        ),
    ));
    let components = catalog_gen::counts(n).components;
    let took = load_sections(&stores, sections, components).await;
    rows.push((
        format!("index {sections} docs sections (10 per page write)"),
        format!(
            "{:.1} s ({:.0}/s)",
            took.as_secs_f64(),
            sections as f64 / took.as_secs_f64()
        ),
    ));
    catalog.refresh_all().await.ok();
    stores.catalog.optimize().await.unwrap();

    let url = serve(&stores).await;
    let client = reqwest::Client::new();
    let mut classes: Vec<(&str, Vec<Duration>)> = Vec::new();
    let mut all = Vec::new();
    let mix = queries(catalog_gen::counts(n).users);
    // One warm-up pass; the second is measured.
    for round in 0..2 {
        for (class, term) in &mix {
            let started = Instant::now();
            let response = client
                .get(&url)
                .query(&[("term", term.as_str()), ("pageLimit", "25")])
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "{term}: {}",
                response.status()
            );
            let _ = response.bytes().await.unwrap();
            let took = started.elapsed();
            if round == 1 {
                all.push(took);
                match classes.iter_mut().find(|(c, _)| c == class) {
                    Some((_, v)) => v.push(took),
                    None => classes.push((class, vec![took])),
                }
            }
        }
    }
    rows.push((
        format!("query, all {} (p50 / p99 ms)", all.len()),
        format!(
            "{} / {}",
            ms(percentile(&mut all, 0.5)),
            ms(percentile(&mut all, 0.99))
        ),
    ));
    for (class, mut samples) in classes {
        rows.push((
            format!("query: {class} (p50 / p99 ms)"),
            format!(
                "{} / {}",
                ms(percentile(&mut samples, 0.5)),
                ms(percentile(&mut samples, 0.99))
            ),
        ));
    }

    // From a changed file to its new text being found: the entity's
    // refresh (`POST /refresh`'s work) and the index write are one step.
    let mut samples = Vec::new();
    for i in 0..5 {
        let first = files.join("catalog-00000.yaml");
        let text = std::fs::read_to_string(&first).unwrap();
        let word = format!("zebrafinch{i}");
        std::fs::write(&first, text.replacen("The ", &format!("The {word} "), 1)).unwrap();
        let started = Instant::now();
        // What `POST /refresh` of the entity does: its location read
        // again, unchanged files skipped by content hash.
        catalog
            .refresh_entity(&callboard_catalog::EntityRef::parse("group:default/group-0").unwrap())
            .await
            .unwrap();
        loop {
            let body: serde_json::Value = client
                .get(&url)
                .query(&[("term", word.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if body["numberOfResults"].as_u64().unwrap_or(0) > 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{word} never found"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(started.elapsed());
    }
    rows.push((
        "changed file to findable, through POST /refresh (p50 of 5, ms)".into(),
        ms(percentile(&mut samples, 0.5)),
    ));
    rows
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let n = numbers.first().copied().unwrap_or(100_000);
    let sections = numbers.get(1).copied().unwrap_or(50_000);
    let backends: Vec<&str> = match args.iter().find(|a| *a == "sqlite" || *a == "postgres") {
        Some(b) => vec![b.as_str()],
        None => vec!["sqlite", "postgres"],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut columns = Vec::new();
    for backend in &backends {
        eprintln!("[{backend}] {n} entities + {sections} sections");
        columns.push(runtime.block_on(bench(n, sections, backend)));
    }
    println!(
        "\n| {n} entities + {sections} sections | {} |",
        backends.join(" | ")
    );
    println!("|---|{}", "---|".repeat(backends.len()));
    for (i, (label, _)) in columns[0].iter().enumerate() {
        let values: Vec<&str> = columns.iter().map(|c| c[i].1.as_str()).collect();
        println!("| {label} | {} |", values.join(" | "));
    }
}
