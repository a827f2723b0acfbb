//! Writes the demo's billing export: `YYYY-MM.csv` files, one per month from
//! 2025-05 to 2026-10, with the costs of every component of the demo catalog
//! (Brightwharf). Deterministic: the same files every run, on every platform
//! (no floating-point library functions, a hash-seeded generator).
//!
//! Run from the repository root (std only, no cargo needed):
//!
//! ```sh
//! rustc --edition 2024 -O demo/billing/generate.rs -o target/generate-billing
//! target/generate-billing demo/billing
//! ```

use std::{fmt::Write as _, path::PathBuf};

/// First and last month written, as `year * 12 + month - 1`.
const FIRST: i32 = 2025 * 12 + 4; // 2025-05
const LAST: i32 = 2026 * 12 + 9; // 2026-10

/// How much busier each calendar month is than average for a parcel carrier:
/// quiet after Christmas, the peak from October to December.
const SEASON: [f64; 12] = [
    0.92, 0.90, 0.95, 0.97, 0.98, 0.97, 0.96, 0.95, 1.00, 1.04, 1.15, 1.22,
];

/// One line of spend: a component's use of one service.
struct Line {
    service: &'static str,
    /// Dollars in the first month, before seasonality and noise.
    base: f64,
    /// Growth per month, e.g. 0.015 for 1.5%.
    growth: f64,
}

struct Component {
    /// Catalog name; empty for costs not tagged with a component.
    name: &'static str,
    account: &'static str,
    /// 0 = not seasonal, 1 = follows parcel volume fully.
    season: f64,
    /// First month with costs (a component launched during the period).
    since: i32,
    lines: Vec<Line>,
}

fn line(service: &'static str, base: f64, growth: f64) -> Line {
    Line {
        service,
        base,
        growth,
    }
}

fn month(year: i32, month: i32) -> i32 {
    year * 12 + month - 1
}

fn component(
    name: &'static str,
    account: &'static str,
    season: f64,
    lines: Vec<Line>,
) -> Component {
    Component {
        name,
        account,
        season,
        since: FIRST,
        lines,
    }
}

