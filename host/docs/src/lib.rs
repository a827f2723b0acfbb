//! Callboard's TechDocs renderer: an MkDocs site written for
//! `mkdocs-techdocs-core` in, sanitised HTML pages, search sections and
//! problems out. No Python, no Docker, no script on the page.
//!
//! This crate is the pure renderer: [`Files`] in (from memory, or from disk
//! with [`Files::from_dir`] within [`Limits`]), a [`Build`] out from
//! [`build`]. Storing, serving, indexing and the command line are the
//! host's. Builds are incremental: hand the previous [`Manifest`] back and
//! only pages whose [`Page::hash`] changed are rendered.
//!
//! # Supported
//!
//! - CommonMark and GFM: tables (alignment as `align`), task lists,
//!   footnotes, strikethrough, autolinks, and GitHub alerts (`> [!NOTE]`),
//!   rendered as admonitions.
//! - `admonition` (`!!! type "Title"`, `!!! type ""` without a title),
//!   `pymdownx.details` (`???` closed, `???+` open), `pymdownx.tabbed`
//!   (alternate style, script-free: radio inputs and labels with ids unique
//!   in the page, the first or the `===+` tab checked), nested in one
//!   another up to 32 levels.
//! - `toc`: Python-Markdown slugs, de-duplicated `_1`, `_2`; permalinks
//!   (`<a class="headerlink">¶</a>`); a table of contents of `h2`/`h3`.
//! - `attr_list` on headings (`## Title {#id .class}` and `{: #id}`),
//!   `def_list`, `abbr`, `pymdownx.mark` (`==x==`), `pymdownx.caret`
//!   (`^^ins^^`, `^sup^`), `pymdownx.tilde` (`~~del~~`, `H~2~O`),
//!   `pymdownx.emoji` (GitHub shortcodes such as `:rocket:`),
//!   `pymdownx.magiclink` (bare `http(s)://` URLs), front-matter `title`.
//! - `pymdownx.highlight`/`superfences`: code highlighted on the server with
//!   `hl-` CSS classes ([`highlight_css`] gives the stylesheet); fence
//!   options (`title="x.py"` is shown, `linenums`, `hl_lines`) do not
//!   break; unknown languages are escaped plain text.
//! - `pymdownx.snippets`: `--8<-- "path"` lines (also inside code fences,
//!   as there), looked up in `docs_dir` then the site root, at most 4 deep;
//!   absolute paths, `..` and missing files are problems.
//! - Links: `page.md`, `../guide/setup.md#install`, `dir/` (its `index.md`
//!   or `README.md`) become directory-style URLs relative to the page, as
//!   MkDocs' `use_directory_urls`; files under `docs_dir` stay relative. A
//!   missing target is a problem and its link gets `class="broken"`. http(s)
//!   links get `rel="noopener noreferrer"`; `javascript:`, `data:`,
//!   `vbscript:`, protocol-relative `//host` and paths out of the docs are
//!   dropped (a problem). Absolute paths (`/catalog`) are kept.
//! - mkdocs.yml: `site_name`, `site_description`, `repo_url`, `edit_uri`,
//!   `docs_dir`, `nav` (or MkDocs' derived nav), `markdown_extensions`
//!   (unknown ones are problems), Python tags ignored.
//! - Raw HTML passes only through the sanitiser (ammonia, explicit
//!   allow-list): no script, style, iframe, object, embed, svg, math, event
//!   handlers or style attributes; URLs http, https, mailto and relative.
//!
//! # Not supported, and why
//!
//! - Mermaid diagrams are shown as their source with a note: the pure-Rust
//!   renderers found (merman, mermaid-rs-renderer, rusty-mermaid) are young
//!   0.x/alpha crates, and inline SVG is outside the sanitiser's allow-list.
//! - Containers (`!!!`, `???`, `===`) inside list items or block quotes:
//!   they are recognised at the start of a line (or of a container's body).
//! - `pymdownx.snippets` block form and line ranges (`file.md:3:5`); the
//!   one-line form covers what TechDocs sites use most.
//! - `hl_lines` and `linenums` are not drawn; `smartsymbols`, `keys`,
//!   `critic`, `arithmatex`, Material icons (`:material-x:`) and other
//!   theme features are not rendered; `md_in_html` (`<div markdown>`) is
//!   not interpreted: CommonMark's own rule applies (Markdown after a blank
//!   line inside raw HTML is rendered).
//! - Inline extensions (`==mark==` ...) apply within one run of text, so
//!   markup inside them (`==a *b*==`) stays literal.
//! - Slugs drop non-ASCII letters where Python folds accents first (`Café`
//!   gives `caf`, Python `cafe`).
//! - Languages beyond syntect's bundled grammars (TypeScript, TOML,
//!   Dockerfile ...) are shown plain.
#![deny(missing_docs)]

mod blocks;
mod config;
mod files;
mod highlight;
mod inline;
mod links;
mod model;
mod nav;
mod render;
mod sample;
mod sanitize;
mod site;

pub use files::{Error, Files, Limits, Snapshot};
pub use highlight::highlight_css;
pub use model::{
    Asset, Build, Manifest, ManifestEntry, NavItem, Page, Problem, SearchSection, Site, TocEntry,
};
pub use sample::sample_site;
pub use site::build;

/// The content type to serve a docs file with: an allow-list. HTML, CSS,
/// scripts and anything unknown are never served as themselves: text is
/// `text/plain`, the rest `application/octet-stream`. SVG is served as
/// `image/svg+xml` so `<img>` works; opened on its own an SVG can run
/// script, so the host should serve docs files with
/// `Content-Security-Policy: sandbox` (or `script-src 'none'`) and
/// `X-Content-Type-Options: nosniff`.
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "csv" => "text/csv",
        "txt" | "md" | "markdown" | "yaml" | "yml" | "html" | "htm" | "css" | "js" | "xml" => {
            "text/plain"
        }
        _ => "application/octet-stream",
    }
}
