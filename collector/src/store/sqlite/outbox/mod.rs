//! The per-sink delivery outbox. Each sink has a position in the reports' insertion order: the
//! reports it covers after its position are its queue, read in order by its delivery worker;
//! ingest writes nothing for it. A delivery gets a row of its own only when it needs one: tried
//! and failed (due again later, or `dead` with the reason), or re-queued by an operator. The
//! worker moves the position past what it sent, in the transaction that records the outcomes.

mod queue;
mod read;

pub(super) use queue::{apply, register, requeue, unconfigured};
pub use read::{list, pending, stats};
