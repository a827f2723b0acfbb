//! What the plugin contract knows of permissions: the actions a declared
//! permission may carry, and the one resource type plugins may use.

use serde::{Deserialize, Serialize};

/// The resource type of catalog entities, the one resource type whose
/// permissions take conditions.
pub const CATALOG_ENTITY: &str = "catalog-entity";

/// What a permission does (Backstage's `attributes.action`; RHDH's fourth
/// CSV column, where `use` stands for a basic permission without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Creates something.
    Create,
    /// Reads something.
    Read,
    /// Changes something.
    Update,
    /// Deletes something.
    Delete,
    /// Uses something (no more specific action).
    Use,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Use,
    ];

    /// The lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Use => "use",
        }
    }

    /// Parses a lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
