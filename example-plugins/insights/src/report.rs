//! The figures shown: a period of days against the period before it.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::model::{Day, top};

/// How many rows the top lists have.
pub const TOP: usize = 10;

/// Usage over a period, with the period before it for comparison.
#[derive(Debug)]
pub struct Report {
    /// Days in the period.
    pub days: u64,
    /// The period's days, oldest first, with their usage.
    pub period: Vec<(String, Day)>,
    /// Everything in the period.
    pub total: Day,
    /// Everything in the period before, of the same length.
    pub previous: Day,
    /// Distinct users in the last 7 days.
    pub wau: usize,
    /// Distinct users in the 7 days before those.
    pub wau_previous: usize,
}

impl Report {
    /// Builds a report from consecutive days, oldest first, ending today:
    /// at least `max(2 * days, 14)` of them (fewer are treated as empty).
    pub fn new(days: u64, history: Vec<(String, Day)>) -> Self {
        let n = usize::try_from(days)
            .unwrap_or(usize::MAX)
            .min(history.len());
        let split = history.len() - n;
        let previous_from = split.saturating_sub(n);
        let merge = |range: &[(String, Day)]| {
            let mut all = Day::default();
            for (_, day) in range {
                all.merge(day);
            }
            all
        };
        let distinct = |range: &[(String, Day)]| {
            range
                .iter()
                .flat_map(|(_, d)| d.users.keys())
                .collect::<BTreeSet<_>>()
                .len()
        };
        let week = history.len().saturating_sub(7);
        let week_before = week.saturating_sub(7);
        Self {
            days,
            total: merge(&history[split..]),
            previous: merge(&history[previous_from..split]),
            wau: distinct(&history[week..]),
            wau_previous: distinct(&history[week_before..week]),
            period: history[split..].to_vec(),
        }
    }

    /// Distinct users in the period.
    pub fn active_users(&self) -> usize {
        self.total.users.len()
    }

    /// Distinct users today (the period's last day).
    pub fn dau_today(&self) -> usize {
        self.period.last().map_or(0, |(_, d)| d.users.len())
    }

    /// Searches in the period that found nothing.
    pub fn zero_result_searches(&self) -> u64 {
        self.total.zero.values().sum()
    }

    /// The `GET /summary` body. `titles` gives entity titles by ref, when known.
    pub fn to_json(
        &self,
        licensed_to: Option<&str>,
        titles: &dyn Fn(&str) -> Option<String>,
    ) -> Value {
        let named = |map, key: &str, count: &str| -> Vec<Value> {
            top(map, TOP)
                .into_iter()
                .map(|(k, n)| json!({ key: k, count: n }))
                .collect()
        };
        let entities: Vec<Value> = top(&self.total.entities, TOP)
            .into_iter()
            .map(|(entity, views)| {
                let title = titles(&entity);
                json!({ "entity": entity, "title": title, "views": views })
            })
            .collect();
        json!({
            "days": self.days,
            "from": self.period.first().map(|(d, _)| d.as_str()),
            "to": self.period.last().map(|(d, _)| d.as_str()),
            "licensed_to": licensed_to,
            "events_seen": self.total.events(),
            "events_seen_previous": self.previous.events(),
            "totals": self.total.kinds,
            "active_users": self.active_users(),
            "active_users_previous": self.previous.users.len(),
            "dau": self.period.iter()
                .map(|(day, d)| json!({ "day": day, "users": d.users.len() }))
                .collect::<Vec<_>>(),
            "dau_today": self.dau_today(),
            "wau": self.wau,
            "wau_previous": self.wau_previous,
            "top_entities": entities,
            "top_pages": named(&self.total.pages, "path", "views"),
            "plugins": named(&self.total.plugins, "plugin", "calls"),
            "searches": self.total.kind("search"),
            "zero_result_searches": top(&self.total.zero, 2 * TOP)
                .into_iter()
                .map(|(query, count)| json!({ "query": query, "count": count }))
                .collect::<Vec<_>>(),
        })
    }

