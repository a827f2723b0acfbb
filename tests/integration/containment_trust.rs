//! Issue 11, trust and outbound findings: a plugin's grants, settings and
//! data follow a verified signer, not what its manifest claims; outbound HTTP
//! reaches only what was granted, by address and port, never the portal.
//! The hostile plugin is `tests/fixtures/hostile-trust`, repacked under the
//! ids and vendors each attack needs.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{Router, extract::Query, http::HeaderMap, routing::get};
use callboard::{
    config::{Config, TrustedVendor},
    plugins::{
        manifest::{self, Capabilities, Manifest},
        signing::VendorKey,
    },
};
use serde_json::{Value, json};

use crate::support::{TestServer, backstage_error, config, eventually, plugin_file};

const FIXTURE: &str = "hostile-trust";

/// The fixture repacked as plugin `id` version `version` claiming `vendor`.
fn hostile(id: &str, version: &str, vendor: Option<&str>) -> Vec<u8> {
    let bytes = std::fs::read(plugin_file(FIXTURE)).unwrap();
    let mut m: Manifest = manifest::read(&bytes).unwrap();
    m.id = id.into();
    m.version = version.parse().unwrap();
    m.vendor = vendor.map(str::to_owned);
    manifest::embed(&bytes, &m).unwrap()
}

fn token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// POST /api/admin/plugins: (status, body as JSON).
async fn upload(server: &TestServer, data: &Path, bytes: Vec<u8>, force: bool) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "plugin",
        reqwest::multipart::Part::bytes(bytes).file_name("p.wasm"),
    );
    let response = server
        .client
        .post(server.url(&format!("/api/admin/plugins?force={force}")))
        .bearer_auth(token(data))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

fn message(body: &Value) -> String {
    backstage_error(&body.to_string()).1
}

