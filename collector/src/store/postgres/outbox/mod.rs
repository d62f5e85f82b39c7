//! The per-sink delivery outbox on PostgreSQL: the same positions, coverage ranges and rows as
//! the embedded store's (`sqlite/outbox/`), so that a sink's queue means the same on both.

mod queue;
mod read;

pub(super) use queue::{apply, register, requeue, unconfigured};
pub(super) use read::{list, pending, stats};
