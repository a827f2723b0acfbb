//! `callboard:plugin/log`: plugin log records into the host log.

use crate::plugins::{
    bindings::v0_1_0::callboard::plugin::{log, types},
    state::HostState,
};

// The shared types interface has no functions, only the trait to implement.
impl types::Host for HostState {}

/// Longest message logged as is; longer ones are cut, so a plugin cannot
/// flood the log with one call.
const MAX_MESSAGE: usize = 8 << 10;

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
