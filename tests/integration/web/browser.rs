//! The portal in a real browser: headless Chromium driven over WebDriver
//! (chromedriver + fantoccini), against a real server on 127.0.0.1 with the
//! demo catalog. Screenshots of the main pages land in
//! `$CALLBOARD_ARTIFACTS` or `target/browser-screenshots/`.
//!
//! Chromium and chromedriver come from Debian (`chromium`,
//! `chromium-driver`); the harness installs them when missing.

use std::{
    net::TcpListener,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, key::Key};
use serde_json::json;

use super::{
    demo_server,
    views::{ci_api, demo_portal},
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs Chromium and chromedriver once per test process if missing,
/// and fails loudly when that is impossible.
fn ensure_chromium() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let present = || {
            std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists()
        };
        if present() {
            return Ok(());
        }
        eprintln!("browser tests: installing chromium and chromium-driver with apt-get");
        let status = Command::new("sh")
            .args([
                "-c",
                "apt-get -o DPkg::Lock::Timeout=600 update && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y chromium chromium-driver",
            ])
            .status();
        match status {
            Ok(s) if s.success() && present() => Ok(()),
            other => Err(format!(
                "BROWSER TESTS CANNOT RUN: {CHROMIUM} or {CHROMEDRIVER} is missing and \
                 `apt-get install -y chromium chromium-driver` failed ({other:?}). \
                 Install the Debian packages chromium and chromium-driver (as root)."
            )),
        }
    });
    if let Err(message) = ready {
        panic!("{message}");
    }
}

/// A chromedriver process and a browser session, closed on drop.
pub(super) struct Browser {
    pub(super) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Runs on every exit, a failed assertion's unwinding included: stops
    /// chromedriver and every Chromium process of this session (Chromium's
    /// renderers outlive a killed chromedriver otherwise).
    fn drop(&mut self) {
        // chromedriver leads its own process group (see `start`), which its
        // Chromium joins; the profile folder names the stragglers, if any.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        kill_processes_mentioning(&self._profile.path().display().to_string());
    }
}

