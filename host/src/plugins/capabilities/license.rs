//! `callboard:plugin/license` (API 0.2+): a commercial plugin's entitlements.
//! The host checked the licence before the call; this only reports it.

use crate::plugins::{bindings::v0_2_0::callboard::plugin::license as wit, state::HostState};

impl wit::Host for HostState {
    fn current(&mut self) -> Option<wit::Entitlements> {
        self.license.as_ref().map(|terms| wit::Entitlements {
            customer: terms.customer.clone(),
            expires: terms.expires.to_string(),
            features: terms.features.clone(),
        })
    }

    fn has_feature(&mut self, feature: String) -> bool {
        self.license
            .as_ref()
            .is_some_and(|terms| terms.features.contains(&feature))
    }
}
