//! Through HTTP: the hello plugin's `/ping` against a native axum route that
//! returns the same bytes, served by one server, loaded by the same client,
//! interleaved in one run. The native route is served twice: bare (no
//! middleware at all) and under the portal's middleware, as every portal
//! route is (request id and span, host check, identity, usage events).
//! `cargo xtask bench http [-- SECONDS CONNECTIONS]`.

#[path = "support.rs"]
mod support;

use std::time::Duration;

use axum::routing::get;
use callboard::{config::Config, server::AppState};
use support::{load, machine, percentiles, plugins_dir, us};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let data = tempfile::tempdir()?;
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(plugins_dir().join("hello.wasm"), plugins.join("hello.wasm"))?;
    let mut config = Config {
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    // The load names nobody: plugin routes answer anonymous callers.
    config.auth.anonymous = callboard::identity::config::Anonymous::Read;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _entered = runtime.enter();
    let (stores, catalog) = runtime.block_on(AppState::open_storage(&config))?;
    let state = AppState::build(config, stores, catalog)?;
    let pong = || async { ([("content-type", "text/plain; charset=utf-8")], "pong") };
    let app =
        callboard::server::app_with(&state, axum::Router::new().route("/native/ping", get(pong)))
            .route("/bare/ping", get(pong));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            use axum::serve::ListenerExt as _;
            axum::serve(listener.tap_io(callboard::server::no_delay), app).await
        });
        println!(
            "http benchmark on {}: {connections} connections, {seconds} s per round, 2 rounds each, interleaved",
            machine()
        );
        let bare = format!("http://{addr}/bare/ping");
        let native = format!("http://{addr}/native/ping");
        let plugin = format!("http://{addr}/api/plugins/hello/ping");
        let mut results = vec![Vec::new(), Vec::new(), Vec::new()];
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .build()?;
        for _round in 0..2 {
            for (i, url) in [&bare, &native, &plugin].into_iter().enumerate() {
                let duration = Duration::from_secs_f64(seconds);
                results[i].push(load(&client, url, connections, duration).await?);
            }
        }
        let mut summary = Vec::new();
        let names = ["native, bare", "native route", "plugin route"];
        for (name, rounds) in names.iter().zip(results) {
            let requests: usize = rounds.iter().map(|r| r.0).sum();
            let elapsed: f64 = rounds.iter().map(|r| r.1).sum();
            let mut samples: Vec<Duration> = rounds.into_iter().flat_map(|r| r.2).collect();
            let (p50, p99) = percentiles(&mut samples);
            let rps = requests as f64 / elapsed;
            println!("{name:<14} {rps:>9.0} req/s  p50 {:>9}  p99 {:>9}", us(p50), us(p99));
            summary.push(rps);
        }
        println!(
            "plugin/native throughput: {:.0}% (against the bare route: {:.0}%)",
            100.0 * summary[2] / summary[1],
            100.0 * summary[2] / summary[0]
        );
        Ok::<_, anyhow::Error>(())
    })
}
