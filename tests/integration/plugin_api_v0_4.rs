//! Plugin API 0.4 through the host with real wasm (`tests/fixtures/api-v0-4`,
//! built with callboard-sdk): the principal a request, view and action run
//! for (never the person's credentials); `permissions.check` of a declared
//! permission on entities with an owners-only policy; search documents
//! added, found as the person, hidden from one who may not read their
//! entity, removed; a button and a form in an entity card posted to the
//! portal with the session's CSRF token (and refused without it); and
//! `http.send-all` with operator-held credentials added by the host to the
//! one bound host only.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
};

use axum::{Router, http::HeaderMap, routing};
use callboard::{
    config::Config,
    identity::config::Anonymous,
    permissions::{Criteria, Policy},
    plugins::{capabilities::http::credentials::CredentialConfig, manifest::Capabilities},
};
use callboard_catalog::{LocationConfig, LocationKind};
use serde_json::{Value, json};

use crate::{
    people::no_redirects,
    support::{TestServer, owners_may, publish, session},
};

const ORG: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-b}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {profile: {displayName: Alice Liddell, email: alice@example.com}, memberOf: [team-a]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec: {profile: {email: bob@example.com}, memberOf: [team-b]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: a-one, description: the zebra ledger}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: b-one}
spec: {type: service, lifecycle: production, owner: team-b}
";

const PLUGIN: &str = "api-v0-4";

/// A server with the 0.4 fixture, the catalog above, sign-in required, and
/// `tweak` applied.
async fn start(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let catalog = dir.join("org.yaml");
    std::fs::write(&catalog, ORG).unwrap();
    let server = TestServer::with_plugins(&dir.join("data"), &[PLUGIN], |config| {
        config.auth.anonymous = Anonymous::None;
        config.catalog.locations = vec![LocationConfig {
            kind: LocationKind::File,
            target: catalog.display().to_string(),
        }];
        config.grants.plugins.insert(
            PLUGIN.into(),
            Capabilities {
                kv: true,
                search: true,
                catalog: true,
                http_hosts: vec!["127.0.0.1".into()],
                ..Capabilities::default()
            },
        );
        tweak(config);
    })
    .await;
    crate::support::wait_for_entities(&server, 6).await;
    server
}

