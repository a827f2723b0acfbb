//! Rebuilds render only what changed.

use super::site;
use callboard_docs::{Manifest, build};

#[test]
fn only_the_changed_page_is_rendered() {
    let mut files = site(&[
        ("index.md", "# Home\n[a](a.md)\n"),
        ("a.md", "# A\n"),
        ("b.md", "# B\n--8<-- \"part.md\"\n"),
        ("part.md", "part one\n"),
    ]);
    let first = build(&files, None);
    assert_eq!(first.pages.len(), 4);
    assert!(first.unchanged.is_empty());

    let same = build(&files, Some(&first.manifest));
    assert!(same.pages.is_empty());
    assert_eq!(same.unchanged.len(), 4);
    assert_eq!(same.manifest, first.manifest);

    files.insert("docs/a.md", "# A changed\n").unwrap();
    let second = build(&files, Some(&first.manifest));
    let rendered: Vec<&str> = second.pages.iter().map(|p| p.source.as_str()).collect();
    assert_eq!(rendered, ["docs/a.md"]);
    assert_eq!(second.unchanged.len(), 3);
    assert_ne!(
        second.manifest.pages["docs/a.md"].hash,
        first.manifest.pages["docs/a.md"].hash
    );

    // A snippet is part of the pages that include it.
    files.insert("docs/part.md", "part two\n").unwrap();
    let third = build(&files, Some(&second.manifest));
    let mut rendered: Vec<&str> = third.pages.iter().map(|p| p.source.as_str()).collect();
    rendered.sort();
    assert_eq!(rendered, ["docs/b.md", "docs/part.md"]);
}

#[test]
fn adding_and_removing_files_rechecks_links() {
    let mut files = site(&[
        ("index.md", "[new](new.md) ![i](img.png)\n"),
        ("other.md", "# Other\n"),
    ]);
    let first = build(&files, None);
    assert_eq!(first.problems.len(), 2, "{:?}", first.problems);

    files.insert("docs/new.md", "# New\n").unwrap();
    let second = build(&files, Some(&first.manifest));
    let mut rendered: Vec<&str> = second.pages.iter().map(|p| p.source.as_str()).collect();
    rendered.sort();
    assert_eq!(rendered, ["docs/index.md", "docs/new.md"]);
    assert_eq!(second.unchanged, ["docs/other.md"]);
    assert_eq!(second.problems.len(), 1, "{:?}", second.problems);
    assert!(!second.pages[0].html.contains("broken") || second.pages[0].source != "docs/index.md");

    files.insert("docs/img.png", "png").unwrap();
    let third = build(&files, Some(&second.manifest));
    let rendered: Vec<&str> = third.pages.iter().map(|p| p.source.as_str()).collect();
    assert_eq!(rendered, ["docs/index.md"]);
    assert!(third.problems.is_empty(), "{:?}", third.problems);

    files.remove("docs/new.md");
    let fourth = build(&files, Some(&third.manifest));
    let rendered: Vec<&str> = fourth.pages.iter().map(|p| p.source.as_str()).collect();
    assert_eq!(rendered, ["docs/index.md"]);
    assert_eq!(fourth.removed, ["docs/new.md"]);
    assert!(
        fourth.pages[0].html.contains("class=\"broken\""),
        "{}",
        fourth.pages[0].html
    );
    // Problems of unchanged pages are still reported, from the manifest.
    let fifth = build(&files, Some(&fourth.manifest));
    assert!(fifth.pages.is_empty());
    assert_eq!(fifth.problems, fourth.problems);
}

#[test]
fn the_manifest_round_trips_as_json() {
    let out = build(&site(&[("index.md", "# x\n[a](a.md)\n")]), None);
    let json = serde_json::to_string(&out.manifest).unwrap();
    let back: Manifest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, out.manifest);
    let json = serde_json::to_string(&out).unwrap();
    assert!(json.contains("\"kind\":\"page\""), "{json}");
}
