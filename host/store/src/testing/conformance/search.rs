//! Conformance checks of the search index ([`crate::SearchStore`]).

use serde_json::{Map, Value, json};

use super::{Backend, fresh, load_fixture, ok};
use crate::Stores;
use crate::query::Predicate;
use crate::search::{CATALOG_TYPE, SearchDoc, SearchQuery, SearchResults, TECHDOCS_TYPE, Tier};

/// A document of `doc_type` keyed `key`, governed by `entity` if given.
fn doc(doc_type: &str, key: &str, title: &str, text: &str, entity: Option<&str>) -> SearchDoc {
    let mut fields = Map::new();
    fields.insert("kind".into(), Value::from("Component"));
    SearchDoc {
        doc_type: doc_type.into(),
        key: key.into(),
        entity_ref: entity.map(str::to_owned),
        permission: None,
        title: title.into(),
        names: String::new(),
        text: text.into(),
        location: format!("/docs/{key}"),
        fields,
    }
}

async fn run(stores: &Stores, query: &SearchQuery) -> SearchResults {
    ok(
        &format!("search {:?}", query.terms),
        stores.search.search(query).await,
    )
}

async fn keys(stores: &Stores, term: &str) -> Vec<(String, Tier)> {
    run(stores, &SearchQuery::new(term, 0, 100))
        .await
        .hits
        .into_iter()
        .map(|h| (h.doc.key, h.tier))
        .collect()
}

fn only_keys(hits: &[(String, Tier)]) -> Vec<&str> {
    hits.iter().map(|(k, _)| k.as_str()).collect()
}

/// Whole words over prefixes over infixes; typos only when nothing else
/// matches; titles over text; the complaints Backstage's users filed.
pub async fn search_relevance(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let docs = vec![
        doc(
            "plugin-x",
            "techdocs-guide",
            "TechDocs guide",
            "How to write docs",
            None,
        ),
        doc("plugin-x", "team-page", "Team page", "Who we are", None),
        doc("plugin-x", "biotech", "Lab notes", "The biotech lab", None),
        doc("plugin-x", "petstore", "Petstore", "Sells pets", None),
        doc("plugin-x", "stars", "Stars", "Count the stars", None),
        doc("plugin-x", "stores", "Stores", "Where stores are", None),
        doc("plugin-x", "pay", "Pay", "Pay slips", None),
        doc("plugin-x", "payment", "Payment", "Payment service", None),
        doc(
            "plugin-x",
            "billing-text",
            "Ledger",
            "It mentions billing once",
            None,
        ),
        doc("plugin-x", "billing-title", "Billing", "Invoices", None),
        doc(
            "plugin-x",
            "fraud",
            "Fraud checks",
            "Payment fraud scoring for cards",
            None,
        ),
    ];
    ok(
        "replace_group",
        stores.search.replace_group("plugin:x", docs).await,
    );

    // backstage#27339: "tech" must not find "team"; a prefix ranks above an infix.
    let tech = keys(&stores, "tech").await;
    assert_eq!(
        tech,
        vec![
            ("techdocs-guide".into(), Tier::Prefix),
            ("biotech".into(), Tier::Infix)
        ],
        "tech"
    );
    // backstage#8835: inside words.
    assert_eq!(only_keys(&keys(&stores, "ets").await), ["petstore"], "ets");
    // backstage#17669: "stars" must not find "stores".
    assert_eq!(
        keys(&stores, "stars").await,
        vec![("stars".into(), Tier::Word)]
    );
    // A typo within one edit finds the word when nothing exact does.
    assert_eq!(
        keys(&stores, "stras").await,
        vec![("stars".into(), Tier::Fuzzy)]
    );
    assert_eq!(only_keys(&keys(&stores, "petsotre").await), ["petstore"]);
    assert!(keys(&stores, "zzqqxx").await.is_empty());
    // A whole word ranks above a longer word it starts.
    assert_eq!(
        keys(&stores, "pay").await,
        vec![
            ("pay".into(), Tier::Word),
            ("payment".into(), Tier::Prefix),
            ("fraud".into(), Tier::Prefix)
        ]
    );
    // The title weighs more than the text.
    assert_eq!(
        only_keys(&keys(&stores, "billing").await),
        ["billing-title", "billing-text"]
    );
    // Every term must match.
    assert_eq!(only_keys(&keys(&stores, "payment fraud").await), ["fraud"]);
    // Short terms match word starts only, with longer terms anywhere.
    assert_eq!(only_keys(&keys(&stores, "c fraud").await), ["fraud"]);
    // ... also inside a word: `ets` in "petstore", `se` starting "Sells".
    assert_eq!(
        keys(&stores, "ets se").await,
        vec![("petstore".into(), Tier::Infix)]
    );
    assert!(keys(&stores, "ets wh").await.is_empty(), "ets wh");
    // Diacritics and case are folded.
    assert_eq!(only_keys(&keys(&stores, "PÉTSTORE").await), ["petstore"]);
    // Query syntax is never passed through.
    for hostile in [
        "\"",
        "*",
        "a OR b",
        "NEAR(a b)",
        "title:x",
        "-x",
        "'; DROP TABLE x; --",
        "(((",
        "^x",
    ] {
        let _ = run(&stores, &SearchQuery::new(hostile, 0, 10)).await;
    }
}

