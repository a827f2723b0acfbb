//! Sign-in, sessions and permissions against a real server: guest sign-in,
//! sign-out revoking the session, the default policy (everyone signed in
//! reads, owners change their own entities), a published policy whose
//! conditions restrict reads (applied inside every catalog query: lists,
//! counts, facets, cursors, by-refs, single entities), and stored API
//! tokens with restrictions.

use std::path::Path;

use callboard::{
    config::Config,
    identity::config::Anonymous,
    permissions::{Criteria, Effect, Policy, Role, Rule},
};
use callboard_catalog::{LocationConfig, LocationKind};
use serde_json::{Value, json};

use crate::{
    people::{Auth, ORG, no_redirects},
    support::{TestServer, eventually, publish},
};

/// A server over `dir` whose catalog is [`ORG`]; sign-in required, guest
/// sign-in as `guest` (a user ref).
async fn start(dir: &Path, guest: &str, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let catalog = dir.join("org.yaml");
    std::fs::write(&catalog, ORG).unwrap();
    let mut config = crate::support::config(&dir.join("data"));
    config.auth.anonymous = Anonymous::None;
    config.auth.guest.enabled = true;
    config.auth.guest.user = guest.into();
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    tweak(&mut config);
    let server = TestServer::start(config).await;
    let admin = admin_token(&server);
    eventually(30, "the catalog to load", || async {
        let (status, body) = get(
            &server,
            "/api/catalog/entities?filter=kind=component,kind=user",
            Auth::Bearer(&admin),
        )
        .await;
        (status == 200 && body.as_array().is_some_and(|a| a.len() == 6)).then_some(())
    })
    .await;
    server
}

fn admin_token(server: &TestServer) -> String {
    std::fs::read_to_string(server.running.state.config.admin_token_file())
        .unwrap()
        .trim()
        .to_owned()
}

