//! Building a plugin crate for `wasm32-wasip2` and packing it with its
//! `plugin.toml`, as `callboard plugin dev` and `callboard plugin pack` do.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use callboard::plugins::manifest::{self, Manifest};

use crate::HarnessError;

fn setup(message: String) -> HarnessError {
    HarnessError::Setup(message)
}

/// Reads and checks a `plugin.toml`.
pub(crate) fn read_manifest(path: &Path) -> Result<Manifest, HarnessError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| setup(format!("cannot read {}: {e}", path.display())))?;
    Manifest::from_toml(&text).map_err(|e| setup(format!("{}: {e}", path.display())))
}

/// `component` with `manifest` embedded (the API version is read from the
/// component by the host).
pub(crate) fn pack(component: &[u8], manifest: &Manifest) -> Result<Vec<u8>, HarnessError> {
    manifest::embed(component, manifest)
        .map_err(|e| setup(format!("cannot embed the manifest of {}: {e}", manifest.id)))
}

/// `cargo build --lib --target wasm32-wasip2 --profile <profile>` of the
/// crate in `dir` (in `target_dir` if given); the component's path. The compiler's messages go to
/// stderr as cargo renders them.
pub(crate) fn build(
    dir: &Path,
    profile: &str,
    target_dir: Option<&Path>,
) -> Result<PathBuf, HarnessError> {
    callboard::plugins::cargo::ensure_wasm_target().map_err(setup)?;
    let manifest_path = dir.join("Cargo.toml");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(dir)
        .args(["build", "--lib", "--target", "wasm32-wasip2", "--profile"])
        .arg(profile)
        .arg("--manifest-path")
        .arg(&manifest_path)
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(target_dir) = target_dir {
        cargo.arg("--target-dir").arg(target_dir);
    }
    // The host's flags (e.g. -C target-cpu=native) must not reach wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cargo.env_remove(var);
    }
    let output = cargo
        .output()
        .map_err(|e| setup(format!("cannot run cargo: {e}")))?;
    let component =
        callboard::plugins::cargo::built_component(&output.stdout, Some(&manifest_path));
    if !output.status.success() {
        return Err(setup(format!(
            "cargo build --target wasm32-wasip2 of {} failed (see the compiler's messages above)",
            dir.display()
        )));
    }
    component.ok_or_else(|| {
        setup(format!(
            "cargo built no .wasm component in {}: is the crate-type cdylib?",
            dir.display()
        ))
    })
}
