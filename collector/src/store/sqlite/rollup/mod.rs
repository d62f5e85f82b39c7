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

mod body;
mod prepare;
mod write;

pub(super) use prepare::prepare;
pub(super) use write::{apply, drop_weeks_before, erase, reset_if_registry_changed};
