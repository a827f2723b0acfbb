//! The site's files as the renderer sees them, and reading them from disk
//! within bounds.

use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A fatal error: the site could not be read at all. Problems inside a site
/// (a broken link, a bad nav entry) are not errors but [`crate::Problem`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tree holds more files than [`Limits::max_files`].
    #[error("too many files: {path} is past the limit of {limit}")]
    TooManyFiles {
        /// The first file past the limit.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// One file is larger than [`Limits::max_file_bytes`].
    #[error("{path} is larger than the limit of {limit} bytes")]
    FileTooLarge {
        /// The file.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The files together are larger than [`Limits::max_total_bytes`].
    #[error("the site is larger than the limit of {limit} bytes (at {path})")]
    TotalTooLarge {
        /// The file that crossed the limit.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// A path that is absolute, empty, or climbs out of the site with `..`.
    #[error("invalid path in site: {path:?}")]
    InvalidPath {
        /// The path as given.
        path: String,
    },
    /// Reading the tree failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Bounds on what [`Files::from_dir`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most files in the tree (hidden ones are not counted). Default 20,000.
    pub max_files: usize,
    /// Largest single file. Default 8 MiB.
    pub max_file_bytes: u64,
    /// Largest sum of all files. Default 256 MiB.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_files: 20_000,
            max_file_bytes: 8 << 20,
            max_total_bytes: 256 << 20,
        }
    }
}

/// A site's files in memory: path relative to the site root (`/`-separated,
/// e.g. `mkdocs.yml`, `docs/index.md`) to contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    files: BTreeMap<String, Vec<u8>>,
}

impl Files {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file. The path is relative to the site root;
    /// `\` is read as `/` and a leading `./` is dropped. Absolute paths,
    /// empty paths, `..` segments and `:` (drive letters, URLs) are
    /// refused, so nothing in a site can name a file outside it.
    pub fn insert(&mut self, path: &str, contents: impl Into<Vec<u8>>) -> Result<(), Error> {
        let path = normalise(path).ok_or_else(|| Error::InvalidPath {
            path: path.to_owned(),
        })?;
        self.files.insert(path, contents.into());
        Ok(())
    }

    /// Removes a file, returning its contents.
    pub fn remove(&mut self, path: &str) -> Option<Vec<u8>> {
        self.files.remove(path)
    }

    /// The contents of one file.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Whether the file exists.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// All files in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Reads a site from disk. Hidden files and folders (`.git`, `.cache`)
    /// are skipped, as are non-UTF-8 names. A symbolic link is followed only
    /// when it names a regular file inside the tree: links to folders are
    /// skipped so a cycle cannot make the walk endless, and links out of the
    /// tree are skipped so a site cannot read the host's files.
    pub fn from_dir(root: &Path, limits: Limits) -> Result<Self, Error> {
        Ok(Snapshot::read(root, limits, None)?.files)
    }
}

/// A site read from disk with what each file looked like (length,
/// modification time, inode), so the next read of the same folder takes
/// the files that did not change from memory instead of reading them again:
/// on a site of thousands of pages, reading is most of a one-page rebuild.
#[derive(Debug, Default)]
pub struct Snapshot {
    files: Files,
    stamps: HashMap<String, Stamp>,
    /// When this read began: a file modified less than [`RACY`] before it
    /// may change again within the same timestamp, so it is read anew.
    began: Option<SystemTime>,
    reused: usize,
}

/// What a file looked like when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: SystemTime,
    inode: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Option<Self> {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok()?,
            inode,
        })
    }
}

/// Files modified this close before a read are read again by the next one,
/// however they look: a file system's timestamps can be this coarse, and a
/// write of the same length within one tick would otherwise go unseen (Git
/// calls such entries "racily clean").
const RACY: Duration = Duration::from_secs(2);

impl Snapshot {
    /// Reads `root` as [`Files::from_dir`] does, taking from `previous` (a
    /// snapshot of the same folder) every file whose length, modification
    /// time and inode are unchanged and whose modification time is older
    /// than the previous read by [`RACY`].
    pub fn read(root: &Path, limits: Limits, previous: Option<Snapshot>) -> Result<Self, Error> {
        read_dir(root, limits, previous)
    }