async fn get(server: &TestServer, path: &str, auth: Auth<'_>) -> (u16, Value) {
    let response = auth
        .apply(no_redirects().get(server.url(path)))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    auth: Auth<'_>,
    body: Value,
) -> (u16, Value) {
    let response = auth
        .apply(no_redirects().request(method, server.url(path)))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Signs in as the guest; returns the session cookie (`name=value`).
async fn guest_sign_in(server: &TestServer) -> String {
    let response = no_redirects()
        .post(server.url("/auth/guest"))
        .form(&[("return", "/catalog")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/catalog");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/;"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

fn names(items: &Value) -> Vec<String> {
    let mut names: Vec<String> = items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .filter(|e| !e.is_null())
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn guests_sign_in_see_the_catalog_change_what_they_own_and_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "user:default/alice", |_| {}).await;

    // Signed out: pages send you to sign in, the API answers 401.
    let (status, _) = get(&server, "/catalog?kind=component", Auth::None).await;
    assert_eq!(status, 303);
    let response = no_redirects()
        .get(server.url("/catalog?kind=component"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["location"],
        "/sign-in?return=%2Fcatalog%3Fkind%3Dcomponent"
    );
    let (status, body) = get(&server, "/api/catalog/entities", Auth::None).await;
    assert_eq!(status, 401, "{body}");
    let (status, page) = get(&server, "/sign-in", Auth::None).await;
    assert_eq!(status, 200);
    assert!(
        page.as_str().unwrap().contains("Continue as guest"),
        "{page}"
    );

    let cookie = guest_sign_in(&server).await;
    let (status, page) = get(&server, "/account", Auth::Cookie(&cookie)).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap().to_owned();
    assert!(page.contains("user:default/alice"), "{page}");
    assert!(
        page.contains("group:default/team-a") && page.contains("group:default/eng"),
        "ownership includes the group and its parent: {page}"
    );
    let (status, page) = get(&server, "/catalog?kind=component", Auth::Cookie(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("b-one"));

    // The entity pages say what she may do: change her team's, only view others'.
    let (_, page) = get(
        &server,
        "/catalog/default/component/a-one",
        Auth::Cookie(&cookie),
    )
    .await;
    let page = page.as_str().unwrap().to_owned();
    assert!(
        page.contains("You can change this entity") && page.contains("/refresh"),
        "{page}"
    );
    let (_, page) = get(
        &server,
        "/catalog/default/component/b-one",
        Auth::Cookie(&cookie),
    )
    .await;
    let page = page.as_str().unwrap().to_owned();
    assert!(
        page.contains("up to its owners (team-b)") && !page.contains("/unregister"),
        "{page}"
    );
    let csrf_of = |page: &str| {
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned()
    };
    // Through the page's form: refresh her own; another team's refused.
    let (_, page) = get(
        &server,
        "/catalog/default/component/a-one",
        Auth::Cookie(&cookie),
    )
    .await;
    let form_csrf = csrf_of(page.as_str().unwrap());
    let post = |path: &'static str, csrf: String| {
        let server_url = server.url(path);
        let cookie = cookie.clone();
        async move {
            no_redirects()
                .post(server_url)
                .header("cookie", cookie)
                .form(&[("csrf", csrf)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(
            "/catalog/default/component/a-one/refresh",
            form_csrf.clone()
        )
        .await,
        303
    );
    assert_eq!(
        post(
            "/catalog/default/component/b-one/unregister",
            form_csrf.clone()
        )
        .await,
        403
    );
    assert_eq!(
        post("/catalog/default/component/a-one/refresh", "forged".into()).await,
        403
    );

    // Everyone reads; owners refresh and delete their own, nobody else's.
    let (status, all) = get(
        &server,
        "/api/catalog/entities?filter=kind=component",
        Auth::Cookie(&cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(names(&all), ["a-one", "a-two", "b-one", "eng-tool"]);
    let uid = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|e| e["metadata"]["name"] == name)
            .unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (status, body) = send(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/catalog/entities/by-uid/{}", uid("b-one")),
        Auth::Cookie(&cookie),
        json!(null),
    )
    .await;
    assert_eq!(status, 403, "team-b's entity: {body}");
    assert!(body.to_string().contains("catalog.entity.delete"), "{body}");
    let (status, body) = send(
        &server,
        reqwest::Method::POST,
        "/api/catalog/refresh",
        Auth::Cookie(&cookie),
        json!({"entityRef": "component:default/eng-tool"}),
    )
    .await;
    assert_eq!(status, 200, "owned through the parent group: {body}");
    let (status, body) = send(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/catalog/entities/by-uid/{}", uid("a-two")),
        Auth::Cookie(&cookie),
        json!(null),
    )
    .await;
    assert_eq!(status, 204, "their own: {body}");
    // Registering locations is for administrators.
    let (status, body) = send(
        &server,
        reqwest::Method::POST,
        "/api/catalog/locations",
        Auth::Cookie(&cookie),
        json!({"type": "url", "target": "https://example.com/catalog-info.yaml"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Sign-out needs the session's CSRF token, then ends the session on the server.
    let (_, page) = get(&server, "/account", Auth::Cookie(&cookie)).await;
    let page = page.as_str().unwrap().to_owned();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let response = no_redirects()
        .post(server.url("/sign-out"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403, "a forged CSRF token");
    let response = no_redirects()
        .post(server.url("/sign-out"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403, "a cross-site post");
    let response = no_redirects()
        .post(server.url("/sign-out"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = get(&server, "/api/catalog/entities", Auth::Cookie(&cookie)).await;
    assert_eq!(status, 401, "the old cookie names no session any more");
    server.running.shutdown().await.unwrap();
}

/// A policy where people read only what their groups own, administrators
/// (group eng) everything.
fn owners_only() -> Policy {
    let owner = Criteria::Rule {
        rule: "IS_ENTITY_OWNER".into(),
        resource_type: "catalog-entity".into(),
        params: json!({"claims": ["$ownerRefs"]}),
    };
    Policy {
        roles: vec![Role {
            name: "role:default/owners".into(),
            description: String::new(),
            members: vec!["*".into()],
            rules: vec![Rule {
                permission: "catalog.entity.read".into(),
                action: None,
                effect: Effect::Allow,
                conditions: Some(owner),
            }],
        }],
    }
}

#[tokio::test]
async fn restricted_reads_are_applied_inside_every_catalog_query() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::install(&dir.path().join("data"), &["misbehave"]);
    let server = start(dir.path(), "user:default/bob", |c| {
        c.grants.plugins.insert(
            "misbehave".into(),
            callboard::plugins::manifest::Capabilities {
                kv: true,
                catalog: true,
                ..Default::default()
            },
        );
    })
    .await;
    publish(&server, &owners_only()).await;
    let cookie = guest_sign_in(&server).await;
    let bob = Auth::Cookie(&cookie);

    // Lists, with and without filters and pages.
    let (status, items) = get(&server, "/api/catalog/entities", bob).await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&items),
        ["b-one", "eng-tool"],
        "bob reads what team-b and its parent eng own"
    );
    let (_, items) = get(
        &server,
        "/api/catalog/entities?filter=metadata.tags=java",
        bob,
    )
    .await;
    assert_eq!(names(&items), ["b-one"]);
    // by-query: counts and cursors never include what bob may not read.
    let (_, page) = get(
        &server,
        "/api/catalog/entities/by-query?limit=1&filter=kind=component",
        bob,
    )
    .await;
    assert_eq!(page["totalItems"], 2, "{page}");
    let next = page["pageInfo"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, second) = get(
        &server,
        &format!("/api/catalog/entities/by-query?cursor={next}"),
        bob,
    )
    .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1, "{second}");
    assert!(second["pageInfo"].get("nextCursor").is_none(), "{second}");
    let (_, page) = get(
        &server,
        "/api/catalog/entities/by-query?fullTextFilterTerm=one",
        bob,
    )
    .await;
    // "one" is in every component's kind; bob sees only his two.
    assert_eq!(names(&page["items"]), ["b-one", "eng-tool"], "{page}");
    assert_eq!(page["totalItems"], 2);
    // An administrator's cursor replayed by bob still only reaches bob's.
    let admin = admin_token(&server);
    let (_, page) = get(
        &server,
        "/api/catalog/entities/by-query?limit=1&filter=kind=component",
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(page["totalItems"], 4, "{page}");
    let cursor = page["pageInfo"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, replay) = get(
        &server,
        &format!("/api/catalog/entities/by-query?cursor={cursor}&limit=10"),
        bob,
    )
    .await;
    let seen = names(&replay["items"]);
    assert!(
        !seen.is_empty() && seen.iter().all(|n| n == "b-one" || n == "eng-tool"),
        "{replay}"
    );
    // Search filters inside the query: counts and facets too.
    let (status, found) = get(&server, "/api/search/query?term=java", bob).await;
    assert_eq!(status, 200, "{found}");
    let titles: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["document"]["title"].as_str())
        .collect();
    assert_eq!(titles, ["b-one"], "{found}");
    assert_eq!(found["numberOfResults"], 1);
    let (_, found) = get(&server, "/api/search/query?term=java", Auth::Bearer(&admin)).await;
    assert_eq!(found["numberOfResults"], 2, "{found}");
    let (status, page_html) = get(&server, "/search?query=java", bob).await;
    assert_eq!(status, 200);
    let page_html = page_html.as_str().unwrap_or_default();
    assert!(
        page_html.contains("b-one") && !page_html.contains("a-one"),
        "{page_html}"
    );
    let (status, _) = get(&server, "/api/search/query?term=java", Auth::None).await;
    assert_eq!(status, 401, "anonymous callers must sign in to search");
    // Facets count only what bob reads.
    let (_, facets) = get(
        &server,
        "/api/catalog/entity-facets?facet=metadata.tags",
        bob,
    )
    .await;
    assert_eq!(
        facets["facets"]["metadata.tags"],
        json!([{"value": "java", "count": 1}, {"value": "rust", "count": 1}]),
        "{facets}"
    );
    // Single entities and by-refs: what bob may not read does not exist for him.
    let (status, _) = get(
        &server,
        "/api/catalog/entities/by-name/component/default/a-one",
        bob,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get(
        &server,
        "/api/catalog/entities/by-name/component/default/b-one",
        bob,
    )
    .await;
    assert_eq!(status, 200);
    let (status, found) = send(
        &server,
        reqwest::Method::POST,
        "/api/catalog/entities/by-refs",
        bob,
        json!({"entityRefs": ["component:default/a-one", "component:default/b-one"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(found["items"][0].is_null(), "{found}");
    assert_eq!(found["items"][1]["metadata"]["name"], "b-one");

    // The portal's pages read the same way: the table, the facet counts,
    // an entity page out of reach (404) and one in reach.
    let (_, page) = get(&server, "/catalog?kind=component", bob).await;
    let page = page.as_str().unwrap().to_owned();
    assert!(
        page.contains("b-one") && page.contains("eng-tool"),
        "{page}"
    );
    assert!(!page.contains("a-one") && !page.contains("a-two"), "{page}");
    let (status, _) = get(&server, "/catalog/default/component/a-one", bob).await;
    assert_eq!(status, 404);
    let (status, page) = get(&server, "/catalog/default/component/b-one", bob).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("Your access"), "{page}");
    let (status, _) = get(&server, "/api/views/entity/component/default/a-one", bob).await;
    assert_eq!(status, 404);

    // A plugin's catalog reads, made for bob's request, reach what bob
    // reaches and nothing more.
    let (status, probe) = get(
        &server,
        "/api/plugins/misbehave/catalog?filter=kind=component",
        bob,
    )
    .await;
    assert_eq!(status, 200, "{probe}");
    let mut refs: Vec<String> = probe["refs"]
        .as_array()
        .unwrap_or_else(|| panic!("{probe}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    refs.sort();
    assert_eq!(
        refs,
        ["component:default/b-one", "component:default/eng-tool"]
    );
    let (_, probe) = get(
        &server,
        "/api/plugins/misbehave/catalog?ref=component:default/a-one",
        bob,
    )
    .await;
    assert!(probe["entity"].is_null(), "{probe}");
    let (_, probe) = get(
        &server,
        "/api/plugins/misbehave/catalog?filter=kind=component",
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(probe["refs"].as_array().unwrap().len(), 4, "{probe}");

    // A route behind a permission the plugin declares: refused before the
    // plugin until the policy grants it (then the plugin answers: 404).
    let (status, body) = get(&server, "/api/plugins/misbehave/guarded", bob).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("misbehave.guarded"), "{body}");
    let (status, _) = get(
        &server,
        "/api/plugins/misbehave/guarded",
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(status, 404, "the admin token reaches the plugin");
    let mut granted = owners_only();
    granted.roles.push(Role {
        name: "role:default/guarded".into(),
        description: String::new(),
        members: vec!["group:default/team-b".into()],
        rules: vec![Rule {
            permission: "misbehave.guarded".into(),
            action: None,
            effect: Effect::Allow,
            conditions: None,
        }],
    });
    granted
        .validate(&server.running.state.access.permissions())
        .expect("a declared permission is in the catalogue");
    publish(&server, &granted).await;
    let (status, _) = get(&server, "/api/plugins/misbehave/guarded", bob).await;
    assert_eq!(status, 404, "granted through team-b");

    // The administrator still reads everything.
    let (_, items) = get(
        &server,
        "/api/catalog/entities?filter=kind=component",
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(names(&items).len(), 4);
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn stored_api_tokens_act_within_their_restrictions_until_revoked() {
    use callboard_store::access::TokenRow;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "user:default/bob", |_| {}).await;
    let stores = &server.running.state.stores;
    let secret = "a-very-secret-ci-token";
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    stores
        .tokens
        .create_token(&TokenRow {
            id: "t1".into(),
            name: "ci-bot".into(),
            digest,
            permissions: vec!["catalog.entity.read".into()],
            created_by: "admin".into(),
            created_ms: now,
            expires_ms: Some(now + 3_600_000),
            last_used_ms: None,
            revoked_ms: None,
        })
        .await
        .unwrap();
    let token = Auth::Bearer(secret);
    let (status, items) = get(
        &server,
        "/api/catalog/entities?filter=kind=component",
        token,
    )
    .await;
    assert_eq!(status, 200, "{items}");
    assert_eq!(names(&items).len(), 4);
    let (status, body) = send(
        &server,
        reqwest::Method::POST,
        "/api/catalog/refresh",
        token,
        json!({"entityRef": "component:default/a-one"}),
    )
    .await;
    assert_eq!(status, 403, "restricted to reads: {body}");
    assert!(body.to_string().contains("token:ci-bot"), "{body}");
    // A token that is not valid is refused before anything else.
    let (status, _) = get(
        &server,
        "/api/catalog/entities",
        Auth::Bearer("not-the-token"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(stores.tokens.revoke_token("t1", now + 1).await.unwrap());
    let (status, _) = get(&server, "/api/catalog/entities", token).await;
    assert_eq!(status, 401, "revoked at once");
    server.running.shutdown().await.unwrap();
}

/// A free loopback port (the provider must know the portal's redirect URI
/// before the portal starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn people_sign_in_with_openid_connect_and_unknown_or_forged_ones_are_refused() {
    use crate::oidc::{
        Account, CookieJar, Provider, TokenKey, browser_client, sign_in_flow, sign_in_flow_with,
        unix_now,
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(
        "callboard",
        "client-secret",
        &[format!("{base}/auth/oidc/callback")],
        &[Account::new("alice", &[]), Account::new("mallory", &[])],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let issuer = provider.issuer.clone();
    let server = start(dir.path(), "user:default/bob", |c| {
        c.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.auth.guest.enabled = false;
        c.auth.oidc = Some(callboard::identity::config::OidcConfig {
            issuer,
            client_id: "callboard".into(),
            client_secret: "client-secret".into(),
            ..Default::default()
        });
    })
    .await;
    let client = browser_client();
    let start_url = format!("{base}/auth/oidc/start?return=%2Fcatalog");

    // alice: matched to user:default/alice by her e-mail.
    let mut jar = CookieJar::default();
    let (response, visited) = sign_in_flow_with(&client, &mut jar, &start_url, "alice").await;
    assert_eq!(response.status().as_u16(), 303, "{visited:?}");
    assert_eq!(response.headers()["location"], "/catalog");
    assert!(
        visited.iter().any(|u| u.starts_with(&provider.issuer)),
        "the flow went through the provider: {visited:?}"
    );
    let url: reqwest::Url = base.parse().unwrap();
    jar.store(&url, response.headers());
    let session = jar
        .value(&url, "callboard_session")
        .expect("a session cookie");
    assert!(
        jar.value(&url, "callboard_signin").is_none(),
        "the flow cookie is gone after the callback"
    );
    let cookie = format!("callboard_session={session}");
    let (status, page) = get(&server, "/account", Auth::Cookie(&cookie)).await;
    assert_eq!(status, 200);
    assert!(
        page.as_str().unwrap().contains("user:default/alice"),
        "{page}"
    );
    let (status, _) = get(&server, "/api/catalog/entities", Auth::Cookie(&cookie)).await;
    assert_eq!(status, 200);

    // mallory has no user entity: refused with a page that says so.
    let (response, _) = sign_in_flow(&client, &start_url, "mallory").await;
    assert_eq!(response.status().as_u16(), 403);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("mallory@example.com") && text.contains("no user entity"),
        "{text}"
    );

    // An ID token signed with a key the provider does not publish.
    provider
        .tamper_next_id_token(json!({}), TokenKey::Foreign)
        .await;
    let (response, _) = sign_in_flow(&client, &start_url, "alice").await;
    assert_eq!(response.status().as_u16(), 403);
    let text = response.text().await.unwrap();
    assert!(text.contains("ID token is not valid"), "{text}");
    // An expired one, properly signed.
    provider
        .tamper_next_id_token(
            json!({"exp": unix_now() - 60, "iat": unix_now() - 700}),
            TokenKey::Provider,
        )
        .await;
    let (response, _) = sign_in_flow(&client, &start_url, "alice").await;
    assert_eq!(response.status().as_u16(), 403);
    let text = response.text().await.unwrap();
    assert!(text.contains("ID token is not valid"), "{text}");
    // An unsigned one.
    provider
        .tamper_next_id_token(json!({}), TokenKey::Unsigned)
        .await;
    let (response, _) = sign_in_flow(&client, &start_url, "alice").await;
    assert_eq!(response.status().as_u16(), 403);

    // A callback this browser did not start (login CSRF), or with a
    // tampered flow cookie.
    let (status, page) = get(&server, "/auth/oidc/callback?code=x&state=y", Auth::None).await;
    assert_eq!(status, 403);
    assert!(
        page.as_str().unwrap().contains("not started here"),
        "{page}"
    );
    let (status, _) = get(
        &server,
        "/auth/oidc/callback?code=x&state=y",
        Auth::Cookie("callboard_signin=eyJzIjoieSJ9.AAAA"),
    )
    .await;
    assert_eq!(status, 403);
    drop(provider);
    server.running.shutdown().await.unwrap();
}
