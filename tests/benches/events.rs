//! Events: how fast events flow into a subscribed plugin, and what
//! publishing costs a request. `cargo xtask bench events [-- SECONDS]`.
//!
//! Two servers run side by side in one process over the same catalog and
//! the same plugin (`misbehave`, whose `on-events` counts each event in
//! key-value storage): one grants it usage events ("events on"), the other
//! does not, so nothing subscribes and publishing is skipped ("events off").
//! One client alternates between them in short rounds, looking up an
//! entity through the catalog API, so both see the same machine noise.

#[path = "support.rs"]
#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one uses only part"
)]
mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use callboard::{
    config::Config,
    plugins::{
        events::{Event, Stream},
        manifest::Capabilities,
    },
    server::Running,
};
use callboard_catalog::{LocationConfig, LocationKind};
use support::{machine, percentiles, plugins_dir, us};

const CATALOG: &str = "
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: lookup-me, title: Lookup target }
spec: { type: service, lifecycle: production, owner: team-a }
";

async fn server(dir: &Path, events: bool, queue: usize) -> anyhow::Result<Running> {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(
        plugins_dir().join("misbehave.wasm"),
        plugins.join("misbehave.wasm"),
    )?;
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, CATALOG)?;
    let mut config = Config {
        bind: "127.0.0.1:0".parse()?,
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    config.plugins.event_queue = queue;
    // As large in bytes (an event is ~150 bytes queued), so the throughput
    // round measures delivery, not the byte cap's drops.
    config.plugins.event_queue_bytes = queue.max(10_000) * 1024;
    // The load names nobody: catalog reads answer anonymous callers.
    config.auth.anonymous = callboard::identity::config::Anonymous::Read;
    if events {
        config.grants.plugins.insert(
            "misbehave".into(),
            Capabilities {
                kv: true,
                events: vec!["usage".into()],
                ..Capabilities::default()
            },
        );
    }
    let running = callboard::server::start(config).await?;
    // Wait for the catalog.
    let client = reqwest::Client::new();
    let url = format!(
        "{}/api/catalog/entities/by-name/component/default/lookup-me",
        running.url()
    );
    // Wait for the catalog; anything but "not there yet" is a broken setup.
    let waiting = Instant::now();
    loop {
        let status = client.get(&url).send().await?.status();
        match status.as_u16() {
            200 => break,
            404 if waiting.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => anyhow::bail!("{url} answers {status} (waited {:?})", waiting.elapsed()),
        }
    }
    Ok(running)
}

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        println!("events benchmark on {}", machine());

        // 1. Throughput: events published straight into the bus, drained in
        // batches of 500 into the plugin.
        let dir = tempfile::tempdir()?;
        const N: u64 = 100_000;
        let on = server(dir.path(), true, N as usize).await?;
        let bus = on.state.plugins.events();
        let started = Instant::now();
        for i in 0..N {
            bus.publish(
                Stream::Usage,
                Event::now("api-call", Some("bench".into()), format!("/api/bench/{}", i % 100))
                    .with("status", 200),
            );
        }
        let published = started.elapsed();
        let delivered = loop {
            let counts = on.state.plugins.get("misbehave").and_then(|p| p.events).unwrap_or_default();
            if counts.delivered + counts.dropped >= N {
                break counts;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let took = started.elapsed();
        println!(
            "throughput: {N} events published in {:.1} ms ({:.0} ns each), delivered {} (dropped {}, failed batches {}) in {:.2} s: {:.0} events/s into the plugin",
            published.as_secs_f64() * 1e3,
            published.as_secs_f64() * 1e9 / N as f64,
            delivered.delivered,
            delivered.dropped,
            delivered.failed_batches,
            took.as_secs_f64(),
            delivered.delivered as f64 / took.as_secs_f64(),
        );
        on.shutdown().await?;

        // 2. Added latency: catalog lookups, events off vs on, interleaved.
        let (dir_off, dir_on) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let off = server(dir_off.path(), false, 10_000).await?;
        let on = server(dir_on.path(), true, 10_000).await?;
        let client = reqwest::Client::new();
        let path = "/api/catalog/entities/by-name/component/default/lookup-me";
        let urls = [format!("{}{path}", off.url()), format!("{}{path}", on.url())];
        // Warm both.
        for url in &urls {
            for _ in 0..200 {
                client.get(url).send().await?.bytes().await?;
            }
        }
        let mut samples = [Vec::new(), Vec::new()];
        let round = Duration::from_secs_f64(seconds / 2.0);
        for _ in 0..10 {
            for (i, url) in urls.iter().enumerate() {
                let until = Instant::now() + round;
                while Instant::now() < until {
                    let t = Instant::now();
                    let response = client.get(url).send().await?;
                    assert_eq!(response.status(), 200);
                    response.bytes().await?;
                    samples[i].push(t.elapsed());
                }
            }
        }
        let mut p50s = Vec::new();
        for (name, s) in ["events off", "events on"].iter().zip(samples.iter_mut()) {
            let n = s.len();
            let (p50, p99) = percentiles(s);
            println!("{name:<11} catalog lookup: {n:>7} requests  p50 {:>9}  p99 {:>9}", us(p50), us(p99));
            p50s.push(p50);
        }
        let counts = on.state.plugins.get("misbehave").and_then(|p| p.events).unwrap_or_default();
        println!(
            "added p50 latency with events on: {:+.1}% (goal <= 5%); the plugin received {} events, dropped {}",
            100.0 * (p50s[1].as_secs_f64() / p50s[0].as_secs_f64() - 1.0),
            counts.delivered,
            counts.dropped,
        );
        let stats = on.state.plugins.events().stats("misbehave");
        assert!(stats.is_some_and(|s| s.delivered > 0), "events were not delivered");
        off.shutdown().await?;
        on.shutdown().await?;
        Ok::<_, anyhow::Error>(())
    })
}
