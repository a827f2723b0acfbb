//! What the views and the API compute from monthly series: the latest month
//! and its change, the 12-month trend, anomalies and top movers.
//!
//! **Anomaly rule** (also in the README). The latest complete month is
//! flagged when its cost rose by at least `anomaly_min_usd` (default $100)
//! and either
//! - *jump*: it is at least 30% above the month before, or
//! - *outlier*: it is at least 10% above the month before and above the mean
//!   of the up to 6 months before it plus two standard deviations, with the
//!   deviation counted as at least 10% of the mean (so a flat series does not
//!   flag small wiggles), given at least 3 such months of data.
//!
//! For the outlier rule the rise is counted against the mean; months before
//! a series' first cost do not count. The 10% month-over-month condition
//! keeps steady growth (which always ends above mean + 2σ of a straight
//! line) from being flagged month after month.

use serde_json::{Value, json};

use crate::format::{self, Month, change_pct, dollars, month_iso, month_label, usd};

/// Months in a trend.
pub const TREND_MONTHS: usize = 12;
/// Months the outlier rule compares against.
const BASELINE_MONTHS: usize = 6;
/// Fewest baseline months the outlier rule needs.
const MIN_BASELINE_MONTHS: usize = 3;
/// The jump rule's rise, in percent.
const JUMP_PCT: i64 = 30;
/// The outlier rule's least rise on the month before, in percent.
const OUTLIER_MIN_PCT: i64 = 10;

/// The figures of one series at its latest month.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The latest complete month.
    pub month: Month,
    /// Its cost in cents.
    pub latest: i64,
    /// The month before's, in cents.
    pub previous: i64,
    /// Up to the last [`TREND_MONTHS`] months, oldest first.
    pub trend: Vec<(Month, i64)>,
    /// The sum of the trend.
    pub total_12m: i64,
    /// Why the latest month is an anomaly, if it is.
    pub anomaly: Option<Anomaly>,
}

/// Why a month was flagged.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// One sentence per rule that fired.
    pub reasons: Vec<String>,
    /// The mean of the baseline months in cents, if there were enough.
    pub baseline: Option<i64>,
}

impl Summary {
    /// Summarizes `series`, whose index 0 is month `first` and whose last
    /// element is the latest month. `min_cents` is the anomaly rules' floor.
    pub fn of(series: &[i64], first: Month, min_cents: i64) -> Summary {
        let n = series.len();
        let month = first + n as Month - 1;
        let latest = series.last().copied().unwrap_or(0);
        let previous = if n >= 2 { series[n - 2] } else { 0 };
        let start = n.saturating_sub(TREND_MONTHS);
        let trend: Vec<(Month, i64)> = series[start..]
            .iter()
            .enumerate()
            .map(|(i, c)| (first + (start + i) as Month, *c))
            .collect();
        Summary {
            month,
            latest,
            previous,
            total_12m: trend.iter().map(|(_, c)| c).sum(),
            trend,
            anomaly: anomaly(series, month, min_cents),
        }
    }

    /// Latest minus previous, in cents.
    pub fn delta(&self) -> i64 {
        self.latest - self.previous
    }

    /// The month-over-month change in percent, when there is a previous cost.
    pub fn change_pct(&self) -> Option<f64> {
        change_pct(self.latest, self.previous)
    }

    /// Whether anything was spent during the trend's months.
    pub fn has_recent_cost(&self) -> bool {
        self.trend.iter().any(|(_, c)| *c != 0)
    }

    /// The change as text: `+12%`, `-3%`, `new`, `0%`.
    pub fn change_text(&self) -> String {
        match self.change_pct() {
            Some(p) => format::pct(p),
            None if self.latest > 0 => "new".to_owned(),
            None => "0%".to_owned(),
        }
    }

    /// The summary as JSON: `month`, `cost_usd`, `previous_usd`,
    /// `change_pct`, `total_12m_usd`, `anomaly`.
    pub fn json(&self) -> Value {
        json!({
            "month": month_iso(self.month),
            "cost_usd": dollars(self.latest),
            "previous_usd": dollars(self.previous),
            "change_usd": dollars(self.delta()),
            "change_pct": format::pct_json(self.change_pct()),
            "total_12m_usd": dollars(self.total_12m),
            "anomaly": self.anomaly.as_ref().map(|a| json!({
                "reasons": a.reasons,
                "baseline_usd": a.baseline.map(dollars),
            })),
        })
    }

