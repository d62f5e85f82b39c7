//! The PostgreSQL backend, for collectors that outgrow one embedded store: the same behaviour as
//! the embedded store (the conformance suite runs on both), over a pool of connections and one
//! writer task that holds the database's writer lock.

mod connect;
mod explain;
mod insert;
mod meta;
mod outbox;
mod read;
mod removal;
mod rollup;
mod schema;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

pub use connect::DatabaseSettings;
pub use schema::SCHEMA_VERSION;

use self::explain::read_error;
use self::write::{Command, QUEUE_DEPTH, Reply};
use crate::error::{BoxError, Error, Result};
use crate::metrics::Metrics;
use crate::stats::Week;
use crate::store::listing::{ClusterSummary, Stats, StoredReport};
use crate::store::options::StoreOptions;
use crate::store::outbox::{
    DeliveryCursor, DeliveryRow, DeliveryState, OutboxStats, OutboxUpdate, Pending,
};
use crate::store::records::{InsertOutcome, NewReport};
use crate::store::rollup::{Prepared, RollupProgress};
use crate::store::weekly::WeeklyChanges;
use crate::store::writes::WriterState;

/// Handle to a migrated database; cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    described: Arc<str>,
    commands: mpsc::Sender<Command>,
    shared: Arc<WriterState>,
    writer: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl PostgresStore {
    /// Connects to the database `settings` name, migrates it, records the configured sinks and
    /// starts the writer.
    pub async fn connect(
        settings: &DatabaseSettings,
        options: StoreOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let pool = settings.pool()?;
        // The writer's lock first: a second collector must change nothing before it is refused.
        let mut locked = write::locked_connection(&pool, None).await.map_err(|e| {
            settings.open_error("cannot connect and take the writer's lock", Some(e))
        })?;
        let client = &mut locked.client;
        schema::migrate(client, settings).await?;
        let failed = |advice: &'static str| {
            move |e: tokio_postgres::Error| {
                settings.open_error(advice, Some(Box::new(e) as BoxError))
            }
        };
        let tx = client
            .transaction()
            .await
            .map_err(failed("cannot record the sinks"))?;
        outbox::register(&tx, &options.sinks, common::time::unix_now())
            .await
            .map_err(failed("cannot record the sinks"))?;
        tx.commit()
            .await
            .map_err(failed("cannot record the sinks"))?;
        let tx = client
            .transaction()
            .await
            .map_err(failed("cannot check the weekly statistics"))?;
        if rollup::reset_if_registry_changed(&tx)
            .await
            .map_err(failed("cannot check the weekly statistics"))?
        {
            tracing::info!(
                "the weekly statistics are built from the stored reports (a new database, or a \
                 collector with other dimensions)"
            );
        }
        tx.commit()
            .await
            .map_err(failed("cannot check the weekly statistics"))?;
        for (sink, waiting) in outbox::unconfigured(&**client, &options.sinks)
            .await
            .map_err(failed("cannot read the outbox"))?
        {
            tracing::warn!(
                sink,
                deliveries = waiting,
                "a sink that is no longer configured still has deliveries in the outbox; they \
                 are kept, and delivered if the sink is configured again"
            );
        }
        let reports = read::report_count(client)
            .await
            .map_err(|e| settings.open_error("cannot count the stored reports", Some(e)))?;
        let shared = Arc::new(WriterState::new(metrics, reports));
        let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer = tokio::spawn(write::run(pool.clone(), locked, receiver, shared.clone()));
        Ok(PostgresStore {
            pool,
            described: settings.describe().into(),
            commands,
            shared,
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// Stores one report; returns once it is committed (or known to be stored).
    pub async fn insert(&self, report: NewReport) -> Result<InsertOutcome> {
        self.ask(|reply| Command::Insert(Box::new(report), reply))
            .await
    }

    /// Records what a sink's worker learned about its deliveries.
    pub async fn update_outbox(&self, update: OutboxUpdate) -> Result<()> {
        self.ask(|reply| Command::Outbox(Box::new(update), reply))
            .await
    }

    /// Re-queues `sink`'s dead deliveries (`dead_only`), or every report received since `since`
    /// (a backfill); returns how many deliveries are pending again.
    pub async fn requeue(&self, sink: &str, dead_only: bool, since: i64) -> Result<u64> {
        self.ask(|reply| Command::Requeue {
            sink: sink.to_owned(),
            dead_only,
            since,
            reply,
        })
        .await
    }

    /// Erases every report of a cluster (its opt-out); returns how many were deleted.
    pub async fn delete_cluster(&self, cluster_id: &str) -> Result<u64> {
        self.ask(|reply| Command::DeleteCluster(cluster_id.to_owned(), reply))
            .await
    }

    /// Deletes up to `limit` reports received before `received_before` (unix seconds).
    pub async fn prune(&self, received_before: i64, limit: usize) -> Result<u64> {
        self.ask(|reply| Command::Prune {
            received_before,
            limit,
            reply,
        })
        .await
    }

    /// Tries a small write; marks the store available again when it succeeds.
    pub async fn probe(&self) -> Result<()> {
        self.ask(Command::Probe).await
    }

    /// Writes a rollup step prepared by [`WeeklyReader::prepare_rollup`] (or says it is stale).
    pub async fn apply_rollup(&self, prepared: Prepared) -> Result<RollupProgress> {
        self.ask(|reply| Command::Rollup(Box::new(prepared), reply))
            .await
    }

    /// The weekly statistics' reads.
    pub fn weekly_reader(&self) -> WeeklyReader {
        WeeklyReader(self.pool.clone())
    }

    /// A sink worker's reads of the outbox.
    pub fn outbox_reader(&self) -> OutboxReader {
        OutboxReader(self.pool.clone())
    }

    /// Deliveries for the read API, in (sink, report) order after `after`.
    pub async fn deliveries(
        &self,
        state: Option<DeliveryState>,
        sink: Option<String>,
        after: Option<DeliveryCursor>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>> {
        let mut client = self.client().await?;
        let snapshot = snapshot(&mut client).await?;
        let rows = outbox::list(&*snapshot, state, sink.as_deref(), after, limit)
            .await
            .map_err(read_error)?;
        snapshot.commit().await.map_err(read_error)?;
        Ok(rows)
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Reports stored since the store was opened.
    pub fn queued_total(&self) -> u64 {
        self.shared.queued_total()
    }

    /// Waits until [`PostgresStore::queued_total`] reaches `total`, or `timeout` passes.
    pub async fn wait_for_reports(&self, total: u64, timeout: Duration) {
        self.shared.wait_for_reports(total, timeout).await;
    }

    /// The database, without its password.
    pub fn describe(&self) -> String {
        self.described.to_string()
    }

    /// True while writes succeed.
    pub fn is_available(&self) -> bool {
        self.shared.is_available()
    }

    /// The last write error, while the store is unavailable.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error()
    }

    /// Clusters in id order, after the `after` cursor.
    pub async fn clusters(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ClusterSummary>> {
        let client = self.client().await?;
        read::clusters(&client, after.as_deref(), limit)
            .await
            .map_err(read_error)
    }

    /// Folds every cluster id in the store into `into` with `add`.
    pub async fn fold_cluster_ids<T, F>(&self, into: T, add: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut T, &str) + Send + 'static,
    {
        let client = self.client().await?;
        read::fold_cluster_ids(&client, into, add)
            .await
            .map_err(read_error)
    }

    /// A cluster's reports, newest first, before the `before` cursor; `None` for an unknown
    /// cluster.
    pub async fn cluster_reports(
        &self,
        cluster_id: String,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<StoredReport>>> {
        let client = self.client().await?;
        read::cluster_reports(&client, &cluster_id, before, limit)
            .await
            .map_err(read_error)
    }

    /// Fleet statistics over the clusters last seen at or after `since` (unix seconds).
    pub async fn stats(&self, since: i64) -> Result<Stats> {
        let client = self.client().await?;
        read::stats(&client, since).await.map_err(read_error)
    }

    /// Updates the store-size gauge: the database's size on the server.
    pub async fn refresh_size_gauge(&self) {
        let Ok(client) = self.client().await else {
            return;
        };
        if let Ok(row) = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
        {
            self.shared.metrics.store_size.set(row.get(0));
        }
    }

    /// The schema version the database is at (the last migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::bigint FROM refinery_schema_history",
                &[],
            )
            .await
            .map_err(read_error)?;
        Ok(row.get(0))
    }

    /// Finishes queued inserts, stops the writer and closes every connection.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
        let writer = self.writer.lock().take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        self.pool.close();
    }

    /// A connection for a read.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(read_error)
    }
}

/// A read-only transaction that sees one snapshot of the database throughout.
async fn snapshot(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(read_error)
}

/// A sink worker's reads of the outbox, on connections of the pool.
#[derive(Clone)]
pub struct OutboxReader(Pool);

impl OutboxReader {
    /// Up to `limit` pending deliveries of `sink` due at `now`, oldest report first, from one
    /// snapshot.
    pub async fn pending(&self, sink: &str, now: i64, limit: usize) -> Result<Pending> {
        let mut client = self.0.get().await.map_err(read_error)?;
        let snapshot = snapshot(&mut client).await?;
        let pending = outbox::pending(&*snapshot, sink, now, limit)
            .await
            .map_err(read_error)?;
        snapshot.commit().await.map_err(read_error)?;
        Ok(pending)
    }

    /// Counts of `sink`'s outbox.
    pub async fn stats(&self, sink: &str) -> Result<OutboxStats> {
        let mut client = self.0.get().await.map_err(read_error)?;
        let snapshot = snapshot(&mut client).await?;
        let stats = outbox::stats(&*snapshot, sink).await.map_err(read_error)?;
        snapshot.commit().await.map_err(read_error)?;
        Ok(stats)
    }
}

/// The weekly statistics' reads, on connections of the pool, each from one snapshot.
#[derive(Clone)]
pub struct WeeklyReader(Pool);

impl WeeklyReader {
    /// Prepares a rollup step over up to `limit` reports stored since the last one; reports of
    /// weeks starting before `keep_from` (unix seconds) are past retention and not counted.
    pub async fn prepare_rollup(&self, keep_from: i64, limit: usize) -> Result<Prepared> {
        let mut client = self.0.get().await.map_err(read_error)?;
        let snapshot = snapshot(&mut client).await?;
        let prepared = rollup::prepare(&*snapshot, keep_from, limit)
            .await
            .map_err(read_error)?;
        snapshot.commit().await.map_err(read_error)?;
        Ok(prepared)
    }

    /// The totals of every week before `running`, and the cells of those whose revision
    /// differs from `known`.
    pub async fn changes(
        &self,
        known: BTreeMap<Week, i64>,
        running: Week,
    ) -> Result<WeeklyChanges> {
        let mut client = self.0.get().await.map_err(read_error)?;
        let snapshot = snapshot(&mut client).await?;
        let changes = rollup::changes(&*snapshot, &known, running)
            .await
            .map_err(read_error)?;
        snapshot.commit().await.map_err(read_error)?;
        Ok(changes)
    }
}
