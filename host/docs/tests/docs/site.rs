//! Whole sites: links, snippets, mkdocs.yml, nav, assets, reading from disk.

use callboard_docs::{Files, Limits, NavItem, Problem, build, content_type, sample_site};

use super::{page, site, squash};

fn problem(file: &str, line: u32, message: &str) -> Problem {
    Problem {
        file: file.into(),
        line: Some(line),
        message: message.into(),
    }
}

#[test]
fn links_are_rewritten_directory_style() {
    let files = site(&[
        ("index.md", "# Home\n"),
        ("guide/README.md", "# Guide\n"),
        (
            "guide/setup.md",
            "[home](../index.md) [guide](README.md) [self](#top) [other](../other.md#x)\n\n![logo](../img/logo.png) [dir](../guide/) [file](../files/a%20b.pdf)\n",
        ),
        (
            "other.md",
            "[setup](guide/setup.md#install) [guide](guide/) ![logo](img/logo.png) [ext](https://example.com) [mail](mailto:a@example.com) [abs](/catalog)\n",
        ),
        ("img/logo.png", "png"),
        ("files/a b.pdf", "pdf"),
    ]);
    let out = build(&files, None);
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    assert_eq!(page(&out, "guide/setup.md").url, "guide/setup/");
    assert_eq!(page(&out, "guide/README.md").url, "guide/");
    assert_eq!(
        squash(&page(&out, "guide/setup.md").html),
        "<p><a href=\"../../\">home</a> <a href=\"../\">guide</a> <a href=\"#top\">self</a> <a href=\"../../other/#x\">other</a></p>\
         <p><img src=\"../../img/logo.png\" alt=\"logo\"> <a href=\"../\">dir</a> <a href=\"../../files/a%20b.pdf\">file</a></p>"
    );
    assert_eq!(
        squash(&page(&out, "other.md").html),
        "<p><a href=\"../guide/setup/#install\">setup</a> <a href=\"../guide/\">guide</a> <img src=\"../img/logo.png\" alt=\"logo\"> \
         <a href=\"https://example.com\" rel=\"noopener noreferrer\">ext</a> <a href=\"mailto:a@example.com\">mail</a> <a href=\"/catalog\">abs</a></p>"
    );
}

#[test]
fn broken_links_are_marked_and_reported_with_their_line() {
    let out = build(
        &site(&[(
            "index.md",
            "# Home\n\nFine.\n\n!!! note\n    See [gone](missing.md#x).\n\n![pic](nope.png)\n",
        )]),
        None,
    );
    let index = page(&out, "index.md");
    assert!(
        index
            .html
            .contains("<a href=\"missing/#x\" class=\"broken\">gone</a>"),
        "{}",
        index.html
    );
    assert_eq!(
        index.problems,
        [
            problem(
                "docs/index.md",
                6,
                "link target \"missing.md#x\" does not exist"
            ),
            problem(
                "docs/index.md",
                8,
                "image target \"nope.png\" does not exist"
            ),
        ]
    );
    assert_eq!(out.problems, index.problems);
}

#[test]
fn snippets_are_included_and_bounded() {
    let mut files = site(&[
        (
            "index.md",
            "Start\n\n--8<-- \"parts/a.md\"\n\n```python\n--8<-- \"code.py\"\n```\n\n--8<-- \"nope.md\"\n;--8<-- \"escaped.md\"\n--8<-- \"loop.md\"\n",
        ),
        ("parts/a.md", "Included **A** from docs.\n"),
        ("loop.md", "x\n--8<-- \"loop.md\"\n"),
    ]);
    files.insert("code.py", "print('root')\n").unwrap();
    let out = build(&files, None);
    let index = page(&out, "index.md");
    assert!(
        index
            .html
            .contains("<p>Included <strong>A</strong> from docs.</p>"),
        "{}",
        index.html
    );
    assert!(index.html.contains("print"), "{}", index.html);
    assert!(
        index.html.contains("--8&lt;-- \"escaped.md\""),
        "{}",
        index.html
    );
    let messages: Vec<(Option<u32>, &str)> = index
        .problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        [
            (Some(9), "snippet \"nope.md\" not found"),
            (
                Some(11),
                "snippet \"loop.md\" not included: snippets nest deeper than 4"
            ),
        ]
    );
}

#[test]
fn mkdocs_yml_metadata_nav_and_problems() {
    let mut files = site(&[
        ("index.md", "# Welcome\n"),
        ("guide/setup.md", "# Set up\n"),
        ("guide/other.md", "no heading\n"),
    ]);
    files
        .insert(
            "mkdocs.yml",
            "site_name: Demo\nsite_description: Docs\nrepo_url: https://example.com/r\nedit_uri: edit/main/docs/\n\
             nav:\n  - Start: index.md\n  - Guide:\n      - guide/setup.md\n      - Gone: guide/gone.md\n      - Site: https://example.com/\n\
             markdown_extensions:\n  - pymdownx.emoji:\n      emoji_index: !!python/name:material.extensions.emoji.twemoji\n  - not.real\nplugins:\n  - techdocs-core\n",
        )
        .unwrap();
    let out = build(&files, None);
    assert_eq!(out.site.name, "Demo");
    assert_eq!(out.site.description.as_deref(), Some("Docs"));
    assert_eq!(out.site.repo_url.as_deref(), Some("https://example.com/r"));
    assert_eq!(out.site.edit_uri.as_deref(), Some("edit/main/docs/"));
    assert_eq!(out.site.docs_dir, "docs");
    assert_eq!(
        out.site.nav,
        [
            NavItem::Page {
                title: "Start".into(),
                source: "docs/index.md".into(),
                url: String::new()
            },
            NavItem::Section {
                title: "Guide".into(),
                children: vec![
                    NavItem::Page {
                        title: "Set up".into(),
                        source: "docs/guide/setup.md".into(),
                        url: "guide/setup/".into()
                    },
                    NavItem::Link {
                        title: "Site".into(),
                        url: "https://example.com/".into()
                    },
                ],
            },
        ]
    );
    assert_eq!(
        out.problems,
        [
            problem("mkdocs.yml", 14, "unknown extension not.real, ignored"),
            problem(
                "mkdocs.yml",
                9,
                "nav entry \"guide/gone.md\" names a page that does not exist in docs"
            ),
        ]
    );
    assert_eq!(page(&out, "index.md").title, "Start");
    assert_eq!(page(&out, "guide/other.md").title, "Other");
}

