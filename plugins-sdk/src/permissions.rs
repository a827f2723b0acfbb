//! The permissions this plugin defines (plugin API 0.4). Declare them in
//! plugin.toml; administrators grant them in the roles administration:
//!
//! ```toml
//! [[permissions]]
//! name = "kubernetes.restart"   # "<plugin id>.<name>"
//! action = "update"
//! ```
//!
//! and ask before doing what one guards:
//!
//! ```no_run
//! use callboard_sdk::permissions;
//!
//! permissions::require("kubernetes.restart", Some("component:default/checkout"))?;
//! # Ok::<(), callboard_sdk::Error>(())
//! ```

use crate::bindings::callboard::plugin::permissions as wit;

/// Why a permission check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionError {
    /// Not one of this plugin's declared permissions (a bug in the plugin).
    Unknown(String),
    /// The resource ref is malformed.
    Invalid(String),
    /// The principal does not hold it ([`require`]).
    NotAllowed(String),
}

impl std::fmt::Display for PermissionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(p) => write!(f, "{p} is not a permission this plugin declared"),
            Self::Invalid(why) => write!(f, "invalid resource ref: {why}"),
            Self::NotAllowed(p) => write!(f, "you do not have permission {p}"),
        }
    }
}

impl std::error::Error for PermissionError {}

/// Whether the current call's principal holds `permission` (on entity
/// `resource_ref`, when given).
pub fn check(permission: &str, resource_ref: Option<&str>) -> Result<bool, PermissionError> {
    wit::check(permission, resource_ref).map_err(|e| match e {
        wit::Error::Unknown(p) => PermissionError::Unknown(p),
        wit::Error::Invalid(why) => PermissionError::Invalid(why),
    })
}

/// `Ok` if the principal holds `permission`, else [`PermissionError::NotAllowed`]
/// (a 403 through [`crate::Error`]).
pub fn require(permission: &str, resource_ref: Option<&str>) -> Result<(), PermissionError> {
    if check(permission, resource_ref)? {
        Ok(())
    } else {
        Err(PermissionError::NotAllowed(permission.to_owned()))
    }
}
