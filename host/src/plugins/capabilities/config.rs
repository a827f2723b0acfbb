//! `callboard:plugin/config` (API 0.3+): the operator's settings for the
//! plugin, `[plugins.settings.<id>]`. Before 0.5 the `events` interface
//! only defines types, so its (empty) glue lives here too.

use std::collections::BTreeMap;

/// What the `config` glue sees of a call: the plugin's settings.
pub struct ConfigView<'a> {
    pub(in crate::plugins) settings: &'a BTreeMap<String, String>,
}

/// The linker's projection onto [`ConfigView`].
pub struct Config;

impl wasmtime::component::HasData for Config {
    type Data<'a> = ConfigView<'a>;
}

/// The WIT glue for every API version with these interfaces.
macro_rules! config_glue {
    ($plugin:path) => {
        $crate::plugins::capabilities::config::config_glue!($plugin, own_events);
        const _: () = {
            use $crate::plugins::state::HostState;
            use $plugin as api;
            // Types only (0.3, 0.4): linked with the store's data itself.
            impl api::events::Host for HostState {}
        };
    };
    // 0.5+: `events` has functions, glued in `capabilities/events.rs`.
    ($plugin:path, own_events) => {
        const _: () = {
            use $crate::plugins::capabilities::config::ConfigView;
            use $plugin as api;

            impl api::config::Host for ConfigView<'_> {
                fn get(&mut self, key: String) -> Option<String> {
                    self.settings.get(&key).cloned()
                }
            }
        };
    };
}

pub(in crate::plugins) use config_glue;
