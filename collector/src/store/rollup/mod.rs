//! The weekly rollup's rule, what a step of it changes and reports, whichever backend runs it.

mod changes;
mod fold;

pub use changes::Prepared;
pub(in crate::store) use changes::{Changes, GENERATION, Totals, WATERMARK};
pub(in crate::store) use fold::{Chunk, Counted, erasure, fold_cluster};

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
