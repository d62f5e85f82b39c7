//! The embedded store's handle: writes go to the writer thread as commands and return once committed;
//! reads run on read-only connections off the async threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{self, Checkpointer};
use super::command::{Command, QUEUE_DEPTH, Reply, Shared};
use super::connection::{self, IdleReader, ReadConnection, open_error};
use super::rollup;
use super::{outbox, read, removal, schema, weekly, writer};
use crate::error::{Error, Result};
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

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "collector.sqlite3";

/// Handle to the embedded store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    commands: mpsc::Sender<Command>,
    reader: ReadConnection,
    shared: Arc<Shared>,
    db_path: PathBuf,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    checkpointer: Arc<Mutex<Option<Checkpointer>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`, migrates it and checks it is writable.
    pub fn open(dir: &Path, options: StoreOptions, metrics: Arc<Metrics>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
            path: dir.to_owned(),
            source,
        })?;
        let db_path = dir.join(DB_FILE);
        let open_error = |e| open_error(&db_path, e);
        let mut conn = connection::open_writer(&db_path, options.max_size)?;
        schema::migrate(&mut conn, &db_path)?;
        // Prove now that the store takes writes, rather than at the first report.
        writer::probe(&mut conn).map_err(open_error)?;
        writer::register_sinks(&mut conn, &options.sinks).map_err(open_error)?;
        if writer::check_statistics(&mut conn).map_err(open_error)? {
            tracing::info!(
                "the weekly statistics are built from the stored reports (a new store, or a \
                 collector with other dimensions)"
            );
        }
        for (sink, waiting) in outbox::unconfigured(&conn, &options.sinks).map_err(open_error)? {
            tracing::warn!(
                sink,
                deliveries = waiting,
                "a sink that is no longer configured still has deliveries in the outbox; they \
                 are kept, and delivered if the sink is configured again"
            );
        }
        let reader = ReadConnection::open(&db_path).map_err(open_error)?;
        let next_seq = removal::next_seq(&conn).map_err(open_error)?;

        // Counted once here; the writer keeps the gauge current as it stores and deletes.
        let reports = read::report_count(&conn).map_err(open_error)?;
        let shared = Arc::new(Shared {
            writes: WriterState::new(metrics, reports),
            log_restart_due: AtomicBool::new(false),
        });
        let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, receiver, writer_shared, next_seq))
            .map_err(|e| Error::StoreOpen {
                path: db_path.clone(),
                advice: "cannot start the writer thread".into(),
                source: Some(Box::new(e)),
            })?;
        let checkpointer = checkpoint::spawn(&db_path, shared.clone()).map_err(open_error)?;
        let store = SqliteStore {
            commands,
            reader,
            shared,
            db_path,
            writer: Arc::new(Mutex::new(Some(writer))),
            checkpointer: Arc::new(Mutex::new(Some(checkpointer))),
        };
        store
            .shared
            .writes
            .metrics
            .store_size
            .set(size_on_disk(&store.db_path) as i64);
        Ok(store)
    }

    /// Stores one report; returns once it is durably committed (or known to be stored).
    pub async fn insert(&self, report: NewReport) -> Result<InsertOutcome> {
        self.ask(|reply| Command::Insert(Box::new(report), reply))
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

    /// Writes a rollup step prepared by [`WeeklyReader::prepare_rollup`] (or says it is stale).
    pub async fn apply_rollup(&self, prepared: Prepared) -> Result<RollupProgress> {
        self.ask(|reply| Command::Rollup(Box::new(prepared), reply))
            .await
    }

    /// A read connection of its own for the weekly statistics, on a thread at the lowest
    /// priority: their reads are heavy on a large fleet, never urgent, and must not hold up the
    /// read API or take CPU from ingest.
    pub fn weekly_reader(&self) -> Result<WeeklyReader> {
        Ok(WeeklyReader(IdleReader::open(&self.db_path)?))
    }

    /// Sends the writer a command and waits for its answer.
    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// How many reports were stored and deliveries re-queued since the store was opened.
    pub fn queued_total(&self) -> u64 {
        self.shared.writes.queued_total()
    }

    /// Waits until [`SqliteStore::queued_total`] reaches `total`, or `timeout` passes.
    pub async fn wait_for_reports(&self, total: u64, timeout: Duration) {
        self.shared.writes.wait_for_reports(total, timeout).await;
    }

    /// A read connection of its own, for one sink's delivery worker.
    pub fn outbox_reader(&self) -> Result<OutboxReader> {
        Ok(OutboxReader(ReadConnection::open(&self.db_path)?))
    }

    /// Deliveries for the read API, in (sink, report) order after `after`.
    pub async fn deliveries(
        &self,
        state: Option<DeliveryState>,
        sink: Option<String>,
        after: Option<DeliveryCursor>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>> {
        self.reader
            .run(move |conn| outbox::list(conn, state, sink.as_deref(), after, limit))
            .await
    }

    /// The database file.
    pub fn describe(&self) -> String {
        self.db_path.display().to_string()
    }

    /// True while writes succeed.
    pub fn is_available(&self) -> bool {
        self.shared.writes.is_available()
    }

    /// The last write error, while the store is unavailable.
    pub fn last_error(&self) -> Option<String> {
        self.shared.writes.last_error()
    }

    /// Clusters in id order, after the `after` cursor.
    pub async fn clusters(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ClusterSummary>> {
        self.reader
            .run(move |conn| read::clusters(conn, after.as_deref(), limit))
            .await
    }

    /// Folds every cluster id in the store into `into` with `add`, off the async threads.
    pub async fn fold_cluster_ids<T, F>(&self, into: T, add: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut T, &str) + Send + 'static,
    {
        self.reader
            .run(move |conn| read::fold_cluster_ids(conn, into, add))
            .await
    }

    /// A cluster's reports, newest first, before the `before` cursor; `None` for an unknown
    /// cluster.
    pub async fn cluster_reports(
        &self,
        cluster_id: String,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<StoredReport>>> {
        self.reader
            .run(move |conn| read::cluster_reports(conn, &cluster_id, before, limit))
            .await
    }

    /// Fleet statistics over the clusters last seen at or after `since` (unix seconds).
    pub async fn stats(&self, since: i64) -> Result<Stats> {
        self.reader.run(move |conn| read::stats(conn, since)).await
    }

    /// Updates the store-size gauge (the report count is kept current by the writer), reading
    /// the files' sizes off the async threads.
    pub async fn refresh_size_gauge(&self) {
        let path = self.db_path.clone();
        if let Ok(size) = tokio::task::spawn_blocking(move || size_on_disk(&path)).await {
            self.shared.writes.metrics.store_size.set(size as i64);
        }
    }

    /// Finishes queued work, stops the writer and checkpointer threads and waits for them.
    pub async fn close(&self) {
        let checkpointer = self.checkpointer.lock().take();
        if let Some(checkpointer) = checkpointer {
            checkpointer.stop().await;
        }
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
        let handle = self.writer.lock().take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Bytes of the database and its write-ahead log on disk.
fn size_on_disk(db_path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut path = db_path.to_owned().into_os_string();
            path.push(suffix);
            std::fs::metadata(path).ok().map(|m| m.len())
        })
        .sum()
}

/// The weekly statistics' own read connection.
#[derive(Clone)]
pub struct WeeklyReader(IdleReader);

impl WeeklyReader {
    /// Prepares a rollup step over up to `limit` reports stored since the last one; reports of
    /// weeks starting before `keep_from` (unix seconds) are past retention and not counted.
    pub async fn prepare_rollup(&self, keep_from: i64, limit: usize) -> Result<Prepared> {
        self.0
            .run(move |conn| rollup::prepare(conn, keep_from, limit))
            .await
    }

    /// The totals of every week before `running`, and the cells of those whose revision
    /// differs from `known`.
    pub async fn changes(
        &self,
        known: BTreeMap<Week, i64>,
        running: Week,
    ) -> Result<WeeklyChanges> {
        self.0
            .run(move |conn| weekly::changes(conn, &known, running))
            .await
    }
}

/// A sink worker's own read connection to the outbox.
#[derive(Clone)]
pub struct OutboxReader(ReadConnection);

impl OutboxReader {
    /// Up to `limit` pending deliveries of `sink` due at `now`, oldest report first.
    pub async fn pending(&self, sink: &str, now: i64, limit: usize) -> Result<Pending> {
        let sink = sink.to_owned();
        self.0
            .run(move |conn| outbox::pending(conn, &sink, now, limit))
            .await
    }

    /// Counts of `sink`'s outbox.
    pub async fn stats(&self, sink: &str) -> Result<OutboxStats> {
        let sink = sink.to_owned();
        self.0.run(move |conn| outbox::stats(conn, &sink)).await
    }
}
