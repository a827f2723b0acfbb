//! Reading locations: bad input, orphans, conflicts, url targets, refresh.

use callboard_catalog::{CatalogConfig, CatalogEvent, EntityRef};
use serde_json::{Value, json};

use super::harness::{CatalogServer, FIXTURE, names, write_files};

fn status_messages(e: &Value) -> Vec<String> {
    e["status"]["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["message"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn root_location(s: &CatalogServer) -> Value {
    let (_, v) = s.get("/entities?filter=kind=location").await;
    v.as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("generated-")
        })
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_bad_file_leaves_every_other_entity_intact() {
    let s = CatalogServer::start(FIXTURE).await;
    let (_, before) = s.get("/entities/by-name/user/default/alice").await;

    // 1. invalid YAML in org.yaml
    write_files(
        &s.path("catalog"),
        &[(
            "org.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: [unclosed\n",
        )],
    );
    // 2. an invalid entity (missing lifecycle) and a brand-new invalid one in shop.yaml;
    //    the rest of the file changes validly
    let shop = FIXTURE[1]
        .1
        .replace(
            "  lifecycle: production\n  owner: team-a\n  system: shop\n  providesApis",
            "  owner: team-a\n  system: shop\n  providesApis",
        )
        .replace("Everything that sells parcels", "Sells parcels")
        + "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Bad_Name!\nspec: {type: service, lifecycle: beta, owner: team-a}\n";
    write_files(&s.path("catalog"), &[("shop.yaml", &shop)]);
    // 3. a Location that points at a file that does not exist
    write_files(
        &s.path("catalog"),
        &[(
            "more.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: more}\nspec:\n  targets: [../extra/payments.yaml, ./missing.yaml]\n",
        )],
    );
    s.refresh().await;

    // entities of the unreadable file keep their last good version and say why
    let (status, alice) = s.get("/entities/by-name/user/default/alice").await;
    assert_eq!(status, 200);
    assert_eq!(alice["spec"], before["spec"]);
    assert_eq!(
        alice["metadata"]["annotations"].get("backstage.io/orphan"),
        None
    );
    let m = status_messages(&alice).join("\n");
    assert!(m.contains("org.yaml") && m.contains("Invalid YAML"), "{m}");
    assert_eq!(alice["status"]["items"][0]["level"], "error");
    assert_eq!(
        alice["status"]["items"][0]["type"],
        "backstage.io/catalog-processing"
    );

    // the invalid entity keeps its last good version, with an error naming file and field
    let (status, svc) = s
        .get("/entities/by-name/component/default/checkout-service")
        .await;
    assert_eq!(status, 200);
    assert_eq!(svc["spec"]["lifecycle"], "production");
    let m = status_messages(&svc).join("\n");
    assert!(
        m.contains("shop.yaml") && m.contains("\"spec.lifecycle\" is required"),
        "{m}"
    );

    // the valid rest of the file was applied
    let (_, shop_sys) = s.get("/entities/by-name/system/default/shop").await;
    assert_eq!(shop_sys["metadata"]["description"], "Sells parcels");
    assert!(status_messages(&shop_sys).is_empty());

    // the missing file is reported on the Location that references it; its other target still loads
    let (_, more) = s.get("/entities/by-name/location/default/more").await;
    let m = status_messages(&more).join("\n");
    assert!(
        m.contains("missing.yaml") && m.contains("NotFoundError"),
        "{m}"
    );
    let (status, _) = s.get("/entities/by-name/component/finance/payments").await;
    assert_eq!(status, 200);

    // the root location lists the YAML error and the new invalid entity, with file, line and field
    let root = root_location(&s).await;
    let m = status_messages(&root).join("\n");
    assert!(m.contains("org.yaml") && m.contains("Invalid YAML"), "{m}");
    assert!(
        m.contains("shop.yaml")
            && m.contains("Bad_Name!")
            && m.contains("\"metadata.name\" is not valid"),
        "{m}"
    );

    // fixing the files clears every status
    for (path, text) in FIXTURE {
        write_files(&s.path("catalog"), &[(path, text)]);
    }
    s.refresh().await;
    for r in [
        "user/default/alice",
        "component/default/checkout-service",
        "location/default/more",
    ] {
        let (_, e) = s.get(&format!("/entities/by-name/{r}")).await;
        assert!(status_messages(&e).is_empty(), "{r}: {:?}", e["status"]);
    }
    assert!(status_messages(&root_location(&s).await).is_empty());
}

