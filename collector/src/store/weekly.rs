//! The weekly statistics as a store answers them: each complete week's totals, revision and
//! raw cells.

use std::collections::BTreeMap;

use crate::stats::{Cell, Week};

/// Active, new and churned clusters of one week, and their nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeekSummary {
    /// Clusters with a report received in the week.
    pub active: i64,
    /// Active clusters seen in no earlier kept week.
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

/// The weekly statistics as stored, as far as a reader holding `known` needs them.
#[derive(Debug, Clone, Default)]
pub struct WeeklyChanges {
    /// Every complete week with statistics and its revision.
    pub revisions: BTreeMap<Week, i64>,
    /// Every such week's totals.
    pub summaries: BTreeMap<Week, WeekSummary>,
    /// The raw (unpublished) cells of each week whose revision is not the known one.
    pub cells: BTreeMap<Week, Vec<(String, Cell)>>,
}
