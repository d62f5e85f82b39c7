//! The weekly rollup's writes: folds the reports stored since its last step into their
//! cluster-weeks and cells, takes an erased cluster out of every week it was counted in, and
//! drops the weeks that retention has started to prune.
//!
//! A cluster-week (`stats_cluster_weeks`) names the latest report received from a cluster in a
//! week; the cells (`stats_cells`) count those reports by each dimension's values; every change
//! to a week bumps its revision (`stats_weeks`), which is how readers learn what to reload.
//! Ingest never touches these tables: a step reads the reports after its watermark (their seq)
//! and changes only the cells they move, so nothing is a row every ingest transaction updates.

use std::collections::BTreeSet;

use common::Report;
use rusqlite::{OptionalExtension, Transaction, params};

use super::sql::report_body;
use crate::stats::{CellDeltas, Week, dimensions};

/// `meta` key: the seq of the last report a rollup step has folded.
const WATERMARK: &str = "stats_rolled_up_to";
/// `meta` key: the fingerprint of the registry the stored statistics were made with.
const REGISTRY: &str = "stats_registry";

/// What one rollup step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupProgress {
    /// Reports read.
    pub reports: usize,
    /// Weeks whose numbers changed.
    pub weeks: BTreeSet<Week>,
    /// True when no report is left to fold.
    pub caught_up: bool,
}

/// Folds up to `limit` reports stored after the watermark; reports received in a week that
/// starts before `keep_from` (unix seconds) are past retention and not counted.
pub(super) fn step(
    tx: &Transaction<'_>,
    keep_from: i64,
    limit: usize,
) -> rusqlite::Result<RollupProgress> {
    let watermark: i64 = meta(tx, WATERMARK)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let reports: Vec<(i64, String, i64, Report)> = {
        let mut select = tx.prepare_cached(
            "SELECT seq, cluster_id, received_at, body FROM reports WHERE seq > ?1 \
             ORDER BY seq LIMIT ?2",
        )?;
        select
            .query_map(params![watermark, limit as i64], |row| {
                let seq = row.get(0)?;
                Ok((seq, row.get(1)?, row.get(2)?, report_body(row, 3, seq, 0)?))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut deltas = CellDeltas::default();
    let mut weeks = BTreeSet::new();
    {
        let mut current = tx.prepare_cached(
            "SELECT w.report_seq, w.received_at, r.body FROM stats_cluster_weeks w \
             JOIN reports r ON r.seq = w.report_seq WHERE w.week = ?1 AND w.cluster_id = ?2",
        )?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO stats_cluster_weeks (week, cluster_id, report_seq, received_at, nodes) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (week, cluster_id) DO UPDATE SET \
             report_seq = excluded.report_seq, received_at = excluded.received_at, \
             nodes = excluded.nodes",
        )?;
        for (seq, cluster_id, received_at, report) in &reports {
            let week = Week::of(*received_at);
            if week.start() < keep_from {
                continue;
            }
            let counted = current
                .query_row(params![week.start(), cluster_id], |row| {
                    let counted_seq: i64 = row.get(0)?;
                    Ok((
                        counted_seq,
                        row.get::<_, i64>(1)?,
                        report_body(row, 2, counted_seq, 0)?,
                    ))
                })
                .optional()?;
            if let Some((counted_seq, counted_at, counted)) = counted {
                if (counted_at, counted_seq) > (*received_at, *seq) {
                    continue;
                }
                deltas.add(week, &counted, -1);
            }
            deltas.add(week, report, 1);
            upsert.execute(params![
                week.start(),
                cluster_id,
                seq,
                received_at,
                report.nodes.len() as i64
            ])?;
            weeks.insert(week);
        }
    }
    apply(tx, deltas, &weeks)?;
    if let Some((last, ..)) = reports.last() {
        set_meta(tx, WATERMARK, &last.to_string())?;
    }
    Ok(RollupProgress {
        reports: reports.len(),
        weeks,
        caught_up: reports.len() < limit,
    })
}

/// Takes `cluster_id` out of every week it is counted in (before its reports are deleted).
pub(super) fn erase(tx: &Transaction<'_>, cluster_id: &str) -> rusqlite::Result<()> {
    let counted: Vec<(Week, Report)> = {
        let mut select = tx.prepare_cached(
            "SELECT w.week, w.report_seq, r.body FROM stats_cluster_weeks w \
             JOIN reports r ON r.seq = w.report_seq WHERE w.cluster_id = ?1",
        )?;
        select
            .query_map([cluster_id], |row| {
                let seq = row.get(1)?;
                Ok((Week::of(row.get(0)?), report_body(row, 2, seq, 0)?))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut deltas = CellDeltas::default();
    let mut weeks = BTreeSet::new();
    for (week, report) in &counted {
        deltas.add(*week, report, -1);
        weeks.insert(*week);
    }
    tx.execute(
        "DELETE FROM stats_cluster_weeks WHERE cluster_id = ?1",
        [cluster_id],
    )?;
    apply(tx, deltas, &weeks)
}

/// Drops every week that starts before `cutoff`: retention prunes its reports from then on, so
/// it is no longer a whole week.
pub(super) fn drop_weeks_before(tx: &Transaction<'_>, cutoff: i64) -> rusqlite::Result<()> {
    for table in ["stats_cells", "stats_cluster_weeks", "stats_weeks"] {
        tx.execute(&format!("DELETE FROM {table} WHERE week < ?1"), [cutoff])?;
    }
    Ok(())
}

/// Starts the statistics over (they are rebuilt from the stored reports) when they were made
/// with another registry of dimensions; returns whether it did.
pub(super) fn reset_if_registry_changed(tx: &Transaction<'_>) -> rusqlite::Result<bool> {
    let fingerprint = dimensions::fingerprint();
    if meta(tx, REGISTRY)?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(false);
    }
    for table in ["stats_cells", "stats_cluster_weeks", "stats_weeks"] {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    tx.execute("DELETE FROM meta WHERE key = ?1", [WATERMARK])?;
    set_meta(tx, REGISTRY, &fingerprint)?;
    Ok(true)
}

/// Writes summed cell changes and bumps the revision of every changed week.
fn apply(tx: &Transaction<'_>, deltas: CellDeltas, weeks: &BTreeSet<Week>) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO stats_cells (week, dimension, value, clusters, nodes) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (week, dimension, value) DO UPDATE SET \
         clusters = stats_cells.clusters + excluded.clusters, \
         nodes = stats_cells.nodes + excluded.nodes",
    )?;
    let mut empty = tx.prepare_cached(
        "DELETE FROM stats_cells WHERE week = ?1 AND dimension = ?2 AND value = ?3 \
         AND clusters <= 0",
    )?;
    for change in deltas.into_changes() {
        let key = params![change.week.start(), change.dimension, change.value];
        upsert.execute(params![
            change.week.start(),
            change.dimension,
            change.value,
            change.clusters,
            change.nodes
        ])?;
        if change.clusters < 0 {
            empty.execute(key)?;
        }
    }
    let mut bump = tx.prepare_cached(
        "INSERT INTO stats_weeks (week, revision) VALUES (?1, 1) \
         ON CONFLICT (week) DO UPDATE SET revision = stats_weeks.revision + 1",
    )?;
    for week in weeks {
        bump.execute([week.start()])?;
    }
    Ok(())
}

fn meta(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
