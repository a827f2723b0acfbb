//! Portal pages at scale: a synthetic catalog (100k entities by default),
//! served by a real server on 127.0.0.1, each page requested many times.
//! Reports the server's own time (the sum of the `Server-Timing` header's
//! metrics: catalog reads, HTML rendering, and on entity pages the wait for
//! plugin views) and the time the client saw, p50 and p99. With the packed
//! plugins at hand (`CALLBOARD_TEST_PLUGINS`, as `cargo xtask bench web`
//! sets), the cost plugin is then installed and component pages measured
//! again with its card on them.
//!
//! `cargo bench -p callboard-tests --bench web [-- SIZE]`. Prints Markdown.
//! `CALLBOARD_BENCH_ONLY=catalog` runs only the rows whose name contains it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use callboard::{
    config::Config,
    plugins::{InstallOptions, manifest::Capabilities},
};
use callboard_catalog::{LocationConfig, LocationKind, Selection};

#[path = "shared/rng.rs"]
mod rng;
use rng::Rng;

const WORDS: &[&str] = &[
    "parcel",
    "route",
    "depot",
    "label",
    "tracking",
    "billing",
    "invoice",
    "customer",
    "driver",
    "fleet",
    "sorting",
    "pickup",
    "returns",
    "pricing",
    "customs",
    "warehouse",
];
const TAGS: &[&str] = &[
    "java",
    "go",
    "rust",
    "typescript",
    "python",
    "kafka",
    "grpc",
    "postgres",
    "redis",
    "pci",
];
const LIFECYCLES: &[&str] = &["production", "production", "experimental", "deprecated"];
const COMPONENT_TYPES: &[&str] = &["service", "service", "website", "library", "data-pipeline"];

/// Sizes of each kind for `n` entities (the shape of a large organisation:
/// ~50 entities per team, half of everything components).
struct Shape {
    groups: usize,
    users: usize,
    systems: usize,
    apis: usize,
    components: usize,
}

fn shape(n: usize) -> Shape {
    let groups = (n / 50).max(2);
    let users = n / 10;
    let systems = (n / 40).max(2);
    let apis = n / 5;
    let components = n - groups - users - systems - apis;
    Shape {
        groups,
        users,
        systems,
        apis,
        components,
    }
}

/// An OpenAPI definition with a few operations, so API pages do real work.
fn openapi(i: usize) -> String {
    let mut d =
        format!("    openapi: 3.0.3\n    info: {{title: API {i}, version: 1.0.0}}\n    paths:\n");
    for p in ["items", "orders", "parcels"] {
        let _ = write!(
            d,
            "      /{p}/{{id}}:\n        get:\n          summary: Get one of {p}\n          parameters:\n            - {{name: id, in: path, required: true, schema: {{type: string}}}}\n          responses:\n            '200': {{description: OK}}\n            '404': {{description: Not found}}\n        delete:\n          summary: Delete one of {p}\n          responses:\n            '204': {{description: Deleted}}\n"
        );
    }
    d
}

fn generate(dir: &Path, n: usize) -> Shape {
    let s = shape(n);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut docs: Vec<String> = Vec::with_capacity(n);
    for i in 0..s.groups {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("  parent: group-{}\n", (i - 1) / 8)
        };
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: group-{i}\n  title: Team {i}\nspec:\n  type: team\n{parent}  children: []\n"
        ));
    }
    for i in 0..s.users {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: user-{i}\nspec:\n  memberOf: [group-{}]\n  profile:\n    displayName: User {i}\n    email: user-{i}@example.com\n",
            i % s.groups
        ));
    }
    for i in 0..s.systems {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: system-{i}\nspec:\n  owner: group-{}\n",
            rng.below(s.groups)
        ));
    }
    for i in 0..s.apis {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: api-{i}\n  description: The {} API\n  tags: [{}]\nspec:\n  type: openapi\n  lifecycle: {}\n  owner: group-{}\n  system: system-{}\n  definition: |\n{}",
            rng.pick(WORDS),
            rng.pick(TAGS),
            rng.pick(LIFECYCLES),
            rng.below(s.groups),
            rng.below(s.systems),
            openapi(i)
        ));
    }
    for i in 0..s.components {
        let (w1, w2) = (rng.pick(WORDS), rng.pick(WORDS));
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: component-{i}\n  title: {w1} {w2} {i}\n  description: Handles {w1} for {w2}\n  tags: [{}, {}]\n  links:\n    - url: https://{w1}.example.com\n      title: Dashboard\nspec:\n  type: {}\n  lifecycle: {}\n  owner: group-{}\n  system: system-{}\n  providesApis: [api-{}]\n  consumesApis: [api-{}, api-{}]\n  dependsOn: [component:component-{}]\n",
            rng.pick(TAGS),
            rng.pick(TAGS),
            rng.pick(COMPONENT_TYPES),
            rng.pick(LIFECYCLES),
            rng.below(s.groups),
            rng.below(s.systems),
            rng.below(s.apis),
            rng.below(s.apis),
            rng.below(s.apis),
            rng.below(s.components),
        ));
    }
    std::fs::create_dir_all(dir).unwrap();
    for (i, chunk) in docs.chunks(500).enumerate() {
        std::fs::write(dir.join(format!("c{i:05}.yaml")), chunk.join("---\n")).unwrap();
    }
    s
}

