//! Rendered TechDocs sites: every page's HTML, the site's files and its
//! metadata, stored so that every replica serves what one built. A build's
//! pages and their search documents are written in one transaction
//! ([`DocsStore::put_site`]), so search never finds a section the portal
//! cannot show.
//!
//! The store keeps what the renderer produced as opaque JSON where only
//! the host reads it (navigation, table of contents, problems): it never
//! needs to query inside them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;
use crate::search::SearchDoc;

/// The search group of one page of an entity's docs.
pub fn page_group(entity_ref: &str, path: &str) -> String {
    format!("{}{path}", site_group_prefix(entity_ref))
}

/// The prefix of every search group of an entity's docs.
pub fn site_group_prefix(entity_ref: &str) -> String {
    format!("techdocs:{entity_ref}:")
}

/// One site: the entity it documents and what the portal shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteRow {
    /// Lower-case ref of the entity.
    pub entity_ref: String,
    /// Site name, description, navigation, repository and edit links,
    /// problems, the source it was read from (JSON the host defines).
    pub meta: Value,
    /// What the next build compares against (page hashes, assets); `Null`
    /// when listed by [`DocsStore::sites`].
    pub manifest: Value,
    /// When the last build that changed something finished (Unix ms).
    pub built_at: i64,
    /// Digest of the whole build (an `etag`).
    pub etag: String,
}

/// One rendered page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageRow {
    /// Its URL path within the site (`guide/setup/`, `` for the index).
    pub path: String,
    /// Its title.
    pub title: String,
    /// The sanitised body HTML.
    pub html: String,
    /// Table of contents, source file, problems (JSON the host defines).
    pub meta: Value,
    /// Digest of what it was rendered from.
    pub hash: String,
    /// When its content last changed (Unix ms).
    pub updated_at: i64,
}

/// One file of the site (an image, a download).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRow {
    /// Its path within the site.
    pub path: String,
    /// The content type it is served with.
    pub content_type: String,
    /// Digest of its bytes.
    pub hash: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What one build changed, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct SiteUpdate {
    /// The site's row (replaced).
    pub site: Option<SiteRow>,
    /// Pages rendered again (replaced or added).
    pub pages: Vec<PageRow>,
    /// Pages the site no longer has.
    pub removed_pages: Vec<String>,
    /// Files added or changed.
    pub assets: Vec<AssetRow>,
    /// Files the site no longer has.
    pub removed_assets: Vec<String>,
    /// The search documents of each page in `pages` (by page path): they
    /// replace the page's group; removed pages lose theirs.
    pub search: BTreeMap<String, Vec<SearchDoc>>,
}

/// Rendered sites.
#[async_trait::async_trait]
pub trait DocsStore: Send + Sync {
    /// Stores a build of `entity_ref`'s site: the site row, changed pages
    /// and files, removals, and the pages' search documents, in one
    /// transaction.
    async fn put_site(&self, entity_ref: &str, update: SiteUpdate) -> Result<()>;
    /// The site of an entity; its manifest only when `manifest` (it lists
    /// every page, so a page view leaves it out).
    async fn site(&self, entity_ref: &str, manifest: bool) -> Result<Option<SiteRow>>;
    /// Every site, by entity ref, without manifests.
    async fn sites(&self) -> Result<Vec<SiteRow>>;
    /// One page.
    async fn page(&self, entity_ref: &str, path: &str) -> Result<Option<PageRow>>;
    /// The pages' paths and titles, in path order.
    async fn page_titles(&self, entity_ref: &str) -> Result<Vec<(String, String)>>;
    /// One file.
    async fn asset(&self, entity_ref: &str, path: &str) -> Result<Option<AssetRow>>;
    /// Every file's path and digest (to compare without reading bytes).
    async fn asset_hashes(&self, entity_ref: &str) -> Result<BTreeMap<String, String>>;
    /// Removes a site with its pages, files and search documents; whether
    /// there was one.
    async fn remove_site(&self, entity_ref: &str) -> Result<bool>;
}
