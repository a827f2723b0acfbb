//! Usage and catalog events a plugin subscribed to (manifest
//! `capabilities.events`), delivered in batches to [`crate::Plugin::on_events`].

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `page-view`, `entity-view`, `api-call`, `search`, `plugin-call`,
    /// `entity-added`, `entity-changed` or `entity-removed`.
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

#[cfg(test)]
mod tests {
    #[test]
    fn days() {
        assert_eq!(super::day_of(0), "1970-01-01");
        assert_eq!(super::day_of(951_782_400_000), "2000-02-29");
    }
}
