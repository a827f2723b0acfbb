//! The conformance suite every backend passes: the semantics of the
//! original SQLite catalog, key-value store and the coordination traits,
//! checked through [`Stores`] only.
//!
//! A backend's test file implements [`Backend`] (how to create an empty
//! database and open it, possibly twice, as two replicas would) and expands
//! [`conformance_tests!`](crate::conformance_tests), which makes one
//! `#[tokio::test]` per check:
//!
//! ```no_run
//! use callboard_store::Stores;
//! use callboard_store::testing::conformance::Backend;
//!
//! struct Mine;
//!
//! #[async_trait::async_trait]
//! impl Backend for Mine {
//!     async fn create(&self) -> String {
//!         unimplemented!("a fresh empty database")
//!     }
//!     async fn open(&self, db: &str) -> Stores {
//!         unimplemented!("open {db}")
//!     }
//! }
//!
//! callboard_store::conformance_tests!(Mine);
//! # fn main() {}
//! ```
//!
//! Each check is also a public async function taking `&dyn Backend`, so a
//! backend may run one on its own. Records are built the way the catalog
//! builds them ([`record`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::catalog::{
    ApplySummary, Change, EntityRecord, Finish, LocationRow, MAX_SEARCH_VALUE, ORPHAN_ANNOTATION,
    Put, RelationRow,
};
use crate::coord::CATALOG_TOPIC;
use crate::kv::{KvError, MAX_KEY_BYTES, Quota};
use crate::query::{
    FULL_TEXT_FIELDS, FacetCount, FullTextFilter, Matcher, OrderField, Page, Predicate, Selection,
    Start,
};
use crate::{Stores, coord::Lease};

#[doc(hidden)]
pub use tokio as __tokio;

mod docs;
pub use docs::docs_sites_pages_assets_and_search;
mod search;
pub use search::{
    search_follows_catalog_writes, search_relevance, search_scope_filters_and_paging,
};

/// How a backend's tests get databases.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A fresh, empty database: a temporary directory's path, or a
    /// PostgreSQL URL. It must outlive the test (keep temporary directories
    /// in the backend value).
    async fn create(&self) -> String;
    /// Opens `db` (made by [`Backend::create`]). Called twice on one
    /// database, the two [`Stores`] act as two replicas sharing it.
    async fn open(&self, db: &str) -> Stores;
}

/// Expands to one `#[tokio::test]` per conformance check (multi-threaded,
/// 2 workers), each running `callboard_store::testing::conformance::<check>`
/// against the backend `$backend` evaluates to (an expression evaluated
/// once per test), with a time limit.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@each $backend;
            writer_adds_and_assigns_identity,
            writer_unchanged_and_updates,
            writer_duplicates_and_conflicts,
            writer_orphans_and_keep,
            writer_unchanged_sources,
            writer_dropped_stores_nothing,
            writer_begin_needs_location,
            reads_by_ref_uid_and_keys,
            predicates,
            full_text,
            ordering,
            pagination,
            facets,
            stream,
            ancestry,
            locations_insert_and_lookup,
            locations_concurrent_insert,
            locations_remove_and_sync,
            delete_by_uid,
            feed_publish_read_head,
            feed_catalog_changes,
            feed_wait_wakes_across_handles,
            feed_prune,
            leases_exclusive_and_renew,
            leases_expiry_takeover,
            leases_complete_release_make_due,
            kv_basics,
            kv_quota,
            kv_keys_and_errors,
            kv_increment,
            kv_concurrent_increments,
            kv_concurrent_quota,
            kv_list_purge_isolation,
            admin_ping_and_schema,
            admin_shared_secret,
            sessions_shared_and_expiring,
            plugin_files_revisions_and_removals,
            counters_summed_over_handles,
            tokens_use_expiry_and_revocation,
            policy_drafts_and_publication,
            policy_seed_once,
            audit_pages_and_prune,
            search_relevance,
            search_follows_catalog_writes,
            search_scope_filters_and_paging,
            docs_sites_pages_assets_and_search,
        );
    };
    (@each $backend:expr; $($check:ident),* $(,)?) => {
        $(
            #[$crate::testing::conformance::__tokio::test(
                flavor = "multi_thread",
                worker_threads = 2,
                crate = "callboard_store::testing::conformance::__tokio"
            )]
            async fn $check() {
                let backend = $backend;
                let limit = ::std::time::Duration::from_secs(180);
                if $crate::testing::conformance::__tokio::time::timeout(
                    limit,
                    $crate::testing::conformance::$check(&backend),
                )
                .await
                .is_err()
                {
                    panic!(
                        "conformance check {} did not finish within {}s",
                        stringify!($check),
                        limit.as_secs()
                    );
                }
            }
        )*
    };
}

// ----------------------------------------------------------------------
// Records, built the way the catalog builds them
// ----------------------------------------------------------------------

/// A digest of a JSON value (hex). Any digest will do for tests.
pub fn digest(value: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Kind, namespace (default `default`) and name of an entity, as written.
fn identity(entity: &Value) -> (String, String, String) {
    let text = |pointer: &str| entity.pointer(pointer).and_then(Value::as_str);
    (
        text("/kind").unwrap_or_default().to_owned(),
        text("/metadata/namespace").unwrap_or("default").to_owned(),
        text("/metadata/name").unwrap_or_default().to_owned(),
    )
}

/// The lower-case ref `kind:namespace/name` of an entity.
pub fn entity_key(entity: &Value) -> String {
    let (kind, namespace, name) = identity(entity);
    format!("{kind}:{namespace}/{name}").to_lowercase()
}

/// The ref as displayed: kind and namespace lower-cased, name as written.
fn display_ref(kind: &str, namespace: &str, name: &str) -> String {
    format!(
        "{}:{}/{name}",
        kind.to_lowercase(),
        namespace.to_lowercase()
    )
}

/// Leaf values by dotted, lower-cased path (arrays repeat their path),
/// skipping top-level `relations` and `status`, nulls and values longer
/// than [`MAX_SEARCH_VALUE`].
fn flatten(value: &Value, path: &mut String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && (k == "relations" || k == "status") {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.to_lowercase());
                flatten(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(item, path, out);
            }
        }
        Value::String(s) if s.len() <= MAX_SEARCH_VALUE => out.push((path.clone(), s.clone())),
        Value::String(_) | Value::Null => {}
        Value::Bool(b) => out.push((path.clone(), b.to_string())),
        Value::Number(n) => out.push((path.clone(), n.to_string())),
    }
}

/// The search rows of an entity: `(dotted key, lower-cased value, value as
/// written when different)`.
pub fn search_rows(entity: &Value) -> Vec<(String, String, Option<String>)> {
    let mut flat = Vec::new();
    flatten(entity, &mut String::new(), &mut flat);
    flat.into_iter()
        .map(|(key, original)| {
            let value = original.to_lowercase();
            let original = (value != original).then_some(original);
            (key, value, original)
        })
        .collect()
}

/// The text the full-text index holds: the values of
/// [`FULL_TEXT_FIELDS`], each followed by a newline.
pub fn full_text_doc(entity: &Value) -> String {
    let mut flat = Vec::new();
    flatten(entity, &mut String::new(), &mut flat);
    let mut doc = String::new();
    for (key, value) in flat {
        if FULL_TEXT_FIELDS.contains(&key.as_str()) {
            doc.push_str(&value);
            doc.push('\n');
        }
    }
    doc
}

/// Reference fields: (kinds carrying it, spec field, forward relation,
/// reverse relation, default kind of a bare name).
const REF_FIELDS: &[(&[&str], &str, &str, &str, &str)] = &[
    (
        &[
            "component",
            "api",
            "resource",
            "system",
            "domain",
            "template",
        ],
        "owner",
        "ownedBy",
        "ownerOf",
        "group",
    ),
    (
        &["component", "api", "resource"],
        "system",
        "partOf",
        "hasPart",
        "system",
    ),
    (
        &["component", "resource"],
        "dependsOn",
        "dependsOn",
        "dependencyOf",
        "component",
    ),
    (
        &["component", "resource"],
        "dependencyOf",
        "dependencyOf",
        "dependsOn",
        "component",
    ),
];

/// The relations an entity's spec implies, both directions (owner, system,
/// dependsOn, dependencyOf).
pub fn relations_of(entity: &Value) -> Vec<RelationRow> {
    let (kind, namespace, name) = identity(entity);
    let source = entity_key(entity);
    let source_display = display_ref(&kind, &namespace, &name);
    let mut out = Vec::new();
    for (kinds, field, forward, reverse, default_kind) in REF_FIELDS {
        if !kinds.contains(&kind.to_lowercase().as_str()) {
            continue;
        }
        let targets: Vec<&str> = match entity.pointer(&format!("/spec/{field}")) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for target in targets {
            let (t_kind, rest) = target.split_once(':').unwrap_or((default_kind, target));
            let (t_namespace, t_name) = rest.split_once('/').unwrap_or((&namespace, rest));
            let target_display = display_ref(t_kind, t_namespace, t_name);
            let target_key = target_display.to_lowercase();
            out.push(RelationRow {
                source: source.clone(),
                kind: (*forward).to_owned(),
                target: target_key.clone(),
                target_display,
            });
            out.push(RelationRow {
                source: target_key,
                kind: (*reverse).to_owned(),
                target: source.clone(),
                target_display: source_display.clone(),
            });
        }
    }
    out
}

/// An entity ready to store, as the catalog prepares it: identity, search
/// rows, full-text document, relations and digests.
#[expect(
    clippy::needless_pass_by_value,
    reason = "every caller builds the entity for this call"
)]
pub fn record(entity: Value, location_key: &str, parent_ref: Option<&str>) -> EntityRecord {
    let (kind, namespace, name) = identity(&entity);
    EntityRecord {
        key: entity_key(&entity),
        kind: kind.to_lowercase(),
        namespace: namespace.to_lowercase(),
        name: name.to_lowercase(),
        parent_ref: parent_ref.map(str::to_lowercase),
        location_key: location_key.to_owned(),
        hash: digest(&entity),
        spec_hash: digest(entity.get("spec").unwrap_or(&Value::Null)),
        rows: search_rows(&entity),
        relations: relations_of(&entity),
        doc: full_text_doc(&entity),
        search: crate::search::SearchDoc::for_entity(&entity),
        entity: crate::catalog::Body::new(&entity),
    }
}

/// Eight entities (in this insertion order): components `Alpha`, `beta`,
/// `gamma`, API `alpha-api`, groups `team-a`, `Team-B`, system `sys-one`
/// (namespace `default`) and component `Delta` (namespace `other`).
pub fn fixture() -> Vec<Value> {
    vec![
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "Alpha", "namespace": "default",
                "description": "The Alpha payment service", "tags": ["java", "web", "web"]},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                "system": "sys-one", "replicas": 3, "public": true}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "beta", "namespace": "default", "title": "Beta Site",
                "tags": ["python"]},
            "spec": {"type": "website", "lifecycle": "experimental", "owner": "Team-B"}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "gamma", "namespace": "default",
                "description": "Covers 50% of traffic", "tags": ["java"],
                "annotations": {"example.com/flag": "on"}},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                "dependsOn": ["component:default/beta"]}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "alpha-api", "namespace": "default"},
            "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a",
                "system": "sys-one", "definition": "openapi: 3.0.0\npaths:\n  /ping: {}"}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-a", "namespace": "default"},
            "spec": {"type": "team", "profile": {"displayName": "Team A"}, "children": []}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "Team-B", "namespace": "default"},
            "spec": {"type": "team", "children": []}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
            "metadata": {"name": "sys-one", "namespace": "default"},
            "spec": {"owner": "team-a"}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "Delta", "namespace": "other", "tags": ["Rust"]},
            "spec": {"type": "library", "lifecycle": "deprecated", "owner": "Team-B"}}),
    ]
}

/// Every fixture entity's name, in insertion order.
const ALL: &[&str] = &[
    "Alpha",
    "beta",
    "gamma",
    "alpha-api",
    "team-a",
    "Team-B",
    "sys-one",
    "Delta",
];

// ----------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------

/// Unwraps a store result, naming what failed.
fn ok<T, E: std::fmt::Debug>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error {e:?}"),
    }
}

async fn fresh(backend: &dyn Backend) -> (String, Stores) {
    let db = backend.create().await;
    let stores = backend.open(&db).await;
    (db, stores)
}

/// Registers a location (`file`, `target`, source `config`).
async fn location(stores: &Stores, target: &str) -> LocationRow {
    let row = LocationRow {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "file".into(),
        target: target.into(),
    };
    let (row, new) = ok(
        "insert_location",
        stores.catalog.insert_location(&row, "config").await,
    );
    assert!(new, "insert_location of a new target must say it is new");
    row
}

/// Stores `records` for `location` in one writer and finishes it.
async fn write(
    stores: &Stores,
    location: &LocationRow,
    records: Vec<EntityRecord>,
    keep: HashMap<String, Value>,
) -> (Vec<Put>, ApplySummary, Vec<Change>) {
    let mut writer = ok("begin", stores.catalog.begin(&location.id).await).unwrap_or_else(|| {
        panic!(
            "begin({}) returned None for a registered location",
            location.id
        )
    });
    let puts = ok("put", writer.put(records).await);
    let done = Finish {
        keep,
        ..Finish::default()
    };
    let (summary, changes) = ok("finish", writer.finish(done).await);
    (puts, summary, changes)
}

/// Stores `records` for `location` in one writer and finishes it with `done`.
async fn write_done(
    stores: &Stores,
    location: &LocationRow,
    records: Vec<EntityRecord>,
    done: Finish,
) -> (ApplySummary, Vec<Change>) {
    let mut writer = ok("begin", stores.catalog.begin(&location.id).await)
        .unwrap_or_else(|| panic!("begin({}) returned None", location.id));
    let puts = ok("put", writer.put(records).await);
    assert!(puts.iter().all(|p| *p == Put::Stored), "puts: {puts:?}");
    ok("finish", writer.finish(done).await)
}

/// The stored sources of a location: key -> (hash, sorted entities).
async fn sources_of(
    stores: &Stores,
    location: &LocationRow,
) -> BTreeMap<String, (String, Vec<String>)> {
    ok("sources", stores.catalog.sources(&location.id).await)
        .into_iter()
        .map(|s| {
            let mut entities = s.entities;
            entities.sort();
            (s.key, (s.hash, entities))
        })
        .collect()
}

/// Registers a location and stores the fixture in it.
async fn load_fixture(stores: &Stores) -> LocationRow {
    let loc = location(stores, "/catalog/fixture.yaml").await;
    let records = fixture()
        .into_iter()
        .map(|e| record(e, "file:/catalog/fixture.yaml", None))
        .collect();
    let (puts, summary, _) = write(stores, &loc, records, HashMap::new()).await;
    assert!(
        puts.iter().all(|p| *p == Put::Stored),
        "fixture puts: {puts:?}"
    );
    assert_eq!(summary.added, ALL.len(), "fixture summary: {summary:?}");
    loc
}

fn name_of(entity: &Value) -> String {
    entity
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<no name>")
        .to_owned()
}

fn names(items: &[Value]) -> Vec<String> {
    items.iter().map(name_of).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn selection(predicate: Option<Predicate>) -> Selection {
    Selection {
        predicate,
        ..Selection::default()
    }
}

fn ordered(predicate: Option<Predicate>, order: &[(&str, bool)]) -> Selection {
    Selection {
        predicate,
        full_text: None,
        order: order
            .iter()
            .map(|(field, descending)| OrderField {
                field: (*field).to_owned(),
                descending: *descending,
            })
            .collect(),
    }
}

fn field(key: &str, matcher: Matcher) -> Predicate {
    Predicate::Field {
        key: key.to_lowercase(),
        matcher,
    }
}

/// Names of the entities a selection matches, checking that `count`
/// agrees.
async fn matching(stores: &Stores, what: &str, sel: &Selection) -> BTreeSet<String> {
    let page = ok(
        what,
        stores.catalog.query(sel, &Start::Beginning, 1000).await,
    );
    assert!(!page.more, "{what}: more rows than a page of 1000");
    let count = ok(what, stores.catalog.count(sel).await);
    assert_eq!(
        count,
        page.items.len() as u64,
        "{what}: count() disagrees with query() ({:?})",
        names(&page.values())
    );
    names(&page.values()).into_iter().collect()
}

async fn query(stores: &Stores, what: &str, sel: &Selection, start: &Start, limit: usize) -> Page {
    ok(what, stores.catalog.query(sel, start, limit).await)
}

/// The served entity without `relations`, and its relations as
/// `(type, targetRef)`.
fn split_relations(mut served: Value) -> (Value, Vec<(String, String)>) {
    let relations = served
        .as_object_mut()
        .and_then(|o| o.remove("relations"))
        .unwrap_or_else(|| panic!("served entity has no relations array: {served}"));
    let relations = relations
        .as_array()
        .unwrap_or_else(|| panic!("relations is not an array: {relations}"))
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap_or_default().to_owned(),
                r["targetRef"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (served, relations)
}

/// Relations as a set, asserting there are no duplicates.
fn relation_set(what: &str, served: &Value) -> BTreeSet<(String, String)> {
    let (_, relations) = split_relations(served.clone());
    let set: BTreeSet<_> = relations.iter().cloned().collect();
    assert_eq!(
        set.len(),
        relations.len(),
        "{what}: duplicate relations in {relations:?}"
    );
    set
}

fn rel(kind: &str, target: &str) -> (String, String) {
    (kind.to_owned(), target.to_owned())
}

async fn get(stores: &Stores, key: &str) -> Value {
    ok("get_by_ref", stores.catalog.get_by_ref(key).await)
        .unwrap_or_else(|| panic!("get_by_ref({key}) returned None"))
}

fn meta<'a>(entity: &'a Value, field: &str) -> &'a Value {
    entity
        .pointer(&format!("/metadata/{field}"))
        .unwrap_or(&Value::Null)
}

/// The catalog change lists published after `seq`.
async fn catalog_events_after(stores: &Stores, seq: i64) -> Vec<Vec<Change>> {
    ok("read_after", stores.feed.read_after(seq, 10_000).await)
        .into_iter()
        .filter(|e| e.topic == CATALOG_TOPIC)
        .map(|e| {
            serde_json::from_value(e.payload.clone()).unwrap_or_else(|err| {
                panic!(
                    "catalog feed payload is not a list of changes ({err}): {}",
                    e.payload
                )
            })
        })
        .collect()
}

fn sorted(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by_key(|c| format!("{c:?}"));
    changes
}

/// Polls `condition` every 20 ms until it holds, for at most `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not true after {}ms",
            limit.as_millis()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ----------------------------------------------------------------------
