//! The writer thread's command protocol, and the state the store's handle and the writer share.

use std::sync::atomic::AtomicBool;

use tokio::sync::oneshot;

use crate::error::Result;
use crate::store::outbox::OutboxUpdate;
use crate::store::records::{InsertOutcome, NewReport};
use crate::store::rollup::{Prepared, RollupProgress};
use crate::store::writes::WriterState;

/// Most commands handled in one round (and reports committed in one transaction).
pub(super) const MAX_GROUP: usize = 2048;
/// Commands waiting for the writer before senders wait.
pub(super) const QUEUE_DEPTH: usize = 8192;

/// The answer to one command.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// Work for the writer thread.
pub(super) enum Command {
    Insert(Box<NewReport>, oneshot::Sender<Result<InsertOutcome>>),
    DeleteCluster(String, oneshot::Sender<Result<u64>>),
    Prune {
        received_before: i64,
        limit: usize,
        reply: oneshot::Sender<Result<u64>>,
    },
    Probe(oneshot::Sender<Result<()>>),
    Outbox(Box<OutboxUpdate>, oneshot::Sender<Result<()>>),
    Requeue {
        sink: String,
        dead_only: bool,
        since: i64,
        reply: oneshot::Sender<Result<u64>>,
    },
    Rollup(Box<Prepared>, oneshot::Sender<Result<RollupProgress>>),
    Shutdown(oneshot::Sender<()>),
}

/// State shared by the handle, the writer thread and the checkpointer.
pub(super) struct Shared {
    /// Availability, the stored-report counter and the metrics.
    pub(super) writes: WriterState,
    /// Set by the checkpointer once the write-ahead log is long and nearly all copied: the
    /// writer copies the last frames itself between two groups, so that its next transaction
    /// starts the log over (see `checkpoint`).
    pub(super) log_restart_due: AtomicBool,
}
