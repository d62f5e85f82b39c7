//! The per-sink delivery outbox: a row per (sink, report) written in the transaction that stores
//! the report, read in order by that sink's delivery worker, deleted once the sink confirmed or
//! set `dead` with the reason.

use std::fmt;
use std::str::FromStr;

use common::report::Report;
use common::time::TimeSource;
use rusqlite::{Connection, Transaction, params};
use strum::{EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

use super::sql::{parsed, report_body, report_id};
use crate::sinks::kind::SinkKind;

/// Where a delivery stands. Delivered ones are deleted, so these are the only two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its sink (possibly after failed attempts).
    Pending,
    /// Failed for good, or not delivered within `--max-delivery-age`; kept until re-queued.
    Dead,
}

impl DeliveryState {
    /// The state as the store and the read API write it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where a page of the delivery listing ends: the last (sink, report) listed; written
/// `sink:seq` in the read API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCursor {
    /// The sink of the last delivery listed.
    pub sink: String,
    /// Its report's insertion order.
    pub seq: i64,
}

impl fmt::Display for DeliveryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.sink, self.seq)
    }
}

/// Most digits of a cursor's report position: every number of at most this many fits an `i64`.
pub const CURSOR_SEQ_DIGITS: usize = 18;

impl FromStr for DeliveryCursor {
    type Err = ();

    /// `sink:seq`, the position written as 1 to [`CURSOR_SEQ_DIGITS`] ASCII digits (no sign), so
    /// the grammar is exactly the read API's documented pattern.
    fn from_str(text: &str) -> Result<Self, ()> {
        let (sink, seq) = text.rsplit_once(':').ok_or(())?;
        if !(1..=CURSOR_SEQ_DIGITS).contains(&seq.len()) || !seq.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(());
        }
        Ok(DeliveryCursor {
            sink: sink.to_string(),
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// A sink the outbox keeps deliveries for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRegistration {
    /// Unique name from the configuration.
    pub name: String,
    /// Its type.
    pub kind: SinkKind,
}

/// One pending delivery, with the report it carries.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// The report's insertion order.
    pub seq: i64,
    /// Report id (the sinks' dedup key).
    pub id: Uuid,
    /// Cluster id.
    pub cluster_id: String,
    /// The report's time, unix seconds.
    pub report_time: i64,
    /// Where the time came from.
    pub time_source: TimeSource,
    /// When the collector received it, unix seconds.
    pub received_at: i64,
    /// When the delivery was queued, unix seconds.
    pub queued_at: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// The report (`timestamp` set to its time).
    pub report: Report,
}

/// What one round of a sink's worker learned.
#[derive(Debug, Clone, Default)]
pub struct OutboxUpdate {
    /// The sink.
    pub sink: String,
    /// Confirmed by the sink: their rows are deleted.
    pub delivered: Vec<i64>,
    /// Failed, worth another try at `retry_at`.
    pub retried: Vec<(i64, String)>,
    /// Failed for good, with the reason.
    pub dead: Vec<(i64, String)>,
    /// When the retried ones are due again, unix seconds.
    pub retry_at: i64,
}

/// Counts of one sink's outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Pending deliveries.
    pub pending: i64,
    /// Dead-lettered deliveries.
    pub dead: i64,
    /// When the oldest pending delivery was queued, unix seconds.
    pub oldest_pending: Option<i64>,
    /// The earliest time a pending delivery is due, unix seconds.
    pub next_due: Option<i64>,
}

/// One delivery as the read API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The sink.
    pub sink: String,
    /// The report's insertion order (the listing's cursor).
    pub report_seq: i64,
    /// Report id.
    pub report_id: String,
    /// Cluster id.
    pub cluster_id: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was queued, unix seconds.
    pub queued_at: i64,
    /// When it is due again, unix seconds.
    pub next_attempt_at: i64,
    /// The last failure, or why it is dead.
    pub last_error: Option<String>,
}

/// Records the configured sinks and the reports each will receive: a sink configured now keeps
/// (or opens) a coverage range from the next report on; a sink no longer configured has its range
/// closed at the last report stored.
pub(super) fn register(
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
    for sink in sinks {
        upsert.execute(params![sink.name, sink.kind.as_str(), now])?;
        cover.execute(params![sink.name, last + 1])?;
    }
    Ok(())
}

/// Sinks that have deliveries in the outbox but are not in `configured`, with how many.
pub(super) fn unconfigured(
    conn: &Connection,
    configured: &[SinkRegistration],
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut statement =
        conn.prepare("SELECT sink, COUNT(*) FROM deliveries GROUP BY sink ORDER BY sink")?;
    let counts = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(counts
        .into_iter()
        .filter(|(sink, _)| !configured.iter().any(|c| &c.name == sink))
        .collect())
}

/// Queues a just-stored report for every sink, in the storing transaction.
pub(super) fn enqueue(
    tx: &Transaction<'_>,
    seq: i64,
    sinks: &[String],
    now: i64,
) -> rusqlite::Result<()> {
    if sinks.is_empty() {
        return Ok(());
    }
    let mut statement = tx.prepare_cached(
        "INSERT INTO deliveries (sink, report_seq, state, created_at) VALUES (?1, ?2, 'pending', ?3)",
    )?;
    for sink in sinks {
        statement.execute(params![sink, seq, now])?;
    }
    Ok(())
}

