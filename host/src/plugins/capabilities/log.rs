//! `callboard:plugin/log`: plugin log records into the host log.

/// Longest message logged as is; longer ones are cut, so a plugin cannot
/// flood the log with one call.
pub(in crate::plugins) const MAX_MESSAGE: usize = 8 << 10;

/// The WIT glue for every API version with this interface.
macro_rules! log_glue {
    ($plugin:path) => {
        const _: () = {
            use api::log;
            use $crate::plugins::{
                capabilities::log::{MAX_MESSAGE, escape, truncate},
                state::HostState,
            };
            use $plugin as api;

            // The shared types interface has no functions, only the trait.
            impl api::types::Host for HostState {}

            impl log::Host for HostState {
                fn log(&mut self, level: log::Level, message: String) {
                    let message = truncate(&message, MAX_MESSAGE);
                    if !self.log.take(message.len()) {
                        return;
                    }
                    let message = escape(message);
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

pub(in crate::plugins) use log_glue;

impl crate::plugins::state::LogBudget {
    /// Charges one record of `bytes`; false (and counted) once the call's
    /// budget is spent.
    pub(in crate::plugins) fn take(&mut self, bytes: usize) -> bool {
        if self.lines == 0 || bytes > self.bytes {
            self.dropped += 1;
            return false;
        }
        self.lines -= 1;
        self.bytes -= bytes;
        true
    }
}

/// A plugin's text made safe for one host log line: newlines and every other
/// control character are escaped, so a plugin cannot start a line that looks
/// like the host's own or rewrite the terminal.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
