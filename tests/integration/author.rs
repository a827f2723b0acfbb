//! The author's loop with the real binary and the real toolchain:
//! `callboard plugin new` writes a project whose own tests pass natively;
//! `callboard plugin dev` serves a local portal, builds it for
//! wasm32-wasip2 and installs it; a saved edit answers soon after; a
//! compile error is printed and the running version keeps answering; the
//! plugin's log lines reach the terminal.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
};

use crate::support::eventually;

fn bin() -> PathBuf {
    std::env::var_os("CALLBOARD_BIN")
        .map(PathBuf::from)
        .expect("CALLBOARD_BIN is not set: run the tests with `cargo xtask test`")
}

/// A target folder of its own beside the workspace's (which the running
/// `cargo test` holds locked), kept between runs so only the first run
/// compiles the SDK's dependencies.
fn target_dir() -> PathBuf {
    crate::support::plugins_dir()
        .parent()
        .expect("the plugins folder is inside the target folder")
        .join("plugin-author")
}

fn cargo_in(project: &Path) -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target_dir());
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cargo.env_remove(var);
    }
    cargo
}

/// `callboard plugin dev` in `project`, its output lines collected; killed
/// when dropped.
struct Dev {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn start(project: &Path) -> Self {
        let mut command = Command::new(bin());
        command
            .current_dir(project)
            .args(["plugin", "dev", "--bind", "127.0.0.1:0"])
            .env("CARGO_TARGET_DIR", target_dir())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
        ] {
            command.env_remove(var);
        }
        let mut child = command.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self { child, lines }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn count(&self, marker: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(marker))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_builds_tests_and_reloads_on_every_save() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("author-test");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins-sdk");
    let new = Command::new(bin())
        .args(["plugin", "new", "author-test", "--dir"])
        .arg(&project)
        .arg("--sdk")
        .arg(&sdk)
        .output()
        .unwrap();
    assert!(new.status.success(), "{new:?}");
    // Refused: a name that is no plugin id, a folder that is taken.
    let bad = Command::new(bin())
        .args(["plugin", "new", "Bad_Name"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a plugin name"));
    let taken = Command::new(bin())
        .args(["plugin", "new", "x", "--dir"])
        .arg(&project)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&taken.stderr).contains("not empty"));

    // Its own tests run natively, no portal needed.
    let tested = tokio::task::spawn_blocking({
        let project = project.clone();
        move || {
            cargo_in(&project)
                .args(["test", "--quiet"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success() && text.contains("2 passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );

    let dev = Dev::start(&project);
    let url = eventually(120, "the local portal's address", || async {
        let output = dev.output();
        output
            .lines()
            .find_map(|l| l.split("local portal on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    })
    .await;
    // The first build compiles the SDK's dependencies for wasm32-wasip2.
    eventually(600, "the first build to answer", || async {
        (dev.count("answering") >= 1).then_some(())
    })
    .await;
    let client = reqwest::Client::new();
    let hello = format!("{url}/api/plugins/author-test/hello/ada");
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(get(hello.clone()).await, "Hello, ada! (asked by anonymous)");

    // The plugin's own log lines reach the terminal.
    let visits = client
        .post(format!("{url}/api/plugins/author-test/visits"))
        .send()
        .await
        .unwrap();
    assert_eq!(visits.text().await.unwrap(), r#"{"visits":1}"#);
    eventually(10, "the plugin's log line", || async {
        dev.output().contains("visit number 1").then_some(())
    })
    .await;

    // A saved edit answers.
    let source = project.join("src/lib.rs");
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        original.replace("Hello, {name}!", "Howdy, {name}!"),
    )
    .unwrap();
    eventually(120, "the edit to answer", || async {
        get(hello.clone()).await.starts_with("Howdy").then_some(())
    })
    .await;
    // A compile error is shown; the running version keeps answering.
    let failures = dev.count("build failed");
    std::fs::write(
        &source,
        original.replace("Hello, {name}!", "Oops, {name}!\""),
    )
    .unwrap();
    eventually(120, "the build error", || async {
        (dev.count("build failed") > failures).then_some(())
    })
    .await;
    assert!(dev.output().contains("error"), "{}", dev.output());
    assert!(dev.output().contains("the running version keeps serving"));
    assert!(get(hello.clone()).await.starts_with("Howdy"));
    // Fixed: answering again.
    std::fs::write(&source, original.replace("Hello, {name}!", "Hi, {name}!")).unwrap();
    eventually(120, "the fix to answer", || async {
        get(hello.clone()).await.starts_with("Hi").then_some(())
    })
    .await;
}
