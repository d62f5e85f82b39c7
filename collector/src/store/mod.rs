//! The embedded durable store: SQLite in WAL mode, one writer thread that group-commits, and a
//! reader connection for the read API.
//!
//! Durability: every transaction is committed with `synchronous=FULL`, so the write-ahead log is
//! fsynced before the commit returns, and a request is answered 204 only after the commit that
//! holds its report returned. Many concurrent reports share one transaction (and one fsync).

pub mod outbox;
mod read;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use common::Admitted;
use common::time::TimeSource;
use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::{Error, Result};

pub use outbox::{DeliveryRow, OutboxItem, OutboxStats, OutboxUpdate, SinkRegistration};
pub use read::{ClusterSummary, Stats, StoredReport};
pub use schema::SCHEMA_VERSION;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "collector.sqlite3";
/// Most reports committed in one transaction.
const MAX_GROUP: usize = 2048;
/// Commands waiting for the writer before senders wait.
const QUEUE_DEPTH: usize = 8192;
/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// Write-ahead log pages after which the writer checkpoints itself, should the checkpointer
/// fall behind (64 MiB of 4 KiB pages).
const WRITER_CHECKPOINT_PAGES: i64 = 16_384;

/// Settings of [`Store::open`].
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Largest database size in bytes; writes past it fail as if the disk were full.
    pub max_size: Option<u64>,
    /// Sinks every stored report is queued for.
    pub sinks: Vec<SinkRegistration>,
}

/// What storing one report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored as a new report.
    Stored,
    /// A report with the same id and content was already stored; nothing changed.
    Duplicate,
    /// A report with the same id but different content was already stored; it was kept.
    Conflict,
}

/// A report ready to be written.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// Report id.
    pub id: Uuid,
    /// Cluster id (canonical form).
    pub cluster_id: String,
    /// The report's time, unix seconds.
    pub report_time: i64,
    /// Where the time came from.
    pub time_source: TimeSource,
    /// When the collector received it, unix seconds.
    pub received_at: i64,
    /// SHA-256 of `body`.
    pub content_sha256: [u8; 32],
    /// `masterVersion`, if reported.
    pub master_version: Option<String>,
    /// Number of nodes.
    pub node_count: i64,
    /// Nodes counted by their reduced facts.
    pub node_groups: Vec<NodeGroup>,
    /// Canonical JSON of the sanitized report, with an empty `timestamp`.
    pub body: String,
}

/// Nodes of one report that share every reduced fact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeGroup {
    /// `operatingSystem` (empty when not reported).
    pub operating_system: String,
    /// `osImage`
    pub os_image: String,
    /// `architecture`
    pub architecture: String,
    /// `containerRuntimeVersion`
    pub container_runtime: String,
    /// `kubeletVersion`
    pub kubelet_version: String,
    /// `cloudProvider`
    pub cloud_provider: String,
    /// How many nodes.
    pub nodes: i64,
}

impl From<Admitted> for NewReport {
    fn from(admitted: Admitted) -> Self {
        let report = admitted.report;
        NewReport {
            id: admitted.id,
            node_groups: node_groups(&report.nodes),
            node_count: report.nodes.len() as i64,
            cluster_id: report.cluster_id,
            report_time: admitted.time.seconds,
            time_source: admitted.time.source,
            received_at: admitted.received_at,
            content_sha256: admitted.content_sha256,
            master_version: report.master_version,
            body: String::from_utf8(admitted.canonical).expect("serde_json writes UTF-8"),
        }
    }
}

