//! The store's conformance suite: every behaviour the collector relies on, written once against
//! the store interface and run on each backend (`tests/store.rs`). A backend is a [`Backend`]: it
//! opens one test's store, fresh the first time and with the same data every time after.

use std::sync::Arc;

use collector::metrics::Metrics;
use collector::sinks::SinkKind;
use collector::store::{SinkRegistration, Store, StoreOptions};

pub mod commits;
pub mod listing;
pub mod outbox;
pub mod reports;
pub mod weekly;

/// Where one test's store lives.
pub trait Backend {
    /// Opens the test's store with `options`, counting into `metrics`.
    async fn open_with(&self, options: StoreOptions, metrics: Arc<Metrics>) -> Store;

    /// Opens the test's store with no sink.
    async fn open(&self) -> Store {
        self.open_with(StoreOptions::default(), Arc::new(Metrics::new()))
            .await
    }

    /// Opens the test's store with a (Segment) sink of each of `names`.
    async fn open_with_sinks(&self, names: &[&str]) -> Store {
        let sinks = names
            .iter()
            .map(|name| SinkRegistration {
                name: name.to_string(),
                kind: SinkKind::Segment,
            })
            .collect();
        let options = StoreOptions {
            sinks,
            ..StoreOptions::default()
        };
        self.open_with(options, Arc::new(Metrics::new())).await
    }
}

/// PostgreSQL: a fresh database on the test server (`COLLECTOR_TEST_DATABASE_URL`).
pub struct Postgres(pub crate::database::TestDatabase);

impl Postgres {
    /// A fresh database for `test`, or `None` when PostgreSQL tests are skipped.
    pub async fn new(test: &str) -> Option<Self> {
        crate::database::TestDatabase::create(test)
            .await
            .map(Postgres)
    }
}

impl Backend for Postgres {
    async fn open_with(&self, options: StoreOptions, metrics: Arc<Metrics>) -> Store {
        Store::connect(&self.0.settings(), options, metrics)
            .await
            .unwrap()
    }
}

/// The embedded store, in a temporary data directory of its own.
pub struct Sqlite(pub tempfile::TempDir);

impl Sqlite {
    /// A fresh data directory.
    pub fn new() -> Self {
        Sqlite(tempfile::tempdir().unwrap())
    }
}

impl Backend for Sqlite {
    async fn open_with(&self, options: StoreOptions, metrics: Arc<Metrics>) -> Store {
        Store::open(self.0.path(), options, metrics).unwrap()
    }
}
