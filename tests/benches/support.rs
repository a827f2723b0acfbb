//! Shared by the benchmark binaries: percentiles and the plugin folder.

use std::{path::PathBuf, time::Duration};

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
