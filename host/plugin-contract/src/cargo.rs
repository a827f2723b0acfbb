//! Reading what `cargo build --message-format=json...` built: where the
//! plugin's component is. Shared by `callboard plugin dev` and the plugin
//! harness, which both build an author's crate for wasm32-wasip2.

use std::path::{Path, PathBuf};

/// The `.wasm` file of the `cdylib` cargo reported building in `stdout`
/// (its JSON messages, one per line); only that of the package whose
/// `Cargo.toml` is `manifest`, when given (a workspace builds several).
pub fn built_component(stdout: &[u8], manifest: Option<&Path>) -> Option<PathBuf> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let wanted = manifest.map(canonical);
    let mut component = None;
    for line in stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let ours = wanted.as_ref().is_none_or(|wanted| {
            message["manifest_path"]
                .as_str()
                .is_some_and(|p| canonical(Path::new(p)) == *wanted)
        });
        if ours
            && message["reason"] == "compiler-artifact"
            && message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        {
            component = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cdylib_of_the_wanted_package() {
        let out = br#"{"reason":"compiler-artifact","manifest_path":"/nowhere/dep/Cargo.toml","target":{"kind":["lib"]},"filenames":["/t/libdep.rlib"]}
not json
{"reason":"compiler-artifact","manifest_path":"/nowhere/p/Cargo.toml","target":{"kind":["cdylib"]},"filenames":["/t/p.wasm"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(built_component(out, None), Some(PathBuf::from("/t/p.wasm")));
        assert_eq!(
            built_component(out, Some(Path::new("/nowhere/p/Cargo.toml"))),
            Some(PathBuf::from("/t/p.wasm"))
        );
        assert_eq!(
            built_component(out, Some(Path::new("/nowhere/q/Cargo.toml"))),
            None
        );
        assert_eq!(built_component(b"", None), None);
    }
}
