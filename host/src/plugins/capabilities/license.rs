//! `callboard:plugin/license` (API 0.2+): a commercial plugin's entitlements.
//! The host checked the licence before the call; this only reports it.

use crate::plugins::{license::LicenseTerms, registry::LicenseState};

/// What the `license` glue sees of a call: the licence the host checked.
pub struct LicenseView<'a> {
    pub(in crate::plugins) license: &'a LicenseState,
}

/// The linker's projection onto [`LicenseView`].
pub struct License;

impl wasmtime::component::HasData for License {
    type Data<'a> = LicenseView<'a>;
}

impl LicenseView<'_> {
    pub(in crate::plugins) fn terms(&self) -> Option<&LicenseTerms> {
        match self.license {
            LicenseState::Valid(terms) => Some(terms),
            _ => None,
        }
    }
}

/// The WIT glue for every API version with this interface.
macro_rules! license_glue {
    ($wit:path) => {
        const _: () = {
            use $crate::plugins::capabilities::license::LicenseView;
            use $wit as wit;

            impl wit::Host for LicenseView<'_> {
                fn current(&mut self) -> Option<wit::Entitlements> {
                    self.terms().map(|terms| wit::Entitlements {
                        customer: terms.customer.clone(),
                        expires: terms.expires.to_string(),
                        features: terms.features.clone(),
                    })
                }

                fn has_feature(&mut self, feature: String) -> bool {
                    self.terms()
                        .is_some_and(|terms| terms.features.contains(&feature))
                }
            }
        };
    };
}

pub(in crate::plugins) use license_glue;
