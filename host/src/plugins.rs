//! The plugin runtime: the only part of Callboard that touches wasmtime.
//!
//! Outside this module plugins are a plain interface: [`PluginHost::handle`]
//! takes a [`PluginRequest`] and answers a [`PluginResponse`] or a
//! [`CallError`] that names the plugin and its version.

mod bindings;
pub mod capabilities;
mod engine;
mod loader;
pub mod manifest;
mod registry;
mod state;

pub use bindings::ApiVersion;
pub use loader::LoadError;
pub use registry::{CallError, LoadFailure, PluginHost, PluginInfo, PluginRequest, PluginResponse};
