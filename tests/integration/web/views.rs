//! Plugin views in the portal's pages, with real plugins over real HTTP: the
//! cost card and the CI tab on a demo component (the ci plugin calling the
//! demo CI API on loopback), plugin pages and the links to them, and views
//! that trap, fail, loop or send markup rendering as error boxes (or
//! escaped text) while the rest of the page renders.

use std::{collections::BTreeMap, path::Path, time::Duration};

use callboard::{
    config::{Config, LimitOverrides},
    plugins::manifest::Capabilities,
};
use callboard_demo_ci::{Options, Running};
use serde_json::Value;

use super::{DEMO_ENTITIES, demo_catalog, page, server_configured};
use crate::support::{TestServer, install};

/// The token the demo CI API wants in these tests.
pub const CI_TOKEN: &str = "portal-test-ci-token";

/// The demo CI API on an ephemeral loopback port.
pub async fn ci_api() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    callboard_demo_ci::serve(
        listener,
        Options {
            token: Some(CI_TOKEN.to_owned()),
        },
    )
    .await
    .unwrap()
}

fn repo_path(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// Grants and settings as the demo's callboard.toml has them: cost reads the
/// catalog and demo/billing, ci calls the CI API at `ci` on loopback.
pub fn demo_grants(config: &mut Config, ci: Option<&Running>) {
    config.grants.plugins.insert(
        "cost".into(),
        Capabilities {
            catalog: true,
            files: BTreeMap::from([(
                "/billing".to_owned(),
                repo_path("demo/billing").display().to_string(),
            )]),
            ..Capabilities::default()
        },
    );
    if let Some(ci) = ci {
        config.grants.plugins.insert(
            "ci".into(),
            Capabilities {
                kv: true,
                http_hosts: vec!["127.0.0.1".into()],
                ..Capabilities::default()
            },
        );
        config.plugins.settings.insert(
            "ci".into(),
            BTreeMap::from([
                ("base_url".to_owned(), ci.url()),
                ("token".to_owned(), CI_TOKEN.to_owned()),
            ]),
        );
    }
}

/// A server over the demo catalog with `plugins` installed and the demo's
/// grants for cost and ci.
pub async fn demo_portal(
    ci: Option<&Running>,
    plugins: &[&str],
) -> (TestServer, tempfile::TempDir) {
    server_configured(&demo_catalog(), DEMO_ENTITIES, |data, config| {
        install(data, plugins);
        demo_grants(config, ci);
    })
    .await
}

/// The element with `id`, up to its matching end tag (same-name elements
/// nested inside it counted).
fn element<'a>(body: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in:\n{body}"));
    let start = body[..at].rfind('<').unwrap();
    let tag = body[start + 1..].split([' ', '>']).next().unwrap();
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut depth = 0usize;
    let mut i = start;
    loop {
        let next_open = body[i + 1..].find(&open).map(|o| i + 1 + o);
        let next_close = body[i + 1..]
            .find(&close)
            .map(|c| i + 1 + c)
            .unwrap_or_else(|| panic!("#{id} is not closed"));
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                i = o;
            }
            _ if depth == 0 => return &body[start..next_close + close.len()],
            _ => {
                depth -= 1;
                i = next_close;
            }
        }
    }
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "expected {needle:?} in:\n{haystack}"
        );
    }
}

