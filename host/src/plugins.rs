//! The plugin runtime: the only part of Callboard that touches wasmtime.
//!
//! Outside this module plugins are a plain interface: [`PluginHost::handle`]
//! takes a [`PluginRequest`] and answers a [`PluginResponse`] or a
//! [`CallError`] that names the plugin and its version.

pub(crate) mod admission;
mod bindings;
mod call;
pub mod capabilities;
mod engine;
pub mod events;
pub mod license;
mod license_checks;
mod loader;
pub mod manifest;
mod registry;
mod sections;
mod shared;
pub mod signing;
mod state;
pub mod trust;
mod watcher;

pub use bindings::ApiVersion;
/// The WIT `ui` types plugin views are made of (API 0.3).
pub use bindings::v0_3_0::exports::callboard::plugin::ui as bindings_ui;
pub use call::{CallError, CatalogReader, PluginRequest, PluginResponse, View, ViewRequest};
pub use loader::LoadError;
pub use registry::{
    InstallOptions, LicenseState, LoadFailure, PluginHost, PluginInfo, TickCounts, is_plugin_file,
    verify_file, verify_license_file, write_atomically,
};
pub use watcher::FolderWatch;
