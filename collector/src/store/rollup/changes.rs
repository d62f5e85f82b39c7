//! What a rollup step, an erasure or a pruning changes, whichever backend computes it: prepared
//! steps, summed cell and week-total deltas, and the churn rule they are computed by.

use std::collections::{BTreeMap, BTreeSet};

use crate::stats::{CellDeltas, Week};

/// Weeks after which a cluster last seen counts as churned.
pub const CHURN_WEEKS: i64 = 4;

/// What one rollup step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupProgress {
    /// Reports read.
    pub reports: usize,
    /// True when no report is left to fold.
    pub caught_up: bool,
    /// True when the step was prepared on a state that changed before it was applied; nothing
    /// was written, and it must be prepared again.
    pub stale: bool,
}

/// `meta` key: the seq of the last report a rollup step has folded.
pub(in crate::store) const WATERMARK: &str = "stats_rolled_up_to";
/// `meta` key: grows with every erasure and pruning, which invalidate a prepared step.
pub(in crate::store) const GENERATION: &str = "stats_generation";

/// A step computed on a read snapshot, for the writer to apply.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The watermark it starts after, and the one it leaves.
    pub(in crate::store) watermark: (i64, i64),
    /// The generation of the snapshot it was computed on.
    pub(in crate::store) generation: i64,
    /// Reports read.
    pub(in crate::store) reports: usize,
    /// Reports read that fill the whole chunk (more may follow).
    pub(in crate::store) full: bool,
    /// Cluster-weeks to write: `(week, cluster number, seq, received_at, nodes)`.
    pub(in crate::store) rows: Vec<(Week, i64, i64, i64, i64)>,
    /// Clusters' first weeks to write, by cluster number.
    pub(in crate::store) firsts: Vec<(i64, Week)>,
    /// Cells and week totals to change.
    pub(in crate::store) changes: Changes,
}

/// Changes to one week's totals.
#[derive(Debug, Default, Clone, Copy)]
pub(in crate::store) struct Totals {
    pub(in crate::store) active: i64,
    pub(in crate::store) new: i64,
    pub(in crate::store) churned: i64,
    pub(in crate::store) nodes: i64,
}

/// Everything one step or erasure changes, summed before it is written.
#[derive(Debug, Default)]
pub(in crate::store) struct Changes {
    pub(in crate::store) cells: CellDeltas,
    pub(in crate::store) totals: BTreeMap<Week, Totals>,
}

impl Changes {
    pub(in crate::store) fn totals(&mut self, week: Week) -> &mut Totals {
        self.totals.entry(week).or_default()
    }

    /// Counts the churn of a cluster present in `weeks` (`sign` 1) or takes it out (-1), in
    /// the weeks `candidates`.
    pub(in crate::store) fn churn(
        &mut self,
        weeks: &BTreeSet<Week>,
        candidates: &BTreeSet<Week>,
        sign: i64,
    ) {
        for week in candidates {
            if churned(weeks, *week) {
                self.totals(*week).churned += sign;
            }
        }
    }
}

/// The weeks whose churn a presence in `weeks` can change: each one and the four after it.
pub(in crate::store) fn churn_candidates<'a>(
    weeks: impl Iterator<Item = &'a Week>,
) -> BTreeSet<Week> {
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
