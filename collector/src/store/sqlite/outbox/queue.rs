//! Writing a sink's outbox, on the writer's connection: the sinks configured at startup, what a
//! worker learned (outcomes and the position it reached), and an operator's re-queue.

use rusqlite::{Connection, Transaction, params};

use super::read::{position, queued_after_position};
use crate::store::outbox::{OutboxUpdate, SinkRegistration};

/// Records the configured sinks and the reports each will receive: a sink configured now keeps
/// (or opens) a coverage range from the next report on, and a sink seen for the first time has
/// its position at the last report stored; a sink no longer configured has its range closed
/// there. A sink's position is never moved back, so a sink configured again finds what it had not
/// delivered when it was removed.
pub(in crate::store) fn register(
    tx: &Transaction<'_>,
    sinks: &[SinkRegistration],
    now: i64,
) -> rusqlite::Result<()> {
    let last: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM reports", [], |row| {
        row.get(0)
    })?;
    let configured: Vec<&str> = sinks.iter().map(|sink| sink.name.as_str()).collect();
    let open: Vec<String> = tx
        .prepare("SELECT sink FROM sink_coverage WHERE last_seq IS NULL")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for sink in open.iter().filter(|s| !configured.contains(&s.as_str())) {
        tx.execute(
            "UPDATE sink_coverage SET last_seq = ?2 WHERE sink = ?1 AND last_seq IS NULL",
            params![sink, last],
        )?;
    }
    tx.execute(
        "DELETE FROM sink_coverage WHERE last_seq IS NOT NULL AND last_seq < first_seq",
        [],
    )?;
    let mut upsert = tx.prepare(
        "INSERT INTO sinks (name, type, added_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET type = excluded.type",
    )?;
    let mut cover = tx.prepare(
        "INSERT INTO sink_coverage (sink, first_seq, last_seq) SELECT ?1, ?2, NULL \
         WHERE NOT EXISTS (SELECT 1 FROM sink_coverage WHERE sink = ?1 AND last_seq IS NULL)",
    )?;
    let mut place = tx.prepare(
        "INSERT INTO sink_positions (sink, position) VALUES (?1, ?2) ON CONFLICT (sink) DO NOTHING",
    )?;
    for sink in sinks {
        upsert.execute(params![sink.name, sink.kind.as_str(), now])?;
        cover.execute(params![sink.name, last + 1])?;
        place.execute(params![sink.name, last])?;
    }
    Ok(())
}

/// Sinks that have deliveries waiting (rows, or reports after their position) but are not in
/// `configured`, with how many.
pub(in crate::store) fn unconfigured(
    conn: &Connection,
    configured: &[SinkRegistration],
) -> rusqlite::Result<Vec<(String, i64)>> {
    let known: Vec<String> = conn
        .prepare("SELECT sink FROM deliveries UNION SELECT sink FROM sink_positions ORDER BY 1")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut rows = conn.prepare("SELECT count(*) FROM deliveries WHERE sink = ?1")?;
    let mut waiting = Vec::new();
    for sink in known {
        if configured.iter().any(|c| c.name == sink) {
            continue;
        }
        let count = rows.query_row([&sink], |row| row.get::<_, i64>(0))?
            + queued_after_position(conn, &sink)?.0;
        if count > 0 {
            waiting.push((sink, count));
        }
    }
    Ok(waiting)
}

