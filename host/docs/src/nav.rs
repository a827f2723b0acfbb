//! The navigation tree: from `nav` in mkdocs.yml, or derived from the files
//! the way MkDocs does without one.

use std::collections::{BTreeMap, HashMap};

use crate::config::NavSpec;
use crate::links::{self, page_url};
use crate::model::{NavItem, Problem};

/// Deepest nav nesting followed.
const MAX_NAV_DEPTH: usize = 32;

/// What the nav needs to know about the site's pages.
pub(crate) struct PageTitles<'a> {
    /// Docs-relative page path to the title it has without a nav title.
    pub titles: &'a BTreeMap<String, String>,
    pub docs_dir: &'a str,
}

/// Builds the nav from the configured entries. Returns the tree and the
/// titles the nav gives pages (first mention wins).
pub(crate) fn from_config(
    specs: &[NavSpec],
    pages: &PageTitles<'_>,
    config_file: &str,
    problems: &mut Vec<Problem>,
) -> (Vec<NavItem>, HashMap<String, String>) {
    let mut titles = HashMap::new();
    let nav = items(specs, pages, config_file, problems, &mut titles, 0);
    (nav, titles)
}

fn items(
    specs: &[NavSpec],
    pages: &PageTitles<'_>,
    config_file: &str,
    problems: &mut Vec<Problem>,
    titles: &mut HashMap<String, String>,
    depth: usize,
) -> Vec<NavItem> {
    let mut out = Vec::new();
    for spec in specs {
        match spec {
            NavSpec::Section { title, children } => {
                if depth >= MAX_NAV_DEPTH {
                    problems.push(Problem::new(
                        config_file,
                        None,
                        format!("nav section {title:?} nests deeper than {MAX_NAV_DEPTH} levels; ignored"),
                    ));
                    continue;
                }
                out.push(NavItem::Section {
                    title: title.clone(),
                    children: items(children, pages, config_file, problems, titles, depth + 1),
                });
            }
            NavSpec::Target {
                title,
                target,
                line,
            } => {
                let line = Some(*line).filter(|l| *l > 0);
                let lower = target.to_ascii_lowercase();
                if lower.starts_with("http://") || lower.starts_with("https://") {
                    out.push(NavItem::Link {
                        title: title.clone().unwrap_or_else(|| target.clone()),
                        url: target.clone(),
                    });
                    continue;
                }
                let key = links::join("", target)
                    .filter(|_| !target.contains(':') && !target.starts_with('/'));
                let Some(key) = key else {
                    problems.push(Problem::new(
                        config_file,
                        line,
                        format!("nav entry {target:?} is neither a page in {} nor an http(s) link; ignored", pages.docs_dir),
                    ));
                    continue;
                };
                let Some(page_title) = pages.titles.get(&key) else {
                    problems.push(Problem::new(
                        config_file,
                        line,
                        format!(
                            "nav entry {target:?} names a page that does not exist in {}",
                            pages.docs_dir
                        ),
                    ));
                    continue;
                };
                let title = title.clone().unwrap_or_else(|| page_title.clone());
                titles.entry(key.clone()).or_insert_with(|| title.clone());
                out.push(NavItem::Page {
                    title,
                    source: format!("{}/{key}", pages.docs_dir),
                    url: page_url(&key),
                });
            }
        }
    }
    out
}

/// MkDocs' nav without `nav`: the pages of a folder first (its index
/// first, then by name), then each sub-folder as a section, by name.
pub(crate) fn derive(pages: &PageTitles<'_>) -> Vec<NavItem> {
    #[derive(Default)]
    struct Dir<'a> {
        pages: Vec<&'a str>,
        dirs: BTreeMap<&'a str, Dir<'a>>,
    }
    let mut root = Dir::default();
    for path in pages.titles.keys() {
        let mut dir = &mut root;
        let mut parts: Vec<&str> = path.split('/').collect();
        parts.pop();
        for part in parts.into_iter().take(MAX_NAV_DEPTH) {
            dir = dir.dirs.entry(part).or_default();
        }
        dir.pages.push(path);
    }
    fn build(dir: &Dir<'_>, pages: &PageTitles<'_>) -> Vec<NavItem> {
        let mut sorted = dir.pages.clone();
        sorted.sort_by_key(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            let is_index = name == "index.md" || name == "README.md";
            (!is_index, name.to_owned())
        });
        let mut out: Vec<NavItem> = sorted
            .into_iter()
            .map(|p| NavItem::Page {
                title: pages.titles.get(p).cloned().unwrap_or_default(),
                source: format!("{}/{p}", pages.docs_dir),
                url: page_url(p),
            })
            .collect();
        for (name, sub) in &dir.dirs {
            out.push(NavItem::Section {
                title: name_to_title(name),
                children: build(sub, pages),
            });
        }
        out
    }
    build(&root, pages)
}

/// MkDocs' `dirname_to_title`: `-` and `_` to spaces, capitalised when all
/// lower-case.
pub(crate) fn name_to_title(name: &str) -> String {
    let title = name.replace(['-', '_'], " ");
    if title.to_lowercase() != title {
        return title;
    }
    let mut chars = title.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
