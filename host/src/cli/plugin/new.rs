//! `callboard plugin new NAME`: a working plugin project to start from:
//! `Cargo.toml`, `plugin.toml`, and `src/lib.rs` with a route, an entity
//! card and native tests. `callboard plugin dev` then builds, installs and
//! reloads it as it is edited.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The SDK source folder this binary was built from, if it is still there
/// (a checkout of Callboard): what a new project depends on by default.
pub fn bundled_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins-sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().ok())
        .flatten()
}

/// Whether `name` may name a plugin: what a plugin id allows (lower-case
/// letters, digits, `-`; starting with a letter; at most 64).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
}

/// `name` as a Rust type name: `cost-report` -> `CostReport`.
fn type_name(name: &str) -> String {
    name.split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `name` as a title: `cost-report` -> `Cost report`.
fn title(name: &str) -> String {
    let words = name.replace('-', " ");
    let mut c = words.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Writes the project `name` into `dir` (which must not exist or be empty),
/// depending on the SDK at `sdk` (a path) or, without one, on the crates.io
/// release. Returns the files written.
pub fn create(name: &str, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    if !valid_name(name) {
        anyhow::bail!(
            "{name:?} is not a plugin name: use lower-case letters, digits and '-', starting with a letter (at most 64)"
        );
    }
    if dir.exists()
        && dir
            .read_dir()
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!("{} already exists and is not empty", dir.display());
    }
    let sdk_dep = match sdk {
        Some(path) => {
            let path = path
                .canonicalize()
                .with_context(|| format!("the SDK folder {} does not exist", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                anyhow::bail!("{} holds no Cargo.toml: not the SDK folder", path.display());
            }
            format!(
                "callboard-sdk = {{ path = {:?} }}",
                path.display().to_string()
            )
        }
        None => "callboard-sdk = \"0.1\"".to_owned(),
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{Type}}", &type_name(name))
            .replace("{{title}}", &title(name))
            .replace("{{sdk}}", &sdk_dep)
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("plugin.toml", fill(PLUGIN_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        (".gitignore", "/target\n/*.wasm\n".to_owned()),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the WebAssembly component; rlib: `cargo test` on this machine.
crate-type = ["cdylib", "rlib"]

[dependencies]
{{sdk}}
serde_json = "1"

# Its own workspace, so it builds on its own wherever it is.
[workspace]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"
"#;

const PLUGIN_TOML: &str = r#"# The manifest `callboard plugin pack` embeds into {{name}}.wasm.
id = "{{name}}"
name = "{{title}}"
version = "0.1.0"
description = "A Callboard plugin"
license = "Apache-2.0"

# What the plugin asks for; the operator grants it ([grants.plugins.{{name}}]).
[capabilities]
kv = true

# A card on every component's overview.
[[views]]
slot = "entity-card"
title = "{{title}}"
kinds = ["component"]
"#;

const LIB_RS: &str = r#"//! {{title}}: a Callboard plugin.
//!
//! - `GET /api/plugins/{{name}}/hello/{name}` greets someone;
//! - `POST /api/plugins/{{name}}/visits` counts visits in key-value storage;
//! - a card on every component's overview.
//!
//! `callboard plugin dev` builds, installs and reloads it as you edit;
//! `cargo test` runs the tests below on this machine.

use callboard_sdk::{
    Error, Params, Plugin, Request, Response, Router, export_plugin, kv, log,
    ui::{Block, Card, Stat, View, ViewRequest},
};

struct {{Type}};

fn router() -> Router {
    Router::new()
        .get("/hello/{name}", hello)
        .post("/visits", visits)
}

fn hello(request: &Request, params: &Params) -> Response {
    let name = params.get("name").unwrap_or("world");
    let from = request.principal().name();
    Response::text(format!("Hello, {name}! (asked by {from})"))
}

fn visits(_: &Request, _: &Params) -> Result<Response, Error> {
    let visits = kv::increment("visits", 1)?;
    log::info(&format!("visit number {visits}"));
    Ok(Response::json(&serde_json::json!({ "visits": visits })))
}

impl Plugin for {{Type}} {
    fn handle(request: Request) -> Response {
        router().handle(&request)
    }

    fn view(request: ViewRequest) -> Result<Option<View>, Error> {
        let Some(entity) = request.entity_ref() else {
            return Ok(None);
        };
        Ok(Some(View::new("{{title}}").card(
            Card::untitled().block(Block::Stats(vec![Stat::new("Entity", entity)])),
        )))
    }
}

export_plugin!({{Type}});

#[cfg(test)]
mod tests {
    use callboard_sdk::Principal;

    use super::*;

    #[test]
    fn greets_by_name_and_says_who_asked() {
        let request = Request::new("GET", "/hello/ada").with_principal(Principal::User {
            user_ref: "user:default/grace".into(),
            display_name: Some("Grace".into()),
            ownership: vec![],
        });
        let response = router().handle(&request);
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"Hello, ada! (asked by Grace)");
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert_eq!(router().handle(&Request::new("GET", "/nope")).status, 404);
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_types_and_titles_and_bad_names_are_refused() {
        assert_eq!(type_name("cost-report"), "CostReport");
        assert_eq!(title("cost-report"), "Cost report");
        for bad in ["", "Cost", "1cost", "cost_report", "cost-", "a/b", "../x"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(create("Bad Name", &dir.path().join("x"), None).is_err());
        std::fs::write(dir.path().join("taken"), "x").unwrap();
        let err = create("ok", dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
    }

    #[test]
    fn a_new_project_names_its_plugin_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("cost-report");
        let files = create("cost-report", &project, None).unwrap();
        assert_eq!(files.len(), 4);
        let lib = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
        assert!(lib.contains("struct CostReport;") && lib.contains("export_plugin!(CostReport);"));
        assert!(!lib.contains("{{"), "every placeholder filled");
        let manifest = std::fs::read_to_string(project.join("plugin.toml")).unwrap();
        let parsed = crate::plugins::manifest::Manifest::from_toml(&manifest).unwrap();
        assert_eq!(parsed.id, "cost-report");
        let cargo = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("callboard-sdk = \"0.1\""), "{cargo}");
    }
}
