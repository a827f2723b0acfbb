//! Plugins across replicas. With PostgreSQL, the database's plugin files
//! ([`callboard_store::PluginFiles`]) are the source of truth: an install,
//! licence or removal through any replica's admin API, pages or CLI is
//! applied here first (verified, compiled, swapped: a refused file is
//! never stored) and then stored with a `plugins` feed event; every
//! replica follows the feed and applies what changed: it verifies and
//! compiles the file itself (its own compiled-code cache) and swaps. The
//! plugins folder stays the single-node way; with replicas, what a
//! replica's folder holds at start-up and the database lacks is imported.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use callboard_store::plugins::PLUGINS_TOPIC;
use callboard_store::{Feed, PluginFiles};
use sha2::{Digest as _, Sha256};

use super::LoadError;
use super::registry::{InstallOptions, PluginHost};

/// A full comparison with the database this often, whatever the feed says.
const RESYNC: Duration = Duration::from_secs(30);

fn stored(e: impl std::fmt::Display) -> LoadError {
    LoadError::Write(format!("storing in the shared database: {e}"))
}

/// Waits on the runtime from the blocking thread an install runs on.
fn wait<T>(f: impl std::future::Future<Output = T>) -> Result<T, LoadError> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| LoadError::Write(format!("no runtime to reach the database: {e}")))?;
    Ok(handle.block_on(f))
}

impl PluginHost {
    /// Makes the database's plugin files the source of truth (several
    /// replicas). Call once, before [`PluginHost::follow_shared`].
    pub fn attach_shared(&self, files: Arc<dyn PluginFiles>) {
        let _ = self.inner.shared.set(files);
    }

    /// Whether this replica serves the plugins it should: the plugins
    /// folder is loaded before the server starts, and with several
    /// replicas the database's plugin files were applied once since.
    pub fn plugins_synced(&self) -> bool {
        self.shared().is_none() || self.inner.synced.load(std::sync::atomic::Ordering::Acquire)
    }

    fn shared(&self) -> Option<&Arc<dyn PluginFiles>> {
        self.inner.shared.get()
    }

    fn applied(&self, id: &str, revision: Option<i64>) {
        let mut applied = self.inner.applied.lock().unwrap_or_else(|e| e.into_inner());
        match revision {
            Some(r) => {
                applied.insert(id.to_owned(), r);
            }
            None => {
                applied.remove(id);
            }
        }
    }

    pub(super) fn share_install(
        &self,
        id: &str,
        bytes: &[u8],
        license: Option<&str>,
    ) -> Result<(), LoadError> {
        let Some(files) = self.shared() else {
            return Ok(());
        };
        let digest = hex::encode(Sha256::digest(bytes));
        let revision = wait(files.put(id, &digest, bytes, license))?.map_err(stored)?;
        self.applied(id, Some(revision));
        Ok(())
    }

    pub(super) fn share_license(&self, id: &str, text: &str) -> Result<(), LoadError> {
        let Some(files) = self.shared() else {
            return Ok(());
        };
        if let Some(revision) = wait(files.put_license(id, text))?.map_err(stored)? {
            self.applied(id, Some(revision));
        }
        Ok(())
    }

    pub(super) fn share_removal(&self, id: &str) -> Result<(), LoadError> {
        let Some(files) = self.shared() else {
            return Ok(());
        };
        wait(files.remove(id))?.map_err(stored)?;
        self.applied(id, None);
        Ok(())
    }

    /// Follows the database's plugin files until the host is dropped:
    /// imports what this replica's folder loaded and the database lacks,
    /// then applies every change another replica stores, woken by the
    /// feed, with a full comparison every [`RESYNC`] as the fallback.
    pub async fn follow_shared(self, feed: Arc<dyn Feed>) {
        let Some(files) = self.shared().cloned() else {
            return;
        };
        let mut seq = feed.head().await.unwrap_or(0);
        tracing::info!("plugins: following the database's plugin files (several replicas)");
        if let Err(e) = self.import_folder(&files).await {
            tracing::warn!("plugins: importing the plugins folder into the database: {e}");
        }
        loop {
            match self.sync_once(&files).await {
                Ok(_) => self
                    .inner
                    .synced
                    .store(true, std::sync::atomic::Ordering::Release),
                Err(e) => tracing::warn!("plugins: following the database: {e}"),
            }
            // Sleep until a plugins event (or the fallback period).
            crate::feed::wait_for(&*feed, &mut seq, PLUGINS_TOPIC, RESYNC).await;
        }
    }

