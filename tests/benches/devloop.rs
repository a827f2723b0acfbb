//! The author's loop: `callboard plugin new`, then `callboard plugin dev`
//! on it, then edits to `src/lib.rs`, each timed from the save to the new
//! version answering its route (what an author waits for), over several
//! edits, with the tool's own split (build, install). The first build of a
//! new project (compiling the SDK's dependencies) is reported apart.
//! `cargo xtask bench devloop [-- EDITS]`.

#[path = "support.rs"]
#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one uses only part"
)]
mod support;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use support::{machine, percentiles};

fn main() -> anyhow::Result<()> {
    let edits: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(6);
    let bin = std::env::var("CALLBOARD_BIN")
        .expect("CALLBOARD_BIN is not set: run benchmarks with `cargo xtask bench ...`");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins-sdk");
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("bench-plugin");
    let status = Command::new(&bin)
        .args(["plugin", "new", "bench-plugin", "--dir"])
        .arg(&project)
        .arg("--sdk")
        .arg(&sdk)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "callboard plugin new failed");

    let mut dev = Command::new(&bin)
        .current_dir(&project)
        .args(["plugin", "dev", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = dev.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = run(&project, &lines, edits);
    let _ = dev.kill();
    let _ = dev.wait();
    result
}

/// The next line containing `marker`, within `within`.
fn line_with(
    lines: &mpsc::Receiver<String>,
    marker: &str,
    within: Duration,
) -> anyhow::Result<String> {
    let until = Instant::now() + within;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .map_err(|_| anyhow::anyhow!("no line with {marker:?} within {within:?}"))?;
        if line.contains(marker) {
            return Ok(line);
        }
    }
}

fn run(project: &Path, lines: &mpsc::Receiver<String>, edits: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let portal = line_with(lines, "local portal on ", Duration::from_secs(60))?;
    let url = portal
        .split("local portal on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no URL in {portal:?}"))?
        .to_owned();
    let first = line_with(lines, "answering", Duration::from_secs(900))?;
    let first_build = started.elapsed();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    let route = format!("{url}/api/plugins/bench-plugin/hello/bench");
    let source = project.join("src/lib.rs");
    let original = std::fs::read_to_string(&source)?;
    println!(
        "dev loop on {}: a new project's first build and install {:.1} s ({first})",
        machine(),
        first_build.as_secs_f64()
    );
    let mut saved_to_answering = Vec::with_capacity(edits);
    for i in 0..edits {
        let greeting = format!("Edit {i}");
        let text = original.replace("Hello, {name}!", &format!("{greeting}, {{name}}!"));
        let saved = Instant::now();
        std::fs::write(&source, text)?;
        // Polled from outside, as an author's browser would.
        loop {
            let body = runtime
                .block_on(async { client.get(&route).send().await?.text().await })
                .unwrap_or_default();
            if body.starts_with(&greeting) {
                break;
            }
            anyhow::ensure!(
                saved.elapsed() < Duration::from_secs(120),
                "edit {i} not answering after 120 s (last answer {body:?})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = saved.elapsed();
        let reported = line_with(lines, "answering", Duration::from_secs(10)).unwrap_or_default();
        println!(
            "  edit {i}: answering {:.2} s after the save   [{reported}]",
            took.as_secs_f64()
        );
        saved_to_answering.push(took);
    }
    let (p50, _) = percentiles(&mut saved_to_answering);
    let max = saved_to_answering.iter().max().copied().unwrap_or_default();
    println!(
        "saved file to new version answering: p50 {:.2} s, max {:.2} s over {edits} edits (goal <= 10 s)",
        p50.as_secs_f64(),
        max.as_secs_f64()
    );
    Ok(())
}
