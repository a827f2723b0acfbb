//! The manifest every plugin file carries in a custom section named
//! [`SECTION`], as JSON. Authors write it as `plugin.toml` beside the plugin's
//! `Cargo.toml`; `callboard plugin pack` embeds it, so a plugin stays one file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasm_encoder::Section as _;

use crate::sections::{self, NotComponent};

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
    /// What the plugin asks the operator to grant.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Limits the plugin asks for; the operator's limits cap them.
    #[serde(default)]
    pub limits: RequestedLimits,
    /// Routes that need a licence feature: `[[entitlements]] feature = "export", paths = ["/export"]`.
    #[serde(default)]
    pub entitlements: Vec<EntitlementRoute>,
    /// Slots the plugin fills with views (API 0.3+): `[[views]]`.
    #[serde(default)]
    pub views: Vec<ViewSlot>,
    /// Run the plugin's scheduled task every this many seconds (API 0.3+).
    #[serde(default)]
    pub tick_secs: Option<u64>,
    /// Permissions the plugin declares, each guarding some of its routes:
    /// `[[permissions]] name = "<id>.export" action = "read" paths = ["/export.csv"]`.
    /// Administrators grant them in the policy like the catalog's; the host
    /// checks them before a guarded route reaches the plugin.
    #[serde(default)]
    pub permissions: Vec<DeclaredPermission>,
}

/// Most permissions one plugin declares.
pub const MAX_DECLARED_PERMISSIONS: usize = 64;

/// A permission a plugin declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredPermission {
    /// `<plugin id>.<name>`: lower-case letters, digits, `.` and `-`.
    pub name: String,
    /// `create`, `read`, `update`, `delete` or `use`.
    pub action: String,
    /// `catalog-entity` for a permission on entities: the plugin asks about
    /// it with an entity ref (API 0.4 `permissions.check`), and policies may
    /// put conditions on it ("only the entity's owners"). Default: a basic
    /// permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Paths (below the plugin's mount point) it guards, matched on whole
    /// segments like entitlements' (`/export` guards `/export` and
    /// `/export/x`). Empty: it guards no route (the plugin may still be
    /// told whether a person holds it, in a later API version).
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Where a view slot is: see `ui.slot` in the WIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotKind {
    /// A card on an entity's overview.
    EntityCard,
    /// A tab on an entity's page.
    EntityTab,
    /// A top-level page.
    Page,
}

impl SlotKind {
    /// As written in plugin.toml and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::EntityCard => "entity-card",
            SlotKind::EntityTab => "entity-tab",
            SlotKind::Page => "page",
        }
    }
}

/// One slot a plugin fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewSlot {
    /// Which slot.
    pub slot: SlotKind,
    /// Heading of the card or tab, or the page's name in navigation.
    pub title: String,
    /// Entity slots: the entity kinds it applies to, lower-case (empty: all).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Pages: the path navigation links to, below the plugin's page root
    /// (default `/`).
    #[serde(default)]
    pub path: Option<String>,
}

impl ViewSlot {
    /// Whether this entity slot applies to entities of `kind`.
    pub fn applies_to(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k.eq_ignore_ascii_case(kind))
    }
}

/// Capabilities: what a manifest requests, and what an operator grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// Key-value storage in the plugin's own namespace.
    pub kv: bool,
    /// Read access to the software catalog.
    pub catalog: bool,
    /// Its own documents in the portal's search index, and queries of the
    /// index as the call's principal (API 0.4+).
    pub search: bool,
    /// Chat completions with the operator's language model (`[models]`),
    /// through the host, which holds the key (API 0.5+).
    pub models: bool,
    /// Publishing its own events into the usage stream, as
    /// `<plugin-id>.<kind>`, for subscribed plugins to count (API 0.5+).
    pub publish: bool,
    /// Hosts the plugin may call over HTTP(S): `api.example.com` (ports 80
    /// and 443), `*.example.com` (subdomains), `api.example.com:8443` or
    /// `:*` (other ports), and addresses or ranges, `10.0.0.5`, `10.0.0.0/8`,
    /// `[::1]:8080` (every port unless one is given). A name never reaches a
    /// loopback, private, link-local or metadata address: those need an
    /// address grant. A manifest may ask for `["*"]`: any host the operator
    /// grants it (a grant of `*` grants nothing).
    pub http_hosts: Vec<String>,
    /// Event streams to receive (`usage`, `catalog`).
    pub events: Vec<String>,
    /// Read-only directories, by the path the plugin sees. In a manifest the
    /// value says what the plugin expects there; in a grant it is the host
    /// directory mounted at that path (relative to the config file's folder).
    pub files: BTreeMap<String, String>,
}

