//! The weekly rollup: folds the reports stored since its last step into their cluster-weeks,
//! cells and week totals; takes an erased cluster out of every week it was counted in; drops the
//! weeks that retention has started to prune.
//!
//! A cluster-week (`stats_cluster_weeks`) names the latest report received from a cluster in a
//! week; the cells (`stats_cells`) count those reports by each dimension's values; a week's row
//! (`stats_weeks`) holds its active, new and churned clusters and nodes, and a revision that
//! grows with every change, which is how readers learn what to reload. Every change is a delta
//! computed from the one cluster it concerns (its weeks around the changed one, its first week in
//! `stats_clusters`), so no step rescans a week. Ingest never touches these tables.
//!
//! A step is prepared on a read connection of its own, at low priority (parsing the reports and
//! computing the deltas is most of its cost), and then applied by the writer in one short
//! transaction, which refuses it if an erasure or retention changed the statistics meanwhile
//! (`stats_generation`); the step is then prepared again.

mod prepare;
mod write;

use std::collections::{BTreeMap, BTreeSet};

use crate::stats::{CellDeltas, Week};

pub(super) use prepare::prepare;
pub(super) use write::{apply, drop_weeks_before, erase, reset_if_registry_changed};

/// Weeks after which a cluster last seen counts as churned.
pub const CHURN_WEEKS: i64 = 4;

/// `meta` key: the seq of the last report a rollup step has folded.
const WATERMARK: &str = "stats_rolled_up_to";
/// `meta` key: grows with every erasure and pruning, which invalidate a prepared step.
const GENERATION: &str = "stats_generation";

/// What one rollup step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupProgress {
    /// Reports read.
    pub reports: usize,
    /// Weeks whose numbers changed.
    pub weeks: BTreeSet<Week>,
    /// True when no report is left to fold.
    pub caught_up: bool,
    /// True when the step was prepared on a state that changed before it was applied; nothing
    /// was written, and it must be prepared again.
    pub stale: bool,
}

/// A step computed on a read snapshot, for the writer to apply.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The watermark it starts after, and the one it leaves.
    watermark: (i64, i64),
    /// The generation of the snapshot it was computed on.
    generation: i64,
    /// Reports read.
    reports: usize,
    /// Reports read that fill the whole chunk (more may follow).
    full: bool,
    /// Cluster-weeks to write: `(week, cluster, seq, received_at, nodes)`.
    rows: Vec<(Week, String, i64, i64, i64)>,
    /// Clusters' first weeks to write.
    firsts: Vec<(String, Week)>,
    /// Cells and week totals to change.
    changes: Changes,
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
#[derive(Debug, Default)]
struct Changes {
    cells: CellDeltas,
    totals: BTreeMap<Week, Totals>,
}

impl Changes {
    fn totals(&mut self, week: Week) -> &mut Totals {
        self.totals.entry(week).or_default()
    }

    /// Counts the churn of a cluster present in `weeks` (`sign` 1) or takes it out (-1), in
    /// the weeks `candidates`.
    fn churn(&mut self, weeks: &BTreeSet<Week>, candidates: &BTreeSet<Week>, sign: i64) {
        for week in candidates {
            if churned(weeks, *week) {
                self.totals(*week).churned += sign;
            }
        }
    }
}

/// The weeks whose churn a presence in `weeks` can change: each one and the four after it.
fn churn_candidates<'a>(weeks: impl Iterator<Item = &'a Week>) -> BTreeSet<Week> {
    weeks
        .flat_map(|week| (0..=CHURN_WEEKS).map(|k| week.plus(k)))
        .collect()
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
        let churned_in: Vec<i64> = (0..12).filter(|n| churned(&back, w(*n))).collect();
        assert_eq!(churned_in, [9]);
        assert_eq!(churn_candidates([w(1)].iter()).len(), 5);
    }
}
