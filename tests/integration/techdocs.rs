//! TechDocs through a real server: the demo's sites rendered in the portal
//! and found by search, Backstage's `/api/techdocs` routes, a site that
//! changes on disk (only the changed page is rendered again), and hostile
//! sites (script, `javascript:` links, SVG with script, paths out of the
//! catalog's folders).

use std::path::Path;

use serde_json::Value;

use crate::support::{TestServer, eventually};
use crate::web::demo_server;

const GATEWAY: &str = "component:default/payment-gateway";

/// Waits until `entity_ref`'s site is stored.
pub(crate) async fn built(server: &TestServer, entity_ref: &str) {
    let store = server.running.state.techdocs.store().clone();
    let key = entity_ref.to_owned();
    eventually(60, &format!("the docs of {entity_ref} to be built"), || {
        let (store, key) = (store.clone(), key.clone());
        async move { store.site(&key, false).await.ok().flatten().map(|_| ()) }
    })
    .await;
}

async fn response(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_demo_docs_render_in_the_portal_and_are_found_by_search() {
    let (server, _dir) = demo_server().await;
    built(&server, GATEWAY).await;
    built(&server, "component:default/booking-service").await;

    // The docs index lists every site, with its problems counted.
    let (status, index) = server.get("/docs").await;
    assert_eq!(status, 200);
    for site in ["Payment Gateway", "Booking Service"] {
        assert!(index.contains(site), "{site}: {index}");
    }

    // A page: the site's navigation, the page's table of contents, the
    // extensions rendered, edit link, last updated, no script.
    let (status, page) = server
        .get("/docs/default/component/payment-gateway/architecture/")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("nav class=\"docs-nav\""), "{page}");
    assert!(page.contains(">Runbook</a>"), "the site's nav: {page}");
    assert!(
        page.contains("class=\"tabbed-set tabbed-alternate\""),
        "{page}"
    );
    assert!(page.contains("<details class=\"note\""), "{page}");
    assert!(page.contains("class=\"admonition warning\""), "{page}");
    assert!(page.contains("nav class=\"docs-toc\""), "{page}");
    assert!(
        page.contains("href=\"#posting-to-the-ledger\""),
        "the toc: {page}"
    );
    assert!(page.contains("class=\"headerlink\""), "{page}");
    assert!(
        page.contains("Mermaid diagram"),
        "mermaid is shown as source: {page}"
    );
    assert!(
        page.contains(
            "href=\"https://github.com/brightwharf/payment-gateway/edit/main/docs/architecture.md\""
        ),
        "edit this page: {page}"
    );
    assert!(page.contains("Last updated"), "{page}");
    let css = server.get("/static/docs.css").await.1;
    assert!(css.contains(".hl-"), "highlighting classes are served");

    // Directory URLs, as MkDocs serves them.
    let r = response(&server, "/docs/default/component/payment-gateway/runbook").await;
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(
        r.headers()["location"],
        "/docs/default/component/payment-gateway/runbook/"
    );
    let r = response(&server, "/docs/default/component/payment-gateway").await;
    assert_eq!(r.status().as_u16(), 308);

    // A file of the site: its type, never sniffed, sandboxed.
    let r = response(
        &server,
        "/docs/default/component/payment-gateway/images/flow.svg",
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );

    // The site with errors shows them, with file and line, and still renders.
    let (status, booking) = server.get("/docs/default/component/booking-service/").await;
    assert_eq!(status, 200);
    assert!(booking.contains("Build problems"), "{booking}");
    for problem in [
        "mkdocs.yml:7",
        "unknown extension material.extensions.fancy_cards",
        "docs/index.md:8",
        "capacity.md",
    ] {
        assert!(booking.contains(problem), "{problem}: {booking}");
    }
    assert!(booking.contains("class=\"broken\""), "{booking}");

    // The entity page links its docs.
    let (_, entity) = server
        .get("/catalog/default/component/payment-gateway")
        .await;
    assert!(
        entity.contains("href=\"/docs/default/component/payment-gateway/\""),
        "{entity}"
    );

    // Search finds docs sections beside catalog entities, pointing at the heading.
    let (_, found) = server
        .get_json("/api/search/query?term=settlement&types%5B0%5D=techdocs")
        .await;
    let hit = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["document"]["location"]
                .as_str()
                .is_some_and(|l| l.starts_with("/docs/default/component/payment-gateway/runbook/#"))
        })
        .unwrap_or_else(|| panic!("the runbook's section: {found}"));
    assert_eq!(hit["type"], "techdocs", "{found}");
    assert_eq!(hit["document"]["entityTitle"], "Payment Gateway");
    assert_eq!(hit["document"]["kind"], "Component");
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["type"] == "techdocs"),
        "{found}"
    );
    let (_, both) = server
        .get_json("/api/search/query?term=ledger&pageLimit=100")
        .await;
    let types: std::collections::BTreeSet<&str> = both["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["type"].as_str())
        .collect();
    assert!(
        types.contains("techdocs") && types.contains("software-catalog"),
        "{types:?}"
    );
    let (_, page) = server.get("/search?query=settlement").await;
    assert!(page.contains("Docs <span class=\"count\">"), "{page}");
}

