//! What one day of usage looks like once aggregated: counters by event kind,
//! page, entity, plugin and zero-result search, and events per (hashed) user.
//! Pure data, no host calls, so it is unit-tested natively.

use std::collections::{BTreeMap, BTreeSet};

use callboard_sdk::Event;
use serde::{Deserialize, Serialize};

/// Longest subject kept (page path, entity ref, search text), in bytes;
/// longer ones are cut at a character boundary.
const MAX_SUBJECT_BYTES: usize = 200;

/// One day's (or one batch's) usage. Maps are ordered so stored JSON is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Day {
    /// Events by kind (`page-view`, `search`, ...).
    pub kinds: BTreeMap<String, u64>,
    /// Page views by path.
    pub pages: BTreeMap<String, u64>,
    /// Entity views by entity ref, lower-case.
    pub entities: BTreeMap<String, u64>,
    /// Plugin calls by plugin id.
    pub plugins: BTreeMap<String, u64>,
    /// Searches that found nothing, by normalized search text.
    pub zero: BTreeMap<String, u64>,
    /// Events by user, keyed by a hash of the user id: distinct users are
    /// counted without keeping names.
    pub users: BTreeMap<String, u64>,
}

impl Day {
    /// Counts one event.
    pub fn add(&mut self, event: &Event) {
        bump(&mut self.kinds, &event.kind, 1);
        if let Some(user) = event.user.as_deref().filter(|u| !u.is_empty()) {
            bump(&mut self.users, &user_key(user), 1);
        }
        let subject = clip(event.subject.trim());
        match event.kind.as_str() {
            "page-view" if !subject.is_empty() => bump(&mut self.pages, subject, 1),
            "entity-view" if !subject.is_empty() => {
                bump(&mut self.entities, &subject.to_ascii_lowercase(), 1);
            }
            "plugin-call" if !subject.is_empty() => bump(&mut self.plugins, subject, 1),
            "search" => {
                let found = event
                    .attribute("results")
                    .and_then(|r| r.trim().parse::<u64>().ok());
                let text = normalize_search(subject);
                if found == Some(0) && !text.is_empty() {
                    bump(&mut self.zero, &text, 1);
                }
            }
            _ => {}
        }
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &Day) {
        for (mine, theirs) in [
            (&mut self.kinds, &other.kinds),
            (&mut self.pages, &other.pages),
            (&mut self.entities, &other.entities),
            (&mut self.plugins, &other.plugins),
            (&mut self.zero, &other.zero),
            (&mut self.users, &other.users),
        ] {
            for (key, n) in theirs {
                bump(mine, key, *n);
            }
        }
    }

    /// Keeps the `n` largest pages, entities, plugins and searches (so a
    /// day's roll-up stays bounded); kinds and users are never cut, so totals
    /// and distinct-user counts stay exact.
    pub fn cap(&mut self, n: usize) {
        for map in [
            &mut self.pages,
            &mut self.entities,
            &mut self.plugins,
            &mut self.zero,
        ] {
            if map.len() > n {
                let keep: BTreeSet<String> = top(map, n).into_iter().map(|(k, _)| k).collect();
                map.retain(|k, _| keep.contains(k));
            }
        }
    }

    /// Every event counted.
    pub fn events(&self) -> u64 {
        self.kinds.values().sum()
    }

    /// Events of `kind`.
    pub fn kind(&self, kind: &str) -> u64 {
        self.kinds.get(kind).copied().unwrap_or(0)
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(count) => *count = count.saturating_add(n),
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}

/// The `n` largest entries: count descending, then key ascending.
pub fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut entries: Vec<(&String, &u64)> = map.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    entries
        .into_iter()
        .take(n)
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// A stable 64-bit FNV-1a hash of a user id, as 16 hex digits: stable across
/// plugin versions (unlike std's hasher), so a day's users stay distinct.
pub fn user_key(user: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Search text as grouped: trimmed, lower-case, single spaces.
pub fn normalize_search(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn clip(text: &str) -> &str {
    if text.len() <= MAX_SUBJECT_BYTES {
        return text;
    }
    let mut end = MAX_SUBJECT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, user: Option<&str>, subject: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            at_ms: 0,
            user: user.map(str::to_owned),
            subject: subject.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn counts_each_kind_where_it_belongs() {
        let mut day = Day::default();
        day.add(&event("page-view", Some("alice"), "/catalog", &[]));
        day.add(&event(
            "entity-view",
            Some("alice"),
            "Component:default/Booking",
            &[],
        ));
        day.add(&event(
            "entity-view",
            Some("bob"),
            "component:default/booking",
            &[],
        ));
        day.add(&event(
            "search",
            Some("bob"),
            "  Zzzz  Top ",
            &[("results", "0")],
        ));
        day.add(&event(
            "search",
            Some("bob"),
            "booking",
            &[("results", "3")],
        ));
        day.add(&event("search", None, "", &[("results", "0")]));
        day.add(&event("plugin-call", None, "hello", &[("status", "200")]));
        day.add(&event("api-call", None, "/api/catalog/entities", &[]));
        assert_eq!(day.events(), 8);
        assert_eq!(day.kind("search"), 3);
        assert_eq!(day.pages["/catalog"], 1);
        assert_eq!(day.entities["component:default/booking"], 2);
        assert_eq!(day.zero.len(), 1);
        assert_eq!(day.zero["zzzz top"], 1);
        assert_eq!(day.plugins["hello"], 1);
        assert_eq!(day.users.len(), 2);
        assert_eq!(day.users[&user_key("bob")], 3);
    }

    #[test]
    fn merge_adds_and_cap_keeps_the_largest() {
        let mut a = Day::default();
        for page in ["/a", "/a", "/b", "/c", "/c", "/c"] {
            a.add(&event("page-view", Some(page), page, &[]));
        }
        let mut b = a.clone();
        b.merge(&a);
        assert_eq!(b.pages["/c"], 6);
        assert_eq!(b.events(), 12);
        b.cap(2);
        assert_eq!(top(&b.pages, 10), vec![("/c".into(), 6), ("/a".into(), 4)]);
        assert_eq!(b.users.len(), 3, "users are never cut");
        assert_eq!(b.events(), 12, "totals are never cut");
    }

    #[test]
    fn long_subjects_are_cut_on_a_character_boundary() {
        let long = "é".repeat(150);
        assert!(clip(&long).len() <= MAX_SUBJECT_BYTES);
        assert!(long.starts_with(clip(&long)));
        assert_ne!(user_key("alice"), user_key("bob"));
        assert_eq!(user_key("alice").len(), 16);
    }

    #[test]
    fn stored_json_round_trips() {
        let mut day = Day::default();
        day.add(&event("page-view", Some("alice"), "/", &[]));
        let json = serde_json::to_string(&day).unwrap();
        assert_eq!(serde_json::from_str::<Day>(&json).unwrap(), day);
        assert_eq!(serde_json::from_str::<Day>("{}").unwrap(), Day::default());
    }
}
