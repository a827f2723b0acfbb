//! Who a plugin call runs for, as a plugin is told: a person's ref, name
//! and ownership, or a service; never their credentials.

use serde::Serialize;

/// The principal of one plugin call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    /// A signed-in person.
    User {
        /// Their entity ref, `user:<namespace>/<name>`.
        #[serde(rename = "ref")]
        user_ref: String,
        /// `spec.profile.displayName`, when known.
        display_name: Option<String>,
        /// Their own ref, their groups and those groups' parents.
        ownership: Vec<String>,
    },
    /// Nobody signed in.
    #[default]
    Anonymous,
    /// A service: `plugin:<id>`, `token:<name>` or `admin`.
    Service(String),
}

impl Principal {
    /// A plugin's own service principal, `plugin:<id>`.
    pub fn plugin(id: &str) -> Self {
        Self::Service(format!("plugin:{id}"))
    }

    /// The user ref, for a person.
    pub fn user_ref(&self) -> Option<&str> {
        match self {
            Self::User { user_ref, .. } => Some(user_ref),
            _ => None,
        }
    }
}