/// Counts nodes by their reduced facts (most reports have one or a few distinct groups).
fn node_groups(nodes: &[common::report::Node]) -> Vec<NodeGroup> {
    let mut groups: Vec<(NodeGroup, [&Option<String>; 6])> = Vec::new();
    for node in nodes {
        let facts = [
            &node.operating_system,
            &node.os_image,
            &node.architecture,
            &node.container_runtime_version,
            &node.kubelet_version,
            &node.cloud_provider,
        ];
        match groups.iter_mut().find(|(_, known)| *known == facts) {
            Some((group, _)) => group.nodes += 1,
            None => {
                let text = |value: &Option<String>| value.clone().unwrap_or_default();
                let group = NodeGroup {
                    operating_system: text(facts[0]),
                    os_image: text(facts[1]),
                    architecture: text(facts[2]),
                    container_runtime: text(facts[3]),
                    kubelet_version: text(facts[4]),
                    cloud_provider: text(facts[5]),
                    nodes: 1,
                };
                groups.push((group, facts));
            }
        }
    }
    groups.into_iter().map(|(group, _)| group).collect()
}

/// Work for the writer thread.
enum Command {
    Insert(Box<NewReport>, oneshot::Sender<Result<InsertOutcome>>),
    DeleteCluster(String, oneshot::Sender<Result<u64>>),
    Prune {
        received_before: i64,
        limit: usize,
        reply: oneshot::Sender<Result<u64>>,
    },
    Probe(oneshot::Sender<Result<()>>),
    Outbox(Box<OutboxUpdate>, oneshot::Sender<Result<()>>),
    Requeue {
        sink: String,
        dead_only: bool,
        since: i64,
        reply: oneshot::Sender<Result<u64>>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// State shared by the handle and the writer thread.
struct Shared {
    available: AtomicBool,
    last_error: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
    /// Names of the sinks every stored report is queued for.
    sinks: Vec<String>,
    /// Woken after every commit that stored a new report, and after a requeue (delivery
    /// workers wait on it).
    stored: tokio::sync::Notify,
    /// Reports stored plus deliveries re-queued since the store was opened: a worker waiting to
    /// fill a batch sleeps until this has grown by the number it lacks.
    queued: AtomicU64,
}

impl Shared {
    fn mark_available(&self) {
        if !self.available.swap(true, Ordering::SeqCst) {
            tracing::info!("store is writable again");
        }
        self.metrics.store_available.set(1);
    }

    fn mark_unavailable(&self, error: &str) {
        if self.available.swap(false, Ordering::SeqCst) {
            tracing::error!(
                error,
                "store write failed; ingest answers 503 until it recovers"
            );
        }
        *self.last_error.lock() = Some(error.to_string());
        self.metrics.store_available.set(0);
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    commands: mpsc::Sender<Command>,
    reader: Arc<Mutex<Connection>>,
    shared: Arc<Shared>,
    db_path: PathBuf,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    checkpointer: Arc<Mutex<Option<Checkpointer>>>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, migrates it and checks it is writable.
    pub fn open(dir: &Path, options: StoreOptions, metrics: Arc<Metrics>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
            path: dir.to_owned(),
            source,
        })?;
        let db_path = dir.join(DB_FILE);
        let open_error = |e: rusqlite::Error| Error::StoreOpen {
            path: db_path.clone(),
            advice: advice(&e).into(),
            source: Some(Box::new(e)),
        };
        let mut conn = Connection::open_with_flags(
            &db_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        let journal_mode = configure_writer(&conn, &options).map_err(open_error)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(Error::StoreOpen {
                path: db_path,
                advice: format!(
                    "the file system does not support write-ahead logging (journal_mode={journal_mode})"
                ),
                source: None,
            });
        }
        schema::migrate(&mut conn, &db_path)?;
        // Prove now that the store takes writes, rather than at the first report.
        writer::probe(&mut conn).map_err(open_error)?;
        writer::register_sinks(&mut conn, &options.sinks).map_err(open_error)?;
        for (sink, waiting) in outbox::unconfigured(&conn, &options.sinks).map_err(open_error)? {
            tracing::warn!(
                sink,
                deliveries = waiting,
                "a sink that is no longer configured still has deliveries in the outbox; they \
                 are kept, and delivered if the sink is configured again"
            );
        }

        let reader = Connection::open_with_flags(
            &db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(5))
                .map(|()| c)
        })
        .map_err(open_error)?;

