//! Reads the demo catalog (`../catalog/*.yaml`) for the repositories the CI
//! API serves: every entity with a `github.com/project-slug` annotation, with
//! its type, owner and tags (which shape its workflows), and the users of
//! each team (who trigger the runs). The files are ours and regular, so a
//! line scan is enough; the output is `$OUT_DIR/catalog.rs`.

use std::{fmt::Write as _, path::Path};

#[derive(Default)]
struct Doc {
    kind: String,
    name: String,
    slug: Option<String>,
    spec_type: String,
    owner: String,
    tags: Vec<String>,
    member_of: Vec<String>,
}

fn main() {
    // Read at run time, not baked in with `env!`: a build-script binary
    // cached from a clone at another path must read this clone's files.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("../catalog");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading the demo catalog {}: {e}", dir.display()))
        .map(|entry| entry.expect("catalog folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();

    let mut docs = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for chunk in text.split("\n---") {
            docs.push(scan(chunk));
        }
    }

    let mut out = String::from(
        "/// Repositories of the demo catalog.\npub(crate) const REPOS: &[CatalogRepo] = &[\n",
    );
    let mut seen = Vec::new();
    for doc in &docs {
        let Some(slug) = &doc.slug else { continue };
        if seen.contains(slug) {
            continue;
        }
        seen.push(slug.clone());
        writeln!(
            out,
            "    CatalogRepo {{ slug: {slug:?}, component: {:?}, spec_type: {:?}, owner: {:?}, tags: &{:?} }},",
            doc.name, doc.spec_type, doc.owner, doc.tags
        )
        .unwrap();
    }
    out.push_str("];\n\n/// Users of the demo catalog and their teams.\npub(crate) const USERS: &[CatalogUser] = &[\n");
    for doc in docs.iter().filter(|d| d.kind == "User") {
        writeln!(
            out,
            "    CatalogUser {{ name: {:?}, teams: &{:?} }},",
            doc.name, doc.member_of
        )
        .unwrap();
    }
    out.push_str("];\n");
    assert!(
        !seen.is_empty(),
        "no `github.com/project-slug` annotation in {}",
        dir.display()
    );
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("catalog.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}

/// The fields we need from one YAML document.
fn scan(doc: &str) -> Doc {
    let mut d = Doc::default();
    let mut section = "";
    for line in doc.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            if let Some(kind) = line.strip_prefix("kind:") {
                d.kind = unquote(kind);
            }
            section = line.split(':').next().unwrap_or("");
            continue;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(slug) = trimmed.strip_prefix("github.com/project-slug:") {
            d.slug = Some(unquote(slug));
            continue;
        }
        if indent != 2 {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        match (section, key) {
            ("metadata", "name") => d.name = unquote(value),
            ("metadata", "tags") => d.tags = list(value),
            ("spec", "type") => d.spec_type = unquote(value),
            ("spec", "owner") => {
                let owner = unquote(value);
                d.owner = owner.strip_prefix("group:").unwrap_or(&owner).to_owned();
            }
            ("spec", "memberOf") => d.member_of = list(value),
            _ => {}
        }
    }
    d
}

fn unquote(value: &str) -> String {
    value
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_owned()
}

/// A flow sequence, `[a, b]`.
fn list(value: &str) -> Vec<String> {
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(unquote)
        .filter(|s| !s.is_empty())
        .collect()
}
