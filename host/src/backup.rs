//! `callboard db backup` and `callboard db restore` for the embedded SQLite
//! files (PostgreSQL is backed up with its own tools: README.md).
//!
//! A backup is one tar archive: `manifest.json` (format, Callboard's
//! version, each file's size and SHA-256, each store's schema version),
//! then `catalog.sqlite`, `coord.sqlite` and `kv.sqlite`, each copied with
//! SQLite's online backup while the server keeps serving
//! (`callboard_store_sqlite::backup`). It is written beside the target
//! and renamed into place when complete, so a failed backup leaves no
//! file that looks whole.
//!
//! A restore refuses while a server uses the data directory (every
//! `callboard serve` holds a shared lock on `callboard.lock` in it; a
//! restore needs it exclusively), refuses an archive with any other entry,
//! a digest that does not match, a damaged file or a schema newer than
//! this build, and moves the files it replaces aside
//! (`before-restore-<unix time>/`) rather than deleting them.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use callboard_store::SchemaStatus;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::Config;

/// The lock file every server holds (shared) in its data directory.
pub const LOCK_FILE: &str = "callboard.lock";

/// The archive's layout version.
const FORMAT: u32 = 1;

/// A lock on a data directory: shared while a server runs, exclusive
/// while a restore replaces its files. Released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// The lock a server holds; any number of servers may hold it.
    pub fn shared(data_dir: &Path) -> anyhow::Result<Self> {
        let file = lock_file(data_dir)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "{} is being restored (callboard db restore); start the server when it has finished",
                data_dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", data_dir.display()))
            }
        }
    }

    /// The lock a restore needs: refused while a server runs.
    pub fn exclusive(data_dir: &Path) -> anyhow::Result<Self> {
        let file = lock_file(data_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "a Callboard server is using {}: stop it before restoring (its data would be overwritten under it)",
                data_dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", data_dir.display()))
            }
        }
    }
}

fn lock_file(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(LOCK_FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// `manifest.json` in an archive.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The Callboard that wrote it.
    pub callboard: String,
    /// Seconds since the Unix epoch when it was taken.
    pub created_unix: u64,
    /// The files, in archive order.
    pub files: Vec<FileEntry>,
    /// Each store's schema version in the copies.
    pub stores: Vec<SchemaStatus>,
}

/// One database file in an archive.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    /// `catalog.sqlite`, `coord.sqlite` or `kv.sqlite`.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

fn sqlite_files(config: &Config) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    if config.database.is_postgres() {
        bail!(
            "database.url selects PostgreSQL: back it up with pg_dump and restore with pg_restore (README.md, \"Backups\"); callboard db backup and restore handle the embedded SQLite files"
        );
    }
    Ok(callboard_store_sqlite::backup::files(
        &config.data_dir,
        &crate::database::sqlite_options(config),
    ))
}

