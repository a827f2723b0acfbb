//! Conformance checks of rendered docs ([`crate::DocsStore`]).

use std::collections::BTreeMap;

use serde_json::json;

use super::{Backend, fresh, load_fixture, ok};
use crate::docs::{AssetRow, PageRow, SiteRow, SiteUpdate};
use crate::search::{SearchDoc, SearchQuery, TECHDOCS_TYPE};

const ALPHA: &str = "component:default/alpha";

fn page(path: &str, title: &str, at: i64) -> PageRow {
    PageRow {
        path: path.into(),
        title: title.into(),
        html: format!("<h1>{title}</h1>"),
        meta: json!({"toc": [{"level": 2, "id": "a", "title": "A"}]}),
        hash: format!("h-{title}"),
        updated_at: at,
    }
}

fn section(path: &str, anchor: &str, title: &str, text: &str) -> SearchDoc {
    SearchDoc {
        doc_type: TECHDOCS_TYPE.into(),
        key: format!("techdocs:{ALPHA}:{path}#{anchor}"),
        entity_ref: Some(ALPHA.into()),
        permission: None,
        title: title.into(),
        names: String::new(),
        text: text.into(),
        location: format!("/docs/default/component/alpha/{path}#{anchor}"),
        fields: serde_json::Map::new(),
    }
}

async fn found(stores: &crate::Stores, term: &str) -> Vec<String> {
    let mut q = SearchQuery::new(term, 0, 100);
    q.types = vec![TECHDOCS_TYPE.into()];
    ok("search", stores.search.search(&q).await)
        .hits
        .into_iter()
        .map(|h| h.doc.location)
        .collect()
}

/// A build's site, pages, files and search documents commit together;
/// a later build changes only what it names; removal takes everything.
pub async fn docs_sites_pages_assets_and_search(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let site = SiteRow {
        entity_ref: ALPHA.into(),
        meta: json!({"name": "Alpha docs"}),
        manifest: json!({"pages": {"index.md": "h1"}}),
        built_at: 1000,
        etag: "e1".into(),
    };
    let first = SiteUpdate {
        site: Some(site.clone()),
        pages: vec![page("", "Home", 1000), page("runbook/", "Runbook", 1000)],
        assets: vec![AssetRow {
            path: "img/a.png".into(),
            content_type: "image/png".into(),
            hash: "ha".into(),
            bytes: vec![0x89, b'P', b'N', b'G', 0, 255],
        }],
        search: BTreeMap::from([
            (
                "".to_owned(),
                vec![section("", "", "Home", "Welcome aboard")],
            ),
            (
                "runbook/".to_owned(),
                vec![section(
                    "runbook/",
                    "restart",
                    "Restart",
                    "Restart the flux capacitor",
                )],
            ),
        ]),
        ..SiteUpdate::default()
    };
    ok("put_site", stores.docs.put_site(ALPHA, first).await);
    assert_eq!(
        ok("site", stores.docs.site(ALPHA, true).await),
        Some(site.clone())
    );
    let light = ok("site", stores.docs.site(ALPHA, false).await).expect("site");
    assert_eq!(light.manifest, serde_json::Value::Null);
    assert_eq!(light.meta, site.meta);
    let listed = ok("sites", stores.docs.sites().await);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].meta, site.meta);
    assert_eq!(
        listed[0].manifest,
        serde_json::Value::Null,
        "listing leaves manifests out"
    );
    assert_eq!(
        ok("page", stores.docs.page(ALPHA, "runbook/").await),
        Some(page("runbook/", "Runbook", 1000))
    );
    assert_eq!(ok("page", stores.docs.page(ALPHA, "missing/").await), None);
    assert_eq!(
        ok("page", stores.docs.page("component:default/beta", "").await),
        None
    );
    assert_eq!(
        ok("titles", stores.docs.page_titles(ALPHA).await),
        vec![
            ("".to_owned(), "Home".to_owned()),
            ("runbook/".to_owned(), "Runbook".to_owned())
        ]
    );
    let asset = ok("asset", stores.docs.asset(ALPHA, "img/a.png").await).expect("asset");
    assert_eq!(asset.bytes, vec![0x89, b'P', b'N', b'G', 0, 255]);
    assert_eq!(
        ok("hashes", stores.docs.asset_hashes(ALPHA).await),
        BTreeMap::from([("img/a.png".to_owned(), "ha".to_owned())])
    );
    assert_eq!(
        found(&stores, "flux").await,
        ["/docs/default/component/alpha/runbook/#restart"]
    );

    // A second build changes one page, removes one, drops the file.
    let second = SiteUpdate {
        site: Some(SiteRow {
            etag: "e2".into(),
            built_at: 2000,
            ..site.clone()
        }),
        pages: vec![page("", "Start", 2000)],
        removed_pages: vec!["runbook/".into()],
        removed_assets: vec!["img/a.png".into()],
        search: BTreeMap::from([(
            "".to_owned(),
            vec![section("", "", "Start", "Welcome again")],
        )]),
        ..SiteUpdate::default()
    };
    ok("put_site", stores.docs.put_site(ALPHA, second).await);
    assert_eq!(ok("page", stores.docs.page(ALPHA, "runbook/").await), None);
    assert_eq!(
        ok("page", stores.docs.page(ALPHA, "").await).map(|p| p.title),
        Some("Start".into())
    );
    assert!(
        found(&stores, "flux").await.is_empty(),
        "a removed page's sections remain"
    );
    assert_eq!(found(&stores, "again").await.len(), 1);
    assert!(
        found(&stores, "aboard").await.is_empty(),
        "a changed page's old sections remain"
    );
    assert!(ok("asset", stores.docs.asset(ALPHA, "img/a.png").await).is_none());
    assert_eq!(
        ok("site", stores.docs.site(ALPHA, false).await).map(|s| s.etag),
        Some("e2".into())
    );

    // Removal takes pages and search documents with it.
    assert!(ok("remove_site", stores.docs.remove_site(ALPHA).await));
    assert!(!ok("remove_site", stores.docs.remove_site(ALPHA).await));
    assert_eq!(ok("site", stores.docs.site(ALPHA, false).await), None);
    assert_eq!(ok("page", stores.docs.page(ALPHA, "").await), None);
    assert!(found(&stores, "again").await.is_empty());
}
