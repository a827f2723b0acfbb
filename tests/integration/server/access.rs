//! Who may change things: tokens on catalog writes, admin sessions (random,
//! expiring, revoked at sign-out, `__Host-` and `Secure` behind https), the
//! CSRF token on admin forms, and small body limits before authentication.

use std::time::Duration;

use callboard::server::config::ApiToken;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use super::{connect, read_head, start};
use crate::support::{TestServer, backstage_error, eventually};

/// `ci-secret`, and its SHA-256 as the config holds it.
const CI_TOKEN: &str = "ci-secret";
const CI_DIGEST: &str = "f82da6e2b2e51c046a2eaf10964ef184b69c0aee9892f10a2a7b657477d407e6";

fn admin_token(server: &TestServer) -> String {
    server.running.state.admin_token.to_string()
}

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server.client.request(method, server.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn catalog_writes_need_a_token_and_configured_locations_stay() {
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("tokens");
    std::fs::write(&tokens_file, "# deploy bot\nfile-secret\n").unwrap();
    let server = start(dir.path(), |c| {
        c.server.api_tokens = vec![ApiToken {
            name: "ci".into(),
            sha256: CI_DIGEST.into(),
        }];
        c.server.api_tokens_file = Some(tokens_file.clone());
    })
    .await;
    crate::support::wait_for_entities(&server, 1).await;
    let admin = admin_token(&server);
    let (_, locations) = send(&server, "GET", "/api/catalog/locations", None, None).await;
    let locations: Value = serde_json::from_str(&locations).unwrap();
    let configured = locations[0]["data"]["id"]
        .as_str()
        .or_else(|| locations[0]["id"].as_str())
        .unwrap_or_else(|| panic!("{locations}"))
        .to_owned();
    let new_location = json!({"type": "url", "target": "https://example.com/catalog-info.yaml"});
    let writes: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/api/catalog/refresh".into(),
            Some(json!({"entityRef": "component:default/one"})),
        ),
        (
            "POST",
            "/api/catalog/locations".into(),
            Some(new_location.clone()),
        ),
        (
            "POST",
            "/api/catalog/analyze-location".into(),
            Some(json!({"location": new_location})),
        ),
        (
            "DELETE",
            format!("/api/catalog/locations/{configured}"),
            None,
        ),
        (
            "DELETE",
            "/api/catalog/entities/by-uid/00000000-0000-0000-0000-000000000000".into(),
            None,
        ),
    ];
    for (method, path, body) in &writes {
        let (status, text) = send(&server, method, path, None, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} without a token: {text}");
        let (name, message) = backstage_error(&text);
        assert_eq!(name, "AuthenticationError", "{text}");
        assert!(message.contains("Bearer"), "{text}");
        let (status, text) = send(&server, method, path, Some("guess"), body.clone()).await;
        assert_eq!(status, 401, "{method} {path} with a wrong token: {text}");
    }
    // Every accepted token gets past the guard (to the handler's own answer).
    for token in [admin.as_str(), CI_TOKEN, "file-secret"] {
        let (status, text) = send(
            &server,
            "DELETE",
            "/api/catalog/entities/by-uid/00000000-0000-0000-0000-000000000000",
            Some(token),
            None,
        )
        .await;
        // Backstage answers 204 for a uid it does not know.
        assert_eq!(status, 204, "{text}");
    }
    let (status, text) = send(
        &server,
        "POST",
        "/api/catalog/refresh",
        Some(CI_TOKEN),
        Some(json!({"entityRef": "component:default/one"})),
    )
    .await;
    assert!(status < 300, "{status} {text}");
    // A configured location cannot be deleted, not even by the admin.
    let (status, text) = send(
        &server,
        "DELETE",
        &format!("/api/catalog/locations/{configured}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("configuration"), "{text}");
    let (status, _) = send(&server, "GET", "/api/catalog/entities", None, None).await;
    assert_eq!(status, 200, "reads are open with auth.anonymous = \"read\"");
    server.stop().await;

    // With reads closed too (the default).
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        c.auth.anonymous = callboard::identity::config::Anonymous::None;
    })
    .await;
    let (status, text) = send(&server, "GET", "/api/catalog/entities", None, None).await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = send(
        &server,
        "POST",
        "/api/catalog/entities/by-refs",
        Some("guess"),
        Some(json!({"entityRefs": []})),
    )
    .await;
    assert_eq!(status, 401, "a token that is not valid: {text}");
    let admin = admin_token(&server);
    let (status, _) = send(&server, "GET", "/api/catalog/entities", Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(server.get("/api/health").await.0, 200);
    server.stop().await;
}

