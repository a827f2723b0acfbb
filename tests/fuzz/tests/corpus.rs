//! Replays every seed (and any saved regression input) through its target
//! without instrumentation: `cargo test -p callboard-fuzz`. Crash inputs
//! that led to a fix go in `corpus/<target>/` so they are replayed here.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("the target's seed corpus") {
        let path = entry.expect("corpus entry").path();
        run(&std::fs::read(&path).expect("seed"));
        count += 1;
    }
    assert!(count > 0, "{} has no seeds", dir.display());
}

#[test]
fn entity_yaml() {
    replay("entity_yaml", callboard_fuzz::entity_yaml::run);
}

#[test]
fn catalog_query() {
    replay("catalog_query", callboard_fuzz::catalog_query::run);
}

#[cfg(feature = "host")]
#[test]
fn plugin_file() {
    replay("plugin_file", callboard_fuzz::plugin_file::run);
}

#[cfg(feature = "host")]
#[test]
fn plugin_manifest() {
    replay("plugin_manifest", callboard_fuzz::plugin_manifest::run);
}

#[cfg(feature = "host")]
#[test]
fn license() {
    replay("license", callboard_fuzz::license::run);
}

#[cfg(feature = "host")]
#[test]
fn view_render() {
    replay("view_render", callboard_fuzz::view_render::run);
}
