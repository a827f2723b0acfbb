//! Every `/api/catalog` endpoint, through HTTP.

use serde_json::{Value, json};

use super::harness::{CatalogServer, FIXTURE, names};

#[tokio::test]
async fn entities_with_filters_fields_order_and_pages() {
    let s = CatalogServer::start(FIXTURE).await;

    let (status, all) = s.get("/entities").await;
    assert_eq!(status, 200);
    // 11 entities + the generated Location of the configured location
    assert_eq!(all.as_array().unwrap().len(), 13, "{all:#}");

    let (_, components) = s.get("/entities?filter=kind=component").await;
    assert_eq!(
        names(&components),
        [
            "checkout-service",
            "checkout-web",
            "label-printer",
            "payments"
        ]
    );

    // conditions in one filter AND, case-insensitive; repeated filters OR
    let (_, v) = s
        .get("/entities?filter=kind=Component,spec.lifecycle=PRODUCTION,metadata.tags=java")
        .await;
    assert_eq!(names(&v), ["checkout-service"]);
    let (_, v) = s
        .get("/entities?filter=kind=api&filter=kind=resource")
        .await;
    assert_eq!(names(&v), ["checkout-api", "orders-db"]);
    // existence, array items as keys, relations, annotation keys with a slash
    let (_, v) = s
        .get("/entities?filter=kind=component,spec.consumesApis")
        .await;
    assert_eq!(names(&v), ["checkout-web"]);
    let (_, v) = s.get("/entities?filter=metadata.tags.legacy").await;
    assert_eq!(names(&v), ["label-printer"]);
    let (_, v) = s
        .get("/entities?filter=relations.ownedby=user:default/alice")
        .await;
    assert_eq!(names(&v), ["label-printer"]);
    let (_, v) = s
        .get("/entities?filter=relations.ownerOf=component:default/checkout-web")
        .await;
    assert_eq!(names(&v), ["team-a"]);
    let (_, v) = s
        .get("/entities?filter=metadata.annotations.github.com/project-slug=example/checkout-web")
        .await;
    assert_eq!(names(&v), ["checkout-web"]);
    let (_, v) = s.get("/entities?filter=metadata.namespace=finance").await;
    assert_eq!(names(&v), ["payments"]);

    // fields
    let (_, v) = s
        .get("/entities?filter=kind=user&fields=kind,metadata.name")
        .await;
    assert_eq!(v, json!([{"kind": "User", "metadata": {"name": "alice"}}]));

    // order, then pages through the link header
    let (_, v) = s
        .get("/entities?filter=kind=component&order=desc:metadata.name&fields=metadata.name")
        .await;
    let ordered: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        ordered,
        [
            "payments",
            "label-printer",
            "checkout-web",
            "checkout-service"
        ]
    );

    let mut seen = Vec::new();
    let mut next =
        Some("/entities?filter=kind=component&order=asc:metadata.name&limit=3".to_owned());
    while let Some(url) = next.take() {
        let response = s.get_raw(&url).await;
        assert_eq!(response.status(), 200);
        next = response.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with("rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
        let page: Value = response.json().await.unwrap();
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(
        seen,
        [
            "checkout-service",
            "checkout-web",
            "label-printer",
            "payments"
        ]
    );

    let (_, v) = s
        .get("/entities?filter=kind=component&order=asc:metadata.name&offset=1&limit=2")
        .await;
    let page: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["checkout-web", "label-printer"]);

    let (status, err) = s.get("/entities?order=sideways:metadata.name").await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["name"], "InputError");
}

