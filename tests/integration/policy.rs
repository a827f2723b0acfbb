//! Roles without code against a real server: Backstage's
//! `/api/permission/authorize` (basic, resource with and without a
//! resource, for owners, others, the admin token and nobody), the policy
//! admin API (drafts validated and diffed, publication in force at once,
//! stale publications refused, RHDH export round trip, audit entries,
//! callers without `callboard.policy.manage` refused, hostile input), and
//! the `/admin/roles` pages (draft, diff, publish and discard through forms).

use std::path::Path;

use callboard::{
    config::Config,
    identity::config::Anonymous,
    permissions::{Policy, rhdh},
};
use callboard_catalog::{LocationConfig, LocationKind};
use serde_json::{Value, json};

use crate::{
    people::{Auth, ORG, no_redirects},
    support::{TestServer, backstage_error, eventually, page},
};

/// Everyone reads what they own (through their groups), reads locations
/// and the policy; bob's role is added by [`BOB_ADMIN`].
const OWNERS_CSV: &str = "\
# readers
p, role:default/everyone, catalog.location.read, read, allow
p, role:default/everyone, callboard.policy.read, read, allow
g, *, role:default/everyone

p, role:default/admin, *, *, allow
";

const OWNERS_CONDITIONAL: &str = "\
- result: CONDITIONAL
  roleEntityRef: role:default/everyone
  pluginId: catalog
  resourceType: catalog-entity
  permissionMapping: [read]
  conditions:
    rule: IS_ENTITY_OWNER
    resourceType: catalog-entity
    params: {claims: [$ownerRefs]}
";

const BOB_ADMIN: &str = "g, user:default/bob, role:default/admin\n";

/// A server whose catalog is [`ORG`], sign-in required (`auth.anonymous =
/// "none"`), guest sign-in as alice.
async fn start(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let catalog = dir.join("org.yaml");
    std::fs::write(&catalog, ORG).unwrap();
    let mut config = crate::support::config(&dir.join("data"));
    config.auth.anonymous = Anonymous::None;
    config.auth.guest.enabled = true;
    config.auth.guest.user = "user:default/alice".into();
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    tweak(&mut config);
    let server = TestServer::start(config).await;
    let admin = admin_token(&server);
    eventually(30, "the catalog to load", || async {
        let (status, body) = call(
            &server,
            "GET",
            "/api/catalog/entities?filter=kind=component,kind=user",
            Auth::Bearer(&admin),
            None,
        )
        .await;
        (status == 200 && body.as_array().is_some_and(|a| a.len() == 6)).then_some(())
    })
    .await;
    server
}

fn admin_token(server: &TestServer) -> String {
    server.running.state.admin_token.to_string()
}

/// A session cookie for `user` (a real session, as sign-in makes).
async fn session_of(server: &TestServer, user: &str) -> String {
    let session = server.running.state.sessions.create(user).await.unwrap();
    format!("callboard_session={}", session.id)
}