/// Catalog documents follow catalog writes: added, changed and removed in
/// the write's own transaction, with Backstage's fields.
pub async fn search_follows_catalog_writes(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = load_fixture(&stores).await;
    let results = run(&stores, &SearchQuery::new("payment", 0, 10)).await;
    assert_eq!(results.hits.len(), 1, "{results:?}");
    let hit = &results.hits[0];
    assert_eq!(hit.doc.doc_type, CATALOG_TYPE);
    assert_eq!(hit.doc.key, "component:default/alpha");
    assert_eq!(hit.doc.location, "/catalog/default/component/Alpha");
    assert_eq!(
        Value::Object(hit.doc.fields.clone()),
        json!({"kind": "Component", "namespace": "default", "name": "Alpha", "type": "service",
            "componentType": "service", "lifecycle": "production", "owner": "team-a"})
    );
    // Names and titles are indexed; a group's display name is text.
    assert_eq!(
        only_keys(&keys(&stores, "beta site").await),
        ["component:default/beta"]
    );
    assert!(only_keys(&keys(&stores, "team a").await).contains(&"group:default/team-a"));

    // A changed description is found by its new words only.
    let mut alpha = super::fixture()[0].clone();
    alpha["metadata"]["description"] = json!("Settles invoices");
    let mut records: Vec<_> = super::fixture()
        .into_iter()
        .map(|e| super::record(e, "file:/catalog/fixture.yaml", None))
        .collect();
    records[0] = super::record(alpha, "file:/catalog/fixture.yaml", None);
    super::write(&stores, &loc, records, std::collections::HashMap::new()).await;
    assert!(keys(&stores, "payment").await.is_empty());
    assert_eq!(
        only_keys(&keys(&stores, "invoices").await),
        ["component:default/alpha"]
    );

    // Removed with the entity.
    let beta = ok(
        "get",
        stores.catalog.get_by_ref("component:default/beta").await,
    )
    .expect("beta");
    let uid = beta["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ok("delete", stores.catalog.delete_by_uid(&uid).await);
    assert!(keys(&stores, "beta").await.is_empty());
    ok(
        "remove_location",
        stores.catalog.remove_location(&loc.id).await,
    );
    let left = run(&stores, &SearchQuery::new("", 0, 100)).await;
    assert!(left.hits.is_empty(), "{left:?}");
}

/// The reader's scope and permissions filter inside the query; types,
/// field filters, facets, paging and groups.
pub async fn search_scope_filters_and_paging(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let mut sections: Vec<SearchDoc> = (0..25)
        .map(|i| {
            doc(
                TECHDOCS_TYPE,
                &format!("component:default/alpha/section-{i:02}"),
                &format!("Alpha section {i}"),
                "Runbook for the alpha service",
                Some("component:default/alpha"),
            )
        })
        .collect();
    let mut api_doc = doc(
        TECHDOCS_TYPE,
        "api:default/alpha-api/index",
        "Alpha API guide",
        "Runbook",
        Some("api:default/alpha-api"),
    );
    api_doc.fields.insert("kind".into(), Value::from("API"));
    sections.push(api_doc);
    ok(
        "replace_group",
        stores
            .search
            .replace_group("techdocs:alpha", sections)
            .await,
    );
    let mut secret = doc("plugin-y", "secret", "Alpha secret", "runbook", None);
    secret.fields.clear();
    secret.permission = Some("plugin.y.read".into());
    ok(
        "replace_group",
        stores.search.replace_group("plugin:y", vec![secret]).await,
    );

    let all = run(&stores, &SearchQuery::new("alpha", 0, 10)).await;
    assert_eq!(all.total.count, 29, "{:?}", all.types);
    assert_eq!(all.hits.len(), 10);
    assert_eq!(
        all.types,
        vec![
            (TECHDOCS_TYPE.to_owned(), 26),
            (CATALOG_TYPE.to_owned(), 2),
            ("plugin-y".to_owned(), 1)
        ]
    );
    // Paging: pages do not overlap and cover everything.
    let mut seen = std::collections::BTreeSet::new();
    for offset in [0, 10, 20] {
        let page = run(&stores, &SearchQuery::new("alpha", offset, 10)).await;
        for hit in page.hits {
            assert!(seen.insert(hit.doc.key.clone()), "{} twice", hit.doc.key);
        }
    }
    assert_eq!(seen.len(), 29);

    // Types.
    let mut q = SearchQuery::new("alpha", 0, 100);
    q.types = vec![CATALOG_TYPE.into()];
    let r = run(&stores, &q).await;
    assert_eq!(r.total.count, 2);
    assert_eq!(r.types.len(), 3, "the type facet ignores the type filter");
    // Field filters, compared lower-cased; the kind facet ignores its filter.
    let mut q = SearchQuery::new("alpha", 0, 100);
    q.filters = vec![("kind".into(), vec!["api".into()])];
    let r = run(&stores, &q).await;
    assert_eq!(r.total.count, 2, "{r:?}");
    assert_eq!(r.kinds[0], ("component".to_owned(), 26));
    let mut q = SearchQuery::new("", 0, 100);
    q.filters = vec![("lifecycle".into(), vec!["experimental".into()])];
    assert_eq!(run(&stores, &q).await.total.count, 1);

    // A reader who may read components only: the API, its docs and the
    // plugin document needing a permission they lack are not counted.
    let mut q = SearchQuery::new("alpha", 0, 100);
    q.scope = Some(Predicate::eq("kind", &["component"]));
    q.permissions = Some(Vec::new());
    let r = run(&stores, &q).await;
    assert_eq!(r.total.count, 26, "{:?}", r.types);
    assert!(
        r.hits
            .iter()
            .all(|h| h.doc.entity_ref.as_deref() == Some("component:default/alpha"))
    );
    q.permissions = Some(vec!["plugin.y.read".into()]);
    assert_eq!(run(&stores, &q).await.total.count, 27);

    // Groups replace and remove their documents.
    ok(
        "replace_group",
        stores
            .search
            .replace_group(
                "techdocs:alpha",
                vec![doc(TECHDOCS_TYPE, "one", "Alpha one", "", None)],
            )
            .await,
    );
    assert_eq!(
        run(&stores, &SearchQuery::new("alpha", 0, 100))
            .await
            .total
            .count,
        4
    );
    let counts = ok("counts", stores.search.counts().await);
    assert_eq!(counts.get(TECHDOCS_TYPE), Some(&1));
    assert_eq!(
        ok("remove", stores.search.remove_groups("techdocs:").await),
        1
    );
    assert_eq!(
        ok("remove", stores.search.remove_groups("techdocs:").await),
        0
    );
    assert_eq!(
        run(&stores, &SearchQuery::new("alpha", 0, 100))
            .await
            .total
            .count,
        3
    );
}
