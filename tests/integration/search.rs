//! Search over the demo catalog through a real server: Backstage's API
//! shape, called as Backstage's search frontend calls it, paging, filters,
//! hostile parameters, a catalog change being findable, and the portal's
//! search page. (Relevance cases run against both stores in the storage
//! conformance suite; restricted readers in `identity.rs`.)

use serde_json::Value;

use crate::support::{TestServer, eventually};
use crate::web::demo_server;

fn results(body: &Value) -> &Vec<Value> {
    body["results"].as_array().expect("results")
}

fn titles(body: &Value) -> Vec<String> {
    results(body)
        .iter()
        .map(|r| {
            r["document"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn query(server: &TestServer, path_and_query: &str) -> (u16, Value) {
    server.get_json(path_and_query).await
}

#[tokio::test]
async fn the_search_api_answers_in_backstages_shape() {
    let (server, _dir) = demo_server().await;

    // As Backstage's SearchClient sends it: qs.stringify of
    // {term, types: [...], filters: {...}, pageLimit}.
    let (status, body) = query(
        &server,
        "/api/search/query?term=ledger&types%5B0%5D=software-catalog&filters%5Bkind%5D=Component&pageLimit=25",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let first = &results(&body)[0];
    assert_eq!(first["type"], "software-catalog", "{first}");
    assert_eq!(first["document"]["title"], "Ledger Service", "{body}");
    assert_eq!(first["document"]["kind"], "Component");
    assert_eq!(
        first["document"]["location"],
        "/catalog/default/component/ledger-service"
    );
    assert_eq!(
        first["document"]["authorization"]["resourceRef"],
        "component:default/ledger-service"
    );
    assert_eq!(first["rank"], 1);
    for field in [
        "lifecycle",
        "owner",
        "namespace",
        "type",
        "componentType",
        "text",
    ] {
        assert!(
            first["document"].get(field).is_some(),
            "{field} missing: {first}"
        );
    }
    let pre = first["highlight"]["preTag"].as_str().unwrap();
    let post = first["highlight"]["postTag"].as_str().unwrap();
    let title = first["highlight"]["fields"]["title"].as_str().unwrap();
    assert_eq!(title, format!("{pre}Ledger{post} Service"));
    assert!(
        results(&body)
            .iter()
            .all(|r| r["document"]["kind"] == "Component"),
        "{body}"
    );
    let n = body["numberOfResults"].as_u64().unwrap();
    assert!(n >= 2, "{body}");

    // Paging by cursor: no overlap, every hit once, ranks continue.
    let (_, all) = query(&server, "/api/search/query?term=payments&pageLimit=100").await;
    let total = all["numberOfResults"].as_u64().unwrap();
    assert!(total > 3, "{all}");
    let mut seen = Vec::new();
    let mut next = Some("/api/search/query?term=payments&pageLimit=2".to_owned());
    while let Some(path) = next {
        let (status, page) = query(&server, &path).await;
        assert_eq!(status, 200, "{page}");
        for r in results(&page) {
            assert_eq!(r["rank"].as_u64().unwrap(), seen.len() as u64 + 1, "{page}");
            seen.push(r["document"]["location"].as_str().unwrap().to_owned());
        }
        next = page["nextPageCursor"].as_str().map(|c| {
            format!(
                "/api/search/query?term=payments&pageLimit=2&pageCursor={}",
                urlencode(c)
            )
        });
    }
    assert_eq!(seen.len() as u64, total);
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a hit on two pages: {seen:?}");

    // Inside words, and a typo within one edit.
    let (_, body) = query(&server, "/api/search/query?term=edger").await;
    assert!(
        titles(&body).contains(&"Ledger Service".to_owned()),
        "{body}"
    );
    let (_, body) = query(&server, "/api/search/query?term=ledgre").await;
    assert!(
        titles(&body).contains(&"Ledger Service".to_owned()),
        "{body}"
    );
    // A lifecycle filter with Backstage's array form.
    let (_, body) = query(
        &server,
        "/api/search/query?term=&filters%5Blifecycle%5D%5B%5D=deprecated&types%5B%5D=software-catalog&pageLimit=100",
    )
    .await;
    assert!(!results(&body).is_empty(), "{body}");
    assert!(
        results(&body)
            .iter()
            .all(|r| r["document"]["lifecycle"] == "deprecated"),
        "{body}"
    );
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn hostile_search_parameters_are_refused_or_inert() {
    let (server, _dir) = demo_server().await;
    for (path, why) in [
        ("/api/search/query?pageLimit=0", "pageLimit 0"),
        ("/api/search/query?pageLimit=101", "pageLimit over 100"),
        ("/api/search/query?pageLimit=x", "pageLimit not a number"),
        (
            "/api/search/query?pageCursor=%%%",
            "a cursor that is not base64",
        ),
        (
            "/api/search/query?pageCursor=eyJwYWdlIjo5OTk5OTk5fQ%3D%3D",
            "a cursor past the deepest page",
        ),
        (
            "/api/search/query?filters%5B%27%29%3B%5D=x",
            "a filter field that is not a name",
        ),
    ] {
        let (status, body) = query(&server, path).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"]["name"], "InputError", "{why}: {body}");
    }
    let many: String = (0..40).map(|i| format!("&filters%5Bf{i}%5D=x")).collect();
    let (status, _) = query(&server, &format!("/api/search/query?term=a{many}")).await;
    assert_eq!(status, 400, "too many filters");
    // Query syntax of any engine is just text.
    for term in [
        "%22",
        "*",
        "a%20OR%20b",
        "NEAR(a%20b)",
        "title%3Ax",
        "%27%3B%20DROP%20TABLE%20entities%3B",
        "((((",
        &"x".repeat(5000),
    ] {
        let (status, body) = query(&server, &format!("/api/search/query?term={term}")).await;
        assert_eq!(status, 200, "{term}: {body}");
    }
    // The page escapes what it echoes.
    let (status, body) = server
        .get("/search?query=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert_eq!(status, 200);
    assert!(!body.contains("<script"), "{body}");
    assert!(body.contains("&lt;script&gt;"), "{body}");
    let (status, _) = server.get("/search?query=x&page=100000").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_catalog_change_is_findable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.yaml");
    let entity = |description: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: quokka\n  description: {description}\nspec: {{type: service, lifecycle: production, owner: team-q}}\n"
        )
    };
    std::fs::write(&file, entity("Counts marsupials")).unwrap();
    let (server, data) = crate::web::server_with(&file, 2).await;
    let (_, body) = query(&server, "/api/search/query?term=marsupials").await;
    assert_eq!(titles(&body), ["quokka"], "{body}");
    std::fs::write(&file, entity("Counts wombats")).unwrap();
    crate::support::refresh_entity(&server, data.path(), "component:default/quokka").await;
    eventually(20, "the new description to be findable", || async {
        let (_, body) = query(&server, "/api/search/query?term=wombats").await;
        (titles(&body) == ["quokka"]).then_some(())
    })
    .await;
    let (_, body) = query(&server, "/api/search/query?term=marsupials").await;
    assert!(results(&body).is_empty(), "the old text is gone: {body}");
}

#[tokio::test]
async fn the_search_page_has_facets_snippets_paging_and_suggestions() {
    let (server, _dir) = demo_server().await;
    let (status, body) = server.get("/search?query=ledger").await;
    assert_eq!(status, 200);
    assert!(!body.contains("<script"), "{body}");
    assert!(body.contains("<mark>Ledger</mark> Service"), "{body}");
    assert!(
        body.contains("href=\"/catalog/default/component/ledger-service\""),
        "{body}"
    );
    assert!(body.contains("aside class=\"facets\""), "{body}");
    assert!(
        body.contains("/search?query=ledger&amp;type=software-catalog"),
        "{body}"
    );
    assert!(
        body.contains("/search?query=ledger&amp;kind=component"),
        "{body}"
    );
    let (_, body) = server.get("/search?query=ledger&kind=api").await;
    assert!(
        body.contains("href=\"/catalog/default/api/ledger-api\"")
            && !body.contains("href=\"/catalog/default/component/ledger-service\""),
        "{body}"
    );
    let (_, body) = server.get("/search?query=&type=software-catalog").await;
    assert!(body.contains("rel=\"next\""), "more than a page: {body}");
    let (_, second) = server
        .get("/search?query=&type=software-catalog&page=1")
        .await;
    assert!(second.contains("rel=\"prev\""), "{second}");
    let (_, body) = server.get("/search?query=zzqqxxjj").await;
    assert!(body.contains("No results for"), "{body}");
    assert!(body.contains("Check the spelling"), "{body}");
    // Every page's header box and the home page's box lead here.
    let (_, home) = server.get("/").await;
    assert!(home.contains("action=\"/search\""), "{home}");
}

#[tokio::test]
async fn plugins_contribute_documents_through_the_host_interface() {
    use callboard_store::search::SearchDoc;
    let (server, _dir) = demo_server().await;
    let state = &server.running.state;
    let search = callboard::search::Search::new(state.stores.search.clone(), state.access.clone());
    let doc = |key: &str, doc_type: &str, location: &str| SearchDoc {
        doc_type: doc_type.into(),
        key: key.into(),
        entity_ref: Some("component:default/payment-gateway".into()),
        permission: None,
        title: format!("Cost report {key}"),
        names: String::new(),
        text: "Monthly spend of the gateway".into(),
        location: location.into(),
        fields: serde_json::Map::new(),
    };
    search
        .put_plugin_documents("cost", vec![doc("march", "", "/plugins/cost/march")])
        .await
        .unwrap();
    let (_, body) = query(&server, "/api/search/query?term=spend").await;
    assert_eq!(results(&body).len(), 1, "{body}");
    assert_eq!(
        results(&body)[0]["type"],
        "cost",
        "the type defaults to the plugin"
    );
    // Refused: a built-in type, a script location, too many documents.
    for (bad, why) in [
        (doc("x", "software-catalog", "/x"), "built-in type"),
        (doc("x", "", "javascript:alert(1)"), "location"),
        (doc("x", "", "//evil.example/x"), "location"),
    ] {
        let e = search
            .put_plugin_documents("cost", vec![bad])
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(why) && e.to_string().contains("plugin cost"),
            "{e}"
        );
    }
    let many = (0..10_001).map(|i| doc(&i.to_string(), "", "/x")).collect();
    assert!(search.put_plugin_documents("cost", many).await.is_err());
    // The refused calls changed nothing; another plugin's keys stay apart.
    search
        .put_plugin_documents("costly", vec![doc("march", "", "/plugins/costly/march")])
        .await
        .unwrap();
    let (_, body) = query(&server, "/api/search/query?term=spend").await;
    assert_eq!(results(&body).len(), 2, "{body}");
    search.remove_plugin_documents("cost").await.unwrap();
    let (_, body) = query(&server, "/api/search/query?term=spend").await;
    assert_eq!(results(&body).len(), 1, "only costly's is left: {body}");
    assert_eq!(results(&body)[0]["type"], "costly");
}
