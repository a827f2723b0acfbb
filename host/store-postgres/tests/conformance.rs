//! The storage conformance suite against the PostgreSQL backend: one
//! private cluster per test process (`callboard_store::testing::postgres`),
//! a fresh database per test; connecting twice gives two replicas.
//!
//! Plus what only a server can do: refused credentials, connections killed
//! by the server, and a server restart.

use std::time::{Duration, Instant};

use callboard_store::Stores;
use callboard_store::testing::conformance::Backend;
use callboard_store::testing::postgres::{self, Cluster};
use callboard_store_postgres::PgOptions;

/// Databases of the shared cluster.
struct Pg;

#[async_trait::async_trait]
impl Backend for Pg {
    async fn create(&self) -> String {
        tokio::task::spawn_blocking(|| postgres::shared().create_database())
            .await
            .expect("create_database task")
    }

    async fn open(&self, db: &str) -> Stores {
        callboard_store_postgres::connect(db, &PgOptions::default())
            .await
            .unwrap_or_else(|e| panic!("connecting to {db}: {e}"))
    }
}

callboard_store::conformance_tests!(Pg);

/// The database name at the end of a URL.
fn db_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// Polls `ping` until it succeeds, for at most `limit`.
async fn until_ping(stores: &Stores, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match stores.admin.ping().await {
            Ok(()) => return started.elapsed(),
            Err(e) => assert!(
                started.elapsed() < limit,
                "ping still failing after {limit:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_an_error() {
    let url = Pg.create().await;
    let cluster = postgres::shared();
    let wrong = url.replace(cluster.password(), "not-the-password");
    let result = callboard_store_postgres::connect(&wrong, &PgOptions::default()).await;
    match result {
        Err(e) => {
            let text = e.to_string();
            assert!(
                !text.contains("not-the-password"),
                "the error shows the password: {text}"
            );
        }
        Ok(stores) => {
            // A lazy pool may only fail on first use.
            let ping = stores.admin.ping().await;
            assert!(ping.is_err(), "a wrong password was accepted");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_killed_connections() {
    let url = Pg.create().await;
    let stores = Pg.open(&url).await;
    stores.admin.ping().await.expect("ping");
    stores
        .kv
        .set(
            "p",
            "k",
            b"v",
            callboard_store::kv::Quota {
                bytes: 1000,
                max_value_bytes: 100,
            },
        )
        .await
        .expect("set");
    let db = db_name(&url).to_owned();
    let killed = tokio::task::spawn_blocking(move || {
        postgres::shared().psql(
            "postgres",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{db}' AND pid <> pg_backend_pid()"
            ),
        )
    })
    .await
    .expect("psql task")
    .expect("terminating connections");
    assert_ne!(killed, "0", "no connection to terminate");
    until_ping(&stores, Duration::from_secs(20)).await;
    let value = stores
        .kv
        .get("p", "k")
        .await
        .expect("get after reconnecting");
    assert_eq!(value, Some(b"v".to_vec()));
    stores
        .catalog
        .count(&Default::default())
        .await
        .expect("catalog after reconnecting");
    stores.feed.head().await.expect("feed after reconnecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_restart() {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("start task")
        .unwrap_or_else(|e| panic!("private cluster: {e}"));
    let cluster = std::sync::Arc::new(cluster);
    let c = std::sync::Arc::clone(&cluster);
    let url = tokio::task::spawn_blocking(move || c.create_database())
        .await
        .expect("create task");
    let stores = callboard_store_postgres::connect(&url, &PgOptions::default())
        .await
        .expect("connect");
    let seq = stores
        .feed
        .publish("cache", &serde_json::json!("before"))
        .await
        .expect("publish");

    let c = std::sync::Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .expect("stop task")
        .expect("stop");
    match stores.admin.ping().await {
        Err(e) => assert!(
            e.is_unavailable(),
            "ping while the server is down: expected Unavailable, got {e:?}"
        ),
        Ok(()) => panic!("ping succeeded while the server is down"),
    }
    let started = Instant::now();
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        stores.feed.wait(seq, Duration::from_millis(200)),
    )
    .await;
    assert!(waited.is_ok(), "feed.wait hung while the server was down");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "wait took {:?}",
        started.elapsed()
    );

    let c = std::sync::Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.start_again())
        .await
        .expect("start task")
        .expect("start again");
    until_ping(&stores, Duration::from_secs(30)).await;
    let events = stores
        .feed
        .read_after(0, 10)
        .await
        .expect("read_after after restart");
    assert_eq!(events.len(), 1, "the event published before the restart");

    // The feed's notifications work again after the restart.
    let follower = callboard_store_postgres::connect(&url, &PgOptions::default())
        .await
        .expect("connect");
    let head = follower.feed.head().await.expect("head");
    let feed = std::sync::Arc::clone(&follower.feed);
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        feed.wait(head, Duration::from_secs(10)).await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stores
        .feed
        .publish("cache", &serde_json::json!("after"))
        .await
        .expect("publish after restart");
    let waited = waiter.await.expect("waiter");
    assert!(
        waited < Duration::from_secs(3),
        "wait after a restart returned after {waited:?}"
    );
    drop(stores);
    drop(follower);
    drop(cluster);
}
