//! The weekly rollup's writes: folds the reports stored since its last step into their
//! cluster-weeks, cells and week totals, takes an erased cluster out of every week it was
//! counted in, and drops the weeks that retention has started to prune.
//!
//! A cluster-week (`stats_cluster_weeks`) names the latest report received from a cluster in a
//! week; the cells (`stats_cells`) count those reports by each dimension's values; a week's row
//! (`stats_weeks`) holds its active, new and churned clusters and nodes, and a revision that
//! grows with every change, which is how readers learn what to reload. Every change is a delta
//! computed from the one cluster it concerns (its weeks around the changed one, its first week in
//! `stats_clusters`), so no step rescans a week. Ingest never touches these tables: a step reads
//! the reports after its watermark (their seq), so no row is updated by every ingest transaction.

use std::collections::{BTreeMap, BTreeSet};

use common::Report;
use rusqlite::{OptionalExtension, Transaction, params};

use super::sql::report_body;
use super::weekly::CHURN_WEEKS;
use crate::stats::{CellDeltas, Week, dimensions};

/// `meta` key: the seq of the last report a rollup step has folded.
const WATERMARK: &str = "stats_rolled_up_to";
/// `meta` key: the fingerprint of the registry the stored statistics were made with.
const REGISTRY: &str = "stats_registry";
/// Every table of the weekly statistics.
const TABLES: [&str; 4] = [
    "stats_cells",
    "stats_cluster_weeks",
    "stats_weeks",
    "stats_clusters",
];

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

/// Changes to one week's totals.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    active: i64,
    new: i64,
    churned: i64,
    nodes: i64,
}

/// Everything one step or erasure changes, summed before it is written.
#[derive(Default)]
struct Changes {
    cells: CellDeltas,
    totals: BTreeMap<Week, Totals>,
}

impl Changes {
    fn totals(&mut self, week: Week) -> &mut Totals {
        self.totals.entry(week).or_default()
    }

    /// Counts the churn of a cluster present in `weeks` (`sign` 1) or takes it out (-1), for the
    /// weeks `candidates`.
    fn churn(&mut self, weeks: &BTreeSet<Week>, candidates: impl Iterator<Item = Week>, sign: i64) {
        for week in candidates {
            if churned(weeks, week) {
                self.totals(week).churned += sign;
            }
        }
    }
}

/// True when a cluster present in `weeks` churned in `week`: present four weeks before, and in
/// none of the weeks since, `week` included.
fn churned(weeks: &BTreeSet<Week>, week: Week) -> bool {
    weeks.contains(&week.plus(-CHURN_WEEKS))
        && weeks
            .range(week.plus(1 - CHURN_WEEKS)..=week)
            .next()
            .is_none()
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
    let mut select = tx.prepare_cached(
        "SELECT seq, cluster_id, received_at, body FROM reports WHERE seq > ?1 \
         ORDER BY seq LIMIT ?2",
    )?;
    let mut counted = tx.prepare_cached(
        "SELECT w.report_seq, w.received_at, w.nodes, r.body FROM stats_cluster_weeks w \
         JOIN reports r ON r.seq = w.report_seq WHERE w.week = ?1 AND w.cluster_id = ?2",
    )?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO stats_cluster_weeks (week, cluster_id, report_seq, received_at, nodes) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (week, cluster_id) DO UPDATE SET \
         report_seq = excluded.report_seq, received_at = excluded.received_at, \
         nodes = excluded.nodes",
    )?;
    let mut changes = Changes::default();
    let mut reports = 0;
    let mut last_seq = None;
    let mut rows = select.query(params![watermark, limit as i64])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let cluster_id: String = row.get(1)?;
        let received_at: i64 = row.get(2)?;
        reports += 1;
        last_seq = Some(seq);
        let week = Week::of(received_at);
        if week.start() < keep_from {
            continue;
        }
        let report = report_body(row, 3, seq, 0)?;
        let nodes = report.nodes.len() as i64;
        let before = counted
            .query_row(params![week.start(), cluster_id], |row| {
                let counted_seq: i64 = row.get(0)?;
                Ok((
                    counted_seq,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    report_body(row, 3, counted_seq, 0)?,
                ))
            })
            .optional()?;
        match before {
            Some((counted_seq, counted_at, _, _))
                if (counted_at, counted_seq) > (received_at, seq) =>
            {
                continue;
            }
            Some((_, _, counted_nodes, counted_report)) => {
                changes.cells.add(week, &counted_report, -1);
                changes.totals(week).nodes += nodes - counted_nodes;
            }
            None => arrive(tx, &mut changes, &cluster_id, week, nodes)?,
        }
        changes.cells.add(week, &report, 1);
        upsert.execute(params![week.start(), cluster_id, seq, received_at, nodes])?;
    }
    let weeks = apply(tx, changes)?;
    if let Some(last) = last_seq {
        set_meta(tx, WATERMARK, &last.to_string())?;
    }
    Ok(RollupProgress {
        reports,
        weeks,
        caught_up: reports < limit,
    })
}

