//! The portal's pages over the demo catalog: rendered HTML through real HTTP
//! (here), and the same pages driven in headless Chromium (`web/browser.rs`).
//! Plugin views in pages (cards, tabs, plugin pages, failures) are in
//! `web/views.rs`.

pub(crate) mod browser;
mod signin_browser;
mod views;

use std::path::PathBuf;

use callboard_catalog::{LocationConfig, LocationKind};

use crate::support::{TestServer, config};

/// The demo catalog's entry file.
pub fn demo_catalog() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo/catalog/all.yaml")
}

/// Valid entities in the demo catalog (its README says so).
const DEMO_ENTITIES: u64 = 107;

/// A server over a fresh data directory serving the catalog at `location`,
/// returned once the first refresh has stored `expect` entities.
pub async fn server_with(
    location: &std::path::Path,
    expect: u64,
) -> (TestServer, tempfile::TempDir) {
    server_configured(location, expect, |_, _| {}).await
}

/// [`server_with`], with `tweak` applied to the config (and given the data
/// directory, e.g. to install plugins into it) before the server starts.
pub async fn server_configured(
    location: &std::path::Path,
    expect: u64,
    tweak: impl FnOnce(&std::path::Path, &mut callboard::config::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: location.display().to_string(),
    }];
    tweak(dir.path(), &mut config);
    let server = TestServer::start(config).await;
    crate::support::wait_for_entities(&server, expect).await;
    (server, dir)
}

/// A server over the demo catalog.
pub async fn demo_server() -> (TestServer, tempfile::TempDir) {
    server_with(&demo_catalog(), DEMO_ENTITIES).await
}