/// The host's own rendering of plugin `plugin`'s view at `path` (a
/// `/api/views/...` route), which the page must embed as it is.
async fn api_view(server: &TestServer, path: &str, plugin: &str) -> Value {
    let (status, body) = server.get_json(path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    match body.get("views") {
        Some(views) => views
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["plugin"] == plugin)
            .unwrap_or_else(|| panic!("GET {path}: no view of {plugin}: {body}"))
            .clone(),
        None => body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_component_shows_the_cost_card_and_the_ci_tab() {
    let api = ci_api().await;
    let (server, _dir) = demo_portal(Some(&api), &["cost", "ci"]).await;
    let component = "/catalog/default/component/payment-gateway";

    let (status, headers, body) = page(&server, component).await;
    assert_eq!(status, 200, "{body}");
    let timing = headers["server-timing"].to_str().unwrap();
    assert!(
        timing.starts_with("render;dur=") && timing.contains("views;dur="),
        "{timing}"
    );
    let card = element(&body, "plugin-card-cost");
    assert_contains(
        card,
        &[
            "<h3 class=\"slot-title\">Cost</h3>",
            "/ month",
            "Last 12 months",
            "By service",
            "Oct 2026",
            "href=\"/plugins/cost/teams/billing-team\"",
            "<svg",
        ],
    );
    // The tab is a plain link; the overview did not ask the plugin for it.
    assert_contains(&body, &[&format!("<a href=\"{component}?tab=ci\">CI</a>")]);
    assert!(!body.contains("id=\"plugin-tab-ci\""), "{body}");
    assert_eq!(api.requests(), 0, "the overview does not fetch tab views");
    assert!(!body.contains(" style="), "no inline styles: {body}");
    assert!(!body.contains("<script"), "{body}");

    // Exactly what the host renders for the card, figures and all.
    let view = api_view(
        &server,
        "/api/views/entity/component/default/payment-gateway?slot=entity-card",
        "cost",
    )
    .await;
    assert_eq!(view["status"], "ok", "{view:#}");
    let (_, _, again) = page(&server, component).await;
    assert_contains(&again, &[view["html"].as_str().unwrap()]);

    // The CI tab: the component's runs from the CI API.
    let response = reqwest::Client::new()
        .get(format!(
            "{}/repos/brightwharf/payment-gateway/actions/runs?per_page=1",
            api.url()
        ))
        .bearer_auth(CI_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let runs: Value = response.json().await.unwrap();
    let newest = &runs["workflow_runs"][0];
    let before = api.requests();
    let (status, _, tab) = page(&server, &format!("{component}?tab=ci")).await;
    assert_eq!(status, 200, "{tab}");
    assert!(api.requests() > before, "the open tab is fetched");
    let panel = element(&tab, "plugin-tab-ci");
    assert_contains(
        panel,
        &[
            "Success rate",
            "Recent runs",
            &format!("#{}", newest["run_number"]),
            &newest["head_sha"].as_str().unwrap()[..7],
        ],
    );
    assert_contains(
        &tab,
        &[&format!(
            "<a href=\"{component}?tab=ci\" aria-current=\"page\">CI</a>"
        )],
    );
    assert!(
        !tab.contains("id=\"plugin-card-cost\""),
        "a tab shows only its view: {tab}"
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_pages_render_in_the_portal_and_are_linked() {
    let (server, dir) = demo_portal(None, &["cost"]).await;

    let (status, _, home) = page(&server, "/").await;
    assert_eq!(status, 200, "{home}");
    let plugins = element(&home, "plugins");
    assert_contains(
        plugins,
        &[
            "Plugin pages",
            "href=\"/plugins/cost\"",
            "href=\"/plugins/cost/teams\"",
            "Cost by team",
        ],
    );
    assert_contains(&home, &["<a href=\"/plugins\">Plugins</a>"]);

    let (status, _, index) = page(&server, "/plugins").await;
    assert_eq!(status, 200, "{index}");
    assert_contains(
        &index,
        &[
            "<a href=\"/plugins\" aria-current=\"page\">Plugins</a>",
            "href=\"/plugins/cost/teams\"",
        ],
    );

    let (status, headers, teams) = page(&server, "/plugins/cost/teams").await;
    assert_eq!(status, 200, "{teams}");
    assert!(
        headers["server-timing"]
            .to_str()
            .unwrap()
            .contains("views;dur="),
        "{headers:?}"
    );
    assert_contains(
        &teams,
        &[
            "<h1>Cost by team</h1>",
            "<a href=\"/plugins/cost/teams\" aria-current=\"page\">Cost by team</a>",
            "<a href=\"/plugins/cost\">Cost</a>",
            "href=\"/plugins/cost/teams/data-team\"",
        ],
    );
    let view = api_view(&server, "/api/views/pages/cost/teams", "cost").await;
    assert_eq!(view["status"], "ok", "{view:#}");
    assert_contains(&teams, &[view["html"].as_str().unwrap()]);

    // Links inside views land on these routes.
    let (status, _, team) = page(&server, "/plugins/cost/teams/data-team").await;
    assert_eq!(status, 200, "{team}");
    assert_contains(
        &team,
        &[
            "<h1>Cost of Data &amp; ML</h1>",
            "eta-predictor",
            "tracking-lake-pipeline",
        ],
    );
    let (status, _, root) = page(&server, "/plugins/cost").await;
    assert_eq!(status, 200, "{root}");
    assert_contains(&root, &["<h1>Cost</h1>"]);

    for missing in ["/plugins/no-such-plugin", "/plugins/no-such-plugin/x"] {
        let (status, _, body) = page(&server, missing).await;
        assert_eq!(status, 404, "{missing}: {body}");
        assert_contains(&body, &["no-such-plugin"]);
    }
    let (status, _, body) = page(&server, "/plugins/cost/no/such/page").await;
    assert_eq!(status, 404, "{body}");
    assert_contains(&body, &["has no page at", "/no/such/page"]);

    // The admin page shows what the plugin adds and how it runs.
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(server.url("/admin/login"))
        .form(&[("token", token.trim())])
        .send()
        .await
        .unwrap();
    let session = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let admin = client
        .get(server.url("/admin"))
        .header("cookie", session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let card = element(&admin, "plugin-cost");
    assert_contains(
        card,
        &[
            "Card “Cost” on entity pages (component, system)",
            "href=\"/plugins/cost/teams\">“Cost by team”</a>",
            "every 300 s",
            "read-only files at /billing",
        ],
    );
    server.stop().await;
}

/// Two teams' components for the misbehave fixture's names, with costs.
const FAILING_CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: team-a }
spec: { type: team, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: trap-payments }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: slow-payments }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: error-payments }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: evil-payments }
spec: { type: service, lifecycle: production, owner: team-a }
"#;

/// The page deadline in the failing-views test, and the much longer time
/// the looping plugin may run: a page that waited for it would be late.
const DEADLINE_MS: u64 = 1000;
const LOOP_RUNS_MS: u64 = 8000;

fn write_failing_fixture(dir: &Path) -> std::path::PathBuf {
    let billing = dir.join("billing");
    std::fs::create_dir_all(&billing).unwrap();
    let mut csv = String::from("month,account,service,component,cost_usd\n");
    for month in ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"] {
        for name in ["trap-payments", "slow-payments", "error-payments"] {
            csv.push_str(&format!("{month},prod,compute,{name},1200.00\n"));
        }
    }
    std::fs::write(billing.join("2026.csv"), csv).unwrap();
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, FAILING_CATALOG).unwrap();
    catalog
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_views_are_error_boxes_and_the_page_still_renders() {
    let fixture = tempfile::tempdir().unwrap();
    let catalog = write_failing_fixture(fixture.path());
    let billing = fixture.path().join("billing");
    let (server, _dir) = server_configured(&catalog, 5, |data, config| {
        install(data, &["cost", "misbehave"]);
        config.grants.plugins.insert(
            "cost".into(),
            Capabilities {
                catalog: true,
                files: BTreeMap::from([("/billing".to_owned(), billing.display().to_string())]),
                ..Capabilities::default()
            },
        );
        config.plugins.view_deadline_ms = DEADLINE_MS;
        config.plugins.overrides.insert(
            "misbehave".into(),
            LimitOverrides {
                timeout_ms: Some(LOOP_RUNS_MS),
                ..LimitOverrides::default()
            },
        );
    })
    .await;

    let cost_card = |body: &str| {
        let card = element(body, "plugin-card-cost").to_owned();
        assert_contains(&card, &["/ month", "$1,200", "By service"]);
        assert!(!card.contains("plugin-error"), "{card}");
    };
    let failed_card = |body: &str| {
        let card = element(body, "plugin-card-misbehave").to_owned();
        assert_contains(
            &card,
            &[
                "class=\"plugin-slot failed\"",
                "<h3 class=\"slot-title\">Misbehave</h3>",
                "<div class=\"plugin-error\" role=\"alert\">",
                "“Misbehave” could not be shown",
            ],
        );
        card
    };

    // A trap: an error box naming the plugin; the rest of the page is there.
    let (status, _, body) = page(&server, "/catalog/default/component/trap-payments").await;
    assert_eq!(status, 200, "{body}");
    let card = failed_card(&body);
    assert_contains(&card, &["misbehave"]);
    cost_card(&body);
    assert_contains(&body, &["id=\"relations-title\"", "Entity as YAML"]);

    // An error the plugin reports: its message in the box.
    let (status, _, body) = page(&server, "/catalog/default/component/error-payments").await;
    assert_eq!(status, 200, "{body}");
    assert_contains(
        &failed_card(&body),
        &["plugin misbehave reported: no data for error-payments"],
    );
    cost_card(&body);

    // A loop: the page answers at the deadline, not when the plugin stops.
    let started = std::time::Instant::now();
    let (status, _, body) = page(&server, "/catalog/default/component/slow-payments").await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        took < Duration::from_millis(LOOP_RUNS_MS * 3 / 4),
        "the page waited {took:?} for a looping plugin (deadline {DEADLINE_MS} ms, \
         the plugin runs for {LOOP_RUNS_MS} ms)"
    );
    assert_contains(
        &failed_card(&body),
        &[&format!(
            "plugin misbehave did not answer within {DEADLINE_MS} ms"
        )],
    );
    cost_card(&body);

    // Markup a plugin sends is text.
    let (status, _, body) = page(&server, "/catalog/default/component/evil-payments").await;
    assert_eq!(status, 200, "{body}");
    let card = element(&body, "plugin-card-misbehave");
    assert!(!body.contains("<script"), "{card}");
    assert!(!body.contains("<img src=x"), "{card}");
    assert!(!body.contains("href=\"javascript:"), "{card}");
    assert!(!body.contains("href=\"data:"), "{card}");
    assert_contains(card, &["&lt;script&gt;"]);

    // Plugin pages fail the same way, inside the portal's shell.
    let (status, _, body) = page(&server, "/plugins/misbehave/trap-page").await;
    assert_eq!(status, 502, "{body}");
    assert_contains(
        &body,
        &[
            "<div class=\"plugin-error\" role=\"alert\">",
            "<a href=\"/plugins\" aria-current=\"page\">Plugins</a>",
        ],
    );
    let (status, _, body) = page(&server, "/plugins/misbehave/error-page").await;
    assert_eq!(status, 502, "{body}");
    assert_contains(&body, &["no data for error-page"]);
    server.stop().await;
}
