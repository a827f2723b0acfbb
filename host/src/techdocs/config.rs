//! `[docs]`: TechDocs building.

use serde::{Deserialize, Serialize};

/// `[docs]` in `callboard.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocsConfig {
    /// Build the TechDocs of entities annotated `backstage.io/techdocs-ref`.
    /// Default true.
    pub enabled: bool,
    /// Seconds between two checks of every site for changed sources (only
    /// changed pages are rendered again). `0` builds at start-up and on
    /// catalog changes only. Default: the catalog's refresh interval.
    pub rebuild_interval_secs: Option<u64>,
    /// Most files one site may have. Default 20,000.
    pub max_files: usize,
    /// Largest file of a site, in bytes. Default 8 MiB.
    pub max_file_bytes: u64,
    /// Most bytes all files of one site may hold. Default 128 MiB.
    pub max_site_bytes: u64,
    /// Seconds one site's build may take before it is given up (its last
    /// stored version keeps serving). Default 300.
    pub build_timeout_secs: u64,
}

impl Default for DocsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rebuild_interval_secs: None,
            max_files: 20_000,
            max_file_bytes: 8 * 1024 * 1024,
            max_site_bytes: 128 * 1024 * 1024,
            build_timeout_secs: 300,
        }
    }
}

impl DocsConfig {
    /// The reading limits of one site.
    pub fn limits(&self) -> callboard_docs::Limits {
        callboard_docs::Limits {
            max_files: self.max_files,
            max_file_bytes: self.max_file_bytes,
            max_total_bytes: self.max_site_bytes,
        }
    }
}