async fn page(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn home_explains_the_portal_and_counts_kinds() {
    let (server, _dir) = demo_server().await;
    let (status, headers, body) = page(&server, "/").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(headers.contains_key("server-timing"), "{headers:?}");
    assert!(!body.contains("<script"), "pages ship no script");
    assert!(body.contains("Find any service, API or team"), "{body}");
    assert!(body.contains(r#"action="/search""#), "a search form");
    // 34 components and 17 APIs in the demo (see demo/catalog/README.md; one
    // component is the broken one, so 33 are stored).
    assert!(body.contains(r#"href="/catalog?kind=component""#), "{body}");
    assert!(body.contains("<span class=\"count\">33</span>"), "{body}");
    assert!(body.contains("<span class=\"count\">17</span>"), "{body}");
    assert!(body.contains("Recently changed"), "{body}");
    assert!(body.contains("No plugins are installed yet"), "{body}");
    // The broken file's error is on the home page, naming the field.
    assert!(
        body.contains("The catalog could not read everything"),
        "{body}"
    );
    assert!(body.contains("spec.owner"), "{body}");
    let (status, headers, css) = page(&server, "/static/callboard.css").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.contains("--accent"));
    server.stop().await;
}

#[tokio::test]
async fn catalog_filters_search_sorts_and_pages() {
    let (server, _dir) = demo_server().await;
    let (status, _, body) = page(&server, "/catalog?kind=Component&owner=billing-team").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Payment Gateway"), "{body}");
    assert!(body.contains("Ledger Service"), "{body}");
    assert!(
        !body.contains("Booking Service"),
        "another team's component: {body}"
    );
    assert!(
        !body.contains("Payments API</a>"),
        "an API, not a component: {body}"
    );
    // The filter values stay in the form so the URL can be shared.
    assert!(body.contains(r#"value="billing-team""#), "{body}");

    let (_, _, body) = page(&server, "/catalog?q=ledger").await;
    assert!(body.contains("Ledger Service"), "{body}");
    assert!(!body.contains("Booking Service"), "{body}");

    // Pages of 10 sorted by name, descending: follow "Next" to the end and
    // back, seeing every entity once.
    let mut seen = Vec::new();
    let mut path = "/catalog?sort=name&order=desc&limit=10".to_owned();
    loop {
        let (status, _, body) = page(&server, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let names = entity_links(&body);
        assert!(names.len() <= 10);
        seen.extend(names);
        match next_link(&body, "next") {
            Some(next) => path = next,
            None => break,
        }
    }
    // The demo's entities plus the Location the catalog generates for the
    // configured file.
    assert_eq!(seen.len() as u64, DEMO_ENTITIES + 1, "{seen:?}");
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no entity twice: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.rsplit('/').next().cmp(&a.rsplit('/').next()));
    assert_eq!(
        seen.iter()
            .map(|s| s.rsplit('/').next().unwrap())
            .collect::<Vec<_>>(),
        sorted
            .iter()
            .map(|s| s.rsplit('/').next().unwrap())
            .collect::<Vec<_>>(),
        "descending by name"
    );
    let (_, _, body) = page(&server, &path).await;
    let prev = next_link(&body, "prev").expect("a previous link on the last page");
    let (_, _, body) = page(&server, &prev).await;
    assert_eq!(entity_links(&body).len(), 10);

    let (status, _, body) = page(&server, "/catalog?after=garbage").await;
    assert_eq!(status, 400, "{body}");
    server.stop().await;
}

/// Entity hrefs in the catalog table, in order.
fn entity_links(body: &str) -> Vec<String> {
    let table = body.split("<tbody>").nth(1).unwrap_or("");
    table
        .split("<td class=\"name\"><a href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

/// The pager link with `rel`, unescaped.
fn next_link(body: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\"");
    let end = body.find(&marker)?;
    let start = body[..end].rfind("href=\"")? + 6;
    let href = &body[start..end];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

#[tokio::test]
async fn component_page_shows_header_relations_graph_and_yaml() {
    let (server, _dir) = demo_server().await;
    let (status, _, body) = page(&server, "/catalog/default/component/payment-gateway").await;
    assert_eq!(status, 200, "{body}");
    for expected in [
        "<h1 id=\"entity-title\">Payment Gateway</h1>",
        "component:default/payment-gateway",
        "Wraps the card acquirer",
        "href=\"/catalog/default/group/billing-team\"",
        "href=\"/catalog/default/system/payments\"",
        "href=\"/catalog/default/api/payments-api\"",
        "href=\"/catalog/default/api/ledger-api\"",
        "href=\"/catalog/default/resource/payments-db\"",
        "https://runbooks.brightwharf.example/payment-gateway",
        "<svg",
        "Provides API",
        "Entity as YAML",
        "plugin-cards",
    ] {
        assert!(body.contains(expected), "missing {expected}: {body}");
    }
    assert!(
        body.contains("<span class=\"k\">apiVersion</span>"),
        "highlighted YAML: {body}"
    );
    // The CSP allows styles only from the stylesheet: no inline ones.
    assert!(!body.contains(" style="), "inline style: {body}");
    // The relation graph links every node to its page.
    let svg = &body[body.find("<svg").unwrap()..body.find("</svg>").unwrap()];
    assert!(
        svg.contains("href=\"/catalog/default/group/billing-team\""),
        "{svg}"
    );

    let (status, _, body) = page(&server, "/catalog/default/component/no-such-thing").await;
    assert_eq!(status, 404, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn api_pages_render_openapi_operations_and_highlight_others() {
    let (server, _dir) = demo_server().await;
    let (status, _, body) = page(&server, "/catalog/default/api/payments-api").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"operations\""), "{body}");
    assert!(body.contains("method method-post"), "{body}");
    assert!(body.contains("<h4>Responses</h4>"), "{body}");
    assert!(
        body.contains("<h4>Parameters</h4>") || body.contains("Request body"),
        "{body}"
    );
    for (api, marker) in [
        ("quote-api", "<span class=\"kw\">service</span>"),
        ("booking-events", "<span class=\"k\">asyncapi</span>"),
    ] {
        let (status, _, body) = page(&server, &format!("/catalog/default/api/{api}")).await;
        assert_eq!(status, 200, "{api}: {body}");
        assert!(body.contains(marker), "{api}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn group_and_user_pages_show_members_and_ownership() {
    let (server, _dir) = demo_server().await;
    let (status, _, body) = page(&server, "/catalog/default/group/billing-team").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Members ("), "{body}");
    assert!(body.contains("Owned entities ("), "{body}");
    assert!(body.contains("Payment Gateway"), "{body}");
    assert!(body.contains("Parent group"), "{body}");
    let user = body
        .split("href=\"/catalog/default/user/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a member link")
        .to_owned();
    let (status, _, body) = page(&server, &format!("/catalog/default/user/{user}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Member of (1)") || body.contains("Member of ("),
        "{body}"
    );
    assert!(
        body.contains("href=\"/catalog/default/group/billing-team\""),
        "{body}"
    );

    // A user who owns something directly.
    let (_, _, body) = page(&server, "/catalog/default/user/tomasz.wojcik").await;
    assert!(
        body.contains("zpl-toolkit") || body.contains("ZPL"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_broken_entity_explains_itself() {
    let (server, _dir) = demo_server().await;
    let (status, _, body) = page(&server, "/catalog/default/component/parcel-insurance").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("It was rejected when the catalog read it"),
        "{body}"
    );
    assert!(body.contains("spec.owner"), "{body}");
    assert!(body.contains("broken.yaml"), "{body}");
    // And on the Location that lists it.
    let (status, _, body) = page(&server, "/catalog/default/location/brightwharf-demo").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"processing-errors\""), "{body}");
    assert!(body.contains("spec.owner"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn catalog_text_is_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evil.yaml");
    std::fs::write(
        &file,
        r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: evil
  title: "<script>alert(1)</script>"
  description: "<img src=x onerror=alert(2)>"
  tags: [xss]
  links:
    - url: "javascript:alert(3)"
      title: "click <b>me</b>"
spec:
  type: service
  lifecycle: "<i>prod</i>"
  owner: "team-a"
  definition: "x"
"#,
    )
    .unwrap();
    let (server, _data) = server_with(&file, 1).await;
    for path in [
        "/",
        "/catalog",
        "/catalog?q=%3Cscript%3E",
        "/catalog/default/component/evil",
    ] {
        let (status, _, body) = page(&server, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains("<script"), "{path}: {body}");
        assert!(!body.contains("<img src=x"), "{path}: {body}");
        assert!(!body.contains("<i>prod"), "{path}: {body}");
        assert!(!body.contains("href=\"javascript:"), "{path}: {body}");
    }
    let (_, _, body) = page(&server, "/catalog/default/component/evil").await;
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    server.stop().await;
}

/// A multipart/form-data body with one file field.
fn multipart(field: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "callboard-test-boundary-7f3a";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn admin_pages_need_the_token_and_install_by_upload() {
    let (server, dir) = demo_server().await;
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let (status, _, body) = page(&server, "/admin").await;
    assert_eq!(status, 200);
    assert!(body.contains("Sign in"), "{body}");
    assert!(!body.contains("Installed plugins"), "{body}");

    let response = client
        .post(server.url("/admin/login"))
        .form(&[("token", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let (content_type, upload) = multipart(
        "plugin",
        "hello.wasm",
        &std::fs::read(crate::support::plugin_file("hello")).unwrap(),
    );
    let response = client
        .post(server.url("/admin/plugins"))
        .header("content-type", &content_type)
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401, "uploads need a session");

    let response = client
        .post(server.url("/admin/login"))
        .form(&[("token", token.trim())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token.trim()),
        "the cookie is not the token"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    // Every admin form carries the session's CSRF token.
    let admin = client
        .get(server.url("/admin"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = admin
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the admin page's forms carry a CSRF token")
        .to_owned();
    let csrf_field = format!(
        "--callboard-test-boundary-7f3a\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
    );
    let response = client
        .post(server.url("/admin/plugins"))
        .header("cookie", &session)
        .header("content-type", &content_type)
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403, "no CSRF token, no upload");
    let upload = [csrf_field.as_bytes(), &upload].concat();

    // A cross-site post is refused even with the cookie.
    let response = client
        .post(server.url("/admin/plugins"))
        .header("cookie", &session)
        .header("origin", "http://evil.example")
        .header("content-type", &content_type)
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    let response = client
        .post(server.url("/admin/plugins"))
        .header("cookie", &session)
        .header("content-type", &content_type)
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        303,
        "{:?}",
        response.text().await
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, "/admin?installed=hello");
    let body = client
        .get(server.url(&location))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("Installed <strong>"), "{body}");
    assert!(body.contains("id=\"plugin-hello\""), "{body}");
    assert!(
        body.contains("Unsigned") || body.contains("Signed by"),
        "{body}"
    );
    // Serving at once, and listed on the home page, without a restart.
    let (status, _) = server.get("/api/plugins/hello/greet/Ada").await;
    assert_eq!(status, 200);
    let (_, _, home) = page(&server, "/").await;
    assert!(!home.contains("No plugins are installed yet"), "{home}");

    let response = client
        .post(server.url("/admin/plugins/hello/remove"))
        .header("cookie", &session)
        .form(&[("purge", "1"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let (status, _) = server.get("/api/plugins/hello/greet/Ada").await;
    assert_eq!(status, 404);
    server.stop().await;
}
