//! The single writer thread: drains queued commands and commits consecutive inserts together.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use common::time::unix_now;
use rusqlite::{Connection, ToSql, Transaction, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::command::{Command, MAX_GROUP, Reply, Shared};
use super::meta;
use super::outbox::{self, OutboxUpdate, SinkRegistration};
use super::records::{InsertOutcome, NODE_FACT_COLUMNS, NewReport};
use super::rollup;
use crate::error::{Error, Result, SharedError};

/// Runs until a `Shutdown` command or until every handle is gone.
pub(super) fn run(
    mut conn: Connection,
    mut commands: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    mut next_seq: i64,
) {
    let mut batch = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = commands.blocking_recv() {
        // Everything that arrived while the previous group was committing goes in this one.
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let mut group = Group::default();
        for command in batch.drain(..) {
            match command {
                Command::Insert(report, reply) => group.inserts.push((report, reply)),
                Command::Outbox(update, reply) => group.updates.push((update, reply)),
                other => {
                    commit_group(
                        &mut conn,
                        &shared,
                        std::mem::take(&mut group),
                        &mut next_seq,
                    );
                    if let Command::Shutdown(reply) = other {
                        let _ = reply.send(());
                        checkpoint(&conn);
                        return;
                    }
                    run_maintenance(&mut conn, &shared, other);
                }
            }
        }
        commit_group(&mut conn, &shared, group, &mut next_seq);
    }
    checkpoint(&conn);
}

/// `meta` key: the highest seq ever given to a report, kept when the newest reports are deleted.
const SEQ_HIGH_WATER: &str = "reports_high_water";

/// The seq the next report gets: above every seq ever given, also those of deleted reports, so
/// that anything reading "reports after seq N" (the weekly rollup) never misses a new one.
pub(super) fn next_seq(conn: &Connection) -> rusqlite::Result<i64> {
    let stored: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM reports", [], |row| {
        row.get(0)
    })?;
    Ok(stored.max(meta::get_i64(conn, SEQ_HIGH_WATER)?) + 1)
}

/// Records the highest seq given so far, before reports are deleted.
fn keep_high_water(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let given = next_seq(tx)? - 1;
    meta::set(tx, SEQ_HIGH_WATER, &given.to_string())
}

/// Inserts one node group: the report's seq, each counted fact, the node count.
static INSERT_NODE_GROUP: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=NODE_FACT_COLUMNS.len() + 2)
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO report_nodes (report_seq, {}, nodes) VALUES ({})",
        NODE_FACT_COLUMNS.join(", "),
        placeholders.join(", ")
    )
});

type PendingInsert = (Box<NewReport>, Reply<InsertOutcome>);
type PendingUpdate = (Box<OutboxUpdate>, Reply<()>);

/// What the writer commits in one transaction: the inserts and the delivery workers' outbox
/// updates that queued up while the previous transaction committed. Sharing the transaction
/// (and its fsync) keeps a sink's bookkeeping from doubling the commits while reports arrive.
#[derive(Default)]
struct Group {
    inserts: Vec<PendingInsert>,
    updates: Vec<PendingUpdate>,
}

/// Commits a group in one transaction and answers each sender after the commit.
fn commit_group(conn: &mut Connection, shared: &Shared, group: Group, next_seq: &mut i64) {
    if group.inserts.is_empty() && group.updates.is_empty() {
        return;
    }
    let started = Instant::now();
    let result = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|tx| {
            let outcomes = insert_all(
                &tx,
                &shared.sinks,
                group.inserts.iter().map(|(report, _)| report.as_ref()),
                next_seq,
            )?;
            for (update, _) in &group.updates {
                outbox::apply(&tx, update)?;
            }
            tx.commit()?;
            Ok(outcomes)
        });
    match result {
        Ok(outcomes) => {
            if !group.inserts.is_empty() {
                shared
                    .metrics
                    .commit_duration
                    .observe(started.elapsed().as_secs_f64());
                shared
                    .metrics
                    .commit_group_size
                    .observe(group.inserts.len() as f64);
            }
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
            for ((_, reply), outcome) in group.inserts.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            for (_, reply) in group.updates {
                let _ = reply.send(Ok(()));
            }
        }
        Err(error) => {
            let error: SharedError = Arc::new(error);
            shared.mark_unavailable(&error.to_string());
            for (_, reply) in group.inserts {
                let _ = reply.send(Err(Error::Unavailable(error.clone())));
            }
            for (_, reply) in group.updates {
                let _ = reply.send(Err(Error::Unavailable(error.clone())));
            }
        }
    }
}

