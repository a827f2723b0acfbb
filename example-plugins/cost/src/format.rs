//! Months, money and percentages as the views and the JSON API show them.

/// A calendar month as `year * 12 + (month - 1)`, so consecutive months are
/// consecutive integers.
pub type Month = i32;

/// Parses `YYYY-MM` (a longer date such as `YYYY-MM-DD` counts for its month).
pub fn parse_month(text: &str) -> Option<Month> {
    let text = text.trim();
    let year: i32 = text.get(..4)?.parse().ok()?;
    if text.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    let month: i32 = text.get(5..7)?.parse().ok()?;
    let rest = &text[7..];
    if !(1..=12).contains(&month) || !(rest.is_empty() || rest.starts_with('-')) {
        return None;
    }
    Some(year * 12 + month - 1)
}

/// The month containing `ms` milliseconds since the Unix epoch (UTC).
pub fn month_of_ms(ms: u64) -> Month {
    // Howard Hinnant's days-to-civil algorithm.
    let days = (ms / 86_400_000) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year * 12 + month - 1) as Month
}

/// `2026-10`.
pub fn month_iso(month: Month) -> String {
    format!(
        "{:04}-{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// `Oct 2026`.
pub fn month_label(month: Month) -> String {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {}",
        NAMES[month.rem_euclid(12) as usize],
        month.div_euclid(12)
    )
}

/// Whole dollars with thousands separators, rounded half away from zero:
/// `$4,210`, `-$35`.
pub fn usd(cents: i64) -> String {
    let dollars = (cents.unsigned_abs() + 50) / 100;
    let digits = dollars.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if cents < 0 && dollars > 0 { "-" } else { "" };
    format!("{sign}${grouped}")
}

/// A signed change in dollars: `+$1,200`, `-$80`, `$0`.
pub fn usd_delta(cents: i64) -> String {
    if cents > 0 {
        format!("+{}", usd(cents))
    } else {
        usd(cents)
    }
}

/// Cents as a JSON number of dollars (two decimals).
pub fn dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// The change from `previous` to `current` in percent, or `None` when there
/// is no previous amount to compare with.
pub fn change_pct(current: i64, previous: i64) -> Option<f64> {
    (previous > 0).then(|| (current - previous) as f64 * 100.0 / previous as f64)
}

/// A percentage change as text: whole percent (`+12%`, `-3%`), one decimal
/// below 1% (`+0.4%`), `0%` for none.
pub fn pct(pct: f64) -> String {
    if pct == 0.0 {
        "0%".to_owned()
    } else if pct.abs() < 0.95 {
        format!("{pct:+.1}%")
    } else {
        format!("{pct:+.0}%")
    }
}

/// A percentage rounded to one decimal, for JSON.
pub fn pct_json(pct: Option<f64>) -> Option<f64> {
    pct.map(|p| (p * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        let oct = parse_month("2026-10").unwrap();
        assert_eq!(month_iso(oct), "2026-10");
        assert_eq!(month_label(oct), "Oct 2026");
        assert_eq!(parse_month("2026-10-31"), Some(oct));
        assert_eq!(month_iso(oct + 3), "2027-01");
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("2026/10"), None);
        assert_eq!(parse_month("2026-1"), None);
        // 2026-11-21T21:22:18Z
        assert_eq!(month_iso(month_of_ms(1_795_296_138_000)), "2026-11");
        assert_eq!(month_iso(month_of_ms(0)), "1970-01");
    }

    #[test]
    fn money_and_percent() {
        assert_eq!(usd(421_049), "$4,210");
        assert_eq!(usd(421_050), "$4,211");
        assert_eq!(usd(0), "$0");
        assert_eq!(usd(-3_500), "-$35");
        assert_eq!(usd(12_345_678_900), "$123,456,789");
        assert_eq!(usd_delta(120_000), "+$1,200");
        assert_eq!(pct(12.3), "+12%");
        assert_eq!(pct(-3.4), "-3%");
        assert_eq!(pct(0.44), "+0.4%");
        assert_eq!(pct(0.0), "0%");
        assert_eq!(change_pct(110, 100), Some(10.0));
        assert_eq!(change_pct(5, 0), None);
    }
}
