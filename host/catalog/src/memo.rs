//! Answers remembered until the catalog changes: match counts and facet
//! counts, the two reads that visit every matching entity.
//!
//! An answer is kept with the change feed's head (the newest sequence
//! number) read *before* it was computed. Every catalog write appends to
//! the feed in its own transaction, so an answer is still exact while the
//! head has not moved; a read that finds another head computes again. The
//! head is read from the store on every call (one indexed lookup), not
//! taken from this replica's feed follower, so a client sees its own write
//! at once, and a write through another replica as soon as it commits.
//!
//! Bounded: at most [`KEPT`] answers per kind; past it the oldest half is
//! dropped.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Answers kept per kind.
const KEPT: usize = 256;

/// Remembered answers of one kind, by query.
pub(crate) struct Memo<T> {
    inner: Mutex<Entries<T>>,
}

struct Entries<T> {
    /// Query → (feed head when computed, insertion tick, answer).
    map: HashMap<String, (i64, u64, T)>,
    tick: u64,
}

impl<T: Clone> Memo<T> {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                tick: 0,
            }),
        }
    }

    /// The answer to `query` computed at feed head `head`, if kept.
    pub(crate) fn get(&self, query: &str, head: i64) -> Option<T> {
        let entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.map.get(query) {
            Some((h, _, answer)) if *h == head => Some(answer.clone()),
            _ => None,
        }
    }

    /// Keeps `answer` to `query`, computed after reading head `head`.
    pub(crate) fn put(&self, query: String, head: i64, answer: T) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.map.len() >= KEPT && !entries.map.contains_key(&query) {
            // Drop the older half (and anything computed at an older head).
            let mut ticks: Vec<u64> = entries.map.values().map(|(_, t, _)| *t).collect();
            ticks.sort_unstable();
            let cut = ticks[ticks.len() / 2];
            entries.map.retain(|_, (h, t, _)| *t >= cut && *h >= head);
        }
        entries.tick += 1;
        let tick = entries.tick;
        entries.map.insert(query, (head, tick, answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_holds_only_at_its_head() {
        let memo = Memo::new();
        memo.put("q".into(), 7, 42u64);
        assert_eq!(memo.get("q", 7), Some(42));
        assert_eq!(memo.get("q", 8), None);
        assert_eq!(memo.get("other", 7), None);
    }

    #[test]
    fn it_stays_bounded() {
        let memo = Memo::new();
        for i in 0..10 * KEPT {
            memo.put(format!("q{i}"), 1, i);
        }
        let kept = memo.inner.lock().unwrap().map.len();
        assert!(kept <= KEPT, "{kept} answers kept");
        assert_eq!(
            memo.get(&format!("q{}", 10 * KEPT - 1), 1),
            Some(10 * KEPT - 1)
        );
    }
}
