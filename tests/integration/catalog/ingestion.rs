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