    /// The trend as JSON: `[{"month", "cost_usd"}]`.
    pub fn trend_json(&self) -> Value {
        Value::Array(
            self.trend
                .iter()
                .map(|(m, c)| json!({ "month": month_iso(*m), "cost_usd": dollars(*c) }))
                .collect(),
        )
    }
}

/// Applies the anomaly rule (see the module docs) to the last month of `series`.
fn anomaly(series: &[i64], month: Month, min_cents: i64) -> Option<Anomaly> {
    let (&latest, before) = series.split_last()?;
    let previous = before.last().copied().unwrap_or(0);
    let rose_by = |pct: i64| previous > 0 && (latest - previous) * 100 >= previous * pct;
    let mut reasons = Vec::new();
    if latest - previous >= min_cents && rose_by(JUMP_PCT) {
        reasons.push(format!(
            "{} vs {} ({} → {})",
            format::pct(change_pct(latest, previous).unwrap_or(0.0)),
            month_label(month - 1),
            usd(previous),
            usd(latest),
        ));
    }
    // Baseline: up to 6 months before the latest, from the first month with a cost.
    let started = before.iter().position(|c| *c != 0).unwrap_or(before.len());
    let window = &before[started.max(before.len().saturating_sub(BASELINE_MONTHS))..];
    let mut baseline = None;
    if window.len() >= MIN_BASELINE_MONTHS {
        let n = window.len() as f64;
        let mean = window.iter().sum::<i64>() as f64 / n;
        let variance = window
            .iter()
            .map(|c| (*c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let sigma = variance.sqrt().max(0.1 * mean.abs());
        let threshold = mean + 2.0 * sigma;
        baseline = Some(mean.round() as i64);
        if latest as f64 > threshold
            && latest as f64 - mean >= min_cents as f64
            && rose_by(OUTLIER_MIN_PCT)
        {
            reasons.push(format!(
                "{} is above the {}-month mean of {} plus 2σ ({})",
                usd(latest),
                window.len(),
                usd(mean.round() as i64),
                usd(threshold.round() as i64),
            ));
        }
    }
    (!reasons.is_empty()).then_some(Anomaly { reasons, baseline })
}

/// One entry of a top-movers list.
#[derive(Debug, Clone, PartialEq)]
pub struct Mover {
    /// What moved (a component key).
    pub key: String,
    /// Latest month, in cents.
    pub latest: i64,
    /// The month before, in cents.
    pub previous: i64,
}

impl Mover {
    /// Latest minus previous, in cents.
    pub fn delta(&self) -> i64 {
        self.latest - self.previous
    }

    /// The change in percent, if there was a previous cost.
    pub fn pct(&self) -> Option<f64> {
        change_pct(self.latest, self.previous)
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "component": self.key,
            "cost_usd": dollars(self.latest),
            "previous_usd": dollars(self.previous),
            "change_usd": dollars(self.delta()),
            "change_pct": format::pct_json(self.pct()),
        })
    }
}

/// The `limit` largest absolute changes between the last two months, largest
/// first (ties by key). Nothing that did not change is listed.
pub fn movers_by_amount<'a>(
    series: impl IntoIterator<Item = (&'a String, &'a [i64])>,
    limit: usize,
) -> Vec<Mover> {
    let mut movers = last_two(series);
    movers.retain(|m| m.delta() != 0);
    movers.sort_by(|a, b| {
        b.delta()
            .abs()
            .cmp(&a.delta().abs())
            .then_with(|| a.key.cmp(&b.key))
    });
    movers.truncate(limit);
    movers
}

