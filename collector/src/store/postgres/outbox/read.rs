//! Reading a sink's outbox, as the embedded store reads it: its due rows, then the reports after
//! its position, in insertion order; its counts; and the listing of deliveries for the read API.

use std::ops::RangeInclusive;

use common::time::TimeSource;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::error::BoxError;
use crate::store::listing::stored_body;
use crate::store::outbox::{
    DeliveryCursor, DeliveryRow, DeliveryState, Held, OutboxItem, OutboxStats, Pending,
};

/// Reports of a range of a queue counted one by one up to this many; a range holding more is
/// counted by insertion order (a report erased there still counts).
const EXACT_COUNT: i64 = 10_000;

/// The sink's position and its queue's generation.
pub(super) async fn position(
    client: &impl GenericClient,
    sink: &str,
) -> Result<Option<(i64, i64)>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT position, generation FROM sink_positions WHERE sink = $1",
            &[&sink],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// The insertion orders of the reports `sink` covers after `position`, as ranges in order, the
/// open one ending at `i64::MAX`.
async fn ranges_after(
    client: &impl GenericClient,
    sink: &str,
    position: i64,
) -> Result<Vec<RangeInclusive<i64>>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT first_seq, COALESCE(last_seq, $2) FROM sink_coverage \
             WHERE sink = $1 AND COALESCE(last_seq, $2) > $3 ORDER BY first_seq",
            &[&sink, &i64::MAX, &position],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.get::<_, i64>(0).max(position + 1)..=row.get::<_, i64>(1))
        .collect())
}

/// `sink`'s queue ranges; empty for a sink without a position.
async fn queue_ranges(
    client: &impl GenericClient,
    sink: &str,
) -> Result<Vec<RangeInclusive<i64>>, tokio_postgres::Error> {
    match position(client, sink).await? {
        Some((position, _)) => ranges_after(client, sink, position).await,
        None => Ok(Vec::new()),
    }
}

/// How many reports are in `sink`'s queue after its position (exactly up to [`EXACT_COUNT`] a
/// range), and when the first of them was received.
pub(super) async fn queued_after_position(
    client: &impl GenericClient,
    sink: &str,
) -> Result<(i64, Option<i64>), tokio_postgres::Error> {
    let last: i64 = client
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM reports", &[])
        .await?
        .get(0);
    let mut count = 0;
    let mut first_received = None;
    for range in queue_ranges(client, sink).await? {
        let (low, high) = (*range.start(), (*range.end()).min(last));
        if low > high {
            continue;
        }
        if first_received.is_none() {
            first_received = client
                .query_opt(
                    "SELECT received_at FROM reports WHERE seq BETWEEN $1 AND $2 \
                     ORDER BY seq LIMIT 1",
                    &[&low, &high],
                )
                .await?
                .map(|row| row.get(0));
        }
        let exact: i64 = client
            .query_one(
                "SELECT count(*) FROM (SELECT 1 FROM reports WHERE seq BETWEEN $1 AND $2 \
                 LIMIT $3) r",
                &[&low, &high, &EXACT_COUNT],
            )
            .await?
            .get(0);
        count += if exact < EXACT_COUNT {
            exact
        } else {
            high - low + 1
        };
    }
    Ok((count, first_received))
}

/// Up to `limit` pending deliveries of `sink` due at `now`, oldest report first: its rows due,
/// then the reports after its position. `client` should hold one snapshot (a repeatable-read
/// transaction), so that the position and the reports agree.
pub(in crate::store::postgres) async fn pending(
    client: &impl GenericClient,
    sink: &str,
    now: i64,
    limit: usize,
) -> Result<Pending, BoxError> {
    let (ranges, generation) = match position(client, sink).await? {
        Some((position, generation)) => (ranges_after(client, sink, position).await?, generation),
        None => (Vec::new(), 0),
    };
    let mut items = client
        .query(
            "SELECT d.report_seq, d.attempts, d.created_at, r.id, c.cluster_id, r.report_time, \
                    r.time_source, r.received_at, r.body \
             FROM deliveries d JOIN reports r ON r.seq = d.report_seq \
             JOIN clusters c ON c.cluster_no = r.cluster_no \
             WHERE d.sink = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2 \
             ORDER BY d.report_seq LIMIT $3",
            &[&sink, &now, &(limit as i64)],
        )
        .await?
        .iter()
        .map(|row| item(row, Held::Row, row.get(1), row.get(2)))
        .collect::<Result<Vec<_>, _>>()?;
    for range in ranges {
        let wanted = limit.saturating_sub(items.len());
        if wanted == 0 {
            break;
        }
        let rows = client
            .query(
                "SELECT r.seq, 0::bigint, 0::bigint, r.id, c.cluster_id, r.report_time, \
                        r.time_source, r.received_at, r.body \
                 FROM reports r JOIN clusters c ON c.cluster_no = r.cluster_no \
                 WHERE r.seq BETWEEN $1 AND $2 ORDER BY r.seq LIMIT $3",
                &[range.start(), range.end(), &(wanted as i64)],
            )
            .await?;
        for row in &rows {
            items.push(item(row, Held::AfterPosition, 0, row.get(7))?);
        }
    }
    Ok(Pending { items, generation })
}