// Catalog: writes
// ----------------------------------------------------------------------

/// New entities get a uid, etag (= the record's hash) and generation 1;
/// the served entity is the record's entity plus those and its relations;
/// the summary and changes list every addition.
pub async fn writer_adds_and_assigns_identity(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = location(&stores, "/catalog/a.yaml").await;
    let records: Vec<EntityRecord> = fixture()
        .into_iter()
        .map(|e| record(e, "file:/catalog/a.yaml", None))
        .collect();
    let (puts, summary, changes) = write(&stores, &loc, records.clone(), HashMap::new()).await;
    assert_eq!(puts, vec![Put::Stored; records.len()], "put answers");
    assert_eq!(
        summary,
        ApplySummary {
            added: 8,
            updated: 0,
            unchanged: 0,
            orphaned: 0
        },
        "summary of a first load"
    );
    assert_eq!(
        sorted(changes),
        sorted(
            records
                .iter()
                .map(|r| Change::Added(r.key.clone()))
                .collect()
        ),
        "changes of a first load"
    );
    let mut uids = BTreeSet::new();
    for (r, entity) in records.iter().zip(fixture()) {
        let served = get(&stores, &r.key).await;
        let uid = meta(&served, "uid").as_str().unwrap_or_default().to_owned();
        assert!(!uid.is_empty(), "{}: no metadata.uid in {served}", r.key);
        assert!(uids.insert(uid.clone()), "{}: uid {uid} not unique", r.key);
        assert_eq!(meta(&served, "etag"), &json!(r.hash), "{}: etag", r.key);
        assert_eq!(
            meta(&served, "generation"),
            &json!(1),
            "{}: generation",
            r.key
        );
        let mut expected = entity;
        let m = expected["metadata"].as_object_mut().expect("metadata");
        m.insert("uid".into(), json!(uid));
        m.insert("etag".into(), json!(r.hash));
        m.insert("generation".into(), json!(1));
        let (body, _) = split_relations(served);
        assert_eq!(
            body, expected,
            "{}: served entity (without relations)",
            r.key
        );
    }
    let all = ok("count", stores.catalog.count(&Selection::default()).await);
    assert_eq!(all, 8, "count after a first load");
    ok("optimize", stores.catalog.optimize().await);
}

