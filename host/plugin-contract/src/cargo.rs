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

/// The target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Adds [`WASM_TARGET`] with rustup when it is missing, saying so on
/// stderr. Without rustup it does nothing: cargo then says the target is
/// missing, if it is. `Err` says why rustup failed.
pub fn ensure_wasm_target() -> Result<(), String> {
    let Ok(installed) = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    eprintln!("adding the {WASM_TARGET} target (rustup target add {WASM_TARGET})");
    let status = std::process::Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`rustup target add {WASM_TARGET}` failed"))
    }
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
