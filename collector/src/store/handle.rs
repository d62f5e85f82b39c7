//! The store interface: one handle for the API, the delivery engine, maintenance and the weekly
//! statistics, whichever backend holds the data (the embedded SQLite store, or PostgreSQL). Each method hands the call to the backend; none
//! of the backends' own types or errors show through.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::listing::{ClusterSummary, Stats, StoredReport};
use super::options::StoreOptions;
use super::outbox::{
    DeliveryCursor, DeliveryRow, DeliveryState, OutboxStats, OutboxUpdate, Pending,
};
use super::records::{InsertOutcome, NewReport};
use super::rollup::{Prepared, RollupProgress};
use super::weekly::WeeklyChanges;
use super::{postgres, sqlite};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::stats::Week;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store(Backend);

/// The backend behind a [`Store`].
#[derive(Clone)]
enum Backend {
    /// SQLite under `--data-dir`.
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL at `--database-url`.
    Postgres(postgres::PostgresStore),
}

/// Runs `$body` with `$store` bound to the backend behind `$handle` (each backend's methods of
/// the same name and meaning).
macro_rules! on_backend {
    ($handle:expr, $store:ident => $body:expr) => {
        match &$handle.0 {
            Backend::Sqlite($store) => $body,
            Backend::Postgres($store) => $body,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the embedded store in `dir`, migrates it and checks it is
    /// writable.
    pub fn open(dir: &Path, options: StoreOptions, metrics: Arc<Metrics>) -> Result<Self> {
        sqlite::SqliteStore::open(dir, options, metrics).map(|store| Store(Backend::Sqlite(store)))
    }

    /// Connects to the PostgreSQL database `settings` name, migrates it and checks it takes
    /// writes.
    pub async fn connect(
        settings: &postgres::DatabaseSettings,
        options: StoreOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let store = postgres::PostgresStore::connect(settings, options, metrics).await?;
        store.probe().await.map_err(|error| {
            settings.open_error(
                "the database does not take writes",
                Some(Box::new(error) as _),
            )
        })?;
        Ok(Store(Backend::Postgres(store)))
    }

    /// Stores one report; returns once it is durably committed (or known to be stored).
    pub async fn insert(&self, report: NewReport) -> Result<InsertOutcome> {
        on_backend!(self, store => store.insert(report).await)
    }

    /// Erases every report of a cluster (its opt-out); returns how many were deleted.
    pub async fn delete_cluster(&self, cluster_id: &str) -> Result<u64> {
        on_backend!(self, store => store.delete_cluster(cluster_id).await)
    }

    /// Deletes up to `limit` reports received before `received_before` (unix seconds).
    pub async fn prune(&self, received_before: i64, limit: usize) -> Result<u64> {
        on_backend!(self, store => store.prune(received_before, limit).await)
    }

    /// Tries a small write; marks the store available again when it succeeds.
    pub async fn probe(&self) -> Result<()> {
        on_backend!(self, store => store.probe().await)
    }

    /// Records what a sink's worker learned about its deliveries.
    pub async fn update_outbox(&self, update: OutboxUpdate) -> Result<()> {
        on_backend!(self, store => store.update_outbox(update).await)
    }

    /// Re-queues `sink`'s dead deliveries (`dead_only`), or every report received since `since`
    /// (a backfill); returns how many deliveries are pending again.
    pub async fn requeue(&self, sink: &str, dead_only: bool, since: i64) -> Result<u64> {
        on_backend!(self, store => store.requeue(sink, dead_only, since).await)
    }

    /// Writes a rollup step prepared by [`WeeklyReader::prepare_rollup`] (or says it is stale).
    pub async fn apply_rollup(&self, prepared: Prepared) -> Result<RollupProgress> {
        on_backend!(self, store => store.apply_rollup(prepared).await)
    }

    /// A read connection of its own for the weekly statistics, at the lowest priority: their
    /// reads are heavy on a large fleet, never urgent, and must not hold up the read API or take
    /// CPU from ingest.
    pub fn weekly_reader(&self) -> Result<WeeklyReader> {
        Ok(WeeklyReader(match &self.0 {
            Backend::Sqlite(store) => WeeklyBy::Sqlite(store.weekly_reader()?),
            Backend::Postgres(store) => WeeklyBy::Postgres(store.weekly_reader()),
        }))
    }

    /// A read connection of its own, for one sink's delivery worker.
    pub fn outbox_reader(&self) -> Result<OutboxReader> {
        Ok(OutboxReader(match &self.0 {
            Backend::Sqlite(store) => OutboxBy::Sqlite(store.outbox_reader()?),
            Backend::Postgres(store) => OutboxBy::Postgres(store.outbox_reader()),
        }))
    }

    /// How many reports were stored and deliveries re-queued since the store was opened.
    pub fn queued_total(&self) -> u64 {
        on_backend!(self, store => store.queued_total())
    }

    /// Waits until [`Store::queued_total`] reaches `total`, or `timeout` passes.
    pub async fn wait_for_reports(&self, total: u64, timeout: Duration) {
        on_backend!(self, store => store.wait_for_reports(total, timeout).await)
    }

    /// Deliveries for the read API, in (sink, report) order after `after`.
    pub async fn deliveries(
        &self,
        state: Option<DeliveryState>,
        sink: Option<String>,
        after: Option<DeliveryCursor>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>> {
        on_backend!(self, store => store.deliveries(state, sink, after, limit).await)
    }

    /// Where the store is, as logs name it (a database's URL without its password).
    pub fn describe(&self) -> String {
        on_backend!(self, store => store.describe())
    }

    /// True while writes succeed.
    pub fn is_available(&self) -> bool {
        on_backend!(self, store => store.is_available())
    }

    /// The last write error, while the store is unavailable.
    pub fn last_error(&self) -> Option<String> {
        on_backend!(self, store => store.last_error())
    }

    /// Clusters in id order, after the `after` cursor.
    pub async fn clusters(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ClusterSummary>> {
        on_backend!(self, store => store.clusters(after, limit).await)
    }

    /// Folds every cluster id in the store into `into` with `add`, off the async threads.
    pub async fn fold_cluster_ids<T, F>(&self, into: T, add: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut T, &str) + Send + 'static,
    {
        on_backend!(self, store => store.fold_cluster_ids(into, add).await)
    }

    /// A cluster's reports, newest first, before the `before` cursor; `None` for an unknown
    /// cluster.
    pub async fn cluster_reports(
        &self,
        cluster_id: String,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<StoredReport>>> {
        on_backend!(self, store => store.cluster_reports(cluster_id, before, limit).await)
    }

    /// Fleet statistics over the clusters last seen at or after `since` (unix seconds).
    pub async fn stats(&self, since: i64) -> Result<Stats> {
        on_backend!(self, store => store.stats(since).await)
    }

    /// Updates the store-size gauge (the report count is kept current as reports come and go).
    pub async fn refresh_size_gauge(&self) {
        on_backend!(self, store => store.refresh_size_gauge().await)
    }

    /// Finishes queued work, stops the backend's threads and connections and waits for them.
    pub async fn close(&self) {
        on_backend!(self, store => store.close().await)
    }
}

/// The weekly statistics' own reads.
#[derive(Clone)]
pub struct WeeklyReader(WeeklyBy);

#[derive(Clone)]
enum WeeklyBy {
    Sqlite(sqlite::WeeklyReader),
    Postgres(postgres::WeeklyReader),
}

impl WeeklyReader {
    /// Prepares a rollup step over up to `limit` reports stored since the last one; reports of
    /// weeks starting before `keep_from` (unix seconds) are past retention and not counted.
    pub async fn prepare_rollup(&self, keep_from: i64, limit: usize) -> Result<Prepared> {
        match &self.0 {
            WeeklyBy::Sqlite(reader) => reader.prepare_rollup(keep_from, limit).await,
            WeeklyBy::Postgres(reader) => reader.prepare_rollup(keep_from, limit).await,
        }
    }

    /// The totals of every week before `running`, and the cells of those whose revision
    /// differs from `known`.
    pub async fn changes(
        &self,
        known: BTreeMap<Week, i64>,
        running: Week,
    ) -> Result<WeeklyChanges> {
        match &self.0 {
            WeeklyBy::Sqlite(reader) => reader.changes(known, running).await,
            WeeklyBy::Postgres(reader) => reader.changes(known, running).await,
        }
    }
}

/// A sink worker's own reads of the outbox.
#[derive(Clone)]
pub struct OutboxReader(OutboxBy);

#[derive(Clone)]
enum OutboxBy {
    Sqlite(sqlite::OutboxReader),
    Postgres(postgres::OutboxReader),
}

impl OutboxReader {
    /// Up to `limit` pending deliveries of `sink` due at `now`, oldest report first.
    pub async fn pending(&self, sink: &str, now: i64, limit: usize) -> Result<Pending> {
        match &self.0 {
            OutboxBy::Sqlite(reader) => reader.pending(sink, now, limit).await,
            OutboxBy::Postgres(reader) => reader.pending(sink, now, limit).await,
        }
    }

    /// Counts of `sink`'s outbox.
    pub async fn stats(&self, sink: &str) -> Result<OutboxStats> {
        match &self.0 {
            OutboxBy::Sqlite(reader) => reader.stats(sink).await,
            OutboxBy::Postgres(reader) => reader.stats(sink).await,
        }
    }
}
