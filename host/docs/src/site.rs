//! A whole build: configuration, nav, which pages changed, rendering them
//! in parallel, and the manifest for next time.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::blocks::{self, Expanded};
use crate::files::Files;
use crate::links::{SiteIndex, is_page, page_url};
use crate::model::{Asset, Build, Manifest, ManifestEntry, Page, Problem, Site};
use crate::render::{self, PageContext, Source};
use crate::{config, nav, sanitize};

/// Changes whenever the renderer's output for the same input may change,
/// so a new version re-renders every page once.
const RENDERER_VERSION: &str = "callboard-docs/1";

/// A page after the cheap pass every build makes over every page.
struct Prepared<'a> {
    source: String,
    docs_path: String,
    url: String,
    expanded: Expanded<'a>,
    /// Front-matter `title`, else the first `h1`.
    own_title: Option<String>,
    title: String,
    content_hash: [u8; 32],
    /// Hash of everything but the link targets' state.
    input_hash: String,
}

/// Builds the site in `files`. With `previous` (the last build's manifest),
/// pages whose hash is unchanged are not rendered again. Never fails:
/// whatever is wrong is a [`Problem`] and the rest is still built.
pub fn build(files: &Files, previous: Option<&Manifest>) -> Build {
    let mut problems = Vec::new();
    let (config_file, config) = read_config(files, &mut problems);
    if config.site_name.is_none() {
        problems.push(Problem::new(&config_file, None, "site_name is missing"));
    }
    let docs_dir = config.docs_dir.clone();
    let prefix = format!("{docs_dir}/");

    let mut page_paths = Vec::new();
    let mut asset_paths = Vec::new();
    for (path, _) in files.iter() {
        let Some(rel) = path.strip_prefix(&prefix) else {
            continue;
        };
        if rel.split('/').any(|part| part.starts_with('.')) {
            continue;
        }
        if is_page(rel) {
            let readme_shadowed = rel.rsplit_once('/').map_or(rel, |(_, n)| n) == "README.md"
                && files.contains(&format!(
                    "{prefix}{}index.md",
                    &rel[..rel.len() - "README.md".len()]
                ));
            if readme_shadowed {
                problems.push(Problem::new(
                    path,
                    None,
                    "README.md ignored: index.md in the same folder is the folder's page",
                ));
                continue;
            }
            page_paths.push(rel.to_owned());
        } else {
            asset_paths.push(rel.to_owned());
        }
    }
    if page_paths.is_empty() {
        problems.push(Problem::new(
            &config_file,
            None,
            format!("no Markdown pages under {docs_dir}/"),
        ));
    }

    let fingerprint = format!(
        "{RENDERER_VERSION}\0{docs_dir}\0{}",
        config.extensions.join(",")
    );
    let mut prepared: Vec<Prepared<'_>> = page_paths
        .par_iter()
        .filter_map(|rel| {
            let source = format!("{prefix}{rel}");
            let text = std::str::from_utf8(files.get(&source)?).ok()?;
            let expanded = blocks::expand(files, &docs_dir, text);
            let own_title = scan_title(&expanded.lines);
            Some(Prepared {
                content_hash: content_hash(&source, &expanded),
                url: page_url(rel),
                docs_path: rel.clone(),
                source,
                expanded,
                own_title,
                title: String::new(),
                input_hash: String::new(),
            })
        })
        .collect();
    if prepared.len() < page_paths.len() {
        let read: HashSet<&str> = prepared.iter().map(|p| p.docs_path.as_str()).collect();
        for rel in page_paths.iter().filter(|rel| !read.contains(rel.as_str())) {
            problems.push(Problem::new(
                &format!("{prefix}{rel}"),
                None,
                "not UTF-8 text; page skipped",
            ));
        }
    }

    let default_titles: BTreeMap<String, String> = prepared
        .iter()
        .map(|p| {
            let title = p
                .own_title
                .clone()
                .unwrap_or_else(|| stem_title(&p.docs_path));
            (p.docs_path.clone(), title)
        })
        .collect();
    let titles = nav::PageTitles {
        titles: &default_titles,
        docs_dir: &docs_dir,
    };
    let (nav, nav_titles) = match &config.nav {
        Some(specs) => nav::from_config(specs, &titles, &config_file, &mut problems),
        None => (nav::derive(&titles), HashMap::new()),
    };
    for page in &mut prepared {
        page.title = nav_titles
            .get(&page.docs_path)
            .or_else(|| default_titles.get(&page.docs_path))
            .cloned()
            .unwrap_or_default();
        page.input_hash = input_hash(&fingerprint, page);
    }

    let index = SiteIndex::new(
        prepared
            .iter()
            .map(|p| (p.docs_path.clone(), p.url.clone()))
            .collect(),
        asset_paths.iter().cloned().collect::<HashSet<_>>(),
    );

    let mut manifest = Manifest::default();
    let mut unchanged = Vec::new();
    let mut to_render = Vec::new();
    for page in prepared {
        let old = previous.and_then(|m| m.pages.get(&page.source));
        if let Some(old) = old
            && old.url == page.url
            && final_hash(&page.input_hash, &old.links, &index) == old.hash
        {
            unchanged.push(page.source.clone());
            manifest.pages.insert(page.source, old.clone());
        } else {
            to_render.push(page);
        }
    }

    let rendered: Vec<(Page, Vec<String>)> = to_render
        .into_par_iter()
        .map(|page| render_page(page, &index))
        .collect();
    let mut pages = Vec::with_capacity(rendered.len());
    for (page, links) in rendered {
        let entry = ManifestEntry {
            url: page.url.clone(),
            hash: page.hash.clone(),
            links,
            problems: page.problems.clone(),
        };
        manifest.pages.insert(page.source.clone(), entry);
        pages.push(page);
    }

    let removed = previous
        .map(|m| {
            m.pages
                .keys()
                .filter(|k| !manifest.pages.contains_key(*k))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for entry in manifest.pages.values() {
        problems.extend(entry.problems.iter().cloned());
    }

    let assets = asset_paths
        .par_iter()
        .filter_map(|rel| {
            let source = format!("{prefix}{rel}");
            let bytes = files.get(&source)?;
            Some(Asset {
                url: rel.clone(),
                hash: hex::encode(Sha256::digest(bytes)),
                content_type: crate::content_type(rel).to_owned(),
                size: bytes.len() as u64,
                source,
            })
        })
        .collect();

    Build {
        site: Site {
            name: config
                .site_name
                .unwrap_or_else(|| "Documentation".to_owned()),
            description: config.site_description,
            repo_url: config.repo_url,
            edit_uri: config.edit_uri,
            docs_dir,
            nav,
        },
        pages,
        unchanged,
        removed,
        manifest,
        assets,
        problems,
    }
}

fn read_config(files: &Files, problems: &mut Vec<Problem>) -> (String, config::Config) {
    let Some(name) = ["mkdocs.yml", "mkdocs.yaml"]
        .into_iter()
        .find(|n| files.contains(n))
    else {
        problems.push(Problem::new(
            "mkdocs.yml",
            None,
            "mkdocs.yml is missing; using defaults",
        ));
        return (
            "mkdocs.yml".to_owned(),
            config::parse("mkdocs.yml", "{}", problems),
        );
    };
    let text = files
        .get(name)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    (name.to_owned(), config::parse(name, &text, problems))
}

/// Hash of the page's text with snippets included: the expensive part,
/// done in the parallel pass.
fn content_hash(source: &str, expanded: &Expanded<'_>) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(source.as_bytes());
    hash.update([0]);
    for (line, no) in &expanded.lines {
        hash.update(line.as_bytes());
        hash.update(no.to_le_bytes());
    }
    for (path, found) in &expanded.includes {
        hash.update(path.as_bytes());
        hash.update([u8::from(*found)]);
    }
    hash.finalize().into()
}

/// Everything but the link targets' state: the content, the title (from
/// the nav, known only after the parallel pass) and the configuration.
fn input_hash(fingerprint: &str, page: &Prepared<'_>) -> String {
    let mut hash = Sha256::new();
    for part in [fingerprint, &page.title] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.update(page.content_hash);
    hex::encode(hash.finalize())
}

/// The page hash: its inputs and the current state of every link target.
fn final_hash(input_hash: &str, links: &[String], index: &SiteIndex) -> String {
    let mut hash = Sha256::new();
    hash.update(input_hash.as_bytes());
    for key in links {
        hash.update([0]);
        hash.update(index.state(key).as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Renders one page; also returns the link keys it checked, for the manifest.
fn render_page(page: Prepared<'_>, index: &SiteIndex) -> (Page, Vec<String>) {
    let Prepared {
        source,
        docs_path,
        url,
        expanded,
        title,
        input_hash,
        ..
    } = page;
    let mut line_problems = expanded.problems;
    let blocks = blocks::containers(expanded.lines);
    line_problems.extend(blocks.problems);
    let mut markdown = String::new();
    let mut line_starts = Vec::with_capacity(blocks.lines.len());
    let mut line_numbers = Vec::with_capacity(blocks.lines.len());
    for (text, no) in &blocks.lines {
        line_starts.push(markdown.len());
        line_numbers.push(*no);
        markdown.push_str(text);
        markdown.push('\n');
    }
    let cx = PageContext {
        docs_path: &docs_path,
        url: &url,
        title: &title,
        index,
        abbreviations: &blocks.abbreviations,
    };
    let rendered = render::render(
        &Source {
            markdown: &markdown,
            line_starts: &line_starts,
            line_numbers: &line_numbers,
        },
        &cx,
    );
    line_problems.extend(rendered.problems);
    line_problems.sort_by_key(|(line, _)| *line);
    let problems = line_problems
        .into_iter()
        .map(|(line, message)| Problem::new(&source, Some(line), message))
        .collect();
    let hash = final_hash(&input_hash, &rendered.links, index);
    let page = Page {
        html: sanitize::clean(&rendered.html),
        toc: rendered.toc,
        sections: rendered.sections,
        hash,
        problems,
        source,
        url,
        title,
    };
    (page, rendered.links)
}

/// Front-matter `title:`, else the first `# h1` (ATX or setext) outside
/// code fences: what MkDocs would call the page without a nav title.
fn scan_title(lines: &[blocks::Line<'_>]) -> Option<String> {
    let mut iter = lines.iter().map(|(t, _)| t.as_ref()).peekable();
    if iter.peek() == Some(&"---") {
        iter.next();
        for line in iter.by_ref() {
            if line == "---" || line == "..." {
                break;
            }
            if let Some(title) = line.strip_prefix("title:") {
                let title = title.trim().trim_matches(['"', '\'']).trim();
                if !title.is_empty() {
                    return Some(title.to_owned());
                }
            }
        }
    }
    let mut fence: Option<&str> = None;
    let mut previous: Option<&str> = None;
    for line in iter {
        let trimmed = line.trim_start();
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            previous = None;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let rest = rest.split(" {").next().unwrap_or(rest);
            let title = rest
                .trim()
                .trim_end_matches('#')
                .trim()
                .replace(['*', '`'], "");
            if !title.is_empty() {
                return Some(title);
            }
        }
        if let Some(prev) = previous
            && !line.is_empty()
            && line.trim_end().bytes().all(|b| b == b'=')
            && !prev.trim().is_empty()
        {
            return Some(prev.trim().replace(['*', '`'], ""));
        }
        previous = Some(line);
    }
    None
}

/// The title MkDocs gives a page with no other: `Home` for the site's
/// index, else the file name made readable.
fn stem_title(docs_path: &str) -> String {
    if docs_path == "index.md" || docs_path == "README.md" {
        return "Home".to_owned();
    }
    let name = docs_path.rsplit('/').next().unwrap_or(docs_path);
    let stem = name
        .strip_suffix(".md")
        .or_else(|| name.strip_suffix(".markdown"))
        .unwrap_or(name);
    nav::name_to_title(stem)
}
