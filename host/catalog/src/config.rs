//! `[catalog]` in `callboard.toml`.

use std::path::PathBuf;

/// Catalog settings. Every key is optional.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// Locations ingested at startup and on every refresh, e.g.
    /// `locations = [{ type = "file", target = "demo/catalog/**/*.yaml" }]`.
    /// File targets may be globs and are relative to the current directory.
    /// A configured file location may read the folder its target names (the
    /// part before any glob) and anything below it, plus `file_roots`.
    pub locations: Vec<LocationConfig>,
    /// Seconds between two refreshes of every location (Backstage: 100-150 s).
    /// `0` reads the locations once at startup and never again. Default 120.
    pub refresh_interval_secs: u64,
    /// Seconds a replica holds a location's refresh without a heartbeat:
    /// a replica that dies mid-refresh hands the location over to another
    /// after this long. Default 30.
    pub refresh_lease_secs: u64,
    /// Database file. Default: `<data_dir>/catalog.sqlite`.
    pub database: Option<PathBuf>,
    /// Seconds to wait for a `url` target before reporting it unreachable.
    /// Default 10.
    pub url_timeout_secs: u64,
    /// Largest descriptor file (local or remote) read, in bytes; larger ones
    /// are refused after reading at most this plus one byte. Default 4 MiB.
    pub max_file_bytes: u64,
    /// Location types `POST /locations` and `/analyze-location` accept
    /// (Backstage's `catalog.allowedLocationTypes`). Default `["url"]`: file
    /// locations come from this file only.
    pub api_location_types: Vec<LocationKind>,
    /// Extra folders file targets may be read from (after resolving `..` and
    /// symbolic links), besides each configured location's own folder.
    /// File locations posted through the API must lie inside one of them or
    /// inside a configured location's folder. Default: none.
    pub file_roots: Vec<PathBuf>,
    /// Hosts `url` targets may be read from (Backstage's
    /// `backend.reading.allow`): `example.com`, `example.com:8443` (that
    /// port only), `*.example.com` (any subdomain) or `*` (any host). Every
    /// redirect hop is checked too.
    /// Default: none, so no `url` target is read until this is set.
    pub url_allowed_hosts: Vec<String>,
    /// Addresses or CIDR blocks (`10.1.2.0/24`, `127.0.0.1`) `url` targets may
    /// connect to although they are loopback, private, link-local, CGNAT,
    /// unique-local or otherwise not public. Default: none; only public
    /// addresses are reached.
    pub url_allowed_ips: Vec<String>,
    /// Most files one location may read (globs and Location entities
    /// included). Default 10,000.
    pub max_files_per_location: usize,
    /// Most entities one location may provide. Default 200,000.
    pub max_entities_per_location: usize,
    /// Most bytes of descriptor files one location may read. Default 256 MiB.
    pub max_bytes_per_location: u64,
    /// Deepest chain of Location entities below a registered location.
    /// Default 8.
    pub max_location_depth: usize,
    /// Most distinct URLs one location may read. Default 1,000.
    pub max_urls_per_location: usize,
    /// Most entities in the whole catalog; a location that would pass it is
    /// refused (and keeps what it had). Default 1,000,000.
    pub max_entities: usize,
    /// Read connections to the database kept open at most (each caches up
    /// to 16 MB); further reads wait for one. Default 8.
    pub max_read_connections: usize,
    /// Locations read at the same time (refreshes, dry runs, analysis), each
    /// on a blocking thread. Default 2.
    pub max_concurrent_reads: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            locations: Vec::new(),
            refresh_interval_secs: 120,
            refresh_lease_secs: 30,
            database: None,
            url_timeout_secs: 10,
            max_file_bytes: 4 * 1024 * 1024,
            api_location_types: vec![LocationKind::Url],
            file_roots: Vec::new(),
            url_allowed_hosts: Vec::new(),
            url_allowed_ips: Vec::new(),
            max_files_per_location: 10_000,
            max_entities_per_location: 200_000,
            max_bytes_per_location: 256 * 1024 * 1024,
            max_location_depth: 8,
            max_urls_per_location: 1_000,
            max_entities: 1_000_000,
            max_read_connections: 8,
            max_concurrent_reads: 2,
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
