//! `callboard:plugin/permissions` (API 0.4+): whether the call's principal
//! holds one of the permissions the plugin declared, as the published
//! policy says (through the caller's [`Rights`](crate::plugins::portal::Rights)).

use crate::plugins::{portal::Rights, state::Grants};

/// What the `permissions` glue sees of a call: the plugin's declared
/// permissions and the call principal's rights.
pub struct PermissionsView<'a> {
    pub(in crate::plugins) label: &'a str,
    pub(in crate::plugins) grants: &'a Grants,
    pub(in crate::plugins) rights: &'a dyn Rights,
}

/// The linker's projection onto [`PermissionsView`].
pub struct Permissions;

impl wasmtime::component::HasData for Permissions {
    type Data<'a> = PermissionsView<'a>;
}

/// Why a question could not be answered (every version's `permissions.error`).
#[derive(Debug)]
pub enum CheckError {
    /// Not one of the plugin's declared permissions.
    Unknown(String),
    /// A malformed resource ref.
    Invalid(String),
}

impl PermissionsView<'_> {
    /// `permissions.check`.
    pub(in crate::plugins) async fn permission_check(
        &mut self,
        permission: String,
        resource_ref: Option<String>,
    ) -> Result<bool, CheckError> {
        if self.grants.declared(&permission).is_none() {
            tracing::info!(plugin = %self.label, %permission, "asked about a permission it did not declare");
            return Err(CheckError::Unknown(permission));
        }
        if resource_ref.as_ref().is_some_and(|r| r.len() > 1024) {
            return Err(CheckError::Invalid(
                "the resource ref is over 1024 bytes".into(),
            ));
        }
        self.rights
            .allows(&permission, resource_ref.as_deref())
            .await
            .map_err(CheckError::Invalid)
    }
}

/// The WIT glue for every API version with this interface.
macro_rules! permissions_glue {
    ($wit:path) => {
        const _: () = {
            use $crate::plugins::capabilities::permissions::{CheckError, PermissionsView};
            use $wit as wit;

            impl wit::Host for PermissionsView<'_> {
                async fn check(
                    &mut self,
                    permission: String,
                    resource_ref: Option<String>,
                ) -> Result<bool, wit::Error> {
                    self.permission_check(permission, resource_ref)
                        .await
                        .map_err(|e| match e {
                            CheckError::Unknown(p) => wit::Error::Unknown(p),
                            CheckError::Invalid(why) => wit::Error::Invalid(why),
                        })
                }
            }
        };
    };
}

pub(in crate::plugins) use permissions_glue;
