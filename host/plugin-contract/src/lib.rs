//! The plugin contract, free of any WebAssembly runtime: the domain model
//! the host works in, whatever plugin API version a plugin was built
//! against. Each version's bindings (`host/src/plugins/api/v*.rs`) convert
//! their generated WIT types into these and back; views, events, the
//! portal and the REST API only ever see these.
//!
//! **Invariant:** nothing here depends on wasmtime, axum or a database.

pub mod cargo;
pub mod grant;
pub mod license;
pub mod manifest;
pub mod permission;
pub mod principal;
mod sections;
pub mod signing;
pub mod trust;
pub mod ui;

pub use principal::Principal;

/// Write then rename (through a hidden `.name.part`), so a reader (the
/// folder watcher) never sees half a file. Creates missing folders. The new
/// file is synced before the rename and the folder after it: without both, a
/// power loss can leave neither the old version nor the new one.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.part"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir.unwrap_or(std::path::Path::new(".")))?.sync_all()?;
    Ok(())
}