/// Every component of demo/catalog, plus untagged shared costs and one
/// component the catalog rejects (`parcel-insurance`, see broken.yaml).
fn components() -> Vec<Component> {
    let library = |name, ci: f64, registry: f64| {
        component(
            name,
            "bw-tools",
            0.0,
            vec![
                line("ci", ci, 0.01),
                line("artifact-registry", registry, 0.015),
            ],
        )
    };
    vec![
        // booking (shipping-team)
        component(
            "booking-service",
            "bw-prod",
            0.8,
            vec![
                line("compute", 3200.0, 0.012),
                line("database", 1850.0, 0.010),
                line("storage", 210.0, 0.020),
                line("data-transfer", 340.0, 0.012),
                line("monitoring", 180.0, 0.005),
            ],
        ),
        component(
            "quote-engine",
            "bw-prod",
            0.7,
            vec![
                line("compute", 2400.0, 0.015),
                line("cache", 620.0, 0.010),
                line("data-transfer", 150.0, 0.015),
                line("monitoring", 110.0, 0.005),
            ],
        ),
        component(
            "customer-portal",
            "bw-prod",
            0.9,
            vec![
                line("cdn", 880.0, 0.010),
                line("compute", 950.0, 0.008),
                line("storage", 120.0, 0.010),
                line("monitoring", 90.0, 0.0),
            ],
        ),
        component(
            "rate-card-importer",
            "bw-prod",
            0.0,
            vec![
                line("batch-compute", 310.0, 0.005),
                line("storage", 140.0, 0.010),
            ],
        ),
        component(
            "quote-legacy-soap",
            "bw-prod",
            0.5,
            vec![
                line("compute", 1700.0, -0.010),
                line("database", 420.0, -0.005),
                line("monitoring", 60.0, 0.0),
            ],
        ),
        // labels (shipping-team; zpl-toolkit is owned by a user)
        component(
            "label-service",
            "bw-prod",
            0.8,
            vec![
                line("compute", 2100.0, 0.010),
                line("storage", 1350.0, 0.030),
                line("data-transfer", 260.0, 0.010),
                line("monitoring", 90.0, 0.0),
            ],
        ),
        library("label-renderer", 240.0, 45.0),
        library("zpl-toolkit", 160.0, 40.0),
        // dispatch (fleet-team)
        component(
            "dispatch-service",
            "bw-prod",
            0.6,
            vec![
                line("compute", 4100.0, 0.010),
                line("database", 2300.0, 0.008),
                line("streaming", 480.0, 0.010),
                line("monitoring", 160.0, 0.005),
            ],
        ),
        Component {
            since: month(2026, 1),
            ..component(
                "route-optimizer",
                "bw-sandbox",
                0.3,
                vec![line("compute", 900.0, 0.08), line("storage", 60.0, 0.05)],
            )
        },
        component(
            "driver-gateway",
            "bw-prod",
            0.7,
            vec![
                line("compute", 1500.0, 0.010),
                line("data-transfer", 620.0, 0.012),
                line("monitoring", 80.0, 0.0),
            ],
        ),
        component(
            "driver-app",
            "bw-tools",
            0.2,
            vec![
                line("device-farm", 540.0, 0.005),
                line("push-notifications", 230.0, 0.010),
                line("ci", 380.0, 0.010),
                line("storage", 70.0, 0.010),
            ],
        ),
        component(
            "manifest-printer",
            "bw-prod",
            0.4,
            vec![line("compute", 420.0, -0.02), line("storage", 55.0, 0.0)],
        ),
        // tracking (tracking-team, data-team)
        component(
            "tracking-ingest",
            "bw-prod",
            1.0,
            vec![
                line("compute", 3800.0, 0.015),
                line("streaming", 1900.0, 0.015),
                line("storage", 640.0, 0.020),
                line("data-transfer", 410.0, 0.015),
            ],
        ),
        component(
            "tracking-service",
            "bw-prod",
            0.9,
            vec![
                line("compute", 2900.0, 0.012),
                line("database", 2600.0, 0.012),
                line("cache", 540.0, 0.010),
                line("data-transfer", 380.0, 0.012),
                line("monitoring", 170.0, 0.005),
            ],
        ),
        component(
            "tracking-page",
            "bw-prod",
            1.0,
            vec![line("cdn", 1450.0, 0.012), line("compute", 620.0, 0.008)],
        ),
        component(
            "tracking-lake-pipeline",
            "bw-data",
            0.5,
            vec![
                line("batch-compute", 2200.0, 0.010),
                line("storage", 1900.0, 0.030),
                line("data-transfer", 430.0, 0.010),
                line("warehouse", 1600.0, 0.015),
            ],
        ),
        component(
            "eta-predictor",
            "bw-data",
            0.3,
            vec![
                line("gpu-compute", 2100.0, 0.010),
                line("compute", 480.0, 0.010),
                line("storage", 210.0, 0.020),
            ],
        ),
        // invoicing (billing-team)
        component(
            "invoice-service",
            "bw-prod",
            0.3,
            vec![
                line("compute", 1300.0, 0.008),
                line("database", 980.0, 0.008),
                line("storage", 160.0, 0.015),
                line("monitoring", 70.0, 0.0),
            ],
        ),
        library("invoice-pdf", 190.0, 30.0),
        component(
            "billing-console",
            "bw-prod",
            0.2,
            vec![line("compute", 420.0, 0.005), line("cdn", 140.0, 0.005)],
        ),
        component(
            "invoice-csv-export",
            "bw-prod",
            0.0,
            vec![
                line("batch-compute", 230.0, -0.01),
                line("storage", 90.0, 0.0),
            ],
        ),
        // payments (billing-team, data-team)
        component(
            "payment-gateway",
            "bw-prod",
            0.7,
            vec![
                line("compute", 2600.0, 0.010),
                line("database", 1900.0, 0.008),
                line("key-management", 720.0, 0.0),
                line("data-transfer", 190.0, 0.010),
                line("monitoring", 150.0, 0.005),
            ],
        ),
        component(
            "ledger-service",
            "bw-prod",
            0.5,
            vec![
                line("compute", 1400.0, 0.008),
                line("database", 2100.0, 0.012),
                line("backup", 380.0, 0.015),
            ],
        ),
        component(
            "fraud-screen",
            "bw-data",
            0.6,
            vec![
                line("compute", 760.0, 0.015),
                line("gpu-compute", 450.0, 0.010),
                line("streaming", 210.0, 0.010),
            ],
        ),
        component(
            "reconciliation-job",
            "bw-data",
            0.2,
            vec![
                line("batch-compute", 340.0, 0.005),
                line("warehouse", 420.0, 0.010),
                line("storage", 80.0, 0.010),
            ],
        ),
        // identity (platform-team)
        component(
            "auth-service",
            "bw-prod",
            0.5,
            vec![
                line("compute", 1900.0, 0.010),
                line("database", 760.0, 0.008),
                line("cache", 380.0, 0.010),
                line("monitoring", 120.0, 0.005),
            ],
        ),
        library("auth-client-ts", 170.0, 35.0),
        // messaging (platform-team, design-team)
        component(
            "notification-service",
            "bw-prod",
            0.9,
            vec![
                line("compute", 1100.0, 0.010),
                line("email", 640.0, 0.012),
                line("sms", 1850.0, 0.010),
                line("streaming", 900.0, 0.010),
            ],
        ),
        library("email-templates", 150.0, 40.0),
        component(
            "sms-relay",
            "bw-prod",
            0.6,
            vec![line("sms", 780.0, -0.06), line("compute", 240.0, -0.02)],
        ),
        // developer-platform (platform-team, design-team)
        library("service-kit-go", 620.0, 180.0),
        component(
            "wharf-ui",
            "bw-tools",
            0.0,
            vec![
                line("ci", 410.0, 0.010),
                line("artifact-registry", 90.0, 0.010),
                line("cdn", 120.0, 0.005),
            ],
        ),
        // Rejected by the catalog (no owner): its costs are "not in the catalog".
        Component {
            since: month(2026, 6),
            ..component(
                "parcel-insurance",
                "bw-sandbox",
                0.2,
                vec![line("compute", 380.0, 0.03), line("database", 210.0, 0.01)],
            )
        },
        // Shared costs nobody tagged.
        component(
            "",
            "bw-shared",
            0.2,
            vec![
                line("support", 2100.0, 0.008),
                line("networking", 1300.0, 0.010),
                line("security", 650.0, 0.005),
            ],
        ),
    ]
}

