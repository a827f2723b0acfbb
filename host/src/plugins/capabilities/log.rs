//! `callboard:plugin/log`: plugin log records into the host log.

use crate::plugins::{
    bindings::{v0_1_0, v0_2_0, v0_3_0},
    state::HostState,
};

/// Longest message logged as is; longer ones are cut, so a plugin cannot
/// flood the log with one call.
const MAX_MESSAGE: usize = 8 << 10;

/// The WIT glue for every API version with this interface.
macro_rules! log_glue {
    ($plugin:path) => {
        const _: () = {
            use api::log;
            use $plugin as api;

            // The shared types interface has no functions, only the trait.
            impl api::types::Host for HostState {}

            impl log::Host for HostState {
                fn log(&mut self, level: log::Level, message: String) {
                    let message = truncate(&message, MAX_MESSAGE);
                    let plugin = &*self.label;
                    match level {
                        log::Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
                        log::Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
                        log::Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
                        log::Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
                        log::Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
                    }
                }
            }
        };
    };
}

log_glue!(v0_1_0::callboard::plugin);
log_glue!(v0_2_0::callboard::plugin);
log_glue!(v0_3_0::callboard::plugin);

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
