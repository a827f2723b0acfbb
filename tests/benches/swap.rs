//! Hot update of a typical (1.1 MB) plugin through the plugins folder:
//! time from the file landing (rename into place) to the new version
//! answering, with a cold compile and with the compiled-code cache; and p99
//! request latency under load while versions swap, against steady state, in
//! one run. `cargo xtask bench swap [-- ROUNDS]`.

#[path = "support.rs"]
#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one uses only part"
)]
mod support;

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use callboard::{config::Config, plugins::manifest};
use support::{machine, percentiles, plugins_dir};

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    let bytes = std::fs::read(plugins_dir().join("bulky.wasm"))?;
    let version = |n: usize| -> anyhow::Result<Vec<u8>> {
        let mut m = manifest::read(&bytes)?;
        m.version = format!("1.0.{n}").parse()?;
        Ok(manifest::embed(&bytes, &m)?)
    };
    let data = tempfile::tempdir()?;
    let mut config = Config {
        bind: "127.0.0.1:0".parse()?,
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    // The load names nobody: plugin routes answer anonymous callers.
    config.auth.anonymous = callboard::identity::config::Anonymous::Read;
    let dir = config.plugins_dir();
    let size = bytes.len();
    let data_dir = data.path().to_owned();
    let warm_dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = callboard::server::start(config).await?;
        let url = format!("{}/api/plugins/bulky/ping", server.url());
        let client = reqwest::Client::new();
        println!(
            "swap benchmark on {}: a {:.1} MB plugin, {rounds} swaps per case, watch debounce {} ms",
            machine(),
            size as f64 / 1e6,
            server.state.config.plugins.watch_debounce_ms
        );

        // Cold: every version is new bytes, so a cache miss and a compile.
        let mut cold = Vec::new();
        for n in 1..=rounds {
            cold.push(land_and_wait(&client, &url, &dir, &version(n)?, n).await?);
        }
        // Unload, then land the same versions again: cache hits.
        std::fs::remove_file(dir.join("bulky.wasm"))?;
        while client.get(&url).send().await?.status() != 404 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut cached = Vec::new();
        for n in 1..=rounds {
            cached.push(land_and_wait(&client, &url, &dir, &version(n)?, n).await?);
        }
        for (name, mut samples) in [("cold compile", cold), ("compiled cache", cached)] {
            let (p50, p99) = percentiles(&mut samples);
            println!("land -> answering, {name:<15} p50 {:>7.1} ms  max {:>7.1} ms", ms(p50), ms(p99));
        }

        // Pre-compile the versions the cached-swap phase lands, in a second
        // runtime sharing the compiled-code cache (as a second server or an
        // earlier install would have filled it).
        let warm = Config {
            data_dir: data_dir.clone(),
            plugins: callboard::config::PluginsConfig { dir: Some(warm_dir.path().to_owned()), watch: false, ..Default::default() },
            ..Config::default()
        };
        let warm_stores = callboard_store_sqlite::open(&data_dir, &Default::default())?;
        let warm_host = callboard::plugins::PluginHost::new(&warm.runtime(), &warm_stores)?;
        for n in 100..140 {
            warm_host.install(&version(n)?, &Default::default())?;
        }
        drop(warm_host);

        // Latency under load (8 clients): steady, while swapping to cached
        // versions, while swapping to versions that must be compiled.
        let mut results = Vec::new();
        let mut cached_next = 100;
        let mut cold_next = rounds + 1000;
        for phase in [Phase::Steady, Phase::Cached, Phase::Cold] {
            let stop = Arc::new(AtomicBool::new(false));
            let samples: Arc<Mutex<Vec<(Duration, bool)>>> = Arc::default();
            let mut clients = Vec::new();
            for _ in 0..8 {
                let (client, url, stop, samples) = (client.clone(), url.clone(), stop.clone(), samples.clone());
                clients.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let ok = client.get(&url).send().await.map(|r| r.status() == 200).unwrap_or(false);
                        samples.lock().unwrap().push((t.elapsed(), ok));
                    }
                }));
            }
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                let n = match phase {
                    Phase::Steady => None,
                    Phase::Cached => {
                        cached_next += 1;
                        Some(cached_next - 1)
                    }
                    Phase::Cold => {
                        cold_next += 1;
                        Some(cold_next - 1)
                    }
                };
                if let Some(n) = n {
                    let landed = version(n)?;
                    std::fs::write(dir.join(".bulky.wasm.part"), &landed)?;
                    std::fs::rename(dir.join(".bulky.wasm.part"), dir.join("bulky.wasm"))?;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            stop.store(true, Ordering::Relaxed);
            for c in clients {
                c.await?;
            }
            let samples = std::mem::take(&mut *samples.lock().unwrap());
            let failed = samples.iter().filter(|(_, ok)| !ok).count();
            let mut latencies: Vec<Duration> = samples.into_iter().map(|(d, _)| d).collect();
            let (p50, p99) = percentiles(&mut latencies);
            let name = match phase {
                Phase::Steady => "steady state",
                Phase::Cached => "swapping every 250 ms (cached code)",
                Phase::Cold => "swapping every 250 ms (cold compiles)",
            };
            println!(
                "under load, {name:<38} p50 {:>7.2} ms  p99 {:>7.2} ms  {} requests, {failed} failed",
                ms(p50),
                ms(p99),
                latencies.len()
            );
            results.push(p99);
        }
        println!(
            "p99 during swaps / steady: cached {:.2}x, cold {:.2}x",
            results[1].as_secs_f64() / results[0].as_secs_f64(),
            results[2].as_secs_f64() / results[0].as_secs_f64()
        );
        server.shutdown().await?;
        Ok::<_, anyhow::Error>(())
    })
}

#[derive(Clone, Copy)]
enum Phase {
    Steady,
    Cached,
    Cold,
}

/// Renames `bytes` into place and polls until version `1.0.n` answers.
async fn land_and_wait(
    client: &reqwest::Client,
    url: &str,
    dir: &Path,
    bytes: &[u8],
    n: usize,
) -> anyhow::Result<Duration> {
    let want = format!("bulky@1.0.{n}");
    std::fs::write(dir.join(".bulky.wasm.part"), bytes)?;
    let landed = Instant::now();
    std::fs::rename(dir.join(".bulky.wasm.part"), dir.join("bulky.wasm"))?;
    loop {
        let response = client.get(url).send().await?;
        if response
            .headers()
            .get("x-callboard-plugin")
            .is_some_and(|v| v.as_bytes() == want.as_bytes())
        {
            return Ok(landed.elapsed());
        }
        if landed.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("{want} never answered");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
