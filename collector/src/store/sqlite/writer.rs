//! The single writer thread: drains queued commands and commits consecutive inserts together.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use common::time::unix_now;
use rusqlite::{Connection, ToSql, Transaction, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::command::{Command, MAX_GROUP, Reply, Shared};
use super::{checkpoint, meta, outbox, read, removal, rollup};
use crate::error::{Error, Result};
use crate::store::outbox::{OutboxUpdate, SinkRegistration};
use crate::store::records::{InsertOutcome, NODE_FACT_COLUMNS, NewReport};

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
        // Between two groups, so that the next transaction starts the log over.
        if shared.log_restart_due.swap(false, Ordering::AcqRel) {
            let started = Instant::now();
            if let Err(error) = checkpoint::passive_checkpoint(&conn) {
                tracing::warn!(%error, "checkpoint of the write-ahead log failed");
            }
            shared
                .writes
                .metrics
                .log_restart_duration
                .observe(started.elapsed().as_secs_f64());
        }
    }
    checkpoint(&conn);
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
                    .writes
                    .metrics
                    .commit_duration
                    .observe(started.elapsed().as_secs_f64());
                shared
                    .writes
                    .metrics
                    .commit_group_size
                    .observe(group.inserts.len() as f64);
            }
            shared.writes.mark_available();
            let stored = outcomes
                .iter()
                .filter(|outcome| **outcome == InsertOutcome::Stored)
                .count();
            if stored > 0 {
                shared.writes.stored(stored);
            }
            for ((_, reply), outcome) in group.inserts.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            for (_, reply) in group.updates {
                let _ = reply.send(Ok(()));
            }
        }
        Err(error) => {
            let error = shared.writes.failed(error);
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
    reports: impl Iterator<Item = &'a NewReport>,
    next_seq: &mut i64,
) -> rusqlite::Result<Vec<InsertOutcome>> {
    let mut outcomes = Vec::new();
    let mut new_cluster = tx.prepare_cached(
        "INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq, \
         latest_report_time, latest_master_version, latest_node_count) \
         VALUES (?1, ?2, ?2, 1, ?3, ?4, ?5, ?6) RETURNING cluster_no",
    )?;
    let mut seen_again = tx.prepare_cached(
        "UPDATE clusters SET \
           first_seen = min(first_seen, ?2), \
           last_seen = max(last_seen, ?2), \
           reports = reports + 1, \
           latest_seq = CASE WHEN ?4 >= latest_report_time THEN ?3 ELSE latest_seq END, \
           latest_master_version = CASE WHEN ?4 >= latest_report_time \
             THEN ?5 ELSE latest_master_version END, \
           latest_node_count = CASE WHEN ?4 >= latest_report_time \
             THEN ?6 ELSE latest_node_count END, \
           latest_report_time = max(latest_report_time, ?4) \
         WHERE cluster_no = ?1",
    )?;
    let mut insert_key = tx.prepare_cached(
        "INSERT INTO report_keys (cluster_no, id, seq) VALUES (?1, ?2, ?3) \
         ON CONFLICT (cluster_no, id) DO NOTHING",
    )?;
    let mut stored_hash = tx.prepare_cached(
        "SELECT r.content_sha256 FROM report_keys k JOIN reports r ON r.seq = k.seq \
         WHERE k.cluster_no = ?1 AND k.id = ?2",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO reports (id, cluster_id, report_time, time_source, received_at, \
         content_sha256, master_version, node_count, body, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut insert_nodes = tx.prepare_cached(&INSERT_NODE_GROUP)?;
    for report in reports {
        let id = report.id.as_bytes().as_slice();
        let seq = *next_seq;
        match read::cluster_number(tx, &report.cluster_id)? {
            // A cluster seen for the first time cannot have sent this report before.
            None => {
                let cluster_no: i64 = new_cluster.query_row(
                    params![
                        report.cluster_id,
                        report.received_at,
                        seq,
                        report.report_time,
                        report.master_version,
                        report.node_count,
                    ],
                    |row| row.get(0),
                )?;
                // A key already taken by a number just given means a damaged store: refuse the
                // group rather than store a report that nothing finds.
                let keyed = insert_key.execute(params![cluster_no, id, seq])?;
                if keyed != 1 {
                    return Err(rusqlite::Error::StatementChangedRows(keyed));
                }
            }
            Some(cluster_no) => {
                if insert_key.execute(params![cluster_no, id, seq])? == 0 {
                    let hash: Vec<u8> =
                        stored_hash.query_row(params![cluster_no, id], |row| row.get(0))?;
                    outcomes.push(if hash == report.content_sha256 {
                        InsertOutcome::Duplicate
                    } else {
                        InsertOutcome::Conflict
                    });
                    continue;
                }
                seen_again.execute(params![
                    cluster_no,
                    report.received_at,
                    seq,
                    report.report_time,
                    report.master_version,
                    report.node_count,
                ])?;
            }
        }
        *next_seq += 1;
        insert.execute(params![
            id,
            report.cluster_id,
            report.report_time,
            report.time_source.as_str(),
            report.received_at,
            report.content_sha256.as_slice(),
            report.master_version,
            report.node_count,
            report.body,
            seq,
        ])?;
        for group in &report.node_groups {
            let mut values: Vec<&dyn ToSql> = vec![&seq];
            values.extend(group.facts.iter().map(|fact| fact as &dyn ToSql));
            values.push(&group.nodes);
            insert_nodes.execute(values.as_slice())?;
        }
        outcomes.push(InsertOutcome::Stored);
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
            let result = removal::delete_cluster(conn, &cluster_id);
            if let Ok(deleted) = result {
                shared.writes.metrics.store_reports.dec_by(deleted as i64);
            }
            let _ = reply.send(track(shared, result));
        }
        Command::Prune {
            received_before,
            limit,
            reply,
        } => {
            let result = removal::prune(conn, received_before, limit);
            if let Ok(deleted) = result {
                shared.writes.metrics.store_reports.dec_by(deleted as i64);
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
                shared.writes.requeued(requeued);
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
    shared.writes.track(result)
}

/// A small write that proves the store takes writes.
pub(super) fn probe(conn: &mut Connection) -> rusqlite::Result<()> {
    let now = unix_now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    meta::set(&tx, "last_write_check", &now.to_string())?;
    tx.commit()
}

/// Folds the write-ahead log into the database on a clean stop, so the data dir is one file.
fn checkpoint(conn: &Connection) {
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(%error, "could not checkpoint the write-ahead log on shutdown");
    }
}