async fn get(server: &TestServer, path: &str, cookie: &str) -> (u16, Value) {
    let response = no_redirects()
        .get(server.url(path))
        .header("cookie", cookie)
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

async fn post(server: &TestServer, path: &str, cookie: &str, body: Value) -> (u16, Value) {
    let response = no_redirects()
        .post(server.url(path))
        .header("cookie", cookie)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_principal_permissions_and_search_reach_a_0_4_plugin_as_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    publish(&server, &owners_may("api-v0-4.bump")).await;
    let (alice, _) = session(&server, "user:default/alice").await;
    let (bob, _) = session(&server, "user:default/bob").await;
    let base = format!("/api/plugins/{PLUGIN}");

    // The person, never their credentials.
    let (status, me) = get(&server, &format!("{base}/whoami"), &alice).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "user:default/alice");
    assert_eq!(
        me["name"], "Alice Liddell",
        "the display name comes from the catalog"
    );
    assert_eq!(
        me["ownership"],
        json!(["user:default/alice", "group:default/team-a"])
    );
    let admin = std::fs::read_to_string(server.running.state.config.admin_token_file()).unwrap();
    let response = reqwest::Client::new()
        .get(server.url(&format!("{base}/whoami")))
        .bearer_auth(admin.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"service": "admin"})
    );

    // A permission on entities, owners only: alice may bump her team's
    // entity and not bob's; without an entity the conditional grant is no
    // unconditional yes; an undeclared permission or a bad ref is an error.
    for (who, entity, allowed) in [
        (&alice, "component:default/a-one", json!(true)),
        (&alice, "component:default/b-one", json!(false)),
        (&bob, "component:default/b-one", json!(true)),
        (&bob, "component:default/nothing-here", json!(false)),
    ] {
        let (status, body) = get(&server, &format!("{base}/may?entity={entity}"), who).await;
        assert_eq!(
            (status, &body["allowed"]),
            (200, &allowed),
            "{entity}: {body}"
        );
    }
    let (_, body) = get(&server, &format!("{base}/may"), &alice).await;
    assert_eq!(body["allowed"], false, "{body}");
    let (status, body) = get(
        &server,
        &format!("{base}/may?entity=component:default/"),
        &alice,
    )
    .await;
    assert_eq!(
        status, 400,
        "a malformed ref is the caller's mistake: {body}"
    );

    // Search: documents about an entity are found by whoever may read it.
    let docs = json!([
        {"id": "runbook-1", "title": "Zebra runbook", "text": "restart the zebra ledger", "entity": "component:default/a-one"},
        {"id": "runbook-2", "title": "Zebra notes", "text": "general zebra notes"},
    ]);
    // From another site, a cookie carries no weight on a call that changes
    // something; from the portal's own pages it does.
    let cross = no_redirects()
        .post(server.url(&format!("{base}/index")))
        .header("cookie", &alice)
        .header("origin", "https://evil.example")
        .json(&docs)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    let same = no_redirects()
        .post(server.url(&format!("{base}/index")))
        .header("cookie", &alice)
        .header("origin", server.running.url())
        .json(&docs)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status().as_u16(), 200, "{:?}", same.text().await);
    let (status, hits) = get(&server, &format!("{base}/find?q=zebra"), &alice).await;
    assert_eq!(status, 200, "{hits}");
    let titles: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["title"].as_str())
        .collect();
    assert!(
        titles.contains(&"Zebra runbook") && titles.contains(&"Zebra notes"),
        "{hits}"
    );
    assert!(
        titles.contains(&"a-one"),
        "the catalog is searched too: {hits}"
    );
    // The portal's search finds the plugin's documents with the rest.
    let (_, body) = get(
        &server,
        "/api/search/query?term=zebra&types[]=api-v0-4",
        &alice,
    )
    .await;
    assert_eq!(body["results"].as_array().map(Vec::len), Some(2), "{body}");
    // Removed by id; the rest stays.
    let (status, _) = post(
        &server,
        &format!("{base}/forget?id=runbook-2"),
        &alice,
        json!(null),
    )
    .await;
    assert_eq!(status, 204);
    let (_, body) = get(
        &server,
        "/api/search/query?term=zebra&types[]=api-v0-4",
        &alice,
    )
    .await;
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1), "{body}");
    // A document is refused if it names an undeclared permission or a
    // permission on entities (it could never be shown).
    for permission in ["api-v0-4.other", "api-v0-4.bump"] {
        let doc = json!([{"id": "x", "title": "x", "permission": permission}]);
        let (status, body) = post(&server, &format!("{base}/index"), &alice, doc).await;
        assert_eq!(status, 400, "{permission}: {body}");
        assert!(body.to_string().contains(permission), "{body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_as_a_person_hides_what_they_may_not_read_and_needs_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    // Read only what your groups own.
    let mut policy = Policy::default_policy(&[]);
    policy.roles[0].rules[0].conditions = Some(Criteria::Rule {
        rule: "IS_ENTITY_OWNER".into(),
        resource_type: "catalog-entity".into(),
        params: json!({"claims": ["$ownerRefs"]}),
    });
    publish(&server, &policy).await;
    let (alice, _) = session(&server, "user:default/alice").await;
    let (bob, _) = session(&server, "user:default/bob").await;
    let base = format!("/api/plugins/{PLUGIN}");
    let docs = json!([{"id": "d1", "title": "Quokka runbook", "text": "quokka", "entity": "component:default/a-one"}]);
    assert_eq!(
        post(&server, &format!("{base}/index"), &alice, docs)
            .await
            .0,
        200
    );
    let (_, hits) = get(&server, &format!("{base}/find?q=quokka"), &alice).await;
    assert_eq!(
        hits.as_array().map(Vec::len),
        Some(1),
        "alice owns a-one: {hits}"
    );
    let (_, hits) = get(&server, &format!("{base}/find?q=quokka"), &bob).await;
    assert_eq!(
        hits,
        json!([]),
        "bob may not read a-one, so not its document either"
    );

    // A plugin holds at most 10,000 documents: past it a typed refusal
    // (`too-many`), and replacing documents it holds still works.
    // (A put carries at most 1,000.)
    let batch = |k: usize| {
        (0..1_000)
            .map(|i| json!({"id": format!("b{k}-{i}"), "title": "t", "text": "t"}))
            .collect::<Vec<_>>()
    };
    for k in 0..10 {
        let (status, body) = post(&server, &format!("{base}/index"), &alice, json!(batch(k))).await;
        // 1 + 9,999 held after the last of these, with "d1" above.
        let expected = if k < 9 { 200 } else { 500 };
        assert_eq!(status, expected, "batch {k}: {body}");
    }
    let (status, body) = post(&server, &format!("{base}/index"), &alice, json!(batch(10))).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.to_string()
            .contains("a plugin holds at most 10000 search documents"),
        "{body}"
    );
    let (status, body) = post(&server, &format!("{base}/index"), &alice, json!(batch(0))).await;
    assert_eq!(
        status, 200,
        "documents it holds are replaced, not added: {body}"
    );
    server.stop().await;

    // Without the `search` grant: a typed refusal, not a trap.
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        config.grants.plugins.get_mut(PLUGIN).unwrap().search = false;
    })
    .await;
    let (alice, _) = session(&server, "user:default/alice").await;
    let (status, body) = get(&server, &format!("{base}/find?q=x"), &alice).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("search is not granted"), "{body}");
    server.stop().await;
}