struct Sample {
    server: Duration,
    client: Duration,
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn get(client: &reqwest::Client, url: &str) -> (Sample, String) {
    let started = Instant::now();
    let response = client.get(url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    // Every metric's `dur` (render; for entity and plugin pages also the
    // entity read and the wait for plugin views): the page's server time.
    let server = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split("dur=")
                .skip(1)
                .filter_map(|d| d.split([',', ';']).next()?.trim().parse::<f64>().ok())
                .sum::<f64>()
        })
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .expect("a Server-Timing header");
    let body = response.text().await.unwrap();
    (
        Sample {
            server,
            client: started.elapsed(),
        },
        body,
    )
}

fn next_href(body: &str) -> Option<String> {
    let end = body.find("rel=\"next\"")?;
    let start = body[..end].rfind("href=\"")? + 6;
    let href = &body[start..end];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(n));
}

type Urls = Box<dyn FnMut(&mut Rng) -> String>;

/// Components the synthetic billing export has costs for.
const BILLED: usize = 200;

/// The packed cost plugin, if `cargo xtask build-plugins` made one.
fn cost_plugin() -> Option<Vec<u8>> {
    let dir = std::env::var_os("CALLBOARD_TEST_PLUGINS")?;
    std::fs::read(Path::new(&dir).join("cost.wasm")).ok()
}

/// Twelve months (Jul 2025 to Jun 2026) of two services for each of the
/// first [`BILLED`] components.
fn write_billing(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("month,account,service,component,cost_usd\n");
    for m in 0..12 {
        let index = 6 + m;
        let month = format!("{}-{:02}", 2025 + index / 12, index % 12 + 1);
        for i in 0..BILLED {
            for (k, service) in ["compute", "database"].iter().enumerate() {
                let cost = 100 + (i * 37 + m * 13 + k * 101) % 900;
                let _ = writeln!(csv, "{month},prod,{service},component-{i},{cost}.00");
            }
        }
    }
    std::fs::write(dir.join("bench.csv"), csv).unwrap();
}

/// Requests one row's URLs (5 warm-up, then `rounds`) and adds its line.
async fn row(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    mut url: Urls,
    rng: &mut Rng,
    rounds: usize,
    report: &mut String,
) {
    // Warm-up: prepared statements, page cache, plugin caches.
    for _ in 0..5 {
        let _ = get(client, &format!("{base}{}", url(rng))).await;
    }
    let mut server = Vec::with_capacity(rounds);
    let mut client_side = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (sample, _) = get(client, &format!("{base}{}", url(rng))).await;
        server.push(sample.server);
        client_side.push(sample.client);
    }
    let _ = writeln!(
        report,
        "| {name} | {} | {} | {} | {} |",
        ms(percentile(&mut server, 0.5)),
        ms(percentile(&mut server, 0.99)),
        ms(percentile(&mut client_side, 0.5)),
        ms(percentile(&mut client_side, 0.99)),
    );
    eprintln!("done: {name}");
}