#[tokio::test]
async fn served_entities_carry_catalog_fields_and_relations() {
    let s = CatalogServer::start(FIXTURE).await;
    let (status, e) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;
    assert_eq!(status, 200);
    let uid = e["metadata"]["uid"].as_str().unwrap();
    assert_eq!(uid.len(), 36);
    assert!(
        e["metadata"]["etag"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(e["metadata"]["generation"], 1);
    assert_eq!(e["metadata"]["namespace"], "default");
    let managed = e["metadata"]["annotations"]["backstage.io/managed-by-location"]
        .as_str()
        .unwrap();
    assert!(
        managed.starts_with("file:") && managed.ends_with("catalog/shop.yaml"),
        "{managed}"
    );
    let origin = e["metadata"]["annotations"]["backstage.io/managed-by-origin-location"]
        .as_str()
        .unwrap();
    assert!(origin.ends_with("catalog/*.yaml"), "{origin}");
    let relations = e["relations"].as_array().unwrap();
    for expected in [
        json!({"type": "ownedBy", "targetRef": "group:default/team-a"}),
        json!({"type": "partOf", "targetRef": "system:default/shop"}),
        json!({"type": "consumesApi", "targetRef": "api:default/checkout-api"}),
        json!({"type": "dependsOn", "targetRef": "resource:default/orders-db"}),
    ] {
        assert!(
            relations.contains(&expected),
            "{expected} missing from {relations:?}"
        );
    }
    // the reverse direction lands on the targets
    let (_, team) = s.get("/entities/by-name/group/default/team-a").await;
    let rels = team["relations"].as_array().unwrap();
    assert!(
        rels.contains(&json!({"type": "ownerOf", "targetRef": "component:default/checkout-web"}))
    );
    assert!(rels.contains(&json!({"type": "childOf", "targetRef": "group:default/engineering"})));
    assert!(rels.contains(&json!({"type": "hasMember", "targetRef": "user:default/alice"})));
    let (_, api) = s.get("/entities/by-name/api/default/checkout-api").await;
    let rels = api["relations"].as_array().unwrap();
    assert!(rels.contains(
        &json!({"type": "apiProvidedBy", "targetRef": "component:default/checkout-service"})
    ));
    assert!(rels.contains(
        &json!({"type": "apiConsumedBy", "targetRef": "component:default/checkout-web"})
    ));

    // by-uid, and case-insensitive names
    let (status, same) = s.get(&format!("/entities/by-uid/{uid}")).await;
    assert_eq!(status, 200);
    assert_eq!(same["metadata"]["name"], "checkout-web");
    let (status, _) = s
        .get("/entities/by-name/Component/DEFAULT/Checkout-Web")
        .await;
    assert_eq!(status, 200);

    // Backstage's error body
    let (status, err) = s.get("/entities/by-name/component/default/nope").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["name"], "NotFoundError");
    assert_eq!(
        err["request"],
        json!({"method": "GET", "url": "/entities/by-name/component/default/nope"})
    );
    assert_eq!(err["response"], json!({"statusCode": 404}));
    let (status, err) = s
        .get("/entities/by-uid/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(
        (status, err["error"]["name"].as_str()),
        (404, Some("NotFoundError"))
    );
}

#[tokio::test]
async fn by_query_cursors_totals_and_full_text() {
    let s = CatalogServer::start(FIXTURE).await;
    let (status, first) = s
        .get("/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=2")
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["totalItems"], 4);
    assert_eq!(names(&first["items"]), ["checkout-service", "checkout-web"]);
    assert!(first["pageInfo"].get("prevCursor").is_none());
    let next = first["pageInfo"]["nextCursor"].as_str().unwrap();
    // with a cursor, other parameters are ignored
    let (_, second) = s
        .get(&format!(
            "/entities/by-query?cursor={}&filter=kind=api",
            enc(next)
        ))
        .await;
    assert_eq!(names(&second["items"]), ["label-printer", "payments"]);
    assert_eq!(second["totalItems"], 4);
    assert!(second["pageInfo"].get("nextCursor").is_none());
    let prev = second["pageInfo"]["prevCursor"].as_str().unwrap();
    let (_, back) = s
        .get(&format!("/entities/by-query?cursor={}", enc(prev)))
        .await;
    assert_eq!(names(&back["items"]), ["checkout-service", "checkout-web"]);

    // default limit is 20; fields apply
    let (_, v) = s.get("/entities/by-query?fields=metadata.name").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 13);
    assert_eq!(
        v["items"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["metadata"]
    );

    // full text: substring, case-insensitive, over default fields or given ones
    let (_, v) = s
        .get("/entities/by-query?fullTextFilterTerm=CHECKOUT")
        .await;
    assert_eq!(
        names(&v["items"]),
        ["checkout-api", "checkout-service", "checkout-web"]
    );
    let (_, v) = s.get("/entities/by-query?fullTextFilterTerm=payment&fullTextFilterFields=metadata.description").await;
    assert_eq!(names(&v["items"]), ["checkout-service"]);
    let (_, v) = s
        .get("/entities/by-query?fullTextFilterTerm=ui&fullTextFilterFields=metadata.name")
        .await;
    assert_eq!(v["totalItems"], 0);
    let (_, v) = s.get("/entities/by-query?fullTextFilterTerm=alice%40example&fullTextFilterFields=spec.profile.email").await;
    assert_eq!(names(&v["items"]), ["alice"]);

    let (status, err) = s.get("/entities/by-query?cursor=not-a-cursor").await;
    assert_eq!(
        (status, err["error"]["name"].as_str()),
        (400, Some("InputError"))
    );
}

