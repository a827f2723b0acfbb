//! Where costs come from: billing export CSV files in the granted directory
//! `/billing`, or a billing HTTP API on a host the operator granted.

use std::collections::HashMap;

use callboard_sdk::{config, fetch};
use serde::Deserialize;

use crate::format::{Month, month_of_ms, parse_month};

/// The directory the operator mounts billing exports at.
pub const BILLING_DIR: &str = "/billing";

/// How long to wait for the billing API. The host also caps it at what is
/// left of the call's deadline.
const FETCH_TIMEOUT_MS: u32 = 700;

/// Where this plugin reads costs from, per its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Every `*.csv` in [`BILLING_DIR`].
    Files,
    /// `GET url` answering `{"rows": [...]}`.
    Http {
        /// The `billing_url` setting.
        url: String,
        /// The `billing_token` setting, sent as a bearer token.
        token: Option<String>,
    },
}

/// Why there are no costs to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// Neither a `/billing` directory nor a `billing_url` setting.
    NotConfigured,
    /// The settings are wrong (e.g. `source = "http"` without `billing_url`).
    Settings(String),
    /// The billing API's host is not granted to this plugin.
    Denied(String),
    /// The billing API did not answer usefully; worth retrying later.
    Unreachable(String),
    /// The source answered, but not with billing data.
    Invalid(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::NotConfigured => write!(
                f,
                "no cost source: grant the cost plugin a `{BILLING_DIR}` directory of billing \
                 export CSV files, or set `billing_url` in [plugins.settings.cost]"
            ),
            SourceError::Settings(why) => write!(f, "cost plugin settings: {why}"),
            SourceError::Denied(host) => {
                write!(f, "billing host {host} is not granted to the cost plugin")
            }
            SourceError::Unreachable(why) | SourceError::Invalid(why) => f.write_str(why),
        }
    }
}

impl Source {
    /// The source the settings choose: `source = "file" | "http"`; without
    /// it, files when `/billing` is mounted, else HTTP when `billing_url` is set.
    pub fn configured() -> Result<Source, SourceError> {
        let url = config::get("billing_url").filter(|u| !u.trim().is_empty());
        let http = |url: Option<String>| match url {
            Some(url) => Ok(Source::Http {
                url: url.trim().to_owned(),
                token: config::get("billing_token").filter(|t| !t.is_empty()),
            }),
            None => Err(SourceError::Settings(
                "`source = \"http\"` needs a `billing_url` setting".into(),
            )),
        };
        match config::get("source").as_deref().map(str::trim) {
            Some("file" | "files") => Ok(Source::Files),
            Some("http") => http(url),
            Some(other) => Err(SourceError::Settings(format!(
                "`source` is {other:?}; expected \"file\" or \"http\""
            ))),
            None if std::fs::metadata(BILLING_DIR).is_ok_and(|m| m.is_dir()) => Ok(Source::Files),
            None if url.is_some() => http(url),
            None => Err(SourceError::NotConfigured),
        }
    }

    /// Changes whenever the data may have: the names, sizes and modification
    /// times of the CSV files, or the API's URL.
    pub fn fingerprint(&self) -> Result<String, SourceError> {
        match self {
            Source::Http { url, .. } => Ok(format!("http {url}")),
            Source::Files => {
                let mut hash = Fnv::new();
                let files = csv_files()?;
                for (name, meta) in &files {
                    hash.write(name.as_bytes());
                    hash.write(&meta.len().to_le_bytes());
                    let modified = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    hash.write(&modified.to_le_bytes());
                }
                Ok(format!("files {} {:016x}", files.len(), hash.finish()))
            }
        }
    }

    /// What to call the source in views: `/billing (18 files)` or the URL.
    pub fn describe(&self) -> String {
        match self {
            Source::Files => BILLING_DIR.to_owned(),
            Source::Http { url, .. } => url.clone(),
        }
    }