async fn bench(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("catalog");
    let started = Instant::now();
    let s = generate(&files, n);
    eprintln!(
        "generated {n} entities in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: format!("{}/*.yaml", files.display()),
    }];
    config.catalog.refresh_interval_secs = 0;
    // The cost plugin, installed after the plain rows, reads a billing
    // export for the first BILLED components.
    let cost = cost_plugin();
    if cost.is_some() {
        let billing = dir.path().join("billing");
        write_billing(&billing);
        config.grants.plugins.insert(
            "cost".into(),
            Capabilities {
                catalog: true,
                files: BTreeMap::from([("/billing".to_owned(), billing.display().to_string())]),
                ..Capabilities::default()
            },
        );
    }
    let running = callboard::server::start(config).await.unwrap();
    let started = Instant::now();
    loop {
        let count = running
            .state
            .catalog
            .count(&Selection::default())
            .await
            .unwrap();
        if count as usize > n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("ingested in {:.1}s", started.elapsed().as_secs_f64());
    // Let the refresh loop finish its post-ingest optimize.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let client = reqwest::Client::new();
    let base = running.url();
    // What the portal recounts in the background after each catalog change
    // (the filter facets; pages keep the previous counts meanwhile).
    let catalog = running.state.catalog.clone();
    let facet_time = {
        let fields: Vec<String> = [
            "kind",
            "spec.type",
            "spec.lifecycle",
            "relations.ownedBy",
            "metadata.tags",
            "metadata.namespace",
        ]
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
        let started = Instant::now();
        catalog.facets(&fields, None).await.unwrap();
        started.elapsed()
    };
    let (_, first) = get(&client, &format!("{base}/catalog?sort=name")).await;
    let page2 = next_href(&first).expect("a next page");
    let (_, second) = get(&client, &format!("{base}{page2}")).await;
    let page3 = next_href(&second).expect("a third page");

    let mut rng = Rng(7);
    let rounds = 200;
    let cases: Vec<(&str, Urls)> = vec![
        ("home `/`", Box::new(|_| "/".to_owned())),
        (
            "catalog, first page (sorted by name)",
            Box::new(|_| "/catalog".to_owned()),
        ),
        (
            "catalog, a later page (cursor)",
            Box::new(move |_| page3.clone()),
        ),
        (
            "catalog, kind=component",
            Box::new(|_| "/catalog?kind=component".to_owned()),
        ),
        (
            "catalog, kind=api, lifecycle, tag",
            Box::new(|r| {
                format!(
                    "/catalog?kind=api&lifecycle=deprecated&tag={}",
                    r.pick(TAGS)
                )
            }),
        ),
        (
            "catalog, owner=<one team>",
            Box::new(move |r| format!("/catalog?owner=group-{}", r.below(s.groups))),
        ),
        (
            "catalog, search `q=<word>`",
            Box::new(|r| format!("/catalog?q={}", r.pick(WORDS))),
        ),
        (
            "catalog, search a rare term",
            Box::new(move |r| format!("/catalog?q=component-{}", r.below(s.components))),
        ),
        (
            "catalog, sorted by owner",
            Box::new(|_| "/catalog?sort=owner".to_owned()),
        ),
        (
            "catalog, kind=component sorted by lifecycle desc",
            Box::new(|_| "/catalog?kind=component&sort=lifecycle&order=desc".to_owned()),
        ),
        (
            "entity page, component",
            Box::new(move |r| {
                format!(
                    "/catalog/default/component/component-{}",
                    r.below(s.components)
                )
            }),
        ),
        (
            "entity page, API (OpenAPI rendered)",
            Box::new(move |r| format!("/catalog/default/api/api-{}", r.below(s.apis))),
        ),
        (
            "entity page, group (members, ~50 owned)",
            Box::new(move |r| format!("/catalog/default/group/group-{}", r.below(s.groups))),
        ),
        (
            "entity page, user",
            Box::new(move |r| format!("/catalog/default/user/user-{}", r.below(s.users))),
        ),
    ];
    let mut report = String::new();
    let _ = writeln!(
        report,
        "{n} entities ({} components, {} APIs, {} groups, {} users, {} systems); {rounds} requests per row, one at a time.\n",
        s.components, s.apis, s.groups, s.users, s.systems
    );
    let _ = writeln!(
        report,
        "| page | server p50 (ms) | server p99 (ms) | client p50 (ms) | client p99 (ms) |\n|---|---|---|---|---|"
    );
    // `CALLBOARD_BENCH_ONLY=<text>` runs only the rows whose name contains it.
    let only = std::env::var("CALLBOARD_BENCH_ONLY").unwrap_or_default();
    for (name, url) in cases.into_iter().filter(|(name, _)| name.contains(&only)) {
        row(&client, &base, name, url, &mut rng, rounds, &mut report).await;
    }

    // The same entity pages with a plugin view on them: cost's card, read
    // from its cached model in key-value storage, rendered by the host.
    match cost {
        Some(bytes) => {
            let plugins = running.state.plugins.clone();
            tokio::task::spawn_blocking(move || {
                plugins.install(&bytes, &InstallOptions::default())
            })
            .await
            .unwrap()
            .expect("the cost plugin installs");
            let (_, body) = get(
                &client,
                &format!("{base}/catalog/default/component/component-0"),
            )
            .await;
            assert!(
                body.contains("id=\"plugin-card-cost\""),
                "component-0 shows a cost card"
            );
            let components = s.components;
            let cases: Vec<(&str, Urls)> = vec![
                (
                    "entity page, component, with the cost plugin's card",
                    Box::new(|r| {
                        format!("/catalog/default/component/component-{}", r.below(BILLED))
                    }),
                ),
                (
                    "entity page, component, cost installed, no costs to show",
                    Box::new(move |r| {
                        format!(
                            "/catalog/default/component/component-{}",
                            BILLED + r.below(components - BILLED)
                        )
                    }),
                ),
            ];
            for (name, url) in cases.into_iter().filter(|(name, _)| name.contains(&only)) {
                row(&client, &base, name, url, &mut rng, rounds, &mut report).await;
            }
        }
        None => eprintln!(
            "no cost plugin (CALLBOARD_TEST_PLUGINS/cost.wasm): the plugin view rows are left out"
        ),
    }
    let _ = writeln!(
        report,
        "\nCounting the filter facets (in the background after each catalog change, never during a page view): {} ms.",
        ms(facet_time)
    );
    println!("{report}");
    running.shutdown().await.unwrap();
}
