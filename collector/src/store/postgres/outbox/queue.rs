//! Writing a sink's outbox, as the embedded store writes it: the sinks configured at startup,
//! what a worker learned (outcomes and the position it reached, in the writer's transaction), and
//! an operator's re-queue.

use std::collections::BTreeMap;

use tokio_postgres::{GenericClient, Transaction};

use super::read::{position, queued_after_position};
use crate::store::outbox::{OutboxUpdate, SinkRegistration};

/// Records the configured sinks and the reports each will receive: a sink configured now keeps
/// (or opens) a coverage range from the next report on, and a sink seen for the first time has
/// its position at the last report stored; a sink no longer configured has its range closed
/// there. A sink's position is never moved back.
pub(in crate::store::postgres) async fn register(
    tx: &Transaction<'_>,
    sinks: &[SinkRegistration],
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    let last: i64 = tx
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM reports", &[])
        .await?
        .get(0);
    let configured: Vec<&str> = sinks.iter().map(|sink| sink.name.as_str()).collect();
    tx.execute(
        "UPDATE sink_coverage SET last_seq = $2 WHERE last_seq IS NULL AND NOT sink = ANY($1)",
        &[&configured, &last],
    )
    .await?;
    tx.execute(
        "DELETE FROM sink_coverage WHERE last_seq IS NOT NULL AND last_seq < first_seq",
        &[],
    )
    .await?;
    for sink in sinks {
        tx.execute(
            "INSERT INTO sinks (name, type, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET type = excluded.type",
            &[&sink.name, &sink.kind.as_str(), &now],
        )
        .await?;
        tx.execute(
            "INSERT INTO sink_coverage (sink, first_seq, last_seq) SELECT $1, $2, NULL \
             WHERE NOT EXISTS (SELECT 1 FROM sink_coverage WHERE sink = $1 AND last_seq IS NULL)",
            &[&sink.name, &(last + 1)],
        )
        .await?;
        tx.execute(
            "INSERT INTO sink_positions (sink, position) VALUES ($1, $2) \
             ON CONFLICT (sink) DO NOTHING",
            &[&sink.name, &last],
        )
        .await?;
    }
    Ok(())
}