    /// The files.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// How many files this read took from the previous snapshot.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// The bytes held.
    pub fn bytes(&self) -> u64 {
        self.files.files.values().map(|v| v.len() as u64).sum()
    }
}

fn read_dir(root: &Path, limits: Limits, previous: Option<Snapshot>) -> Result<Snapshot, Error> {
    {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { path, source }
        };
        let began = SystemTime::now();
        let mut previous = previous.unwrap_or_default();
        let settled = previous.began.and_then(|t| t.checked_sub(RACY));
        let canonical_root = fs::canonicalize(root).map_err(io(root))?;
        let mut files = Files::new();
        let mut stamps = HashMap::new();
        let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        let mut listed = 0u64;
        let mut total = 0u64;
        let mut stack: Vec<(PathBuf, String)> = vec![(canonical_root.clone(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let mut entries = fs::read_dir(&dir)
                .map_err(io(&dir))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(io(&dir))?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let rel = format!("{prefix}{name}");
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
                let file_type = meta.file_type();
                let meta = if file_type.is_dir() {
                    stack.push((path, format!("{rel}/")));
                    continue;
                } else if file_type.is_symlink() {
                    let Ok(target) = fs::canonicalize(&path) else {
                        continue;
                    };
                    let Ok(target_meta) = fs::metadata(&target) else {
                        continue;
                    };
                    if !target.starts_with(&canonical_root) || !target_meta.is_file() {
                        continue;
                    }
                    target_meta
                } else if file_type.is_file() {
                    meta
                } else {
                    continue;
                };
                let size = meta.len();
                if found.len() >= limits.max_files {
                    return Err(Error::TooManyFiles {
                        path: rel,
                        limit: limits.max_files,
                    });
                }
                if size > limits.max_file_bytes {
                    return Err(Error::FileTooLarge {
                        path: rel,
                        limit: limits.max_file_bytes,
                    });
                }
                listed += size;
                if listed > limits.max_total_bytes {
                    return Err(Error::TotalTooLarge {
                        path: rel,
                        limit: limits.max_total_bytes,
                    });
                }
                let stamp = Stamp::of(&meta);
                let unchanged = stamp.is_some_and(|stamp| {
                    previous.stamps.get(&rel) == Some(&stamp)
                        && settled.is_some_and(|settled| stamp.modified < settled)
                });
                if let Some(stamp) = stamp {
                    stamps.insert(rel.clone(), stamp);
                }
                match previous.files.files.remove(&rel) {
                    Some(bytes) if unchanged => kept.push((rel, bytes)),
                    _ => found.push((rel, path)),
                }
            }
        }
        let reused = kept.len();
        // Reading is most of a rebuild's time on a large site (thousands of
        // small files): read in parallel once the walk has checked the
        // limits against what the files say they hold.
        let read: Vec<(String, Vec<u8>)> = found
            .into_par_iter()
            .map(|(rel, path)| {
                // The file may grow between stat and read: read one byte
                // past the limit so growth is caught rather than trusted.
                let mut bytes = Vec::new();
                fs::File::open(&path)
                    .and_then(|f| f.take(limits.max_file_bytes + 1).read_to_end(&mut bytes))
                    .map_err(io(&path))?;
                if bytes.len() as u64 > limits.max_file_bytes {
                    return Err(Error::FileTooLarge {
                        path: rel,
                        limit: limits.max_file_bytes,
                    });
                }
                Ok((rel, bytes))
            })
            .collect::<Result<_, Error>>()?;
        for (rel, bytes) in kept.into_iter().chain(read) {
            total += bytes.len() as u64;
            if total > limits.max_total_bytes {
                return Err(Error::TotalTooLarge {
                    path: rel,
                    limit: limits.max_total_bytes,
                });
            }
            files.files.insert(rel, bytes);
        }
        Ok(Snapshot {
            files,
            stamps,
            began: Some(began),
            reused,
        })
    }
}

/// Canonical form of a site-relative path, or `None` if it could leave the
/// site.
pub(crate) fn normalise(path: &str) -> Option<String> {
    let path = path.replace('\\', "/");
    let mut trimmed = path.as_str();
    while let Some(rest) = trimmed.strip_prefix("./") {
        trimmed = rest;
    }
    if trimmed.is_empty() || trimmed.starts_with('/') || trimmed.contains(':') {
        return None;
    }
    let mut out = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out.join("/"))
}