        let shared = Arc::new(Shared {
            available: AtomicBool::new(true),
            last_error: Mutex::new(None),
            metrics,
            sinks: options.sinks.iter().map(|sink| sink.name.clone()).collect(),
            stored: tokio::sync::Notify::new(),
            queued: AtomicU64::new(0),
        });
        shared.metrics.store_available.set(1);
        // Counted once here; the writer keeps the gauge current as it stores and deletes.
        shared
            .metrics
            .store_reports
            .set(read::report_count(&conn).map_err(open_error)?);
        let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, receiver, writer_shared))
            .map_err(|e| Error::StoreOpen {
                path: db_path.clone(),
                advice: "cannot start the writer thread".into(),
                source: Some(Box::new(e)),
            })?;
        let checkpointer = spawn_checkpointer(&db_path).map_err(open_error)?;
        let store = Store {
            commands,
            reader: Arc::new(Mutex::new(reader)),
            shared,
            db_path,
            writer: Arc::new(Mutex::new(Some(writer))),
            checkpointer: Arc::new(Mutex::new(Some(checkpointer))),
        };
        store.refresh_size_gauge();
        Ok(store)
    }

    /// Stores one report; returns once it is durably committed (or known to be stored).
    pub async fn insert(&self, report: NewReport) -> Result<InsertOutcome> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Insert(Box::new(report), reply)).await?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Erases every report of a cluster (its opt-out); returns how many were deleted.
    pub async fn delete_cluster(&self, cluster_id: &str) -> Result<u64> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::DeleteCluster(cluster_id.to_owned(), reply))
            .await?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Deletes up to `limit` reports received before `received_before` (unix seconds).
    pub async fn prune(&self, received_before: i64, limit: usize) -> Result<u64> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Prune {
            received_before,
            limit,
            reply,
        })
        .await?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Tries a small write; marks the store available again when it succeeds.
    pub async fn probe(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Probe(reply)).await?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Records what a sink's worker learned about its deliveries.
    pub async fn update_outbox(&self, update: OutboxUpdate) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Outbox(Box::new(update), reply)).await?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Re-queues `sink`'s dead deliveries (`dead_only`), or every report received since `since`
    /// (a backfill); returns how many deliveries are pending again.
    pub async fn requeue(&self, sink: &str, dead_only: bool, since: i64) -> Result<u64> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Requeue {
            sink: sink.to_owned(),
            dead_only,
            since,
            reply,
        })
        .await?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// How many reports were stored and deliveries re-queued since the store was opened.
    pub fn queued_total(&self) -> u64 {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Waits until [`Store::queued_total`] reaches `total`, or `timeout` passes.
    pub async fn wait_for_reports(&self, total: u64, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let notified = self.shared.stored.notified();
                tokio::pin!(notified);
                // Registered before the check, so a commit in between still wakes us.
                notified.as_mut().enable();
                if self.queued_total() >= total {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }

    /// A read connection of its own, for one sink's delivery worker.
    pub fn outbox_reader(&self) -> Result<OutboxReader> {
        let conn = Connection::open_with_flags(
            &self.db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(5))
                .map(|()| c)
        })?;
        Ok(OutboxReader(Arc::new(Mutex::new(conn))))
    }

    /// Deliveries for the read API, in (sink, report) order after `after`.
    pub async fn deliveries(
        &self,
        state: Option<String>,
        sink: Option<String>,
        after: Option<(String, i64)>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>> {
        self.read(move |conn| outbox::list(conn, state.as_deref(), sink.as_deref(), after, limit))
            .await
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::ShuttingDown)
    }

    /// True while writes succeed.
    pub fn is_available(&self) -> bool {
        self.shared.available.load(Ordering::SeqCst)
    }

    /// The last write error, while the store is unavailable.
    pub fn last_error(&self) -> Option<String> {
        if self.is_available() {
            None
        } else {
            self.shared.last_error.lock().clone()
        }
    }

    /// Clusters in id order, after the `after` cursor.
    pub async fn clusters(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ClusterSummary>> {
        self.read(move |conn| read::clusters(conn, after.as_deref(), limit))
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
        self.read(move |conn| read::cluster_reports(conn, &cluster_id, before, limit))
            .await
    }

    /// Fleet statistics over the clusters last seen at or after `since` (unix seconds).
    pub async fn stats(&self, since: i64) -> Result<Stats> {
        self.read(move |conn| read::stats(conn, since)).await
    }

    /// Runs a read query on the reader connection, off the async threads.
    async fn read<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock();
            query(&conn).map_err(Error::from)
        })
        .await
        .map_err(|e| Error::Unavailable(Arc::new(e)))?
    }

    /// Updates the store-size gauge (the report count is kept current by the writer).
    pub fn refresh_size_gauge(&self) {
        let size: u64 = ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                let mut path = self.db_path.clone().into_os_string();
                path.push(suffix);
                std::fs::metadata(path).ok().map(|m| m.len())
            })
            .sum();
        self.shared.metrics.store_size.set(size as i64);
    }

    /// Finishes queued work, stops the writer and checkpointer threads and waits for them.
    pub async fn close(&self) {
        let checkpointer = self.checkpointer.lock().take();
        if let Some(Checkpointer { stop, thread }) = checkpointer {
            stop.store(true, Ordering::SeqCst);
            thread.thread().unpark();
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let (reply, done) = oneshot::channel();
        if self.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
        let handle = self.writer.lock().take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// A sink worker's own read connection to the outbox.
#[derive(Clone)]
pub struct OutboxReader(Arc<Mutex<Connection>>);

impl OutboxReader {
    /// Up to `limit` pending deliveries of `sink` due at `now`, oldest report first.
    pub async fn pending(&self, sink: &str, now: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        let sink = sink.to_owned();
        self.run(move |conn| outbox::pending(conn, &sink, now, limit))
            .await
    }

    /// Counts of `sink`'s outbox.
    pub async fn stats(&self, sink: &str) -> Result<OutboxStats> {
        let sink = sink.to_owned();
        self.run(move |conn| outbox::stats(conn, &sink)).await
    }

    async fn run<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || query(&conn.lock()).map_err(Error::from))
            .await
            .map_err(|e| Error::Unavailable(Arc::new(e)))?
    }
}