/// A cluster's first report of `week`: it is active there, perhaps new, and its churn around
/// the week changes.
fn arrive(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    cluster_id: &str,
    week: Week,
    nodes: i64,
) -> rusqlite::Result<()> {
    let totals = changes.totals(week);
    totals.active += 1;
    totals.nodes += nodes;
    let first: Option<i64> = tx
        .prepare_cached("SELECT first_week FROM stats_clusters WHERE cluster_id = ?1")?
        .query_row([cluster_id], |row| row.get(0))
        .optional()?;
    match first.map(Week::of) {
        Some(first) if first <= week => {}
        first => {
            if let Some(first) = first {
                changes.totals(first).new -= 1;
            }
            changes.totals(week).new += 1;
            tx.prepare_cached(
                "INSERT INTO stats_clusters (cluster_id, first_week) VALUES (?1, ?2) \
                 ON CONFLICT (cluster_id) DO UPDATE SET first_week = excluded.first_week",
            )?
            .execute(params![cluster_id, week.start()])?;
        }
    }
    let mut around: BTreeSet<Week> = BTreeSet::new();
    let mut nearby = tx.prepare_cached(
        "SELECT week FROM stats_cluster_weeks WHERE cluster_id = ?1 AND week >= ?2 AND week <= ?3",
    )?;
    let range = params![
        cluster_id,
        week.plus(-CHURN_WEEKS).start(),
        week.plus(CHURN_WEEKS).start()
    ];
    for start in nearby.query_map(range, |row| row.get::<_, i64>(0))? {
        around.insert(Week::of(start?));
    }
    let affected = || (0..=CHURN_WEEKS).map(|k| week.plus(k));
    changes.churn(&around, affected(), -1);
    around.insert(week);
    changes.churn(&around, affected(), 1);
    Ok(())
}

