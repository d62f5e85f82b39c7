//! The rollup's writes, all on the writer's transaction: applying a prepared step, erasing a
//! cluster from every week, dropping weeks past retention, and starting over for a new registry.

use std::collections::BTreeSet;

use common::Report;
use rusqlite::{OptionalExtension, Transaction, params};

use super::body::readable_body;
use crate::stats::{Week, dimensions};
use crate::store::rollup::{Changes, GENERATION, Prepared, RollupProgress, WATERMARK, erasure};
use crate::store::sqlite::meta;

/// `meta` key: the fingerprint of the registry the stored statistics were made with.
const REGISTRY: &str = "stats_registry";
/// `meta` key: the last revision given to a week.
const REVISION: &str = "stats_revision";
/// Every table of the weekly statistics.
const TABLES: [&str; 4] = [
    "stats_cells",
    "stats_cluster_weeks",
    "stats_weeks",
    "stats_clusters",
];

/// Writes a prepared step, unless an erasure, pruning or another step changed the statistics
/// since it was prepared (then nothing is written and the progress says `stale`).
pub fn apply(tx: &Transaction<'_>, prepared: Prepared) -> rusqlite::Result<RollupProgress> {
    let current = (
        meta::get_i64(tx, WATERMARK)?,
        meta::get_i64(tx, GENERATION)?,
    );
    if current != (prepared.watermark.0, prepared.generation) {
        return Ok(RollupProgress {
            stale: true,
            ..RollupProgress::default()
        });
    }
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO stats_cluster_weeks (week, cluster_no, report_seq, received_at, nodes) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (week, cluster_no) DO UPDATE SET \
             report_seq = excluded.report_seq, received_at = excluded.received_at, \
             nodes = excluded.nodes",
        )?;
        for (week, cluster_no, seq, received_at, nodes) in &prepared.rows {
            upsert.execute(params![week.start(), cluster_no, seq, received_at, nodes])?;
        }
        let mut first = tx.prepare_cached(
            "INSERT INTO stats_clusters (cluster_no, first_week) VALUES (?1, ?2) \
             ON CONFLICT (cluster_no) DO UPDATE SET first_week = excluded.first_week",
        )?;
        for (cluster_no, week) in &prepared.firsts {
            first.execute(params![cluster_no, week.start()])?;
        }
    }
    write_changes(tx, prepared.changes)?;
    meta::set(tx, WATERMARK, &prepared.watermark.1.to_string())?;
    Ok(RollupProgress {
        reports: prepared.reports,
        caught_up: !prepared.full,
        stale: false,
    })
}

/// Takes the cluster numbered `cluster_no` out of every week it is counted in (before its
/// reports are deleted).
pub fn erase(tx: &Transaction<'_>, cluster_no: i64) -> rusqlite::Result<()> {
    bump_generation(tx)?;
    let counted: Vec<(Week, i64, Option<Report>)> = {
        let mut select = tx.prepare_cached(
            "SELECT w.week, w.report_seq, w.nodes, r.body FROM stats_weeks s \
             CROSS JOIN stats_cluster_weeks w ON w.week = s.week AND w.cluster_no = ?1 \
             JOIN reports r ON r.seq = w.report_seq",
        )?;
        select
            .query_map([cluster_no], |row| {
                let seq = row.get(1)?;
                Ok((
                    Week::of(row.get(0)?),
                    row.get(2)?,
                    readable_body(row, 3, seq)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    let first: Option<Week> = tx
        .query_row(
            "SELECT first_week FROM stats_clusters WHERE cluster_no = ?1",
            [cluster_no],
            |row| row.get(0),
        )
        .optional()?
        .map(Week::of);
    let changes = erasure(&counted, first);
    // Week by week through the primary key (a cluster's weeks are few; a scan is not).
    tx.execute(
        "DELETE FROM stats_cluster_weeks WHERE week IN (SELECT week FROM stats_weeks) \
         AND cluster_no = ?1",
        [cluster_no],
    )?;
    tx.execute(
        "DELETE FROM stats_clusters WHERE cluster_no = ?1",
        [cluster_no],
    )?;
    write_changes(tx, changes)
}

/// Drops every week that starts before `cutoff`: retention prunes its reports from then on, so
/// it is no longer a whole week. A cluster keeps its first week (it is not new again in a later
/// one) while any of its weeks is kept.
pub fn drop_weeks_before(tx: &Transaction<'_>, cutoff: i64) -> rusqlite::Result<()> {
    bump_generation(tx)?;
    let dropped = tx.execute("DELETE FROM stats_cluster_weeks WHERE week < ?1", [cutoff])?;
    for table in ["stats_cells", "stats_weeks"] {
        tx.execute(&format!("DELETE FROM {table} WHERE week < ?1"), [cutoff])?;
    }
    if dropped > 0 {
        tx.execute(
            "DELETE FROM stats_clusters WHERE first_week < ?1 AND cluster_no NOT IN \
             (SELECT cluster_no FROM stats_cluster_weeks)",
            [cutoff],
        )?;
    }
    Ok(())
}

/// Starts the statistics over (they are rebuilt from the stored reports) when they were made
/// with another registry of dimensions; returns whether it did.
pub fn reset_if_registry_changed(tx: &Transaction<'_>) -> rusqlite::Result<bool> {
    let fingerprint = dimensions::fingerprint();
    if meta::get(tx, REGISTRY)?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(false);
    }
    for table in TABLES {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    meta::set(tx, WATERMARK, "0")?;
    bump_generation(tx)?;
    meta::set(tx, REGISTRY, &fingerprint)?;
    Ok(true)
}

/// Writes summed changes and gives every changed week a new revision (from one counter for all
/// weeks, so that a week dropped and made again never repeats a revision a reader holds).
fn write_changes(tx: &Transaction<'_>, changes: Changes) -> rusqlite::Result<()> {
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
    if weeks.is_empty() {
        return Ok(());
    }
    let revision = meta::get_i64(tx, REVISION)? + 1;
    meta::set(tx, REVISION, &revision.to_string())?;
    let mut bump = tx.prepare_cached(
        "INSERT INTO stats_weeks (week, revision, active, new, churned, nodes) \
         VALUES (?1, ?6, ?2, ?3, ?4, ?5) ON CONFLICT (week) DO UPDATE SET \
         revision = excluded.revision, active = stats_weeks.active + excluded.active, \
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
            totals.nodes,
            revision
        ])?;
    }
    Ok(())
}

fn bump_generation(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let next = meta::get_i64(tx, GENERATION)? + 1;
    meta::set(tx, GENERATION, &next.to_string())
}