/// What happened in particular months, as a factor on one line's cost.
fn event(component: &str, service: &str, m: i32) -> f64 {
    match (component, service) {
        // A GPU training job left running for most of October: an anomaly.
        ("eta-predictor", "gpu-compute") if m == month(2026, 10) => 3.2,
        // Cross-region replication switched on by mistake: an anomaly.
        ("tracking-lake-pipeline", "data-transfer") if m == month(2026, 10) => 7.0,
        // Traffic moved to quote-engine; the old SOAP service is winding down.
        ("quote-legacy-soap", "compute") if m == month(2026, 10) => 0.25,
        ("quote-legacy-soap", "database") if m == month(2026, 10) => 0.5,
        ("quote-engine", "compute") if m == month(2026, 10) => 1.12,
        // A bigger database instance class since June.
        ("payment-gateway", "database") if m >= month(2026, 6) => 1.35,
        // A compute savings plan since July.
        ("dispatch-service", "compute") if m >= month(2026, 7) => 0.72,
        // Label archive moved to an infrequent-access tier in September.
        ("label-service", "storage") if m >= month(2026, 9) => 0.55,
        _ => 1.0,
    }
}

/// splitmix64 over an FNV-1a hash of the line and month: the same "noise"
/// for the same line and month, whatever else changes.
fn noise(component: &str, service: &str, m: i32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in component
        .bytes()
        .chain([0])
        .chain(service.bytes())
        .chain(m.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // Uniform in [-0.025, 0.025).
    ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.05
}

fn cost(c: &Component, l: &Line, m: i32) -> f64 {
    let mut growth = 1.0;
    for _ in 0..(m - c.since) {
        growth *= 1.0 + l.growth;
    }
    let season = 1.0 + c.season * (SEASON[m.rem_euclid(12) as usize] - 1.0);
    l.base * growth * season * event(c.name, l.service, m) * (1.0 + noise(c.name, l.service, m))
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "demo/billing".into()),
    );
    std::fs::create_dir_all(&dir).expect("create the output folder");
    let components = components();
    for m in FIRST..=LAST {
        let label = format!("{:04}-{:02}", m / 12, m % 12 + 1);
        let mut csv = String::from("month,account,service,component,cost_usd\n");
        for c in components.iter().filter(|c| m >= c.since) {
            for l in &c.lines {
                let account = match l.service {
                    "ci" | "artifact-registry" | "device-farm" => "bw-tools",
                    _ => c.account,
                };
                let dollars = cost(c, l, m);
                writeln!(
                    csv,
                    "{label},{account},{},{},{dollars:.2}",
                    l.service, c.name
                )
                .unwrap();
            }
        }
        let file = dir.join(format!("{label}.csv"));
        std::fs::write(&file, csv).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        println!("{}", file.display());
    }
}
