//! `callboard db backup` and `callboard db restore` (the real binary,
//! `CALLBOARD_BIN`) on the SQLite files: a backup taken while the catalog
//! is being rewritten restores to one consistent catalog; a restore is
//! refused while a server uses the data directory, keeps the files it
//! replaces, and refuses archives that are not whole backups.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use callboard_catalog::{LocationConfig, LocationKind};
use serde_json::Value;

use crate::support::{TestServer, cli, wait_for_entities};

/// Components in the catalog file; every refresh rewrites all of them.
const N: usize = 40;

fn write_round(file: &Path, round: u64) {
    let mut yaml = String::new();
    for i in 0..N {
        yaml.push_str(&format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: c-{i}\n  annotations: {{test/round: \"{round}\"}}\nspec: {{type: service, lifecycle: production, owner: team-a}}\n"
        ));
    }
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, yaml).unwrap();
    std::fs::rename(tmp, file).unwrap();
}

async fn start(data: &Path, catalog_file: &Path) -> TestServer {
    let mut config = crate::support::config(data);
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog_file.display().to_string(),
    }];
    TestServer::start(config).await
}

/// Each component's round annotation.
async fn rounds(server: &TestServer) -> Vec<String> {
    let (status, list) = server
        .get_json("/api/catalog/entities?filter=kind=component")
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["metadata"]["annotations"]["test/round"]
                .as_str()
                .unwrap_or("none")
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_to_a_consistent_catalog() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("catalog.yaml");
    write_round(&file, 0);
    let data = work.path().join("data");
    let server = start(&data, &file).await;
    wait_for_entities(&server, N as u64).await;

    // Rewrite every component, one refresh after another, until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let round = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn({
        let (stop, round, file) = (stop.clone(), round.clone(), file.clone());
        let catalog = server.running.state.catalog.clone();
        async move {
            while !stop.load(Ordering::Acquire) {
                let next = round.load(Ordering::Acquire) + 1;
                write_round(&file, next);
                catalog.refresh_all().await.unwrap();
                round.store(next, Ordering::Release);
            }
        }
    });
    // The backup starts once rewriting has begun and ends while it goes on.
    crate::support::eventually(60, "the first rewrite", || async {
        (round.load(Ordering::Acquire) >= 2).then_some(())
    })
    .await;
    let archive = work.path().join("backup.tar");
    let (ok, out) = {
        let (data, archive) = (data.clone(), archive.clone());
        tokio::task::spawn_blocking(move || {
            cli(
                &data,
                &["db", "backup", archive.to_str().unwrap(), "--json"],
            )
        })
        .await
        .unwrap()
    };
    let during = round.load(Ordering::Acquire);
    assert!(ok, "{out}");
    let manifest: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["catalog.sqlite", "coord.sqlite", "kv.sqlite"]);

    // Refused while this server uses the data directory; nothing changed.
    let (ok, out) = cli(&data, &["db", "restore", archive.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("a Callboard server is using"), "{out}");
    // A second backup to the same file is refused, not overwritten.
    let (ok, out) = cli(&data, &["db", "backup", archive.to_str().unwrap()]);
    assert!(!ok && out.contains("exists already"), "{out}");

    stop.store(true, Ordering::Release);
    load.await.unwrap();
    let last = round.load(Ordering::Acquire);
    assert!(
        last > during,
        "the catalog was still being rewritten after the backup"
    );
    server.stop().await;

    // Restore into a data directory that has data of its own: it is kept.
    let (ok, out) = cli(
        &data,
        &["db", "restore", archive.to_str().unwrap(), "--json"],
    );
    assert!(ok, "{out}");
    let restored: Value = serde_json::from_str(&out).unwrap();
    let previous = restored["previous"].as_str().expect("files moved aside");
    assert!(Path::new(previous).join("catalog.sqlite").exists(), "{out}");

    // One consistent catalog: every component from the same refresh. The
    // location's file is gone, so no refresh replaces what was restored.
    std::fs::remove_file(&file).unwrap();
    let server = start(&data, &file).await;
    let seen = rounds(&server).await;
    assert_eq!(seen.len(), N, "{seen:?}");
    assert!(
        seen.iter().all(|r| *r == seen[0]),
        "a torn catalog: {seen:?}"
    );
    let at: u64 = seen[0].parse().unwrap();
    assert!(at >= 1 && at <= last, "round {at} (last {last})");
    server.stop().await;
}

/// What a hostile rewrite does to an entry: `(name, bytes)` to write, or
/// `None` to leave it out.
type Change = dyn Fn(&str, Vec<u8>) -> Option<(String, Vec<u8>)>;

#[tokio::test]
async fn restore_refuses_archives_that_are_not_whole_backups() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("catalog.yaml");
    write_round(&file, 7);
    let data = work.path().join("data");
    let server = start(&data, &file).await;
    wait_for_entities(&server, N as u64).await;
    server.stop().await;
    let archive = work.path().join("good.tar");
    let (ok, out) = cli(&data, &["db", "backup", archive.to_str().unwrap()]);
    assert!(ok, "{out}");
    let target = work.path().join("target");

    // Rewrites the good archive, changing one entry's name or bytes.
    let rewrite = |name: &str, change: &Change| {
        let mut out = tar::Builder::new(Vec::new());
        let mut input = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        for entry in input.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            if let Some((path, bytes)) = change(&path, bytes) {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o600);
                // `append_data` refuses `..`; write the raw name as an attacker would.
                header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                out.append(&header, bytes.as_slice()).unwrap();
            }
        }
        let path = work.path().join(name);
        std::fs::write(&path, out.into_inner().unwrap()).unwrap();
        path
    };
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (
            rewrite("escape.tar", &|p, b| {
                Some((
                    if p == "kv.sqlite" {
                        "../kv.sqlite".into()
                    } else {
                        p.into()
                    },
                    b,
                ))
            }),
            "unexpected entry \"../kv.sqlite\"",
        ),
        (
            rewrite("tampered.tar", &|p, mut b| {
                if p == "catalog.sqlite" {
                    let at = b.len() / 2;
                    b[at] ^= 0xff;
                }
                Some((p.into(), b))
            }),
            "catalog.sqlite does not match its digest",
        ),
        (
            rewrite("partial.tar", &|p, b| {
                (p != "coord.sqlite").then(|| (p.into(), b))
            }),
            "coord.sqlite is missing",
        ),
        (
            rewrite("no-manifest.tar", &|p, b| {
                (p != "manifest.json").then(|| (p.into(), b))
            }),
            "no manifest.json",
        ),
        (
            {
                let path = work.path().join("text.tar");
                std::fs::write(&path, "not an archive at all").unwrap();
                path
            },
            "text.tar",
        ),
    ];
    for (bad, expected) in cases {
        let (ok, out) = cli(&target, &["db", "restore", bad.to_str().unwrap()]);
        assert!(!ok, "{}: {out}", bad.display());
        assert!(out.contains(expected), "{}: {out}", bad.display());
        assert!(!target.join("catalog.sqlite").exists(), "{out}");
        assert!(!work.path().join("kv.sqlite").exists(), "{out}");
    }

    // The good one restores into an empty directory, nothing moved aside.
    let (ok, out) = cli(
        &target,
        &["db", "restore", archive.to_str().unwrap(), "--json"],
    );
    assert!(ok, "{out}");
    let restored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(restored["previous"], Value::Null, "{out}");
    std::fs::remove_file(&file).unwrap();
    let server = start(&target, &file).await;
    assert_eq!(rounds(&server).await, vec!["7".to_owned(); N]);
    server.stop().await;
}
