//! The PostgreSQL writer: one task drains the queued inserts and commits each group in one
//! transaction of multi-row statements, so that a group costs the same few round trips whatever
//! its size, and a report's seq is its commit order (what a sink's position counts on).
//!
//! A request is answered only after the commit that holds its report returned. A group that
//! fails, the commit included (the connection lost after `COMMIT` was sent leaves its outcome
//! unknown), answers every report in it as unavailable, never as stored on a guess; the next
//! group reads the next seq from the database again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use deadpool_postgres::{Object, Pool};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::error::{BoxError, Error, Result, SharedError};
use crate::metrics::Metrics;
use crate::store::records::{InsertOutcome, NODE_FACT_COLUMNS, NewReport};

/// Most inserts one transaction takes.
const MAX_GROUP: usize = 2048;
/// Inserts waiting for the writer at most; a sender waits beyond that.
pub(super) const QUEUE_DEPTH: usize = 8192;

pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// What the writer is asked to do.
pub(super) enum Command {
    /// Store a report.
    Insert(Box<NewReport>, Reply<InsertOutcome>),
    /// Finish what is queued before this, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// What the writer shares with the store's handles.
pub(super) struct Shared {
    /// False after a failed write, until one succeeds.
    pub available: AtomicBool,
    /// The failure that made the store unavailable.
    pub last_error: Mutex<Option<String>>,
    /// The collector's metrics.
    pub metrics: Arc<Metrics>,
    /// Woken after every commit that stored a report.
    pub stored: Notify,
    /// Reports stored since the store was opened.
    pub queued: AtomicU64,
}

impl Shared {
    fn mark_available(&self) {
        if !self.available.swap(true, Ordering::SeqCst) {
            tracing::info!("the database takes writes again");
            self.metrics.store_available.set(1);
        }
        *self.last_error.lock() = None;
    }

