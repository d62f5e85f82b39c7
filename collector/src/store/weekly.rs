//! The weekly rollup's reads: which weeks changed since a reader last looked, their cells, and
//! each week's active, new and churned clusters, all from one snapshot of the store.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::stats::{Cell, Week};

/// Active, new and churned clusters of one week, and their nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeekSummary {
    /// Clusters with a report received in the week.
    pub active: i64,
    /// Active clusters seen in no earlier week.
    pub new: i64,
    /// Clusters active four weeks before and in none of the weeks since, this one included.
    pub churned: i64,
    /// Nodes of the active clusters (their latest report of the week).
    pub nodes: i64,
}

impl WeekSummary {
    /// Active clusters seen in an earlier week too.
    pub fn returning(&self) -> i64 {
        self.active - self.new
    }
}

/// What changed since a reader's last look.
#[derive(Debug, Clone, Default)]
pub struct WeeklyChanges {
    /// Every week with statistics and its revision.
    pub revisions: BTreeMap<Week, i64>,
    /// The raw (unpublished) cells of each week whose revision changed.
    pub cells: BTreeMap<Week, Vec<(String, Cell)>>,
    /// The summary of every week from the first changed one on (a change to one week can change
    /// later weeks' new and churned clusters), through the current week.
    pub summaries: BTreeMap<Week, WeekSummary>,
}

/// Weeks after which a cluster last seen counts as churned.
pub const CHURN_WEEKS: i64 = 4;

/// Reads what changed relative to `known` (week to revision) in one read transaction, with the
/// summaries of every week from the first change (or the week after `known_through`) to
/// `through`, empty weeks included: a week without reports can still have churned clusters.
pub fn changes(
    conn: &Connection,
    known: &BTreeMap<Week, i64>,
    known_through: Option<Week>,
    through: Week,
) -> rusqlite::Result<WeeklyChanges> {
    let tx = conn.unchecked_transaction()?;
    let mut revisions = BTreeMap::new();
    {
        let mut select =
            tx.prepare_cached("SELECT week, revision FROM stats_weeks ORDER BY week")?;
        for row in select.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)))? {
            let (start, revision) = row?;
            revisions.insert(Week::of(start), revision);
        }
    }
    let changed: Vec<Week> = revisions
        .iter()
        .filter(|(week, revision)| known.get(week) != Some(revision))
        .map(|(week, _)| *week)
        .collect();
    let removed = known.keys().filter(|week| !revisions.contains_key(week));
    let new_weeks = known_through
        .map(|week| week.plus(1))
        .filter(|w| *w <= through);
    let first_change = changed
        .iter()
        .chain(removed)
        .copied()
        .chain(new_weeks)
        .min();
    let first_kept = revisions.keys().next().copied();
    let mut result = WeeklyChanges {
        revisions,
        ..WeeklyChanges::default()
    };
    for week in changed {
        result.cells.insert(week, cells(&tx, week)?);
    }
    if let (Some(first_change), Some(first_kept)) = (first_change, first_kept) {
        let mut week = first_change.max(first_kept);
        while week <= through {
            result.summaries.insert(week, summary(&tx, week)?);
            week = week.plus(1);
        }
    }
    tx.commit()?;
    Ok(result)
}

fn cells(conn: &Connection, week: Week) -> rusqlite::Result<Vec<(String, Cell)>> {
    let mut select = conn.prepare_cached(
        "SELECT dimension, value, clusters, nodes FROM stats_cells WHERE week = ?1",
    )?;
    select
        .query_map([week.start()], |row| {
            Ok((
                row.get(0)?,
                Cell {
                    value: row.get(1)?,
                    clusters: row.get(2)?,
                    nodes: row.get(3)?,
                },
            ))
        })?
        .collect()
}

fn summary(conn: &Connection, week: Week) -> rusqlite::Result<WeekSummary> {
    let (active, nodes) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(nodes), 0) FROM stats_cluster_weeks WHERE week = ?1",
        )?
        .query_row([week.start()], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let new = conn
        .prepare_cached(
            "SELECT count(*) FROM stats_cluster_weeks a WHERE a.week = ?1 AND NOT EXISTS \
             (SELECT 1 FROM stats_cluster_weeks b WHERE b.cluster_id = a.cluster_id \
              AND b.week < ?1)",
        )?
        .query_row([week.start()], |row| row.get(0))?;
    let churned = conn
        .prepare_cached(
            "SELECT count(*) FROM stats_cluster_weeks a WHERE a.week = ?1 AND NOT EXISTS \
             (SELECT 1 FROM stats_cluster_weeks b WHERE b.cluster_id = a.cluster_id \
              AND b.week > ?1 AND b.week <= ?2)",
        )?
        .query_row(
            params![week.plus(-CHURN_WEEKS).start(), week.start()],
            |row| row.get(0),
        )?;
    Ok(WeekSummary {
        active,
        new,
        churned,
        nodes,
    })
}
