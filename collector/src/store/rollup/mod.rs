//! The weekly rollup's rule, what a step of it changes and reports, whichever backend runs it.

mod changes;
mod fold;

pub use changes::{CHURN_WEEKS, Prepared, RollupProgress};
pub(in crate::store) use changes::{Changes, GENERATION, Totals, WATERMARK};
pub(in crate::store) use fold::{Chunk, Counted, erasure, fold_cluster};