/// A request's body.
enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    auth: Auth<'_>,
    body: Option<Body>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = auth.apply(no_redirects().request(method, server.url(path)));
    request = match body {
        None => request,
        Some(Body::Json(v)) => request.json(&v),
        Some(Body::Raw(content_type, bytes)) => {
            request.header("content-type", content_type).body(bytes)
        }
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn message(body: &Value) -> String {
    backstage_error(&body.to_string()).1
}

/// Names of the components `auth` reads.
async fn components(server: &TestServer, auth: Auth<'_>) -> Vec<String> {
    let (status, body) = call(
        server,
        "GET",
        "/api/catalog/entities?filter=kind=component",
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn item(id: &str, name: &str, kind: &str, resource_ref: Option<&str>) -> Value {
    let mut permission = json!({"type": kind, "name": name, "attributes": {}});
    if kind == "resource" {
        permission["resourceType"] = json!("catalog-entity");
    }
    let mut item = json!({"id": id, "permission": permission});
    if let Some(r) = resource_ref {
        item["resourceRef"] = json!(r);
    }
    item
}

/// Asks the standard questions; returns `id -> answer`.
async fn authorize(server: &TestServer, auth: Auth<'_>) -> (u16, Value) {
    let items = vec![
        item("create", "catalog.entity.create", "basic", None),
        item(
            "read-b",
            "catalog.entity.read",
            "resource",
            Some("component:default/b-one"),
        ),
        item(
            "delete-a",
            "catalog.entity.delete",
            "resource",
            Some("component:default/a-one"),
        ),
        item(
            "delete-b",
            "catalog.entity.delete",
            "resource",
            Some("component:default/b-one"),
        ),
        item(
            "delete-eng",
            "catalog.entity.delete",
            "resource",
            Some("component:default/eng-tool"),
        ),
        item(
            "delete-missing",
            "catalog.entity.delete",
            "resource",
            Some("component:default/nowhere"),
        ),
        item("delete-any", "catalog.entity.delete", "resource", None),
        item("unknown", "made.up.permission", "basic", None),
    ];
    call(
        server,
        "POST",
        "/api/permission/authorize",
        auth,
        Some(Body::Json(json!({ "items": items }))),
    )
    .await
}

fn results(body: &Value) -> std::collections::BTreeMap<String, String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn answer<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()
}

#[tokio::test]
async fn authorize_answers_owners_others_the_admin_token_and_refuses_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let admin = admin_token(&server);
    let alice = session_of(&server, "user:default/alice").await;
    let bob = session_of(&server, "user:default/bob").await;

    // The default policy: everyone reads, owners delete their own.
    let (status, body) = authorize(&server, Auth::Cookie(&alice)).await;
    assert_eq!(status, 200, "{body}");
    let r = results(&body);
    assert_eq!(r["create"], "DENY", "{body}");
    assert_eq!(r["read-b"], "ALLOW");
    assert_eq!(r["delete-a"], "ALLOW", "team-a owns a-one");
    assert_eq!(r["delete-b"], "DENY", "team-b's");
    assert_eq!(r["delete-eng"], "ALLOW", "owned through the parent group");
    assert_eq!(r["delete-missing"], "DENY");
    assert_eq!(r["unknown"], "DENY");
    assert_eq!(r["delete-any"], "CONDITIONAL");
    let conditional = answer(&body, "delete-any");
    assert_eq!(conditional["pluginId"], "catalog");
    assert_eq!(conditional["resourceType"], "catalog-entity");
    assert_eq!(conditional["conditions"]["rule"], "IS_ENTITY_OWNER");
    let claims = conditional["conditions"]["params"]["claims"].to_string();
    assert!(
        claims.contains("group:default/team-a") && !claims.contains("$ownerRefs"),
        "{claims}"
    );
    assert_eq!(body["items"].as_array().unwrap().len(), 8);

    let (status, body) = authorize(&server, Auth::Cookie(&bob)).await;
    assert_eq!(status, 200, "{body}");
    let r = results(&body);
    assert_eq!(
        (r["delete-a"].as_str(), r["delete-b"].as_str()),
        ("DENY", "ALLOW")
    );

    let (status, body) = authorize(&server, Auth::Bearer(&admin)).await;
    assert_eq!(status, 200, "{body}");
    let r = results(&body);
    for id in [
        "create",
        "read-b",
        "delete-a",
        "delete-b",
        "delete-any",
        "delete-missing",
    ] {
        assert_eq!(r[id], "ALLOW", "{id}: {body}");
    }
    assert_eq!(r["unknown"], "DENY");

    let (status, body) = authorize(&server, Auth::None).await;
    assert_eq!(status, 401, "{body}");

    // Hostile: too many items, too large, too deep, not JSON.
    let many: Vec<Value> = (0..101)
        .map(|i| item(&i.to_string(), "catalog.entity.read", "basic", None))
        .collect();
    let (status, body) = call(
        &server,
        "POST",
        "/api/permission/authorize",
        Auth::Cookie(&alice),
        Some(Body::Json(json!({ "items": many }))),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("100"), "{body}");
    let big = json!({"items": [item(&"x".repeat(70_000), "catalog.entity.read", "basic", None)]});
    let (status, body) = call(
        &server,
        "POST",
        "/api/permission/authorize",
        Auth::Cookie(&alice),
        Some(Body::Json(big)),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(message(&body).contains("65536"), "{body}");
    let deep = format!("{{\"items\": {}{}}}", "[".repeat(500), "]".repeat(500));
    let (status, body) = call(
        &server,
        "POST",
        "/api/permission/authorize",
        Auth::Cookie(&alice),
        Some(Body::Raw("application/json", deep.into_bytes())),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("32 levels"), "{body}");
    let (status, _) = call(
        &server,
        "POST",
        "/api/permission/authorize",
        Auth::Cookie(&alice),
        Some(Body::Raw("application/json", b"{\"items\": 3}".to_vec())),
    )
    .await;
    assert_eq!(status, 400);
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn anonymous_callers_are_answered_as_anonymous_when_anonymous_reads() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.auth.anonymous = Anonymous::Read).await;
    let (status, body) = authorize(&server, Auth::None).await;
    assert_eq!(status, 200, "{body}");
    let r = results(&body);
    assert_eq!(r["read-b"], "ALLOW", "{body}");
    assert_eq!(r["create"], "DENY");
    assert_eq!(r["delete-a"], "DENY", "anonymous owns nothing");
    server.running.shutdown().await.unwrap();
}

/// The policy the admin API reports as published, and its version.
async fn published(server: &TestServer, admin: &str) -> (i64, Policy, Value) {
    let (status, body) = call(
        server,
        "GET",
        "/api/admin/policy",
        Auth::Bearer(admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let policy = serde_json::from_value(body["published"]["policy"].clone()).unwrap();
    (
        body["published"]["version"].as_i64().unwrap(),
        policy,
        body["draft"].clone(),
    )
}

async fn put_draft(
    server: &TestServer,
    auth: Auth<'_>,
    csv: &str,
    conditional: &str,
) -> (u16, Value) {
    call(
        server,
        "PUT",
        "/api/admin/policy/draft",
        auth,
        Some(Body::Json(json!({"csv": csv, "conditional": conditional}))),
    )
    .await
}

#[tokio::test]
async fn drafts_are_validated_diffed_published_audited_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let admin = admin_token(&server);
    let alice = session_of(&server, "user:default/alice").await;
    let bob = session_of(&server, "user:default/bob").await;
    let (seeded, default, draft) = published(&server, &admin).await;
    assert!(seeded > 0 && draft.is_null(), "{draft}");
    assert_eq!(server.running.state.access.version(), seeded);

    // A bad CSV is refused, naming its line; nothing is stored.
    let bad = "p, role:default/x, catalog.entity.read, read, allow\n# fine\ng, user:default/alice, role:default/x, extra\n";
    let (status, body) = call(
        &server,
        "PUT",
        "/api/admin/policy/draft",
        Auth::Bearer(&admin),
        Some(Body::Raw("text/csv", bad.as_bytes().to_vec())),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("CSV line 3"), "{body}");
    let unknown = "p, role:default/x, catalog.entity.reed, read, allow\n";
    let (status, body) = put_draft(&server, Auth::Bearer(&admin), unknown, "").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("role role:default/x, rule 1"),
        "{body}"
    );
    let (_, _, draft) = published(&server, &admin).await;
    assert!(draft.is_null(), "nothing stored: {draft}");
    let (_, history) = call(
        &server,
        "GET",
        "/api/admin/policy/versions",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(
        history["versions"].as_array().unwrap().len(),
        1,
        "{history}"
    );

    // Callers without callboard.policy.manage: refused before anything.
    assert_eq!(
        put_draft(
            &server,
            Auth::Cookie(&alice),
            OWNERS_CSV,
            OWNERS_CONDITIONAL
        )
        .await
        .0,
        403
    );
    assert_eq!(
        put_draft(&server, Auth::None, OWNERS_CSV, OWNERS_CONDITIONAL)
            .await
            .0,
        401
    );
    for (method, path) in [
        ("POST", "/api/admin/policy/publish"),
        ("DELETE", "/api/admin/policy/draft"),
    ] {
        let (status, body) = call(
            &server,
            method,
            path,
            Auth::Cookie(&alice),
            Some(Body::Json(json!({"version": 1}))),
        )
        .await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(message(&body).contains("callboard.policy.manage"), "{body}");
    }
    let (status, _) = call(
        &server,
        "GET",
        "/api/admin/policy",
        Auth::Cookie(&alice),
        None,
    )
    .await;
    assert_eq!(status, 200, "everyone reads the policy by default");
    let (status, _) = call(&server, "GET", "/api/admin/policy", Auth::None, None).await;
    assert_eq!(status, 401);

    // A valid draft, and what it changes.
    let (status, body) = put_draft(
        &server,
        Auth::Bearer(&admin),
        OWNERS_CSV,
        OWNERS_CONDITIONAL,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let first = body["version"].as_i64().unwrap();
    let (status, diff) = call(
        &server,
        "GET",
        "/api/admin/policy/diff",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(
        (diff["from"].as_i64(), diff["to"].as_i64()),
        (Some(seeded), Some(first))
    );
    let everyone = diff["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "role:default/everyone")
        .unwrap_or_else(|| panic!("{diff}"));
    assert_eq!(everyone["change"], "changed");
    assert!(
        everyone["rulesRemoved"]
            .to_string()
            .contains("p, role:default/everyone, catalog.entity.read, read, allow"),
        "{everyone}"
    );
    assert!(
        everyone["rulesAdded"].to_string().contains(
            "p, role:default/everyone, catalog-entity, read, allow when owned by the caller or their groups"
        ),
        "{everyone}"
    );
    assert!(
        diff["summary"]["rulesRemoved"].as_u64().unwrap() >= 4,
        "{diff}"
    );

    // Nothing changes until it is published; then at once.
    assert_eq!(components(&server, Auth::Cookie(&bob)).await.len(), 4);
    let (status, body) = call(
        &server,
        "POST",
        "/api/admin/policy/publish",
        Auth::Bearer(&admin),
        Some(Body::Json(json!({ "version": first }))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.running.state.access.version(), first);
    assert_eq!(
        components(&server, Auth::Cookie(&bob)).await,
        ["b-one", "eng-tool"]
    );
    assert_eq!(
        components(&server, Auth::Cookie(&alice)).await,
        ["a-one", "a-two", "eng-tool"]
    );
    let (_, body) = authorize(&server, Auth::Cookie(&bob)).await;
    assert_eq!(results(&body)["read-b"], "ALLOW", "{body}");
    let (_, body) = authorize(&server, Auth::Cookie(&alice)).await;
    assert_eq!(results(&body)["read-b"], "DENY", "{body}");

    // Publishing it again is stale; so is a discarded draft.
    let (status, body) = call(
        &server,
        "POST",
        "/api/admin/policy/publish",
        Auth::Bearer(&admin),
        Some(Body::Json(json!({ "version": first }))),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Bob gains everything through a second version.
    let csv = format!("{OWNERS_CSV}{BOB_ADMIN}");
    let (status, body) = put_draft(&server, Auth::Bearer(&admin), &csv, OWNERS_CONDITIONAL).await;
    assert_eq!(status, 200, "{body}");
    let second = body["version"].as_i64().unwrap();
    assert!(second > first);
    let (_, diff) = call(
        &server,
        "GET",
        "/api/admin/policy/diff",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(
        diff["summary"],
        json!({"rolesAdded": 0, "rolesRemoved": 0, "rolesChanged": 1, "membersAdded": 1,
               "membersRemoved": 0, "rulesAdded": 0, "rulesRemoved": 0}),
        "{diff}"
    );
    let (status, _) = call(
        &server,
        "POST",
        "/api/admin/policy/publish",
        Auth::Bearer(&admin),
        Some(Body::Json(json!({ "version": second }))),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(components(&server, Auth::Cookie(&bob)).await.len(), 4);
    // Bob now manages the policy too.
    let (status, body) = put_draft(&server, Auth::Cookie(&bob), &csv, "").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &server,
        "DELETE",
        "/api/admin/policy/draft",
        Auth::Cookie(&bob),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &server,
        "DELETE",
        "/api/admin/policy/draft",
        Auth::Cookie(&bob),
        None,
    )
    .await;
    assert_eq!(status, 404, "no draft any more");

    // Export, then import: the same policy.
    let (_, in_force, _) = published(&server, &admin).await;
    assert_ne!(in_force, default);
    let response = no_redirects()
        .get(server.url("/api/admin/policy/export.csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );
    let csv = response.text().await.unwrap();
    let (status, yaml) = call(
        &server,
        "GET",
        "/api/admin/policy/export-conditional.yaml",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let yaml = yaml.as_str().unwrap().to_owned();
    assert_eq!(rhdh::import(&csv, Some(&yaml)).unwrap(), in_force);
    let (status, _) = put_draft(&server, Auth::Bearer(&admin), &csv, &yaml).await;
    assert_eq!(status, 200);
    let (_, diff) = call(
        &server,
        "GET",
        "/api/admin/policy/diff",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(diff["roles"], json!([]), "{diff}");

    // The audit log names who did what.
    let entries = server
        .running
        .state
        .stores
        .audit
        .entries(None, 100)
        .await
        .unwrap();
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e.actor.clone(), e.action.clone()))
        .collect();
    for expected in [
        ("admin", "policy.draft"),
        ("admin", "policy.publish"),
        ("user:default/bob", "policy.draft"),
        ("user:default/bob", "policy.discard"),
    ] {
        assert!(
            seen.iter()
                .any(|(a, b)| (a.as_str(), b.as_str()) == expected),
            "{expected:?} in {seen:?}"
        );
    }
    let publication = entries
        .iter()
        .find(|e| e.action == "policy.publish" && e.detail["version"] == first)
        .unwrap();
    assert!(publication.detail["diff"]["rulesAdded"].as_u64().unwrap() >= 1);

    // Hostile drafts: too large, too deep, conditions nested too deep.
    let (status, body) = call(
        &server,
        "PUT",
        "/api/admin/policy/draft",
        Auth::Bearer(&admin),
        Some(Body::Raw("text/csv", vec![b'#'; 2 * 1024 * 1024])),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(message(&body).contains("1048576"), "{body}");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, body) = call(
        &server,
        "PUT",
        "/api/admin/policy/draft",
        Auth::Bearer(&admin),
        Some(Body::Raw("application/json", deep.into_bytes())),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("32 levels"), "{body}");
    let mut conditions =
        json!({"rule": "HAS_LABEL", "resourceType": "catalog-entity", "params": {"label": "x"}});
    for _ in 0..9 {
        conditions = json!({ "not": conditions });
    }
    let policy = json!({"roles": [{"name": "role:default/deep", "members": ["*"], "rules": [
        {"permission": "catalog.entity.read", "effect": "allow", "conditions": conditions}
    ]}]});
    let (status, body) = call(
        &server,
        "PUT",
        "/api/admin/policy/draft",
        Auth::Bearer(&admin),
        Some(Body::Json(policy)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("role role:default/deep, rule 1")
            && message(&body).contains("8 levels"),
        "{body}"
    );
    server.running.shutdown().await.unwrap();
}

/// The `csrf` hidden field of a page.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on the page: {page}"))
        .to_owned()
}

async fn post_form(
    server: &TestServer,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let response = no_redirects()
        .post(server.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (
        response.status().as_u16(),
        response.text().await.unwrap(),
        location,
    )
}

#[tokio::test]
async fn roles_pages_draft_diff_publish_and_discard_through_forms() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let alice = session_of(&server, "user:default/alice").await;

    // A person without callboard.policy.manage: 403 pages, forms refused.
    let (status, body) = page(&server, "/admin/roles", &alice).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("href=\"/sign-in") && body.contains("href=\"/admin\""),
        "{body}"
    );
    assert_eq!(page(&server, "/admin/roles/history", &alice).await.0, 403);
    let (status, _, _) = post_form(
        &server,
        "/admin/roles/draft",
        &alice,
        &[("csrf", "x"), ("csv", OWNERS_CSV)],
    )
    .await;
    assert_eq!(status, 403);

    // The admin token's session.
    let response = no_redirects()
        .post(server.url("/admin/login"))
        .form(&[("token", admin_token(&server))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, body) = page(&server, "/admin/roles", &cookie).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("role:default/everyone") && body.contains("published by"),
        "{body}"
    );
    assert!(
        body.contains("owned by the caller or their groups"),
        "conditions in words: {body}"
    );
    assert!(
        body.contains("g, *, role:default/everyone"),
        "the editor holds the CSV: {body}"
    );
    assert!(!body.contains("Draft version"));
    let csrf = csrf_of(&body);

    // Forged token; a bad draft shows its line above the form.
    let (status, _, _) = post_form(
        &server,
        "/admin/roles/draft",
        &cookie,
        &[("csrf", "forged"), ("csv", OWNERS_CSV)],
    )
    .await;
    assert_eq!(status, 403);
    let (status, body, _) = post_form(
        &server,
        "/admin/roles/draft",
        &cookie,
        &[
            ("csrf", &csrf),
            ("csv", "p, role:default/x, catalog.entity.read\r\n"),
            ("conditional", ""),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("CSV line 1") && body.contains("role=\"alert\""),
        "{body}"
    );
    assert!(
        server
            .running
            .state
            .stores
            .policies
            .versions(5)
            .await
            .unwrap()
            .len()
            == 1
    );

    // A good draft, its diff, then publish.
    let csv = OWNERS_CSV.replace('\n', "\r\n");
    let (status, _, location) = post_form(
        &server,
        "/admin/roles/draft",
        &cookie,
        &[
            ("csrf", &csrf),
            ("csv", &csv),
            ("conditional", OWNERS_CONDITIONAL),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.starts_with("/admin/roles?saved="), "{location}");
    let version: i64 = location.rsplit('=').next().unwrap().parse().unwrap();
    let (_, body) = page(&server, &location, &cookie).await;
    assert!(body.contains(&format!("Draft version {version}")), "{body}");
    assert!(
        body.contains(
            "class=\"removed\">− p, role:default/everyone, catalog.entity.read, read, allow<"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "class=\"added\">+ p, role:default/everyone, catalog-entity, read, allow when owned by"
        ),
        "{body}"
    );
    let (status, _, location) = post_form(
        &server,
        "/admin/roles/publish",
        &cookie,
        &[("csrf", &csrf), ("version", &version.to_string())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.unwrap(),
        format!("/admin/roles?published={version}")
    );
    assert_eq!(server.running.state.access.version(), version);
    assert_eq!(
        components(&server, Auth::Cookie(&alice)).await,
        ["a-one", "a-two", "eng-tool"]
    );
    // Again: stale.
    let (status, body, _) = post_form(
        &server,
        "/admin/roles/publish",
        &cookie,
        &[("csrf", &csrf), ("version", &version.to_string())],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not the current draft"), "{body}");

    // Discard a draft through the form.
    let (status, _, _) = post_form(
        &server,
        "/admin/roles/draft",
        &cookie,
        &[
            ("csrf", &csrf),
            ("csv", &format!("{OWNERS_CSV}{BOB_ADMIN}")),
            ("conditional", OWNERS_CONDITIONAL),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _, location) =
        post_form(&server, "/admin/roles/discard", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), "/admin/roles?discarded=1");

    // The history: the seed inactive, the publication in force; the
    // discarded draft is gone.
    let (status, body) = page(&server, "/admin/roles/history", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(">inactive<") && body.contains(">published<"),
        "{body}"
    );
    assert!(!body.contains(">draft<"), "{body}");
    let audit = server
        .running
        .state
        .stores
        .audit
        .entries(None, 50)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "policy.publish" && e.actor == "admin"),
        "{audit:?}"
    );
    server.running.shutdown().await.unwrap();
}