/// The `limit` largest relative changes between the last two months, among
/// series whose previous month cost at least `min_cents` (so a $3 line going
/// to $9 is not the top story).
pub fn movers_by_ratio<'a>(
    series: impl IntoIterator<Item = (&'a String, &'a [i64])>,
    min_cents: i64,
    limit: usize,
) -> Vec<Mover> {
    let mut movers = last_two(series);
    movers.retain(|m| m.previous >= min_cents.max(1) && m.delta() != 0);
    movers.sort_by(|a, b| {
        let (pa, pb) = (a.pct().unwrap_or(0.0).abs(), b.pct().unwrap_or(0.0).abs());
        pb.total_cmp(&pa).then_with(|| a.key.cmp(&b.key))
    });
    movers.truncate(limit);
    movers
}

fn last_two<'a>(series: impl IntoIterator<Item = (&'a String, &'a [i64])>) -> Vec<Mover> {
    series
        .into_iter()
        .map(|(key, s)| {
            let n = s.len();
            Mover {
                key: key.clone(),
                latest: s.last().copied().unwrap_or(0),
                previous: if n >= 2 { s[n - 2] } else { 0 },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::parse_month;

    const MIN: i64 = 100 * 100;

    fn summary(series: &[i64]) -> Summary {
        Summary::of(series, parse_month("2025-01").unwrap(), MIN)
    }

    #[test]
    fn latest_change_and_trend() {
        let series: Vec<i64> = (1..=14).map(|i| i * 100 * 100).collect();
        let s = summary(&series);
        assert_eq!(month_iso(s.month), "2026-02");
        assert_eq!((s.latest, s.previous), (1400 * 100, 1300 * 100));
        assert_eq!(s.trend.len(), 12);
        assert_eq!(month_iso(s.trend[0].0), "2025-03");
        assert_eq!(s.total_12m, (3..=14).map(|i| i * 100 * 100).sum::<i64>());
        assert_eq!(s.change_text(), "+8%");
        // Steady growth is not an anomaly.
        assert_eq!(s.anomaly, None, "{s:?}");
    }

    #[test]
    fn a_jump_is_an_anomaly() {
        let s = summary(&[1000 * 100, 1000 * 100, 1300 * 100]);
        let a = s.anomaly.expect("30% up is a jump");
        assert_eq!(a.reasons, ["+30% vs Feb 2025 ($1,000 → $1,300)"]);
        // Below the floor: not flagged.
        assert_eq!(summary(&[100 * 100, 190 * 100]).anomaly, None);
        // 29% is not a jump, and too few months for the outlier rule.
        assert_eq!(summary(&[1000 * 100, 1290 * 100]).anomaly, None);
    }

    #[test]
    fn an_outlier_is_an_anomaly() {
        // Flat at $1,000, then $1,250: +25% is no jump, but above mean + 2 * 10%.
        let s = summary(&[
            0,
            0,
            1000 * 100,
            1000 * 100,
            1000 * 100,
            1000 * 100,
            1250 * 100,
        ]);
        let a = s.anomaly.expect("outlier");
        assert_eq!(
            a.reasons,
            ["$1,250 is above the 4-month mean of $1,000 plus 2σ ($1,200)"]
        );
        assert_eq!(a.baseline, Some(1000 * 100));
        // Within mean + 2σ of a noisy baseline.
        let noisy = summary(&[
            800 * 100,
            1200 * 100,
            800 * 100,
            1200 * 100,
            800 * 100,
            1200 * 100,
            1350 * 100,
        ]);
        assert_eq!(noisy.anomaly, None, "{noisy:?}");
    }

    #[test]
    fn movers() {
        let a = ("a".to_owned(), vec![1000 * 100, 1500 * 100]);
        let b = ("b".to_owned(), vec![200 * 100, 500 * 100]);
        let c = ("c".to_owned(), vec![3000 * 100, 2000 * 100]);
        let d = ("d".to_owned(), vec![5 * 100, 50 * 100]);
        let all = [&a, &b, &c, &d];
        let by_amount = movers_by_amount(all.iter().map(|(k, s)| (k, s.as_slice())), 3);
        let keys: Vec<&str> = by_amount.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["c", "a", "b"]);
        let by_ratio = movers_by_ratio(all.iter().map(|(k, s)| (k, s.as_slice())), MIN, 3);
        let keys: Vec<&str> = by_ratio.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }
}
