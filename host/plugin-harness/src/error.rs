//! What can go wrong, always naming the plugin (`id@version`) and the call.

use callboard::plugins::{CallError, LoadError};

/// Why a harness could not be built, or a call produced no answer.
///
/// Every variant but [`HarnessError::Setup`] names the plugin as
/// `id@version` and the call (`GET /ping`, `view entity-card of
/// component:default/x`, `action restart`, `tick`), and its `Display` says
/// both.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The harness itself could not be set up (the build failed, no
    /// manifest, an entity the catalog refused, ...); says why.
    #[error("plugin harness: {0}")]
    Setup(String),
    /// The host refused to install the plugin (its manifest, its API
    /// version, a downgrade, ...).
    #[error("plugin {plugin} could not be installed: {source}")]
    Install {
        /// `id@version`.
        plugin: String,
        /// The host's reason.
        #[source]
        source: Box<LoadError>,
    },
    /// The host stopped or refused the call: the plugin trapped (panicked),
    /// ran past its deadline or memory limit, answered something invalid,
    /// is not licensed, or has no such export for its API version.
    #[error("{call} of plugin {plugin} failed: {source}")]
    Call {
        /// `id@version`.
        plugin: String,
        /// The call, e.g. `GET /ping` or `view entity-card of component:default/x`.
        call: String,
        /// The host's error.
        #[source]
        source: CallError,
    },
    /// A view or action returned the plugin's own error (what the portal
    /// shows in an error box or a `bad` notice).
    #[error("{call} of plugin {plugin} returned an error: {message}")]
    Plugin {
        /// `id@version`.
        plugin: String,
        /// The call.
        call: String,
        /// The plugin's message.
        message: String,
    },
    /// The call does not fit the plugin's manifest (a view slot it does not
    /// declare, an entity the harness catalog does not hold, ...): the portal
    /// would never make it.
    #[error("{call} of plugin {plugin} cannot be made: {reason}")]
    Misuse {
        /// `id@version`.
        plugin: String,
        /// The call.
        call: String,
        /// Why not.
        reason: String,
    },
}

impl HarnessError {
    /// `id@version` of the plugin, except for [`HarnessError::Setup`].
    pub fn plugin(&self) -> Option<&str> {
        match self {
            Self::Setup(_) => None,
            Self::Install { plugin, .. }
            | Self::Call { plugin, .. }
            | Self::Plugin { plugin, .. }
            | Self::Misuse { plugin, .. } => Some(plugin),
        }
    }

    /// The call that failed, if a call did.
    pub fn call(&self) -> Option<&str> {
        match self {
            Self::Setup(_) | Self::Install { .. } => None,
            Self::Call { call, .. } | Self::Plugin { call, .. } | Self::Misuse { call, .. } => {
                Some(call)
            }
        }
    }

    /// The host's error, when the host stopped the call.
    pub fn call_error(&self) -> Option<&CallError> {
        match self {
            Self::Call { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The plugin's own error message, when a view or action returned one.
    pub fn plugin_message(&self) -> Option<&str> {
        match self {
            Self::Plugin { message, .. } => Some(message),
            _ => None,
        }
    }
}
