//! Reading a sink's outbox: its due rows, then the reports after its position, in insertion
//! order; its counts; and the listing of deliveries for the read API.

use std::ops::RangeInclusive;

use common::time::TimeSource;
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::outbox::{
    DeliveryCursor, DeliveryRow, DeliveryState, Held, OutboxItem, OutboxStats, Pending,
};
use crate::store::sqlite::sql::{parsed, report_body, report_id};

/// Reports of a range of a queue counted one by one up to this many; a range holding more is
/// counted by insertion order (a report erased there still counts), since counting means reading
/// every report's row.
const EXACT_COUNT: i64 = 10_000;

/// The sink's position (every report it covers up to this one was delivered or has a row) and
/// its queue's generation.
pub(super) fn position(conn: &Connection, sink: &str) -> rusqlite::Result<Option<(i64, i64)>> {
    conn.prepare_cached("SELECT position, generation FROM sink_positions WHERE sink = ?1")?
        .query_row([sink], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// The insertion orders of `sink`'s queue: the reports it covers after its position, as ranges
/// in order, the open one ending at `i64::MAX`. Empty for a sink without a position.
pub(super) fn queue_ranges(
    conn: &Connection,
    sink: &str,
) -> rusqlite::Result<Vec<RangeInclusive<i64>>> {
    match position(conn, sink)? {
        Some((position, _)) => ranges_after(conn, sink, position),
        None => Ok(Vec::new()),
    }
}

/// [`queue_ranges`] for a position already read.
fn ranges_after(
    conn: &Connection,
    sink: &str,
    position: i64,
) -> rusqlite::Result<Vec<RangeInclusive<i64>>> {
    let mut statement = conn.prepare_cached(
        "SELECT first_seq, COALESCE(last_seq, ?2) FROM sink_coverage \
         WHERE sink = ?1 AND COALESCE(last_seq, ?2) > ?3 ORDER BY first_seq",
    )?;
    let ranges = statement
        .query_map(params![sink, i64::MAX, position], |row| {
            Ok(row.get::<_, i64>(0)?.max(position + 1)..=row.get::<_, i64>(1)?)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ranges)
}

/// How many reports are in `sink`'s queue after its position (exactly up to [`EXACT_COUNT`] a
/// range), and when the first of them was received.
pub(super) fn queued_after_position(
    conn: &Connection,
    sink: &str,
) -> rusqlite::Result<(i64, Option<i64>)> {
    let last: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM reports")?
        .query_row([], |row| row.get(0))?;
    let mut count = 0;
    let mut first_received = None;
    for range in queue_ranges(conn, sink)? {
        let (low, high) = (*range.start(), (*range.end()).min(last));
        if low > high {
            continue;
        }
        if first_received.is_none() {
            first_received = conn
                .prepare_cached(
                    "SELECT received_at FROM reports WHERE seq BETWEEN ?1 AND ?2 \
                     ORDER BY seq LIMIT 1",
                )?
                .query_row([low, high], |row| row.get(0))
                .optional()?;
        }
        let exact: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM reports WHERE seq BETWEEN ?1 AND ?2 LIMIT ?3)",
            )?
            .query_row([low, high, EXACT_COUNT], |row| row.get(0))?;
        count += if exact < EXACT_COUNT {
            exact
        } else {
            high - low + 1
        };
    }
    Ok((count, first_received))
}

/// Up to `limit` pending deliveries of `sink` due at `now`, oldest report first: its rows due,
/// then the reports after its position (every row is at or before the position), all in one
/// read transaction.
pub fn pending(conn: &Connection, sink: &str, now: i64, limit: usize) -> rusqlite::Result<Pending> {
    let snapshot = conn.unchecked_transaction()?;
    let (ranges, generation) = match position(&snapshot, sink)? {
        Some((position, generation)) => (ranges_after(conn, sink, position)?, generation),
        None => (Vec::new(), 0),
    };
    let mut items = {
        let mut statement = conn.prepare_cached(
            "SELECT d.report_seq, d.attempts, d.created_at, r.id, r.cluster_id, r.report_time, \
                    r.time_source, r.received_at, r.body \
             FROM deliveries d JOIN reports r ON r.seq = d.report_seq \
             WHERE d.sink = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2 \
             ORDER BY d.report_seq LIMIT ?3",
        )?;
        let rows = statement.query_map(params![sink, now, limit as i64], |row| {
            item(row, Held::Row, row.get(1)?, row.get(2)?)
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut statement = conn.prepare_cached(
        "SELECT seq, 0, 0, id, cluster_id, report_time, time_source, received_at, body \
         FROM reports WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq LIMIT ?3",
    )?;
    for range in ranges {
        let wanted = limit.saturating_sub(items.len());
        if wanted == 0 {
            break;
        }
        let rows = statement
            .query_map(params![range.start(), range.end(), wanted as i64], |row| {
                item(row, Held::AfterPosition, 0, row.get(7)?)
            })?;
        for row in rows {
            items.push(row?);
        }
    }
    Ok(Pending { items, generation })
}

/// One pending delivery from a row of the columns `pending` selects.
fn item(
    row: &rusqlite::Row<'_>,
    held: Held,
    attempts: i64,
    queued_at: i64,
) -> rusqlite::Result<OutboxItem> {
    let seq: i64 = row.get(0)?;
    let report_time: i64 = row.get(5)?;
    Ok(OutboxItem {
        held,
        seq,
        attempts,
        queued_at,
        id: report_id(row, 3, seq)?,
        cluster_id: row.get(4)?,
        report_time,
        time_source: parsed::<TimeSource>(row, 6, "time_source", seq)?,
        received_at: row.get(7)?,
        report: report_body(row, 8, seq, report_time)?,
    })
}

/// Pending and dead counts of `sink`, its oldest pending delivery and when the next one is due.
pub fn stats(conn: &Connection, sink: &str) -> rusqlite::Result<OutboxStats> {
    let (rows, oldest_row, next_row): (i64, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT count(*), min(created_at), min(next_attempt_at) FROM deliveries \
             WHERE sink = ?1 AND state = 'pending'",
        )?
        .query_row([sink], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let dead: i64 = conn
        .prepare_cached("SELECT count(*) FROM deliveries WHERE sink = ?1 AND state = 'dead'")?
        .query_row([sink], |row| row.get(0))?;
    let (queued, first_received) = queued_after_position(conn, sink)?;
    let earliest = |a: Option<i64>, b: Option<i64>| a.into_iter().chain(b).min();
    Ok(OutboxStats {
        pending: rows + queued,
        dead,
        oldest_pending: earliest(oldest_row, first_received),
        // A report after the position is due at once.
        next_due: earliest(next_row, (queued > 0).then_some(0)),
    })
}

/// Deliveries in (sink, report) order after the `after` cursor, filtered by state and sink:
/// the rows, and the reports after each sink's position as pending deliveries never tried.
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
    let mut listed = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    if state != Some(DeliveryState::Dead) {
        listed.extend(list_queued(conn, sink, &after_sink, after_seq, limit)?);
        listed.sort_by(|a, b| (&a.sink, a.report_seq).cmp(&(&b.sink, b.report_seq)));
        listed.truncate(limit);
    }
    Ok(listed)
}

/// Up to `limit` reports after their sinks' positions, in (sink, report) order after
/// (`after_sink`, `after_seq`), as the read API lists pending deliveries.
fn list_queued(
    conn: &Connection,
    sink: Option<&str>,
    after_sink: &str,
    after_seq: i64,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    let sinks: Vec<String> = conn
        .prepare_cached(
            "SELECT sink FROM sink_positions WHERE sink >= ?1 AND (?2 IS NULL OR sink = ?2) \
             ORDER BY sink",
        )?
        .query_map(params![after_sink, sink], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut statement = conn.prepare_cached(
        "SELECT seq, id, cluster_id, received_at FROM reports \
         WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut listed = Vec::new();
    for name in sinks {
        let from = if name == after_sink { after_seq + 1 } else { 0 };
        for range in queue_ranges(conn, &name)? {
            let wanted = limit.saturating_sub(listed.len());
            if wanted == 0 {
                return Ok(listed);
            }
            let low = (*range.start()).max(from);
            let rows = statement.query_map(params![low, range.end(), wanted as i64], |row| {
                let seq: i64 = row.get(0)?;
                Ok(DeliveryRow {
                    sink: name.clone(),
                    report_seq: seq,
                    report_id: report_id(row, 1, seq)?.to_string(),
                    cluster_id: row.get(2)?,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    queued_at: row.get(3)?,
                    next_attempt_at: 0,
                    last_error: None,
                })
            })?;
            for row in rows {
                listed.push(row?);
            }
        }
    }
    Ok(listed)
}
