//! Where pages live and what a link in a page points at.
//!
//! Every internal href is written relative to the page's own URL, so the
//! same HTML works wherever the host mounts the site.

use std::collections::{HashMap, HashSet};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Characters escaped in a path we write into an href.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Whether a docs-relative path is a Markdown page.
pub(crate) fn is_page(path: &str) -> bool {
    path.ends_with(".md") || path.ends_with(".markdown")
}

/// The directory-style URL MkDocs serves a page at (`use_directory_urls`):
/// `guide/setup.md` at `guide/setup/`, `guide/index.md` and
/// `guide/README.md` at `guide/`, the top index at the empty URL.
pub(crate) fn page_url(docs_path: &str) -> String {
    let stem = docs_path
        .strip_suffix(".md")
        .or_else(|| docs_path.strip_suffix(".markdown"))
        .unwrap_or(docs_path);
    let (dir, name) = match stem.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), stem),
    };
    if name == "index" || name == "README" {
        dir
    } else {
        format!("{dir}{name}/")
    }
}

/// The site's pages and files, for resolving links.
#[derive(Debug, Default)]
pub(crate) struct SiteIndex {
    /// Docs-relative page path to URL.
    pages: HashMap<String, String>,
    /// Docs-relative paths of non-page files.
    assets: HashSet<String>,
}

/// What to do with one link or image destination.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Kept as written; `external` for http(s), which gets `rel`.
    Keep { href: String, external: bool },
    /// Inside the docs: `href` is relative to the page; `key` is the
    /// docs-relative path that was checked (a folder ends with `/`).
    Internal {
        href: String,
        key: String,
        broken: bool,
    },
    /// Refused, with the reason.
    Drop(&'static str),
}

impl SiteIndex {
    pub(crate) fn new(pages: HashMap<String, String>, assets: HashSet<String>) -> Self {
        Self { pages, assets }
    }

    /// What a checked key resolves to now; part of a page's hash so that a
    /// target appearing, vanishing or moving re-renders the page.
    pub(crate) fn state(&self, key: &str) -> String {
        match self.lookup(key) {
            Some(url) => format!("{key}={url}"),
            None => format!("{key}=missing"),
        }
    }

    /// The site-relative URL a docs-relative key is served at, if it exists.
    fn lookup(&self, key: &str) -> Option<String> {
        if key.is_empty() || key.ends_with('/') {
            for index in ["index.md", "README.md"] {
                if let Some(url) = self.pages.get(&format!("{key}{index}")) {
                    return Some(url.clone());
                }
            }
            return None;
        }
        if let Some(url) = self.pages.get(key) {
            return Some(url.clone());
        }
        self.assets.contains(key).then(|| key.to_owned())
    }

    /// Resolves `dest` as written in the page at `page_path` (docs-relative)
    /// served at `page_url`.
    pub(crate) fn resolve(&self, page_path: &str, page_url: &str, dest: &str) -> Target {
        let dest = dest.trim();
        if dest.is_empty() || dest.starts_with('#') {
            return Target::Keep {
                href: dest.to_owned(),
                external: false,
            };
        }
        // Browsers drop tabs and newlines inside URLs, so `java\tscript:`
        // is `javascript:` to them: decide the scheme on what they see.
        let seen: String = dest.chars().filter(|c| !c.is_ascii_control()).collect();
        if let Some(scheme) = scheme(&seen) {
            return match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" => Target::Keep {
                    href: seen,
                    external: true,
                },
                "mailto" => Target::Keep {
                    href: seen,
                    external: false,
                },
                _ => Target::Drop("only http, https and mailto links are allowed"),
            };
        }
        if seen.starts_with("//") || seen.starts_with("/\\") || seen.starts_with('\\') {
            return Target::Drop("protocol-relative links are not allowed");
        }
        if seen.starts_with('/') {
            // Absolute paths stay on the portal's own origin.
            return Target::Keep {
                href: seen,
                external: false,
            };
        }
        let (path, suffix) = match seen.find(['?', '#']) {
            Some(i) => seen.split_at(i),
            None => (seen.as_str(), ""),
        };
        let decoded = percent_decode_str(path).decode_utf8_lossy();
        let page_dir = page_path.rsplit_once('/').map_or("", |(dir, _)| dir);
        let Some(mut key) = join(page_dir, &decoded) else {
            return Target::Drop("the link leaves the docs folder");
        };
        if !key.is_empty() && !key.ends_with('/') && !is_page(&key) && !self.assets.contains(&key) {
            // `guide/setup` written for the page `guide/setup.md`'s folder
            // URL, or a folder without its slash.
            let as_dir = format!("{key}/");
            if self.lookup(&as_dir).is_some() {
                key = as_dir;
            }
        }
        let (url, broken) = match self.lookup(&key) {
            Some(url) => (url, false),
            None if is_page(&key) => (self::page_url(&key), true),
            None => (key.clone(), true),
        };
        let href = format!("{}{suffix}", relative(page_url, &url));
        Target::Internal { href, key, broken }
    }
}

