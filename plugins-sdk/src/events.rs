//! Usage and catalog events a plugin subscribed to (manifest
//! `capabilities.events`), delivered in batches to [`crate::Plugin::on_events`],
//! and (plugin API 0.5, `capabilities.publish`) the plugin's own events,
//! [`publish`]ed into the usage stream for other plugins to count.

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `page-view`, `entity-view`, `api-call`, `search`, `plugin-call`,
    /// `entity-added`, `entity-changed` or `entity-removed`; a plugin's own
    /// are `<plugin-id>.<kind>`.
    pub kind: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Who, when known.
    pub user: Option<String>,
    /// The page path, entity ref, API path, search text or plugin id.
    pub subject: String,
    /// Details by kind: `status`, `duration-ms`, `results`, `plugin`, ...
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// The value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The UTC day of the event, `YYYY-MM-DD`.
    pub fn day(&self) -> String {
        day_of(self.at_ms)
    }

    pub(crate) fn from_wit(e: crate::bindings::callboard::plugin::events::Event) -> Self {
        Self {
            kind: e.kind,
            at_ms: e.at_ms,
            user: e.user,
            subject: e.subject,
            attributes: e.attributes,
        }
    }
}

/// The UTC day `YYYY-MM-DD` of `ms` since the Unix epoch.
pub fn day_of(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
        Err(_) => "9999-12-31".to_owned(),
    }
}

/// Publishes one of this plugin's own events into the usage stream (plugin
/// API 0.5, `capabilities.publish`): it reaches subscribers as
/// `<plugin-id>.<kind>`, with the time and the call's person set by the
/// host. `kind` and attribute names are lower-case letters, digits and
/// `-` (at most 48); at most 8 attributes; text is cut to 1 KiB; one call
/// publishes at most 16. Never waits: a subscriber that falls behind drops
/// it. The error says what was refused.
///
/// ```no_run
/// callboard_sdk::events::publish("question", "", &[("found", "true")])?;
/// # Ok::<(), String>(())
/// ```
pub fn publish(kind: &str, subject: &str, attributes: &[(&str, &str)]) -> Result<(), String> {
    #[cfg(not(feature = "api-0-4"))]
    {
        let attributes: Vec<(String, String)> = attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        crate::bindings::callboard::plugin::events::publish(kind, subject, &attributes)
    }
    #[cfg(feature = "api-0-4")]
    {
        let _ = (kind, subject, attributes);
        Err("publishing events needs plugin API 0.5".into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn days() {
        assert_eq!(super::day_of(0), "1970-01-01");
        assert_eq!(super::day_of(951_782_400_000), "2000-02-29");
    }
}