fn insert_all<'a>(
    tx: &Transaction<'_>,
    sinks: &[String],
    reports: impl Iterator<Item = &'a NewReport>,
    next_seq: &mut i64,
) -> rusqlite::Result<Vec<InsertOutcome>> {
    let mut outcomes = Vec::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO reports (id, cluster_id, report_time, time_source, received_at, \
             content_sha256, master_version, node_count, body, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (cluster_id, id) DO NOTHING",
        )?;
        let mut stored_hash = tx.prepare_cached(
            "SELECT content_sha256 FROM reports WHERE cluster_id = ?1 AND id = ?2",
        )?;
        let mut upsert_cluster = tx.prepare_cached(
            "INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq, \
             latest_report_time, latest_master_version, latest_node_count) \
             VALUES (?1, ?2, ?2, 1, ?3, ?4, ?5, ?6) \
             ON CONFLICT (cluster_id) DO UPDATE SET \
               first_seen = min(first_seen, excluded.first_seen), \
               last_seen = max(last_seen, excluded.last_seen), \
               reports = reports + 1, \
               latest_seq = CASE WHEN excluded.latest_report_time >= latest_report_time \
                 THEN excluded.latest_seq ELSE latest_seq END, \
               latest_master_version = CASE WHEN excluded.latest_report_time >= latest_report_time \
                 THEN excluded.latest_master_version ELSE latest_master_version END, \
               latest_node_count = CASE WHEN excluded.latest_report_time >= latest_report_time \
                 THEN excluded.latest_node_count ELSE latest_node_count END, \
               latest_report_time = max(latest_report_time, excluded.latest_report_time)",
        )?;
        let mut insert_nodes = tx.prepare_cached(&INSERT_NODE_GROUP)?;
        for report in reports {
            let id = report.id.as_bytes().as_slice();
            let inserted = insert.execute(params![
                id,
                report.cluster_id,
                report.report_time,
                report.time_source.as_str(),
                report.received_at,
                report.content_sha256.as_slice(),
                report.master_version,
                report.node_count,
                report.body,
                *next_seq,
            ])?;
            if inserted == 0 {
                let hash: Vec<u8> =
                    stored_hash.query_row(params![report.cluster_id, id], |row| row.get(0))?;
                outcomes.push(if hash == report.content_sha256 {
                    InsertOutcome::Duplicate
                } else {
                    InsertOutcome::Conflict
                });
                continue;
            }
            let seq = *next_seq;
            *next_seq += 1;
            upsert_cluster.execute(params![
                report.cluster_id,
                report.received_at,
                seq,
                report.report_time,
                report.master_version,
                report.node_count,
            ])?;
            for group in &report.node_groups {
                let mut values: Vec<&dyn ToSql> = vec![&seq];
                values.extend(group.facts.iter().map(|fact| fact as &dyn ToSql));
                values.push(&group.nodes);
                insert_nodes.execute(values.as_slice())?;
            }
            outbox::enqueue(tx, seq, sinks, report.received_at)?;
            outcomes.push(InsertOutcome::Stored);
        }
    }
    Ok(outcomes)
}

/// Starts the weekly statistics over when the registry of dimensions changed (at startup).
pub(super) fn check_statistics(conn: &mut Connection) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let reset = rollup::reset_if_registry_changed(&tx)?;
    tx.commit()?;
    Ok(reset)
}

/// Records the configured sinks in the store (at startup).
pub(super) fn register_sinks(
    conn: &mut Connection,
    sinks: &[SinkRegistration],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    outbox::register(&tx, sinks, unix_now())?;
    tx.commit()
}

