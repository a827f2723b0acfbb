//! Settings the operator gives this plugin in `callboard.toml`:
//!
//! ```toml
//! [plugins.settings.ci]
//! base_url = "https://api.github.com"
//! token = "..."
//! ```

use crate::bindings::callboard::plugin::config as wit;

/// The value of setting `key`, if set.
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}