/// The URL scheme of `url`, if it has one (`x:` before any `/`, `?`, `#`).
fn scheme(url: &str) -> Option<&str> {
    let colon = url.find(':')?;
    let head = &url[..colon];
    let mut chars = head.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(head)
}

/// `dir` joined with the relative `path`, normalised; `None` if it climbs
/// above the docs folder. Keeps a trailing `/`.
pub(crate) fn join(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    let trailing = path.ends_with('/') || path.ends_with("/.") || path == "." || path == "..";
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    let mut out = parts.join("/");
    if trailing && !out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// `to` (a site-relative URL) written relative to the folder URL `from`.
fn relative(from: &str, to: &str) -> String {
    let base: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let target: Vec<&str> = to.split('/').collect();
    // The last segment of `to` is a file name (or empty for a folder).
    let (target_dirs, file) = target.split_at(target.len() - 1);
    let common = base
        .iter()
        .zip(target_dirs)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = "../".repeat(base.len() - common);
    for dir in &target_dirs[common..] {
        out.push_str(&utf8_percent_encode(dir, PATH).to_string());
        out.push('/');
    }
    out.push_str(&utf8_percent_encode(file[0], PATH).to_string());
    if out.is_empty() {
        out.push_str("./");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SiteIndex {
        let pages = ["index.md", "guide/setup.md", "guide/README.md", "a b.md"]
            .into_iter()
            .map(|p| (p.to_owned(), page_url(p)))
            .collect();
        let assets = ["img/logo.png".to_owned()].into_iter().collect();
        SiteIndex::new(pages, assets)
    }

    fn href(from_path: &str, dest: &str) -> Target {
        index().resolve(from_path, &page_url(from_path), dest)
    }

    fn ok(href: &str, key: &str) -> Target {
        Target::Internal {
            href: href.into(),
            key: key.into(),
            broken: false,
        }
    }

    #[test]
    fn urls() {
        assert_eq!(page_url("index.md"), "");
        assert_eq!(page_url("guide/setup.md"), "guide/setup/");
        assert_eq!(page_url("guide/README.md"), "guide/");
        assert_eq!(relative("guide/setup/", "guide/"), "../");
        assert_eq!(relative("", ""), "./");
        assert_eq!(relative("guide/setup/", "guide/setup/"), "./");
        assert_eq!(relative("a/b/", "img/x.png"), "../../img/x.png");
    }

    #[test]
    fn resolves_pages_folders_and_files() {
        assert_eq!(
            href("index.md", "guide/setup.md#install"),
            ok("guide/setup/#install", "guide/setup.md")
        );
        assert_eq!(
            href("guide/setup.md", "../index.md"),
            ok("../../", "index.md")
        );
        assert_eq!(
            href("guide/setup.md", "README.md"),
            ok("../", "guide/README.md")
        );
        assert_eq!(href("index.md", "guide/"), ok("guide/", "guide/"));
        assert_eq!(href("index.md", "guide"), ok("guide/", "guide/"));
        assert_eq!(
            href("guide/setup.md", "../img/logo.png"),
            ok("../../img/logo.png", "img/logo.png")
        );
        assert_eq!(href("index.md", "a%20b.md"), ok("a%20b/", "a b.md"));
        assert_eq!(
            href("index.md", "nope.md"),
            Target::Internal {
                href: "nope/".into(),
                key: "nope.md".into(),
                broken: true
            }
        );
    }

    #[test]
    fn refuses_what_is_not_a_link() {
        for bad in [
            "javascript:alert(1)",
            "JaVa\tScRiPt:x",
            "data:text/html,<b>",
            "vbscript:x",
            "//evil.example/x",
            "\\\\evil",
        ] {
            assert!(matches!(href("index.md", bad), Target::Drop(_)), "{bad}");
        }
        assert!(matches!(
            href("index.md", "../../secret.png"),
            Target::Drop(_)
        ));
        assert_eq!(
            href("index.md", "https://example.com/"),
            Target::Keep {
                href: "https://example.com/".into(),
                external: true
            }
        );
    }
}