    /// Reads every row into `rows`.
    pub fn read(&self, rows: &mut Rows) -> Result<(), SourceError> {
        match self {
            Source::Files => {
                let files = csv_files()?;
                if files.is_empty() {
                    return Err(SourceError::Invalid(format!(
                        "{BILLING_DIR} holds no *.csv billing export"
                    )));
                }
                for (name, _) in files {
                    let path = format!("{BILLING_DIR}/{name}");
                    let bytes = std::fs::read(&path)
                        .map_err(|e| SourceError::Invalid(format!("cannot read {path}: {e}")))?;
                    rows.read_csv(&path, &bytes)?;
                }
                Ok(())
            }
            Source::Http { url, token } => {
                let mut request = fetch::get(url.as_str())
                    .header("accept", "application/json")
                    .timeout_ms(FETCH_TIMEOUT_MS);
                if let Some(token) = token {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
                let response = request.send().map_err(|e| match e {
                    fetch::FetchError::Denied(host) => SourceError::Denied(host),
                    fetch::FetchError::InvalidUrl(why) => {
                        SourceError::Settings(format!("`billing_url` {url:?} is invalid: {why}"))
                    }
                    other => SourceError::Unreachable(format!("billing API {url}: {other}")),
                })?;
                if !(200..300).contains(&response.status) {
                    return Err(SourceError::Unreachable(format!(
                        "billing API {url} answered HTTP {}",
                        response.status
                    )));
                }
                let body: ApiBody = serde_json::from_slice(&response.body).map_err(|e| {
                    SourceError::Invalid(format!(
                        "billing API {url} did not answer {{\"rows\": [...]}}: {e}"
                    ))
                })?;
                for (i, row) in body.rows.into_iter().enumerate() {
                    let at = || format!("{url} rows[{i}]");
                    let cost = match &row.cost_usd {
                        serde_json::Value::Number(n) => n.as_f64(),
                        serde_json::Value::String(s) => s.trim().parse().ok(),
                        _ => None,
                    };
                    let Some(cost) = cost.filter(|c: &f64| c.is_finite()) else {
                        rows.skip(at(), format!("cost_usd {} is not a number", row.cost_usd));
                        continue;
                    };
                    rows.add(
                        at,
                        &row.month,
                        row.component.as_deref().unwrap_or(""),
                        row.service.as_deref().unwrap_or(""),
                        cost,
                    );
                }
                Ok(())
            }
        }
    }
}

#[derive(Deserialize)]
struct ApiBody {
    rows: Vec<ApiRow>,
}

#[derive(Deserialize)]
struct ApiRow {
    month: String,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    service: Option<String>,
    cost_usd: serde_json::Value,
}

/// The `*.csv` files in [`BILLING_DIR`], sorted by name.
fn csv_files() -> Result<Vec<(String, std::fs::Metadata)>, SourceError> {
    let entries = std::fs::read_dir(BILLING_DIR)
        .map_err(|e| SourceError::Invalid(format!("cannot list {BILLING_DIR}: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| SourceError::Invalid(format!("cannot list {BILLING_DIR}: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.to_ascii_lowercase().ends_with(".csv") {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| SourceError::Invalid(format!("cannot read {BILLING_DIR}/{name}: {e}")))?;
        if meta.is_file() {
            files.push((name, meta));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Billing rows summed by component, service and month, in dollars.
#[derive(Debug, Default)]
pub struct Rows {
    /// Rows of the current (incomplete) month and later are left out.
    pub current_month: Month,
    /// `(component key, service, month)` → dollars. The component key is
    /// empty for costs not tagged with a component.
    pub sums: HashMap<(String, String, Month), f64>,
    /// Rows that could not be read.
    pub skipped: u64,
    /// Where and why the first of them was skipped.
    pub first_skipped: Option<String>,
}

impl Rows {
    /// Collects rows of months before the one containing `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            current_month: month_of_ms(now_ms),
            ..Self::default()
        }
    }

    fn skip(&mut self, at: String, why: String) {
        self.skipped += 1;
        if self.first_skipped.is_none() {
            self.first_skipped = Some(format!("{at}: {why}"));
        }
    }

    /// Adds one row; `at` names it in the message if it is skipped.
    fn add(
        &mut self,
        at: impl Fn() -> String,
        month: &str,
        component: &str,
        service: &str,
        cost: f64,
    ) {
        let Some(month) = parse_month(month) else {
            self.skip(at(), format!("month {month:?} is not YYYY-MM"));
            return;
        };
        if month >= self.current_month {
            return;
        }
        let service = match service.trim() {
            "" => "other".to_owned(),
            s => s.to_ascii_lowercase(),
        };
        *self
            .sums
            .entry((component_key(component), service, month))
            .or_default() += cost;
    }

    /// Reads a billing export: a header row naming at least `month`,
    /// `component`, `service` and `cost_usd` (any order, any case; other
    /// columns such as `account` are ignored), then one row per cost line.
    pub fn read_csv(&mut self, path: &str, bytes: &[u8]) -> Result<(), SourceError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| SourceError::Invalid(format!("{path}: cannot read the header row: {e}")))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    SourceError::Invalid(format!(
                        "{path}: the header row has no `{name}` column \
                         (expected month,account,service,component,cost_usd)"
                    ))
                })
        };
        let (month, component, service, cost) = (
            column("month")?,
            column("component")?,
            column("service")?,
            column("cost_usd")?,
        );
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    self.skip(format!("{path} line {line}"), e.to_string());
                    continue;
                }
            }
            let line = record.position().map_or(line, |p| p.line());
            let at = || format!("{path} line {line}");
            let field = |i: usize| record.get(i).unwrap_or("");
            if record.iter().all(str::is_empty) {
                continue;
            }
            let Some(amount) = field(cost).parse::<f64>().ok().filter(|c| c.is_finite()) else {
                self.skip(at(), format!("cost_usd {:?} is not a number", field(cost)));
                continue;
            };
            let (m, c, s) = (
                field(month).to_owned(),
                field(component).to_owned(),
                field(service).to_owned(),
            );
            self.add(at, &m, &c, &s, amount);
        }
        Ok(())
    }
}