/// A progress bar over the archive's files (hidden when `quiet`).
fn progress(files: usize, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(files as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Writes a backup of the SQLite files to `out` (which must not exist).
pub fn backup(config: &Config, out: &Path, quiet: bool) -> anyhow::Result<Manifest> {
    let files = sqlite_files(config)?;
    if out.exists() {
        bail!("{} exists already: choose a new file name", out.display());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let work = tempfile::Builder::new()
        .prefix(".callboard-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let bar = progress(files.len(), quiet);
    let mut entries = Vec::new();
    let mut stores = Vec::new();
    for (name, path) in &files {
        bar.set_message(format!("copying {}", path.display()));
        if !path.exists() {
            bail!(
                "no database at {}: nothing to back up (has `callboard serve` run with this data directory?)",
                path.display()
            );
        }
        let copy = work.path().join(name);
        let bytes = callboard_store_sqlite::backup::backup_file(path, &copy)
            .with_context(|| format!("backing up {}", path.display()))?;
        stores.extend(callboard_store_sqlite::backup::check_file(name, &copy)?);
        entries.push(FileEntry {
            name: (*name).to_owned(),
            bytes,
            sha256: sha256_of(&copy)?,
        });
        bar.inc(1);
    }
    let manifest = Manifest {
        format: FORMAT,
        callboard: env!("CARGO_PKG_VERSION").to_owned(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        files: entries,
        stores,
    };
    bar.set_message(format!("writing {}", out.display()));
    let partial = work.path().join("archive.tar");
    {
        let mut tar = tar::Builder::new(std::io::BufWriter::new(File::create(&partial)?));
        let json = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, "manifest.json", json.as_slice())?;
        for entry in &manifest.files {
            let mut file = File::open(work.path().join(&entry.name))?;
            tar.append_file(&entry.name, &mut file)?;
        }
        let mut writer = tar.into_inner()?;
        writer.flush()?;
        writer
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
    }
    // No other process may have created `out` since the check: refuse
    // rather than replace (hard link, then remove the partial file).
    std::fs::hard_link(&partial, out)
        .or_else(|_| std::fs::rename(&partial, out))
        .with_context(|| format!("cannot write {}", out.display()))?;
    bar.finish_and_clear();
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug, Serialize)]
pub struct Restored {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// Where the replaced files went (None when there were none).
    pub previous: Option<PathBuf>,
}

/// Names an archive may hold.
const NAMES: &[&str] = &[
    "manifest.json",
    "catalog.sqlite",
    "coord.sqlite",
    "kv.sqlite",
];

/// The largest `manifest.json` read.
const MAX_MANIFEST: u64 = 1 << 20;

/// Restores the SQLite files from the archive `from`.
pub fn restore(config: &Config, from: &Path, quiet: bool) -> anyhow::Result<Restored> {
    let files = sqlite_files(config)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let _lock = DataDirLock::exclusive(&config.data_dir)?;
    let work = tempfile::Builder::new()
        .prefix(".callboard-restore-")
        .tempdir_in(&config.data_dir)
        .with_context(|| format!("cannot write in {}", config.data_dir.display()))?;
    let bar = progress(files.len() + 1, quiet);
    bar.set_message(format!("reading {}", from.display()));
    let archive = File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    let mut manifest: Option<Manifest> = None;
    let mut seen = Vec::new();
    for entry in tar::Archive::new(std::io::BufReader::new(archive))
        .entries()
        .with_context(|| format!("{} is not a Callboard backup", from.display()))?
    {
        let mut entry =
            entry.with_context(|| format!("{} is not a Callboard backup", from.display()))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if !NAMES.contains(&name.as_str()) || entry.header().entry_type() != tar::EntryType::Regular
        {
            bail!(
                "{}: unexpected entry \"{name}\" (a backup holds only {})",
                from.display(),
                NAMES.join(", ")
            );
        }
        if seen.contains(&name) {
            bail!("{}: \"{name}\" appears twice", from.display());
        }
        seen.push(name.clone());
        if name == "manifest.json" {
            if entry.size() > MAX_MANIFEST {
                bail!("{}: manifest.json is larger than 1 MiB", from.display());
            }
            let mut json = Vec::new();
            entry.read_to_end(&mut json)?;
            manifest = Some(
                serde_json::from_slice(&json)
                    .with_context(|| format!("{}: manifest.json", from.display()))?,
            );
        } else {
            let path = work.path().join(&name);
            let mut out = File::create(&path)?;
            std::io::copy(&mut entry, &mut out)?;
            out.sync_all()?;
        }
    }
    let Some(manifest) = manifest else {
        bail!(
            "{}: no manifest.json: not a Callboard backup",
            from.display()
        );
    };
    if manifest.format != FORMAT {
        bail!(
            "{}: backup format {} (this build reads {FORMAT})",
            from.display(),
            manifest.format
        );
    }
    bar.inc(1);
    for (name, _) in &files {
        let Some(entry) = manifest.files.iter().find(|f| f.name == *name) else {
            bail!("{}: the manifest has no {name}", from.display());
        };
        bar.set_message(format!("checking {name}"));
        let copy = work.path().join(name);
        if !copy.exists() {
            bail!("{}: {name} is missing", from.display());
        }
        if sha256_of(&copy)? != entry.sha256 {
            bail!(
                "{}: {name} does not match its digest in the manifest",
                from.display()
            );
        }
        for store in callboard_store_sqlite::backup::check_file(name, &copy)
            .with_context(|| format!("{}: {name}", from.display()))?
        {
            if store.version > store.supported {
                bail!(
                    "{}: the {} store is at schema version {}, newer than this build ({}): restore with the Callboard that took it, or a newer one",
                    from.display(),
                    store.store,
                    store.version,
                    store.supported
                );
            }
        }
        bar.inc(1);
    }
    // Everything checked: move the current files aside, then put the
    // restored ones in their place.
    let previous = config.data_dir.join(format!(
        "before-restore-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    ));
    let mut moved = false;
    for (_, path) in &files {
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                std::fs::create_dir_all(&previous)?;
                let name = file.file_name().map(PathBuf::from).unwrap_or_default();
                std::fs::rename(&file, previous.join(name))
                    .with_context(|| format!("cannot move {} aside", file.display()))?;
                moved = true;
            }
        }
    }
    for (name, path) in &files {
        std::fs::rename(work.path().join(name), path)
            .with_context(|| format!("cannot put {} in place", path.display()))?;
    }
    bar.finish_and_clear();
    Ok(Restored {
        manifest,
        previous: moved.then_some(previous),
    })
}

fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}
