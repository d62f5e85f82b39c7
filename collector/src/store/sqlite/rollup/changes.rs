//! What a rollup step, an erasure or a pruning changes: prepared steps, summed cell and week-total
//! deltas, and the churn rule they are computed by.

use std::collections::{BTreeMap, BTreeSet};

use common::Report;
use rusqlite::Row;

use crate::stats::{CellDeltas, Week};
use crate::store::rollup::CHURN_WEEKS;
use crate::store::sqlite::sql::report_body;

/// The stored report in column `index` of `row`, or `None` (with a warning) when it cannot be
/// read: one damaged row must not stop the statistics, nor an erasure.
pub(super) fn readable_body(
    row: &Row<'_>,
    index: usize,
    seq: i64,
) -> rusqlite::Result<Option<Report>> {
    match report_body(row, index, seq, 0) {
        Ok(report) => Ok(Some(report)),
        Err(rusqlite::Error::FromSqlConversionFailure(_, _, error)) => {
            tracing::warn!(seq, %error, "a stored report cannot be read; the weekly statistics leave it out");
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// `meta` key: the seq of the last report a rollup step has folded.
pub(super) const WATERMARK: &str = "stats_rolled_up_to";
/// `meta` key: grows with every erasure and pruning, which invalidate a prepared step.
pub(super) const GENERATION: &str = "stats_generation";

/// A step computed on a read snapshot, for the writer to apply.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The watermark it starts after, and the one it leaves.
    pub(super) watermark: (i64, i64),
    /// The generation of the snapshot it was computed on.
    pub(super) generation: i64,
    /// Reports read.
    pub(super) reports: usize,
    /// Reports read that fill the whole chunk (more may follow).
    pub(super) full: bool,
    /// Cluster-weeks to write: `(week, cluster number, seq, received_at, nodes)`.
    pub(super) rows: Vec<(Week, i64, i64, i64, i64)>,
    /// Clusters' first weeks to write, by cluster number.
    pub(super) firsts: Vec<(i64, Week)>,
    /// Cells and week totals to change.
    pub(super) changes: Changes,
}

/// Changes to one week's totals.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Totals {
    pub(super) active: i64,
    pub(super) new: i64,
    pub(super) churned: i64,
    pub(super) nodes: i64,
}

/// Everything one step or erasure changes, summed before it is written.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub(super) cells: CellDeltas,
    pub(super) totals: BTreeMap<Week, Totals>,
}

impl Changes {
    pub(super) fn totals(&mut self, week: Week) -> &mut Totals {
        self.totals.entry(week).or_default()
    }

    /// Counts the churn of a cluster present in `weeks` (`sign` 1) or takes it out (-1), in
    /// the weeks `candidates`.
    pub(super) fn churn(&mut self, weeks: &BTreeSet<Week>, candidates: &BTreeSet<Week>, sign: i64) {
        for week in candidates {
            if churned(weeks, *week) {
                self.totals(*week).churned += sign;
            }
        }
    }
}

/// The weeks whose churn a presence in `weeks` can change: each one and the four after it.
pub(super) fn churn_candidates<'a>(weeks: impl Iterator<Item = &'a Week>) -> BTreeSet<Week> {
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