    /// Stores the plugins this replica loaded from its folder that the
    /// database does not have yet, except files removed through a replica
    /// while this one was away: those are stale, and go from this replica
    /// (and its folder) instead of coming back.
    async fn import_folder(&self, files: &Arc<dyn PluginFiles>) -> anyhow::Result<()> {
        let stored: HashSet<String> = files.list().await?.into_iter().map(|e| e.id).collect();
        let removed: HashSet<(String, String)> = files.removed().await?.into_iter().collect();
        for info in self.list() {
            if stored.contains(&info.id) {
                continue;
            }
            let Some(source) = self.source_of(&info.id) else {
                continue;
            };
            let bytes = tokio::fs::read(&source).await?;
            let digest = hex::encode(Sha256::digest(&bytes));
            if removed.contains(&(info.id.clone(), digest.clone())) {
                let host = self.clone();
                let id = info.id.clone();
                tokio::task::spawn_blocking(move || host.remove_local(&id, false)).await??;
                tracing::warn!(plugin = %info.id, file = %source.display(), "plugins: not imported: this file was removed through another replica, so it is removed here too");
                continue;
            }
            let license = tokio::fs::read_to_string(
                self.settings()
                    .licenses_dir
                    .join(format!("{}.license", info.id)),
            )
            .await
            .ok();
            let revision = files
                .put(&info.id, &digest, &bytes, license.as_deref())
                .await?;
            self.applied(&info.id, Some(revision));
            tracing::info!(plugin = %info.id, "plugins: imported from the plugins folder into the database");
        }
        Ok(())
    }

    /// Applies every difference between the database and this replica.
    async fn sync_once(&self, files: &Arc<dyn PluginFiles>) -> anyhow::Result<()> {
        let entries = files.list().await?;
        let wanted: HashSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        for entry in &entries {
            let seen = self
                .inner
                .applied
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&entry.id)
                .copied();
            if seen.is_some_and(|r| r >= entry.revision) {
                continue;
            }
            let Some(plugin) = files.get(&entry.id).await? else {
                continue;
            };
            let host = self.clone();
            let options = InstallOptions {
                // What the database holds was accepted by the replica that
                // stored it (a downgrade included); verification and the
                // signer pins still apply here.
                force: true,
                license: plugin.license.clone(),
            };
            let result =
                tokio::task::spawn_blocking(move || host.install_shared(&plugin.wasm, &options))
                    .await?;
            match result {
                Ok(info) => {
                    tracing::info!(plugin = %info.id, version = %info.version, revision = entry.revision, "plugins: applied from the database");
                }
                // Refused here: the running version keeps serving; the
                // refusal is listed with the plugins. Not retried until the
                // database changes.
                Err(e) => {
                    tracing::error!(plugin = %entry.id, "plugins: refused what the database holds: {e}")
                }
            }
            self.applied(&entry.id, Some(entry.revision));
        }
        let applied: Vec<String> = self
            .inner
            .applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for id in applied {
            if wanted.contains(id.as_str()) {
                continue;
            }
            let host = self.clone();
            let gone = id.clone();
            let result =
                tokio::task::spawn_blocking(move || host.remove_local(&gone, false)).await?;
            if let Err(e) = result {
                tracing::debug!(plugin = %id, "plugins: removing locally: {e}");
            }
            self.applied(&id, None);
            tracing::info!(plugin = %id, "plugins: removed, as the database says");
        }
        Ok(())
    }
}
