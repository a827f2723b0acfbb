//! `mkdocs.yml`: the few keys TechDocs uses, read leniently with line numbers.
//!
//! Python-specific tags (`!!python/name:...`, `!!python/object/apply:...`,
//! `!ENV`) need no pre-processing: serde-saphyr keeps tags it does not know
//! out of the way of the value (`reject_unsupported_tags` is off by
//! default), and the values they carry are only ever read here as
//! `IgnoredAny` (extension options) or plain strings. A test holds this.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::model::Problem;

/// Extensions this renderer implements, under every name MkDocs accepts for
/// them. `mkdocs-techdocs-core` turns all of them on whatever the file says,
/// so naming one only matters for telling it apart from an unknown one.
const KNOWN_EXTENSIONS: &[&str] = &[
    "abbr",
    "admonition",
    "attr_list",
    "codehilite",
    "def_list",
    "fenced_code",
    "footnotes",
    "md_in_html",
    "meta",
    "tables",
    "toc",
    "extra",
    "sane_lists",
    "pymdownx.betterem",
    "pymdownx.caret",
    "pymdownx.details",
    "pymdownx.emoji",
    "pymdownx.highlight",
    "pymdownx.inlinehilite",
    "pymdownx.magiclink",
    "pymdownx.mark",
    "pymdownx.smartsymbols",
    "pymdownx.snippets",
    "pymdownx.superfences",
    "pymdownx.tabbed",
    "pymdownx.tasklist",
    "pymdownx.tilde",
    "markdown_inline_graphviz",
    "plantuml_markdown",
];

/// The parsed configuration; missing keys have their MkDocs defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    pub site_name: Option<String>,
    pub site_description: Option<String>,
    pub repo_url: Option<String>,
    pub edit_uri: Option<String>,
    pub docs_dir: String,
    pub nav: Option<Vec<NavSpec>>,
    /// The canonical names of the extensions that were named, sorted; part
    /// of every page's hash.
    pub extensions: Vec<String>,
}

/// A nav entry as written, with its line in mkdocs.yml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NavSpec {
    /// `- page.md` or `- Title: page.md`, or an external `- Title: https://...`.
    Target {
        title: Option<String>,
        target: String,
        line: u32,
    },
    /// `- Title: [ ... ]`.
    Section {
        title: String,
        children: Vec<NavSpec>,
    },
}

#[derive(Deserialize)]
struct Raw {
    site_name: Option<String>,
    site_description: Option<String>,
    repo_url: Option<String>,
    edit_uri: Option<String>,
    docs_dir: Option<Spanned<String>>,
    nav: Option<Vec<Spanned<RawNav>>>,
    markdown_extensions: Option<Vec<Spanned<RawExtension>>>,
}

enum RawNav {
    Bare(String),
    Titled(String, RawNavValue),
}

enum RawNavValue {
    Target(String),
    Children(Vec<Spanned<RawNav>>),
}

struct RawExtension(String);

/// Reads `mkdocs.yml`. Never fails: a file that does not parse is a problem
/// and the defaults apply.
pub(crate) fn parse(file: &str, text: &str, problems: &mut Vec<Problem>) -> Config {
    let mut config = Config {
        docs_dir: "docs".to_owned(),
        ..Config::default()
    };
    let raw: Raw = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let line = err.location().map(|l| l.line() as u32).filter(|l| *l > 0);
            problems.push(Problem::new(file, line, format!("cannot read: {err}")));
            return config;
        }
    };
    config.site_name = raw.site_name;
    config.site_description = raw.site_description;
    config.repo_url = raw.repo_url;
    config.edit_uri = raw.edit_uri;
    if let Some(dir) = raw.docs_dir {
        let trimmed = dir.value.trim_end_matches('/');
        match crate::files::normalise(trimmed) {
            Some(dir) => config.docs_dir = dir,
            None => problems.push(Problem::new(
                file,
                line_of(&dir),
                format!(
                    "docs_dir {:?} must be a folder inside the site; using docs",
                    dir.value
                ),
            )),
        }
    }
    config.nav = raw
        .nav
        .map(|items| items.into_iter().map(nav_spec).collect());
    for ext in raw.markdown_extensions.unwrap_or_default() {
        let name = ext.value.0.as_str();
        let canonical = name.strip_prefix("markdown.extensions.").unwrap_or(name);
        if KNOWN_EXTENSIONS.contains(&canonical) {
            config.extensions.push(canonical.to_owned());
        } else {
            problems.push(Problem::new(
                file,
                line_of(&ext),
                format!("unknown extension {name}, ignored"),
            ));
        }
    }
    config.extensions.sort();
    config.extensions.dedup();
    config
}

fn line_of<T>(spanned: &Spanned<T>) -> Option<u32> {
    Some(spanned.referenced.line() as u32).filter(|l| *l > 0)
}