/// Takes `cluster_id` out of every week it is counted in (before its reports are deleted).
pub(super) fn erase(tx: &Transaction<'_>, cluster_id: &str) -> rusqlite::Result<()> {
    let counted: Vec<(Week, i64, Report)> = {
        let mut select = tx.prepare_cached(
            "SELECT w.week, w.report_seq, w.nodes, r.body FROM stats_cluster_weeks w \
             JOIN reports r ON r.seq = w.report_seq WHERE w.cluster_id = ?1",
        )?;
        select
            .query_map([cluster_id], |row| {
                let seq = row.get(1)?;
                Ok((
                    Week::of(row.get(0)?),
                    row.get(2)?,
                    report_body(row, 3, seq, 0)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    let first: Option<i64> = tx
        .query_row(
            "SELECT first_week FROM stats_clusters WHERE cluster_id = ?1",
            [cluster_id],
            |row| row.get(0),
        )
        .optional()?;
    let mut changes = Changes::default();
    let weeks: BTreeSet<Week> = counted.iter().map(|(week, ..)| *week).collect();
    for (week, nodes, report) in &counted {
        changes.cells.add(*week, report, -1);
        let totals = changes.totals(*week);
        totals.active -= 1;
        totals.nodes -= nodes;
    }
    if let Some(first) = first.map(Week::of).filter(|first| weeks.contains(first)) {
        changes.totals(first).new -= 1;
    }
    let candidates: BTreeSet<Week> = weeks
        .iter()
        .flat_map(|week| (0..=CHURN_WEEKS).map(|k| week.plus(k)))
        .collect();
    changes.churn(&weeks, candidates.into_iter(), -1);
    for table in ["stats_cluster_weeks", "stats_clusters"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE cluster_id = ?1"),
            [cluster_id],
        )?;
    }
    apply(tx, changes).map(|_| ())
}

/// Drops every week that starts before `cutoff`: retention prunes its reports from then on, so
/// it is no longer a whole week. A cluster keeps its first week (it is not new again in a later
/// one) while any of its weeks is kept.
pub(super) fn drop_weeks_before(tx: &Transaction<'_>, cutoff: i64) -> rusqlite::Result<()> {
    let dropped = tx.execute("DELETE FROM stats_cluster_weeks WHERE week < ?1", [cutoff])?;
    for table in ["stats_cells", "stats_weeks"] {
        tx.execute(&format!("DELETE FROM {table} WHERE week < ?1"), [cutoff])?;
    }
    if dropped > 0 {
        tx.execute(
            "DELETE FROM stats_clusters WHERE first_week < ?1 AND NOT EXISTS \
             (SELECT 1 FROM stats_cluster_weeks w WHERE w.cluster_id = stats_clusters.cluster_id)",
            [cutoff],
        )?;
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
    for table in TABLES {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    tx.execute("DELETE FROM meta WHERE key = ?1", [WATERMARK])?;
    set_meta(tx, REGISTRY, &fingerprint)?;
    Ok(true)
}

/// Writes summed changes and bumps the revision of every changed week; returns those weeks.
fn apply(tx: &Transaction<'_>, changes: Changes) -> rusqlite::Result<BTreeSet<Week>> {
    let mut weeks: BTreeSet<Week> = changes.totals.keys().copied().collect();
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
    for change in changes.cells.into_changes() {
        weeks.insert(change.week);
        upsert.execute(params![
            change.week.start(),
            change.dimension,
            change.value,
            change.clusters,
            change.nodes
        ])?;
        if change.clusters < 0 {
            empty.execute(params![change.week.start(), change.dimension, change.value])?;
        }
    }
    let mut bump = tx.prepare_cached(
        "INSERT INTO stats_weeks (week, revision, active, new, churned, nodes) \
         VALUES (?1, 1, ?2, ?3, ?4, ?5) ON CONFLICT (week) DO UPDATE SET \
         revision = stats_weeks.revision + 1, active = stats_weeks.active + excluded.active, \
         new = stats_weeks.new + excluded.new, churned = stats_weeks.churned + excluded.churned, \
         nodes = stats_weeks.nodes + excluded.nodes",
    )?;
    for week in &weeks {
        let totals = changes.totals.get(week).copied().unwrap_or_default();
        bump.execute(params![
            week.start(),
            totals.active,
            totals.new,
            totals.churned,
            totals.nodes
        ])?;
    }
    Ok(weeks)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_is_four_weeks_of_absence_after_a_present_week() {
        let w = |n: i64| Week::of(0).plus(n);
        let weeks: BTreeSet<Week> = [w(0), w(1)].into();
        let churned_in: Vec<i64> = (0..10).filter(|n| churned(&weeks, w(*n))).collect();
        assert_eq!(churned_in, [5], "last seen in week 1, gone in 2 … 5");
        let back: BTreeSet<Week> = [w(0), w(1), w(5)].into();
        assert!((0..12).all(|n| !churned(&back, w(n)) || n == 9));
    }
}
