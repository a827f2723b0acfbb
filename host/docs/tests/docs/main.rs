//! The renderer through its public API: one test binary, a module per area.

mod extensions;
mod hostile;
mod incremental;
mod site;

use callboard_docs::{Build, Files, Page, build};

/// A site of `docs/<path>` pages with a plain mkdocs.yml.
pub fn site(pages: &[(&str, &str)]) -> Files {
    let mut files = Files::new();
    files.insert("mkdocs.yml", "site_name: Test\n").unwrap();
    for (path, text) in pages {
        files.insert(&format!("docs/{path}"), *text).unwrap();
    }
    files
}

/// Builds and returns the page at `docs/<path>`.
pub fn page(build: &Build, path: &str) -> Page {
    let source = format!("docs/{path}");
    build
        .pages
        .iter()
        .find(|p| p.source == source)
        .unwrap_or_else(|| panic!("no page {source}"))
        .clone()
}

/// Renders one index page.
pub fn render(markdown: &str) -> Page {
    page(&build(&site(&[("index.md", markdown)]), None), "index.md")
}

/// The page's HTML with the whitespace between tags removed, for
/// comparing fragments without caring about line breaks.
pub fn html(markdown: &str) -> String {
    squash(&render(markdown).html)
}

pub fn squash(html: &str) -> String {
    let mut out = String::new();
    for line in html.lines() {
        out.push_str(line.trim());
    }
    out
}