/// Starts the thread that copies the write-ahead log into the database (a passive checkpoint,
/// which never blocks the writer), so that neither the copy nor its fsync of the database file
/// sits on the writer's commit path.
fn spawn_checkpointer(db_path: &Path) -> rusqlite::Result<Checkpointer> {
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("store-checkpointer".into())
        .spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                std::thread::park_timeout(CHECKPOINT_EVERY);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "checkpoint of the write-ahead log failed");
                }
            }
        })
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(Checkpointer { stop, thread })
}

/// The checkpointer thread and its stop flag.
struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Sets the writer's pragmas; returns the journal mode SQLite actually chose.
fn configure_writer(conn: &Connection, options: &StoreOptions) -> rusqlite::Result<String> {
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if let Some(max_size) = options.max_size {
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let pages = (max_size as i64 / page_size).max(16);
        conn.pragma_update(None, "max_page_count", pages)?;
    }
    Ok(mode)
}

/// What an SQLite error at startup means, in words an operator can act on.
fn advice(error: &rusqlite::Error) -> &'static str {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            "the file is corrupt or not a collector store; move it away to start an empty store, \
             or restore it from a backup"
        }
        Some(ErrorCode::ReadOnly)
        | Some(ErrorCode::CannotOpen)
        | Some(ErrorCode::PermissionDenied) => {
            "the store is not writable; check the data directory's permissions and mount"
        }
        Some(ErrorCode::DiskFull) => "the disk is full",
        _ => "SQLite failed",
    }
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Query(Box::new(error))
    }
}