/// Applies what a sink's worker learned, inside the writer's transaction.
pub(super) fn apply(tx: &Transaction<'_>, update: &OutboxUpdate) -> rusqlite::Result<()> {
    {
        let mut delete =
            tx.prepare_cached("DELETE FROM deliveries WHERE sink = ?1 AND report_seq = ?2")?;
        for seq in &update.delivered {
            delete.execute(params![update.sink, seq])?;
        }
        let mut retry = tx.prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3, next_attempt_at = ?4 \
             WHERE sink = ?1 AND report_seq = ?2 AND state = 'pending'",
        )?;
        for (seq, error) in &update.retried {
            retry.execute(params![update.sink, seq, error, update.retry_at])?;
        }
        let mut dead = tx.prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3, state = 'dead' \
             WHERE sink = ?1 AND report_seq = ?2",
        )?;
        for (seq, reason) in &update.dead {
            dead.execute(params![update.sink, seq, reason])?;
        }
    }
    Ok(())
}

/// Puts deliveries back in the queue: dead ones of reports received since `since`, and unless
/// `dead_only`, a backfill: every report received since `since` that was stored while the sink
/// was not configured (so never had a delivery for it). Delivered reports are not sent again.
pub(super) fn requeue(
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
        changed += tx.execute(
            "INSERT OR IGNORE INTO deliveries (sink, report_seq, state, created_at) \
             SELECT ?1, r.seq, 'pending', ?3 FROM reports r WHERE r.received_at >= ?2 \
             AND NOT EXISTS (SELECT 1 FROM sink_coverage c WHERE c.sink = ?1 \
               AND r.seq >= c.first_seq AND (c.last_seq IS NULL OR r.seq <= c.last_seq))",
            params![sink, since, now],
        )?;
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

/// Up to `limit` pending deliveries of `sink` due at `now`, oldest report first.
pub fn pending(
    conn: &Connection,
    sink: &str,
    now: i64,
    limit: usize,
) -> rusqlite::Result<Vec<OutboxItem>> {
    let mut statement = conn.prepare_cached(
        "SELECT d.report_seq, d.attempts, d.created_at, r.id, r.cluster_id, r.report_time, \
                r.time_source, r.received_at, r.body \
         FROM deliveries d JOIN reports r ON r.seq = d.report_seq \
         WHERE d.sink = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2 \
         ORDER BY d.report_seq LIMIT ?3",
    )?;
    let rows = statement.query_map(params![sink, now, limit as i64], |row| {
        let seq: i64 = row.get(0)?;
        let report_time: i64 = row.get(5)?;
        Ok(OutboxItem {
            seq,
            attempts: row.get(1)?,
            queued_at: row.get(2)?,
            id: report_id(row, 3, seq)?,
            cluster_id: row.get(4)?,
            report_time,
            time_source: parsed::<TimeSource>(row, 6, "time_source", seq)?,
            received_at: row.get(7)?,
            report: report_body(row, 8, seq, report_time)?,
        })
    })?;
    rows.collect()
}

/// Pending and dead counts of `sink`, its oldest pending delivery and when the next one is due.
pub fn stats(conn: &Connection, sink: &str) -> rusqlite::Result<OutboxStats> {
    let (pending, oldest_pending, next_due): (i64, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT count(*), min(created_at), min(next_attempt_at) FROM deliveries \
             WHERE sink = ?1 AND state = 'pending'",
        )?
        .query_row([sink], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let dead: i64 = conn
        .prepare_cached("SELECT count(*) FROM deliveries WHERE sink = ?1 AND state = 'dead'")?
        .query_row([sink], |row| row.get(0))?;
    Ok(OutboxStats {
        pending,
        dead,
        oldest_pending,
        next_due,
    })
}

/// Deliveries in (sink, report) order after the `after` cursor, filtered by state and sink.
pub fn list(
    conn: &Connection,
    state: Option<DeliveryState>,
    sink: Option<&str>,
    after: Option<DeliveryCursor>,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    let (after_sink, after_seq) = after.map_or((String::new(), 0), |c| (c.sink, c.seq));
    let mut statement = conn.prepare_cached(
        "SELECT d.sink, d.report_seq, r.id, r.cluster_id, d.state, d.attempts, d.created_at, \
                d.next_attempt_at, d.last_error \
         FROM deliveries d JOIN reports r ON r.seq = d.report_seq \
         WHERE (?1 IS NULL OR d.state = ?1) AND (?2 IS NULL OR d.sink = ?2) \
           AND (d.sink, d.report_seq) > (?3, ?4) \
         ORDER BY d.sink, d.report_seq LIMIT ?5",
    )?;
    let rows = statement.query_map(
        params![
            state.map(DeliveryState::as_str),
            sink,
            after_sink,
            after_seq,
            limit as i64
        ],
        |row| {
            let seq: i64 = row.get(1)?;
            Ok(DeliveryRow {
                sink: row.get(0)?,
                report_seq: seq,
                report_id: report_id(row, 2, seq)?.to_string(),
                cluster_id: row.get(3)?,
                state: parsed(row, 4, "state", seq)?,
                attempts: row.get(5)?,
                queued_at: row.get(6)?,
                next_attempt_at: row.get(7)?,
                last_error: row.get(8)?,
            })
        },
    )?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::words::Words;

    #[test]
    fn states_keep_their_stored_names() {
        assert_eq!(DeliveryState::words(), ["pending", "dead"]);
        assert!(DeliveryState::parse_back());
        assert!("Pending".parse::<DeliveryState>().is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = DeliveryCursor {
            sink: "eu:warehouse".into(),
            seq: 42,
        };
        assert_eq!(cursor.to_string(), "eu:warehouse:42");
        assert_eq!("eu:warehouse:42".parse::<DeliveryCursor>(), Ok(cursor));
        for bad in [
            "",
            "segment",
            "segment:",
            "segment:x",
            "segment:+5",
            "segment:-5",
            "segment:1234567890123456789",
        ] {
            assert!(bad.parse::<DeliveryCursor>().is_err(), "{bad}");
        }
    }
}