#[test]
fn nav_is_derived_without_one() {
    let out = build(
        &site(&[
            ("b.md", "# Bee\n"),
            ("index.md", "x\n"),
            ("a.md", "x\n"),
            ("my-folder/z.md", "x\n"),
            ("my-folder/index.md", "x\n"),
            ("c/d.md", "x\n"),
        ]),
        None,
    );
    let titles: Vec<String> = out
        .site
        .nav
        .iter()
        .map(|n| match n {
            NavItem::Page { title, .. }
            | NavItem::Section { title, .. }
            | NavItem::Link { title, .. } => title.clone(),
        })
        .collect();
    assert_eq!(titles, ["Home", "A", "Bee", "C", "My folder"]);
    let NavItem::Section { children, .. } = &out.site.nav[4] else {
        panic!()
    };
    assert!(matches!(&children[0], NavItem::Page { url, .. } if url == "my-folder/"));
}

#[test]
fn assets_have_safe_content_types() {
    let out = build(
        &site(&[
            ("index.md", "x\n"),
            ("img/a.PNG", "p"),
            ("raw.html", "<script>"),
            ("data.bin", "b"),
            ("pic.svg", "<svg/>"),
        ]),
        None,
    );
    let types: Vec<(&str, &str)> = out
        .assets
        .iter()
        .map(|a| (a.url.as_str(), a.content_type.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("data.bin", "application/octet-stream"),
            ("img/a.PNG", "image/png"),
            ("pic.svg", "image/svg+xml"),
            ("raw.html", "text/plain")
        ]
    );
    assert_eq!(out.assets[0].source, "docs/data.bin");
    assert_eq!(out.assets[0].size, 1);
    assert_eq!(content_type("x.jpeg"), "image/jpeg");
    assert_eq!(content_type("x.js"), "text/plain");
    assert_eq!(content_type("x.yml"), "text/plain");
    assert_eq!(content_type("x.csv"), "text/csv");
    assert_eq!(content_type("Makefile"), "application/octet-stream");
}

#[test]
fn reads_a_directory_within_limits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs/sub")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("mkdocs.yml"), "site_name: Disk\n").unwrap();
    std::fs::write(root.join("docs/index.md"), "# Disk\n").unwrap();
    std::fs::write(root.join("docs/sub/page.md"), "x\n").unwrap();
    std::fs::write(root.join(".git/config"), "secret").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.md"), "secret").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outside.path().join("secret.md"), root.join("docs/leak.md"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("docs/index.md"), root.join("docs/alias.md")).unwrap();
    }
    let files = Files::from_dir(root, Limits::default()).unwrap();
    let paths: Vec<&str> = files.iter().map(|(p, _)| p).collect();
    #[cfg(unix)]
    assert_eq!(
        paths,
        [
            "docs/alias.md",
            "docs/index.md",
            "docs/sub/page.md",
            "mkdocs.yml"
        ]
    );
    let err = Files::from_dir(
        root,
        Limits {
            max_files: 2,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("too many files"), "{err}");
    let err = Files::from_dir(
        root,
        Limits {
            max_file_bytes: 10,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("larger than the limit of 10"),
        "{err}"
    );
    let err = Files::from_dir(
        root,
        Limits {
            max_total_bytes: 20,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("the site is larger than"), "{err}");
    assert!(Files::new().insert("../x", "y").is_err());
    assert!(Files::new().insert("/etc/passwd", "y").is_err());
}

#[test]
fn sample_site_builds_without_problems() {
    let files = sample_site(200);
    let out = build(&files, None);
    assert_eq!(out.pages.len(), 200);
    assert!(
        out.problems.is_empty(),
        "{:?}",
        &out.problems[..out.problems.len().min(5)]
    );
    let html = &out
        .pages
        .iter()
        .find(|p| p.source == "docs/section-1/page-60.md")
        .unwrap()
        .html;
    for needle in [
        "admonition note",
        "<details class=\"tip\">",
        "tabbed-set",
        "hl-python",
        "<mark>",
        "<ins>",
        "<del>",
        "<sub>2</sub>",
        "🚀",
        "<abbr",
        "footnote-definition",
        "<table>",
        "type=\"checkbox\"",
        "<dl>",
        "Mermaid diagram",
        "Shared notice",
        "../../img/diagram.png",
        "../page-61/#usage",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
}