/// Sinks that have deliveries waiting (rows, or reports after their position) but are not in
/// `configured`, with how many.
pub(in crate::store::postgres) async fn unconfigured(
    client: &impl GenericClient,
    configured: &[SinkRegistration],
) -> Result<Vec<(String, i64)>, tokio_postgres::Error> {
    let known: Vec<String> = client
        .query(
            "SELECT sink FROM deliveries UNION SELECT sink FROM sink_positions ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut waiting = Vec::new();
    for sink in known {
        if configured.iter().any(|c| c.name == sink) {
            continue;
        }
        let rows: i64 = client
            .query_one("SELECT count(*) FROM deliveries WHERE sink = $1", &[&sink])
            .await?
            .get(0);
        let count = rows + queued_after_position(client, &sink).await?.0;
        if count > 0 {
            waiting.push((sink, count));
        }
    }
    Ok(waiting)
}

/// Applies what a sink's worker learned, inside the writer's transaction, exactly as the
/// embedded store does (`sqlite/outbox/queue.rs`): delivered rows go, retried and dead ones are
/// updated or get a row, then the position moves on unless a backfill changed the queue.
pub(in crate::store::postgres) async fn apply(
    tx: &Transaction<'_>,
    update: &OutboxUpdate,
) -> Result<(), tokio_postgres::Error> {
    let (current, generation) = position(tx, &update.sink).await?.unwrap_or((i64::MAX, 0));
    let reached = update.position.filter(|_| generation == update.generation);
    let kept = |seq: &i64| *seq <= current.max(reached.unwrap_or(current));
    if !update.delivered.is_empty() {
        tx.execute(
            "DELETE FROM deliveries WHERE sink = $1 AND report_seq = ANY($2)",
            &[&update.sink, &update.delivered],
        )
        .await?;
    }
    // One row per report (a statement's upsert cannot change a row twice), the last word kept.
    let retried: BTreeMap<i64, &str> = update
        .retried
        .iter()
        .filter(|(seq, _)| kept(seq))
        .map(|(seq, error)| (*seq, error.as_str()))
        .collect();
    let (retried, errors): (Vec<i64>, Vec<&str>) = retried.into_iter().unzip();
    if !retried.is_empty() {
        tx.execute(
            "INSERT INTO deliveries AS d \
               (sink, report_seq, state, attempts, next_attempt_at, created_at, last_error) \
             SELECT $1, r.seq, 'pending', 1, $4, r.received_at, u.error \
             FROM unnest($2::bigint[], $3::text[]) AS u(seq, error) \
             JOIN reports r ON r.seq = u.seq ORDER BY r.seq \
             ON CONFLICT (sink, report_seq) DO UPDATE SET attempts = d.attempts + 1, \
               last_error = excluded.last_error, next_attempt_at = excluded.next_attempt_at \
             WHERE d.state = 'pending'",
            &[&update.sink, &retried, &errors, &update.retry_at],
        )
        .await?;
    }
    let dead: BTreeMap<i64, &str> = update
        .dead
        .iter()
        .filter(|(seq, _)| kept(seq))
        .map(|(seq, reason)| (*seq, reason.as_str()))
        .collect();
    let (dead, reasons): (Vec<i64>, Vec<&str>) = dead.into_iter().unzip();
    if !dead.is_empty() {
        tx.execute(
            "INSERT INTO deliveries AS d \
               (sink, report_seq, state, attempts, next_attempt_at, created_at, last_error) \
             SELECT $1, r.seq, 'dead', 1, 0, r.received_at, u.reason \
             FROM unnest($2::bigint[], $3::text[]) AS u(seq, reason) \
             JOIN reports r ON r.seq = u.seq ORDER BY r.seq \
             ON CONFLICT (sink, report_seq) DO UPDATE SET attempts = d.attempts + 1, \
               last_error = excluded.last_error, state = 'dead'",
            &[&update.sink, &dead, &reasons],
        )
        .await?;
    }
    if let Some(reached) = reached {
        tx.execute(
            "UPDATE sink_positions SET position = GREATEST(position, $2) WHERE sink = $1",
            &[&update.sink, &reached],
        )
        .await?;
    }
    Ok(())
}

/// Puts deliveries back in the queue, exactly as the embedded store does
/// (`sqlite/outbox/queue.rs`): dead ones of reports received since `since`, and unless
/// `dead_only`, a backfill of the reports stored while the sink was not configured. Returns how
/// many deliveries are pending again.
pub(in crate::store::postgres) async fn requeue(
    tx: &Transaction<'_>,
    sink: &str,
    dead_only: bool,
    since: i64,
    now: i64,
) -> Result<u64, tokio_postgres::Error> {
    let mut changed = tx
        .execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, \
               last_error = NULL, created_at = $3 \
             WHERE sink = $1 AND state = 'dead' AND report_seq IN \
               (SELECT seq FROM reports WHERE received_at >= $2)",
            &[&sink, &since, &now],
        )
        .await?;
    if dead_only {
        return Ok(changed);
    }
    const NOT_COVERED: &str = "NOT EXISTS (SELECT 1 FROM sink_coverage c WHERE c.sink = $1 \
         AND r.seq >= c.first_seq AND (c.last_seq IS NULL OR r.seq <= c.last_seq))";
    let position = position(tx, sink)
        .await?
        .map_or(i64::MAX, |(position, _)| position);
    tx.execute(
        "UPDATE sink_positions SET generation = generation + 1 WHERE sink = $1",
        &[&sink],
    )
    .await?;
    changed += tx
        .execute(
            &format!(
                "INSERT INTO deliveries (sink, report_seq, state, created_at) \
                 SELECT $1, r.seq, 'pending', $3 FROM reports r \
                 WHERE r.received_at >= $2 AND r.seq <= $4 AND {NOT_COVERED} ORDER BY r.seq \
                 ON CONFLICT (sink, report_seq) DO NOTHING"
            ),
            &[&sink, &since, &now, &position],
        )
        .await?;
    let after: i64 = tx
        .query_one(
            &format!(
                "SELECT count(*) FROM reports r \
                 WHERE r.received_at >= $2 AND r.seq > $3 AND {NOT_COVERED}"
            ),
            &[&sink, &since, &position],
        )
        .await?
        .get(0);
    changed += after as u64;
    let first: Option<i64> = tx
        .query_one(
            "SELECT MIN(seq) FROM reports WHERE received_at >= $1",
            &[&since],
        )
        .await?
        .get(0);
    if let Some(first) = first {
        tx.execute(
            "DELETE FROM sink_coverage WHERE sink = $1 AND first_seq >= $2",
            &[&sink, &first],
        )
        .await?;
        tx.execute(
            "UPDATE sink_coverage SET last_seq = NULL WHERE sink = $1 AND last_seq >= $2::bigint - 1",
            &[&sink, &first],
        )
        .await?;
        tx.execute(
            "INSERT INTO sink_coverage (sink, first_seq, last_seq) SELECT $1, $2, NULL \
             WHERE NOT EXISTS (SELECT 1 FROM sink_coverage WHERE sink = $1 AND last_seq IS NULL)",
            &[&sink, &first],
        )
        .await?;
    }
    Ok(changed)
}
