//! A rollup step computed on a read snapshot: the next reports after the watermark, the latest of
//! each cluster-week, and the deltas they make to cells and week totals.

use std::collections::{BTreeMap, BTreeSet};

use common::Report;
use rusqlite::{Connection, OptionalExtension, params};

use super::changes::{GENERATION, Prepared, WATERMARK, churn_candidates, readable_body};
use crate::stats::Week;
use crate::store::rollup::CHURN_WEEKS;
use crate::store::sqlite::meta;

/// The latest report of one cluster-week in a chunk.
struct Latest {
    seq: i64,
    received_at: i64,
    report: Report,
}

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
    // The latest report of each cluster-week in the chunk, by cluster number.
    let mut chunk: BTreeMap<i64, BTreeMap<Week, Latest>> = BTreeMap::new();
    {
        let mut select = tx.prepare_cached(
            "SELECT r.seq, c.cluster_no, r.received_at, r.body FROM reports r \
             LEFT JOIN clusters c ON c.cluster_id = r.cluster_id WHERE r.seq > ?1 \
             ORDER BY r.seq LIMIT ?2",
        )?;
        let mut rows = select.query(params![watermark, limit as i64])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let received_at: i64 = row.get(2)?;
            prepared.reports += 1;
            prepared.watermark.1 = seq;
            let week = Week::of(received_at);
            if week.start() < keep_from {
                continue;
            }
            let Some(cluster_no) = row.get::<_, Option<i64>>(1)? else {
                tracing::warn!(
                    seq,
                    "a stored report has no cluster; the weekly statistics leave it out"
                );
                continue;
            };
            let weeks = chunk.entry(cluster_no).or_default();
            if weeks
                .get(&week)
                .is_some_and(|known| (known.received_at, known.seq) > (received_at, seq))
            {
                continue;
            }
            let Some(report) = readable_body(row, 3, seq)? else {
                continue;
            };
            weeks.insert(
                week,
                Latest {
                    seq,
                    received_at,
                    report,
                },
            );
        }
    }
    prepared.full = prepared.reports >= limit;
    let last_week: Option<Week> = tx
        .query_row("SELECT max(week) FROM stats_weeks", [], |row| {
            row.get::<_, Option<i64>>(0)
        })?
        .map(Week::of);
    for (cluster_no, weeks) in chunk {
        fold_cluster(&tx, &mut prepared, cluster_no, weeks, last_week)?;
    }
    drop(tx);
    Ok(prepared)
}

/// Folds one cluster's latest reports of the chunk, week by week, against what is stored (a
/// cluster never counted before has nothing stored to look up: the common case of a new one).
fn fold_cluster(
    tx: &rusqlite::Transaction<'_>,
    prepared: &mut Prepared,
    cluster_no: i64,
    weeks: BTreeMap<Week, Latest>,
    last_week: Option<Week>,
) -> rusqlite::Result<()> {
    let first: Option<Week> = tx
        .prepare_cached("SELECT first_week FROM stats_clusters WHERE cluster_no = ?1")?
        .query_row([cluster_no], |row| row.get(0))
        .optional()?
        .map(Week::of);
    let mut counted = tx.prepare_cached(
        "SELECT w.report_seq, w.received_at, w.nodes, r.body FROM stats_cluster_weeks w \
         JOIN reports r ON r.seq = w.report_seq WHERE w.week = ?1 AND w.cluster_no = ?2",
    )?;
    let changes = &mut prepared.changes;
    let mut arrived = BTreeSet::new();
    for (week, latest) in weeks {
        let nodes = latest.report.nodes.len() as i64;
        let counted_before = first.is_some_and(|first| first <= week);
        let before = if counted_before {
            counted
                .query_row(params![week.start(), cluster_no], |row| {
                    let seq: i64 = row.get(0)?;
                    Ok((
                        seq,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        readable_body(row, 3, seq)?,
                    ))
                })
                .optional()?
        } else {
            None
        };
        match before {
            Some((seq, at, ..)) if (at, seq) > (latest.received_at, latest.seq) => continue,
            Some((_, _, counted_nodes, counted_report)) => {
                if let Some(counted_report) = counted_report {
                    changes.cells.add(week, &counted_report, -1);
                }
                changes.totals(week).nodes += nodes - counted_nodes;
            }
            None => {
                let totals = changes.totals(week);
                totals.active += 1;
                totals.nodes += nodes;
                arrived.insert(week);
            }
        }
        changes.cells.add(week, &latest.report, 1);
        prepared
            .rows
            .push((week, cluster_no, latest.seq, latest.received_at, nodes));
    }
    let (Some(earliest), Some(latest)) = (arrived.first().copied(), arrived.last().copied()) else {
        return Ok(());
    };
    // New: the cluster's first week, if one arrived before it.
    if first.is_none_or(|first| earliest < first) {
        if let Some(first) = first {
            changes.totals(first).new -= 1;
        }
        changes.totals(earliest).new += 1;
        prepared.firsts.push((cluster_no, earliest));
    }
    // Churn: from the cluster's stored weeks around the arrivals (none before its first week,
    // none after the last week with statistics), before and after.
    let mut present: BTreeSet<Week> = BTreeSet::new();
    let mut stored =
        tx.prepare_cached("SELECT 1 FROM stats_cluster_weeks WHERE week = ?1 AND cluster_no = ?2")?;
    let from = match first {
        Some(first) => earliest.plus(-CHURN_WEEKS).max(first),
        None => latest.plus(1),
    };
    let through = match last_week {
        Some(last) => latest.plus(CHURN_WEEKS).min(last),
        None => earliest.plus(-1),
    };
    let mut week = from;
    while week <= through {
        if !arrived.contains(&week) && stored.exists(params![week.start(), cluster_no])? {
            present.insert(week);
        }
        week = week.plus(1);
    }
    let candidates = churn_candidates(arrived.iter());
    changes.churn(&present, &candidates, -1);
    present.extend(arrived);
    changes.churn(&present, &candidates, 1);
    Ok(())
}