    fn mark_unavailable(&self, error: &str) {
        if self.available.swap(false, Ordering::SeqCst) {
            tracing::error!(error, "a write to the database failed; ingest answers 503");
            self.metrics.store_available.set(0);
        }
        *self.last_error.lock() = Some(error.to_owned());
    }
}

/// Runs until a `Shutdown` command or until every handle is gone.
pub(super) async fn run(pool: Pool, mut commands: mpsc::Receiver<Command>, shared: Arc<Shared>) {
    let mut writer = Writer {
        pool,
        client: None,
        next_seq: None,
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = commands.recv().await {
        let mut stop = None;
        let mut next = Some(first);
        // Everything that arrived while the previous group was committing goes in this one.
        while let Some(command) = next.take() {
            match command {
                Command::Insert(report, reply) => group.push((report, reply)),
                Command::Shutdown(reply) => {
                    stop = Some(reply);
                    break;
                }
            }
            if group.len() < MAX_GROUP {
                next = commands.try_recv().ok();
            }
        }
        writer.commit(&shared, std::mem::take(&mut group)).await;
        if let Some(reply) = stop {
            let _ = reply.send(());
            return;
        }
    }
}

struct Writer {
    pool: Pool,
    /// The writer's connection, taken from the pool when it has none.
    client: Option<Object>,
    /// The seq the next stored report gets; read from the database when unknown.
    next_seq: Option<i64>,
}

impl Writer {
    /// Commits `group` in one transaction and answers each sender after the commit.
    async fn commit(
        &mut self,
        shared: &Shared,
        group: Vec<(Box<NewReport>, Reply<InsertOutcome>)>,
    ) {
        if group.is_empty() {
            return;
        }
        let started = Instant::now();
        let reports: Vec<&NewReport> = group.iter().map(|(report, _)| report.as_ref()).collect();
        match self.insert(&reports).await {
            Ok(outcomes) => {
                shared
                    .metrics
                    .commit_duration
                    .observe(started.elapsed().as_secs_f64());
                shared.metrics.commit_group_size.observe(group.len() as f64);
                shared.mark_available();
                let stored = outcomes
                    .iter()
                    .filter(|outcome| **outcome == InsertOutcome::Stored)
                    .count();
                if stored > 0 {
                    shared.metrics.store_reports.inc_by(stored as i64);
                    shared.queued.fetch_add(stored as u64, Ordering::AcqRel);
                    shared.stored.notify_waiters();
                }
                for ((_, reply), outcome) in group.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                // The connection may be gone, and the commit's outcome unknown: start over.
                self.client = None;
                self.next_seq = None;
                let error: SharedError = Arc::from(error);
                shared.mark_unavailable(&error.to_string());
                for (_, reply) in group {
                    let _ = reply.send(Err(Error::Unavailable(error.clone())));
                }
            }
        }
    }

    async fn insert(&mut self, reports: &[&NewReport]) -> Result<Vec<InsertOutcome>, BoxError> {
        if self.client.is_none() {
            self.client = Some(self.pool.get().await?);
        }
        let client = self.client.as_mut().expect("set above");
        let tx = client.transaction().await?;
        let mut next_seq = match self.next_seq {
            Some(seq) => seq,
            None => tx
                .query_one("SELECT COALESCE(MAX(seq), 0) + 1 FROM reports", &[])
                .await?
                .get(0),
        };
        let numbers = cluster_numbers(&tx, reports).await?;
        let (outcomes, rows) = sort_out(
            reports,
            &numbers,
            &stored_hashes(&tx, reports, &numbers).await?,
            &mut next_seq,
        );
        if !rows.seq.is_empty() {
            rows.write(&tx).await?;
        }
        tx.commit().await?;
        self.next_seq = Some(next_seq);
        Ok(outcomes)
    }
}

/// The number of each cluster in `reports`, numbering the clusters seen for the first time (in
/// id order: rows of one statement are written in a fixed order).
async fn cluster_numbers(
    tx: &Transaction<'_>,
    reports: &[&NewReport],
) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let mut ids: Vec<&str> = reports.iter().map(|r| r.cluster_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut numbers: HashMap<String, i64> = tx
        .query(
            "SELECT cluster_id, cluster_no FROM clusters WHERE cluster_id = ANY($1)",
            &[&ids],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let new: Vec<&str> = ids
        .into_iter()
        .filter(|id| !numbers.contains_key(*id))
        .collect();
    if !new.is_empty() {
        // Placeholders that the group's own figures replace (`Rows::write`).
        let rows = tx
            .query(
                "INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq, \
                 latest_report_time, latest_node_count) \
                 SELECT id, $2, $3, 0, -1, $3, 0 FROM unnest($1::text[]) WITH ORDINALITY AS n(id, i) \
                 ORDER BY i RETURNING cluster_id, cluster_no",
                &[&new, &i64::MAX, &i64::MIN],
            )
            .await?;
        numbers.extend(rows.iter().map(|row| (row.get(0), row.get(1))));
    }
    Ok(numbers)
}

/// The content hash of every report already stored under a key of `reports`.
async fn stored_hashes(
    tx: &Transaction<'_>,
    reports: &[&NewReport],
    numbers: &HashMap<String, i64>,
) -> Result<HashMap<(i64, Uuid), Vec<u8>>, tokio_postgres::Error> {
    let clusters: Vec<i64> = reports.iter().map(|r| numbers[&r.cluster_id]).collect();
    let ids: Vec<Uuid> = reports.iter().map(|r| r.id).collect();
    let rows = tx
        .query(
            "SELECT r.cluster_no, r.id, r.content_sha256 FROM reports r \
             JOIN unnest($1::bigint[], $2::uuid[]) AS k(cluster_no, id) \
             ON r.cluster_no = k.cluster_no AND r.id = k.id",
            &[&clusters, &ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ((row.get(0), row.get(1)), row.get(2)))
        .collect())
}

/// Each report's outcome, in order, and the rows of those to store: a report whose key is taken
/// (stored before, or earlier in the group) is a duplicate when its content is the same, else a
/// conflict.
fn sort_out(
    reports: &[&NewReport],
    numbers: &HashMap<String, i64>,
    stored: &HashMap<(i64, Uuid), Vec<u8>>,
    next_seq: &mut i64,
) -> (Vec<InsertOutcome>, Rows) {
    let mut taken: HashMap<(i64, Uuid), &[u8]> = stored
        .iter()
        .map(|(key, hash)| (*key, hash.as_slice()))
        .collect();
    let mut rows = Rows::default();
    let mut clusters: HashMap<i64, ClusterChange> = HashMap::new();
    let mut outcomes = Vec::with_capacity(reports.len());
    for report in reports {
        let cluster_no = numbers[&report.cluster_id];
        if let Some(hash) = taken.get(&(cluster_no, report.id)) {
            outcomes.push(if *hash == report.content_sha256.as_slice() {
                InsertOutcome::Duplicate
            } else {
                InsertOutcome::Conflict
            });
            continue;
        }
        taken.insert((cluster_no, report.id), report.content_sha256.as_slice());
        let seq = *next_seq;
        *next_seq += 1;
        rows.add(seq, cluster_no, report);
        clusters
            .entry(cluster_no)
            .or_insert_with(ClusterChange::new)
            .add(seq, report);
        outcomes.push(InsertOutcome::Stored);
    }
    let mut changes: Vec<(i64, ClusterChange)> = clusters.into_iter().collect();
    changes.sort_unstable_by_key(|(cluster_no, _)| *cluster_no);
    rows.clusters = changes;
    (outcomes, rows)
}

/// What a group's stored reports change in their cluster's row.
struct ClusterChange {
    first_seen: i64,
    last_seen: i64,
    reports: i64,
    latest_seq: i64,
    latest_report_time: i64,
    latest_master_version: Option<String>,
    latest_node_count: i64,
}

impl ClusterChange {
    fn new() -> Self {
        ClusterChange {
            first_seen: i64::MAX,
            last_seen: i64::MIN,
            reports: 0,
            latest_seq: -1,
            latest_report_time: i64::MIN,
            latest_master_version: None,
            latest_node_count: 0,
        }
    }

    /// Counts `report` (seq `seq`); the latest is the one with the latest report time, the last
    /// stored of those on a tie, as when reports are stored one by one.
    fn add(&mut self, seq: i64, report: &NewReport) {
        self.first_seen = self.first_seen.min(report.received_at);
        self.last_seen = self.last_seen.max(report.received_at);
        self.reports += 1;
        if report.report_time >= self.latest_report_time {
            self.latest_seq = seq;
            self.latest_report_time = report.report_time;
            self.latest_master_version = report.master_version.clone();
            self.latest_node_count = report.node_count;
        }
    }
}

/// The rows a group writes, a column each, for multi-row statements over `unnest`.
#[derive(Default)]
struct Rows {
    seq: Vec<i64>,
    cluster_no: Vec<i64>,
    id: Vec<Uuid>,
    report_time: Vec<i64>,
    time_source: Vec<&'static str>,
    received_at: Vec<i64>,
    content_sha256: Vec<Vec<u8>>,
    master_version: Vec<Option<String>>,
    node_count: Vec<i64>,
    body: Vec<String>,
    /// `report_nodes`: the report's seq, each counted fact's column, the node count.
    node_seq: Vec<i64>,
    node_facts: [Vec<String>; NODE_FACT_COLUMNS.len()],
    node_count_of_group: Vec<i64>,
    /// Cluster rows to change, in cluster-number order.
    clusters: Vec<(i64, ClusterChange)>,
}

impl Rows {
    fn add(&mut self, seq: i64, cluster_no: i64, report: &NewReport) {
        self.seq.push(seq);
        self.cluster_no.push(cluster_no);
        self.id.push(report.id);
        self.report_time.push(report.report_time);
        self.time_source.push(report.time_source.as_str());
        self.received_at.push(report.received_at);
        self.content_sha256.push(report.content_sha256.to_vec());
        self.master_version.push(report.master_version.clone());
        self.node_count.push(report.node_count);
        self.body.push(report.body.clone());
        for group in &report.node_groups {
            self.node_seq.push(seq);
            for (column, fact) in self.node_facts.iter_mut().zip(&group.facts) {
                column.push(fact.clone());
            }
            self.node_count_of_group.push(group.nodes);
        }
    }

    async fn write(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        tx.execute(
            "INSERT INTO reports (seq, cluster_no, id, report_time, time_source, received_at, \
             content_sha256, master_version, node_count, body) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], \
             $5::text[], $6::bigint[], $7::bytea[], $8::text[], $9::bigint[], $10::text[])",
            &[
                &self.seq,
                &self.cluster_no,
                &self.id,
                &self.report_time,
                &self.time_source,
                &self.received_at,
                &self.content_sha256,
                &self.master_version,
                &self.node_count,
                &self.body,
            ],
        )
        .await?;
        if !self.node_seq.is_empty() {
            let [a, b, c, d, e, f] = &self.node_facts;
            tx.execute(
                &format!(
                    "INSERT INTO report_nodes (report_seq, {}, nodes) SELECT * FROM \
                     unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::text[], $7::text[], $8::bigint[])",
                    NODE_FACT_COLUMNS.join(", ")
                ),
                &[&self.node_seq, a, b, c, d, e, f, &self.node_count_of_group],
            )
            .await?;
        }
        let column = |get: fn(&ClusterChange) -> i64| -> Vec<i64> {
            self.clusters
                .iter()
                .map(|(_, change)| get(change))
                .collect()
        };
        let numbers: Vec<i64> = self.clusters.iter().map(|(no, _)| *no).collect();
        let versions: Vec<Option<String>> = self
            .clusters
            .iter()
            .map(|(_, change)| change.latest_master_version.clone())
            .collect();
        tx.execute(
            "UPDATE clusters c SET \
               first_seen = LEAST(c.first_seen, u.first_seen), \
               last_seen = GREATEST(c.last_seen, u.last_seen), \
               reports = c.reports + u.reports, \
               latest_seq = CASE WHEN u.latest_report_time >= c.latest_report_time \
                 THEN u.latest_seq ELSE c.latest_seq END, \
               latest_master_version = CASE WHEN u.latest_report_time >= c.latest_report_time \
                 THEN u.latest_master_version ELSE c.latest_master_version END, \
               latest_node_count = CASE WHEN u.latest_report_time >= c.latest_report_time \
                 THEN u.latest_node_count ELSE c.latest_node_count END, \
               latest_report_time = GREATEST(c.latest_report_time, u.latest_report_time) \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
               $6::bigint[], $7::text[], $8::bigint[]) \
               AS u(cluster_no, first_seen, last_seen, reports, latest_seq, latest_report_time, \
                    latest_master_version, latest_node_count) \
             WHERE c.cluster_no = u.cluster_no",
            &[
                &numbers,
                &column(|c| c.first_seen),
                &column(|c| c.last_seen),
                &column(|c| c.reports),
                &column(|c| c.latest_seq),
                &column(|c| c.latest_report_time),
                &versions,
                &column(|c| c.latest_node_count),
            ],
        )
        .await?;
        Ok(())
    }
}
