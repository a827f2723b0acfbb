//! `callboard:plugin/log`: plugin log records into the host log.

/// Longest message logged as is; longer ones are cut, so a plugin cannot
/// flood the log with one call.
pub(in crate::plugins) const MAX_MESSAGE: usize = 8 << 10;

/// What the `log` glue sees of a call: who is logging and what remains of
/// the call's budget.
pub struct LogView<'a> {
    pub(in crate::plugins) label: &'a str,
    pub(in crate::plugins) budget: &'a mut LogBudget,
}

/// The linker's projection onto [`LogView`].
pub struct Log;

impl wasmtime::component::HasData for Log {
    type Data<'a> = LogView<'a>;
}

/// Lines and bytes one call may send through the `log` interface; the rest
/// is counted and reported once when the call ends.
pub struct LogBudget {
    pub(in crate::plugins) lines: u32,
    pub(in crate::plugins) bytes: usize,
    pub(in crate::plugins) dropped: u64,
}

/// Most `log` records one call may write.
pub const LOG_LINES: u32 = 1000;
/// Most `log` bytes one call may write.
pub const LOG_BYTES: usize = 64 << 10;

impl Default for LogBudget {
    fn default() -> Self {
        Self {
            lines: LOG_LINES,
            bytes: LOG_BYTES,
            dropped: 0,
        }
    }
}

/// The WIT glue for every API version with this interface.
macro_rules! log_glue {
    ($plugin:path) => {
        const _: () = {
            use api::log;
            use $crate::plugins::{
                capabilities::log::{LogView, MAX_MESSAGE, escape, truncate},
                state::HostState,
            };
            use $plugin as api;

            // The shared types interface has no functions, only the trait:
            // linked with the store's data itself.
            impl api::types::Host for HostState {}

            impl log::Host for LogView<'_> {
                fn log(&mut self, level: log::Level, message: String) {
                    let message = truncate(&message, MAX_MESSAGE);
                    if !self.budget.take(message.len()) {
                        return;
                    }
                    let message = escape(message);
                    let plugin = self.label;
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

impl LogBudget {
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
