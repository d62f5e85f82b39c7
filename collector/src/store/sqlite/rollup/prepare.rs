//! A rollup step computed on a read snapshot: the next reports after the watermark, the latest of
//! each cluster-week, and the deltas they make to cells and week totals.

use rusqlite::{Connection, OptionalExtension, params};

use super::body::readable_body;
use crate::stats::Week;
use crate::store::rollup::{Chunk, Counted, GENERATION, Prepared, WATERMARK, fold_cluster};
use crate::store::sqlite::meta;

/// Prepares a step over up to `limit` reports after the watermark; reports received in a week
/// that starts before `keep_from` (unix seconds) are past retention and not counted.
pub fn prepare(conn: &Connection, keep_from: i64, limit: usize) -> rusqlite::Result<Prepared> {
    let tx = conn.unchecked_transaction()?;
    let watermark = meta::get_i64(&tx, WATERMARK)?;
    let mut prepared = Prepared {
        watermark: (watermark, watermark),
        generation: meta::get_i64(&tx, GENERATION)?,
        ..Prepared::default()
    };
    let mut chunk = Chunk::default();
    {
        let mut select = tx.prepare_cached(
            "SELECT r.seq, c.cluster_no, r.received_at, r.body FROM reports r \
             LEFT JOIN clusters c ON c.cluster_id = r.cluster_id WHERE r.seq > ?1 \
             ORDER BY r.seq LIMIT ?2",
        )?;
        let mut rows = select.query(params![watermark, limit as i64])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            chunk.add(
                &mut prepared,
                seq,
                row.get(1)?,
                row.get(2)?,
                keep_from,
                || readable_body(row, 3, seq),
            )?;
        }
    }
    prepared.full = prepared.reports >= limit;
    let last_week: Option<Week> = tx
        .query_row("SELECT max(week) FROM stats_weeks", [], |row| {
            row.get::<_, Option<i64>>(0)
        })?
        .map(Week::of);
    let mut first_week =
        tx.prepare_cached("SELECT first_week FROM stats_clusters WHERE cluster_no = ?1")?;
    let mut counted = tx.prepare_cached(
        "SELECT w.report_seq, w.received_at, w.nodes, r.body FROM stats_cluster_weeks w \
         JOIN reports r ON r.seq = w.report_seq WHERE w.week = ?1 AND w.cluster_no = ?2",
    )?;
    let mut stored =
        tx.prepare_cached("SELECT 1 FROM stats_cluster_weeks WHERE week = ?1 AND cluster_no = ?2")?;
    // A cluster never counted before has nothing stored to look up: the common case of a new one.
    for (cluster_no, weeks) in chunk.into_clusters() {
        let first: Option<Week> = first_week
            .query_row([cluster_no], |row| row.get(0))
            .optional()?
            .map(Week::of);
        fold_cluster(
            &mut prepared,
            cluster_no,
            weeks,
            last_week,
            first,
            |week| {
                counted
                    .query_row(params![week.start(), cluster_no], |row| {
                        let seq: i64 = row.get(0)?;
                        Ok(Counted {
                            seq,
                            received_at: row.get(1)?,
                            nodes: row.get(2)?,
                            report: readable_body(row, 3, seq)?,
                        })
                    })
                    .optional()
            },
            |week| stored.exists(params![week.start(), cluster_no]),
        )?;
    }
    drop((first_week, counted, stored));
    drop(tx);
    Ok(prepared)
}