impl Capabilities {
    /// What both grant: the capabilities a plugin actually gets.
    pub fn intersect(&self, other: &Capabilities) -> Capabilities {
        Capabilities {
            kv: self.kv && other.kv,
            catalog: self.catalog && other.catalog,
            search: self.search && other.search,
            models: self.models && other.models,
            publish: self.publish && other.publish,
            // A manifest asking for `*` takes whichever hosts the operator
            // grants (e.g. a billing API whose address only the operator knows).
            http_hosts: crate::grant::intersect(&self.http_hosts, &other.http_hosts),
            events: self
                .events
                .iter()
                .filter(|e| other.events.contains(e))
                .cloned()
                .collect(),
            files: self
                .files
                .keys()
                .filter_map(|guest| Some((guest.clone(), other.files.get(guest)?.clone())))
                .collect(),
        }
    }

    /// Everything either grants.
    pub fn union(&self, other: &Capabilities) -> Capabilities {
        // Every field, by name: a new capability cannot be left out here.
        let Capabilities {
            kv,
            catalog,
            search,
            models,
            publish,
            http_hosts,
            events,
            files,
        } = other;
        let mut out = self.clone();
        out.kv |= kv;
        out.catalog |= catalog;
        out.search |= search;
        out.models |= models;
        out.publish |= publish;
        for h in http_hosts {
            if !out.http_hosts.contains(h) {
                out.http_hosts.push(h.clone());
            }
        }
        for e in events {
            if !out.events.contains(e) {
                out.events.push(e.clone());
            }
        }
        for (guest, host) in files {
            out.files.insert(guest.clone(), host.clone());
        }
        out
    }
}

/// Limits a plugin asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs, reason = "each means the same as in config::Limits")]
pub struct RequestedLimits {
    pub timeout_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    pub kv_quota_bytes: Option<u64>,
}

/// Paths under which the licence must carry `feature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitlementRoute {
    /// Licence feature required.
    pub feature: String,
    /// Paths (below the plugin's mount point) it guards, with everything
    /// below them: matched on whole segments of the normalised path, so
    /// `/export` guards `/export` and `/export/x`, not `/export.csv`; a
    /// gate on `/` also guards the plugin's entity views.
    pub paths: Vec<String>,
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
    /// A component that does not export the plugin handler.
    #[error(
        "does not export callboard:plugin/handler; is it built with callboard-sdk for wasm32-wasip2?"
    )]
    NoHandler,
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
        if self.tick_secs == Some(0) {
            return Err(ManifestError::Invalid(
                "\"tick_secs\" must be at least 1".into(),
            ));
        }
        if self.permissions.len() > MAX_DECLARED_PERMISSIONS {
            return Err(ManifestError::Invalid(format!(
                "\"permissions\": {} declared, at most {MAX_DECLARED_PERMISSIONS}",
                self.permissions.len()
            )));
        }
        for p in &self.permissions {
            let prefix = format!("{}.", self.id);
            let named = p.name.len() <= 128
                && p.name.starts_with(&prefix)
                && p.name.len() > prefix.len()
                && p.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            if !named {
                return Err(ManifestError::Invalid(format!(
                    "permissions: {:?} must be \"{prefix}<name>\" (lower-case letters, digits, '.', '-'; at most 128)",
                    p.name
                )));
            }
            if p.resource_type
                .as_deref()
                .is_some_and(|t| t != crate::permission::CATALOG_ENTITY)
            {
                return Err(ManifestError::Invalid(format!(
                    "permissions: {}: resource_type must be \"{}\" or left out",
                    p.name,
                    crate::permission::CATALOG_ENTITY
                )));
            }
            if p.resource_type.is_some() && !p.paths.is_empty() {
                return Err(ManifestError::Invalid(format!(
                    "permissions: {}: a permission on entities guards no paths (a route has no entity to check)",
                    p.name
                )));
            }
            if crate::permission::Action::parse(&p.action).is_none() {
                return Err(ManifestError::Invalid(format!(
                    "permissions: {}: action {:?} is not create, read, update, delete or use",
                    p.name, p.action
                )));
            }
            if p.paths.len() > 64
                || p.paths
                    .iter()
                    .any(|path| !path.starts_with('/') || path.len() > 512)
            {
                return Err(ManifestError::Invalid(format!(
                    "permissions: {}: paths must start with '/' (at most 64, 512 bytes each)",
                    p.name
                )));
            }
        }
        for guest in self.capabilities.files.keys() {
            if !guest.starts_with('/') || guest.split('/').any(|part| part == "..") {
                return Err(ManifestError::Invalid(format!(
                    "capabilities.files: {guest:?} must be an absolute path without `..`"
                )));
            }
        }
        Ok(())
    }

    /// Whether the plugin is commercial (must be signed and licensed).
    pub fn is_commercial(&self) -> bool {
        self.license
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("commercial"))
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

