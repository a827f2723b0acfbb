//! One site's build: read its files, render what changed since the stored
//! manifest (`callboard-docs`), and store the changed pages, files and
//! search sections in one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use callboard_catalog::EntityRef;
use callboard_docs::{Build, Files, Manifest};
use callboard_store::docs::{AssetRow, PageRow, SiteRow, SiteUpdate};
use callboard_store::search::{SearchDoc, TECHDOCS_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What is kept between builds in the site row's manifest.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Stored {
    /// The renderer's manifest.
    pub(crate) pages: Manifest,
    /// Page URL by source path (to name removed pages).
    #[serde(default)]
    pub(crate) urls: BTreeMap<String, String>,
}

/// What a build did, for logs, the sync stream and the CLI.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Whether anything stored changed.
    pub updated: bool,
    /// Pages rendered (new or changed).
    pub rendered: usize,
    /// Pages left as they were.
    pub unchanged: usize,
    /// Pages removed.
    pub removed: usize,
    /// Files stored (new or changed).
    pub files: usize,
    /// Problems of the site (every page's included).
    pub problems: Vec<callboard_docs::Problem>,
    /// How long reading and rendering took.
    #[serde(skip)]
    pub took: Duration,
}

/// The portal path of an entity's docs (ends with `/`).
pub fn docs_base(r: &EntityRef) -> String {
    format!(
        "{}/",
        crate::web::entity_href(r).replacen("/catalog/", "/docs/", 1)
    )
}

/// A rendered page as stored: its meta holds the table of contents, the
/// source file (for "edit this page") and its problems.
pub(crate) fn page_row(page: &callboard_docs::Page, updated_at: i64) -> PageRow {
    PageRow {
        path: page.url.clone(),
        title: page.title.clone(),
        html: page.html.clone(),
        meta: json!({"toc": page.toc, "source": page.source, "problems": page.problems}),
        hash: page.hash.clone(),
        updated_at,
    }
}

/// The site's meta as stored: what the portal shows around the pages.
pub(crate) fn site_meta(build: &Build, source: &(&str, String)) -> Value {
    json!({
        "name": build.site.name,
        "description": build.site.description,
        "repo_url": build.site.repo_url,
        "edit_uri": build.site.edit_uri,
        "docs_dir": build.site.docs_dir,
        "nav": build.site.nav,
        "problems": build.problems,
        "source": {"type": source.0, "target": source.1},
        "pages": build.manifest.pages.len(),
    })
}

/// Renders `files` against the stored site, and says what to store.
pub(crate) fn plan(
    entity: &Value,
    r: &EntityRef,
    files: &Files,
    stored: Option<&SiteRow>,
    stored_assets: &BTreeMap<String, String>,
    source: &(&str, String),
) -> (SiteUpdate, Report) {
    let started = Instant::now();
    // Deserialised from the stored value in place: the manifest lists
    // every page, and cloning it first would double the work.
    let previous: Option<Stored> = stored.and_then(|s| Stored::deserialize(&s.manifest).ok());
    let build: Build = callboard_docs::build(files, previous.as_ref().map(|p| &p.pages));
    let now = jiff::Timestamp::now().as_millisecond();
    let base = docs_base(r);
    let entity_title = entity
        .pointer("/metadata/title")
        .and_then(Value::as_str)
        .unwrap_or(&r.name)
        .to_owned();
    let field = |p: &str| entity.pointer(p).and_then(Value::as_str).map(str::to_owned);

    let mut update = SiteUpdate::default();
    for page in &build.pages {
        update.pages.push(page_row(page, now));
        let docs = page
            .sections
            .iter()
            .map(|s| {
                let mut fields = serde_json::Map::new();
                for (k, v) in [
                    ("kind", Some(r.kind.clone())),
                    ("namespace", Some(r.namespace.clone())),
                    ("name", Some(r.name.clone())),
                    ("lifecycle", field("/spec/lifecycle")),
                    ("owner", field("/spec/owner")),
                    ("entityTitle", Some(entity_title.clone())),
                    ("path", Some(page.url.clone())),
                ] {
                    if let Some(v) = v {
                        fields.insert(k.into(), Value::from(v));
                    }
                }
                let anchor = if s.anchor.is_empty() {
                    String::new()
                } else {
                    format!("#{}", s.anchor)
                };
                SearchDoc {
                    doc_type: TECHDOCS_TYPE.into(),
                    key: format!("techdocs:{}:{}{anchor}", r.key(), page.url),
                    entity_ref: Some(r.key()),
                    permission: None,
                    title: if s.title.is_empty() {
                        page.title.clone()
                    } else {
                        s.title.clone()
                    },
                    names: format!("{} {}", page.title, build.site.name),
                    text: s.text.clone(),
                    location: format!("{base}{}{anchor}", page.url),
                    fields,
                }
            })
            .collect();
        update.search.insert(page.url.clone(), docs);
    }
    let old_urls = previous.map(|p| p.urls).unwrap_or_default();
    let new_urls: BTreeMap<String, String> = build
        .manifest
        .pages
        .iter()
        .map(|(source, e)| (source.clone(), e.url.clone()))
        .collect();
    let live: BTreeSet<&String> = new_urls.values().collect();
    update.removed_pages = old_urls
        .values()
        .filter(|u| !live.contains(u))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut wanted_assets = BTreeSet::new();
    for asset in &build.assets {
        wanted_assets.insert(asset.url.clone());
        if stored_assets.get(&asset.url) != Some(&asset.hash)
            && let Some(bytes) = files.get(&asset.source)
        {
            update.assets.push(AssetRow {
                path: asset.url.clone(),
                content_type: asset.content_type.clone(),
                hash: asset.hash.clone(),
                bytes: bytes.to_vec(),
            });
        }
    }
    update.removed_assets = stored_assets
        .keys()
        .filter(|p| !wanted_assets.contains(*p))
        .cloned()
        .collect();

    let meta = site_meta(&build, source);
    // Serialised from borrows: cloning a 5,000-page manifest first costs
    // as much as writing it.
    #[derive(Serialize)]
    struct StoredRef<'a> {
        pages: &'a Manifest,
        urls: &'a BTreeMap<String, String>,
    }
    let manifest = serde_json::to_value(StoredRef {
        pages: &build.manifest,
        urls: &new_urls,
    })
    .unwrap_or(Value::Null);
    let etag = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for (source, page) in &build.manifest.pages {
            h.update(source.as_bytes());
            h.update(page.hash.as_bytes());
        }
        for a in &build.assets {
            h.update(a.hash.as_bytes());
        }
        hex::encode(&h.finalize()[..16])
    };
    let changed = !update.pages.is_empty()
        || !update.removed_pages.is_empty()
        || !update.assets.is_empty()
        || !update.removed_assets.is_empty()
        || stored.is_none_or(|s| s.meta != meta || s.etag != etag);
    if changed {
        update.site = Some(SiteRow {
            entity_ref: r.key(),
            meta,
            manifest,
            built_at: now,
            etag,
        });
    }
    let report = Report {
        updated: changed,
        rendered: build.pages.len(),
        unchanged: build.unchanged.len(),
        removed: update.removed_pages.len(),
        files: update.assets.len(),
        problems: build.problems,
        took: started.elapsed(),
    };
    (update, report)
}