/// A billing `component` value as a catalog key: `payment-gateway`,
/// `component:payment-gateway` and `component:default/payment-gateway` are
/// all `payment-gateway`; other namespaces keep theirs (`ops/backup-job`).
pub fn component_key(value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    let value = value.strip_prefix("component:").unwrap_or(&value);
    value.strip_prefix("default/").unwrap_or(value).to_owned()
}

/// FNV-1a: a stable, dependency-free fingerprint hash.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::parse_month;

    #[test]
    fn reads_a_billing_export() {
        let mut rows = Rows::new(1_795_296_138_000); // 2026-11-21
        let csv = "\u{feff}Month,account,service,component,cost_usd\n\
                   2026-10,prod,compute,payment-gateway,100.25\n\
                   2026-10,prod,Compute,component:default/payment-gateway,\"1,5\"\n\
                   2026-10,prod,compute,Payment-Gateway,0.75\n\
                   2026-10-01,prod,storage,,10\n\
                   2026-11,prod,compute,payment-gateway,999\n\
                   2026-13,prod,compute,payment-gateway,1\n\
                   \n";
        rows.read_csv("/billing/a.csv", csv.as_bytes()).unwrap();
        let oct = parse_month("2026-10").unwrap();
        assert_eq!(
            rows.sums[&("payment-gateway".into(), "compute".into(), oct)],
            101.0
        );
        assert_eq!(rows.sums[&(String::new(), "storage".into(), oct)], 10.0);
        assert_eq!(
            rows.sums.len(),
            2,
            "November is incomplete: {:?}",
            rows.sums
        );
        assert_eq!(rows.skipped, 2);
        assert_eq!(
            rows.first_skipped.as_deref(),
            Some("/billing/a.csv line 3: cost_usd \"1,5\" is not a number")
        );
    }

    #[test]
    fn a_missing_column_names_the_file() {
        let mut rows = Rows::new(0);
        let err = rows
            .read_csv("/billing/x.csv", b"month,service,cost_usd\n")
            .unwrap_err();
        assert!(err.to_string().contains("/billing/x.csv"), "{err}");
        assert!(err.to_string().contains("`component`"), "{err}");
    }
}
