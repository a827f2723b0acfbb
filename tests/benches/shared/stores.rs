//! The stores a side-by-side benchmark runs on: SQLite files in `dir`, or a
//! fresh database of the private PostgreSQL cluster (or, with
//! `CALLBOARD_BENCH_PG_URL`, a database of your own, kept for `EXPLAIN`
//! afterwards).

use std::path::Path;

pub async fn open_stores(backend: &str, dir: &Path) -> callboard_store::Stores {
    match backend {
        "postgres" => {
            let url = match std::env::var("CALLBOARD_BENCH_PG_URL") {
                Ok(url) => url,
                Err(_) => tokio::task::spawn_blocking(callboard_store::testing::postgres::shared)
                    .await
                    .unwrap()
                    .create_database(),
            };
            callboard_store_postgres::connect(&url, &callboard_store_postgres::PgOptions::default())
                .await
                .unwrap()
        }
        _ => callboard_store_sqlite::open(dir, &callboard_store_sqlite::SqliteOptions::default())
            .unwrap(),
    }
}
