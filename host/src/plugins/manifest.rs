//! The manifest every plugin file carries in a custom section named
//! [`SECTION`], as JSON. Authors write it as `plugin.toml` beside the plugin's
//! `Cargo.toml`; `callboard plugin pack` embeds it, so a plugin stays one file.

use serde::{Deserialize, Serialize};
use wasm_encoder::Section as _;
use wasmparser::{Encoding, Parser, Payload};

/// Name of the custom section holding the manifest.
pub const SECTION: &str = "callboard-manifest";

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique id, the plugin's URL segment: `/api/plugins/<id>/...`.
    /// Lower-case letters, digits and `-`, 1-63 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Semantic version of the plugin.
    pub version: semver::Version,
    /// Plugin API version the component was built against (filled in by
    /// `pack` from the component itself).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Who publishes the plugin.
    #[serde(default)]
    pub vendor: Option<String>,
    /// One line about what the plugin does.
    #[serde(default)]
    pub description: Option<String>,
    /// An SPDX licence id for open source, or `commercial`.
    #[serde(default)]
    pub license: Option<String>,
}

/// Why a file is not a loadable plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not WebAssembly at all, or truncated.
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    /// A core module where a component is needed.
    #[error(
        "is a core WebAssembly module, not a component; build plugins with \
         `cargo build --target wasm32-wasip2` (or `cargo xtask build-plugins`)"
    )]
    CoreModule,
    /// No manifest section.
    #[error("has no `{SECTION}` section; package it with `callboard plugin pack`")]
    Missing,
    /// More than one manifest section.
    #[error("has more than one `{SECTION}` section")]
    Duplicate,
    /// The section is not a valid manifest.
    #[error("invalid manifest: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Parses `plugin.toml` text.
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self =
            toml::from_str(text).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the fields a plugin cannot be loaded without.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if !valid_id(&self.id) {
            return Err(ManifestError::Invalid(format!(
                "\"id\" is not valid; expected 1-63 lower-case letters, digits and '-' \
                 starting with a letter or digit, but found {:?}",
                self.id
            )));
        }
        if self.name.trim().is_empty() {
            return Err(ManifestError::Invalid("\"name\" must not be empty".into()));
        }
        Ok(())
    }

    /// `id@version`, how errors and logs name a plugin.
    pub fn label(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// The top-level payloads of a wasm binary; a nested module or component
/// appears once, as its section, never with its contents.
fn top_level(bytes: &[u8]) -> Result<Vec<Payload<'_>>, ManifestError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ManifestError::NotWasm(e.to_string()))?;
        let opens = matches!(
            payload,
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. }
        );
        let closes = matches!(payload, Payload::End(_));
        if closes {
            depth = depth.saturating_sub(1);
            continue;
        }
        if depth == 0 {
            out.push(payload);
        }
        if opens {
            depth += 1;
        }
    }
    Ok(out)
}

/// Reads the manifest from a component's top-level custom section. Sections
/// inside nested core modules are not the plugin's manifest and are ignored.
pub fn read(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let mut found = None;
    for payload in top_level(bytes)? {
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => return Err(ManifestError::CoreModule),
            Payload::CustomSection(section) if section.name() == SECTION => {
                if found.is_some() {
                    return Err(ManifestError::Duplicate);
                }
                found = Some(section.data());
            }
            _ => {}
        }
    }
    let data = found.ok_or(ManifestError::Missing)?;
    let manifest: Manifest =
        serde_json::from_slice(data).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    manifest.validate()?;
    Ok(manifest)
}

/// Returns `component` with `manifest` in its [`SECTION`], replacing any
/// manifest it had.
pub fn embed(component: &[u8], manifest: &Manifest) -> Result<Vec<u8>, ManifestError> {
    if !Parser::is_component(component) {
        return Err(if Parser::is_core_wasm(component) {
            ManifestError::CoreModule
        } else {
            ManifestError::NotWasm("missing the component header".into())
        });
    }
    let mut out = Vec::with_capacity(component.len() + 512);
    out.extend_from_slice(&component[..8]);
    for payload in top_level(component)? {
        if let Payload::CustomSection(section) = &payload
            && section.name() == SECTION
        {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            wasm_encoder::RawSection {
                id,
                data: &component[range],
            }
            .append_to(&mut out);
        }
    }
    let json = serde_json::to_vec(manifest).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    wasm_encoder::CustomSection {
        name: SECTION.into(),
        data: json.into(),
    }
    .append_to(&mut out);
    Ok(out)
}
