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

    /// A signed-in person with ref `user_ref` (`user:default/alice`),
    /// display name and the groups they belong to; their ownership refs are
    /// their own ref, then the groups.
    pub fn user<G: Into<String>>(
        user_ref: impl Into<String>,
        display_name: impl Into<String>,
        groups: impl IntoIterator<Item = G>,
    ) -> Self {
        let user_ref = user_ref.into();
        let mut ownership = vec![user_ref.clone()];
        ownership.extend(groups.into_iter().map(Into::into));
        Self::User {
            user_ref,
            display_name: Some(display_name.into()),
            ownership,
        }
    }

    /// The user ref, for a person.
    pub fn user_ref(&self) -> Option<&str> {
        match self {
            Self::User { user_ref, .. } => Some(user_ref),
            _ => None,
        }
    }
}
