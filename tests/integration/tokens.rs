//! API tokens and the audit log, for administrators: the admin API
//! (`/api/admin/tokens`, `/api/admin/audit`), its permission checks, the
//! pages (`/admin/tokens`, `/admin/audit`), and `callboard token ...`
//! against a running server.

use std::path::Path;

use callboard::identity::{Identity, config::Anonymous};
use serde_json::{Value, json};

use crate::{
    people::{Auth, no_redirects},
    support::{TestServer, admin_token, backstage_error},
};

/// A server over `data` where anonymous callers get nothing, and guest
/// sign-in makes `user:default/someone` (no role beyond everyone's).
async fn start(data: &Path) -> TestServer {
    let mut config = crate::support::config(data);
    config.auth.anonymous = Anonymous::None;
    config.auth.guest.enabled = true;
    config.auth.guest.user = "user:default/someone".into();
    TestServer::start(config).await
}

async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = auth.apply(no_redirects().request(method, server.url(path)));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get_json(server: &TestServer, path: &str, auth: Auth<'_>) -> (u16, Value) {
    let (status, text) = call(server, reqwest::Method::GET, path, auth, None).await;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Creates a token through the API with `auth`: (status, body).
async fn create(server: &TestServer, auth: Auth<'_>, body: Value) -> (u16, Value) {
    let (status, text) = call(
        server,
        reqwest::Method::POST,
        "/api/admin/tokens",
        auth,
        Some(body),
    )
    .await;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The audit log's entries (newest first) through the API.
async fn audit(server: &TestServer, admin: &str) -> Vec<Value> {
    let (status, page) = get_json(server, "/api/admin/audit", Auth::Bearer(admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn tokens_are_created_used_within_their_restrictions_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = admin_token(dir.path());

    let (status, created) = create(
        &server,
        Auth::Bearer(&admin),
        json!({"name": "ci-bot", "permissions": ["catalog.entity.read"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("cbt_") && secret.len() == 4 + 64,
        "{secret}"
    );
    assert_eq!(created["name"], "ci-bot");
    assert_eq!(created["permissions"], json!(["catalog.entity.read"]));
    let expires: jiff::Timestamp = created["expiresAt"].as_str().unwrap().parse().unwrap();
    let days = (expires.as_millisecond() - now_ms()) as f64 / 86_400_000.0;
    assert!(
        (89.9..=90.0).contains(&days),
        "default expiry 90 days, got {days}"
    );
    // The policy grants by name (`token:ci-bot`): no second live token of
    // that name, whatever its case.
    let (status, body) = create(&server, Auth::Bearer(&admin), json!({"name": "CI-bot"})).await;
    assert_eq!(status, 409, "{body}");

    // An unrestricted token: what the default policy grants everyone.
    let (status, open) = create(
        &server,
        Auth::Bearer(&admin),
        json!({"name": "reader.2_x-y", "expiresInDays": 1}),
    )
    .await;
    assert_eq!(status, 201, "{open}");
    let open_secret = open["token"].as_str().unwrap().to_owned();

    // Anonymous callers get nothing here; the tokens read the catalog.
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::None).await;
    assert_eq!(status, 401);
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::Bearer(&secret)).await;
    assert_eq!(status, 200);
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::Bearer(&open_secret)).await;
    assert_eq!(status, 200);

    // Beyond its restriction: 403 naming the token and the permission.
    let (status, body) = call(
        &server,
        reqwest::Method::POST,
        "/api/catalog/refresh",
        Auth::Bearer(&secret),
        Some(json!({"entityRef": "component:default/x"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (name, message) = backstage_error(&body);
    assert_eq!(name, "NotAllowedError");
    assert!(message.contains("token:ci-bot"), "{message}");
    for auth in [Auth::Bearer(&secret), Auth::Bearer(&open_secret)] {
        for path in [
            "/api/admin/tokens",
            "/api/admin/audit",
            "/api/admin/plugins",
        ] {
            let (status, body) = call(&server, reqwest::Method::GET, path, auth, None).await;
            assert_eq!(status, 403, "{path}: {body}");
            let (name, message) = backstage_error(&body);
            assert_eq!(name, "NotAllowedError");
            assert!(message.contains("is not allowed callboard."), "{message}");
        }
    }
    let (status, body) = create(&server, Auth::Bearer(&secret), json!({"name": "escalate"})).await;
    assert_eq!(status, 403, "a token cannot mint tokens: {body}");
    // Anonymous: 401 with Backstage's body, before the body is read.
    let (status, body) = call(
        &server,
        reqwest::Method::POST,
        "/api/admin/tokens",
        Auth::None,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(backstage_error(&body).0, "AuthenticationError");

    // The list: never a secret or a digest; live tokens, last use noted.
    let (status, text) = call(
        &server,
        reqwest::Method::GET,
        "/api/admin/tokens",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()));
    assert!(
        !text.contains(&secret[4..]) && !text.contains(&digest),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let mine = items.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(mine["state"], "live");
    assert_eq!(mine["createdBy"], "admin");
    assert!(mine["lastUsedAt"].is_string(), "{mine}");
    assert!(mine["revokedAt"].is_null(), "{mine}");

    // Revoked: 401 at once; revoking again is a 404.
    let (status, body) = call(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/admin/tokens/{id}"),
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::Bearer(&secret)).await;
    assert_eq!(status, 401);
    let (status, body) = call(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/admin/tokens/{id}"),
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(backstage_error(&body).0, "NotFoundError");

    // An expired token (stored directly: the API makes none) is a 401.
    let expired = "cbt_expired-for-the-test";
    server
        .running
        .state
        .stores
        .tokens
        .create_token(&callboard_store::access::TokenRow {
            id: "expired-1".into(),
            name: "old-bot".into(),
            digest: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(expired.as_bytes())),
            permissions: vec![],
            created_by: "admin".into(),
            created_ms: now_ms() - 10_000,
            expires_ms: Some(now_ms() - 1_000),
            last_used_ms: None,
            revoked_ms: None,
        })
        .await
        .unwrap();
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::Bearer(expired)).await;
    assert_eq!(status, 401);
    let (_, list) = get_json(&server, "/api/admin/tokens", Auth::Bearer(&admin)).await;
    let state_of = |id: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of(&id).as_deref(), Some("revoked"));
    assert_eq!(state_of("expired-1").as_deref(), Some("expired"));

    // The audit log: who made and revoked what.
    let entries = audit(&server, &admin).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["token.revoke", "token.create", "token.create"],
        "{entries:?}"
    );
    assert!(entries.iter().all(|e| e["actor"] == "admin"));
    assert_eq!(entries[0]["target"], id.as_str());
    assert_eq!(entries[0]["detail"]["name"], "ci-bot");
    assert_eq!(entries[2]["detail"]["name"], "ci-bot");
    assert_eq!(
        entries[2]["detail"]["permissions"],
        json!(["catalog.entity.read"])
    );
    assert!(entries[2]["detail"]["expiresAt"].is_string());
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains(&secret[4..]),
        "the audit log never holds a secret"
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_token_requests_and_audit_pages_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = admin_token(dir.path());
    let too_many: Vec<String> = (0..257).map(|_| "catalog.entity.read".to_owned()).collect();
    for (body, why) in [
        (json!({"name": "x".repeat(65)}), "must be 1 to 64"),
        (json!({"name": ""}), "must be 1 to 64"),
        (json!({"name": "a b"}), "[A-Za-z0-9._-]"),
        (json!({"name": "ci/bot"}), "[A-Za-z0-9._-]"),
        (json!({"name": "ci,bot"}), "[A-Za-z0-9._-]"),
        (json!({"name": "bötchen"}), "[A-Za-z0-9._-]"),
        (
            json!({"name": "ok", "permissions": ["catalog.entity.nuke"]}),
            "unknown permission",
        ),
        (
            json!({"name": "ok", "permissions": too_many}),
            "at most 256",
        ),
        (
            json!({"name": "ok", "expiresInDays": 0}),
            "expiresInDays must be 1 to 3650",
        ),
        (
            json!({"name": "ok", "expiresInDays": 3651}),
            "expiresInDays must be 1 to 3650",
        ),
        (
            json!({"name": "ok", "expiresInDays": -5}),
            "expiresInDays must be 1 to 3650",
        ),
        (json!({"name": "ok", "admin": true}), "unknown field"),
        (json!(["not", "an", "object"]), "must be JSON"),
    ] {
        let (status, value) = create(&server, Auth::Bearer(&admin), body.clone()).await;
        assert_eq!(status, 400, "{body}: {value}");
        let message = value["error"]["message"].as_str().unwrap();
        assert_eq!(value["error"]["name"], "InputError");
        assert!(message.contains(why), "{body}: {message}");
    }
    let (status, body) = create(
        &server,
        Auth::Bearer(&admin),
        json!({"name": "ok", "expiresInDays": 3650}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // A body too large is refused before it is parsed.
    let huge = json!({"name": "ok", "permissions": ["x".repeat(100_000)]});
    let (status, _) = create(&server, Auth::Bearer(&admin), huge).await;
    assert_eq!(status, 413);

    // More than a page of entries: `limit` is cut to 1000, `next` pages on,
    // and the export pages through the store to the last one.
    let log = &server.running.state.stores.audit;
    for i in 0..1005 {
        callboard::audit::record(
            log,
            &Identity::admin(),
            "test.bulk",
            &format!("t{i}"),
            json!({}),
        )
        .await;
    }
    let (status, page) = get_json(
        &server,
        "/api/admin/audit?limit=100000",
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1000);
    let next = page["next"].as_i64().unwrap();
    let (_, rest) = get_json(
        &server,
        &format!("/api/admin/audit?before={next}&limit=1000"),
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1006 - 1000);
    assert!(rest["next"].is_null(), "{}", rest["next"]);
    let (_, small) = get_json(&server, "/api/admin/audit?limit=2", Auth::Bearer(&admin)).await;
    assert_eq!(small["items"].as_array().unwrap().len(), 2);
    assert_eq!(small["items"][0]["target"], "t1004", "newest first");
    for bad in ["limit=abc", "limit=-1", "before=x1"] {
        let (status, body) = call(
            &server,
            reqwest::Method::GET,
            &format!("/api/admin/audit?{bad}"),
            Auth::Bearer(&admin),
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = call(
        &server,
        reqwest::Method::GET,
        "/api/admin/audit/export?format=xlsx",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let response = server
        .client
        .get(server.url("/api/admin/audit/export?format=jsonl"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"callboard-audit.jsonl\""
    );
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1006);
    assert_eq!(lines[0]["target"], "t1004");
    assert_eq!(lines[1005]["action"], "token.create");
    server.stop().await;
}

/// Installs the `hello` plugin through the admin API.
async fn install_hello(server: &TestServer, admin: &str) -> Value {
    let bytes = std::fs::read(crate::support::plugin_file("hello")).unwrap();
    let form = reqwest::multipart::Form::new().part(
        "plugin",
        reqwest::multipart::Part::bytes(bytes).file_name("hello.wasm"),
    );
    let response = server
        .client
        .post(server.url("/api/admin/plugins"))
        .bearer_auth(admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn plugin_changes_are_audited_and_the_csv_export_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = admin_token(dir.path());
    let info = install_hello(&server, &admin).await;
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        "/api/admin/plugins/hello?purge=true",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204);
    // A refused install is not recorded.
    let form = reqwest::multipart::Form::new().part(
        "plugin",
        reqwest::multipart::Part::bytes(b"not wasm".to_vec()).file_name("x.wasm"),
    );
    let response = server
        .client
        .post(server.url("/api/admin/plugins"))
        .bearer_auth(&admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    let entries = audit(&server, &admin).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["action"], "plugin.remove");
    assert_eq!(entries[0]["detail"], json!({"id": "hello", "purge": true}));
    assert_eq!(entries[1]["action"], "plugin.install");
    assert_eq!(entries[1]["actor"], "admin");
    assert_eq!(entries[1]["target"], "hello");
    assert_eq!(
        entries[1]["detail"],
        json!({"id": "hello", "version": info["version"], "digest": info["sha256"], "forced": false})
    );

    // A hostile target and detail: quoted, quotes doubled, the formula
    // defused.
    callboard::audit::record(
        &server.running.state.stores.audit,
        &Identity::admin(),
        "test.hostile",
        "=HYPERLINK(\"http://evil\",\"x\")",
        json!({"note": "a,b\nc"}),
    )
    .await;
    let response = server
        .client
        .get(server.url("/api/admin/audit/export?format=csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"callboard-audit.csv\""
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    let records: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(records[0], "id,at,actor,action,target,detail");
    assert!(
        records[1].ends_with(
            ",admin,test.hostile,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",\"{\"\"note\"\":\"\"a,b\\nc\"\"}\""
        ),
        "{}",
        records[1]
    );
    assert!(records[2].contains(",plugin.remove,hello,"), "{csv}");
    assert_eq!(records.len(), 5, "header, 3 entries, the end: {csv}");
    server.stop().await;
}

/// Signs in as the guest: the session cookie (`name=value`).
async fn guest_cookie(server: &TestServer) -> String {
    let response = no_redirects()
        .post(server.url("/auth/guest"))
        .form(&[("return", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// Signs in with the admin token on `/admin/login`: the session cookie.
async fn admin_cookie(server: &TestServer, admin: &str) -> String {
    let response = no_redirects()
        .post(server.url("/admin/login"))
        .form(&[("token", admin)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token of the first form on a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn post_form(
    server: &TestServer,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let response = no_redirects()
        .post(server.url(path))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_pages_serve_administrators_and_refuse_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = admin_token(dir.path());

    // A signed-in person without the permissions: 403 on the API and pages.
    let guest = guest_cookie(&server).await;
    for path in [
        "/api/admin/tokens",
        "/api/admin/audit",
        "/api/admin/audit/export",
        "/api/admin/plugins",
    ] {
        let (status, body) = call(
            &server,
            reqwest::Method::GET,
            path,
            Auth::Cookie(&guest),
            None,
        )
        .await;
        assert_eq!(status, 403, "{path}: {body}");
        let (name, message) = backstage_error(&body);
        assert_eq!(name, "NotAllowedError");
        assert!(message.contains("user:default/someone"), "{message}");
    }
    for path in ["/admin/tokens", "/admin/audit"] {
        let (status, page) = call(
            &server,
            reqwest::Method::GET,
            path,
            Auth::Cookie(&guest),
            None,
        )
        .await;
        assert_eq!(status, 403, "{path}");
        assert!(
            page.contains("user:default/someone") && page.contains("href=\"/sign-in\""),
            "{page}"
        );
        assert!(page.contains("href=\"/admin\""), "{page}");
    }
    let (status, _) = post_form(
        &server,
        "/admin/tokens",
        &guest,
        &[("name", "sneaky"), ("csrf", "x")],
    )
    .await;
    assert_eq!(status, 403);
    // Anonymous: sent to sign in (auth.anonymous = "none").
    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        "/admin/tokens",
        Auth::None,
        None,
    )
    .await;
    assert_eq!(status, 303);

    // The admin token's session: the pages, a token made through the form.
    let cookie = admin_cookie(&server, &admin).await;
    let (status, page) = call(
        &server,
        reqwest::Method::GET,
        "/admin",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/admin/tokens\"") && page.contains("href=\"/admin/audit\""));
    let (status, page) = call(
        &server,
        reqwest::Method::GET,
        "/admin/tokens",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("value=\"callboard.tokens.manage\""),
        "the permissions as checkboxes"
    );
    let csrf = csrf_of(&page);
    let (status, _) = post_form(
        &server,
        "/admin/tokens",
        &cookie,
        &[("name", "form-bot"), ("csrf", "stale")],
    )
    .await;
    assert_eq!(status, 403, "a wrong CSRF token is refused");
    let (status, page) = post_form(
        &server,
        "/admin/tokens",
        &cookie,
        &[
            ("name", "bad name"),
            ("expires_days", "30"),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("[A-Za-z0-9._-]"), "{page}");
    let (status, page) = post_form(
        &server,
        "/admin/tokens",
        &cookie,
        &[
            ("name", "form-bot"),
            ("expires_days", "30"),
            ("permission", "catalog.entity.read"),
            ("permission", "catalog.location.read"),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Copy it now"), "{page}");
    let at = page.find("cbt_").expect("the secret, shown once");
    let secret: String = page[at..].chars().take(68).collect();
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::Bearer(&secret)).await;
    assert_eq!(status, 200);
    let (_, list) = get_json(&server, "/api/admin/tokens", Auth::Bearer(&admin)).await;
    let made = &list["items"][0];
    assert_eq!(made["name"], "form-bot");
    assert_eq!(
        made["permissions"],
        json!(["catalog.entity.read", "catalog.location.read"])
    );
    // The list page shows it without its secret; revoke it with its form.
    let (_, page) = call(
        &server,
        reqwest::Method::GET,
        "/admin/tokens",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert!(page.contains("form-bot") && !page.contains(&secret[4..]));
    let id = made["id"].as_str().unwrap();
    let (status, _) = post_form(
        &server,
        &format!("/admin/tokens/{id}/revoke"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::Bearer(&secret)).await;
    assert_eq!(status, 401);

    // The audit page: both actions, newest first, and the export links.
    let (status, page) = call(
        &server,
        reqwest::Method::GET,
        "/admin/audit",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let revoke = page.find("token.revoke").unwrap();
    let create = page.find("token.create").unwrap();
    assert!(revoke < create, "newest first");
    assert!(page.contains("/api/admin/audit/export?format=csv"));
    // The admin session reaches the export too (cookie, no bearer).
    let (status, csv) = call(
        &server,
        reqwest::Method::GET,
        "/api/admin/audit/export?format=csv",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(csv.contains("token.revoke"));

    // Plugin changes on the pages are audited with their actor.
    let bytes = std::fs::read(crate::support::plugin_file("hello")).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part(
            "plugin",
            reqwest::multipart::Part::bytes(bytes).file_name("hello.wasm"),
        );
    let response = no_redirects()
        .post(server.url("/admin/plugins"))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let (status, _) = post_form(
        &server,
        "/admin/plugins/hello/remove",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303);
    let entries = audit(&server, &admin).await;
    assert_eq!(entries[0]["action"], "plugin.remove");
    assert_eq!(entries[0]["detail"], json!({"id": "hello", "purge": false}));
    assert_eq!(entries[1]["action"], "plugin.install");
    assert_eq!(entries[1]["actor"], "admin");
    assert_eq!(entries[1]["detail"]["forced"], false);
    server.stop().await;
}

/// Runs the `callboard` binary with `env`: (exit code, stdout, stderr).
fn cli(data: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let bin = std::env::var_os("CALLBOARD_BIN")
        .expect("CALLBOARD_BIN is not set: run the tests with `cargo xtask test`");
    let mut command = std::process::Command::new(bin);
    command
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("CALLBOARD_TOKEN")
        .env_remove("CALLBOARD_ADMIN_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_creates_lists_and_revokes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let data = dir.path().to_owned();
    let url = server.running.url();
    let run = move |args: Vec<String>, env: Vec<(String, String)>| {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            cli(&data, &args, &env)
        })
    };
    let args = |a: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = a.iter().map(|s| (*s).to_owned()).collect();
        v.extend(["--server".to_owned(), url.clone()]);
        v
    };

    // The credential from <data_dir>/admin-token; the secret alone on stdout.
    let (code, out, err) = run(
        args(&[
            "token",
            "create",
            "cli-bot",
            "--permission",
            "catalog.entity.read",
        ]),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let secret = out.trim().to_owned();
    assert!(secret.starts_with("cbt_") && secret.len() == 68, "{out}");
    assert!(err.contains("copy the token now"), "{err}");
    let (status, _) = get_json(&server, "/api/catalog/entities", Auth::Bearer(&secret)).await;
    assert_eq!(status, 200);

    // --json, with the credential from CALLBOARD_TOKEN (the admin token).
    let admin = admin_token(dir.path());
    let (code, out, err) = run(
        args(&[
            "token",
            "create",
            "json-bot",
            "--expires-days",
            "7",
            "--json",
        ]),
        vec![("CALLBOARD_TOKEN".into(), admin.clone())],
    )
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert!(created["token"].as_str().unwrap().starts_with("cbt_"));
    let id = created["id"].as_str().unwrap().to_owned();

    let (code, out, err) = run(args(&["token", "list", "--json"]), vec![])
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["json-bot", "cli-bot"]);
    assert!(!out.contains(&secret[4..]));
    let (code, out, _) = run(args(&["token", "list"]), vec![]).await.unwrap();
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ID ") && out.contains("cli-bot") && out.contains("live"),
        "{out}"
    );

    // A restricted API token in CALLBOARD_TOKEN may not manage tokens or
    // plugins: the server's 403 message, a failing exit code.
    for command in [vec!["token", "list"], vec!["plugin", "list"]] {
        let (code, out, err) = run(
            args(&command),
            vec![("CALLBOARD_TOKEN".into(), secret.clone())],
        )
        .await
        .unwrap();
        assert_eq!(code, 1, "{command:?}: {out}{err}");
        assert!(
            err.contains("403") && err.contains("token:cli-bot"),
            "{err}"
        );
    }

    let (code, out, err) = run(args(&["token", "revoke", &id]), vec![]).await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&id));
    let (code, _, err) = run(args(&["token", "revoke", &id]), vec![]).await.unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
    // Usage errors are clap's: exit code 2.
    let (code, _, err) = run(
        args(&["token", "create", "x", "--expires-days", "0"]),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = run(vec!["token".into(), "--help".into()], vec![])
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert!(out.contains("create") && out.contains("revoke"), "{out}");

    let entries = audit(&server, &admin).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.revoke", "token.create", "token.create"]);
    server.stop().await;
}