/// Kills every process whose command line contains `needle`.
fn kill_processes_mentioning(needle: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub(super) async fn start() -> Self {
        ensure_chromium();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            // Its own process group, so `Drop` can stop it with its browser.
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1200",
                    // Nothing but loopback: every other host goes to a dead proxy.
                    "--proxy-server=http://127.0.0.1:9",
                    "--proxy-bypass-list=127.0.0.1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        // chromedriver needs a moment to listen.
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Self {
                        client,
                        driver,
                        _profile: profile,
                    };
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot open a Chromium session through chromedriver: {last_error}");
    }

    pub(super) async fn text(&self, css: &str) -> String {
        // Pages behind a form post (an upload compiles a plugin) can take a
        // moment under load: wait for the element rather than fail at once.
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    pub(super) async fn body(&self) -> String {
        self.text("body").await
    }

    /// Runs `action`, which makes the browser load another page, and returns
    /// once that page has replaced the current one. A click or an Enter key
    /// can return before the browser starts to navigate; reading right after
    /// it would find the old page's elements, which go stale while they are
    /// read or show the old content.
    pub(super) async fn navigating(&self, action: impl std::future::Future<Output = ()>) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        action.await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match old.tag_name().await {
                Err(e) if e.is_stale_element_reference() => break,
                // Chrome's other answer when the old document is being torn
                // down during the call: its node no longer belongs to the
                // (new) document, which is what this waits for.
                Err(e) if e.to_string().contains("does not belong to the document") => break,
                Err(e) => panic!("waiting for the next page: {e}"),
                Ok(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "no new page within 30 s of the action"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Clicks the element and waits for the page it leads to.
    pub(super) async fn follow(&self, element: Element) {
        self.navigating(async { element.click().await.unwrap() })
            .await;
    }

    /// Clicks the first element `locator` finds and waits for the page it
    /// leads to.
    pub(super) async fn follow_first(&self, locator: Locator<'_>) {
        let element = self
            .client
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("nothing to click ({locator:?}): {e}"));
        self.follow(element).await;
    }

    /// Types `text` and Enter into the field, which submits its form, and
    /// waits for the answer page.
    pub(super) async fn submit_typing(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        self.navigating(async {
            field
                .send_keys(&format!("{text}{}", Key::Enter))
                .await
                .unwrap()
        })
        .await;
    }

    /// Saves a full-window screenshot as `<name>.png`.
    pub(super) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = artifacts();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub(super) async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

fn artifacts() -> PathBuf {
    std::env::var_os("CALLBOARD_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots")
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn browse_filter_search_and_follow_relations() {
    let (server, _dir) = demo_server().await;
    let b = Browser::start().await;
    let c = &b.client;

    // Home: a newcomer sees what this is and where to go.
    c.goto(&server.url("/")).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "Home · Callboard");
    let body = b.body().await;
    assert!(body.contains("Find any service, API or team"), "{body}");
    assert!(
        body.contains("The catalog could not read everything"),
        "{body}"
    );
    assert!(body.contains("spec.owner"), "{body}");
    b.screenshot("home").await;

    // Keyboard: the first Tab lands on the skip link.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(&Key::Tab.to_string())
        .await
        .unwrap();
    let focused = c.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to content");

    // Catalog: filter by kind and owner through the form.
    b.follow_first(Locator::LinkText("Catalog")).await;
    c.find(Locator::Css("#f-kind"))
        .await
        .unwrap()
        .select_by_value("Component")
        .await
        .unwrap();
    c.find(Locator::Css("#f-owner"))
        .await
        .unwrap()
        .send_keys("billing-team")
        .await
        .unwrap();
    b.follow_first(Locator::Css("form.filters button[type=submit]"))
        .await;
    let url = c.current_url().await.unwrap();
    assert!(url.as_str().contains("kind=Component"), "{url}");
    assert!(url.as_str().contains("owner=billing-team"), "{url}");
    let rows = c
        .find_all(Locator::Css("table.entities tbody tr"))
        .await
        .unwrap();
    assert!(rows.len() >= 3, "billing-team owns several components");
    for row in &rows {
        let text = row.text().await.unwrap();
        assert!(text.contains("Component"), "{text}");
        assert!(text.contains("billing-team"), "{text}");
    }
    b.screenshot("catalog-filtered").await;

    // Search from the header box: the search page, with facets.
    c.find(Locator::Css("#top-search"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    b.submit_typing("#top-search", "ledger").await;
    let found = b.text("ol.search-results").await;
    assert!(found.contains("Ledger Service"), "{found}");
    let facets = b.text("aside.facets").await;
    assert!(facets.contains("Catalog"), "{facets}");
    b.screenshot("search").await;

    // Open a component, then follow a relation link to its system.
    b.follow_first(Locator::LinkText("Ledger Service")).await;
    assert_eq!(b.text("#entity-title").await, "Ledger Service");
    let relations = b.text("section.relations").await;
    assert!(relations.contains("Provides API"), "{relations}");
    b.screenshot("component").await;
    b.follow_first(Locator::Css(
        "section.relations a[href='/catalog/default/system/payments']",
    ))
    .await;
    assert_eq!(b.text("#entity-title").await, "Payments");
    // The graph's nodes are links too.
    b.follow_first(Locator::Css(
        "figure.graph svg a[href='/catalog/default/domain/finance']",
    ))
    .await;
    assert_eq!(b.text("#entity-title").await, "Finance");

    // An API: its operations are listed and open to show parameters.
    c.goto(&server.url("/catalog/default/api/payments-api"))
        .await
        .unwrap();
    let ops = c
        .find_all(Locator::Css("#definition details.operation > summary"))
        .await
        .unwrap();
    assert!(ops.len() >= 3, "operations listed, got {}", ops.len());
    let first = ops[0].text().await.unwrap();
    assert!(
        first.starts_with("GET") || first.starts_with("POST"),
        "{first}"
    );
    ops[0].click().await.unwrap();
    let open = b.text("#definition details.operation[open]").await;
    assert!(open.contains("Responses"), "{open}");
    b.screenshot("api").await;

    // A team page: members and what it owns.
    c.goto(&server.url("/catalog/default/group/billing-team"))
        .await
        .unwrap();
    let people = b.text("#people").await;
    assert!(people.contains("Members"), "{people}");
    assert!(b.text("#rel-ownerof").await.contains("Payment Gateway"));
    b.screenshot("group").await;

    // The broken entity: its page says why it is not in the catalog.
    c.goto(&server.url("/catalog/default/component/parcel-insurance"))
        .await
        .unwrap();
    let body = b.body().await;
    assert!(body.contains("rejected when the catalog read it"), "{body}");
    assert!(body.contains("spec.owner"), "{body}");
    b.screenshot("broken-entity").await;

    b.close().await;
    server.stop().await;
}

/// Signs in on the admin page with the server's token.
async fn sign_in(b: &Browser, dir: &std::path::Path) {
    let token = std::fs::read_to_string(dir.join("admin-token")).unwrap();
    b.follow_first(Locator::LinkText("Admin")).await;
    b.submit_typing("#admin-token", token.trim()).await;
}

/// Installs `file` through the admin page's upload form (signed in) and
/// returns the notice the page answers with.
async fn upload(b: &Browser, file: &std::path::Path) -> String {
    let c = &b.client;
    c.find(Locator::Css("#upload-plugin"))
        .await
        .unwrap()
        .send_keys(&file.canonicalize().unwrap().display().to_string())
        .await
        .unwrap();
    b.follow_first(Locator::Css("form.upload button[type=submit]"))
        .await;
    b.text("p.notice").await
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_signs_in_and_installs_a_plugin_by_upload() {
    let (server, dir) = demo_server().await;
    let plugin = crate::support::plugin_file("hello");
    let b = Browser::start().await;
    let c = &b.client;

    c.goto(&server.url("/")).await.unwrap();
    assert!(
        b.text("#plugins")
            .await
            .contains("No plugins are installed yet")
    );
    sign_in(&b, dir.path()).await;
    assert_eq!(b.text("#installed-title").await, "Installed plugins (0)");

    let notice = upload(&b, &plugin).await;
    assert!(notice.starts_with("Installed"), "{notice}");
    let card = b.text("#plugin-hello").await;
    assert!(card.contains("Granted"), "{card}");
    b.screenshot("admin").await;

    // The home page lists it without a restart.
    b.follow_first(Locator::LinkText("Home")).await;
    let plugins = b.text("#plugins").await;
    assert!(
        !plugins.contains("No plugins are installed yet"),
        "{plugins}"
    );

    b.close().await;
    server.stop().await;
}

/// The plugin views a user meets: the CI tab of a demo component (the ci
/// plugin is installed, calling the demo CI API on loopback); then cost is
/// installed by upload on the admin page and, without a restart, its card
/// shows on the component and its pages are linked from home and the nav.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_views_appear_on_pages_and_after_an_upload() {
    let api = ci_api().await;
    let (server, dir) = demo_portal(Some(&api), &["ci"]).await;
    let cost = crate::support::plugin_file("cost");
    let b = Browser::start().await;
    let c = &b.client;
    let component = server.url("/catalog/default/component/payment-gateway");

    // Before: a CI tab, no cost card.
    c.goto(&component).await.unwrap();
    assert_eq!(b.text("#entity-title").await, "Payment Gateway");
    assert!(
        c.find(Locator::Css("#plugin-card-cost")).await.is_err(),
        "no cost card before cost is installed"
    );
    let tab = c
        .find(Locator::Css("nav.tabs"))
        .await
        .unwrap()
        .find(Locator::LinkText("CI"))
        .await
        .unwrap();
    b.follow(tab).await;
    let tab = b.text("#plugin-tab-ci").await;
    assert!(tab.contains("Success rate"), "{tab}");
    assert!(tab.contains("Recent runs"), "{tab}");
    let url = c.current_url().await.unwrap();
    assert!(url.as_str().ends_with("?tab=ci"), "{url}");
    // The durations chart is drawn as SVG and styled by the stylesheet.
    let line = c
        .find(Locator::Css("#plugin-tab-ci figure.chart svg .series-0"))
        .await
        .unwrap();
    let stroke = line.css_value("stroke").await.unwrap();
    assert!(
        stroke.contains("35, 88, 214") || stroke.contains("2358d6"),
        "the series colour comes from the stylesheet: {stroke}"
    );
    b.screenshot("entity-ci-tab").await;

    // Install cost by upload.
    sign_in(&b, dir.path()).await;
    let notice = upload(&b, &cost).await;
    assert!(notice.starts_with("Installed Cost"), "{notice}");
    let card = b.text("#plugin-cost").await;
    assert!(card.contains("Card “Cost” on entity pages"), "{card}");
    assert!(card.contains("every 300 s"), "{card}");
    let ci_card = b.text("#plugin-ci").await;
    assert!(ci_card.contains("Tab “CI” on entity pages"), "{ci_card}");
    b.screenshot("admin-plugins").await;

    // Without a restart: the card on the component's overview (scrolled to).
    c.goto(&format!("{component}#plugin-cards")).await.unwrap();
    let card = b.text("#plugin-card-cost").await;
    assert!(card.contains("/ month"), "{card}");
    assert!(card.contains("By service"), "{card}");
    b.screenshot("entity-cost-card").await;

    // Its pages, from the home page and the main navigation.
    b.follow_first(Locator::LinkText("Home")).await;
    let link = c
        .find(Locator::Css("#plugins"))
        .await
        .unwrap()
        .find(Locator::LinkText("Cost by team"))
        .await
        .unwrap();
    b.follow(link).await;
    assert_eq!(b.text("main h1").await, "Cost by team");
    let teams = b.text("main").await;
    assert!(teams.contains("Billing & Payments"), "{teams}");
    b.screenshot("plugin-page").await;
    // A link inside the view: one team's costs.
    b.follow_first(Locator::Css("main a[href='/plugins/cost/teams/data-team']"))
        .await;
    assert_eq!(b.text("main h1").await, "Cost of Data & ML");
    assert!(b.text("main").await.contains("eta-predictor"));
    b.follow_first(Locator::LinkText("Plugins")).await;
    assert_eq!(b.text("main h1").await, "Plugin pages");
    assert!(b.text("main").await.contains("Cost by team"));

    b.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_and_search_work_by_keyboard_and_click_without_script() {
    let (server, _dir) = demo_server().await;
    let store = server.running.state.techdocs.store().clone();
    crate::support::eventually(60, "the payment gateway's docs", || {
        let store = store.clone();
        async move {
            store
                .site("component:default/payment-gateway", false)
                .await
                .ok()
                .flatten()
                .map(|_| ())
        }
    })
    .await;
    let b = Browser::start().await;
    let c = &b.client;

    // The docs index, then a site from it.
    c.goto(&server.url("/docs")).await.unwrap();
    let sites = b.text("table#docs-sites").await;
    assert!(sites.contains("Payment Gateway"), "{sites}");
    b.follow_first(Locator::LinkText("Payment Gateway")).await;
    let nav = b.text("nav.docs-nav").await;
    for entry in ["Overview", "Architecture", "API guide", "Runbook"] {
        assert!(nav.contains(entry), "{entry}: {nav}");
    }
    b.screenshot("docs-index-page").await;

    // A page with tabs and a collapsed block: both work by click alone.
    b.follow_first(Locator::Css("nav.docs-nav a[href$='/architecture/']"))
        .await;
    assert!(
        b.text("article.docs-page h1")
            .await
            .contains("Architecture")
    );
    let blocks = c
        .find_all(Locator::Css(".tabbed-set .tabbed-block"))
        .await
        .unwrap();
    assert_eq!(blocks.len(), 3);
    assert!(blocks[0].is_displayed().await.unwrap());
    assert!(!blocks[1].is_displayed().await.unwrap());
    c.find(Locator::XPath(
        "//label[normalize-space()='Webhook receiver']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    assert!(blocks[1].is_displayed().await.unwrap(), "the tab switched");
    assert!(!blocks[0].is_displayed().await.unwrap());
    let details = c.find(Locator::Css("details.note")).await.unwrap();
    assert_eq!(details.attr("open").await.unwrap(), None);
    c.find(Locator::Css("details.note > summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(details.attr("open").await.unwrap().is_some(), "opened");
    let toc = b.text("nav.docs-toc").await;
    assert!(toc.contains("Posting to the ledger"), "{toc}");
    b.screenshot("docs-architecture").await;

    // Search from the header box, narrow to the docs, open a section.
    b.submit_typing("#top-search", "settlement").await;
    let facets = b.text("aside.facets").await;
    assert!(facets.contains("Docs"), "{facets}");
    b.follow_first(Locator::Css("aside.facets a[href*='type=techdocs']"))
        .await;
    let results = b.text("ol.search-results").await;
    assert!(results.contains("Payment Gateway"), "{results}");
    b.screenshot("search-docs").await;
    b.follow_first(Locator::Css(
        "ol.search-results a[href^='/docs/default/component/payment-gateway/runbook/']",
    ))
    .await;
    let url = c.current_url().await.unwrap();
    assert!(url.path().ends_with("/runbook/"), "{url}");
    // The page's visible text (WebDriver leaves out what a closed
    // `<details>` hides, such as the settlement warning itself).
    let page = b.text("article.docs-page").await;
    assert!(page.contains("Poster lag above 10 minutes"), "{page}");
    b.close().await;
}
