//! Who a call runs for (plugin API 0.4): a signed-in person (their ref,
//! display name and the refs they own things through), nobody, or a
//! service. Never their credentials.

use crate::bindings::callboard::plugin::types as wit;

/// The principal of the current call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in person.
    User {
        /// `user:<namespace>/<name>`, lower-case.
        user_ref: String,
        /// `spec.profile.displayName`, when the catalog has one.
        display_name: Option<String>,
        /// Their own ref, their groups and those groups' parents.
        ownership: Vec<String>,
    },
    /// Nobody signed in.
    #[default]
    Anonymous,
    /// A service: `plugin:<id>` (ticks and events), `token:<name>`, `admin`.
    Service(String),
}

impl Principal {
    pub(crate) fn from_wit(p: wit::Principal) -> Self {
        match p {
            wit::Principal::User(u) => Self::User {
                user_ref: u.ref_,
                display_name: u.display_name,
                ownership: u.ownership,
            },
            wit::Principal::Anonymous => Self::Anonymous,
            wit::Principal::Service(name) => Self::Service(name),
        }
    }

    /// The person's ref, if a person.
    pub fn user_ref(&self) -> Option<&str> {
        match self {
            Self::User { user_ref, .. } => Some(user_ref),
            _ => None,
        }
    }

    /// How to greet them: the display name, else the ref's name, else the
    /// service's name.
    pub fn name(&self) -> &str {
        match self {
            Self::User {
                display_name: Some(name),
                ..
            } => name,
            Self::User { user_ref, .. } => user_ref.rsplit('/').next().unwrap_or(user_ref),
            Self::Anonymous => "anonymous",
            Self::Service(name) => name,
        }
    }

    /// Whether the person owns through `owner` (an entity's `spec.owner`,
    /// as a ref: `group:default/payments`, or a bare name meaning a group in
    /// the default namespace).
    pub fn owns_through(&self, owner: &str) -> bool {
        let Self::User { ownership, .. } = self else {
            return false;
        };
        let owner = owner.to_ascii_lowercase();
        let full = if owner.contains(':') {
            owner
        } else if owner.contains('/') {
            format!("group:{owner}")
        } else {
            format!("group:default/{owner}")
        };
        ownership.iter().any(|r| r.eq_ignore_ascii_case(&full))
    }
}
