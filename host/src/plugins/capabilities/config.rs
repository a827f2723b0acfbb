//! `callboard:plugin/config` (API 0.3+): the operator's settings for the
//! plugin, `[plugins.settings.<id>]`. The `events` interface only defines
//! types, so its glue lives here too.

use crate::plugins::{bindings::v0_3_0::callboard::plugin as api, state::HostState};

impl api::config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.grants.settings.get(&key).cloned()
    }
}

impl api::events::Host for HostState {}
