//! `[catalog]` in `callboard.toml`.

use std::path::PathBuf;

/// Catalog settings. Every key is optional.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// Locations ingested at startup and on every refresh, e.g.
    /// `locations = [{ type = "file", target = "demo/catalog/**/*.yaml" }]`.
    /// File targets may be globs and are relative to the current directory.
    pub locations: Vec<LocationConfig>,
    /// Seconds between two refreshes of every location (Backstage: 100-150 s).
    /// `0` reads the locations once at startup and never again.
    pub refresh_interval_secs: u64,
    /// Database file. Default: `<data_dir>/catalog.sqlite`.
    pub database: Option<PathBuf>,
    /// Seconds to wait for a `url` target before reporting it unreachable.
    pub url_timeout_secs: u64,
    /// Largest descriptor file (local or remote) read, in bytes.
    pub max_file_bytes: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            locations: Vec::new(),
            refresh_interval_secs: 120,
            database: None,
            url_timeout_secs: 10,
            max_file_bytes: 32 * 1024 * 1024,
        }
    }
}

impl CatalogConfig {
    /// The database file: `database` if set, else `<data_dir>/catalog.sqlite`.
    pub fn database_path(&self, data_dir: &std::path::Path) -> PathBuf {
        self.database
            .clone()
            .unwrap_or_else(|| data_dir.join("catalog.sqlite"))
    }
}

/// One configured location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// `file` (a path or glob) or `url` (http or https).
    #[serde(rename = "type")]
    pub kind: LocationKind,
    /// The path, glob or URL.
    pub target: String,
}

/// How a location's target is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    /// A local file path, or a glob of them.
    File,
    /// An http(s) URL.
    Url,
}

impl LocationKind {
    /// The name used in the API and in annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Url => "url",
        }
    }

    /// Parses `file` or `url`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Self::File),
            "url" => Some(Self::Url),
            _ => None,
        }
    }
}
