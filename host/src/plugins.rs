//! The plugin runtime: the only part of Callboard that touches wasmtime.
//!
//! Outside this module plugins are a plain interface: [`PluginHost::handle`]
//! takes a [`PluginRequest`] and answers a [`PluginResponse`] or a
//! [`CallError`] that names the plugin and its version.

pub(crate) mod admission;
mod api;
mod call;
pub mod capabilities;
mod engine;
pub mod events;
mod license_checks;
mod loader;
pub mod portal;
mod registry;
pub mod settings;
mod shared;
mod state;
mod watcher;

/// The wasm-free contract: manifests, signatures, licences and trust.
pub use callboard_plugin_contract::{cargo, license, manifest, signing, trust, write_atomically};

pub use api::ApiVersion;
pub use call::{
    ActionRequest, CallError, CatalogReader, Outcome, PluginRequest, PluginResponse, View,
    ViewRequest,
};
/// The version-free UI model plugin views are made of.
pub use callboard_plugin_contract::ui;
pub use loader::LoadError;
pub use portal::{Caller, Principal};
pub use registry::{
    InstallOptions, LicenseState, LoadFailure, PluginHost, PluginInfo, TickCounts, is_plugin_file,
    verify_file, verify_license_file,
};
pub use settings::RuntimeSettings;
pub use watcher::FolderWatch;