/// An identical hash leaves the entity alone; a change rewrites it with
/// the same uid, the new hash as etag, and a generation bumped only when
/// the spec changed. Relations follow the new version.
pub async fn writer_unchanged_and_updates(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = load_fixture(&stores).await;
    let lk = "file:/catalog/fixture.yaml";
    let alpha_key = "component:default/alpha";
    let before = get(&stores, alpha_key).await;
    let uid = meta(&before, "uid").clone();

    // The same records again: nothing changes.
    let records: Vec<EntityRecord> = fixture().into_iter().map(|e| record(e, lk, None)).collect();
    let (_, summary, changes) = write(&stores, &loc, records, HashMap::new()).await;
    assert_eq!(
        summary,
        ApplySummary {
            unchanged: 8,
            ..ApplySummary::default()
        },
        "identical records must be unchanged"
    );
    assert!(changes.is_empty(), "identical records changed: {changes:?}");
    assert_eq!(
        get(&stores, alpha_key).await,
        before,
        "unchanged entity was rewritten"
    );

    // Metadata only: same generation, new etag.
    let mut entities = fixture();
    entities[0]["metadata"]["description"] = json!("Now with more payments");
    let records: Vec<EntityRecord> = entities
        .iter()
        .cloned()
        .map(|e| record(e, lk, None))
        .collect();
    let new_hash = records[0].hash.clone();
    let (_, summary, changes) = write(&stores, &loc, records, HashMap::new()).await;
    assert_eq!(
        (summary.updated, summary.unchanged, summary.added),
        (1, 7, 0),
        "summary after a metadata change: {summary:?}"
    );
    assert_eq!(changes, vec![Change::Changed(alpha_key.into())], "changes");
    let after = get(&stores, alpha_key).await;
    assert_eq!(meta(&after, "uid"), &uid, "uid must survive updates");
    assert_eq!(
        meta(&after, "etag"),
        &json!(new_hash),
        "etag must be the new hash"
    );
    assert_eq!(
        meta(&after, "generation"),
        &json!(1),
        "metadata change bumped the generation"
    );
    assert_eq!(
        meta(&after, "description"),
        &json!("Now with more payments")
    );
    let found = matching(
        &stores,
        "description after update",
        &selection(Some(Predicate::eq(
            "metadata.description",
            &["now with more payments"],
        ))),
    )
    .await;
    assert_eq!(found, set(&["Alpha"]), "search rows must follow the update");

    // Spec change: generation 2; gamma no longer depends on beta.
    entities[0]["spec"]["lifecycle"] = json!("deprecated");
    entities[2]["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("dependsOn");
    let records: Vec<EntityRecord> = entities.into_iter().map(|e| record(e, lk, None)).collect();
    let (_, summary, changes) = write(&stores, &loc, records, HashMap::new()).await;
    assert_eq!(
        (summary.updated, summary.unchanged),
        (2, 6),
        "summary: {summary:?}"
    );
    assert_eq!(
        sorted(changes),
        sorted(vec![
            Change::Changed(alpha_key.into()),
            Change::Changed("component:default/gamma".into())
        ])
    );
    let after = get(&stores, alpha_key).await;
    assert_eq!(meta(&after, "uid"), &uid, "uid must survive spec changes");
    assert_eq!(
        meta(&after, "generation"),
        &json!(2),
        "spec change must bump the generation"
    );
    let beta = get(&stores, "component:default/beta").await;
    assert!(
        !relation_set("beta", &beta).contains(&rel("dependencyOf", "component:default/gamma")),
        "relations of the old version of gamma are still served on beta: {beta}"
    );
    let found = matching(
        &stores,
        "old lifecycle",
        &selection(Some(Predicate::All(vec![
            Predicate::eq("metadata.name", &["alpha"]),
            Predicate::eq("spec.lifecycle", &["production"]),
        ]))),
    )
    .await;
    assert!(
        found.is_empty(),
        "search rows of the old version remain: {found:?}"
    );
}

/// A ref listed twice by one location keeps the first (`Duplicate`); a ref
/// another location owns is refused (`Conflict` with the owner's id).
pub async fn writer_duplicates_and_conflicts(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let a = location(&stores, "/catalog/a.yaml").await;
    let b = location(&stores, "/catalog/b.yaml").await;
    let first = json!({"kind": "Component", "metadata": {"name": "dup", "description": "first"},
        "spec": {"type": "service", "owner": "x"}});
    let second = json!({"kind": "Component", "metadata": {"name": "DUP", "description": "second"},
        "spec": {"type": "service", "owner": "x"}});
    let third = json!({"kind": "Component", "metadata": {"name": "dup", "description": "third"},
        "spec": {"type": "service", "owner": "x"}});
    let mut writer = ok("begin", stores.catalog.begin(&a.id).await).expect("begin a");
    let puts = ok(
        "put",
        writer
            .put(vec![
                record(first, "file:/a", None),
                record(second, "file:/a", None),
            ])
            .await,
    );
    assert_eq!(
        puts,
        vec![Put::Stored, Put::Duplicate],
        "a ref listed twice in one batch"
    );
    let puts = ok(
        "put",
        writer.put(vec![record(third, "file:/a", None)]).await,
    );
    assert_eq!(
        puts,
        vec![Put::Duplicate],
        "a ref listed again in a later batch"
    );
    let (summary, _) = ok("finish", writer.finish(Finish::default()).await);
    assert_eq!(summary.added, 1, "summary: {summary:?}");
    let served = get(&stores, "component:default/dup").await;
    assert_eq!(
        meta(&served, "description"),
        &json!("first"),
        "the first listing wins"
    );

    let other = json!({"kind": "Component", "metadata": {"name": "dup", "description": "from b"},
        "spec": {"type": "service", "owner": "y"}});
    let fine = json!({"kind": "Component", "metadata": {"name": "fine"}, "spec": {}});
    let (puts, summary, changes) = write(
        &stores,
        &b,
        vec![
            record(other, "file:/b", None),
            record(fine, "file:/b", None),
        ],
        HashMap::new(),
    )
    .await;
    assert_eq!(
        puts,
        vec![Put::Conflict(a.id.clone()), Put::Stored],
        "an entity of another location"
    );
    assert_eq!(summary.added, 1, "summary: {summary:?}");
    assert_eq!(
        changes,
        vec![Change::Added("component:default/fine".into())]
    );
    let served = get(&stores, "component:default/dup").await;
    assert_eq!(
        meta(&served, "description"),
        &json!("first"),
        "the first owner keeps it"
    );
    let owner = ok(
        "location_of_entity",
        stores
            .catalog
            .location_of_entity("component:default/dup")
            .await,
    );
    assert_eq!(owner, Some(a), "owner of the conflicted entity");
}

/// Entities a location stops listing are marked orphan (annotation, and
/// searchable), once; listing them again clears it. Entities whose source
/// or ref is in `keep` get that status instead.
pub async fn writer_orphans_and_keep(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = location(&stores, "/catalog/o.yaml").await;
    let e = |name: &str| {
        json!({"kind": "Component", "metadata": {"name": name},
            "spec": {"type": "service", "owner": "team"}})
    };
    let rec = |name: &str| record(e(name), &format!("file:/catalog/{name}.yaml"), None);
    let orphan_pred = Predicate::eq(
        &format!("metadata.annotations.{ORPHAN_ANNOTATION}"),
        &["true"],
    );
    write(
        &stores,
        &loc,
        vec![rec("a"), rec("b"), rec("c")],
        HashMap::new(),
    )
    .await;

    // b is no longer listed: orphan.
    let (_, summary, changes) =
        write(&stores, &loc, vec![rec("a"), rec("c")], HashMap::new()).await;
    assert_eq!(
        summary,
        ApplySummary {
            unchanged: 2,
            orphaned: 1,
            ..ApplySummary::default()
        },
        "summary when b disappears"
    );
    assert_eq!(changes, vec![Change::Changed("component:default/b".into())]);
    let b = get(&stores, "component:default/b").await;
    assert_eq!(
        b.pointer("/metadata/annotations")
            .and_then(|a| a.get(ORPHAN_ANNOTATION)),
        Some(&json!("true")),
        "orphan annotation on {b}"
    );
    let found = matching(&stores, "orphans", &selection(Some(orphan_pred.clone()))).await;
    assert_eq!(found, set(&["b"]), "orphans must be searchable");

    // Still missing: nothing new.
    let (_, summary, changes) =
        write(&stores, &loc, vec![rec("a"), rec("c")], HashMap::new()).await;
    assert_eq!(
        summary.orphaned, 0,
        "an orphan is counted once: {summary:?}"
    );
    assert!(changes.is_empty(), "an orphan changes once: {changes:?}");

    // Listed again, identical: rewritten without the annotation.
    let (_, summary, changes) = write(
        &stores,
        &loc,
        vec![rec("a"), rec("b"), rec("c")],
        HashMap::new(),
    )
    .await;
    assert_eq!(
        (summary.updated, summary.unchanged, summary.orphaned),
        (1, 2, 0),
        "summary when b comes back: {summary:?}"
    );
    assert_eq!(changes, vec![Change::Changed("component:default/b".into())]);
    let b = get(&stores, "component:default/b").await;
    assert!(
        b.pointer("/metadata/annotations")
            .and_then(|a| a.get(ORPHAN_ANNOTATION))
            .is_none(),
        "orphan annotation kept after b came back: {b}"
    );
    let found = matching(&stores, "orphans", &selection(Some(orphan_pred.clone()))).await;
    assert!(found.is_empty(), "orphan search rows remain: {found:?}");

    // b's file failed (by source) and c's ref failed: they keep their
    // last version with the given status; not orphans.
    let status_b = json!({"items": [{"type": "backstage.io/catalog-processing", "level": "error",
        "message": "b.yaml could not be read"}]});
    let status_c = json!({"items": [{"level": "error", "message": "c is invalid"}]});
    let keep = HashMap::from([
        ("file:/catalog/b.yaml".to_owned(), status_b.clone()),
        ("component:default/c".to_owned(), status_c.clone()),
    ]);
    let (_, summary, changes) = write(&stores, &loc, vec![rec("a")], keep).await;
    assert_eq!(
        (summary.orphaned, summary.unchanged),
        (0, 1),
        "kept entities are not orphans: {summary:?}"
    );
    assert_eq!(
        sorted(changes),
        sorted(vec![
            Change::Changed("component:default/b".into()),
            Change::Changed("component:default/c".into())
        ])
    );
    let b = get(&stores, "component:default/b").await;
    assert_eq!(
        b.get("status"),
        Some(&status_b),
        "status of a kept entity (by source)"
    );
    let c = get(&stores, "component:default/c").await;
    assert_eq!(
        c.get("status"),
        Some(&status_c),
        "status of a kept entity (by ref)"
    );
    let found = matching(&stores, "orphans", &selection(Some(orphan_pred))).await;
    assert!(found.is_empty(), "kept entities marked orphan: {found:?}");

    // Read fine again: rewritten from the record (no status).
    let (_, summary, _) = write(
        &stores,
        &loc,
        vec![rec("a"), rec("b"), rec("c")],
        HashMap::new(),
    )
    .await;
    assert_eq!(
        (summary.updated, summary.unchanged),
        (2, 1),
        "summary: {summary:?}"
    );
    let b = get(&stores, "component:default/b").await;
    assert!(
        b.get("status").is_none(),
        "status kept after a good read: {b}"
    );
}

/// Sources with a content hash: stored and replaced by `finish`, listed
/// with their entities (orphans excluded); an unchanged source keeps its
/// entities as they are (orphans stay orphans); deleting an entity or its
/// location forgets the hash.
pub async fn writer_unchanged_sources(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = location(&stores, "/catalog/*.yaml").await;
    let e = |name: &str| {
        json!({"kind": "Component", "metadata": {"name": name},
            "spec": {"type": "service", "owner": "team"}})
    };
    let (fa, fb) = ("file:/catalog/a.yaml", "file:/catalog/b.yaml");
    let hashes = |a: &str, b: Option<&str>| {
        let mut h = vec![(fa.to_owned(), a.to_owned())];
        h.extend(b.map(|b| (fb.to_owned(), b.to_owned())));
        h
    };
    let unchanged = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect();
    assert!(
        sources_of(&stores, &loc).await.is_empty(),
        "a new location has no sources"
    );

    let (summary, _) = write_done(
        &stores,
        &loc,
        vec![
            record(e("a1"), fa, None),
            record(e("a2"), fa, None),
            record(e("b1"), fb, None),
        ],
        Finish {
            hashes: hashes("h-a", Some("h-b")),
            ..Finish::default()
        },
    )
    .await;
    assert_eq!(summary.added, 3, "{summary:?}");
    let a = (
        "h-a".to_owned(),
        vec![
            "component:default/a1".to_owned(),
            "component:default/a2".to_owned(),
        ],
    );
    let b = ("h-b".to_owned(), vec!["component:default/b1".to_owned()]);
    assert_eq!(
        sources_of(&stores, &loc).await,
        BTreeMap::from([(fa.to_owned(), a.clone()), (fb.to_owned(), b.clone())]),
        "sources after the first write"
    );

    // a.yaml not read again: its entities stay, nothing changes.
    let head = ok("head", stores.feed.head().await);
    let (summary, changes) = write_done(
        &stores,
        &loc,
        vec![record(e("b1"), fb, None)],
        Finish {
            unchanged: unchanged(&[fa]),
            hashes: hashes("h-a", Some("h-b")),
            ..Finish::default()
        },
    )
    .await;
    assert_eq!(
        summary,
        ApplySummary {
            unchanged: 3,
            ..ApplySummary::default()
        },
        "an unchanged source's entities count as unchanged"
    );
    assert!(changes.is_empty(), "nothing changed: {changes:?}");
    assert!(
        catalog_events_after(&stores, head).await.is_empty(),
        "nothing published"
    );
    let a1 = get(&stores, "component:default/a1").await;
    assert!(
        a1.pointer(&format!(
            "/metadata/annotations/{}",
            ORPHAN_ANNOTATION.replace('/', "~1")
        ))
        .is_none(),
        "an unchanged source's entity became an orphan: {a1}"
    );

    // a.yaml read again without a2, b.yaml failed to hash (no hash kept).
    let (summary, _) = write_done(
        &stores,
        &loc,
        vec![record(e("a1"), fa, None), record(e("b1"), fb, None)],
        Finish {
            hashes: hashes("h-a2", None),
            ..Finish::default()
        },
    )
    .await;
    assert_eq!(summary.orphaned, 1, "{summary:?}");
    assert_eq!(
        sources_of(&stores, &loc).await,
        BTreeMap::from([(
            fa.to_owned(),
            ("h-a2".to_owned(), vec!["component:default/a1".to_owned()])
        )]),
        "finish replaces the set; orphans are not listed"
    );
    // Unchanged again: the orphan stays an orphan.
    let (summary, changes) = write_done(
        &stores,
        &loc,
        vec![record(e("b1"), fb, None)],
        Finish {
            unchanged: unchanged(&[fa]),
            hashes: hashes("h-a2", None),
            ..Finish::default()
        },
    )
    .await;
    assert_eq!((summary.orphaned, summary.unchanged), (0, 2), "{summary:?}");
    assert!(changes.is_empty(), "{changes:?}");
    let orphans = matching(
        &stores,
        "orphans",
        &selection(Some(Predicate::eq(
            &format!("metadata.annotations.{ORPHAN_ANNOTATION}"),
            &["true"],
        ))),
    )
    .await;
    assert_eq!(orphans, set(&["a2"]), "orphans");

    // Deleting an entity forgets its source's hash: the next refresh reads
    // the file again and the entity comes back.
    let uid = meta(&get(&stores, "component:default/a1").await, "uid")
        .as_str()
        .expect("uid")
        .to_owned();
    ok("delete_by_uid", stores.catalog.delete_by_uid(&uid).await);
    assert!(
        !sources_of(&stores, &loc).await.contains_key(fa),
        "the deleted entity's source keeps its hash"
    );

    // Removing the location forgets its sources.
    write_done(
        &stores,
        &loc,
        vec![record(e("a1"), fa, None), record(e("b1"), fb, None)],
        Finish {
            hashes: hashes("h-a3", Some("h-b")),
            ..Finish::default()
        },
    )
    .await;
    assert_eq!(sources_of(&stores, &loc).await.len(), 2);

    // One source written on its own: its entities change, the others stay,
    // an entity another source provides is a duplicate, only its hash changes.
    let mut writer = ok(
        "begin_source",
        stores.catalog.begin_source(&loc.id, fb).await,
    )
    .expect("begin_source of a registered location");
    let puts = ok(
        "put",
        writer
            .put(vec![
                record(e("b2"), fb, None),
                record(e("a1"), fb, None),
                record(e("a2"), fb, None),
            ])
            .await,
    );
    assert_eq!(
        puts,
        [Put::Stored, Put::Duplicate, Put::Stored],
        "a sibling source's entity is a duplicate, the location's orphan is taken over"
    );
    let (summary, _) = ok(
        "finish",
        writer
            .finish(Finish {
                hashes: vec![(fb.to_owned(), "h-b2".to_owned())],
                ..Finish::default()
            })
            .await,
    );
    assert_eq!(
        (summary.added, summary.updated, summary.orphaned),
        (1, 1, 1),
        "b2 added, a2 taken over, b1 (no longer listed by b.yaml) orphaned: {summary:?}"
    );
    let sources = sources_of(&stores, &loc).await;
    assert_eq!(
        sources.get(fb),
        Some(&(
            "h-b2".to_owned(),
            vec![
                "component:default/a2".to_owned(),
                "component:default/b2".to_owned()
            ]
        )),
        "{sources:?}"
    );
    assert_eq!(
        sources.get(fa).map(|(h, _)| h.as_str()),
        Some("h-a3"),
        "another source's hash is kept"
    );
    let one = ok("source", stores.catalog.source(&loc.id, fb).await).expect("b's source");
    assert_eq!(one.hash, "h-b2");
    assert!(ok("source", stores.catalog.source(&loc.id, "file:/nope").await).is_none());
    let a1 = get(&stores, "component:default/a1").await;
    assert!(
        a1.pointer("/metadata/annotations")
            .and_then(|a| a.get(ORPHAN_ANNOTATION))
            .is_none(),
        "a source's write orphaned another source's entity: {a1}"
    );
    ok(
        "remove_location",
        stores.catalog.remove_location(&loc.id).await,
    );
    assert!(
        sources_of(&stores, &loc).await.is_empty(),
        "a removed location keeps sources"
    );
}

/// A writer dropped without `finish` stores nothing, publishes nothing,
/// and does not block the next writer.
pub async fn writer_dropped_stores_nothing(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = location(&stores, "/catalog/d.yaml").await;
    let head = ok("head", stores.feed.head().await);
    let mut writer = ok("begin", stores.catalog.begin(&loc.id).await).expect("begin");
    let puts = ok(
        "put",
        writer
            .put(
                fixture()
                    .into_iter()
                    .map(|e| record(e, "file:/d", None))
                    .collect(),
            )
            .await,
    );
    assert_eq!(puts.len(), 8);
    drop(writer);
    let count = ok("count", stores.catalog.count(&Selection::default()).await);
    assert_eq!(count, 0, "a dropped writer stored entities");
    assert!(
        ok(
            "get_by_ref",
            stores.catalog.get_by_ref("component:default/alpha").await
        )
        .is_none(),
        "a dropped writer stored alpha"
    );
    assert!(
        catalog_events_after(&stores, head).await.is_empty(),
        "a dropped writer published changes"
    );
    // The next writer proceeds (the dropped one released the database).
    let next = tokio::time::timeout(Duration::from_secs(20), async {
        write(
            &stores,
            &loc,
            fixture()
                .into_iter()
                .map(|e| record(e, "file:/d", None))
                .collect(),
            HashMap::new(),
        )
        .await
    })
    .await
    .expect("the writer after a dropped one did not finish within 20s");
    assert_eq!(
        next.1.added, 8,
        "the next writer adds everything: {:?}",
        next.1
    );
}

/// `begin` answers `None` for an unknown or removed location.
pub async fn writer_begin_needs_location(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert!(
        ok("begin", stores.catalog.begin(&unknown).await).is_none(),
        "begin on an unknown location"
    );
    let loc = location(&stores, "/catalog/r.yaml").await;
    let removed = ok(
        "remove_location",
        stores.catalog.remove_location(&loc.id).await,
    );
    assert_eq!(removed, Some(Vec::new()), "removing an empty location");
    assert!(
        ok("begin", stores.catalog.begin(&loc.id).await).is_none(),
        "begin on a location removed meanwhile"
    );
}

// ----------------------------------------------------------------------
// Catalog: reads
// ----------------------------------------------------------------------

/// Lookups by ref, uid and keys (with a predicate); relations of both
/// directions spliced in without duplicates; uid searchable.
pub async fn reads_by_ref_uid_and_keys(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = load_fixture(&stores).await;
    let alpha = get(&stores, "component:default/alpha").await;
    assert_eq!(name_of(&alpha), "Alpha");
    assert!(
        ok(
            "get_by_ref",
            stores.catalog.get_by_ref("component:default/nope").await
        )
        .is_none(),
        "unknown ref"
    );
    let uid = meta(&alpha, "uid").as_str().expect("uid").to_owned();
    let by_uid = ok("get_by_uid", stores.catalog.get_by_uid(&uid).await).expect("get_by_uid");
    assert_eq!(by_uid, alpha, "get_by_uid and get_by_ref disagree");
    assert!(ok("get_by_uid", stores.catalog.get_by_uid("no-such-uid").await).is_none());

    assert_eq!(
        relation_set("Alpha", &alpha),
        BTreeSet::from([
            rel("ownedBy", "group:default/team-a"),
            rel("partOf", "system:default/sys-one")
        ]),
        "relations of Alpha"
    );
    // Reverse relations are stored with the entity that implies them.
    let team_a = get(&stores, "group:default/team-a").await;
    assert_eq!(
        relation_set("team-a", &team_a),
        BTreeSet::from([
            rel("ownerOf", "component:default/Alpha"),
            rel("ownerOf", "component:default/gamma"),
            rel("ownerOf", "api:default/alpha-api"),
            rel("ownerOf", "system:default/sys-one"),
        ]),
        "relations of team-a"
    );
    let team_b = get(&stores, "group:default/team-b").await;
    assert_eq!(
        relation_set("Team-B", &team_b),
        BTreeSet::from([rel("ownerOf", "component:default/beta")]),
        "relations of Team-B"
    );
    let sys = get(&stores, "system:default/sys-one").await;
    assert_eq!(
        relation_set("sys-one", &sys),
        BTreeSet::from([
            rel("ownedBy", "group:default/team-a"),
            rel("hasPart", "component:default/Alpha"),
            rel("hasPart", "api:default/alpha-api"),
        ]),
        "relations of sys-one"
    );
    let delta = get(&stores, "component:other/delta").await;
    assert_eq!(
        relation_set("Delta", &delta),
        BTreeSet::from([rel("ownedBy", "group:other/Team-B")]),
        "relations of Delta"
    );
    let page = query(&stores, "query", &selection(None), &Start::Beginning, 100).await;
    for item in &page.values() {
        let key = entity_key(item);
        assert_eq!(
            item,
            &get(&stores, &key).await,
            "{key}: query() and get_by_ref() differ"
        );
    }

    // Two entities implying the same relation: served once.
    let extra = json!({"kind": "Component", "metadata": {"name": "epsilon"},
        "spec": {"type": "service", "owner": "team-a", "dependencyOf": ["component:default/gamma"]}});
    let other = location(&stores, "/catalog/extra.yaml").await;
    write(
        &stores,
        &other,
        vec![record(extra, "file:/extra", None)],
        HashMap::new(),
    )
    .await;
    let gamma = get(&stores, "component:default/gamma").await;
    let gamma_rels = relation_set("gamma", &gamma);
    assert!(
        gamma_rels.contains(&rel("dependsOn", "component:default/beta"))
            && gamma_rels.contains(&rel("dependsOn", "component:default/epsilon")),
        "gamma's dependsOn from its own spec and from epsilon's dependencyOf: {gamma_rels:?}"
    );
    let second = json!({"kind": "Component", "metadata": {"name": "zeta"},
        "spec": {"type": "service", "owner": "x", "dependencyOf": ["component:default/beta"]}});
    let other2 = location(&stores, "/catalog/extra2.yaml").await;
    write(
        &stores,
        &other2,
        vec![record(second, "file:/extra2", None)],
        HashMap::new(),
    )
    .await;
    // beta dependencyOf gamma comes from gamma's record and again from
    // beta-twin's (listed by hand): served once.
    let dup = json!({"kind": "Component", "metadata": {"name": "beta-twin"},
        "spec": {"type": "service", "owner": "x", "dependsOn": ["component:default/beta"]}});
    let mut twin = record(dup, "file:/extra3", None);
    twin.relations.push(RelationRow {
        source: "component:default/beta".into(),
        kind: "dependencyOf".into(),
        target: "component:default/gamma".into(),
        target_display: "component:default/gamma".into(),
    });
    let other3 = location(&stores, "/catalog/extra3.yaml").await;
    write(&stores, &other3, vec![twin], HashMap::new()).await;
    let beta = get(&stores, "component:default/beta").await;
    assert_eq!(
        relation_set("beta", &beta),
        BTreeSet::from([
            rel("ownedBy", "group:default/Team-B"),
            rel("dependencyOf", "component:default/gamma"),
            rel("dependencyOf", "component:default/beta-twin"),
            rel("dependsOn", "component:default/zeta"),
        ]),
        "relations of beta (one implied twice)"
    );

    // get_by_keys: input order, None for unknown/malformed/rejected.
    let keys = vec![
        Some("component:default/alpha".to_owned()),
        None,
        Some("component:default/nope".to_owned()),
        Some("group:default/team-b".to_owned()),
    ];
    let got = ok("get_by_keys", stores.catalog.get_by_keys(&keys, None).await);
    let got_names: Vec<Option<String>> = got.iter().map(|v| v.as_ref().map(name_of)).collect();
    assert_eq!(
        got_names,
        vec![Some("Alpha".into()), None, None, Some("Team-B".into())],
        "get_by_keys without predicate"
    );
    assert_eq!(
        got[0].as_ref(),
        Some(&alpha),
        "get_by_keys serves entities like get_by_ref"
    );
    let only_components = Predicate::eq("kind", &["component"]);
    let got = ok(
        "get_by_keys",
        stores
            .catalog
            .get_by_keys(&keys, Some(&only_components))
            .await,
    );
    let got_names: Vec<Option<String>> = got.iter().map(|v| v.as_ref().map(name_of)).collect();
    assert_eq!(
        got_names,
        vec![Some("Alpha".into()), None, None, None],
        "get_by_keys with predicate kind=component"
    );

    // The catalog's own fields are searchable.
    let found = matching(
        &stores,
        "metadata.uid",
        &selection(Some(Predicate::eq("metadata.uid", &[&uid]))),
    )
    .await;
    assert_eq!(found, set(&["Alpha"]), "metadata.uid must be searchable");
    let location_of = ok(
        "location_of_entity",
        stores
            .catalog
            .location_of_entity("component:default/alpha")
            .await,
    );
    assert_eq!(location_of, Some(loc), "location_of_entity");
}

/// Predicates: equality (any of), arrays, `Exists` (leaf and parent keys,
/// and absent), `HasPrefix`, `Not`, `Any`, `All`, relations, the item form
/// `metadata.tags.java`, numbers and booleans, parsed filters.
pub async fn predicates(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let cases: Vec<(&str, Predicate, &[&str])> = vec![
        (
            "kind=Component",
            Predicate::eq("kind", &["Component"]),
            &["Alpha", "beta", "gamma", "Delta"],
        ),
        (
            "metadata.name=ALPHA (case)",
            Predicate::eq("metadata.name", &["ALPHA"]),
            &["Alpha"],
        ),
        (
            "metadata.namespace=other",
            Predicate::eq("metadata.namespace", &["other"]),
            &["Delta"],
        ),
        (
            "spec.type in [service, website]",
            Predicate::eq("spec.type", &["service", "WEBSITE"]),
            &["Alpha", "beta", "gamma"],
        ),
        (
            "tags contain java",
            Predicate::eq("metadata.tags", &["java"]),
            &["Alpha", "gamma"],
        ),
        (
            "tags contain web",
            Predicate::eq("metadata.tags", &["web"]),
            &["Alpha"],
        ),
        (
            "tags contain rust (written Rust)",
            Predicate::eq("metadata.tags", &["rust"]),
            &["Delta"],
        ),
        (
            "spec.replicas=3 (number)",
            Predicate::eq("spec.replicas", &["3"]),
            &["Alpha"],
        ),
        (
            "spec.public=true (bool)",
            Predicate::eq("spec.public", &["true"]),
            &["Alpha"],
        ),
        ("no match", Predicate::eq("spec.type", &["nothing"]), &[]),
        (
            "exists spec.system",
            field("spec.system", Matcher::Exists(true)),
            &["Alpha", "alpha-api"],
        ),
        (
            "exists metadata.annotations (parent)",
            field("metadata.annotations", Matcher::Exists(true)),
            &["gamma"],
        ),
        (
            "exists spec.profile (parent)",
            field("spec.profile", Matcher::Exists(true)),
            &["team-a"],
        ),
        (
            "exists annotation with dots",
            field(
                "metadata.annotations.example.com/flag",
                Matcher::Exists(true),
            ),
            &["gamma"],
        ),
        (
            "exists metadata.tags (array)",
            field("metadata.tags", Matcher::Exists(true)),
            &["Alpha", "beta", "gamma", "Delta"],
        ),
        (
            "not exists spec.system",
            field("spec.system", Matcher::Exists(false)),
            &["beta", "gamma", "team-a", "Team-B", "sys-one", "Delta"],
        ),
        (
            "exists spec.sys (no partial key)",
            field("spec.sys", Matcher::Exists(true)),
            &[],
        ),
        (
            "prefix metadata.name al",
            field("metadata.name", Matcher::HasPrefix("al".into())),
            &["Alpha", "alpha-api"],
        ),
        (
            "prefix spec.owner team-",
            field("spec.owner", Matcher::HasPrefix("team-".into())),
            &["Alpha", "beta", "gamma", "alpha-api", "sys-one", "Delta"],
        ),
        (
            "prefix with % is literal",
            field("metadata.name", Matcher::HasPrefix("%".into())),
            &[],
        ),
        (
            "prefix with _ is literal",
            field("metadata.name", Matcher::HasPrefix("_lpha".into())),
            &[],
        ),
        (
            "not kind=component",
            Predicate::Not(Box::new(Predicate::eq("kind", &["component"]))),
            &["alpha-api", "team-a", "Team-B", "sys-one"],
        ),
        (
            "any [kind=api, name=beta]",
            Predicate::Any(vec![
                Predicate::eq("kind", &["api"]),
                Predicate::eq("metadata.name", &["beta"]),
            ]),
            &["alpha-api", "beta"],
        ),
        (
            "all [component, production]",
            Predicate::All(vec![
                Predicate::eq("kind", &["component"]),
                Predicate::eq("spec.lifecycle", &["production"]),
            ]),
            &["Alpha", "gamma"],
        ),
        ("all []", Predicate::All(Vec::new()), ALL),
        ("any []", Predicate::Any(Vec::new()), &[]),
        (
            "not all []",
            Predicate::Not(Box::new(Predicate::All(Vec::new()))),
            &[],
        ),
        (
            "not (owner in [team-a])",
            Predicate::Not(Box::new(Predicate::eq("spec.owner", &["team-a"]))),
            &["beta", "team-a", "Team-B", "Delta"],
        ),
        (
            "relations.ownedBy=group:default/team-a",
            Predicate::eq("relations.ownedBy", &["group:default/team-a"]),
            &["Alpha", "gamma", "alpha-api", "sys-one"],
        ),
        (
            "relations.ownedby=group:default/team-b",
            Predicate::eq("relations.ownedby", &["group:default/Team-B"]),
            &["beta"],
        ),
        (
            "relations.ownerof exists",
            field("relations.ownerof", Matcher::Exists(true)),
            &["team-a", "Team-B"],
        ),
        (
            "relations.haspart exists",
            field("relations.haspart", Matcher::Exists(true)),
            &["sys-one"],
        ),
        (
            "relations.ownedby not exists",
            field("relations.ownedby", Matcher::Exists(false)),
            &["team-a", "Team-B"],
        ),
        (
            "relations.ownedby prefix group:other/",
            field(
                "relations.ownedby",
                Matcher::HasPrefix("group:other/".into()),
            ),
            &["Delta"],
        ),
        (
            "relations.dependencyof=gamma",
            Predicate::eq("relations.dependencyOf", &["component:default/gamma"]),
            &["beta"],
        ),
        (
            "item form metadata.tags.java exists",
            field("metadata.tags.java", Matcher::Exists(true)),
            &["Alpha", "gamma"],
        ),
        (
            "item form metadata.tags.java=true",
            Predicate::eq("metadata.tags.java", &["true"]),
            &["Alpha", "gamma"],
        ),
        (
            "all [not component, owner team-a]",
            Predicate::All(vec![
                Predicate::Not(Box::new(Predicate::eq("kind", &["component"]))),
                Predicate::eq("spec.owner", &["team-a"]),
            ]),
            &["alpha-api", "sys-one"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, predicate, expected) in cases {
        let found = matching(&stores, what, &selection(Some(predicate.clone()))).await;
        if found != set(expected) {
            failures.push(format!(
                "{what} ({predicate:?}): expected {:?}, got {found:?}",
                set(expected)
            ));
        }
    }
    let parsed: Vec<(&str, Predicate, &[&str])> = vec![
        (
            "filter kind=component,spec.type=service | kind=group",
            ok(
                "parse_filters",
                Predicate::parse_filters(&["kind=component,spec.type=service", "kind=group"]),
            )
            .expect("a filter"),
            &["Alpha", "gamma", "team-a", "Team-B"],
        ),
        (
            "json $not owner $in [team-a] with $exists system",
            ok(
                "from_json",
                Predicate::from_json(&json!({"$all": [
                    {"$not": {"spec.owner": {"$in": ["team-a"]}}},
                    {"metadata.tags": {"$exists": true}}]})),
            ),
            &["beta", "Delta"],
        ),
        (
            "json $contains Java",
            ok(
                "from_json",
                Predicate::from_json(&json!({"metadata.tags": {"$contains": "Java"}})),
            ),
            &["Alpha", "gamma"],
        ),
    ];
    for (what, predicate, expected) in parsed {
        let found = matching(&stores, what, &selection(Some(predicate.clone()))).await;
        if found != set(expected) {
            failures.push(format!(
                "{what} ({predicate:?}): expected {:?}, got {found:?}",
                set(expected)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "predicate failures:\n{}",
        failures.join("\n")
    );
}

/// Full-text filters on the indexed fields (3+ characters, and 1-2
/// characters), on named indexed fields, on non-indexed fields, with LIKE
/// metacharacters and quotes, and with a predicate.
pub async fn full_text(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let ft = |term: &str, fields: &[&str]| FullTextFilter {
        term: term.into(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
    };
    let cases: Vec<(&str, Option<Predicate>, FullTextFilter, &[&str])> = vec![
        ("payment (3+)", None, ft("payment", &[]), &["Alpha"]),
        ("PAYMENT (case)", None, ft("PAYMENT", &[]), &["Alpha"]),
        (
            "ent serv (substring across words)",
            None,
            ft("ent serv", &[]),
            &["Alpha"],
        ),
        ("ta (2 chars)", None, ft("ta", &[]), &["beta", "Delta"]),
        ("J (1 char)", None, ft("J", &[]), &["Alpha", "gamma"]),
        ("50% (3+ with %)", None, ft("50%", &[]), &["gamma"]),
        ("% (literal)", None, ft("%", &[]), &["gamma"]),
        ("_ (literal)", None, ft("_", &[]), &[]),
        ("quote", None, ft("al\"pha", &[]), &[]),
        ("blank term is no filter", None, ft("   ", &[]), ALL),
        (
            "alpha in metadata.name",
            None,
            ft("alpha", &["metadata.name"]),
            &["Alpha", "alpha-api"],
        ),
        (
            "alpha in metadata.description",
            None,
            ft("alpha", &["metadata.description"]),
            &["Alpha"],
        ),
        (
            "al in metadata.name (short)",
            None,
            ft("al", &["metadata.name"]),
            &["Alpha", "alpha-api"],
        ),
        (
            "ping in spec.definition (not indexed)",
            None,
            ft("ping", &["spec.definition"]),
            &["alpha-api"],
        ),
        (
            "team a in spec.profile.displayName (not indexed)",
            None,
            ft("TEAM A", &["spec.profile.displayName"]),
            &["team-a"],
        ),
        (
            "alpha in name or definition (mixed)",
            None,
            ft("alpha", &["metadata.name", "spec.definition"]),
            &["Alpha", "alpha-api"],
        ),
        (
            "ta with kind=component",
            Some(Predicate::eq("kind", &["component"])),
            ft("ta", &[]),
            &["beta", "Delta"],
        ),
        (
            "team with kind=group",
            Some(Predicate::eq("kind", &["group"])),
            ft("team", &[]),
            &["team-a", "Team-B"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, predicate, filter, expected) in cases {
        let sel = Selection {
            predicate,
            full_text: Some(filter),
            order: Vec::new(),
        };
        let found = matching(&stores, what, &sel).await;
        if found != set(expected) {
            failures.push(format!(
                "{what}: expected {:?}, got {found:?}",
                set(expected)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "full-text failures:\n{}",
        failures.join("\n")
    );
}

/// Ordering by identity fields and spec fields, ascending and descending,
/// several keys, missing values first, ties by insertion order.
pub async fn ordering(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let components = Some(Predicate::eq("kind", &["component"]));
    let cases: Vec<(&str, Selection, &[&str])> = vec![
        (
            "insertion order",
            selection(components.clone()),
            &["Alpha", "beta", "gamma", "Delta"],
        ),
        (
            "metadata.name asc",
            ordered(components.clone(), &[("metadata.name", false)]),
            &["Alpha", "beta", "Delta", "gamma"],
        ),
        (
            "metadata.name desc",
            ordered(components.clone(), &[("metadata.name", true)]),
            &["gamma", "Delta", "beta", "Alpha"],
        ),
        (
            "spec.type asc (ties by insertion)",
            ordered(components.clone(), &[("spec.type", false)]),
            &["Delta", "Alpha", "gamma", "beta"],
        ),
        (
            "spec.type desc (ties by insertion)",
            ordered(components.clone(), &[("spec.type", true)]),
            &["beta", "Alpha", "gamma", "Delta"],
        ),
        (
            "spec.lifecycle asc, metadata.name desc",
            ordered(
                components,
                &[("spec.lifecycle", false), ("metadata.name", true)],
            ),
            &["Delta", "beta", "gamma", "Alpha"],
        ),
        (
            "spec.system asc (missing first)",
            ordered(None, &[("spec.system", false)]),
            &[
                "beta",
                "gamma",
                "team-a",
                "Team-B",
                "sys-one",
                "Delta",
                "Alpha",
                "alpha-api",
            ],
        ),
        (
            "spec.system desc (missing last)",
            ordered(None, &[("spec.system", true)]),
            &[
                "Alpha",
                "alpha-api",
                "beta",
                "gamma",
                "team-a",
                "Team-B",
                "sys-one",
                "Delta",
            ],
        ),
        (
            "kind asc, metadata.name asc",
            ordered(None, &[("kind", false), ("metadata.name", false)]),
            &[
                "alpha-api",
                "Alpha",
                "beta",
                "Delta",
                "gamma",
                "team-a",
                "Team-B",
                "sys-one",
            ],
        ),
        (
            "metadata.namespace desc",
            ordered(None, &[("metadata.namespace", true)]),
            &[
                "Delta",
                "Alpha",
                "beta",
                "gamma",
                "alpha-api",
                "team-a",
                "Team-B",
                "sys-one",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (what, sel, expected) in cases {
        let page = query(&stores, what, &sel, &Start::Beginning, 100).await;
        let got = names(&page.values());
        if got != expected {
            failures.push(format!("{what}: expected {expected:?}, got {got:?}"));
        }
        // Streaming returns the same order.
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let catalog = Arc::clone(&stores.catalog);
        let streamed =
            tokio::spawn(async move { catalog.stream(sel, Start::Beginning, None, tx).await });
        let mut got = Vec::new();
        while let Some(item) = rx.recv().await {
            let text = ok("stream item", item);
            got.push(name_of(
                &serde_json::from_str(&text).expect("streamed JSON"),
            ));
        }
        ok("stream", streamed.await.expect("stream task"));
        if got != expected {
            failures.push(format!(
                "{what} (stream): expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "ordering failures:\n{}",
        failures.join("\n")
    );
}

/// Keyset pagination forwards and backwards, offsets, `more`, `page_end`
/// and `count`, including ties on the sort key.
pub async fn pagination(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let by_name = ordered(None, &[("metadata.name", false)]);
    let expect_page = |what: &str, page: &Page, names_expected: &[&str], more: bool| {
        assert_eq!(names(&page.values()), names_expected, "{what}: items");
        assert_eq!(page.more, more, "{what}: more");
        assert_eq!(
            page.first.is_some(),
            !page.items.is_empty(),
            "{what}: first"
        );
        assert_eq!(page.last.is_some(), !page.items.is_empty(), "{what}: last");
    };
    let p1 = query(&stores, "p1", &by_name, &Start::Beginning, 3).await;
    expect_page("page 1", &p1, &["Alpha", "alpha-api", "beta"], true);
    let p1_last = p1.last.clone().expect("p1.last");
    let p2 = query(&stores, "p2", &by_name, &Start::After(p1_last.clone()), 3).await;
    expect_page(
        "page 2 (after page 1)",
        &p2,
        &["Delta", "gamma", "sys-one"],
        true,
    );
    let p2_first = p2.first.clone().expect("p2.first");
    let p2_last = p2.last.clone().expect("p2.last");
    let p3 = query(&stores, "p3", &by_name, &Start::After(p2_last.clone()), 3).await;
    expect_page("page 3 (after page 2)", &p3, &["team-a", "Team-B"], false);
    let p3_first = p3.first.clone().expect("p3.first");

    let back = query(
        &stores,
        "before p3",
        &by_name,
        &Start::Before(p3_first.clone()),
        3,
    )
    .await;
    expect_page("before page 3", &back, &["Delta", "gamma", "sys-one"], true);
    assert_eq!(
        back.first.as_ref(),
        Some(&p2_first),
        "before page 3: first position"
    );
    let back = query(
        &stores,
        "before p2",
        &by_name,
        &Start::Before(p2_first.clone()),
        3,
    )
    .await;
    expect_page(
        "before page 2, limit 3",
        &back,
        &["Alpha", "alpha-api", "beta"],
        false,
    );
    let back = query(
        &stores,
        "before p2",
        &by_name,
        &Start::Before(p2_first.clone()),
        2,
    )
    .await;
    expect_page(
        "before page 2, limit 2",
        &back,
        &["alpha-api", "beta"],
        true,
    );

    let off = query(&stores, "offset 3", &by_name, &Start::Offset(3), 3).await;
    expect_page("offset 3", &off, &["Delta", "gamma", "sys-one"], true);
    assert_eq!(
        off.first.as_ref(),
        Some(&p2_first),
        "offset 3: first position"
    );
    let off = query(&stores, "offset 7", &by_name, &Start::Offset(7), 3).await;
    expect_page("offset 7", &off, &["Team-B"], false);
    let off = query(&stores, "offset 8", &by_name, &Start::Offset(8), 3).await;
    expect_page("offset 8", &off, &[], false);
    let whole = query(&stores, "limit 8", &by_name, &Start::Beginning, 8).await;
    assert!(!whole.more, "a page holding every row has no more");

    let page_end = |start: Start, limit: usize| {
        let stores = stores.clone();
        let by_name = by_name.clone();
        async move {
            ok(
                "page_end",
                stores.catalog.page_end(&by_name, &start, limit).await,
            )
        }
    };
    assert_eq!(
        page_end(Start::Beginning, 3).await,
        Some(p1_last.clone()),
        "page_end of page 1"
    );
    assert_eq!(
        page_end(Start::After(p1_last), 3).await,
        Some(p2_last.clone()),
        "page_end of page 2"
    );
    assert_eq!(
        page_end(Start::After(p2_last.clone()), 3).await,
        None,
        "page_end of the last page"
    );
    assert_eq!(
        page_end(Start::Offset(3), 3).await,
        Some(p2_last),
        "page_end at offset 3"
    );
    assert_eq!(
        page_end(Start::Beginning, 8).await,
        None,
        "page_end of everything"
    );
    assert_eq!(
        page_end(Start::Beginning, 7).await,
        Some(p3_first),
        "page_end with one row left (the 7th row, team-a, ends the page)"
    );

    // Ties on the sort key, one row per page, both directions.
    let by_type = ordered(
        Some(Predicate::eq("kind", &["component"])),
        &[("spec.type", true)],
    );
    let expected = ["beta", "Alpha", "gamma", "Delta"];
    let mut start = Start::Beginning;
    let mut seen = Vec::new();
    let mut last_page = None;
    for i in 0..expected.len() {
        let page = query(&stores, "step", &by_type, &start, 1).await;
        assert_eq!(
            page.items.len(),
            1,
            "step {i}: one item, got {:?}",
            names(&page.values())
        );
        assert_eq!(
            page.more,
            i + 1 < expected.len(),
            "step {i} ({:?}): more",
            names(&page.values())
        );
        seen.push(name_of(&page.values()[0]));
        start = Start::After(page.last.clone().expect("last"));
        last_page = Some(page);
    }
    assert_eq!(
        seen, expected,
        "stepping forwards through ties (spec.type desc)"
    );
    let mut start = Start::Before(last_page.and_then(|p| p.first).expect("first"));
    let mut seen_back = Vec::new();
    for i in 0..expected.len() - 1 {
        let page = query(&stores, "step back", &by_type, &start, 1).await;
        assert_eq!(page.items.len(), 1, "back step {i}");
        assert_eq!(
            page.more,
            i + 2 < expected.len(),
            "back step {i} ({:?}): more",
            names(&page.values())
        );
        seen_back.push(name_of(&page.values()[0]));
        start = Start::Before(page.first.clone().expect("first"));
    }
    seen_back.reverse();
    assert_eq!(
        seen_back,
        expected[..3],
        "stepping backwards through ties (spec.type desc)"
    );

    // Filtered in insertion order (PostgreSQL reads these pages off the
    // search index alone): paging either way, by offset, `page_end` and the
    // count all agree with the whole answer.
    let component = || Predicate::eq("kind", &["component"]);
    let filtered = [
        ("kind", component()),
        (
            "kind and lifecycle",
            Predicate::All(vec![
                component(),
                Predicate::eq("spec.lifecycle", &["production"]),
            ]),
        ),
        (
            "lifecycle, not type",
            Predicate::All(vec![
                Predicate::eq("spec.lifecycle", &["production"]),
                Predicate::Not(Box::new(Predicate::eq("spec.type", &["openapi"]))),
            ]),
        ),
    ];
    for (what, predicate) in filtered {
        let sel = selection(Some(predicate));
        let whole = names(
            &query(&stores, what, &sel, &Start::Beginning, 100)
                .await
                .values(),
        );
        assert!(whole.len() >= 2, "{what}: {whole:?}");
        let mut start = Start::Beginning;
        let mut forwards = Vec::new();
        let last = loop {
            let page = query(&stores, what, &sel, &start, 1).await;
            forwards.extend(names(&page.values()));
            assert_eq!(
                stores
                    .catalog
                    .page_end(&sel, &start, 1)
                    .await
                    .expect("page_end"),
                page.last.clone().filter(|_| page.more),
                "{what}: page_end after {forwards:?}"
            );
            if !page.more {
                break page.first;
            }
            start = Start::After(page.last.expect("last"));
        };
        assert_eq!(forwards, whole, "{what}: forwards, one per page");
        let mut backwards = vec![whole.last().cloned().expect("one")];
        let mut start = Start::Before(last.expect("first of the last page"));
        loop {
            let page = query(&stores, what, &sel, &start, 1).await;
            backwards.extend(names(&page.values()));
            if !page.more {
                break;
            }
            start = Start::Before(page.first.expect("first"));
        }
        backwards.reverse();
        assert_eq!(backwards, whole, "{what}: backwards, one per page");
        let offset = query(&stores, what, &sel, &Start::Offset(1), 100).await;
        assert_eq!(names(&offset.values()), whole[1..], "{what}: offset 1");
        let n = stores.catalog.count(&sel).await.expect("count");
        assert_eq!(n, whole.len() as u64, "{what}: count");
    }

    // Default order (insertion) pages too.
    let plain = selection(None);
    let a = query(&stores, "plain 1", &plain, &Start::Beginning, 5).await;
    let b = query(
        &stores,
        "plain 2",
        &plain,
        &Start::After(a.last.clone().expect("last")),
        5,
    )
    .await;
    let mut all = names(&a.values());
    all.extend(names(&b.values()));
    assert_eq!(all, ALL, "insertion order across pages");
    assert!(a.more && !b.more, "more flags of insertion-order pages");

    assert_eq!(
        ok("count", stores.catalog.count(&plain).await),
        8,
        "count all"
    );
    let ft = Selection {
        predicate: None,
        full_text: Some(FullTextFilter {
            term: "alpha".into(),
            fields: Vec::new(),
        }),
        order: Vec::new(),
    };
    assert_eq!(
        ok("count", stores.catalog.count(&ft).await),
        2,
        "count with full text"
    );
    // Full text pages in insertion order too, forwards and back.
    let whole = names(
        &query(&stores, "full text", &ft, &Start::Beginning, 10)
            .await
            .values(),
    );
    assert_eq!(whole.len(), 2, "full text matches: {whole:?}");
    let first = query(&stores, "full text 1", &ft, &Start::Beginning, 1).await;
    let second = query(
        &stores,
        "full text 2",
        &ft,
        &Start::After(first.last.clone().expect("last")),
        1,
    )
    .await;
    let back = query(
        &stores,
        "full text back",
        &ft,
        &Start::Before(second.first.clone().expect("first")),
        1,
    )
    .await;
    let mut paged = names(&first.values());
    paged.extend(names(&second.values()));
    assert_eq!(paged, whole, "full text across pages of one");
    assert!(first.more && !second.more, "more flags of full-text pages");
    assert_eq!(
        names(&back.values()),
        names(&first.values()),
        "full text back a page"
    );
    assert!(!back.more, "nothing before the first full-text match");
}

/// Facet counts: original spelling, most frequent first (ties by value),
/// a relation facet, a predicate, unknown fields, facet names as given.
pub async fn facets(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let fc = |pairs: &[(&str, u64)]| -> Vec<FacetCount> {
        pairs
            .iter()
            .map(|(value, count)| FacetCount {
                value: (*value).to_owned(),
                count: *count,
            })
            .collect()
    };
    let asked: Vec<String> = [
        "kind",
        "spec.owner",
        "metadata.tags",
        "relations.ownedBy",
        "spec.nothing",
        "Spec.Lifecycle",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let got = ok("facets", stores.catalog.facets(&asked, None).await);
    let expected: BTreeMap<String, Vec<FacetCount>> = BTreeMap::from([
        (
            "kind".to_owned(),
            fc(&[("Component", 4), ("Group", 2), ("API", 1), ("System", 1)]),
        ),
        ("spec.owner".to_owned(), fc(&[("team-a", 4), ("Team-B", 2)])),
        (
            "metadata.tags".to_owned(),
            fc(&[("java", 2), ("Rust", 1), ("python", 1), ("web", 1)]),
        ),
        (
            "relations.ownedBy".to_owned(),
            fc(&[
                ("group:default/team-a", 4),
                ("group:default/Team-B", 1),
                ("group:other/Team-B", 1),
            ]),
        ),
        ("spec.nothing".to_owned(), Vec::new()),
        (
            "Spec.Lifecycle".to_owned(),
            fc(&[("production", 3), ("deprecated", 1), ("experimental", 1)]),
        ),
    ]);
    let mut failures = Vec::new();
    for (name, want) in &expected {
        if got.get(name) != Some(want) {
            failures.push(format!(
                "facet {name}: expected {want:?}, got {:?}",
                got.get(name)
            ));
        }
    }
    let components = Predicate::eq("kind", &["component"]);
    let got = ok(
        "facets",
        stores.catalog.facets(&asked, Some(&components)).await,
    );
    let expected: BTreeMap<String, Vec<FacetCount>> = BTreeMap::from([
        ("kind".to_owned(), fc(&[("Component", 4)])),
        ("spec.owner".to_owned(), fc(&[("Team-B", 2), ("team-a", 2)])),
        (
            "metadata.tags".to_owned(),
            fc(&[("java", 2), ("Rust", 1), ("python", 1), ("web", 1)]),
        ),
        (
            "relations.ownedBy".to_owned(),
            fc(&[
                ("group:default/team-a", 2),
                ("group:default/Team-B", 1),
                ("group:other/Team-B", 1),
            ]),
        ),
        ("spec.nothing".to_owned(), Vec::new()),
        (
            "Spec.Lifecycle".to_owned(),
            fc(&[("production", 2), ("deprecated", 1), ("experimental", 1)]),
        ),
    ]);
    for (name, want) in &expected {
        if got.get(name) != Some(want) {
            failures.push(format!(
                "facet {name} with kind=component: expected {want:?}, got {:?}",
                got.get(name)
            ));
        }
    }
    let with_relation = Predicate::eq("relations.ownedby", &["group:default/team-a"]);
    let got = ok(
        "facets",
        stores
            .catalog
            .facets(&["kind".to_owned()], Some(&with_relation))
            .await,
    );
    let want = fc(&[("Component", 2), ("API", 1), ("System", 1)]);
    if got.get("kind") != Some(&want) {
        failures.push(format!(
            "facet kind with relations.ownedby=team-a: expected {want:?}, got {:?}",
            got.get("kind")
        ));
    }
    assert!(
        failures.is_empty(),
        "facet failures:\n{}",
        failures.join("\n")
    );
}

/// `stream` sends every selected entity (as served) in order, honours the
/// start and limit, and stops without error when the receiver goes away.
pub async fn stream(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let by_name = ordered(None, &[("metadata.name", false)]);
    let collect = |start: Start, limit: Option<usize>| {
        let catalog = Arc::clone(&stores.catalog);
        let sel = by_name.clone();
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(2);
            let task = tokio::spawn(async move { catalog.stream(sel, start, limit, tx).await });
            let mut out = Vec::new();
            while let Some(item) = rx.recv().await {
                let text = ok("stream item", item);
                out.push(serde_json::from_str::<Value>(&text).expect("streamed JSON"));
            }
            ok("stream", task.await.expect("stream task"));
            out
        }
    };
    let all = collect(Start::Beginning, None).await;
    let page = query(&stores, "all", &by_name, &Start::Beginning, 100).await;
    assert_eq!(all, page.values(), "stream() and query() differ");
    let p1 = query(&stores, "p1", &by_name, &Start::Beginning, 2).await;
    let after = collect(Start::After(p1.last.clone().expect("last")), Some(2)).await;
    assert_eq!(
        names(&after),
        ["beta", "Delta"],
        "stream after a position, limit 2"
    );
    let offset = collect(Start::Offset(6), None).await;
    assert_eq!(names(&offset), ["team-a", "Team-B"], "stream from offset 6");
    let limited = collect(Start::Beginning, Some(3)).await;
    assert_eq!(
        names(&limited),
        ["Alpha", "alpha-api", "beta"],
        "stream limit 3"
    );

    // The receiver goes away after one item: the stream stops, no error.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let catalog = Arc::clone(&stores.catalog);
    let task =
        tokio::spawn(async move { catalog.stream(by_name, Start::Beginning, None, tx).await });
    let first = rx.recv().await.expect("one item");
    ok("first streamed item", first);
    drop(rx);
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stream() did not stop within 10s after its receiver was dropped")
        .expect("stream task");
    ok("stream with a dropped receiver", result);
}

/// The chain of entities that emitted an entity, with cycles and missing
/// parents.
pub async fn ancestry(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = location(&stores, "/catalog/tree.yaml").await;
    let location_entity = |name: &str| json!({"kind": "Location", "metadata": {"name": name}, "spec": {"type": "file"}});
    let records = vec![
        record(location_entity("root-loc"), "file:/tree", None),
        record(
            location_entity("child-loc"),
            "file:/tree",
            Some("location:default/root-loc"),
        ),
        record(
            json!({"kind": "Component", "metadata": {"name": "leaf"}, "spec": {"owner": "team-a"}}),
            "file:/tree",
            Some("location:default/child-loc"),
        ),
        record(
            json!({"kind": "Component", "metadata": {"name": "stray"}, "spec": {}}),
            "file:/tree",
            Some("location:default/gone"),
        ),
        record(
            location_entity("c1"),
            "file:/tree",
            Some("location:default/c2"),
        ),
        record(
            location_entity("c2"),
            "file:/tree",
            Some("location:default/c1"),
        ),
    ];
    write(&stores, &loc, records, HashMap::new()).await;
    let chain = ok(
        "ancestry",
        stores.catalog.ancestry("component:default/leaf").await,
    )
    .expect("ancestry of leaf");
    let got: Vec<(String, Option<String>)> = chain
        .iter()
        .map(|r| (name_of(&r.entity), r.parent.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "leaf".to_owned(),
                Some("location:default/child-loc".to_owned())
            ),
            (
                "child-loc".to_owned(),
                Some("location:default/root-loc".to_owned())
            ),
            ("root-loc".to_owned(), None),
        ],
        "ancestry of leaf"
    );
    assert_eq!(
        chain[0].entity,
        get(&stores, "component:default/leaf").await,
        "ancestry serves entities as get_by_ref does"
    );
    let chain = ok(
        "ancestry",
        stores.catalog.ancestry("component:default/stray").await,
    )
    .expect("ancestry of stray");
    assert_eq!(
        names(&chain.iter().map(|r| r.entity.clone()).collect::<Vec<_>>()),
        ["stray"],
        "missing parent"
    );
    let chain = ok(
        "ancestry",
        stores.catalog.ancestry("location:default/c1").await,
    )
    .expect("ancestry of c1");
    assert_eq!(
        names(&chain.iter().map(|r| r.entity.clone()).collect::<Vec<_>>()),
        ["c1", "c2"],
        "a cycle ends"
    );
    assert!(
        ok(
            "ancestry",
            stores.catalog.ancestry("component:default/nope").await
        )
        .is_none(),
        "ancestry of an unknown entity"
    );
}

// ----------------------------------------------------------------------
// Catalog: locations and deletes
// ----------------------------------------------------------------------

/// Registering (twice: not new, the first id stays), lookups by id, target
/// and entity, listing by source in registration order.
pub async fn locations_insert_and_lookup(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let row = |kind: &str, target: &str| LocationRow {
        id: uuid::Uuid::new_v4().to_string(),
        kind: kind.into(),
        target: target.into(),
    };
    let a = row("file", "/a.yaml");
    let (got, new) = ok(
        "insert_location",
        stores.catalog.insert_location(&a, "config").await,
    );
    assert!(new, "first insert is new");
    assert_eq!(got, a, "first insert returns the row");
    let again = row("file", "/a.yaml");
    let (got, new) = ok(
        "insert_location",
        stores.catalog.insert_location(&again, "api").await,
    );
    assert!(!new, "second insert of the same type and target is not new");
    assert_eq!(got, a, "second insert returns the registered row");
    let b = row("url", "https://example.com/b.yaml");
    let c = row("url", "/a.yaml");
    ok(
        "insert_location",
        stores.catalog.insert_location(&b, "api").await,
    );
    let (_, new) = ok(
        "insert_location",
        stores.catalog.insert_location(&c, "cli").await,
    );
    assert!(new, "same target, other type is another location");
    let all = ok("locations", stores.catalog.locations(None).await);
    assert_eq!(
        all,
        vec![
            (a.clone(), "config".to_owned()),
            (b.clone(), "api".to_owned()),
            (c.clone(), "cli".to_owned())
        ],
        "locations in registration order with their source"
    );
    let api = ok("locations", stores.catalog.locations(Some("api")).await);
    assert_eq!(
        api,
        vec![(b.clone(), "api".to_owned())],
        "locations of source api"
    );
    assert_eq!(
        ok("location", stores.catalog.location(&b.id).await),
        Some(b.clone())
    );
    assert_eq!(ok("location", stores.catalog.location("nope").await), None);
    assert_eq!(
        ok(
            "location_by_target",
            stores.catalog.location_by_target("file", "/a.yaml").await
        ),
        Some(a.clone())
    );
    assert_eq!(
        ok(
            "location_by_target",
            stores.catalog.location_by_target("url", "/a.yaml").await
        ),
        Some(c)
    );
    assert_eq!(
        ok(
            "location_by_target",
            stores.catalog.location_by_target("file", "/A.yaml").await
        ),
        None,
        "targets are compared exactly"
    );
    assert_eq!(
        ok(
            "location_of_entity",
            stores
                .catalog
                .location_of_entity("component:default/x")
                .await
        ),
        None
    );
    write(
        &stores,
        &a,
        vec![record(
            json!({"kind": "Component", "metadata": {"name": "x"}, "spec": {}}),
            "file:/a.yaml",
            None,
        )],
        HashMap::new(),
    )
    .await;
    assert_eq!(
        ok(
            "location_of_entity",
            stores
                .catalog
                .location_of_entity("component:default/x")
                .await
        ),
        Some(a)
    );
}

/// Two replicas registering the same target at once: exactly one is new,
/// both get the same row.
pub async fn locations_concurrent_insert(backend: &dyn Backend) {
    let db = backend.create().await;
    let one = backend.open(&db).await;
    let two = backend.open(&db).await;
    for round in 0..8 {
        let target = format!("https://example.com/{round}.yaml");
        let row = |target: &str| LocationRow {
            id: uuid::Uuid::new_v4().to_string(),
            kind: "url".into(),
            target: target.into(),
        };
        let (r1, r2) = (row(&target), row(&target));
        let (c1, c2) = (Arc::clone(&one.catalog), Arc::clone(&two.catalog));
        let t1 = tokio::spawn(async move { c1.insert_location(&r1, "api").await });
        let t2 = tokio::spawn(async move { c2.insert_location(&r2, "api").await });
        let (a, b) = (
            ok("insert_location (one)", t1.await.expect("task")),
            ok("insert_location (two)", t2.await.expect("task")),
        );
        assert_eq!(
            u8::from(a.1) + u8::from(b.1),
            1,
            "round {round}: exactly one insert is new, got {a:?} and {b:?}"
        );
        assert_eq!(a.0, b.0, "round {round}: both return the registered row");
    }
    let all = ok("locations", one.catalog.locations(None).await);
    assert_eq!(all.len(), 8, "one location per target: {all:?}");
}

/// Removing a location removes its entities (changes, feed); syncing a
/// source's locations registers the missing and removes the others.
pub async fn locations_remove_and_sync(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let loc = load_fixture(&stores).await;
    let head = ok("head", stores.feed.head().await);
    let removed = ok(
        "remove_location",
        stores.catalog.remove_location(&loc.id).await,
    )
    .expect("remove_location of a registered location");
    let expected: Vec<Change> = fixture()
        .iter()
        .map(|e| Change::Removed(entity_key(e)))
        .collect();
    assert_eq!(
        sorted(removed.clone()),
        sorted(expected),
        "changes of remove_location"
    );
    assert_eq!(
        catalog_events_after(&stores, head).await,
        vec![removed],
        "remove_location publishes its changes"
    );
    assert_eq!(
        ok("count", stores.catalog.count(&Selection::default()).await),
        0
    );
    assert_eq!(ok("location", stores.catalog.location(&loc.id).await), None);
    let team_a = ok(
        "get_by_ref",
        stores.catalog.get_by_ref("group:default/team-a").await,
    );
    assert!(
        team_a.is_none(),
        "entity of a removed location still served"
    );
    let facets = ok(
        "facets",
        stores
            .catalog
            .facets(&["kind".to_owned(), "relations.ownedBy".to_owned()], None)
            .await,
    );
    assert!(
        facets.values().all(Vec::is_empty),
        "search rows or relations of removed entities remain: {facets:?}"
    );
    assert_eq!(
        ok(
            "remove_location",
            stores.catalog.remove_location(&loc.id).await
        ),
        None,
        "removing an unknown location"
    );

    // sync_locations
    let x = location(&stores, "/x.yaml").await;
    let y = location(&stores, "/y.yaml").await;
    let z = LocationRow {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "file".into(),
        target: "/z.yaml".into(),
    };
    ok(
        "insert_location",
        stores.catalog.insert_location(&z, "api").await,
    );
    write(
        &stores,
        &y,
        vec![record(
            json!({"kind": "Component", "metadata": {"name": "why"}, "spec": {}}),
            "file:/y.yaml",
            None,
        )],
        HashMap::new(),
    )
    .await;
    let head = ok("head", stores.feed.head().await);
    let wanted = vec![
        ("file".to_owned(), "/x.yaml".to_owned()),
        ("file".to_owned(), "/w.yaml".to_owned()),
    ];
    let changes = ok(
        "sync_locations",
        stores.catalog.sync_locations("config", &wanted).await,
    );
    assert_eq!(
        changes,
        vec![Change::Removed("component:default/why".into())],
        "sync changes"
    );
    assert_eq!(
        catalog_events_after(&stores, head).await,
        vec![changes],
        "sync publishes its changes"
    );
    let config = ok("locations", stores.catalog.locations(Some("config")).await);
    let targets: Vec<&str> = config.iter().map(|(l, _)| l.target.as_str()).collect();
    assert_eq!(
        targets,
        ["/x.yaml", "/w.yaml"],
        "config locations after sync"
    );
    assert_eq!(config[0].0, x, "a wanted location keeps its id");
    assert_eq!(
        ok("location", stores.catalog.location(&y.id).await),
        None,
        "unwanted removed"
    );
    assert_eq!(
        ok("location", stores.catalog.location(&z.id).await),
        Some(z),
        "other sources untouched"
    );
    let again = ok(
        "sync_locations",
        stores.catalog.sync_locations("config", &wanted).await,
    );
    assert!(again.is_empty(), "a second sync changes nothing: {again:?}");
    let config2 = ok("locations", stores.catalog.locations(Some("config")).await);
    assert_eq!(config2, config, "a second sync keeps the same rows");
}

/// Deleting by uid removes the entity with its rows and relations.
pub async fn delete_by_uid(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    load_fixture(&stores).await;
    let beta = get(&stores, "component:default/beta").await;
    let uid = meta(&beta, "uid").as_str().expect("uid").to_owned();
    let head = ok("head", stores.feed.head().await);
    let changes = ok("delete_by_uid", stores.catalog.delete_by_uid(&uid).await);
    assert_eq!(
        changes,
        vec![Change::Removed("component:default/beta".into())]
    );
    assert_eq!(
        catalog_events_after(&stores, head).await,
        vec![changes],
        "delete publishes"
    );
    assert!(ok("get_by_uid", stores.catalog.get_by_uid(&uid).await).is_none());
    assert!(
        ok(
            "get_by_ref",
            stores.catalog.get_by_ref("component:default/beta").await
        )
        .is_none()
    );
    assert_eq!(
        ok("count", stores.catalog.count(&Selection::default()).await),
        7
    );
    let found = matching(
        &stores,
        "python",
        &selection(Some(Predicate::eq("metadata.tags", &["python"]))),
    )
    .await;
    assert!(found.is_empty(), "search rows of a deleted entity remain");
    let team_b = get(&stores, "group:default/team-b").await;
    assert!(
        relation_set("Team-B", &team_b).is_empty(),
        "relations implied by a deleted entity remain: {team_b}"
    );
    let again = ok("delete_by_uid", stores.catalog.delete_by_uid(&uid).await);
    assert!(again.is_empty(), "deleting twice: {again:?}");
    let unknown = ok(
        "delete_by_uid",
        stores.catalog.delete_by_uid("no-such-uid").await,
    );
    assert!(unknown.is_empty());
}

// ----------------------------------------------------------------------
// Feed
// ----------------------------------------------------------------------

/// Publish, read after a sequence number (ordered, limited), head.
pub async fn feed_publish_read_head(backend: &dyn Backend) {
    let db = backend.create().await;
    let one = backend.open(&db).await;
    let two = backend.open(&db).await;
    assert_eq!(
        ok("head", one.feed.head().await),
        0,
        "head of an empty feed"
    );
    assert!(ok("read_after", one.feed.read_after(0, 10).await).is_empty());
    let s1 = ok(
        "publish",
        one.feed.publish("plugins", &json!({"n": 1})).await,
    );
    let s2 = ok(
        "publish",
        two.feed.publish("licences", &json!(["a", 2])).await,
    );
    let s3 = ok("publish", one.feed.publish("cache", &json!(null)).await);
    assert!(
        0 < s1 && s1 < s2 && s2 < s3,
        "sequence numbers increase: {s1} {s2} {s3}"
    );
    assert_eq!(
        ok("head", two.feed.head().await),
        s3,
        "head seen from the other handle"
    );
    let events = ok("read_after", two.feed.read_after(0, 10).await);
    let got: Vec<(i64, &str, &Value)> = events
        .iter()
        .map(|e| (e.seq, e.topic.as_str(), &e.payload))
        .collect();
    assert_eq!(
        got,
        vec![
            (s1, "plugins", &json!({"n": 1})),
            (s2, "licences", &json!(["a", 2])),
            (s3, "cache", &json!(null))
        ],
        "events in order"
    );
    let after = ok("read_after", one.feed.read_after(s1, 10).await);
    assert_eq!(
        after.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [s2, s3],
        "after s1"
    );
    let limited = ok("read_after", one.feed.read_after(0, 2).await);
    assert_eq!(
        limited.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [s1, s2],
        "limit 2"
    );
    assert!(
        ok("read_after", one.feed.read_after(s3, 10).await).is_empty(),
        "after head"
    );
}

/// Catalog writes append their change lists to the feed (topic
/// `catalog`).
pub async fn feed_catalog_changes(backend: &dyn Backend) {
    let db = backend.create().await;
    let stores = backend.open(&db).await;
    let follower = backend.open(&db).await;
    let loc = location(&stores, "/catalog/feed.yaml").await;
    let head = ok("head", follower.feed.head().await);
    let records: Vec<EntityRecord> = fixture()
        .into_iter()
        .map(|e| record(e, "file:/f", None))
        .collect();
    let (_, _, changes) = write(&stores, &loc, records, HashMap::new()).await;
    let events = catalog_events_after(&follower, head).await;
    assert_eq!(
        events,
        vec![changes],
        "a finished writer publishes its changes once"
    );
    let raw = ok("read_after", follower.feed.read_after(head, 100).await);
    let catalog: Vec<_> = raw.iter().filter(|e| e.topic == CATALOG_TOPIC).collect();
    assert_eq!(catalog.len(), 1, "one catalog event per write");

    let head = ok("head", follower.feed.head().await);
    let mut entities = fixture();
    entities[1]["spec"]["lifecycle"] = json!("production");
    let records: Vec<EntityRecord> = entities
        .into_iter()
        .map(|e| record(e, "file:/f", None))
        .collect();
    let (_, _, changes) = write(&stores, &loc, records, HashMap::new()).await;
    assert_eq!(
        changes,
        vec![Change::Changed("component:default/beta".into())]
    );
    assert_eq!(
        catalog_events_after(&follower, head).await,
        vec![changes],
        "update published"
    );
}

/// `wait` returns promptly when another handle publishes, at once when
/// events after `seq` exist, and after the timeout otherwise.
pub async fn feed_wait_wakes_across_handles(backend: &dyn Backend) {
    let db = backend.create().await;
    let publisher = backend.open(&db).await;
    let follower = backend.open(&db).await;
    // Nothing published: the timeout.
    let head = ok("head", follower.feed.head().await);
    let started = Instant::now();
    follower.feed.wait(head, Duration::from_millis(300)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "wait with nothing to wake it took {waited:?} (timeout 300ms)"
    );
    // Events after seq exist already: at once.
    let s = ok(
        "publish",
        publisher.feed.publish("plugins", &json!(1)).await,
    );
    let started = Instant::now();
    follower.feed.wait(s - 1, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "wait for an existing event took {:?}",
        started.elapsed()
    );
    // Another handle publishes while we wait.
    for round in 0..3 {
        let head = ok("head", follower.feed.head().await);
        let feed = Arc::clone(&follower.feed);
        let waiter = tokio::spawn(async move {
            let started = Instant::now();
            feed.wait(head, Duration::from_secs(10)).await;
            started.elapsed()
        });
        // Give the waiter time to start listening, so that the wake-up path
        // (not the initial check) is what returns.
        tokio::time::sleep(Duration::from_millis(300)).await;
        ok(
            "publish",
            publisher
                .feed
                .publish("plugins", &json!({"round": round}))
                .await,
        );
        let waited = waiter.await.expect("waiter");
        assert!(
            waited < Duration::from_secs(3),
            "round {round}: wait(head, 10s) returned after {waited:?} although another handle published"
        );
        let events = ok("read_after", follower.feed.read_after(head, 10).await);
        assert_eq!(
            events.len(),
            1,
            "round {round}: the event is readable after the wake-up"
        );
    }
}

/// Pruning drops old events only (a backend may keep the newest), and
/// sequence numbers keep increasing.
pub async fn feed_prune(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let mut last = 0;
    for i in 0..3 {
        last = ok("publish", stores.feed.publish("cache", &json!(i)).await);
    }
    assert_eq!(
        ok("prune", stores.feed.prune(Duration::from_secs(3600)).await),
        0,
        "nothing is an hour old"
    );
    assert_eq!(
        ok("read_after", stores.feed.read_after(0, 10).await).len(),
        3
    );
    // Their age is measured by the database's clock: poll until it has
    // moved past them. A backend may keep the newest event (so that its
    // head never goes back); every older one must go.
    let started = Instant::now();
    let mut pruned = 0;
    loop {
        pruned += ok("prune", stores.feed.prune(Duration::from_millis(1)).await);
        let left = ok("read_after", stores.feed.read_after(0, 10).await);
        let left: Vec<i64> = left.iter().map(|e| e.seq).collect();
        assert_eq!(
            pruned + left.len() as u64,
            3,
            "prune's counts ({pruned}) and the events left ({left:?}) disagree"
        );
        if left.is_empty() || left == [last] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "prune(1ms) left {left:?} of 3 events after 10s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = ok(
        "publish",
        stores.feed.publish("cache", &json!("after")).await,
    );
    assert!(
        next > last,
        "sequence numbers restart after prune: {next} <= {last}"
    );
}

// ----------------------------------------------------------------------
// Leases
// ----------------------------------------------------------------------

fn lease_name() -> String {
    format!("refresh:{}", uuid::Uuid::new_v4())
}

/// One holder at a time across handles; the holder renews it and keeps it.
pub async fn leases_exclusive_and_renew(backend: &dyn Backend) {
    let db = backend.create().await;
    let a = backend.open(&db).await;
    let b = backend.open(&db).await;
    let name = lease_name();
    let ttl = Duration::from_millis(600);
    let lease =
        ok("claim", a.leases.claim(&name, "replica-a", ttl).await).expect("a claims a new lease");
    assert_eq!(
        lease,
        Lease {
            name: name.clone(),
            holder: "replica-a".into()
        }
    );
    assert!(
        ok("claim", b.leases.claim(&name, "replica-b", ttl).await).is_none(),
        "b claims a held lease"
    );
    // Renewing for longer than the ttl keeps it.
    let started = Instant::now();
    while started.elapsed() < ttl * 3 {
        assert!(
            ok("heartbeat", a.leases.heartbeat(&lease, ttl).await),
            "the holder's heartbeat"
        );
        assert!(
            ok("claim", b.leases.claim(&name, "replica-b", ttl).await).is_none(),
            "b took a lease its holder renews ({:?} in)",
            started.elapsed()
        );
        tokio::time::sleep(ttl / 6).await;
    }
    // Other names are independent.
    let other = lease_name();
    assert!(
        ok("claim", b.leases.claim(&other, "replica-b", ttl).await).is_some(),
        "another name"
    );
    // Concurrent claims: exactly one wins.
    let name = lease_name();
    let (la, lb) = (Arc::clone(&a.leases), Arc::clone(&b.leases));
    let (n1, n2) = (name.clone(), name.clone());
    let t1 = tokio::spawn(async move { la.claim(&n1, "replica-a", Duration::from_secs(30)).await });
    let t2 = tokio::spawn(async move { lb.claim(&n2, "replica-b", Duration::from_secs(30)).await });
    let (r1, r2) = (
        ok("claim", t1.await.expect("task")),
        ok("claim", t2.await.expect("task")),
    );
    assert_eq!(
        u8::from(r1.is_some()) + u8::from(r2.is_some()),
        1,
        "concurrent claims: {r1:?} {r2:?}"
    );
}

/// An expired lease is claimed by another holder; the old holder's
/// heartbeat and completion then fail.
pub async fn leases_expiry_takeover(backend: &dyn Backend) {
    let db = backend.create().await;
    let a = backend.open(&db).await;
    let b = backend.open(&db).await;
    let name = lease_name();
    let ttl = Duration::from_millis(300);
    let started = Instant::now();
    let lease_a = ok("claim", a.leases.claim(&name, "replica-a", ttl).await).expect("a claims");
    let leases = Arc::clone(&b.leases);
    let taken = Arc::new(std::sync::Mutex::new(None));
    let slot = Arc::clone(&taken);
    let n = name.clone();
    eventually(
        "b takes over an expired lease",
        Duration::from_secs(10),
        move || {
            let leases = Arc::clone(&leases);
            let slot = Arc::clone(&slot);
            let n = n.clone();
            async move {
                let got = ok(
                    "claim",
                    leases.claim(&n, "replica-b", Duration::from_secs(30)).await,
                );
                let found = got.is_some();
                *slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = got;
                found
            }
        },
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "b claimed a lease with a 300ms ttl after {elapsed:?}"
    );
    let lease_b = taken
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .expect("b's lease");
    assert_eq!(lease_b.holder, "replica-b");
    assert!(
        !ok("heartbeat", a.leases.heartbeat(&lease_a, ttl).await),
        "heartbeat of a lost lease"
    );
    assert!(
        !ok(
            "complete",
            a.leases.complete(&lease_a, Duration::from_secs(60)).await
        ),
        "completing a lost lease"
    );
    assert!(
        ok("heartbeat", b.leases.heartbeat(&lease_b, ttl).await),
        "the new holder's heartbeat"
    );
    assert!(
        ok("claim", a.leases.claim(&name, "replica-a", ttl).await).is_none(),
        "a claims the lease b now holds"
    );
}

/// Completing makes the work due after `next_in`; releasing makes it due
/// at once; `make_due` makes completed work due now.
pub async fn leases_complete_release_make_due(backend: &dyn Backend) {
    let db = backend.create().await;
    let a = backend.open(&db).await;
    let b = backend.open(&db).await;
    let ttl = Duration::from_secs(30);
    let name = lease_name();
    let lease = ok("claim", a.leases.claim(&name, "replica-a", ttl).await).expect("claim");
    let started = Instant::now();
    assert!(
        ok(
            "complete",
            a.leases.complete(&lease, Duration::from_millis(700)).await
        ),
        "complete"
    );
    assert!(
        !ok("heartbeat", a.leases.heartbeat(&lease, ttl).await),
        "heartbeat after complete"
    );
    assert!(
        ok("claim", b.leases.claim(&name, "replica-b", ttl).await).is_none(),
        "due before next_in"
    );
    assert!(
        ok("claim", a.leases.claim(&name, "replica-a", ttl).await).is_none(),
        "due before next_in (same holder)"
    );
    let leases = Arc::clone(&b.leases);
    let n = name.clone();
    eventually(
        "completed work becomes due after next_in",
        Duration::from_secs(10),
        move || {
            let leases = Arc::clone(&leases);
            let n = n.clone();
            async move { ok("claim", leases.claim(&n, "replica-b", ttl).await).is_some() }
        },
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(600),
        "due after {elapsed:?}, next_in was 700ms"
    );

    let name = lease_name();
    let lease = ok("claim", a.leases.claim(&name, "replica-a", ttl).await).expect("claim");
    ok("release", a.leases.release(&lease).await);
    assert!(
        !ok("heartbeat", a.leases.heartbeat(&lease, ttl).await),
        "heartbeat after release"
    );
    assert!(
        ok("claim", b.leases.claim(&name, "replica-b", ttl).await).is_some(),
        "released work is due at once"
    );

    let name = lease_name();
    let lease = ok("claim", a.leases.claim(&name, "replica-a", ttl).await).expect("claim");
    assert!(ok(
        "complete",
        a.leases.complete(&lease, Duration::from_secs(3600)).await
    ));
    assert!(
        ok("claim", b.leases.claim(&name, "replica-b", ttl).await).is_none(),
        "not due for an hour"
    );
    ok("make_due", a.leases.make_due(&name).await);
    assert!(
        ok("claim", b.leases.claim(&name, "replica-b", ttl).await).is_some(),
        "due after make_due"
    );

    let fresh_name = lease_name();
    ok("make_due", b.leases.make_due(&fresh_name).await);
    assert!(
        ok("claim", a.leases.claim(&fresh_name, "replica-a", ttl).await).is_some(),
        "make_due of unknown work"
    );
}

// ----------------------------------------------------------------------
// Key-value
// ----------------------------------------------------------------------

const QUOTA: Quota = Quota {
    bytes: 100,
    max_value_bytes: 50,
};

fn kv<T: std::fmt::Debug>(what: &str, result: Result<T, KvError>) -> T {
    ok(what, result)
}

/// Set, get, overwrite, delete, binary values, usage accounting.
pub async fn kv_basics(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let s = &stores.kv;
    assert_eq!(
        kv("get", s.get("p", "k1").await),
        None,
        "get of a missing key"
    );
    assert_eq!(kv("usage", s.usage("p").await), 0, "usage of a new plugin");
    kv("set", s.set("p", "k1", b"hello", QUOTA).await);
    assert_eq!(kv("get", s.get("p", "k1").await), Some(b"hello".to_vec()));
    assert_eq!(
        kv("usage", s.usage("p").await),
        7,
        "usage = key bytes + value bytes"
    );
    kv("set", s.set("p", "k1", b"hi", QUOTA).await);
    assert_eq!(
        kv("get", s.get("p", "k1").await),
        Some(b"hi".to_vec()),
        "overwrite"
    );
    assert_eq!(kv("usage", s.usage("p").await), 4, "usage after overwrite");
    let binary = [0u8, 255, 1, 0, 128, 10, 13];
    kv("set", s.set("p", "bin", &binary, QUOTA).await);
    assert_eq!(
        kv("get", s.get("p", "bin").await),
        Some(binary.to_vec()),
        "binary value"
    );
    kv("set", s.set("p", "empty", b"", QUOTA).await);
    assert_eq!(
        kv("get", s.get("p", "empty").await),
        Some(Vec::new()),
        "empty value"
    );
    let unicode = "clé/ключ";
    kv("set", s.set("p", unicode, b"v", QUOTA).await);
    assert_eq!(
        kv("get", s.get("p", unicode).await),
        Some(b"v".to_vec()),
        "unicode key"
    );
    assert_eq!(
        kv("usage", s.usage("p").await),
        4 + 3 + 7 + 5 + (unicode.len() as u64 + 1),
        "usage counts key bytes (UTF-8) + value bytes"
    );
    assert!(
        kv("delete", s.delete("p", "k1").await),
        "delete of an existing key"
    );
    assert!(!kv("delete", s.delete("p", "k1").await), "delete again");
    assert_eq!(kv("get", s.get("p", "k1").await), None);
    for key in ["bin", "empty", unicode] {
        assert!(kv("delete", s.delete("p", key).await));
    }
    assert_eq!(
        kv("usage", s.usage("p").await),
        0,
        "usage after deleting everything"
    );
}

/// The quota: growing writes past it fail with the usage before the write;
/// shrinking writes always pass; too large values fail first.
pub async fn kv_quota(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let s = &stores.kv;
    match s.set("p", "big", &[0; 51], QUOTA).await {
        Err(KvError::ValueTooLarge(50)) => {}
        other => panic!("a 51-byte value with max 50: expected ValueTooLarge(50), got {other:?}"),
    }
    kv("set", s.set("p", "a", &[1; 45], QUOTA).await);
    kv("set", s.set("p", "b", &[2; 45], QUOTA).await);
    assert_eq!(kv("usage", s.usage("p").await), 92);
    match s.set("p", "c", &[3; 8], QUOTA).await {
        Err(KvError::QuotaExceeded {
            used: 92,
            limit: 100,
        }) => {}
        other => panic!(
            "101 bytes of 100: expected QuotaExceeded {{ used: 92, limit: 100 }}, got {other:?}"
        ),
    }
    assert_eq!(
        kv("get", s.get("p", "c").await),
        None,
        "a refused write stored its value"
    );
    kv("set", s.set("p", "c", &[3; 7], QUOTA).await);
    assert_eq!(
        kv("usage", s.usage("p").await),
        100,
        "exactly the quota fits"
    );
    match s.set("p", "a", &[1; 46], QUOTA).await {
        Err(KvError::QuotaExceeded {
            used: 100,
            limit: 100,
        }) => {}
        other => panic!("growing a value past the quota: expected QuotaExceeded, got {other:?}"),
    }
    kv("set", s.set("p", "a", &[1; 10], QUOTA).await);
    assert_eq!(kv("usage", s.usage("p").await), 65, "shrinking frees bytes");
    // Over quota (a lower quota now): shrinking still works, growing not.
    let tight = Quota {
        bytes: 20,
        max_value_bytes: 50,
    };
    kv("set", s.set("p", "b", &[2; 40], tight).await);
    assert_eq!(kv("usage", s.usage("p").await), 60);
    match s.set("p", "d", b"x", tight).await {
        Err(KvError::QuotaExceeded {
            used: 60,
            limit: 20,
        }) => {}
        other => panic!("a new key over a lowered quota: expected QuotaExceeded, got {other:?}"),
    }
    match s.increment("p", "n", 1, tight).await {
        Err(KvError::QuotaExceeded {
            used: 60,
            limit: 20,
        }) => {}
        other => panic!("a new counter over the quota: expected QuotaExceeded, got {other:?}"),
    }
    assert_eq!(
        kv("usage", s.usage("p").await),
        60,
        "refused writes change no usage"
    );
}

/// Key validation (every operation taking a key) and the key length limit.
pub async fn kv_keys_and_errors(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let s = &stores.kv;
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    let max = "k".repeat(MAX_KEY_BYTES);
    let big = Quota {
        bytes: 10_000,
        max_value_bytes: 100,
    };
    for key in ["", long.as_str()] {
        let len = key.len();
        assert!(
            matches!(s.get("p", key).await, Err(KvError::InvalidKey)),
            "get with a {len}-byte key"
        );
        assert!(
            matches!(s.set("p", key, b"v", big).await, Err(KvError::InvalidKey)),
            "set with a {len}-byte key"
        );
        assert!(
            matches!(s.delete("p", key).await, Err(KvError::InvalidKey)),
            "delete with a {len}-byte key"
        );
        assert!(
            matches!(
                s.increment("p", key, 1, big).await,
                Err(KvError::InvalidKey)
            ),
            "increment with a {len}-byte key"
        );
    }
    kv("set", s.set("p", &max, b"v", big).await);
    assert_eq!(
        kv("get", s.get("p", &max).await),
        Some(b"v".to_vec()),
        "a key of the maximum length"
    );
    assert_eq!(kv("usage", s.usage("p").await), MAX_KEY_BYTES as u64 + 1);
}

/// Increment: absent is 0, values are little-endian i64, wrapping, and a
/// value of another size is `NotAnInteger`.
pub async fn kv_increment(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let s = &stores.kv;
    assert_eq!(
        kv("increment", s.increment("p", "n", 5, QUOTA).await),
        5,
        "absent counts as 0"
    );
    assert_eq!(
        kv("usage", s.usage("p").await),
        1 + 8,
        "a counter takes its key + 8 bytes"
    );
    assert_eq!(kv("increment", s.increment("p", "n", -7, QUOTA).await), -2);
    assert_eq!(
        kv("get", s.get("p", "n").await),
        Some((-2i64).to_le_bytes().to_vec()),
        "stored little-endian"
    );
    assert_eq!(
        kv("usage", s.usage("p").await),
        9,
        "incrementing an existing counter adds no bytes"
    );
    kv("set", s.set("p", "m", &i64::MAX.to_le_bytes(), QUOTA).await);
    assert_eq!(
        kv("increment", s.increment("p", "m", 1, QUOTA).await),
        i64::MIN,
        "wrapping add"
    );
    kv("set", s.set("p", "t", b"hello", QUOTA).await);
    assert!(
        matches!(
            s.increment("p", "t", 1, QUOTA).await,
            Err(KvError::NotAnInteger)
        ),
        "increment of a 5-byte value"
    );
    assert_eq!(
        kv("get", s.get("p", "t").await),
        Some(b"hello".to_vec()),
        "NotAnInteger left the value"
    );
    assert_eq!(
        kv("increment", s.increment("p", "z", 0, QUOTA).await),
        0,
        "delta 0 on absent"
    );
    assert_eq!(
        kv("get", s.get("p", "z").await),
        Some(0i64.to_le_bytes().to_vec()),
        "delta 0 stores 0"
    );
}

/// 50 concurrent increments from two handles: every intermediate value
/// is returned once and the sum is exact.
pub async fn kv_concurrent_increments(backend: &dyn Backend) {
    let db = backend.create().await;
    let one = backend.open(&db).await;
    let two = backend.open(&db).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = if i % 2 == 0 {
            Arc::clone(&one.kv)
        } else {
            Arc::clone(&two.kv)
        };
        tasks.push(tokio::spawn(async move {
            store.increment("p", "counter", 1, QUOTA).await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(kv("increment", task.await.expect("task")));
    }
    results.sort_unstable();
    assert_eq!(
        results,
        (1..=50).collect::<Vec<i64>>(),
        "each increment sees its own value"
    );
    assert_eq!(
        kv("get", one.kv.get("p", "counter").await),
        Some(50i64.to_le_bytes().to_vec())
    );
    assert_eq!(
        kv("usage", two.kv.usage("p").await),
        7 + 8,
        "usage after concurrent increments"
    );
}

/// Concurrent writes from two handles never take a plugin past its quota.
pub async fn kv_concurrent_quota(backend: &dyn Backend) {
    let db = backend.create().await;
    let one = backend.open(&db).await;
    let two = backend.open(&db).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            Arc::clone(&one.kv)
        } else {
            Arc::clone(&two.kv)
        };
        // 3-byte key + 7-byte value = 10 bytes: 10 of 20 fit in 100.
        tasks.push(tokio::spawn(async move {
            store.set("p", &format!("k{i:02}"), &[7; 7], QUOTA).await
        }));
    }
    let mut stored = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => stored += 1,
            Err(KvError::QuotaExceeded { limit: 100, .. }) => {}
            Err(e) => panic!("concurrent set: unexpected error {e:?}"),
        }
    }
    assert_eq!(
        stored, 10,
        "exactly 10 writes of 10 bytes fit a 100-byte quota"
    );
    assert_eq!(
        kv("usage", one.kv.usage("p").await),
        100,
        "usage after concurrent writes"
    );
    let keys = kv("list_keys", two.kv.list_keys("p", "", 100).await);
    assert_eq!(keys.len(), 10, "stored keys: {keys:?}");
}

/// Listing keys by prefix (ascending, limited, literal), purging, and
/// plugins never seeing each other's data.
pub async fn kv_list_purge_isolation(backend: &dyn Backend) {
    let (_, stores) = fresh(backend).await;
    let s = &stores.kv;
    let big = Quota {
        bytes: 10_000,
        max_value_bytes: 100,
    };
    for key in ["a/2", "a/1", "b/1", "a", "a/3", "a%x", "a_y", "ab"] {
        kv("set", s.set("p", key, key.as_bytes(), big).await);
    }
    kv("set", s.set("q", "a/1", b"other", big).await);
    kv("set", s.set("q", "a/9", b"other", big).await);
    assert_eq!(
        kv("list_keys", s.list_keys("p", "a/", 10).await),
        ["a/1", "a/2", "a/3"],
        "prefix a/"
    );
    assert_eq!(
        kv("list_keys", s.list_keys("p", "a/", 2).await),
        ["a/1", "a/2"],
        "prefix a/ limit 2"
    );
    assert_eq!(
        kv("list_keys", s.list_keys("p", "", 100).await),
        ["a", "a%x", "a/1", "a/2", "a/3", "a_y", "ab", "b/1"],
        "every key, ascending"
    );
    assert_eq!(
        kv("list_keys", s.list_keys("p", "a%", 10).await),
        ["a%x"],
        "% is literal"
    );
    assert_eq!(
        kv("list_keys", s.list_keys("p", "a_", 10).await),
        ["a_y"],
        "_ is literal"
    );
    assert!(
        kv("list_keys", s.list_keys("p", "zz", 10).await).is_empty(),
        "no match"
    );
    assert!(
        kv("list_keys", s.list_keys("p", "a/", 0).await).is_empty(),
        "limit 0"
    );
    assert_eq!(
        kv("list_keys", s.list_keys("q", "a/", 10).await),
        ["a/1", "a/9"],
        "plugin q's keys"
    );
    assert_eq!(
        kv("get", s.get("q", "a/1").await),
        Some(b"other".to_vec()),
        "same key, other plugin"
    );
    assert_eq!(kv("get", s.get("p", "a/1").await), Some(b"a/1".to_vec()));
    assert_eq!(
        kv("get", s.get("q", "a/2").await),
        None,
        "q sees nothing of p"
    );
    assert_eq!(kv("usage", s.usage("q").await), 16, "usage is per plugin");
    assert!(
        !kv("delete", s.delete("q", "a/2").await),
        "q cannot delete p's key"
    );
    kv("purge", s.purge("p").await);
    assert!(
        kv("list_keys", s.list_keys("p", "", 100).await).is_empty(),
        "keys after purge"
    );
    assert_eq!(kv("usage", s.usage("p").await), 0, "usage after purge");
    assert_eq!(kv("get", s.get("p", "a").await), None);
    assert_eq!(
        kv("list_keys", s.list_keys("q", "", 10).await),
        ["a/1", "a/9"],
        "purge spares other plugins"
    );
    assert_eq!(kv("usage", s.usage("q").await), 16);
    // After a purge the quota starts from zero.
    kv("set", s.set("p", "x", &[0; 50], QUOTA).await);
    assert_eq!(kv("usage", s.usage("p").await), 51);
}

// ----------------------------------------------------------------------
// Admin
// ----------------------------------------------------------------------

/// Ping, schema versions (current), backend name, a location without
/// credentials; a database opened again keeps its data.
pub async fn admin_ping_and_schema(backend: &dyn Backend) {
    let (db, stores) = fresh(backend).await;
    ok("ping", stores.admin.ping().await);
    let backend_name = stores.admin.backend();
    assert!(
        ["sqlite", "postgres"].contains(&backend_name),
        "backend() is {backend_name:?}"
    );
    let shown = stores.admin.location();
    if let Some((_, rest)) = shown.split_once("://") {
        let userinfo = rest.split_once('@').map_or("", |(u, _)| u);
        assert!(
            !userinfo.contains(':'),
            "location() shows a password: {shown}"
        );
    }
    if let Some((_, rest)) = db.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        assert!(
            !shown.contains(password),
            "location() shows the password: {shown}"
        );
    }
    let schema = ok("schema", stores.admin.schema().await);
    assert!(!schema.is_empty(), "schema() lists no store");
    let mut seen = BTreeSet::new();
    for s in &schema {
        assert!(
            !s.store.is_empty(),
            "a store without a name in schema(): {schema:?}"
        );
        assert!(
            seen.insert(s.store.clone()),
            "store listed twice: {schema:?}"
        );
        assert!(s.version >= 1, "{s:?}: not migrated");
        assert_eq!(
            s.version, s.supported,
            "{s:?}: a fresh database is at the newest version"
        );
    }
    assert!(
        seen.contains("catalog") && seen.contains("kv"),
        "schema() must list the catalog and kv stores: {schema:?}"
    );
    // Data survives opening again (migrations run once).
    kv("set", stores.kv.set("p", "k", b"v", QUOTA).await);
    let loc = location(&stores, "/again.yaml").await;
    let again = backend.open(&db).await;
    ok("ping", again.admin.ping().await);
    assert_eq!(
        ok("schema", again.admin.schema().await),
        schema,
        "schema after opening again"
    );
    assert_eq!(
        kv("get", again.kv.get("p", "k").await),
        Some(b"v".to_vec()),
        "kv after opening again"
    );
    assert_eq!(
        ok("location", again.catalog.location(&loc.id).await),
        Some(loc)
    );
}

/// Every check's name, in the order [`conformance_tests!`](crate::conformance_tests) runs them.
pub const CHECKS: &[&str] = &[
    "writer_adds_and_assigns_identity",
    "writer_unchanged_and_updates",
    "writer_duplicates_and_conflicts",
    "writer_orphans_and_keep",
    "writer_unchanged_sources",
    "writer_dropped_stores_nothing",
    "writer_begin_needs_location",
    "reads_by_ref_uid_and_keys",
    "predicates",
    "full_text",
    "ordering",
    "pagination",
    "facets",
    "stream",
    "ancestry",
    "locations_insert_and_lookup",
    "locations_concurrent_insert",
    "locations_remove_and_sync",
    "delete_by_uid",
    "feed_publish_read_head",
    "feed_catalog_changes",
    "feed_wait_wakes_across_handles",
    "feed_prune",
    "leases_exclusive_and_renew",
    "leases_expiry_takeover",
    "leases_complete_release_make_due",
    "kv_basics",
    "kv_quota",
    "kv_keys_and_errors",
    "kv_increment",
    "kv_concurrent_increments",
    "kv_concurrent_quota",
    "kv_list_purge_isolation",
    "admin_ping_and_schema",
    "admin_shared_secret",
    "sessions_shared_and_expiring",
    "plugin_files_revisions_and_removals",
    "counters_summed_over_handles",
    "tokens_use_expiry_and_revocation",
    "policy_drafts_and_publication",
    "policy_seed_once",
    "audit_pages_and_prune",
];

/// The first value stored under a name wins, on every handle, even when
/// two handles store at once.
pub async fn admin_shared_secret(backend: &dyn Backend) {
    let db = backend.create().await;
    let one = backend.open(&db).await;
    let two = backend.open(&db).await;
    let (a, b) = tokio::join!(
        one.admin.shared_secret("admin-token", "from-one"),
        two.admin.shared_secret("admin-token", "from-two"),
    );
    let (a, b) = (ok("shared_secret", a), ok("shared_secret", b));
    assert_eq!(a, b, "two replicas starting together share one secret");
    assert!(a == "from-one" || a == "from-two", "{a}");
    let again = ok(
        "shared_secret",
        one.admin.shared_secret("admin-token", "later").await,
    );
    assert_eq!(again, a, "a stored secret is never replaced");
    let other = ok(
        "shared_secret",
        two.admin.shared_secret("other", "its-own").await,
    );
    assert_eq!(other, "its-own");
}

// ----------------------------------------------------------------------
// Sessions
// ----------------------------------------------------------------------

/// Counters: deltas from two handles (two replicas) on one database add
/// up, concurrent adds lose nothing, and a read takes only its prefix.
pub async fn counters_summed_over_handles(backend: &dyn Backend) {
    let (db, one) = fresh(backend).await;
    let two = backend.open(&db).await;
    let deltas = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
    };
    assert_eq!(
        ok("read nothing", one.counters.read("events:").await),
        Vec::<(String, i64)>::new()
    );
    ok(
        "add one",
        one.counters
            .add(&deltas(&[
                ("events:a:delivered", 3),
                ("events:a:dropped", 1),
            ]))
            .await,
    );
    ok(
        "add two",
        two.counters
            .add(&deltas(&[("events:a:delivered", 4), ("other:x", 9)]))
            .await,
    );
    let adds: Vec<_> = (0..8)
        .map(|i| {
            let counters = if i % 2 == 0 { &one } else { &two }.counters.clone();
            let d = deltas(&[("events:b:delivered", 1), ("events:a:delivered", 1)]);
            tokio::spawn(async move { counters.add(&d).await })
        })
        .collect();
    for add in adds {
        ok("concurrent add", add.await.expect("add task"));
    }
    ok("add nothing", one.counters.add(&[]).await);
    assert_eq!(
        ok("read", two.counters.read("events:").await),
        deltas(&[
            ("events:a:delivered", 15),
            ("events:a:dropped", 1),
            ("events:b:delivered", 8),
        ]),
        "sums over both handles, by name, only the prefix"
    );
    assert_eq!(
        ok("read one plugin", one.counters.read("events:b:").await),
        deltas(&[("events:b:delivered", 8)])
    );
}

/// A session made through one handle is live through another (replicas),
/// its last use is written at most once per granularity, it expires when
/// idle or too old, a revocation ends it everywhere, and the oldest go
/// beyond the cap.
pub async fn sessions_shared_and_expiring(backend: &dyn Backend) {
    use crate::sessions::{SessionLimits, TOUCH_GRANULARITY_MS};
    let (db, one) = fresh(backend).await;
    let two = backend.open(&db).await;
    let limits = SessionLimits {
        idle_ms: 60_000,
        max_age_ms: 300_000,
        max_sessions: 3,
    };
    let t0 = 1_700_000_000_000_i64;
    ok(
        "create",
        one.sessions
            .create("d1", "admin", "csrf-1", &limits, t0)
            .await,
    );
    let seen = ok("touch", two.sessions.touch("d1", &limits, t0 + 10).await)
        .expect("a session made through one handle is live through another");
    assert_eq!(
        (seen.subject.as_str(), seen.csrf.as_str(), seen.created_ms),
        ("admin", "csrf-1", t0)
    );
    assert_eq!(
        seen.last_seen_ms, t0,
        "last use is not written within the granularity"
    );
    let seen = ok(
        "touch",
        one.sessions
            .touch("d1", &limits, t0 + TOUCH_GRANULARITY_MS)
            .await,
    )
    .expect("live");
    assert_eq!(seen.last_seen_ms, t0 + TOUCH_GRANULARITY_MS);
    assert!(
        ok("touch", one.sessions.touch("unknown", &limits, t0).await).is_none(),
        "an unknown digest is no session"
    );

    // Used every 50 s it stays live past the idle time...
    let mut t = t0 + TOUCH_GRANULARITY_MS;
    while t + 50_000 < t0 + limits.max_age_ms {
        t += 50_000;
        assert!(
            ok("touch", two.sessions.touch("d1", &limits, t).await).is_some(),
            "used within the idle time at +{} ms",
            t - t0
        );
    }
    // ... but not past its maximum age.
    assert!(
        ok(
            "touch",
            one.sessions
                .touch("d1", &limits, t0 + limits.max_age_ms)
                .await
        )
        .is_none(),
        "a session past its maximum age is live"
    );
    assert!(
        ok("touch", one.sessions.touch("d1", &limits, t0 + 20).await).is_none(),
        "an expired session is removed, not only refused"
    );

    // Idle expiry.
    ok(
        "create",
        one.sessions
            .create("d2", "admin", "csrf-2", &limits, t0)
            .await,
    );
    assert!(
        ok(
            "touch",
            two.sessions
                .touch("d2", &limits, t0 + limits.idle_ms - 1)
                .await
        )
        .is_some()
    );
    assert!(
        ok(
            "touch",
            two.sessions
                .touch("d2", &limits, t0 + 2 * limits.idle_ms)
                .await
        )
        .is_none(),
        "an idle session is live"
    );

    // Revocation through one handle ends it on the other.
    ok(
        "create",
        one.sessions
            .create("d3", "admin", "csrf-3", &limits, t0)
            .await,
    );
    ok("revoke", two.sessions.revoke("d3").await);
    assert!(
        ok("touch", one.sessions.touch("d3", &limits, t0 + 1).await).is_none(),
        "revoked"
    );
    ok("revoke", two.sessions.revoke("d3").await);

    // The cap: the oldest go first.
    for (i, d) in ["c1", "c2", "c3", "c4"].iter().enumerate() {
        let at = t0 + 1_000 * i64::try_from(i).unwrap_or(0);
        ok(
            "create",
            one.sessions.create(d, "admin", d, &limits, at).await,
        );
    }
    let live: Vec<&str> = {
        let mut live = Vec::new();
        for d in ["c1", "c2", "c3", "c4"] {
            if ok("touch", two.sessions.touch(d, &limits, t0 + 5_000).await).is_some() {
                live.push(d);
            }
        }
        live
    };
    assert_eq!(
        live,
        ["c2", "c3", "c4"],
        "at most max_sessions live, the oldest went"
    );
}

// ----------------------------------------------------------------------
// Plugin files
// ----------------------------------------------------------------------

/// Puts, licences and removals: revisions grow with every change, a put
/// keeps the licence unless given one, every change is a `plugins` event
/// seen by another handle, and a removed file is remembered until it is
/// put again.
pub async fn plugin_files_revisions_and_removals(backend: &dyn Backend) {
    use crate::plugins::PLUGINS_TOPIC;
    let (db, one) = fresh(backend).await;
    let two = backend.open(&db).await;
    let files = |s: &Stores| s.plugins.clone();
    let head = ok("head", two.feed.head().await);
    let r1 = ok(
        "put",
        files(&one)
            .put("hello", "d1", b"wasm-1", Some("lic-1"))
            .await,
    );
    let r2 = ok("put", files(&one).put("hello", "d2", b"wasm-2", None).await);
    assert!(r2 > r1, "revisions grow: {r1} then {r2}");
    let got = ok("get", files(&two).get("hello").await).expect("stored through another handle");
    assert_eq!(
        (
            got.digest.as_str(),
            got.wasm.as_slice(),
            got.license.as_deref(),
            got.revision
        ),
        ("d2", b"wasm-2".as_slice(), Some("lic-1"), r2),
        "a put without a licence keeps the licence"
    );
    let r3 = ok(
        "put_license",
        files(&two).put_license("hello", "lic-2").await,
    )
    .expect("a stored plugin");
    assert!(r3 > r2);
    assert_eq!(
        ok(
            "put_license",
            files(&two).put_license("nobody", "lic").await
        ),
        None,
        "a licence for no plugin"
    );
    ok("put", files(&one).put("other", "o1", b"o", None).await);
    let listed: Vec<(String, String, i64)> = ok("list", files(&two).list().await)
        .into_iter()
        .map(|e| (e.id, e.digest, e.revision))
        .collect();
    assert_eq!(
        listed,
        [
            ("hello".to_owned(), "d2".to_owned(), r3),
            ("other".to_owned(), "o1".to_owned(), listed[1].2)
        ],
        "list, by id"
    );

    // Removal: gone everywhere, remembered with its digest.
    assert!(ok("remove", files(&two).remove("hello").await));
    assert!(
        !ok("remove", files(&two).remove("hello").await),
        "removing twice"
    );
    assert!(ok("get", files(&one).get("hello").await).is_none());
    assert_eq!(
        ok("removed", files(&one).removed().await),
        [("hello".to_owned(), "d2".to_owned())]
    );
    // Every change was an event on the plugins topic.
    let events = ok("read_after", two.feed.read_after(head, 100).await);
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| e.topic == PLUGINS_TOPIC)
        .map(|e| &e.payload)
        .collect();
    assert_eq!(
        ours,
        [
            &json!({"id": "hello", "digest": "d1"}),
            &json!({"id": "hello", "digest": "d2"}),
            &json!({"id": "hello", "digest": "d2"}),
            &json!({"id": "other", "digest": "o1"}),
            &json!({"id": "hello", "digest": null}),
        ],
        "plugins events"
    );
    // Put again, the file is no longer a removed one.
    ok("put", files(&one).put("hello", "d2", b"wasm-2", None).await);
    assert!(ok("removed", files(&two).removed().await).is_empty());
    let again = ok("get", files(&two).get("hello").await).expect("put again");
    assert_eq!(
        again.license, None,
        "a removed plugin's licence went with it"
    );
}

// ----------------------------------------------------------------------
// API tokens, access policies, audit log
// ----------------------------------------------------------------------

/// A token made at `created_ms` with the digest `digest`.
fn token_row(id: &str, digest: &str, created_ms: i64) -> crate::access::TokenRow {
    crate::access::TokenRow {
        id: id.to_owned(),
        name: "ci-bot".to_owned(),
        digest: digest.to_owned(),
        permissions: Vec::new(),
        created_by: "user:default/alice".to_owned(),
        created_ms,
        expires_ms: None,
        last_used_ms: None,
        revoked_ms: None,
    }
}

/// Tokens: every field round-trips; a duplicate id or digest is a
/// conflict; a token made through one handle is usable through another;
/// its last use is written at most once per granularity; an expired or
/// revoked token is not usable (and cannot be revoked) but still listed;
/// the list is newest first and bounded; oversized tokens are refused.
pub async fn tokens_use_expiry_and_revocation(backend: &dyn Backend) {
    use crate::StoreError;
    use crate::access::{MAX_TEXT_BYTES, MAX_TOKEN_PERMISSIONS};
    use crate::sessions::TOUCH_GRANULARITY_MS;
    let (db, one) = fresh(backend).await;
    let two = backend.open(&db).await;
    let t0 = 1_700_000_000_000_i64;
    assert!(ok("list nothing", one.tokens.list_tokens(10).await).is_empty());

    let expiring = crate::access::TokenRow {
        expires_ms: Some(t0 + 60_000),
        ..token_row("t-expiring", "digest-1", t0)
    };
    let restricted = crate::access::TokenRow {
        name: "deployer".to_owned(),
        permissions: vec![
            "catalog.entity.read".to_owned(),
            "catalog.entity.create".to_owned(),
        ],
        created_by: "admin".to_owned(),
        ..token_row("t-restricted", "digest-2", t0 + 1)
    };
    ok("create", one.tokens.create_token(&expiring).await);
    ok("create", one.tokens.create_token(&restricted).await);
    for (what, dup) in [
        ("same digest", token_row("t-other", "digest-1", t0 + 2)),
        ("same id", token_row("t-expiring", "digest-9", t0 + 2)),
    ] {
        match two.tokens.create_token(&dup).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("a token with the {what} as another: expected Conflict, got {other:?}"),
        }
    }
    let mut too_many = token_row("t-big", "digest-big", t0 + 2);
    too_many.permissions = vec!["p".to_owned(); MAX_TOKEN_PERMISSIONS + 1];
    let mut too_long = token_row("t-long", "digest-long", t0 + 2);
    too_long.name = "n".repeat(MAX_TEXT_BYTES + 1);
    for (what, row) in [
        ("too many permissions", too_many),
        ("a name too long", too_long),
    ] {
        match one.tokens.create_token(&row).await {
            Err(StoreError::Input(_)) => {}
            other => panic!("a token with {what}: expected Input, got {other:?}"),
        }
    }
    assert_eq!(
        ok("list", two.tokens.list_tokens(10).await),
        [restricted.clone(), expiring.clone()],
        "every field round-trips, newest first, refused tokens not stored"
    );

    // Use: through another handle, last use written once per granularity.
    let t1 = t0 + 100;
    let used = ok("use", two.tokens.use_token("digest-2", t1).await)
        .expect("a token made through one handle is usable through another");
    assert_eq!(
        used,
        crate::access::TokenRow {
            last_used_ms: Some(t1),
            ..restricted.clone()
        },
        "the first use is written"
    );
    let used = ok(
        "use",
        one.tokens
            .use_token("digest-2", t1 + TOUCH_GRANULARITY_MS - 1)
            .await,
    )
    .expect("live");
    assert_eq!(
        used.last_used_ms,
        Some(t1),
        "last use is not written within the granularity"
    );
    let stored = |list: Vec<crate::access::TokenRow>, id: &str| {
        list.into_iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("token {id} not listed"))
    };
    assert_eq!(
        stored(ok("list", one.tokens.list_tokens(10).await), "t-restricted").last_used_ms,
        Some(t1)
    );
    let t2 = t1 + TOUCH_GRANULARITY_MS;
    let used = ok("use", one.tokens.use_token("digest-2", t2).await).expect("live");
    assert_eq!(used.last_used_ms, Some(t2), "written past the granularity");
    assert_eq!(
        stored(ok("list", two.tokens.list_tokens(10).await), "t-restricted").last_used_ms,
        Some(t2),
        "and stored"
    );
    assert!(
        ok("use", one.tokens.use_token("digest-unknown", t2).await).is_none(),
        "an unknown digest is no token"
    );

    // Expiry: usable until its expiry, not at it; still listed.
    assert!(
        ok(
            "use",
            one.tokens.use_token("digest-1", t0 + 60_000 - 1).await
        )
        .is_some(),
        "usable until it expires"
    );
    assert!(
        ok("use", two.tokens.use_token("digest-1", t0 + 60_000).await).is_none(),
        "an expired token is usable"
    );
    assert!(
        !ok(
            "revoke",
            one.tokens.revoke_token("t-expiring", t0 + 60_000).await
        ),
        "an expired token is not live: nothing to revoke"
    );

    // Revocation through one handle ends it on the other.
    let t3 = t2 + 5;
    assert!(ok(
        "revoke",
        one.tokens.revoke_token("t-restricted", t3).await
    ));
    assert!(
        ok("use", two.tokens.use_token("digest-2", t3 + 1).await).is_none(),
        "a revoked token is usable"
    );
    assert!(
        !ok(
            "revoke",
            two.tokens.revoke_token("t-restricted", t3 + 1).await
        ),
        "revoking twice"
    );
    assert!(!ok("revoke", two.tokens.revoke_token("t-none", t3).await));
    let listed = ok("list", two.tokens.list_tokens(10).await);
    assert_eq!(
        stored(listed.clone(), "t-restricted").revoked_ms,
        Some(t3),
        "revoked tokens are listed with their revocation"
    );
    assert_eq!(stored(listed, "t-expiring").revoked_ms, None);

    // Newest first, at most `limit`.
    for i in 0..5_i64 {
        ok(
            "create",
            one.tokens
                .create_token(&token_row(
                    &format!("t-{i}"),
                    &format!("digest-n{i}"),
                    t0 + 10 + i,
                ))
                .await,
        );
    }
    let ids = |list: Vec<crate::access::TokenRow>| -> Vec<String> {
        list.into_iter().map(|t| t.id).collect()
    };
    assert_eq!(
        ids(ok("list", two.tokens.list_tokens(3).await)),
        ["t-4", "t-3", "t-2"]
    );
    assert_eq!(ok("list", two.tokens.list_tokens(100).await).len(), 7);
    assert!(ok("list", two.tokens.list_tokens(0).await).is_empty());
}

/// Access events (their payloads) after `seq`.
async fn access_events(stores: &Stores, seq: i64) -> Vec<Value> {
    ok("read_after", stores.feed.read_after(seq, 1000).await)
        .into_iter()
        .filter(|e| e.topic == crate::access::ACCESS_TOPIC)
        .map(|e| e.payload)
        .collect()
}

/// Policy drafts and publication: one draft at a time, replaced in place;
/// a publication through any handle makes the draft published and the old
/// published version inactive, and appends exactly one `access` event; a
/// stale or discarded id is not published; ids are never reused.
pub async fn policy_drafts_and_publication(backend: &dyn Backend) {
    use crate::StoreError;
    use crate::access::{MAX_POLICY_DOCUMENT_BYTES, PolicyState, PolicyVersion};
    let (db, one) = fresh(backend).await;
    let two = backend.open(&db).await;
    let t0 = 1_700_000_000_000_i64;
    let head = ok("head", two.feed.head().await);
    assert!(ok("published", one.policies.published().await).is_none());
    assert!(ok("versions", one.policies.versions(10).await).is_empty());
    assert!(
        !ok("discard", one.policies.discard_draft().await),
        "no draft to discard"
    );

    let first = ok(
        "save",
        one.policies.save_draft(r#"{"v":1}"#, "alice", t0).await,
    );
    let second = ok(
        "save",
        two.policies.save_draft(r#"{"v":2}"#, "bob", t0 + 1).await,
    );
    assert!(second > first, "every save gets a new id");
    assert_eq!(
        ok("version", one.policies.version(first).await),
        None,
        "saving again replaces the one draft"
    );
    assert_eq!(
        ok("version", one.policies.version(second).await),
        Some(PolicyVersion {
            id: second,
            state: PolicyState::Draft,
            document: r#"{"v":2}"#.to_owned(),
            author: "bob".to_owned(),
            created_ms: t0 + 1,
            published_ms: None,
            published_by: None,
        }),
        "the draft's document and author replaced"
    );
    assert!(
        !ok(
            "publish",
            one.policies.publish(first, "carol", t0 + 2).await
        ),
        "the id a reviewer saw before the edit is refused"
    );
    let first = second;
    assert!(
        ok("published", two.policies.published().await).is_none(),
        "a draft is not published"
    );
    match one
        .policies
        .save_draft(&"x".repeat(MAX_POLICY_DOCUMENT_BYTES + 1), "alice", t0)
        .await
    {
        Err(StoreError::Input(_)) => {}
        other => panic!("an oversized policy document: expected Input, got {other:?}"),
    }

    // Publish through the other handle.
    assert!(ok(
        "publish",
        two.policies.publish(first, "carol", t0 + 2).await
    ));
    let published = ok("published", one.policies.published().await).expect("published");
    assert_eq!(
        (
            published.id,
            published.state,
            published.document.as_str(),
            published.published_ms,
            published.published_by.as_deref()
        ),
        (
            first,
            PolicyState::Published,
            r#"{"v":2}"#,
            Some(t0 + 2),
            Some("carol")
        )
    );
    assert!(
        !ok(
            "publish",
            one.policies.publish(first, "carol", t0 + 3).await
        ),
        "publishing a published version again"
    );
    assert!(
        !ok("discard", one.policies.discard_draft().await),
        "a published version is no draft"
    );

    // A discarded draft cannot be published; its id is never reused.
    let discarded = ok(
        "save",
        one.policies.save_draft(r#"{"v":3}"#, "alice", t0 + 4).await,
    );
    assert!(discarded > first, "ids increase: {first} then {discarded}");
    assert!(ok("discard", two.policies.discard_draft().await));
    assert!(ok("version", one.policies.version(discarded).await).is_none());
    assert!(
        !ok(
            "publish",
            one.policies.publish(discarded, "carol", t0 + 5).await
        ),
        "publishing a discarded draft"
    );
    let second = ok(
        "save",
        two.policies.save_draft(r#"{"v":4}"#, "dave", t0 + 6).await,
    );
    assert!(
        second > discarded,
        "a discarded draft's id is not given again: {discarded} then {second}"
    );
    assert!(
        !ok(
            "publish",
            one.policies.publish(discarded, "carol", t0 + 7).await
        ),
        "a stale id does not publish the new draft"
    );
    assert!(ok(
        "publish",
        one.policies.publish(second, "erin", t0 + 8).await
    ));

    // The old published version is inactive; newest first.
    let versions = ok("versions", two.policies.versions(10).await);
    let states: Vec<(i64, PolicyState)> = versions.iter().map(|v| (v.id, v.state)).collect();
    assert_eq!(
        states,
        [
            (second, PolicyState::Published),
            (first, PolicyState::Inactive)
        ]
    );
    assert_eq!(
        versions[1].published_by.as_deref(),
        Some("carol"),
        "an inactive version keeps who published it"
    );
    assert_eq!(versions[0].document, r#"{"v":4}"#, "documents included");
    assert_eq!(
        ok("versions", one.policies.versions(1).await).len(),
        1,
        "at most limit"
    );
    assert_eq!(
        ok("published", two.policies.published().await).map(|v| v.id),
        Some(second)
    );
    assert_eq!(
        access_events(&one, head).await,
        [json!({"version": first}), json!({"version": second})],
        "exactly one access event per publication"
    );
}

/// Seeding: the first start stores the document as published (one
/// `access` event); two handles seeding at once (replicas starting
/// together) store exactly one version; a database with any version, even
/// only a draft, is never seeded.
pub async fn policy_seed_once(backend: &dyn Backend) {
    use crate::access::{PolicyState, SEED_AUTHOR};
    let t0 = 1_700_000_000_000_i64;
    let (db, one) = fresh(backend).await;
    let two = backend.open(&db).await;
    let head = ok("head", one.feed.head().await);
    let seeds: Vec<_> = (0..4)
        .map(|i| {
            let policies = if i % 2 == 0 { &one } else { &two }.policies.clone();
            tokio::spawn(async move {
                policies
                    .seed(&format!(r#"{{"seeded_by":{i}}}"#), t0 + i)
                    .await
            })
        })
        .collect();
    let mut stored = 0;
    for seed in seeds {
        if ok("seed", seed.await.expect("seed task")) {
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "exactly one of the concurrent seeds stores");
    let versions = ok("versions", two.policies.versions(10).await);
    assert_eq!(versions.len(), 1, "one version: {versions:?}");
    let seeded = &versions[0];
    assert_eq!(
        (
            seeded.state,
            seeded.author.as_str(),
            seeded.published_by.as_deref()
        ),
        (PolicyState::Published, SEED_AUTHOR, Some(SEED_AUTHOR))
    );
    assert_eq!(
        seeded.published_ms,
        Some(seeded.created_ms),
        "published when stored"
    );
    assert!(
        seeded.document.starts_with(r#"{"seeded_by":"#),
        "{seeded:?}"
    );
    assert_eq!(
        ok("published", one.policies.published().await).as_ref(),
        Some(seeded)
    );
    assert_eq!(
        access_events(&two, head).await,
        [json!({"version": seeded.id})],
        "one access event"
    );
    assert!(
        !ok("seed", one.policies.seed("{}", t0 + 10).await),
        "seeding again"
    );

    // A database holding only a draft is not seeded.
    let (_, other) = fresh(backend).await;
    ok("save", other.policies.save_draft("{}", "alice", t0).await);
    assert!(!ok("seed", other.policies.seed(r#"{"x":1}"#, t0).await));
    assert!(ok("published", other.policies.published().await).is_none());
    assert_eq!(ok("versions", other.policies.versions(10).await).len(), 1);
}

/// The audit log: ids increase, entries round-trip and are read through
/// another handle newest first, a `before` cursor pages, a page is at most
/// the cap, details must be JSON objects of at most 16 KiB serialised, and
/// pruning deletes only older entries.
pub async fn audit_pages_and_prune(backend: &dyn Backend) {
    use crate::StoreError;
    use crate::access::{AuditRow, MAX_AUDIT_DETAIL_BYTES, MAX_AUDIT_PAGE};
    let (db, one) = fresh(backend).await;
    let two = backend.open(&db).await;
    let t0 = 1_700_000_000_000_i64;
    let entry = |i: i64| AuditRow {
        id: -1,
        at_ms: t0 + i,
        actor: "user:default/alice".to_owned(),
        action: "policy.publish".to_owned(),
        target: format!("policy:{i}"),
        detail: json!({"n": i, "nested": {"ok": true}}),
    };
    assert!(ok("entries", two.audit.entries(None, 10).await).is_empty());
    let mut ids = Vec::new();
    for i in 0..5 {
        let handle = if i % 2 == 0 { &one } else { &two };
        ids.push(ok("record", handle.audit.record(&entry(i)).await));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let all = ok("entries", two.audit.entries(None, 10).await);
    let expected: Vec<AuditRow> = (0..5_usize)
        .rev()
        .map(|i| AuditRow {
            id: ids[i],
            ..entry(i64::try_from(i).unwrap_or(0))
        })
        .collect();
    assert_eq!(all, expected, "newest first, every field");
    let page = ok("entries", one.audit.entries(None, 2).await);
    assert_eq!(page, expected[..2]);
    let page = ok("entries", one.audit.entries(Some(page[1].id), 2).await);
    assert_eq!(page, expected[2..4], "the page before the cursor");
    let page = ok("entries", one.audit.entries(Some(page[1].id), 2).await);
    assert_eq!(page, expected[4..]);
    assert!(ok("entries", one.audit.entries(Some(ids[0]), 2).await).is_empty());
    assert!(ok("entries", one.audit.entries(None, 0).await).is_empty());

    // Details: objects only, at most 16 KiB serialised (the bound included).
    let wrapper = json!({"s": ""}).to_string().len();
    let mut fits = entry(9);
    fits.detail = json!({"s": "x".repeat(MAX_AUDIT_DETAIL_BYTES - wrapper)});
    assert_eq!(fits.detail.to_string().len(), MAX_AUDIT_DETAIL_BYTES);
    let fits_id = ok("record 16 KiB", one.audit.record(&fits).await);
    let mut over = entry(9);
    over.detail = json!({"s": "x".repeat(MAX_AUDIT_DETAIL_BYTES - wrapper + 1)});
    let mut not_object = entry(9);
    not_object.detail = json!(["a"]);
    let mut no_actor = entry(9);
    no_actor.actor = String::new();
    for (what, row) in [
        ("a detail over 16 KiB", over),
        ("a detail that is no object", not_object),
        ("no actor", no_actor),
    ] {
        match two.audit.record(&row).await {
            Err(StoreError::Input(_)) => {}
            other => panic!("{what}: expected Input, got {other:?}"),
        }
    }
    let newest = ok("entries", two.audit.entries(None, 1).await);
    assert_eq!(newest.len(), 1);
    assert_eq!(
        (newest[0].id, &newest[0].detail),
        (fits_id, &fits.detail),
        "refused entries are not stored"
    );

    // Pruning: only entries older than the bound.
    assert_eq!(ok("prune", one.audit.prune(t0 + 2).await), 2);
    assert_eq!(ok("prune", one.audit.prune(t0 + 2).await), 0);
    let left: Vec<i64> = ok("entries", two.audit.entries(None, 10).await)
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, [fits_id, ids[4], ids[3], ids[2]]);

    // The page cap.
    let extra = MAX_AUDIT_PAGE + 5 - left.len();
    let mut handles = Vec::new();
    for chunk in 0..4 {
        let audit = if chunk % 2 == 0 { &one } else { &two }.audit.clone();
        let rows: Vec<AuditRow> = (0..extra)
            .filter(|i| i % 4 == chunk)
            .map(|i| entry(100 + i64::try_from(i).unwrap_or(0)))
            .collect();
        handles.push(tokio::spawn(async move {
            for row in rows {
                audit.record(&row).await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for h in handles {
        ok("record", h.await.expect("record task"));
    }
    let page = ok("entries", one.audit.entries(None, usize::MAX).await);
    assert_eq!(page.len(), MAX_AUDIT_PAGE, "a page is at most the cap");
    assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let rest = ok(
        "entries",
        one.audit.entries(page.last().map(|e| e.id), 100).await,
    );
    assert_eq!(rest.len(), 5, "the rest after the cap");
}
