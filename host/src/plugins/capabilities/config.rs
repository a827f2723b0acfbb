//! `callboard:plugin/config` (API 0.3+): the operator's settings for the
//! plugin, `[plugins.settings.<id>]`. The `events` interface only defines
//! types, so its glue lives here too.

/// The WIT glue for every API version with these interfaces.
macro_rules! config_glue {
    ($plugin:path) => {
        const _: () = {
            use $crate::plugins::state::HostState;
            use $plugin as api;

            impl api::config::Host for HostState {
                fn get(&mut self, key: String) -> Option<String> {
                    self.grants.settings.get(&key).cloned()
                }
            }

            impl api::events::Host for HostState {}
        };
    };
}

pub(in crate::plugins) use config_glue;
