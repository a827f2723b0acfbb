//! What a build produces. Every type serialises so the host can store it as
//! JSON and hand the [`Manifest`] back on the next build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Something wrong in the site that did not stop the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file, relative to the site root (`mkdocs.yml`, `docs/guide.md`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// What is wrong, for a person.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(file: &str, line: Option<u32>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// The site as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// `site_name`; `Documentation` when missing (which is a problem).
    pub name: String,
    /// `site_description`.
    pub description: Option<String>,
    /// `repo_url`.
    pub repo_url: Option<String>,
    /// `edit_uri`.
    pub edit_uri: Option<String>,
    /// `docs_dir`, relative to the site root (default `docs`).
    pub docs_dir: String,
    /// The navigation: from `nav`, or derived from the files as MkDocs does.
    pub nav: Vec<NavItem>,
}

/// One entry of the navigation tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NavItem {
    /// A page of the site.
    Page {
        /// Its title in the nav.
        title: String,
        /// Its source path relative to the site root (`docs/guide/setup.md`).
        source: String,
        /// Its URL relative to the site root (`guide/setup/`, empty for the index).
        url: String,
    },
    /// A titled group.
    Section {
        /// The section's title.
        title: String,
        /// Its entries.
        children: Vec<NavItem>,
    },
    /// An external link (`http(s)` only; other schemes are dropped).
    Link {
        /// The link's title.
        title: String,
        /// The URL.
        url: String,
    },
}

/// A heading of a page's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TocEntry {
    /// 2 or 3.
    pub level: u8,
    /// The heading's id, the target of `#id`.
    pub id: String,
    /// The heading's plain text.
    pub title: String,
}

/// A piece of a page for the search index: one per heading, plus the text
/// before the first `h2` under the page's own anchor (empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSection {
    /// The heading's id, or empty for the top of the page.
    pub anchor: String,
    /// The heading's plain text (the page title for the top).
    pub title: String,
    /// The section's plain text, cut to about 4 KiB.
    pub text: String,
}

/// One rendered page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Source path relative to the site root (`docs/guide/setup.md`).
    pub source: String,
    /// URL relative to the site root, directory-style (`guide/setup/`;
    /// empty for the site's index).
    pub url: String,
    /// Nav title, else front-matter `title`, else the first `h1`, else the
    /// file name.
    pub title: String,
    /// The sanitised body HTML; relative links in it are relative to `url`.
    pub html: String,
    /// `h2` and `h3` headings.
    pub toc: Vec<TocEntry>,
    /// Sections for the search index.
    pub sections: Vec<SearchSection>,
    /// Hash of everything the HTML depends on (see [`Manifest`]).
    pub hash: String,
    /// Problems found on this page.
    pub problems: Vec<Problem>,
}

/// A file under `docs_dir` that is not a page, served as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Path relative to the site root (`docs/img/logo.png`).
    pub source: String,
    /// URL relative to the site root (`img/logo.png`).
    pub url: String,
    /// SHA-256 of the contents, hex.
    pub hash: String,
    /// From [`crate::content_type`]: an allow-list, never `text/html`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// What the previous build produced, to skip unchanged pages next time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Pages by source path.
    pub pages: BTreeMap<String, ManifestEntry>,
}

/// One page of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The page's URL.
    pub url: String,
    /// The page's hash: its source, included snippets, title, the enabled
    /// extensions, the renderer's version, and the state (missing, page URL
    /// or file) of every path its links and images name.
    pub hash: String,
    /// The docs-relative paths its links and images named, so the next
    /// build can tell whether a file appearing or vanishing changes it.
    pub links: Vec<String>,
    /// The page's problems, so a build that skips it still reports them.
    pub problems: Vec<Problem>,
}

/// The result of [`crate::build`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Site metadata and navigation.
    pub site: Site,
    /// The pages rendered by this build: all of them without a previous
    /// manifest, else the new and changed ones.
    pub pages: Vec<Page>,
    /// Source paths of pages whose hash matched the previous manifest and
    /// were not rendered.
    pub unchanged: Vec<String>,
    /// Source paths in the previous manifest that are no longer pages.
    pub removed: Vec<String>,
    /// Every page of the site with its hash; give it back on the next build.
    pub manifest: Manifest,
    /// Every non-page file under `docs_dir`.
    pub assets: Vec<Asset>,
    /// Every problem: the site's (mkdocs.yml, nav), then each page's,
    /// including unchanged pages' (from the manifest).
    pub problems: Vec<Problem>,
}