/// One pending delivery from a row of the columns `pending` selects.
fn item(row: &Row, held: Held, attempts: i64, queued_at: i64) -> Result<OutboxItem, BoxError> {
    let seq: i64 = row.get(0);
    let report_time: i64 = row.get(5);
    let time_source: String = row.get(6);
    let body: String = row.get(8);
    Ok(OutboxItem {
        held,
        seq,
        attempts,
        queued_at,
        id: row.get::<_, Uuid>(3),
        cluster_id: row.get(4),
        report_time,
        time_source: time_source
            .parse::<TimeSource>()
            .map_err(|_| format!("report seq {seq}: time source {time_source:?}"))?,
        received_at: row.get(7),
        report: stored_body(&body, report_time)
            .map_err(|error| format!("report seq {seq}: body: {error}"))?,
    })
}

/// Pending and dead counts of `sink`, its oldest pending delivery and when the next one is due.
pub(in crate::store::postgres) async fn stats(
    client: &impl GenericClient,
    sink: &str,
) -> Result<OutboxStats, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*), min(created_at), min(next_attempt_at) FROM deliveries \
             WHERE sink = $1 AND state = 'pending'",
            &[&sink],
        )
        .await?;
    let (rows, oldest_row, next_row): (i64, Option<i64>, Option<i64>) =
        (row.get(0), row.get(1), row.get(2));
    let dead: i64 = client
        .query_one(
            "SELECT count(*) FROM deliveries WHERE sink = $1 AND state = 'dead'",
            &[&sink],
        )
        .await?
        .get(0);
    let (queued, first_received) = queued_after_position(client, sink).await?;
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
pub(in crate::store::postgres) async fn list(
    client: &impl GenericClient,
    state: Option<DeliveryState>,
    sink: Option<&str>,
    after: Option<DeliveryCursor>,
    limit: usize,
) -> Result<Vec<DeliveryRow>, BoxError> {
    let (after_sink, after_seq) = after.map_or((String::new(), 0), |c| (c.sink, c.seq));
    let rows = client
        .query(
            "SELECT d.sink, d.report_seq, r.id, c.cluster_id, d.state, d.attempts, \
                    d.created_at, d.next_attempt_at, d.last_error \
             FROM deliveries d JOIN reports r ON r.seq = d.report_seq \
             JOIN clusters c ON c.cluster_no = r.cluster_no \
             WHERE ($1::text IS NULL OR d.state = $1) AND ($2::text IS NULL OR d.sink = $2) \
               AND (d.sink, d.report_seq) > ($3, $4) \
             ORDER BY d.sink, d.report_seq LIMIT $5",
            &[
                &state.map(DeliveryState::as_str),
                &sink,
                &after_sink,
                &after_seq,
                &(limit as i64),
            ],
        )
        .await?;
    let mut listed = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row.get(1);
        let state: String = row.get(4);
        listed.push(DeliveryRow {
            sink: row.get(0),
            report_seq: seq,
            report_id: row.get::<_, Uuid>(2).to_string(),
            cluster_id: row.get(3),
            state: state
                .parse()
                .map_err(|_| format!("report seq {seq}: delivery state {state:?}"))?,
            attempts: row.get(5),
            queued_at: row.get(6),
            next_attempt_at: row.get(7),
            last_error: row.get(8),
        });
    }
    if state != Some(DeliveryState::Dead) {
        listed.extend(list_queued(client, sink, &after_sink, after_seq, limit).await?);
        listed.sort_by(|a, b| {
            (a.sink.as_bytes(), a.report_seq).cmp(&(b.sink.as_bytes(), b.report_seq))
        });
        listed.truncate(limit);
    }
    Ok(listed)
}

/// Up to `limit` reports after their sinks' positions, in (sink, report) order after
/// (`after_sink`, `after_seq`), as the read API lists pending deliveries.
async fn list_queued(
    client: &impl GenericClient,
    sink: Option<&str>,
    after_sink: &str,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<DeliveryRow>, tokio_postgres::Error> {
    let sinks: Vec<String> = client
        .query(
            "SELECT sink FROM sink_positions \
             WHERE sink >= $1 AND ($2::text IS NULL OR sink = $2) ORDER BY sink",
            &[&after_sink, &sink],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut listed = Vec::new();
    for name in sinks {
        let from = if name == after_sink { after_seq + 1 } else { 0 };
        for range in queue_ranges(client, &name).await? {
            let wanted = limit.saturating_sub(listed.len());
            if wanted == 0 {
                return Ok(listed);
            }
            let low = (*range.start()).max(from);
            let rows = client
                .query(
                    "SELECT r.seq, r.id, c.cluster_id, r.received_at \
                     FROM reports r JOIN clusters c ON c.cluster_no = r.cluster_no \
                     WHERE r.seq BETWEEN $1 AND $2 ORDER BY r.seq LIMIT $3",
                    &[&low, range.end(), &(wanted as i64)],
                )
                .await?;
            listed.extend(rows.iter().map(|row| DeliveryRow {
                sink: name.clone(),
                report_seq: row.get(0),
                report_id: row.get::<_, Uuid>(1).to_string(),
                cluster_id: row.get(2),
                state: DeliveryState::Pending,
                attempts: 0,
                queued_at: row.get(3),
                next_attempt_at: 0,
                last_error: None,
            }));
        }
    }
    Ok(listed)
}
