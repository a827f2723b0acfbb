//! Shared by the benchmark binaries: percentiles, the plugin folder and a
//! closed-loop load.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

/// Folder of packed plugin files (`cargo xtask bench` sets it).
pub fn plugins_dir() -> PathBuf {
    std::env::var_os("CALLBOARD_TEST_PLUGINS")
        .map(PathBuf::from)
        .expect("CALLBOARD_TEST_PLUGINS is not set: run benchmarks with `cargo xtask bench ...`")
}

/// Sorts `samples` and returns (p50, p99).
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Microseconds with one decimal.
pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// The machine, for the record.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores, {model}")
}

/// `connections` clients of `client` request `url` back to back for
/// `duration`, each waiting for 200 and the whole body: how many answered,
/// the seconds it took, and each request's time.
pub async fn load(
    client: &reqwest::Client,
    url: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(usize, f64, Vec<Duration>)> {
    let url: Arc<str> = url.into();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while started.elapsed() < duration {
                let t = Instant::now();
                let response = client.get(&*url).send().await?;
                assert_eq!(response.status(), 200, "{url}");
                response.bytes().await?;
                samples.push(t.elapsed());
            }
            Ok::<_, reqwest::Error>(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok((samples.len(), started.elapsed().as_secs_f64(), samples))
}
