//! `callboard:plugin/config` (API 0.3+): the operator's settings for the
//! plugin, `[plugins.settings.<id>]`. The `events` interface only defines
//! types, so its glue lives here too.

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
        const _: () = {
            use $crate::plugins::{capabilities::config::ConfigView, state::HostState};
            use $plugin as api;

            impl api::config::Host for ConfigView<'_> {
                fn get(&mut self, key: String) -> Option<String> {
                    self.settings.get(&key).cloned()
                }
            }

            // Types only: linked with the store's data itself.
            impl api::events::Host for HostState {}
        };
    };
}

pub(in crate::plugins) use config_glue;