/// Applies what a sink's worker learned, inside the writer's transaction: a delivered row is
/// deleted; a retried or dead delivery updates its row, or gets one (a report after the old
/// position, unless it was erased meanwhile); then the position moves on. So that every row stays
/// at or before the position, the outcomes of reports after the position it reaches are dropped,
/// and so is the move when a backfill changed the queue since the batch was read: the next round
/// reads those reports again.
pub(in crate::store) fn apply(tx: &Transaction<'_>, update: &OutboxUpdate) -> rusqlite::Result<()> {
    let (current, generation) = position(tx, &update.sink)?.unwrap_or((i64::MAX, 0));
    let reached = update.position.filter(|_| generation == update.generation);
    let kept = |seq: &i64| *seq <= current.max(reached.unwrap_or(current));
    let mut delete =
        tx.prepare_cached("DELETE FROM deliveries WHERE sink = ?1 AND report_seq = ?2")?;
    for seq in &update.delivered {
        delete.execute(params![update.sink, seq])?;
    }
    let mut retry = tx.prepare_cached(
        "INSERT INTO deliveries \
           (sink, report_seq, state, attempts, next_attempt_at, created_at, last_error) \
         SELECT ?1, seq, 'pending', 1, ?4, received_at, ?3 FROM reports WHERE seq = ?2 \
         ON CONFLICT (sink, report_seq) DO UPDATE SET attempts = attempts + 1, \
           last_error = excluded.last_error, next_attempt_at = excluded.next_attempt_at \
         WHERE state = 'pending'",
    )?;
    for (seq, error) in update.retried.iter().filter(|(seq, _)| kept(seq)) {
        retry.execute(params![update.sink, seq, error, update.retry_at])?;
    }
    let mut dead = tx.prepare_cached(
        "INSERT INTO deliveries \
           (sink, report_seq, state, attempts, next_attempt_at, created_at, last_error) \
         SELECT ?1, seq, 'dead', 1, 0, received_at, ?3 FROM reports WHERE seq = ?2 \
         ON CONFLICT (sink, report_seq) DO UPDATE SET attempts = attempts + 1, \
           last_error = excluded.last_error, state = 'dead'",
    )?;
    for (seq, reason) in update.dead.iter().filter(|(seq, _)| kept(seq)) {
        dead.execute(params![update.sink, seq, reason])?;
    }
    if let Some(reached) = reached {
        tx.prepare_cached(
            "UPDATE sink_positions SET position = max(position, ?2) WHERE sink = ?1",
        )?
        .execute(params![update.sink, reached])?;
    }
    Ok(())
}

/// Puts deliveries back in the queue: dead ones of reports received since `since`, and unless
/// `dead_only`, a backfill: every report received since `since` that was stored while the sink
/// was not configured (so never had a delivery for it). Delivered reports are not sent again.
/// Returns how many deliveries are pending again.
pub(in crate::store) fn requeue(
    conn: &mut Connection,
    sink: &str,
    dead_only: bool,
    since: i64,
    now: i64,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut changed = tx.execute(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, \
           last_error = NULL, created_at = ?3 \
         WHERE sink = ?1 AND state = 'dead' AND report_seq IN \
           (SELECT seq FROM reports WHERE received_at >= ?2)",
        params![sink, since, now],
    )?;
    if !dead_only {
        const NOT_COVERED: &str = "NOT EXISTS (SELECT 1 FROM sink_coverage c WHERE c.sink = ?1 \
             AND r.seq >= c.first_seq AND (c.last_seq IS NULL OR r.seq <= c.last_seq))";
        let position = position(&tx, sink)?.map_or(i64::MAX, |(position, _)| position);
        tx.execute(
            "UPDATE sink_positions SET generation = generation + 1 WHERE sink = ?1",
            [sink],
        )?;
        // At or before the position, a report the sink never had gets a row; after it, the
        // coverage below puts it in the sink's queue.
        changed += tx.execute(
            &format!(
                "INSERT OR IGNORE INTO deliveries (sink, report_seq, state, created_at) \
                 SELECT ?1, r.seq, 'pending', ?3 FROM reports r \
                 WHERE r.received_at >= ?2 AND r.seq <= ?4 AND {NOT_COVERED}"
            ),
            params![sink, since, now, position],
        )?;
        changed += tx.query_row(
            &format!(
                "SELECT count(*) FROM reports r \
                 WHERE r.received_at >= ?2 AND r.seq > ?3 AND {NOT_COVERED}"
            ),
            params![sink, since, position],
            |row| row.get::<_, i64>(0),
        )? as usize;
        // What was backfilled is covered now, so a second backfill does not send it again: the
        // sink's coverage becomes one open range from the first report received since `since`.
        let first: Option<i64> = tx.query_row(
            "SELECT MIN(seq) FROM reports WHERE received_at >= ?1",
            [since],
            |row| row.get(0),
        )?;
        if let Some(first) = first {
            tx.execute(
                "DELETE FROM sink_coverage WHERE sink = ?1 AND first_seq >= ?2",
                params![sink, first],
            )?;
            tx.execute(
                "UPDATE sink_coverage SET last_seq = NULL WHERE sink = ?1 AND last_seq >= ?2 - 1",
                params![sink, first],
            )?;
            tx.execute(
                "INSERT INTO sink_coverage (sink, first_seq, last_seq) SELECT ?1, ?2, NULL \
                 WHERE NOT EXISTS (SELECT 1 FROM sink_coverage WHERE sink = ?1 AND last_seq IS NULL)",
                params![sink, first],
            )?;
        }
    }
    tx.commit()?;
    Ok(changed as u64)
}
