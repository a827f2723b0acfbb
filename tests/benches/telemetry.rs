//! What operations cost: a catalog lookup and a plugin call against three
//! `callboard serve` processes (the real binary) that differ only in
//! telemetry: `off` (no metrics, no traces), `metrics` (the Prometheus
//! recorder), `traces` (metrics plus every request traced, sampled at 100%,
//! exported over OTLP/HTTP to a sink on 127.0.0.1 that reads and drops the
//! batches). Rounds are interleaved so the machine's noise falls on all
//! three alike. `cargo xtask bench telemetry [-- SECONDS CONNECTIONS ROUNDS]`.

#[path = "support.rs"]
mod support;

use std::{
    io::BufRead as _,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use support::{load, machine, percentiles, plugins_dir, us};

/// One server process; killed when dropped.
struct Server {
    child: std::process::Child,
    base: String,
    token: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(telemetry: &str) -> anyhow::Result<Server> {
    let bin = std::env::var_os("CALLBOARD_BIN").ok_or_else(|| {
        anyhow::anyhow!("CALLBOARD_BIN is not set: run `cargo xtask bench telemetry`")
    })?;
    let data = tempfile::tempdir()?;
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(plugins_dir().join("hello.wasm"), plugins.join("hello.wasm"))?;
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/catalog/**/*.yaml");
    let config = data.path().join("callboard.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:0\"\n\
             [catalog]\nlocations = [{{ type = \"file\", target = {:?} }}]\n{telemetry}",
            catalog.display().to_string()
        ),
    )?;
    let mut child = std::process::Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .arg("serve")
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    // Its address, once it listens and has loaded the catalog.
    std::thread::spawn(move || {
        let mut addr = None;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(at) = line.split("listening on http://").nth(1) {
                addr = Some(at.trim().to_owned());
            }
            if line.contains("catalog: first load finished")
                && let Some(addr) = addr.take()
            {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| anyhow::anyhow!("a server did not start and load its catalog"))?;
    let base = format!("http://{addr}");
    let token = std::fs::read_to_string(data.path().join("admin-token"))?;
    Ok(Server {
        child,
        base,
        token: token.trim().to_owned(),
        _data: data,
    })
}

/// A collector that reads each OTLP batch and drops it; counts the bytes.
async fn sink() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let bytes = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post({
            let bytes = bytes.clone();
            move |body: axum::body::Bytes| {
                bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                async {
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, bytes))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4.0);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (collector, exported) = sink().await?;
        let setups = [
            ("off", "[telemetry.metrics]\nenabled = false\n".to_owned()),
            ("metrics", String::new()),
            (
                "traces",
                format!(
                    "[telemetry.traces]\notlp_endpoint = \"{collector}\"\nsample_ratio = 1.0\n"
                ),
            ),
        ];
        let mut servers = Vec::new();
        for (_, telemetry) in &setups {
            servers.push(start(telemetry)?);
        }
        let workloads = [
            (
                "catalog lookup",
                "/api/catalog/entities/by-name/component/default/booking-service",
            ),
            ("plugin call", "/api/plugins/hello/ping"),
        ];
        println!(
            "telemetry benchmark on {}: {connections} connections, {seconds} s per round, \
             {rounds} rounds, interleaved",
            machine()
        );
        // samples[workload][setup]; ratios[workload][setup]: each round's
        // p50 over the `off` server's p50 in the same round.
        let mut samples = vec![vec![Vec::new(); setups.len()]; workloads.len()];
        let mut ratios = vec![vec![Vec::new(); setups.len()]; workloads.len()];
        for _ in 0..rounds {
            for (w, (_, path)) in workloads.iter().enumerate() {
                let mut round = Vec::new();
                for (s, server) in servers.iter().enumerate() {
                    let mut headers = reqwest::header::HeaderMap::new();
                    headers.insert(
                        reqwest::header::AUTHORIZATION,
                        format!("Bearer {}", server.token).parse()?,
                    );
                    let client = reqwest::Client::builder()
                        .default_headers(headers)
                        .pool_max_idle_per_host(connections)
                        .build()?;
                    let url = format!("{}{path}", server.base);
                    let (_, _, mut taken) =
                        load(&client, &url, connections, Duration::from_secs_f64(seconds)).await?;
                    round.push(percentiles(&mut taken).0.as_secs_f64());
                    samples[w][s].append(&mut taken);
                }
                for (s, p50) in round.iter().enumerate() {
                    ratios[w][s].push(p50 / round[0]);
                }
            }
        }
        for (w, (workload, _)) in workloads.iter().enumerate() {
            let mut p50s = Vec::new();
            for (s, (setup, _)) in setups.iter().enumerate() {
                let n = samples[w][s].len();
                let (p50, p99) = percentiles(&mut samples[w][s]);
                println!(
                    "{workload:<15} {setup:<8} {n:>8} requests  p50 {:>9}  p99 {:>9}",
                    us(p50),
                    us(p99)
                );
                p50s.push(p50.as_secs_f64());
            }
            let median = |r: &mut Vec<f64>| {
                r.sort_by(f64::total_cmp);
                100.0 * (r[r.len() / 2] - 1.0)
            };
            println!(
                "{workload:<15} p50 vs off, all rounds pooled: metrics {:+.1}%, traces {:+.1}%; \
                 median of the rounds' ratios: metrics {:+.1}%, traces {:+.1}%",
                100.0 * (p50s[1] / p50s[0] - 1.0),
                100.0 * (p50s[2] / p50s[0] - 1.0),
                median(&mut ratios[w][1]),
                median(&mut ratios[w][2]),
            );
        }
        println!(
            "exported: {:.1} MB of OTLP spans",
            exported.load(Ordering::Relaxed) as f64 / 1e6
        );
        Ok(())
    })
}
