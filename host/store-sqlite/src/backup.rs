//! Online backup of the SQLite files, and the checks a restore makes.
//!
//! A backup copies each file with SQLite's online backup API in a single
//! step: one read transaction spans the whole copy, so in WAL mode the
//! server's writers go on and the copy is the file as of one moment (a
//! backup in several steps restarts whenever another connection writes,
//! and under steady writes may never finish). Each copy is checked with
//! `PRAGMA quick_check` before it counts.

use std::path::{Path, PathBuf};

use callboard_store::SchemaStatus;
use rusqlite::{Connection, OpenFlags};

use callboard_store::{Result, StoreError};

use crate::{SqliteOptions, db};

/// The SQLite backend's files: `(name in a backup, path)`. The catalog file
/// holds the catalog, the change feed, plugin files and policies; `coord`
/// leases, sessions, tokens and the audit log; `kv` the plugins' keys.
pub fn files(data_dir: &Path, options: &SqliteOptions) -> Vec<(&'static str, PathBuf)> {
    vec![
        (
            "catalog.sqlite",
            options
                .catalog_path
                .clone()
                .unwrap_or_else(|| data_dir.join("catalog.sqlite")),
        ),
        ("coord.sqlite", data_dir.join("coord.sqlite")),
        ("kv.sqlite", data_dir.join("kv.sqlite")),
    ]
}

/// Copies the database at `from` (which must exist) into the new file `to`
/// while other processes keep using it; returns the copy's size in bytes.
pub fn backup_file(from: &Path, to: &Path) -> Result<u64> {
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| at(from, e))?;
    source
        .busy_timeout(std::time::Duration::from_secs(30))
        .map_err(crate::sql_error)?;
    if to.exists() {
        return Err(StoreError::Input(format!(
            "{} exists already",
            to.display()
        )));
    }
    let mut target = Connection::open(to).map_err(|e| at(to, e))?;
    {
        let backup =
            rusqlite::backup::Backup::new(&source, &mut target).map_err(crate::sql_error)?;
        // Busy or locked beyond the busy timeout's own waiting: a writer
        // holds a lock the copy needs; try again for at most this long.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            // All pages in one step: one snapshot (see the module's note).
            match backup.step(-1).map_err(crate::sql_error)? {
                rusqlite::backup::StepResult::Done => break,
                _ if std::time::Instant::now() >= give_up => {
                    return Err(at(from, "the database stayed locked for 60 s"));
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
    quick_check(&target).map_err(|e| at(to, e))?;
    drop(target);
    Ok(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
}

/// Checks the database file at `path` (`PRAGMA quick_check`) and returns
/// the schema versions it holds, by store, for the stores whose file it is
/// (`name` as in [`files`]).
pub fn check_file(name: &str, path: &Path) -> Result<Vec<SchemaStatus>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| at(path, e))?;
    quick_check(&conn).map_err(|e| at(path, e))?;
    let stores: &[(&str, &[&str])] = match name {
        "catalog.sqlite" => &[
            ("catalog", crate::catalog::MIGRATIONS),
            ("feed", crate::coord::FEED_MIGRATIONS),
            ("plugins", crate::plugins::MIGRATIONS),
            ("policies", crate::policies::MIGRATIONS),
            ("docs", crate::docs::MIGRATIONS),
        ],
        "coord.sqlite" => &[("leases", crate::coord::LEASE_MIGRATIONS)],
        "kv.sqlite" => &[("kv", crate::kv::MIGRATIONS)],
        other => {
            return Err(StoreError::Input(format!(
                "{other} is not one of the SQLite backend's files"
            )));
        }
    };
    drop(conn);
    stores
        .iter()
        .map(|(store, migrations)| {
            Ok(SchemaStatus {
                store: (*store).to_owned(),
                version: db::stored_version(path, store)?,
                supported: db::len_i64(migrations),
            })
        })
        .collect()
}

fn quick_check(conn: &Connection) -> Result<()> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(crate::sql_error)?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(StoreError::Input(format!(
            "the database is damaged: {verdict}"
        )))
    }
}

/// An error about the file at `path`, naming it.
fn at(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{}: {e}", path.display()))
}
