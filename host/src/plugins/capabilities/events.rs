//! `callboard:plugin/events` (API 0.5+): a plugin publishes its own events
//! into the usage stream, for the plugins subscribed to it to count (the
//! knowledge assistant's questions reach insights this way). Granted as
//! `capabilities.publish`. The host names the event `<plugin-id>.<kind>`
//! and sets its time and user (the call's person), so a plugin cannot pass
//! its events off as the portal's or another plugin's, or name someone
//! else; every field is bounded, and so is the number per call.

use std::sync::Arc;

use crate::plugins::events::{Event, EventBus, Stream};

/// Most events one call publishes.
pub const MAX_PER_CALL: u8 = 16;
/// Most attributes one event carries.
pub const MAX_ATTRIBUTES: usize = 8;
/// Longest kind or attribute name.
pub const MAX_NAME: usize = 48;

/// What the `events` glue sees of a call.
pub struct EventsView<'a> {
    pub(in crate::plugins) label: &'a str,
    pub(in crate::plugins) plugin: &'a str,
    /// The call's person, when a person.
    pub(in crate::plugins) user: Option<&'a str>,
    pub(in crate::plugins) bus: &'a Arc<EventBus>,
    pub(in crate::plugins) granted: bool,
    /// Events this call published.
    pub(in crate::plugins) published: &'a mut u8,
}

/// The linker's projection onto [`EventsView`].
pub struct Events;

impl wasmtime::component::HasData for Events {
    type Data<'a> = EventsView<'a>;
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl EventsView<'_> {
    /// `events.publish`.
    pub(in crate::plugins) fn events_publish(
        &mut self,
        kind: &str,
        subject: String,
        attributes: Vec<(String, String)>,
    ) -> Result<(), String> {
        if !self.granted {
            crate::telemetry::metrics::plugin_denied(self.label);
            return Err("publishing events is not granted to this plugin".into());
        }
        if *self.published >= MAX_PER_CALL {
            return Err(format!("one call publishes at most {MAX_PER_CALL} events"));
        }
        if !valid_name(kind) {
            return Err(format!(
                "an event kind is 1-{MAX_NAME} lower-case letters, digits and '-'"
            ));
        }
        if attributes.len() > MAX_ATTRIBUTES || attributes.iter().any(|(name, _)| !valid_name(name))
        {
            return Err(format!(
                "an event takes at most {MAX_ATTRIBUTES} attributes, named like kinds"
            ));
        }
        *self.published += 1;
        let mut event = Event::now(
            format!("{}.{kind}", self.plugin),
            self.user.map(str::to_owned),
            subject,
        );
        for (name, value) in attributes {
            event = event.with(name, value);
        }
        // Never waits: a full subscriber queue drops it and counts the drop.
        self.bus.publish(Stream::Usage, event);
        Ok(())
    }
}

/// The WIT glue for every API version whose `events` interface has
/// functions (0.5+).
macro_rules! events_glue {
    ($wit:path) => {
        const _: () = {
            use $crate::plugins::capabilities::events::EventsView;
            use $wit as wit;

            impl wit::Host for EventsView<'_> {
                fn publish(
                    &mut self,
                    kind: String,
                    subject: String,
                    attributes: Vec<(String, String)>,
                ) -> Result<(), String> {
                    self.events_publish(&kind, subject, attributes)
                }
            }
        };
    };
}

pub(in crate::plugins) use events_glue;
