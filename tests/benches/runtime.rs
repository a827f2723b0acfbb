//! Runtime level: a fresh store + instance + `handle` call per request, the
//! way every plugin request runs. `cargo xtask bench runtime [-- ITERATIONS]`.

#[path = "support.rs"]
#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one uses only part"
)]
mod support;

use std::time::Instant;

use callboard::{
    config::Config,
    plugins::{PluginHost, PluginRequest},
};
use support::{machine, percentiles, plugins_dir, us};

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let data = tempfile::tempdir()?;
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(plugins_dir().join("hello.wasm"), plugins.join("hello.wasm"))?;
    let config = Config {
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    let stores = callboard_store_sqlite::open(data.path(), &Default::default())?;
    let host = PluginHost::new(&config.runtime(), &stores)?;
    for result in host.load_dir(&plugins) {
        result.map_err(|f| anyhow::anyhow!("{}: {}", f.file.display(), f.error))?;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "runtime benchmark on {}, {iterations} calls each",
        machine()
    );
    let cases = [
        (
            "GET /ping (trivial)",
            PluginRequest {
                method: "GET".into(),
                path: "/ping".into(),
                ..Default::default()
            },
        ),
        (
            "POST /echo, 1 KiB body",
            PluginRequest {
                method: "POST".into(),
                path: "/echo".into(),
                body: vec![b'x'; 1024],
                ..Default::default()
            },
        ),
    ];
    runtime.block_on(async {
        for (name, request) in &cases {
            // Warm up: page in code and pooled slots.
            for _ in 0..iterations / 10 {
                host.handle("hello", request.clone()).await?;
            }
            let mut samples = Vec::with_capacity(iterations);
            let started = Instant::now();
            for _ in 0..iterations {
                let request = request.clone();
                let t = Instant::now();
                let response = host.handle("hello", request).await?;
                samples.push(t.elapsed());
                assert_eq!(response.status, 200);
            }
            let total = started.elapsed();
            let (p50, p99) = percentiles(&mut samples);
            println!(
                "{name:<26} p50 {:>9}  p99 {:>9}  {:>8.0} calls/s (one thread)",
                us(p50),
                us(p99),
                iterations as f64 / total.as_secs_f64()
            );
        }
        Ok::<_, anyhow::Error>(())
    })?;

    // Throughput with every core calling at once: shows whether anything in
    // the call path serializes.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parallel = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let per_task = iterations / threads;
    let started = Instant::now();
    parallel.block_on(async {
        let tasks: Vec<_> = (0..threads)
            .map(|_| {
                let host = host.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        let request = PluginRequest {
                            method: "GET".into(),
                            path: "/ping".into(),
                            ..Default::default()
                        };
                        host.handle("hello", request).await?;
                    }
                    Ok::<_, anyhow::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    println!(
        "GET /ping on {threads} threads: {:>8.0} calls/s",
        (per_task * threads) as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