#[tokio::test]
async fn backstages_techdocs_routes_answer_for_existing_clients() {
    let (server, _dir) = demo_server().await;
    built(&server, GATEWAY).await;
    let base = "/api/techdocs";
    let (status, meta) = server
        .get_json(&format!(
            "{base}/metadata/techdocs/default/component/payment-gateway"
        ))
        .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["site_name"], "Payment Gateway");
    assert!(
        meta["site_description"]
            .as_str()
            .unwrap()
            .contains("3-D Secure")
    );
    assert!(meta["build_timestamp"].as_i64().unwrap() > 0);
    assert!(meta["etag"].as_str().is_some_and(|e| !e.is_empty()));
    let files: Vec<&str> = meta["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in ["index.html", "runbook/index.html", "images/flow.svg"] {
        assert!(files.contains(&f), "{f}: {files:?}");
    }

    let (status, entity) = server
        .get_json(&format!(
            "{base}/metadata/entity/default/component/payment-gateway"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(entity["metadata"]["name"], "payment-gateway");
    assert_eq!(entity["locationMetadata"]["type"], "dir");
    assert!(
        entity["locationMetadata"]["target"]
            .as_str()
            .unwrap()
            .ends_with("demo/catalog/docs/payment-gateway")
    );

    let r = response(
        &server,
        &format!("{base}/static/docs/default/component/payment-gateway/runbook/index.html"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("md-content"), "{html}");
    assert!(html.contains("Settlement runs at 02:00"), "{html}");
    let (status, json) = server
        .get_json(&format!(
            "{base}/static/docs/default/component/payment-gateway/techdocs_metadata.json"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(json["site_name"], "Payment Gateway");

    // Sync: an event stream that ends with `finish`.
    let r = response(
        &server,
        &format!("{base}/sync/default/component/payment-gateway"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let stream = r.text().await.unwrap();
    assert!(stream.contains("event: log\ndata: "), "{stream}");
    assert!(
        stream.contains("event: finish\ndata: {\"updated\":false}"),
        "nothing changed since the first build: {stream}"
    );

    // Unknown entities, entities without docs, and paths out of the site.
    for path in [
        format!("{base}/metadata/techdocs/default/component/nope"),
        format!("{base}/metadata/techdocs/default/group/billing-team"),
        format!("{base}/static/docs/default/component/payment-gateway/../../x"),
        format!("{base}/static/docs/default/component/payment-gateway/%2e%2e/secret"),
        format!("{base}/static/docs/default/component/payment-gateway/nope.png"),
    ] {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const ENTITY: &str = "apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: notes
  annotations:
    backstage.io/techdocs-ref: dir:.
spec: {type: service, lifecycle: production, owner: team-n}
";

/// A catalog with one component whose docs are in `dir`.
async fn site_server(dir: &Path) -> (TestServer, tempfile::TempDir) {
    write(dir, "catalog-info.yaml", ENTITY);
    write(
        dir,
        "mkdocs.yml",
        "site_name: Notes\nnav:\n  - Home: index.md\n  - Setup: setup.md\n",
    );
    write(dir, "docs/index.md", "# Notes\n\nSee [setup](setup.md).\n");
    write(
        dir,
        "docs/setup.md",
        "# Setup\n\nInstall the quokka toolkit.\n",
    );
    crate::web::server_with(&dir.join("catalog-info.yaml"), 2).await
}

async fn sync(server: &TestServer) -> String {
    response(server, "/api/techdocs/sync/default/component/notes")
        .await
        .text()
        .await
        .unwrap()
}

async fn found(server: &TestServer, term: &str) -> Vec<String> {
    let (_, body) = server
        .get_json(&format!(
            "/api/search/query?term={term}&types%5B0%5D=techdocs"
        ))
        .await;
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["document"]["location"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_changed_page_is_rendered_again_alone_and_removed_pages_go() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _data) = site_server(dir.path()).await;
    built(&server, "component:default/notes").await;
    let store = server.running.state.techdocs.store().clone();
    let key = "component:default/notes";
    let before_index = store.page(key, "").await.unwrap().unwrap();
    let before_setup = store.page(key, "setup/").await.unwrap().unwrap();
    assert_eq!(
        found(&server, "quokka").await,
        ["/docs/default/component/notes/setup/"]
    );

    write(
        dir.path(),
        "docs/setup.md",
        "# Setup\n\nInstall the wombat toolkit.\n",
    );
    let stream = sync(&server).await;
    assert!(stream.contains("\"updated\":true"), "{stream}");
    assert!(
        stream.contains("Rendered 1 page(s), 1 unchanged"),
        "{stream}"
    );
    let after_index = store.page(key, "").await.unwrap().unwrap();
    let after_setup = store.page(key, "setup/").await.unwrap().unwrap();
    assert_eq!(
        after_index, before_index,
        "the unchanged page is not rewritten"
    );
    assert_ne!(after_setup.hash, before_setup.hash);
    assert!(after_setup.html.contains("wombat"));
    assert!(
        found(&server, "quokka").await.is_empty(),
        "the old text is gone"
    );
    assert_eq!(found(&server, "wombat").await.len(), 1);

    // Nothing changed: nothing is written.
    let stream = sync(&server).await;
    assert!(stream.contains("\"updated\":false"), "{stream}");

    // A removed page leaves the portal and the index; the link to it is
    // now a problem of the page that names it.
    std::fs::remove_file(dir.path().join("docs/setup.md")).unwrap();
    let stream = sync(&server).await;
    assert!(stream.contains("\"updated\":true"), "{stream}");
    assert!(store.page(key, "setup/").await.unwrap().is_none());
    assert!(found(&server, "wombat").await.is_empty());
    let (status, _) = server.get("/docs/default/component/notes/setup/").await;
    assert_eq!(status, 404);
    let (_, index) = server.get("/docs/default/component/notes/").await;
    assert!(index.contains("docs/index.md:3"), "{index}");
}

#[tokio::test]
async fn hostile_sites_stay_inert_and_cannot_leave_the_catalogs_folders() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "catalog-info.yaml", ENTITY);
    write(dir.path(), "mkdocs.yml", "site_name: Hostile\n");
    write(
        dir.path(),
        "docs/index.md",
        "# Hi\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
         [click](javascript:alert(3)) [data](data:text/html,<script>alert(4)</script>)\n\n\
         <svg onload=alert(5)><circle/></svg>\n\n<iframe src=\"https://evil.example\"></iframe>\n\n\
         ![up](../../../../etc/passwd)\n\n--8<-- \"../../../../etc/hostname\"\n\n\
         ![pic](evil.svg)\n",
    );
    write(
        dir.path(),
        "docs/evil.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(6)</script></svg>",
    );
    write(dir.path(), "docs/page.html", "<script>alert(7)</script>");
    let (server, _data) = crate::web::server_with(&dir.path().join("catalog-info.yaml"), 2).await;
    built(&server, "component:default/notes").await;
    let (status, page) = server.get("/docs/default/component/notes/").await;
    assert_eq!(status, 200);
    let content = page
        .split("class=\"md-typeset\"")
        .nth(1)
        .and_then(|c| c.split("<footer").next())
        .unwrap_or_default();
    for bad in [
        "<script",
        "onerror",
        "javascript:",
        "data:text",
        "<svg",
        "<iframe",
        "onload",
    ] {
        assert!(!content.contains(bad), "{bad} survived: {content}");
    }
    let r = response(&server, "/docs/default/component/notes/evil.svg").await;
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let r = response(&server, "/docs/default/component/notes/page.html").await;
    assert_eq!(
        r.headers()["content-type"],
        "text/plain",
        "HTML files of a site are never served as HTML"
    );
    for path in [
        "/docs/default/component/notes/..%2F..%2Fcatalog-info.yaml",
        "/docs/default/component/notes/%2e%2e/catalog-info.yaml",
        "/docs/default/component/notes/../../etc/passwd",
    ] {
        let (status, _) = server.get(path).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
    }

    // A site outside the folders the catalog may read is never read.
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "mkdocs.yml", "site_name: Secret\n");
    write(outside.path(), "docs/index.md", "# Secret\n");
    let escaping = ENTITY.replace("dir:.", &format!("dir:{}", outside.path().display()));
    write(dir.path(), "catalog-info.yaml", &escaping);
    crate::support::refresh_entity(&server, _data.path(), "component:default/notes").await;
    let stream = sync(&server).await;
    assert!(stream.contains("event: error"), "{stream}");
    assert!(stream.contains("outside the folders"), "{stream}");
    // The last good build keeps serving.
    let (status, page) = server.get("/docs/default/component/notes/").await;
    assert_eq!(status, 200);
    assert!(!page.contains("Secret"), "{page}");
}

#[tokio::test]
async fn writers_check_a_site_and_preview_it_as_they_edit() {
    let data = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/catalog/docs");
    // A clean site: exit 0 and a summary line.
    let (ok, out) = crate::support::cli(
        data.path(),
        &[
            "docs",
            "build",
            demo.join("payment-gateway").to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Payment Gateway: 4 page(s), 1 file(s), 0 problem(s)"),
        "{out}"
    );
    // A site with problems: each with file and line, and exit 1.
    let booking = demo.join("booking-service");
    let output = std::process::Command::new(std::env::var_os("CALLBOARD_BIN").unwrap())
        .args(["--data-dir", data.path().to_str().unwrap(), "docs", "build"])
        .arg(&booking)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("mkdocs.yml:7: nav entry \"pricing.md\""),
        "{out}"
    );
    assert!(
        out.contains("docs/index.md:8: link target \"capacity.md\""),
        "{out}"
    );
    let (_, json) = crate::support::cli(
        data.path(),
        &["docs", "build", "--json", booking.to_str().unwrap()],
    );
    let report: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(report["problems"].as_array().unwrap().len(), 4, "{report}");
    // Not a site: exit 2.
    let output = std::process::Command::new(std::env::var_os("CALLBOARD_BIN").unwrap())
        .args(["--data-dir", data.path().to_str().unwrap(), "docs", "build"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));

    // The preview renders again when a page changes.
    let site = tempfile::tempdir().unwrap();
    write(site.path(), "mkdocs.yml", "site_name: Draft\n");
    write(site.path(), "docs/index.md", "# Draft\n\nFirst words.\n");
    let port = crate::web::browser::free_port();
    let mut child = std::process::Command::new(std::env::var_os("CALLBOARD_BIN").unwrap())
        .args(["--data-dir", data.path().to_str().unwrap(), "docs", "serve"])
        .arg(site.path())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/docs/default/component/preview/");
    let client = reqwest::Client::new();
    let page = |needle: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body = client.get(&url).send().await.ok()?.text().await.ok()?;
            body.contains(needle).then_some(body)
        }
    };
    eventually(30, "the preview to serve the page", || page("First words")).await;
    write(site.path(), "docs/index.md", "# Draft\n\nSecond words.\n");
    eventually(30, "the preview to show the edit", || page("Second words")).await;
    let _ = child.kill();
    let _ = child.wait();
}
