//! The storage conformance suite against the SQLite backend: every
//! database is a fresh temporary data directory; opening it twice gives two
//! replicas sharing its files.

use std::path::Path;
use std::sync::Mutex;

use callboard_store::Stores;
use callboard_store::testing::conformance::Backend;
use callboard_store_sqlite::SqliteOptions;

/// Temporary data directories, kept until the test ends.
#[derive(Default)]
struct Sqlite {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn create(&self) -> String {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let path = dir.path().display().to_string();
        self.dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(dir);
        path
    }

    async fn open(&self, db: &str) -> Stores {
        let dir = db.to_owned();
        tokio::task::spawn_blocking(move || {
            callboard_store_sqlite::open(Path::new(&dir), &SqliteOptions::default())
        })
        .await
        .expect("open task")
        .unwrap_or_else(|e| panic!("opening SQLite stores in {db}: {e}"))
    }
}

callboard_store::conformance_tests!(Sqlite::default());
