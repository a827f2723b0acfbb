//! Watches the plugins folder: a `*.wasm` file that appears or changes is
//! loaded (an update if it replaces a live plugin), one that disappears is
//! unloaded. Events are debounced; loading happens on the watcher's thread,
//! off the request path.
//!
//! The contract for writers is write-then-rename: write `name.wasm.part` (or
//! any name not ending in `.wasm`, or a hidden `.name.wasm`), then rename it
//! to `name.wasm`. A file copied in place is also safe: a half-written file
//! fails verification (logged), and the write's last event loads it whole.

use std::{path::Path, time::Duration};

use notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use super::{PluginHost, registry::is_plugin_file};

/// Keeps the watch alive; dropping it stops watching.
pub struct FolderWatch {
    _debouncer: Debouncer<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FolderWatch")
    }
}

impl PluginHost {
    /// Starts watching `dir` (which must exist).
    pub fn watch(&self, dir: &Path, debounce: Duration) -> notify::Result<FolderWatch> {
        let host = self.clone();
        let mut debouncer =
            new_debouncer(debounce, move |result: DebounceEventResult| match result {
                Ok(events) => {
                    for event in events {
                        let path = &event.path;
                        if path.extension().is_none_or(|e| e != "wasm") {
                            continue;
                        }
                        if is_plugin_file(path) {
                            // Refusals are logged and recorded by install_file.
                            let _ = host.install_file(path);
                        } else if !path.exists() {
                            host.unload_file(path);
                        }
                    }
                }
                Err(e) => tracing::error!("watching the plugins directory failed: {e}"),
            })?;
        debouncer
            .watcher()
            .watch(dir, RecursiveMode::NonRecursive)?;
        tracing::info!(dir = %dir.display(), "watching the plugins directory");
        Ok(FolderWatch {
            _debouncer: debouncer,
        })
    }
}