#[tokio::test]
async fn orphans_generation_and_change_events() {
    let s = CatalogServer::start(FIXTURE).await;
    let mut events = s.catalog.subscribe();
    let (_, e1) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;

    // drop label-printer and change checkout-web's spec
    let shop = FIXTURE[1]
        .1
        .replace("name: label-printer", "name: label-printer-2")
        .replace("type: website", "type: web-app");
    write_files(&s.path("catalog"), &[("shop.yaml", &shop)]);
    s.refresh().await;

    let (status, orphan) = s
        .get("/entities/by-name/component/default/label-printer")
        .await;
    assert_eq!(status, 200, "orphans stay until deleted");
    assert_eq!(
        orphan["metadata"]["annotations"]["backstage.io/orphan"],
        "true"
    );
    let (_, v) = s
        .get("/entities?filter=metadata.annotations.backstage.io/orphan=true")
        .await;
    assert_eq!(names(&v), ["label-printer"]);

    let (_, e2) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;
    assert_eq!(e2["metadata"]["uid"], e1["metadata"]["uid"]);
    assert_eq!(e2["metadata"]["generation"], 2);
    assert_ne!(e2["metadata"]["etag"], e1["metadata"]["etag"]);

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(
        seen.contains(&CatalogEvent::Added(
            "component:default/label-printer-2".into()
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&CatalogEvent::Changed(
            "component:default/checkout-web".into()
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&CatalogEvent::Changed(
            "component:default/label-printer".into()
        )),
        "{seen:?}"
    );

    // listed again: no longer an orphan
    write_files(&s.path("catalog"), &[("shop.yaml", FIXTURE[1].1)]);
    s.refresh().await;
    let (_, back) = s
        .get("/entities/by-name/component/default/label-printer")
        .await;
    assert_eq!(
        back["metadata"]["annotations"].get("backstage.io/orphan"),
        None
    );
}

#[tokio::test]
async fn a_conflict_keeps_the_first_owner() {
    let s = CatalogServer::start(FIXTURE).await;
    write_files(
        &s.path("other"),
        &[(
            "dup.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: checkout-web, description: impostor}\nspec: {type: service, lifecycle: beta, owner: someone}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: unique-one}\nspec: {type: service, lifecycle: beta, owner: someone}\n",
        )],
    );
    let target = s.path("other/dup.yaml").display().to_string();
    let (status, added) = s
        .post("/locations", json!({"type": "file", "target": target}))
        .await;
    assert_eq!(status, 201);
    let errors = added["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(
            |e| e["name"] == "ConflictError" && e["entity"] == "component:default/checkout-web"
        ),
        "{errors:?}"
    );

    let (_, web) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;
    assert_ne!(web["metadata"]["description"], "impostor");
    assert!(
        web["metadata"]["annotations"]["backstage.io/managed-by-location"]
            .as_str()
            .unwrap()
            .ends_with("catalog/shop.yaml")
    );
    let (status, _) = s
        .get("/entities/by-name/component/default/unique-one")
        .await;
    assert_eq!(status, 200);
    // the second claim is reported on the Location entity of that location
    let (_, locs) = s.get("/entities?filter=kind=location").await;
    let reported = locs.as_array().unwrap().iter().any(|l| {
        status_messages(l)
            .iter()
            .any(|m| m.contains("ConflictError") && m.contains("checkout-web"))
    });
    assert!(reported, "{locs:#}");
    // a refresh of the first owner does not flip ownership
    s.refresh().await;
    let (_, web) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;
    assert_ne!(web["metadata"]["description"], "impostor");
}

#[tokio::test]
async fn url_locations_with_relative_targets() {
    // A real HTTP server on loopback serving descriptor files.
    let files = axum::Router::new()
        .route(
            "/repo/catalog-info.yaml",
            axum::routing::get(|| async {
                "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: remote-root}\nspec:\n  targets: [./services/a.yaml, missing.yaml]\n---\napiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {name: remote-system}\nspec: {owner: team-r}\n"
            }),
        )
        .route(
            "/repo/services/a.yaml",
            axum::routing::get(|| async {
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: remote-a}\nspec: {type: service, lifecycle: production, owner: team-r, system: remote-system}\n"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Without TCP_NODELAY a streamed body's last segment waits for a delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, files).await.unwrap() });

    let s = CatalogServer::start(&[]).await;
    let url = format!("http://{addr}/repo/catalog-info.yaml");
    let (status, added) = s
        .post("/locations", json!({"type": "url", "target": url}))
        .await;
    assert_eq!(status, 201, "{added}");
    let (status, a) = s.get("/entities/by-name/component/default/remote-a").await;
    assert_eq!(status, 200);
    assert_eq!(
        a["metadata"]["annotations"]["backstage.io/managed-by-location"],
        format!("url:http://{addr}/repo/services/a.yaml")
    );
    assert_eq!(
        a["metadata"]["annotations"]["backstage.io/managed-by-origin-location"],
        format!("url:{url}")
    );
    let (status, _) = s
        .get("/entities/by-name/system/default/remote-system")
        .await;
    assert_eq!(status, 200);
    let (_, root) = s
        .get("/entities/by-name/location/default/remote-root")
        .await;
    let m = status_messages(&root).join("\n");
    assert!(m.contains("missing.yaml") && m.contains("404"), "{m}");

    // an unreachable URL is an error, not a crash
    let (status, added) = s
        .post(
            "/locations",
            json!({"type": "url", "target": "http://127.0.0.1:9/nothing.yaml"}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(
        added["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Unable to read"),
        "{added}"
    );
}

#[tokio::test]
async fn the_database_survives_a_reopen() {
    let s = CatalogServer::start(FIXTURE).await;
    let (_, before) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;
    let reopened = crate::support::open_catalog(&s.path("data"), &CatalogConfig::default()).await;
    let after = reopened
        .get_by_ref(&EntityRef::parse("component:default/checkout-web").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before);
}

fn component(name: &str, description: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}, description: {description}}}\nspec: {{type: service, lifecycle: production, owner: team-a}}\n"
    )
}

/// Refreshes every location and returns (unchanged sources, summary, problems).
async fn refresh_counts(
    s: &CatalogServer,
) -> (usize, callboard_store::catalog::ApplySummary, Vec<String>) {
    let reports = s.catalog.refresh_all().await.unwrap();
    assert_eq!(reports.len(), 1, "one location");
    let r = &reports[0];
    (
        r.unchanged_sources,
        r.summary.clone(),
        r.problems.iter().map(ToString::to_string).collect(),
    )
}

#[tokio::test]
async fn unchanged_files_are_not_parsed_again() {
    let a = component("alpha", "first") + "---\n" + &component("alpha-two", "first");
    let b = component("beta", "first");
    let c = component("gamma", "first");
    let s = CatalogServer::start(&[("a.yaml", &a), ("b.yaml", &b), ("c.yaml", &c)]).await;

    // Nothing changed: no file is parsed again, every entity is unchanged.
    let (unchanged, summary, problems) = refresh_counts(&s).await;
    assert_eq!(unchanged, 3, "{summary:?} {problems:?}");
    // The four entities and the location's own Location entity.
    assert_eq!(summary.unchanged, 5, "{summary:?}");
    assert!(problems.is_empty(), "{problems:?}");

    // One file changes: only it is read; the change is served.
    write_files(
        &s.path("catalog"),
        &[("b.yaml", &component("beta", "second"))],
    );
    let (unchanged, summary, _) = refresh_counts(&s).await;
    assert_eq!(
        (unchanged, summary.updated, summary.unchanged),
        (2, 1, 4),
        "{summary:?}"
    );
    let (_, beta) = s.get("/entities/by-name/component/default/beta").await;
    assert_eq!(beta["metadata"]["description"], "second");

    // A changed file now defines an entity an unchanged file provides: the
    // unchanged file keeps it (it comes first), the duplicate is reported.
    write_files(
        &s.path("catalog"),
        &[(
            "b.yaml",
            &(component("beta", "second") + "---\n" + &component("alpha", "impostor")),
        )],
    );
    let (_, _, problems) = refresh_counts(&s).await;
    assert!(
        problems.iter().any(|p| p.contains("b.yaml")
            && p.contains("component:default/alpha")
            && p.contains("also defined")),
        "{problems:?}"
    );
    let (_, alpha) = s.get("/entities/by-name/component/default/alpha").await;
    assert_eq!(alpha["metadata"]["description"], "first");
    // b.yaml had a problem: it is read every time until it is fixed.
    let (unchanged, _, problems) = refresh_counts(&s).await;
    assert_eq!(unchanged, 2, "{problems:?}");
    assert_eq!(problems.len(), 1, "{problems:?}");

    // An entity deleted through the API comes back at the next refresh,
    // although its file did not change (as in Backstage).
    write_files(
        &s.path("catalog"),
        &[("b.yaml", &component("beta", "second"))],
    );
    refresh_counts(&s).await;
    let (_, gamma) = s.get("/entities/by-name/component/default/gamma").await;
    let uid = gamma["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(s.delete(&format!("/entities/by-uid/{uid}")).await, 204);
    let (status, _) = s.get("/entities/by-name/component/default/gamma").await;
    assert_eq!(status, 404);
    let (unchanged, summary, _) = refresh_counts(&s).await;
    assert_eq!((unchanged, summary.added), (2, 1), "{summary:?}");
    let (status, _) = s.get("/entities/by-name/component/default/gamma").await;
    assert_eq!(status, 200, "a deleted entity returns on refresh");

    // A file that disappears orphans its entities; the others stay.
    std::fs::remove_file(s.path("catalog/a.yaml")).unwrap();
    let (unchanged, summary, _) = refresh_counts(&s).await;
    assert_eq!((unchanged, summary.orphaned), (2, 2), "{summary:?}");
    let (_, orphans) = s
        .get("/entities?filter=metadata.annotations.backstage.io/orphan=true")
        .await;
    assert_eq!(names(&orphans), ["alpha", "alpha-two"]);
    // ... and stay orphans while the other files stay unchanged.
    let (unchanged, summary, _) = refresh_counts(&s).await;
    assert_eq!((unchanged, summary.orphaned), (2, 0), "{summary:?}");
    let (_, orphans) = s
        .get("/entities?filter=metadata.annotations.backstage.io/orphan=true")
        .await;
    assert_eq!(names(&orphans), ["alpha", "alpha-two"]);
}

#[tokio::test]
async fn files_listing_locations_are_read_every_time() {
    // A Location entity's targets must be followed at every refresh: the
    // file that lists it is never skipped, the files it leads to are.
    let index = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: more}\nspec: {targets: [./more/*.yaml]}\n";
    let s = CatalogServer::start(&[
        ("index.yaml", index),
        ("more/one.yaml", &component("one", "first")),
    ])
    .await;
    let (unchanged, _, problems) = refresh_counts(&s).await;
    assert_eq!(unchanged, 1, "only more/one.yaml is skipped: {problems:?}");
    write_files(
        &s.path("catalog"),
        &[("more/two.yaml", &component("two", "first"))],
    );
    let (unchanged, summary, _) = refresh_counts(&s).await;
    assert_eq!((unchanged, summary.added), (1, 1), "{summary:?}");
    let (status, _) = s.get("/entities/by-name/component/default/two").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_conflicting_file_is_read_until_the_conflict_resolves() {
    // other/o.yaml (a second location) claims `shared` first; catalog/x.yaml
    // is refused it, so x.yaml is read again at every refresh and takes it
    // over once the other location lets it go.
    let s = CatalogServer::start(&[("x.yaml", &component("own", "mine"))]).await;
    write_files(
        &s.path("other"),
        &[("o.yaml", &component("shared", "theirs"))],
    );
    let target = s.path("other/o.yaml").display().to_string();
    let (status, added) = s
        .post("/locations", json!({"type": "file", "target": target}))
        .await;
    assert_eq!(status, 201);
    let other = added["location"]["id"].as_str().unwrap().to_owned();
    write_files(
        &s.path("catalog"),
        &[(
            "x.yaml",
            &(component("shared", "mine") + "---\n" + &component("own", "mine")),
        )],
    );
    s.refresh().await;
    s.refresh().await;
    let (_, shared) = s.get("/entities/by-name/component/default/shared").await;
    assert_eq!(shared["metadata"]["description"], "theirs");
    // The other location goes: x.yaml, unchanged, now takes `shared`.
    assert_eq!(s.delete(&format!("/locations/{other}")).await, 204);
    s.refresh().await;
    let (_, shared) = s.get("/entities/by-name/component/default/shared").await;
    assert_eq!(shared["metadata"]["description"], "mine", "{shared:#}");
}

#[tokio::test]
async fn refreshing_an_entity_reads_its_file_alone() {
    let s = CatalogServer::start(&[
        ("a.yaml", &component("alpha", "first")),
        ("b.yaml", &component("beta", "first")),
    ])
    .await;
    let beta = EntityRef::parse("component:default/beta").unwrap();

    // Nothing changed: nothing is written.
    let r = s.catalog.refresh_entity(&beta).await.unwrap();
    assert_eq!(r.unchanged_sources, 1, "{r:?}");
    assert_eq!(r.entities, ["component:default/beta"], "{r:?}");

    // Both files change; refreshing beta reads b.yaml alone.
    write_files(
        &s.path("catalog"),
        &[
            ("a.yaml", &component("alpha", "second")),
            ("b.yaml", &component("beta", "second")),
        ],
    );
    let (status, _) = s
        .post("/refresh", json!({"entityRef": "component:default/beta"}))
        .await;
    assert!(status == 200 || status == 204, "POST /refresh: {status}");
    let (_, beta_now) = s.get("/entities/by-name/component/default/beta").await;
    assert_eq!(beta_now["metadata"]["description"], "second");
    let (_, alpha) = s.get("/entities/by-name/component/default/alpha").await;
    assert_eq!(
        alpha["metadata"]["description"], "first",
        "a.yaml was read too"
    );

    // b.yaml drops beta for gamma: beta is an orphan, gamma is served, and
    // alpha still waits for its own refresh.
    write_files(
        &s.path("catalog"),
        &[("b.yaml", &component("gamma", "first"))],
    );
    let r = s.catalog.refresh_entity(&beta).await.unwrap();
    assert_eq!((r.summary.added, r.summary.orphaned), (1, 1), "{r:?}");
    let (_, orphans) = s
        .get("/entities?filter=metadata.annotations.backstage.io/orphan=true")
        .await;
    assert_eq!(names(&orphans), ["beta"]);
    let (_, alpha) = s.get("/entities/by-name/component/default/alpha").await;
    assert_eq!(alpha["metadata"]["description"], "first");

    // b.yaml now also claims alpha (a.yaml's): a duplicate is the whole
    // location's to report, so the whole location is read.
    write_files(
        &s.path("catalog"),
        &[(
            "b.yaml",
            &(component("gamma", "first") + "---\n" + &component("alpha", "impostor")),
        )],
    );
    let gamma = EntityRef::parse("component:default/gamma").unwrap();
    let r = s.catalog.refresh_entity(&gamma).await.unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("also defined")),
        "{:?}",
        r.problems
    );
    let (_, alpha) = s.get("/entities/by-name/component/default/alpha").await;
    assert_eq!(
        alpha["metadata"]["description"], "second",
        "the whole location was read"
    );
}