fn sections_of(bytes: &[u8]) -> Result<Vec<sections::Section<'_>>, ManifestError> {
    sections::top_level(bytes).map_err(|e| match e {
        NotComponent::CoreModule => ManifestError::CoreModule,
        NotComponent::Invalid(why) => ManifestError::NotWasm(why),
    })
}

/// Reads the manifest from a component's top-level custom section. Sections
/// inside nested core modules are not the plugin's manifest and are ignored.
pub fn read(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let mut found = None;
    for section in sections_of(bytes)? {
        if let Some((SECTION, data)) = section.custom() {
            if found.is_some() {
                return Err(ManifestError::Duplicate);
            }
            found = Some(data);
        }
    }
    let data = found.ok_or(ManifestError::Missing)?;
    let manifest: Manifest =
        serde_json::from_slice(data).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    manifest.validate()?;
    Ok(manifest)
}

/// Returns `component` with `manifest` in its [`SECTION`], replacing any
/// manifest it had. A signature does not survive: re-sign after packing.
pub fn embed(component: &[u8], manifest: &Manifest) -> Result<Vec<u8>, ManifestError> {
    let mut out = Vec::with_capacity(component.len() + 512);
    out.extend_from_slice(&component[..8.min(component.len())]);
    let sections = sections_of(component)?;
    for section in &sections {
        if matches!(
            section.custom(),
            Some((SECTION | crate::signing::SECTION, _))
        ) {
            continue;
        }
        out.extend_from_slice(&component[section.start..section.end]);
    }
    let json = serde_json::to_vec(manifest).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    wasm_encoder::CustomSection {
        name: SECTION.into(),
        data: json.into(),
    }
    .append_to(&mut out);
    Ok(out)
}

/// The plugin API version a component was built against: the version of
/// the `callboard:plugin/handler` interface it exports.
pub fn api_version_of(bytes: &[u8]) -> Result<String, ManifestError> {
    use wasmparser::{Parser, Payload};
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ManifestError::NotWasm(e.to_string()))?;
        if let Payload::ComponentExportSection(exports) = payload {
            for export in exports {
                let export = export.map_err(|e| ManifestError::NotWasm(e.to_string()))?;
                if let Some(version) = export.name.0.strip_prefix("callboard:plugin/handler@") {
                    return Ok(version.to_owned());
                }
            }
        }
    }
    Err(ManifestError::NoHandler)
}

/// Packs a built component: `manifest` (with the API version read from the
/// component) embedded as its [`SECTION`]. What `callboard plugin pack`,
/// `callboard plugin dev` and `cargo xtask build-plugins` do.
pub fn pack(component: &[u8], manifest: &Manifest) -> Result<(Manifest, Vec<u8>), ManifestError> {
    let mut manifest = manifest.clone();
    manifest.api_version = Some(api_version_of(component)?);
    let packed = embed(component, &manifest)?;
    Ok((manifest, packed))
}