fn nav_spec(item: Spanned<RawNav>) -> NavSpec {
    let line = line_of(&item).unwrap_or(0);
    match item.value {
        RawNav::Bare(target) => NavSpec::Target {
            title: None,
            target,
            line,
        },
        RawNav::Titled(title, RawNavValue::Target(target)) => NavSpec::Target {
            title: Some(title),
            target,
            line,
        },
        RawNav::Titled(title, RawNavValue::Children(children)) => NavSpec::Section {
            title,
            children: children.into_iter().map(nav_spec).collect(),
        },
    }
}

impl<'de> Deserialize<'de> for RawNav {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNav;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a page path or a `Title: page-or-list` entry")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNav, E> {
                Ok(RawNav::Bare(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNav, A::Error> {
                let Some(title) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("an empty nav entry"));
                };
                let value = map.next_value::<RawNavValue>()?;
                // MkDocs takes one key per entry; more are ignored, as there.
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawNav::Titled(title, value))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawNavValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNavValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a page path, a URL or a list of nav entries")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNavValue, E> {
                Ok(RawNavValue::Target(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNavValue, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<RawNav>>()? {
                    out.push(item);
                }
                Ok(RawNavValue::Children(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawExtension {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawExtension;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an extension name, or a name with options")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawExtension, E> {
                Ok(RawExtension(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawExtension, A::Error> {
                let Some(name) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("an empty extension entry"));
                };
                // Options are Python-side settings (often tagged with
                // `!!python/name:`); nothing here reads them.
                map.next_value::<IgnoredAny>()?;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawExtension(name))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YML: &str = r#"site_name: Demo
site_description: "A demo"
repo_url: https://example.com/repo
edit_uri: edit/main/docs/
nav:
  - Home: index.md
  - guide.md
  - Section:
      - One: sec/one.md
      - External: https://example.com/
markdown_extensions:
  - admonition
  - toc:
      permalink: true
      slugify: !!python/object/apply:pymdownx.slugs.slugify
        kwds:
          case: lower
  - pymdownx.emoji:
      emoji_index: !!python/name:material.extensions.emoji.twemoji
      emoji_generator: !!python/name:material.extensions.emoji.to_svg
  - pymdownx.superfences:
      custom_fences:
        - name: mermaid
          class: mermaid
          format: !!python/name:pymdownx.superfences.fence_code_format
  - markdown.extensions.def_list
  - made.up
plugins:
  - techdocs-core
"#;

    #[test]
    fn python_tags_are_ignored_and_lines_kept() {
        let mut problems = Vec::new();
        let config = parse("mkdocs.yml", YML, &mut problems);
        assert_eq!(config.site_name.as_deref(), Some("Demo"));
        assert_eq!(config.site_description.as_deref(), Some("A demo"));
        assert_eq!(config.edit_uri.as_deref(), Some("edit/main/docs/"));
        assert_eq!(config.docs_dir, "docs");
        assert_eq!(
            config.extensions,
            [
                "admonition",
                "def_list",
                "pymdownx.emoji",
                "pymdownx.superfences",
                "toc"
            ]
        );
        assert_eq!(
            problems,
            [Problem::new(
                "mkdocs.yml",
                Some(27),
                "unknown extension made.up, ignored"
            )]
        );
        let nav = config.nav.unwrap();
        assert_eq!(
            nav[0],
            NavSpec::Target {
                title: Some("Home".into()),
                target: "index.md".into(),
                line: 6
            }
        );
        assert_eq!(
            nav[1],
            NavSpec::Target {
                title: None,
                target: "guide.md".into(),
                line: 7
            }
        );
        let NavSpec::Section { title, children } = &nav[2] else {
            panic!("not a section: {:?}", nav[2]);
        };
        assert_eq!(title, "Section");
        assert_eq!(
            children[1],
            NavSpec::Target {
                title: Some("External".into()),
                target: "https://example.com/".into(),
                line: 10
            }
        );
    }

    #[test]
    fn broken_yaml_is_a_problem_not_a_failure() {
        let mut problems = Vec::new();
        let config = parse("mkdocs.yml", "site_name: [unclosed\nnav: {", &mut problems);
        assert_eq!(config.docs_dir, "docs");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].file, "mkdocs.yml");
    }

    #[test]
    fn docs_dir_may_not_leave_the_site() {
        let mut problems = Vec::new();
        let config = parse("mkdocs.yml", "docs_dir: ../../etc\n", &mut problems);
        assert_eq!(config.docs_dir, "docs");
        assert_eq!(problems[0].line, Some(1));
        let config = parse("mkdocs.yml", "docs_dir: site-docs/\n", &mut problems);
        assert_eq!(config.docs_dir, "site-docs");
    }
}
