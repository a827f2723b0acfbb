//! A licence file's text, as uploaded to `/admin` or dropped into the
//! licences folder: parsing, the checks `verify` makes, and the messages.

use std::path::Path;

use callboard::config::{TrustConfig, TrustedVendor};
use callboard::plugins::license;
use callboard::plugins::trust::TrustStore;
use jiff::Timestamp;

/// One input: the file's bytes.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let trust = TrustStore::load(
        &TrustConfig {
            vendors: vec![TrustedVendor {
                id: "lanternfish".into(),
                public_key: "1cf5285b5cd781d7f048ab6efd1ecd4fed4f6db04143fc9787b55ecc89dbdaea"
                    .into(),
            }],
            ..TrustConfig::default()
        },
        Path::new("/nonexistent/trusted-vendors"),
    );
    // 2027-01-15, inside the demo licence's window.
    let now = Timestamp::from_second(1_800_000_000).expect("a valid time");
    let _ = message(license::verify(
        text,
        "insights",
        "lanternfish",
        "Brightwharf",
        &trust,
        now,
    ));
    let Ok(terms) = license::parse(text) else {
        return;
    };
    // Past the plugin and vendor checks, to the signature and the window.
    let _ = message(license::verify(
        text,
        &terms.plugin,
        &terms.vendor,
        &terms.customer,
        &trust,
        now,
    ));
    for at in [
        now,
        terms.not_before,
        terms.expires,
        Timestamp::MIN,
        Timestamp::MAX,
    ] {
        let _ = message(license::check_window(&terms, at));
    }
}

/// Every refusal renders its message (some format timestamps).
fn message<T>(result: Result<T, license::LicenseError>) -> Option<String> {
    result.err().map(|e| e.to_string())
}
