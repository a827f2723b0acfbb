//! Reading `file` targets: confined to allowed folders after resolving `..`
//! and symbolic links, regular files only, and never more than the size cap
//! plus one byte, whatever the file system reports.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

/// Why a file was not read. Shown to callers, so it carries no OS error and
/// no path beyond the one they gave.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("not found")]
    NotFound,
    #[error("not a regular file")]
    NotRegular,
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("outside the folders this location may read (catalog.file_roots)")]
    Outside,
    #[error("not UTF-8 text")]
    NotText,
    #[error("the file could not be read")]
    Io,
}

/// Where the files of one location may come from; `None` means anywhere
/// (the operator's own command line).
pub(crate) type Roots = Option<Vec<PathBuf>>;

/// The folder a file target names: the part before the first glob
/// component, or the file's folder.
pub(crate) fn base_dir(target: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(target).components() {
        if let Component::Normal(part) = c
            && super::ingest::is_glob(&part.to_string_lossy())
        {
            return out;
        }
        out.push(c);
    }
    out.parent().map(Path::to_owned).unwrap_or(out)
}

/// Canonical forms of `dirs` (missing ones are dropped: nothing is under them).
pub(crate) fn canonical_roots(dirs: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    dirs.into_iter()
        .filter_map(|d| match std::fs::canonicalize(&d) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!(dir = %d.display(), "catalog: file root unavailable: {e}");
                None
            }
        })
        .collect()
}

/// Whether the canonical form of `path` (or of its deepest existing
/// ancestor, for globs and missing files) lies within `roots`.
pub(crate) fn within(path: &Path, roots: &Roots) -> bool {
    let Some(roots) = roots else { return true };
    let mut probe = path.to_owned();
    loop {
        if let Ok(c) = std::fs::canonicalize(&probe) {
            return roots.iter().any(|r| c.starts_with(r));
        }
        if !probe.pop() {
            return false;
        }
    }
}

/// Reads a descriptor file under the cap.
pub(crate) fn read_limited(path: &Path, roots: &Roots, max: u64) -> Result<String, FileError> {
    let canonical = std::fs::canonicalize(path).map_err(|e| io_error(path, &e))?;
    if let Some(roots) = roots
        && !roots.iter().any(|r| canonical.starts_with(r))
    {
        return Err(FileError::Outside);
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer. The type is
    // checked on the opened handle, so a swap after the check cannot slip
    // a device in.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&canonical)
        .map_err(|e| io_error(path, &e))?;
    let meta = file.metadata().map_err(|e| io_error(path, &e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular);
    }
    if meta.len() > max {
        return Err(FileError::TooLarge(max));
    }
    // The reported size is only a hint (procfs reports 0): stop at max + 1.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge(max));
    }
    String::from_utf8(bytes).map_err(|_| FileError::NotText)
}

fn io_error(path: &Path, e: &std::io::Error) -> FileError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return FileError::NotFound;
    }
    tracing::warn!(path = %path.display(), "catalog: reading a file target failed: {e}");
    FileError::Io
}
