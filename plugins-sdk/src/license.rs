//! This plugin's licence, for commercial plugins. The host refuses requests
//! without a valid licence before the plugin runs, and can gate routes by
//! feature itself (`[[entitlements]]` in plugin.toml); use this to adapt what
//! the plugin shows.

use crate::bindings::callboard::plugin::license as wit;

/// What the licence grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlements {
    /// The licensed organisation.
    pub customer: String,
    /// End of validity, RFC 3339.
    pub expires: String,
    /// Licensed features.
    pub features: Vec<String>,
}

/// The current licence; `None` for open-source plugins.
pub fn current() -> Option<Entitlements> {
    wit::current().map(|e| Entitlements {
        customer: e.customer,
        expires: e.expires,
        features: e.features,
    })
}

/// Whether the licence includes `feature`.
pub fn has_feature(feature: &str) -> bool {
    wit::has_feature(feature)
}