/// GET `/api/plugins/<id>/loot` (what the plugin can reach) and who served it.
async fn loot(server: &TestServer, id: &str) -> (u16, String, Value) {
    let response = server
        .client
        .get(server.url(&format!("/api/plugins/{id}/loot")))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let by = response
        .headers()
        .get("x-callboard-plugin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, by, body)
}

fn with_acme(data: &Path, acme: &VendorKey) -> Config {
    let mut config = config(data);
    config.trust.vendors = vec![TrustedVendor {
        id: "acme".into(),
        public_key: acme.public().public_key,
    }];
    // Vendor grants: what a plugin of acme's gets beyond the default (kv).
    for vendor in ["acme", "stranger"] {
        config.grants.vendors.insert(
            vendor.into(),
            Capabilities {
                catalog: true,
                ..Capabilities::default()
            },
        );
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_grants_need_that_vendors_verified_signature() {
    let data = tempfile::tempdir().unwrap();
    let acme = VendorKey::generate("acme").unwrap();
    let stranger = VendorKey::generate("stranger").unwrap();
    let server = TestServer::start(with_acme(data.path(), &acme)).await;

    // Claiming acme in the manifest, unsigned: no acme grants.
    let (status, body) = upload(
        &server,
        data.path(),
        hostile("claims", "1.0.0", Some("acme")),
        false,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, _, loot_body) = loot(&server, "claims").await;
    assert!(
        loot_body["catalog"]["error"].is_string(),
        "an unsigned claim got acme's grant: {loot_body}"
    );
    assert_eq!(body["effective"]["catalog"], false, "{body}");

    // Validly signed, by a key the operator does not trust: no vendor grants either.
    let signed = stranger
        .sign_plugin(&hostile("unknown", "1.0.0", Some("stranger")))
        .unwrap();
    let (status, body) = upload(&server, data.path(), signed, false).await;
    assert_eq!(status, 201, "{body}");
    let (_, _, loot_body) = loot(&server, "unknown").await;
    assert!(
        loot_body["catalog"]["error"].is_string(),
        "an untrusted key got a vendor grant: {loot_body}"
    );

    // acme's own signature: acme's grants.
    let signed = acme
        .sign_plugin(&hostile("genuine", "1.0.0", Some("acme")))
        .unwrap();
    let (status, body) = upload(&server, data.path(), signed, false).await;
    assert_eq!(status, 201, "{body}");
    let (_, _, loot_body) = loot(&server, "genuine").await;
    assert_eq!(loot_body["catalog"], "granted", "{loot_body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_or_foreign_update_cannot_take_a_signed_plugins_place() {
    let data = tempfile::tempdir().unwrap();
    let acme = VendorKey::generate("acme").unwrap();
    let umbrella = VendorKey::generate("umbrella").unwrap();
    let make_config = || {
        let mut config = with_acme(data.path(), &acme);
        config.trust.vendors.push(TrustedVendor {
            id: "umbrella".into(),
            public_key: umbrella.public().public_key,
        });
        config.plugins.settings.insert(
            "victim".into(),
            BTreeMap::from([("token".to_owned(), "s3cret-ci-token".to_owned())]),
        );
        config
    };
    let server = TestServer::start(make_config()).await;

    let v1 = acme
        .sign_plugin(&hostile("victim", "1.0.0", Some("acme")))
        .unwrap();
    let (status, body) = upload(&server, data.path(), v1, false).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["changes"]["version_from"], Value::Null, "{body}");
    let response = server
        .client
        .put(server.url("/api/plugins/victim/kv/secret"))
        .body("victim's data")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let (_, by, before) = loot(&server, "victim").await;
    assert_eq!(by, "victim@1.0.0");
    assert_eq!(
        before,
        json!({ "token": "s3cret-ci-token", "secret": "victim's data", "catalog": "granted" })
    );

    // Unsigned at a higher version, same id and claimed vendor: refused,
    // naming the plugin, both signers and what would change.
    let (status, body) = upload(
        &server,
        data.path(),
        hostile("victim", "9.0.0", Some("acme")),
        false,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let refusal = message(&body);
    for part in [
        "plugin id \"victim\" is already provided by vendor \"acme\"",
        "signed by trusted vendor \"acme\"",
        "this file is unsigned",
        "the signature is weaker",
        "--force",
        "version 1.0.0 -> 9.0.0",
        "grants removed: catalog",
    ] {
        assert!(refusal.contains(part), "{refusal:?} does not say {part:?}");
    }
    // Another trusted vendor: refused too.
    let foreign = umbrella
        .sign_plugin(&hostile("victim", "9.0.0", Some("umbrella")))
        .unwrap();
    let (status, body) = upload(&server, data.path(), foreign, false).await;
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("the vendor changes"), "{body}");
    assert_eq!(
        loot(&server, "victim").await.2,
        before,
        "v1 keeps serving with its own"
    );

    // The same file dropped into the plugins folder: refused, no force there.
    let file = data.path().join("plugins/victim.wasm");
    callboard::plugins::write_atomically(&file, &hostile("victim", "9.0.0", Some("acme"))).unwrap();
    let last = eventually(20, "the folder refusal", || async {
        server
            .running
            .state
            .plugins
            .get("victim")
            .and_then(|p| p.last_error)
            .filter(|e| e.contains("cannot force"))
    })
    .await;
    assert!(
        last.contains("the signature is weaker") && last.contains("cannot force"),
        "{last}"
    );
    assert_eq!(loot(&server, "victim").await.1, "victim@1.0.0");
    server.stop().await;

    // A restart remembers the signer: the dropped file is still refused.
    let server = TestServer::start(make_config()).await;
    assert_eq!(loot(&server, "victim").await.0, 404);
    assert!(
        server
            .running
            .state
            .plugins
            .failures()
            .iter()
            .any(|f| f.error.contains("the signature is weaker")),
        "{:?}",
        server.running.state.plugins.failures()
    );

    // Forced by the operator: accepted, and the answer lists what changed.
    let (status, body) = upload(
        &server,
        data.path(),
        hostile("victim", "9.0.0", Some("acme")),
        true,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let changes = &body["changes"];
    assert!(
        changes["signer_from"]
            .as_str()
            .unwrap()
            .contains("trusted vendor \"acme\""),
        "{body}"
    );
    assert!(
        changes["signer_to"].as_str().unwrap().contains("unsigned"),
        "{body}"
    );
    assert_eq!(
        changes["version_from"],
        Value::Null,
        "nothing served since the restart: {body}"
    );
    assert_eq!(changes["version_to"], "9.0.0");
    let (_, by, after) = loot(&server, "victim").await;
    assert_eq!(by, "victim@9.0.0");
    assert!(
        after["catalog"]["error"].is_string(),
        "vendor grants stay with acme: {after}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_plugin_id_loads_only_with_its_vendors_signature() {
    let data = tempfile::tempdir().unwrap();
    let acme = VendorKey::generate("acme").unwrap();
    let mut config = with_acme(data.path(), &acme);
    config.trust.pins.insert("ci".into(), "acme".into());
    let server = TestServer::start(config).await;
    let (status, body) = upload(
        &server,
        data.path(),
        hostile("ci", "1.0.0", Some("acme")),
        true,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains("is pinned to vendor \"acme\""),
        "{body}"
    );
    let signed = acme
        .sign_plugin(&hostile("ci", "1.0.0", Some("acme")))
        .unwrap();
    assert_eq!(upload(&server, data.path(), signed, false).await.0, 201);
    server.stop().await;
}

#[test]
fn a_malformed_host_grant_is_a_config_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("callboard.toml");
    std::fs::write(
        &file,
        "[grants.plugins.ci]\nhttp_hosts = [\"127.0.0.1:99999\"]\n",
    )
    .unwrap();
    let error = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(
        error.contains("grants.plugins.ci.http_hosts") && error.contains("127.0.0.1:99999"),
        "{error}"
    );
}

/// An upstream on 127.0.0.1: `/echo` answers the request headers it got as
/// JSON, `/redirect?to=` redirects there. Counts requests.
async fn upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let map: BTreeMap<String, String> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
                    .collect();
                axum::Json(map)
            }),
        )
        .route(
            "/redirect",
            get(|Query(q): Query<BTreeMap<String, String>>| async move {
                axum::response::Redirect::temporary(&q["to"])
            }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                }
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// The fixture's `/fetch` of `url` with `headers`.
async fn fetch(server: &TestServer, url: &str, headers: &[&str]) -> Value {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("url", url);
    for h in headers {
        query.append_pair("header", h);
    }
    let (status, body) = server
        .get_json(&format!("/api/plugins/{FIXTURE}/fetch?{}", query.finish()))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn granted(data: &Path, hosts: &[&str]) -> TestServer {
    TestServer::with_plugins(data, &[FIXTURE], |config| {
        config.grants.plugins.insert(
            FIXTURE.into(),
            Capabilities {
                http_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
                ..Capabilities::default()
            },
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_name_never_reaches_loopback_and_ports_are_granted() {
    let (addr, hits) = upstream().await;
    let (other, other_hits) = upstream().await;
    let port = addr.port();
    let data = tempfile::tempdir().unwrap();
    let server = granted(
        data.path(),
        &["localhost:*", &format!("127.0.0.1:{}", other.port())],
    )
    .await;

    // `localhost` is granted by name, but it resolves to loopback.
    let body = fetch(&server, &format!("http://localhost:{port}/echo"), &[]).await;
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("loopback address, which needs an address grant"),
        "{body}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused request reached the upstream"
    );

    // `127.0.0.1:<port>` grants that port, not another on the same address.
    let body = fetch(
        &server,
        &format!("http://127.0.0.1:{}/echo", other.port()),
        &[],
    )
    .await;
    assert_eq!(body["status"], 200, "{body}");
    assert_eq!(other_hits.load(Ordering::SeqCst), 1);
    let body = fetch(&server, &format!("http://127.0.0.1:{port}/echo"), &[]).await;
    assert_eq!(body["error"], "Denied(\"127.0.0.1\")", "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_hop_by_hop_headers_are_dropped_and_credentials_stay_on_their_origin() {
    let (addr, _) = upstream().await;
    let (other, _) = upstream().await;
    let data = tempfile::tempdir().unwrap();
    let server = granted(data.path(), &["127.0.0.1"]).await;
    let sent = [
        "Host:evil.example",
        "Upgrade:websocket",
        "Connection:upgrade",
        "Proxy-Authorization:Basic eA==",
        "TE:trailers",
        "Authorization:Bearer plugin-token",
        "Cookie:session=1",
        "X-Ok:kept",
    ];
    let body = fetch(&server, &format!("http://{addr}/echo"), &sent).await;
    assert_eq!(body["status"], 200, "{body}");
    let echoed: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["host"], addr.to_string(), "{echoed}");
    for dropped in ["upgrade", "proxy-authorization", "te"] {
        assert!(
            echoed.get(dropped).is_none(),
            "{dropped} reached the upstream: {echoed}"
        );
    }
    assert_ne!(echoed["connection"], "upgrade", "{echoed}");
    assert_eq!(
        echoed["authorization"], "Bearer plugin-token",
        "same origin keeps credentials"
    );
    assert_eq!(echoed["x-ok"], "kept");

    // Redirected to another origin: the credentials stay behind.
    let to = format!("http://{other}/echo");
    let url = format!(
        "http://{addr}/redirect?to={}",
        percent_encoding::utf8_percent_encode(&to, percent_encoding::NON_ALPHANUMERIC)
    );
    let body = fetch(&server, &url, &sent).await;
    assert_eq!(body["status"], 200, "{body}");
    let echoed: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["host"], other.to_string(), "{echoed}");
    assert!(
        echoed.get("authorization").is_none() && echoed.get("cookie").is_none(),
        "{echoed}"
    );
    assert_eq!(echoed["x-ok"], "kept");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_call_the_portal_even_with_its_address_granted() {
    let data = tempfile::tempdir().unwrap();
    let server = granted(data.path(), &["127.0.0.0/8"]).await;
    let own = server.running.addr;
    // The plugin calling its own route through the portal, as a loop would.
    for url in [
        format!("http://{own}/api/plugins/{FIXTURE}/loot"),
        format!("http://127.0.0.1:{}/api/health", own.port()),
    ] {
        let body = fetch(&server, &url, &[]).await;
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("the portal itself"), "{url}: {body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_call_the_portal_through_its_public_url() {
    let data = tempfile::tempdir().unwrap();
    // Users reach the portal as portal.example.test through a proxy that maps
    // it back here: granting that name must not open a way round the
    // bound-address check. Refused before any lookup (the name does not
    // resolve here, so anything else would be a connection error).
    let server = TestServer::with_plugins(data.path(), &[FIXTURE], |config| {
        config.server.public_url = Some("https://Portal.Example.Test".into());
        config.grants.plugins.insert(
            FIXTURE.into(),
            Capabilities {
                http_hosts: vec!["portal.example.test".into(), "other.example.test".into()],
                ..Capabilities::default()
            },
        );
    })
    .await;
    let body = fetch(&server, "https://portal.example.test/api/health", &[]).await;
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("the portal itself"), "{body}");
    // Another granted name on the same port is not the portal.
    let body = fetch(&server, "https://other.example.test/api/health", &[]).await;
    let error = body["error"].as_str().unwrap_or_default();
    assert!(!error.contains("the portal itself"), "{body}");
    server.stop().await;
}
