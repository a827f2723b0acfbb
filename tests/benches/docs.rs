//! TechDocs build benchmark: a generated site of 5,000 pages using every
//! supported extension (`callboard_docs::sample_site`), built the way the
//! portal builds it (read from disk, rendered, stored with every page's
//! search sections in one transaction) on each backend side by side, then
//! one changed page rebuilt. The renderer alone is timed too, in memory.
//!
//! `cargo bench -p callboard-tests --bench docs [-- PAGES] [sqlite|postgres]`
//! (default 5000, both backends). Prints a Markdown table.

use std::time::{Duration, Instant};

use callboard::techdocs::{DocsConfig, Techdocs};
use callboard_catalog::{Catalog, CatalogConfig, EntityRef, LocationConfig, LocationKind};

#[path = "shared/stores.rs"]
mod stores;
use stores::open_stores;

const CHANGED: &str = "docs/section-1/page-50.md";

fn rate(pages: usize, took: Duration) -> String {
    format!(
        "{:.2} s ({:.0} pages/s)",
        took.as_secs_f64(),
        pages as f64 / took.as_secs_f64()
    )
}

/// Median of `runs` timings of `f`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn pipeline(pages: usize, backend: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    for (path, bytes) in callboard_docs::sample_site(pages).iter() {
        let p = site.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    std::fs::write(
        site.join("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: sample\n  \
         annotations:\n    backstage.io/techdocs-ref: dir:.\nspec: {type: service, lifecycle: production, owner: team-a}\n",
    )
    .unwrap();
    let config = CatalogConfig {
        locations: vec![LocationConfig {
            kind: LocationKind::File,
            target: site.join("catalog-info.yaml").display().to_string(),
        }],
        refresh_interval_secs: 0,
        ..CatalogConfig::default()
    };
    let stores = open_stores(backend, dir.path()).await;
    let catalog = Catalog::open(&stores, &config).await.unwrap();
    catalog.sync_config_locations().await.unwrap();
    catalog.refresh_all().await.unwrap();
    let techdocs = Techdocs::new(catalog, &stores, DocsConfig::default());
    let r = EntityRef::parse("component:default/sample").unwrap();

    let started = Instant::now();
    let report = techdocs.build(&r).await.unwrap();
    let full = started.elapsed();
    assert_eq!(report.rendered, pages, "every page rendered");
    assert!(report.problems.is_empty(), "{:?}", report.problems.first());
    rows.push((
        format!("full build, {pages} pages: read, render, store with search sections"),
        rate(pages, full),
    ));

    let started = Instant::now();
    let files = callboard_docs::Files::from_dir(&site, callboard_docs::Limits::default()).unwrap();
    let read = started.elapsed();
    drop(files);
    rows.push((
        "reading the site's files from disk".into(),
        format!("{:.0} ms", read.as_secs_f64() * 1000.0),
    ));
    let started = Instant::now();
    let report = techdocs.build(&r).await.unwrap();
    let nothing = started.elapsed();
    assert!(!report.updated);
    rows.push((
        "check with nothing changed (read + hash every file)".into(),
        format!("{:.0} ms", nothing.as_secs_f64() * 1000.0),
    ));

    let mut samples = Vec::new();
    let mut rendering = Vec::new();
    for i in 0..5 {
        let path = site.join(CHANGED);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("\nEdit number {i}.\n"));
        std::fs::write(&path, text).unwrap();
        let started = Instant::now();
        let report = techdocs.build(&r).await.unwrap();
        samples.push(started.elapsed());
        rendering.push(report.took);
        assert_eq!(report.rendered, 1, "only the changed page is rendered");
    }
    rows.push((
        "  of which reading (changed files only) and rendering (median of 5)".into(),
        format!("{:.0} ms", median(rendering).as_secs_f64() * 1000.0),
    ));
    rows.push((
        "one changed page: walk the folder, read it, render it, store (median of 5)".into(),
        format!("{:.0} ms", median(samples).as_secs_f64() * 1000.0),
    ));
    rows
}

fn renderer(pages: usize) -> Vec<(String, String)> {
    let mut files = callboard_docs::sample_site(pages);
    let started = Instant::now();
    let first = callboard_docs::build(&files, None);
    let full = started.elapsed();
    let mut samples = Vec::new();
    let mut manifest = first.manifest;
    for i in 0..5 {
        let mut text = String::from_utf8(files.get(CHANGED).unwrap().to_vec()).unwrap();
        text.push_str(&format!("\nEdit {i}.\n"));
        files.insert(CHANGED, text).unwrap();
        let started = Instant::now();
        let next = callboard_docs::build(&files, Some(&manifest));
        samples.push(started.elapsed());
        assert_eq!(next.pages.len(), 1);
        manifest = next.manifest;
    }
    vec![
        (
            format!("renderer alone, {pages} pages in memory"),
            rate(pages, full),
        ),
        (
            "renderer alone, one changed page (median of 5)".into(),
            format!("{:.0} ms", median(samples).as_secs_f64() * 1000.0),
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let pages = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5000);
    let backends: Vec<&str> = match args.iter().find(|a| *a == "sqlite" || *a == "postgres") {
        Some(b) => vec![b.as_str()],
        None => vec!["sqlite", "postgres"],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let alone = renderer(pages);
    let mut columns = Vec::new();
    for backend in &backends {
        eprintln!("[{backend}] {pages} pages");
        columns.push(runtime.block_on(pipeline(pages, backend)));
    }
    println!("\n| {pages}-page site | {} |", backends.join(" | "));
    println!("|---|{}", "---|".repeat(backends.len()));
    for (label, value) in &alone {
        println!(
            "| {label} | {} |",
            vec![value.as_str(); backends.len()].join(" | ")
        );
    }
    for (i, (label, _)) in columns[0].iter().enumerate() {
        let values: Vec<&str> = columns.iter().map(|c| c[i].1.as_str()).collect();
        println!("| {label} | {} |", values.join(" | "));
    }
}