/// The card's HTML for `entity` as `cookie` sees it on the entity page.
async fn card(server: &TestServer, entity: &str, cookie: &str) -> String {
    let (status, page) = get(
        server,
        &format!("/catalog/default/component/{entity}"),
        cookie,
    )
    .await;
    assert_eq!(status, 200);
    page.as_str().unwrap().to_owned()
}

/// Posts the action form `fields` to the portal as a browser would.
async fn press(
    server: &TestServer,
    action: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    crate::support::press(server, PLUGIN, action, cookie, fields).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_and_forms_in_views_run_actions_as_the_person_with_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    publish(&server, &owners_may("api-v0-4.bump")).await;
    let (alice, csrf) = session(&server, "user:default/alice").await;

    // The card greets the person and carries plain HTML forms with the
    // session's token and the view's place; no script.
    let page = card(&server, "a-one", &alice).await;
    assert!(
        page.contains("Hello, Alice Liddell. Bumped 0 times."),
        "{page}"
    );
    assert!(
        page.contains(&format!("action=\"/plugins/{PLUGIN}/-/actions/bump\"")),
        "{page}"
    );
    assert!(page.contains(&format!("name=\"_csrf\" value=\"{csrf}\"")));
    assert!(page.contains("name=\"_entity\" value=\"component:default/a-one\""));
    assert!(page.contains("<select name=\"level\""), "{page}");
    assert!(
        page.contains("type=\"number\" name=\"count\" value=\"1\" min=\"0\" max=\"10\""),
        "{page}"
    );
    assert!(!page.contains("<script"));

    let place = [
        ("_slot", "entity-card"),
        ("_entity", "component:default/a-one"),
        ("_path", ""),
        ("_query", ""),
    ];
    let with = |extra: &[(&'static str, &'static str)], csrf: &'static str| {
        let mut f: Vec<(&str, &str)> = place.to_vec();
        f.push(("_csrf", csrf));
        f.extend_from_slice(extra);
        f
    };
    let csrf: &'static str = Box::leak(csrf.into_boxed_str());

    // Pressed: the action runs as alice and the card is shown again.
    let (status, body) = press(&server, "bump", &alice, &with(&[("by", "2")], csrf)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Bumped by Alice Liddell"), "{body}");
    assert!(
        body.contains("component:default/a-one now has 2 bumps"),
        "{body}"
    );
    assert!(
        body.contains("Bumped 2 times."),
        "the view rendered again: {body}"
    );
    assert!(
        body.contains("href=\"/catalog/default/component/a-one\""),
        "a way back: {body}"
    );
    // The form's values arrive, the host's own fields do not.
    let (status, body) = press(
        &server,
        "note",
        &alice,
        &with(
            &[
                ("text", "hello <b>"),
                ("level", "high"),
                ("urgent", "on"),
                ("count", "3"),
                ("origin", "card"),
            ],
            csrf,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("hello &lt;b&gt; (level high, urgent on, count 3, from card)"),
        "{body}"
    );

    // The plugin's permission check: alice does not own b-one.
    let mut other = with(&[("by", "1")], csrf);
    other[1] = ("_entity", "component:default/b-one");
    let (status, body) = press(&server, "bump", &alice, &other).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("you do not have permission api-v0-4.bump"),
        "{body}"
    );
    // The plugin's own error, shown as a notice naming the plugin.
    let (status, body) = press(&server, "note", &alice, &with(&[("text", "")], csrf)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("a note needs text"), "{body}");

    // Refused before the plugin: no session, a wrong token, another origin,
    // an entity out of reach, a bad action name, a host field the plugin
    // would not get anyway.
    let (status, body) = press(&server, "bump", "", &with(&[], csrf)).await;
    assert_eq!(status, 303, "sent to sign in: {body}");
    let (status, body) = press(&server, "bump", &alice, &with(&[], "0000")).await;
    assert_eq!(status, 403, "{body}");
    let response = no_redirects()
        .post(server.url(&format!("/plugins/{PLUGIN}/-/actions/bump")))
        .header("cookie", &alice)
        .header("origin", "https://evil.example")
        .form(&with(&[], csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        403,
        "a cross-origin post is refused"
    );
    let mut gone = with(&[], csrf);
    gone[1] = ("_entity", "component:default/nothing-here");
    assert_eq!(press(&server, "bump", &alice, &gone).await.0, 404);
    assert_eq!(
        press(&server, "Bump!", &alice, &with(&[], csrf)).await.0,
        400
    );
    let (status, _) = press(&server, "bump", &alice, &with(&[("UPPER", "x")], csrf)).await;
    assert_eq!(status, 400, "value names are checked");
    let big = "x".repeat(70 * 1024);
    let big: &'static str = Box::leak(big.into_boxed_str());
    assert_eq!(
        press(&server, "note", &alice, &with(&[("text", big)], csrf))
            .await
            .0,
        413
    );

    // Counted once per press that reached the plugin, and audited.
    let page = card(&server, "a-one", &alice).await;
    assert!(page.contains("Bumped 2 times."), "{page}");
    let audit = server
        .running
        .state
        .stores
        .audit
        .entries(None, 100)
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .filter(|r| r.action == "plugin.action")
        .map(|r| r.actor.as_str())
        .collect();
    assert!(
        actions.len() >= 3 && actions.iter().all(|a| *a == "user:default/alice"),
        "{actions:?}"
    );
    server.stop().await;
}

/// A stand-in cluster API on 127.0.0.1 that answers with the
/// `Authorization` header it got (or `none`).
async fn echo_auth() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/whoami",
        routing::get(move |headers: HeaderMap| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                log.lock().unwrap().push(auth.clone());
                auth
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_all_asks_hosts_at_once_with_credentials_the_plugin_never_sees() {
    let (bound, _) = echo_auth().await;
    let (other, other_seen) = echo_auth().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let binding = CredentialConfig {
            headers: [(
                "authorization".to_owned(),
                "Bearer cluster-secret".to_owned(),
            )]
            .into(),
            ..CredentialConfig::default()
        };
        config
            .plugins
            .credentials
            .insert(PLUGIN.into(), [(bound.to_string(), binding)].into());
    })
    .await;
    let (alice, _) = session(&server, "user:default/alice").await;
    let urls = format!(
        "url=http://{bound}/whoami&url=http://{other}/whoami&url=http://{bound}/whoami&url=http://10.255.255.1/x"
    );
    let (status, body) = get(
        &server,
        &format!("/api/plugins/{PLUGIN}/fanout?{urls}"),
        &alice,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body.as_array().unwrap();
    assert_eq!(results.len(), 4, "{body}");
    // The bound host gets the operator's header; the plugin's code only
    // sees the server's answer (which here echoes it, as a hostile server
    // could: the plugin can read what the server sends, never the binding).
    assert_eq!(results[0]["body"], "Bearer cluster-secret");
    assert_eq!(results[2]["body"], "Bearer cluster-secret");
    assert_eq!(results[1]["body"], "none", "another host never gets it");
    assert_eq!(other_seen.lock().unwrap().as_slice(), ["none"]);
    assert!(
        results[3]["error"]
            .as_str()
            .unwrap()
            .contains("not granted"),
        "{body}"
    );
    // More than 32 at once is refused, each with the reason.
    let many = (0..33)
        .map(|_| format!("url=http://{other}/whoami"))
        .collect::<Vec<_>>()
        .join("&");
    let (_, body) = get(
        &server,
        &format!("/api/plugins/{PLUGIN}/fanout?{many}"),
        &alice,
    )
    .await;
    assert!(
        body[0]["error"].as_str().unwrap().contains("at most 32"),
        "{body}"
    );
    // The effective configuration never shows the credential.
    let shown = format!("{:?}", server.running.state.config.redacted());
    assert!(!shown.contains("cluster-secret"));
    server.stop().await;
}
