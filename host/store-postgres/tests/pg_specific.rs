//! PostgreSQL-specific behaviour the conformance suite cannot check through
//! the traits alone: recovery after the server drops connections, racing
//! migrations, a schema from a newer build, connection hygiene of dropped
//! writers; and an (ignored) load and latency benchmark.

use std::time::{Duration, Instant};

use callboard_store::catalog::{ApplySummary, EntityRecord, LocationRow, LocationWriter};
use callboard_store::query::{FullTextFilter, OrderField, Predicate, Selection, Start};
use callboard_store::testing::conformance::record;
use callboard_store::testing::postgres::{self, Cluster};
use callboard_store::{StoreError, Stores};
use callboard_store_postgres::{PgOptions, connect, schema_status};
use serde_json::json;

async fn fresh_database() -> String {
    tokio::task::spawn_blocking(|| postgres::shared().create_database())
        .await
        .expect("create database")
}

/// The database name at the end of a URL.
fn db_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_owned()
}

async fn psql(db: String, sql: String) -> String {
    tokio::task::spawn_blocking(move || postgres::shared().psql(&db, &sql))
        .await
        .expect("psql task")
        .unwrap_or_else(|e| panic!("psql: {e}"))
}

async fn open(url: &str) -> Stores {
    connect(url, &PgOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Stores on a pool of one connection, which every call then shares.
async fn one_connection(url: &str) -> Stores {
    connect(
        url,
        &PgOptions {
            max_connections: 1,
            ..PgOptions::default()
        },
    )
    .await
    .expect("connect")
}

async fn location(stores: &Stores, target: &str) -> LocationRow {
    let row = LocationRow {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "file".into(),
        target: target.into(),
    };
    stores
        .catalog
        .insert_location(&row, "api")
        .await
        .expect("insert location")
        .0
}

/// A writer for the whole of `loc`.
async fn writer(stores: &Stores, loc: &LocationRow) -> Box<dyn LocationWriter> {
    stores
        .catalog
        .begin(&loc.id)
        .await
        .expect("begin")
        .expect("registered")
}

/// One whole load of `loc`: `records` put in chunks of 500, then finished.
async fn load(stores: &Stores, loc: &LocationRow, records: &[EntityRecord]) -> ApplySummary {
    let mut writer = writer(stores, loc).await;
    for chunk in records.chunks(500) {
        writer.put(chunk.to_vec()).await.expect("put");
    }
    writer.finish(Default::default()).await.expect("finish").0
}

fn component(name: &str, owner: &str, tags: &[&str]) -> serde_json::Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "namespace": "default", "tags": tags,
            "description": format!("The {name} service")},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_and_listener_recover_after_pg_terminate_backend() {
    let url = fresh_database().await;
    let a = open(&url).await;
    let b = open(&url).await;
    a.admin.ping().await.expect("ping");
    let head = a.feed.head().await.expect("head");
    // Warm several pooled connections, then kill every backend of the
    // database (pool connections and the feed listeners).
    let counts = futures_join(&a).await;
    assert!(counts.iter().all(Result::is_ok));
    let killed = psql(
        "postgres".into(),
        format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{}'",
            db_name(&url)
        ),
    )
    .await;
    assert_ne!(killed, "0", "some backends were terminated");
    // Broken connections are never handed out: the very next calls work.
    for _ in 0..20 {
        a.catalog
            .count(&Selection::default())
            .await
            .expect("count after terminate");
    }
    a.admin.ping().await.expect("ping after terminate");
    // The listener reconnects: a publish on replica b wakes a waiter on a.
    let waiter = {
        let feed = a.feed.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            // Give the listener time to notice and reconnect, then wait.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let seq = feed.head().await.expect("head");
            let wait = Instant::now();
            feed.wait(seq, Duration::from_secs(20)).await;
            (started, wait.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seq = b.feed.publish("cache", &json!("x")).await.expect("publish");
    assert!(seq > head);
    let (_, waited) = waiter.await.expect("waiter");
    assert!(
        waited < Duration::from_secs(10),
        "the waiter was woken by the notification, not its timeout ({waited:?})"
    );
}

async fn futures_join(stores: &Stores) -> Vec<Result<u64, StoreError>> {
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let catalog = stores.catalog.clone();
        tasks.push(tokio::spawn(async move {
            catalog.count(&Selection::default()).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_while_the_server_is_down_then_recovers() {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("task")
        .expect("private cluster");
    let cluster = std::sync::Arc::new(cluster);
    let url = cluster.url();
    let options = PgOptions {
        connect_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    };
    let stores = connect(&url, &options).await.expect("connect");
    stores.admin.ping().await.expect("ping");
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .expect("task")
        .expect("stop");
    let err = stores.admin.ping().await.expect_err("ping while down");
    assert!(err.is_unavailable(), "{err:?}");
    let err = stores
        .catalog
        .count(&Selection::default())
        .await
        .expect_err("count while down");
    assert!(err.is_unavailable(), "{err:?}");
    // Waiting never fails while the server is down; it times out.
    let started = Instant::now();
    stores
        .feed
        .wait(i64::MAX - 1, Duration::from_millis(300))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_again())
        .await
        .expect("task")
        .expect("start again");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match stores.admin.ping().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_unavailable(), "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery after restart: {e}"),
        }
    }
    for _ in 0..20 {
        stores
            .catalog
            .count(&Selection::default())
            .await
            .expect("count after restart");
    }
    drop(stores);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let url = fresh_database().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            connect(&url, &PgOptions::default()).await
        }));
    }
    for t in tasks {
        t.await
            .expect("task")
            .expect("connect while others migrate");
    }
    let status = schema_status(&url, &PgOptions::default())
        .await
        .expect("status");
    let stores: Vec<_> = status.iter().map(|s| s.store.as_str()).collect();
    assert_eq!(stores, ["catalog", "kv", "coordination", "plugins", "docs"]);
    assert!(
        status
            .iter()
            .all(|s| s.version == s.supported && s.version > 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let url = fresh_database().await;
    let fresh = schema_status(&url, &PgOptions::default())
        .await
        .expect("status of an empty database");
    assert!(fresh.iter().all(|s| s.version == 0));
    drop(open(&url).await);
    psql(
        db_name(&url),
        "UPDATE schema_migrations SET version = 99 WHERE store = 'kv'".into(),
    )
    .await;
    match connect(&url, &PgOptions::default()).await {
        Err(StoreError::SchemaTooNew {
            store,
            found,
            supported,
        }) => {
            assert_eq!(store, "kv");
            assert_eq!(found, 99);
            assert!(supported < 99);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let status = schema_status(&url, &PgOptions::default())
        .await
        .expect("status");
    assert_eq!(
        status.iter().find(|s| s.store == "kv").map(|s| s.version),
        Some(99)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_unavailable_and_url_errors_hide_the_password() {
    let options = PgOptions {
        connect_timeout: Duration::from_secs(2),
        ..PgOptions::default()
    };
    let err = connect("postgres://u:hunter2@127.0.0.1:1/db", &options)
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(!err.to_string().contains("hunter2"));
    let err = connect("postgres://u:hunter2@127.0.0.1:notaport/db", &options)
        .await
        .expect_err("bad URL");
    assert!(matches!(err, StoreError::Input(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_option_overrides_the_url_and_location_hides_it() {
    let url = fresh_database().await;
    let password = postgres::shared().password().to_owned();
    let wrong = url.replacen(&password, "wrong", 1);
    let stores = connect(
        &wrong,
        &PgOptions {
            password: Some(password.clone()),
            ..PgOptions::default()
        },
    )
    .await
    .expect("the option's password is used");
    let location = stores.admin.location();
    assert!(!location.contains(&password), "{location}");
    assert!(
        location.starts_with("postgres://postgres@127.0.0.1:"),
        "{location}"
    );
    assert_eq!(stores.admin.backend(), "postgres");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_writers_give_their_connection_back_clean() {
    let url = fresh_database().await;
    // One connection: a writer's transaction left open would block (or
    // leak into) everything after it.
    let stores = one_connection(&url).await;
    let loc = location(&stores, "/tmp/a.yaml").await;
    for round in 0..3 {
        let mut writer = writer(&stores, &loc).await;
        writer
            .put(vec![record(
                component(&format!("c{round}"), "team-a", &["x"]),
                "/tmp/a.yaml",
                None,
            )])
            .await
            .expect("put");
        drop(writer);
        assert_eq!(
            stores
                .catalog
                .count(&Selection::default())
                .await
                .expect("count after a dropped writer"),
            0
        );
    }
    load(
        &stores,
        &loc,
        &[record(
            component("kept", "team-a", &[]),
            "/tmp/a.yaml",
            None,
        )],
    )
    .await;
    assert_eq!(
        stores
            .catalog
            .count(&Selection::default())
            .await
            .expect("count"),
        1
    );
}

/// The search migration gives entities stored before it the documents a
/// catalog write gives them (`SearchDoc::for_entity`): the same rows
/// whether written by the writer or rebuilt from the stored JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_migration_backfills_the_documents_writes_give() {
    let url = fresh_database().await;
    let stores = open(&url).await;
    let loc = location(&stores, "/catalog/backfill.yaml").await;
    let mut entities = callboard_store::testing::conformance::fixture();
    entities.push(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
        "metadata": {"name": "JDoe", "namespace": "People", "tags": ["a", 3, "b", ""]},
        "spec": {"profile": {"displayName": "Jane Doë", "email": "jane@example.com"}}}),
    );
    entities.push(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "long", "title": "Long «one»", "tags": "not-a-list",
            "description": "é".repeat(9000)},
        "spec": {"type": "", "lifecycle": 3, "owner": "x"}}),
    );
    entities.push(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
        "metadata": {"name": "plain", "description": ""},
        "spec": {"profile": {"email": "g@example.com"}}}),
    );
    let records: Vec<EntityRecord> = entities
        .into_iter()
        .map(|e| record(e, "file:/catalog/backfill.yaml", None))
        .collect();
    load(&stores, &loc, &records).await;
    drop(stores);
    let rows = "SELECT grp, key, type, coalesce(entity_ref, '-'), coalesce(permission, '-'), \
                title, names, text, location, fields::text, tsv::text, folded, \
                (SELECT n.named::text FROM search_named n WHERE n.id = search_docs.id) \
                FROM search_docs ORDER BY key";
    let written = psql(db_name(&url), rows.into()).await;
    assert!(written.contains("Jane Doë jane@example.com"), "{written}");
    psql(
        db_name(&url),
        "DROP TABLE search_named, search_docs; DROP FUNCTION search_named_keep(), \
         callboard_words(text), callboard_fold(text); \
         UPDATE schema_migrations SET version = 4 WHERE store = 'catalog'"
            .into(),
    )
    .await;
    let stores = open(&url).await;
    let rebuilt = psql(db_name(&url), rows.into()).await;
    assert_eq!(written, rebuilt);
    let hits = stores
        .search
        .search(&callboard_store::search::SearchQuery::new(
            "jane DOE", 0, 10,
        ))
        .await
        .expect("search");
    assert_eq!(hits.hits.len(), 1, "{hits:?}");
    assert_eq!(hits.hits[0].doc.key, "user:people/jdoe");
}

/// Filtered pages run as prepared statements, at most 64 per connection:
/// statements past that bound empty the connection's cache, and every
/// answer stays right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_shapes_past_the_prepared_statement_bound_stay_right() {
    let url = fresh_database().await;
    let stores = one_connection(&url).await;
    let loc = location(&stores, "/tmp/shapes.yaml").await;
    load(
        &stores,
        &loc,
        &[
            record(component("a", "team-a", &["x"]), "/tmp/shapes.yaml", None),
            record(
                component("b", "team-a", &["x", "y"]),
                "/tmp/shapes.yaml",
                None,
            ),
            record(component("c", "team-b", &["y"]), "/tmp/shapes.yaml", None),
        ],
    )
    .await;
    let names = |page: &callboard_store::query::Page| -> Vec<String> {
        page.values()
            .iter()
            .map(|e| {
                e["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    // Each page size is a statement of its own (the limit is part of the
    // text): 150 statements prepared on the one connection, twice over.
    let selection = Selection {
        predicate: Some(Predicate::All(vec![
            Predicate::eq("kind", &["component"]),
            Predicate::eq("metadata.tags", &["x"]),
        ])),
        ..Selection::default()
    };
    for round in 0..2 {
        for limit in 1..=150 {
            let page = stores
                .catalog
                .query(&selection, &Start::Beginning, limit)
                .await
                .unwrap_or_else(|e| panic!("round {round}, limit {limit}: {e}"));
            let expected = &["a", "b"][..limit.min(2)];
            assert_eq!(names(&page), expected, "round {round}, limit {limit}");
            assert_eq!(page.more, limit < 2, "round {round}, limit {limit}");
        }
    }
}

/// Loads `CALLBOARD_BENCH_ENTITIES` (default 100,000) entities and reports
/// load throughput and query latencies. Run with
/// `cargo test -p callboard-store-postgres --release --test pg_specific -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes of load"]
async fn bench_100k() {
    let n: usize = std::env::var("CALLBOARD_BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // An empty database of your own (kept afterwards, for EXPLAIN), or a
    // fresh one of the test cluster.
    let url = match std::env::var("CALLBOARD_TEST_PG_URL") {
        Ok(url) => url,
        Err(_) => fresh_database().await,
    };
    let stores = open(&url).await;
    let loc = location(&stores, "/bench/catalog.yaml").await;
    let owners = ["team-a", "team-b", "team-c", "platform", "payments"];
    let tags = ["java", "rust", "go", "web", "grpc", "internal", "pci"];
    let records: Vec<_> = (0..n)
        .map(|i| {
            let entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": format!("service-{i:06}"), "namespace": "default",
                    "title": format!("Service number {i}"),
                    "description": format!("Handles the {} flow of unit {}", owners[i % 5], i % 997),
                    "tags": [tags[i % 7], tags[(i / 7) % 7]],
                    "annotations": {"github.com/project-slug": format!("acme/service-{i}")}},
                "spec": {"type": if i % 3 == 0 { "website" } else { "service" },
                    "lifecycle": if i % 10 == 0 { "experimental" } else { "production" },
                    "owner": owners[i % 5], "system": format!("system-{}", i % 50),
                    "dependsOn": [format!("component:service-{:06}", (i + 1) % n)]}});
            record(entity, "/bench/catalog.yaml", None)
        })
        .collect();
    let started = Instant::now();
    let summary = load(&stores, &loc, &records).await;
    let elapsed = started.elapsed();
    assert_eq!(summary.added + summary.updated + summary.unchanged, n);
    stores.catalog.optimize().await.expect("analyze");
    eprintln!(
        "loaded {n} entities in {elapsed:?}: {:.0} entities/s",
        n as f64 / elapsed.as_secs_f64()
    );
    let started = Instant::now();
    load(&stores, &loc, &records).await;
    eprintln!("re-read unchanged in {:?}", started.elapsed());

    async fn p50<F, Fut>(label: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut times = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            f().await;
            times.push(t.elapsed());
        }
        times.sort();
        eprintln!("{label}: p50 {:?}, p90 {:?}", times[15], times[27]);
    }
    let catalog = stores.catalog.clone();
    p50("by name", || async {
        catalog
            .get_by_ref("component:default/service-054321")
            .await
            .expect("get");
    })
    .await;
    let filtered = Selection {
        predicate: Some(Predicate::All(vec![
            Predicate::eq("kind", &["component"]),
            Predicate::eq("spec.owner", &["payments"]),
            Predicate::eq("metadata.tags", &["rust"]),
        ])),
        ..Selection::default()
    };
    p50("filtered page of 20", || async {
        catalog
            .query(&filtered, &Start::Beginning, 20)
            .await
            .expect("query");
    })
    .await;
    let sorted = Selection {
        predicate: Some(Predicate::eq("spec.lifecycle", &["experimental"])),
        order: vec![OrderField {
            field: "metadata.name".into(),
            descending: true,
        }],
        ..Selection::default()
    };
    p50("filtered, sorted by name, page of 20", || async {
        catalog
            .query(&sorted, &Start::Beginning, 20)
            .await
            .expect("query");
    })
    .await;
    let text = Selection {
        full_text: Some(FullTextFilter {
            term: "unit 42".into(),
            fields: vec![],
        }),
        ..Selection::default()
    };
    p50("full text page of 20", || async {
        catalog
            .query(&text, &Start::Beginning, 20)
            .await
            .expect("query");
    })
    .await;
    p50("count filtered", || async {
        catalog.count(&filtered).await.expect("count");
    })
    .await;
    let facets = vec!["spec.owner".to_owned(), "metadata.tags".to_owned()];
    p50("facets owner+tags, all", || async {
        catalog.facets(&facets, None).await.expect("facets");
    })
    .await;
    let kind = Predicate::eq("spec.type", &["website"]);
    p50("facets owner+tags, filtered", || async {
        catalog.facets(&facets, Some(&kind)).await.expect("facets");
    })
    .await;
}

/// Loads `CALLBOARD_BENCH_DOCS` (default 100,000) short search documents of
/// a small vocabulary (each word is in about a third of them) and prints
/// the p50 of 50 searches per class of query. Run with
/// `cargo test -p callboard-store-postgres --release --test pg_specific -- --ignored --nocapture search_bench`
/// (`CALLBOARD_TEST_PG_URL`: an empty database of your own, kept for
/// `EXPLAIN`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: a minute of load"]
async fn search_bench_100k() {
    use callboard_store::search::{SearchDoc, SearchQuery};

    const VOCABULARY: [&str; 20] = [
        "payment", "billing", "service", "gateway", "account", "ledger", "invoice", "customer",
        "order", "shipping", "catalog", "search", "runbook", "deploy", "metrics", "alerting",
        "storage", "network", "session", "profile",
    ];
    const KINDS: [&str; 4] = ["Component", "API", "System", "Resource"];
    let n: usize = std::env::var("CALLBOARD_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let url = match std::env::var("CALLBOARD_TEST_PG_URL") {
        Ok(url) => url,
        Err(_) => fresh_database().await,
    };
    let stores = open(&url).await;
    // A small linear congruential generator: the same documents every run.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap_or_default()
    };
    let started = Instant::now();
    let docs: Vec<SearchDoc> = (0..n)
        .map(|i| {
            let mut word = || VOCABULARY[next() % VOCABULARY.len()];
            let title = format!("{} {}", word(), word());
            let text: Vec<&str> = (0..6).map(|_| word()).collect();
            let name = format!("svc{i:06}");
            let catalog = i % 3 != 0;
            let mut fields = serde_json::Map::new();
            fields.insert("kind".into(), json!(KINDS[i % KINDS.len()]));
            fields.insert("lifecycle".into(), json!("production"));
            SearchDoc {
                doc_type: if catalog {
                    "software-catalog"
                } else {
                    "techdocs"
                }
                .into(),
                key: format!("bench:{name}"),
                entity_ref: None,
                permission: None,
                title,
                names: format!("{name} component:default/{name}"),
                text: text.join(" "),
                location: format!("/bench/{name}"),
                fields,
            }
        })
        .collect();
    for (batch, chunk) in docs.chunks(1_000).enumerate() {
        stores
            .search
            .replace_group(&format!("bench:{batch}"), chunk.to_vec())
            .await
            .expect("replace_group");
    }
    stores.catalog.optimize().await.expect("analyze");
    eprintln!("loaded {n} search documents in {:?}", started.elapsed());

    let search = stores.search.clone();
    for (label, term) in [
        ("common word", "payment"),
        ("prefix of a common word", "paym"),
        ("infix of a common word", "yme"),
        ("two common words", "payment billing"),
        ("typo (nothing exact)", "paymnet"),
        ("rare entity name", "svc054321"),
    ] {
        let query = SearchQuery::new(term, 0, 25);
        let first = search.search(&query).await.expect("search");
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            search.search(&query).await.expect("search");
            times.push(t.elapsed());
        }
        times.sort();
        eprintln!(
            "{label} ({term:?}): p50 {:?}, p90 {:?}; {} hits, total {:?}, types {:?}",
            times[25],
            times[45],
            first.hits.len(),
            first.total,
            first.types
        );
    }
}
