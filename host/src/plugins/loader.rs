//! Turns a plugin file into something that can serve: verify, compile (or
//! load from the compiled-code cache), link against its API version.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, component::Component};

pub use super::api::Linkers;
use super::{
    ApiVersion,
    api::Linked,
    license::LicenseError,
    manifest::{self, Manifest, ManifestError},
    signing,
    trust::{self, SignatureState, TrustStore},
};

/// Why a plugin file was refused. Every variant names what is wrong; the
/// caller adds the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(String),
    /// Not a component, or no valid manifest.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// wasmtime refused to compile it.
    #[error("does not compile: {0}")]
    Compile(String),
    /// Built against a plugin API this host does not serve.
    #[error("{0}")]
    Api(String),
    /// The manifest claims a different API version than the component has.
    #[error("manifest says plugin API {manifest} but the component is built against {component}")]
    ApiMismatch {
        /// From the manifest.
        manifest: String,
        /// From the component's exports.
        component: ApiVersion,
    },
    /// It imports something this host does not provide (e.g. a WASI
    /// interface of another version).
    #[error("cannot be linked: {0}")]
    Link(String),
    /// Another file already provides this plugin id.
    #[error("plugin id \"{id}\" is already provided by {other}")]
    DuplicateId {
        /// The id.
        id: String,
        /// The file, or vendor, that has it.
        other: String,
    },
    /// The signature or the trust policy refuses it.
    #[error("{0}")]
    Signature(String),
    /// The licence offered with it does not hold.
    #[error("{0}")]
    License(#[from] LicenseError),
    /// Signed by someone else (or less strongly) than the id is bound to,
    /// without `force`: says who and what would change.
    #[error("{0}")]
    SignerChange(String),
    /// An older version than the one serving, without `force`.
    #[error("{id} {to} is older than the installed {from}; downgrades need --force")]
    Downgrade {
        /// Plugin id.
        id: String,
        /// Serving version.
        from: semver::Version,
        /// Offered version.
        to: semver::Version,
    },
    /// Writing the plugin or licence file failed.
    #[error("cannot write {0}")]
    Write(String),
}

/// A verified, compiled, linked plugin.
pub struct Loaded {
    pub manifest: Manifest,
    pub api: ApiVersion,
    pub sha256: String,
    pub size: usize,
    /// Linked against its API version: every call instantiates from it.
    pub pre: Arc<dyn Linked>,
    pub from_cache: bool,
    pub compile_time: Duration,
    pub source: Option<PathBuf>,
    pub signature: SignatureState,
}

/// Reads the manifest and applies the signature policy: the cheap checks,
/// before anything is compiled.
pub fn verify(
    bytes: &[u8],
    trust: &TrustStore,
    require_signatures: bool,
) -> Result<(Manifest, SignatureState), LoadError> {
    let manifest = manifest::read(bytes)?;
    let signature = signing::verify(bytes).map_err(|e| LoadError::Signature(e.to_string()))?;
    let state = trust::check(&manifest, signature, trust, require_signatures)
        .map_err(LoadError::Signature)?;
    Ok((manifest, state))
}

/// Compiles and links `bytes`, which [`verify`] accepted as `verified`.
/// Blocking and CPU-heavy on a cache miss: call it off the request path.
pub fn load(
    engine: &Engine,
    linkers: &Linkers,
    cache: Option<&wasmtime::Cache>,
    (bytes, source): (&[u8], Option<PathBuf>),
    (manifest, signature): (Manifest, SignatureState),
) -> Result<Loaded, LoadError> {
    let sha256 = hex::encode(Sha256::digest(bytes));

    let started = Instant::now();
    let hits_before = cache.map(|c| c.cache_hits());
    let component = super::engine::compiling(|| Component::new(engine, bytes))
        .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    let from_cache = match (cache, hits_before) {
        (Some(c), Some(before)) => c.cache_hits() > before,
        _ => false,
    };
    let compile_time = started.elapsed();

    let api = ApiVersion::of(&component).map_err(LoadError::Api)?;
    if let Some(claimed) = &manifest.api_version
        && claimed != api.as_str()
    {
        return Err(LoadError::ApiMismatch {
            manifest: claimed.clone(),
            component: api,
        });
    }
    if api < ApiVersion::V0_3_0 {
        let needs_0_3 = [
            (!manifest.views.is_empty(), "views"),
            (manifest.tick_secs.is_some(), "tick_secs"),
            (
                !manifest.capabilities.events.is_empty(),
                "capabilities.events",
            ),
            (manifest.capabilities.catalog, "capabilities.catalog"),
            (
                !manifest.capabilities.http_hosts.is_empty(),
                "capabilities.http_hosts",
            ),
            (
                !manifest.capabilities.files.is_empty(),
                "capabilities.files",
            ),
        ];
        if let Some((_, field)) = needs_0_3.iter().find(|(used, _)| *used) {
            return Err(LoadError::Api(format!(
                "manifest sets \"{field}\", which needs plugin API 0.3.0, but the component \
                 is built against {api}; rebuild it with a current callboard-sdk"
            )));
        }
    }
    if api < ApiVersion::V0_4_0 && manifest.capabilities.search {
        return Err(LoadError::Api(format!(
            "manifest sets \"capabilities.search\", which needs plugin API 0.4.0, but the \
             component is built against {api}; rebuild it with a current callboard-sdk"
        )));
    }
    let needs_0_5 = [
        (manifest.capabilities.models, "capabilities.models"),
        (manifest.capabilities.publish, "capabilities.publish"),
    ];
    if !api.has_models()
        && let Some((_, field)) = needs_0_5.iter().find(|(used, _)| *used)
    {
        return Err(LoadError::Api(format!(
            "manifest sets \"{field}\", which needs plugin API 0.5.0, but the \
             component is built against {api}; rebuild it with a current callboard-sdk"
        )));
    }
    let pre = linkers
        .link(api, &component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    Ok(Loaded {
        signature,
        manifest,
        api,
        sha256,
        size: bytes.len(),
        pre,
        from_cache,
        compile_time,
        source,
    })
}

/// The label errors and logs use: `id@version`.
pub fn label(manifest: &Manifest) -> Arc<str> {
    manifest.label().into()
}