/// Signs in; returns the `Set-Cookie` header.
async fn sign_in(server: &TestServer, client: &reqwest::Client) -> String {
    let response = client
        .post(server.url("/admin/login"))
        .form(&[("token", admin_token(server))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The admin page as `cookie` sees it.
async fn admin_page(server: &TestServer, client: &reqwest::Client, cookie: &str) -> String {
    client
        .get(server.url("/admin"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on the page: {page}"))
        .to_owned()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn admin_sessions_are_random_and_end_at_sign_out_or_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let client = no_redirects();
    let first = sign_in(&server, &client).await;
    let second = sign_in(&server, &client).await;
    let session = |c: &str| c.split(';').next().unwrap().to_owned();
    assert_ne!(
        session(&first),
        session(&second),
        "each sign-in gets a new random id"
    );
    assert!(!first.contains(&admin_token(&server)));
    assert!(
        first.contains("HttpOnly") && first.contains("SameSite=Lax"),
        "{first}"
    );
    assert!(!first.contains("Secure"), "plain http: {first}");

    // Sign-out revokes the session on the server, not just in the browser.
    let page = admin_page(&server, &client, &session(&first)).await;
    assert!(page.contains("Installed plugins"), "{page}");
    let csrf = csrf_of(&page);
    let response = client
        .post(server.url("/admin/logout"))
        .header("cookie", session(&first))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let page = admin_page(&server, &client, &session(&first)).await;
    assert!(
        page.contains("Sign in"),
        "the old cookie still works: {page}"
    );

    let page = admin_page(&server, &client, &session(&second)).await;
    assert!(
        page.contains("Installed plugins"),
        "only that session ended: {page}"
    );
    server.stop().await;

    // A session ends on its own after session_max_secs, used or not.
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.server.session_max_secs = 1).await;
    let cookie = sign_in(&server, &client).await;
    assert!(cookie.contains("Max-Age=1"), "{cookie}");
    eventually(15, "the session to expire", || async {
        admin_page(&server, &client, &session(&cookie))
            .await
            .contains("Sign in")
            .then_some(())
    })
    .await;
    server.stop().await;

    // Behind https: `__Host-` prefixed and Secure.
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        c.server.public_url = Some("https://portal.example.com".into());
    })
    .await;
    let cookie = sign_in(&server, &client).await;
    assert!(cookie.starts_with("__Host-callboard_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/;"),
        "{cookie}"
    );
    let page = admin_page(&server, &client, &session(&cookie)).await;
    assert!(page.contains("Installed plugins"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn admin_forms_need_the_sessions_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::support::install(&data, &["hello"]);
    let server = start(dir.path(), |_| {}).await;
    let client = no_redirects();
    let mine = sign_in(&server, &client).await;
    let mine = mine.split(';').next().unwrap().to_owned();
    let other = sign_in(&server, &client).await;
    let other = other.split(';').next().unwrap().to_owned();
    let other_csrf = csrf_of(&admin_page(&server, &client, &other).await);
    let remove = |csrf: Option<String>| {
        let mut form = vec![("purge", "1".to_owned())];
        form.extend(csrf.map(|c| ("csrf", c)));
        client
            .post(server.url("/admin/plugins/hello/remove"))
            .header("cookie", &mine)
            .form(&form)
            .send()
    };
    assert_eq!(remove(None).await.unwrap().status().as_u16(), 403);
    assert_eq!(
        remove(Some(other_csrf)).await.unwrap().status().as_u16(),
        403,
        "another session's token is refused"
    );
    assert_eq!(server.get("/api/plugins/hello/greet/Ada").await.0, 200);
    let csrf = csrf_of(&admin_page(&server, &client, &mine).await);
    assert_eq!(remove(Some(csrf)).await.unwrap().status().as_u16(), 303);
    assert_eq!(server.get("/api/plugins/hello/greet/Ada").await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn big_bodies_are_refused_before_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.server.body_timeout_secs = 60).await;
    // Each announces 60 MB and sends none of it: the answer must come
    // without the server waiting for (or reading) the body.
    for (path, content_type) in [
        (
            "/admin/plugins/hello/remove",
            "application/x-www-form-urlencoded",
        ),
        ("/admin/plugins", "multipart/form-data; boundary=x"),
        ("/api/catalog/locations", "application/json"),
        ("/api/admin/plugins", "multipart/form-data; boundary=x"),
    ] {
        let mut c = connect(&server).await;
        c.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
                 Content-Length: 60000000\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let head = read_head(&mut c, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("POST {path}: no answer without the body"));
        assert!(head.starts_with("HTTP/1.1 401"), "POST {path}: {head}");
    }
    // The sign-in form itself takes a small body only.
    let response = server
        .client
        .post(server.url("/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", "a".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    server.stop().await;
}
