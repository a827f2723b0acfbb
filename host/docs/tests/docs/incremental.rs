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

/// A second read of a folder takes settled, unchanged files from the
/// previous snapshot and reads the rest: changed length, changed time, new
/// files, and anything modified just before the previous read (however it
/// looks, since a same-length write within one timestamp tick would not
/// show). Deleted files are gone.
#[test]
fn rereading_a_folder_reads_only_what_may_have_changed() {
    use callboard_docs::{Limits, Snapshot};
    use std::time::{Duration, SystemTime};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    let write = |path: &str, text: &str, age_secs: u64| {
        let p = root.join(path);
        std::fs::write(&p, text).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_secs);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
    };
    write("mkdocs.yml", "site_name: S\n", 60);
    write("docs/index.md", "# Home\n", 60);
    write("docs/a.md", "# A\n", 60);
    write("docs/gone.md", "# Gone\n", 60);
    write("docs/fresh.md", "# Fresh\n", 0);

    let first = Snapshot::read(root, Limits::default(), None).unwrap();
    assert_eq!(first.reused(), 0);
    assert_eq!(first.files().len(), 5);

    // Same length, new content, older time than the first read: the
    // modification time differs from the stamp, so it is read again.
    write("docs/a.md", "# B\n", 30);
    write("docs/new.md", "# New\n", 60);
    std::fs::remove_file(root.join("docs/gone.md")).unwrap();
    let second = Snapshot::read(root, Limits::default(), Some(first)).unwrap();
    // mkdocs.yml and index.md are settled and unchanged; fresh.md was
    // modified just before the first read, so it is read anew.
    assert_eq!(second.reused(), 2);
    let files = second.files();
    assert_eq!(files.get("docs/a.md"), Some(&b"# B\n"[..]));
    assert_eq!(files.get("docs/new.md"), Some(&b"# New\n"[..]));
    assert_eq!(files.get("docs/fresh.md"), Some(&b"# Fresh\n"[..]));
    assert_eq!(files.get("docs/index.md"), Some(&b"# Home\n"[..]));
    assert!(!files.contains("docs/gone.md"));
    assert_eq!(
        *files,
        callboard_docs::Files::from_dir(root, Limits::default()).unwrap()
    );

    // Limits hold for files taken from the snapshot too.
    let err = Snapshot::read(
        root,
        Limits {
            max_total_bytes: 20,
            ..Limits::default()
        },
        Some(second),
    )
    .unwrap_err();
    assert!(err.to_string().contains("the site is larger than"), "{err}");
}