fn run_maintenance(conn: &mut Connection, shared: &Shared, command: Command) {
    match command {
        Command::DeleteCluster(cluster_id, reply) => {
            let result = delete_cluster(conn, &cluster_id);
            if let Ok(deleted) = result {
                shared.metrics.store_reports.dec_by(deleted as i64);
            }
            let _ = reply.send(track(shared, result));
        }
        Command::Prune {
            received_before,
            limit,
            reply,
        } => {
            let result = prune(conn, received_before, limit);
            if let Ok(deleted) = result {
                shared.metrics.store_reports.dec_by(deleted as i64);
            }
            let _ = reply.send(track(shared, result));
        }
        Command::Probe(reply) => {
            let _ = reply.send(track(shared, probe(conn)));
        }
        Command::Requeue {
            sink,
            dead_only,
            since,
            reply,
        } => {
            let result = outbox::requeue(conn, &sink, dead_only, since, unix_now());
            if let Ok(requeued) = result
                && requeued > 0
            {
                shared.queued.fetch_add(requeued, Ordering::AcqRel);
                shared.stored.notify_waiters();
            }
            let _ = reply.send(track(shared, result));
        }
        Command::Rollup(prepared, reply) => {
            let result = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .and_then(|tx| {
                    let progress = rollup::apply(&tx, *prepared)?;
                    tx.commit()?;
                    Ok(progress)
                });
            let _ = reply.send(track(shared, result));
        }
        Command::Insert(..) | Command::Outbox(..) | Command::Shutdown(_) => {
            unreachable!("handled by the caller")
        }
    }
}

/// Marks the store available or not from a write's result.
fn track<T>(shared: &Shared, result: rusqlite::Result<T>) -> Result<T> {
    match result {
        Ok(value) => {
            shared.mark_available();
            Ok(value)
        }
        Err(error) => {
            shared.mark_unavailable(&error.to_string());
            Err(Error::Unavailable(Arc::new(error)))
        }
    }
}

/// A small write that proves the store takes writes.
pub(super) fn probe(conn: &mut Connection) -> rusqlite::Result<()> {
    let now = unix_now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    meta::set(&tx, "last_write_check", &now.to_string())?;
    tx.commit()
}

fn delete_cluster(conn: &mut Connection, cluster_id: &str) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    keep_high_water(&tx)?;
    rollup::erase(&tx, cluster_id)?;
    for table in ["report_nodes", "deliveries"] {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE report_seq IN \
                 (SELECT seq FROM reports WHERE cluster_id = ?1)"
            ),
            [cluster_id],
        )?;
    }
    let deleted = tx.execute("DELETE FROM reports WHERE cluster_id = ?1", [cluster_id])?;
    tx.execute("DELETE FROM clusters WHERE cluster_id = ?1", [cluster_id])?;
    tx.commit()?;
    Ok(deleted as u64)
}

fn prune(conn: &mut Connection, received_before: i64, limit: usize) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    keep_high_water(&tx)?;
    rollup::drop_weeks_before(&tx, received_before)?;
    let limit = limit as i64;
    let victims = "SELECT seq FROM reports WHERE received_at < ?1 ORDER BY received_at LIMIT ?2";
    for table in ["report_nodes", "deliveries"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE report_seq IN ({victims})"),
            params![received_before, limit],
        )?;
    }
    let deleted = tx.execute(
        &format!("DELETE FROM reports WHERE seq IN ({victims})"),
        params![received_before, limit],
    )?;
    if deleted > 0 {
        // Clusters whose oldest report may be gone: drop the empty ones, recompute the rest.
        tx.execute(
            "DELETE FROM clusters WHERE first_seen < ?1 AND NOT EXISTS \
             (SELECT 1 FROM reports r WHERE r.cluster_id = clusters.cluster_id)",
            [received_before],
        )?;
        tx.execute(
            "UPDATE clusters SET \
               first_seen = (SELECT min(received_at) FROM reports r WHERE r.cluster_id = clusters.cluster_id), \
               reports = (SELECT count(*) FROM reports r WHERE r.cluster_id = clusters.cluster_id), \
               (latest_seq, latest_report_time, latest_master_version, latest_node_count) = \
                 (SELECT seq, report_time, master_version, node_count FROM reports r \
                  WHERE r.cluster_id = clusters.cluster_id ORDER BY report_time DESC, seq DESC LIMIT 1) \
             WHERE first_seen < ?1",
            [received_before],
        )?;
    }
    tx.commit()?;
    Ok(deleted as u64)
}

/// Folds the write-ahead log into the database on a clean stop, so the data dir is one file.
fn checkpoint(conn: &Connection) {
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(%error, "could not checkpoint the write-ahead log on shutdown");
    }
}