    /// One line per day: the CSV export.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "day,active_users,page_views,entity_views,searches,zero_result_searches,api_calls,plugin_calls,events\n",
        );
        for (day, d) in &self.period {
            out.push_str(&format!(
                "{day},{},{},{},{},{},{},{},{}\n",
                d.users.len(),
                d.kind("page-view"),
                d.kind("entity-view"),
                d.kind("search"),
                d.zero.values().sum::<u64>(),
                d.kind("api-call"),
                d.kind("plugin-call"),
                d.events(),
            ));
        }
        out
    }
}

/// A change against a previous figure: `+12%`, `-3%`, `new`, `±0`.
pub fn change_text(now: u64, before: u64) -> String {
    match (now, before) {
        (n, b) if n == b => "±0%".to_owned(),
        (_, 0) => "new".to_owned(),
        (n, b) => {
            // Integer percent, rounded half away from zero.
            let diff = i128::from(n) - i128::from(b);
            let pct = (diff * 200 + diff.signum() * i128::from(b)) / (2 * i128::from(b));
            format!("{pct:+}%")
        }
    }
}

#[cfg(test)]
mod tests {
    use callboard_sdk::Event;

    use super::*;

    fn day_with(users: &[&str], pages: &[&str]) -> Day {
        let mut day = Day::default();
        for (i, user) in users.iter().enumerate() {
            day.add(&Event {
                kind: "page-view".into(),
                at_ms: 0,
                user: Some((*user).into()),
                subject: pages.get(i).copied().unwrap_or("/").into(),
                attributes: vec![],
            });
        }
        day
    }

    #[test]
    fn periods_and_weeks() {
        // 28 days, oldest first: alice on day 0, bob every day of the last week,
        // carol once in the week before.
        let mut history: Vec<(String, Day)> = (0..28)
            .map(|i| (format!("d{i:02}"), Day::default()))
            .collect();
        history[0].1 = day_with(&["alice"], &["/old"]);
        for (_, day) in &mut history[21..] {
            *day = day_with(&["bob"], &["/new"]);
        }
        history[15].1 = day_with(&["carol", "bob"], &["/x", "/y"]);
        let report = Report::new(14, history);
        assert_eq!(report.period.len(), 14);
        assert_eq!(report.period[0].0, "d14");
        assert_eq!(report.active_users(), 2, "bob and carol");
        assert_eq!(report.previous.users.len(), 1, "alice");
        assert_eq!((report.wau, report.wau_previous), (1, 2));
        assert_eq!(report.dau_today(), 1);
        assert_eq!(report.total.pages["/new"], 7);
        let json = report.to_json(Some("Brightwharf"), &|_| None);
        assert_eq!(json["top_pages"][0], json!({ "path": "/new", "views": 7 }));
        assert_eq!(json["dau"].as_array().unwrap().len(), 14);
        assert_eq!(json["events_seen"], 9);
        let csv = report.to_csv();
        assert_eq!(csv.lines().count(), 15);
        assert!(csv.lines().nth(2).unwrap().starts_with("d15,2,2,"), "{csv}");
    }

    #[test]
    fn short_history_is_fine() {
        let report = Report::new(30, vec![("d0".into(), day_with(&["a"], &["/"]))]);
        assert_eq!(report.period.len(), 1);
        assert_eq!((report.active_users(), report.wau), (1, 1));
        assert_eq!(report.previous.events(), 0);
    }

    #[test]
    fn change_texts() {
        assert_eq!(change_text(112, 100), "+12%");
        assert_eq!(change_text(97, 100), "-3%");
        assert_eq!(change_text(5, 0), "new");
        assert_eq!(change_text(0, 0), "±0%");
        assert_eq!(change_text(0, 4), "-100%");
        assert_eq!(change_text(2, 3), "-33%");
    }
}