fn enc(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

#[tokio::test]
async fn post_by_query_with_predicates() {
    let s = CatalogServer::start(FIXTURE).await;
    let q = |query: Value| json!({"query": query, "limit": 50});
    let (status, v) = s
        .post(
            "/entities/by-query",
            q(json!({"kind": "component", "spec.lifecycle": "production"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&v["items"]),
        ["checkout-service", "checkout-web", "payments"]
    );
    let (_, v) = s
        .post(
            "/entities/by-query",
            q(json!({"$any": [{"kind": "api"}, {"metadata.tags": {"$contains": "legacy"}}]})),
        )
        .await;
    assert_eq!(names(&v["items"]), ["checkout-api", "label-printer"]);
    let (_, v) = s
        .post("/entities/by-query", q(json!({"$all": [{"kind": "component"}, {"$not": {"metadata.tags": {"$in": ["java", "web"]}}}]})))
        .await;
    assert_eq!(names(&v["items"]), ["payments"]);
    let (_, v) = s
        .post(
            "/entities/by-query",
            q(json!({"metadata.name": {"$hasPrefix": "CHECKOUT-"}})),
        )
        .await;
    assert_eq!(
        names(&v["items"]),
        ["checkout-api", "checkout-service", "checkout-web"]
    );
    let (_, v) = s
        .post(
            "/entities/by-query",
            q(json!({"kind": "group", "spec.parent": {"$exists": false}})),
        )
        .await;
    assert_eq!(names(&v["items"]), ["engineering"]);

    // pages with cursors that carry the predicate
    let body = json!({"query": {"kind": "component"}, "limit": 3, "orderBy": [{"field": "metadata.name", "order": "desc"}]});
    let (_, p1) = s.post("/entities/by-query", body).await;
    assert_eq!(p1["totalItems"], 4);
    let ordered: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(ordered, ["payments", "label-printer", "checkout-web"]);
    let cursor = p1["pageInfo"]["nextCursor"].as_str().unwrap();
    let (_, p2) = s
        .post("/entities/by-query", json!({"cursor": cursor}))
        .await;
    assert_eq!(names(&p2["items"]), ["checkout-service"]);

    let (status, err) = s
        .post(
            "/entities/by-query",
            json!({"query": {"kind": {"$regex": "x"}}}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["name"].as_str()),
        (400, Some("InputError"))
    );
}

#[tokio::test]
async fn by_refs_ancestry_and_facets() {
    let s = CatalogServer::start(FIXTURE).await;
    let (status, v) = s
        .post(
            "/entities/by-refs",
            json!({"entityRefs": ["component:default/checkout-web", "component:default/missing", "api:checkout-api", "bad:"],
                   "fields": ["metadata.name"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"items": [{"metadata": {"name": "checkout-web"}}, null, {"metadata": {"name": "checkout-api"}}, null]})
    );
    let (_, v) = s
        .post(
            "/entities/by-refs?filter=kind=api",
            json!({"entityRefs": ["component:default/checkout-web", "api:default/checkout-api"]}),
        )
        .await;
    assert!(v["items"][0].is_null() && v["items"][1]["kind"] == "API");

    // ancestry: entity <- Location "more" <- generated location of the glob
    let (status, v) = s
        .get("/entities/by-name/component/finance/payments/ancestry")
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["rootEntityRef"], "component:finance/payments");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{v:#}");
    assert_eq!(items[0]["entity"]["metadata"]["name"], "payments");
    assert_eq!(
        items[0]["parentEntityRefs"],
        json!(["location:default/more"])
    );
    assert_eq!(items[1]["entity"]["metadata"]["name"], "more");
    assert!(
        items[2]["entity"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("generated-")
    );
    assert_eq!(items[2]["parentEntityRefs"], json!([]));
    let (status, _) = s
        .get("/entities/by-name/component/default/nope/ancestry")
        .await;
    assert_eq!(status, 404);

    let (status, v) = s
        .get("/entity-facets?facet=kind&facet=metadata.tags&filter=kind=component")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["facets"]["kind"],
        json!([{"value": "Component", "count": 4}])
    );
    assert_eq!(
        v["facets"]["metadata.tags"],
        json!([{"value": "java", "count": 2}, {"value": "legacy", "count": 1}, {"value": "typescript", "count": 1}, {"value": "web", "count": 1}])
    );
    let (_, v) = s.get("/entity-facets?facet=spec.type").await;
    assert!(
        v["facets"]["spec.type"]
            .as_array()
            .unwrap()
            .contains(&json!({"value": "service", "count": 3}))
    );
    let (_, v) = s
        .post(
            "/entity-facets",
            json!({"facets": ["spec.lifecycle"], "query": {"kind": "component"}}),
        )
        .await;
    assert_eq!(
        v["facets"]["spec.lifecycle"],
        json!([{"value": "production", "count": 3}, {"value": "experimental", "count": 1}])
    );
    let (_, v) = s
        .get("/entity-facets?facet=relations.ownedBy&filter=kind=component")
        .await;
    assert_eq!(
        v["facets"]["relations.ownedBy"],
        json!([{"value": "group:default/team-a", "count": 3}, {"value": "user:default/alice", "count": 1}])
    );
}

#[tokio::test]
async fn locations_lifecycle() {
    let s = CatalogServer::start(FIXTURE).await;
    let (status, v) = s.get("/locations").await;
    assert_eq!(status, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["data"]["type"], "file");

    super::harness::write_files(
        &s.path("new"),
        &[(
            "a.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: newcomer}\nspec: {type: service, lifecycle: beta, owner: team-a}\n",
        )],
    );
    let target = s.path("new/a.yaml").display().to_string();
    let (status, dry) = s
        .post(
            "/locations?dryRun=true",
            json!({"type": "file", "target": target}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(dry["exists"], false);
    assert!(
        dry["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["metadata"]["name"] == "newcomer")
    );
    let (status, _) = s.get("/entities/by-name/component/default/newcomer").await;
    assert_eq!(status, 404, "a dry run stores nothing");

    let (status, added) = s
        .post("/locations", json!({"type": "file", "target": target}))
        .await;
    assert_eq!(status, 201);
    let id = added["location"]["id"].as_str().unwrap().to_owned();
    assert_eq!(added["location"]["target"], target);
    assert!(
        added["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["metadata"]["name"] == "newcomer")
    );
    let (status, _) = s.get("/entities/by-name/component/default/newcomer").await;
    assert_eq!(status, 200);

    let (status, err) = s
        .post("/locations", json!({"type": "file", "target": target}))
        .await;
    assert_eq!(
        (status, err["error"]["name"].as_str()),
        (409, Some("ConflictError"))
    );
    let (status, err) = s
        .post("/locations", json!({"type": "ftp", "target": "x"}))
        .await;
    assert_eq!(
        (status, err["error"]["name"].as_str()),
        (400, Some("InputError"))
    );

    let (status, v) = s.get(&format!("/locations/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(v, json!({"id": id, "type": "file", "target": target}));
    let (status, v) = s
        .get("/locations/by-entity/component/default/newcomer")
        .await;
    assert_eq!((status, v["id"].as_str()), (200, Some(id.as_str())));
    let (status, _) = s.get("/locations/by-entity/component/default/nope").await;
    assert_eq!(status, 404);

    let (status, v) = s
        .post(
            "/analyze-location",
            json!({"location": {"type": "file", "target": target}}),
        )
        .await;
    assert_eq!(status, 200);
    let files = v["existingEntityFiles"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["isRegistered"], true);
    assert_eq!(files[0]["entity"]["metadata"]["name"], "newcomer");

    assert_eq!(s.delete(&format!("/locations/{id}")).await, 204);
    let (status, _) = s.get("/entities/by-name/component/default/newcomer").await;
    assert_eq!(status, 404, "removing a location removes its entities");
    let (status, err) = s.get(&format!("/locations/{id}")).await;
    assert_eq!(
        (status, err["error"]["name"].as_str()),
        (404, Some("NotFoundError"))
    );
    assert_eq!(s.delete(&format!("/locations/{id}")).await, 404);
}

#[tokio::test]
async fn delete_refresh_and_validate() {
    let s = CatalogServer::start(FIXTURE).await;
    let (_, e) = s.get("/entities/by-name/resource/default/orders-db").await;
    let uid = e["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(s.delete(&format!("/entities/by-uid/{uid}")).await, 204);
    assert_eq!(s.delete("/entities/by-uid/no-such-uid").await, 204);
    let (status, _) = s.get("/entities/by-name/resource/default/orders-db").await;
    assert_eq!(status, 404);
    // refreshing any entity of the location brings it back
    let (status, _) = s
        .post(
            "/refresh",
            json!({"entityRef": "component:default/checkout-web"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s.get("/entities/by-name/resource/default/orders-db").await;
    assert_eq!(status, 200);
    let (status, err) = s
        .post("/refresh", json!({"entityRef": "component:default/nope"}))
        .await;
    assert_eq!(
        (status, err["error"]["name"].as_str()),
        (404, Some("NotFoundError"))
    );

    let good = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "ok"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
    let (status, _) = s
        .post(
            "/validate-entity",
            json!({"location": "url:https://example.com/x.yaml", "entity": good}),
        )
        .await;
    assert_eq!(status, 200);
    let bad = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "not ok!"}, "spec": {"type": "service", "owner": "team-a"}});
    let (status, v) = s
        .post(
            "/validate-entity",
            json!({"location": "url:https://example.com/x.yaml", "entity": bad}),
        )
        .await;
    assert_eq!(status, 400);
    let messages: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("\"metadata.name\" is not valid")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("\"spec.lifecycle\" is required")),
        "{messages:?}"
    );
}

/// Counts and facets are remembered until the catalog changes: every write
/// (adding a location, deleting an entity, removing a location) shows in the
/// next answer at once, and an unchanged catalog answers the same.
#[tokio::test]
async fn counts_and_facets_follow_each_write_at_once() {
    let s = CatalogServer::start(FIXTURE).await;
    let total = |v: &serde_json::Value| v["totalItems"].as_u64().unwrap();
    let beta = |v: &serde_json::Value| {
        v["facets"]["spec.lifecycle"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"] == "beta")
            .map_or(0, |c| c["count"].as_u64().unwrap())
    };
    let count_url = "/entities/by-query?filter=kind=component&limit=1";
    let facets_url = "/entity-facets?facet=spec.lifecycle&filter=kind=component";
    let (_, before) = s.get(count_url).await;
    let (_, facets_before) = s.get(facets_url).await;
    assert_eq!(s.get(count_url).await.1["totalItems"], before["totalItems"]);
    assert_eq!(s.get(facets_url).await.1, facets_before);

    super::harness::write_files(
        &s.path("more"),
        &[(
            "a.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: counted}\nspec: {type: service, lifecycle: beta, owner: team-a}\n",
        )],
    );
    let target = s.path("more/a.yaml").display().to_string();
    let (status, added) = s
        .post("/locations", json!({"type": "file", "target": target}))
        .await;
    assert_eq!(status, 201);
    let (_, after) = s.get(count_url).await;
    assert_eq!(total(&after), total(&before) + 1, "count after adding");
    let (_, facets_after) = s.get(facets_url).await;
    assert_eq!(
        beta(&facets_after),
        beta(&facets_before) + 1,
        "facets after adding"
    );

    let (_, entity) = s.get("/entities/by-name/component/default/counted").await;
    let uid = entity["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(s.delete(&format!("/entities/by-uid/{uid}")).await, 204);
    assert_eq!(
        total(&s.get(count_url).await.1),
        total(&before),
        "count after deleting"
    );
    assert_eq!(
        beta(&s.get(facets_url).await.1),
        beta(&facets_before),
        "facets after deleting"
    );

    let id = added["location"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.delete(&format!("/locations/{id}")).await, 204);
    assert_eq!(
        total(&s.get(count_url).await.1),
        total(&before),
        "count after removing"
    );
    assert_eq!(
        s.get(facets_url).await.1,
        facets_before,
        "facets after removing"
    );
}
