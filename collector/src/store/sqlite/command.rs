//! The writer thread's command protocol, and the state the store's handle and the writer share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::outbox::OutboxUpdate;
use crate::store::records::{InsertOutcome, NewReport};
use crate::store::rollup::{Prepared, RollupProgress};

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

/// State shared by the handle and the writer thread.
pub(super) struct Shared {
    pub(super) available: AtomicBool,
    pub(super) last_error: Mutex<Option<String>>,
    pub(super) metrics: Arc<Metrics>,
    /// Woken after every commit that stored a new report, and after a requeue (delivery
    /// workers wait on it).
    pub(super) stored: tokio::sync::Notify,
    /// Reports stored plus deliveries re-queued since the store was opened: a worker waiting to
    /// fill a batch sleeps until this has grown by the number it lacks.
    pub(super) queued: AtomicU64,
    /// Set by the checkpointer once the write-ahead log is long and nearly all copied: the
    /// writer copies the last frames itself between two groups, so that its next transaction
    /// starts the log over (see `checkpoint`).
    pub(super) log_restart_due: AtomicBool,
}

impl Shared {
    pub(super) fn mark_available(&self) {
        if !self.available.swap(true, Ordering::SeqCst) {
            tracing::info!("store is writable again");
        }
        self.metrics.store_available.set(1);
    }

    pub(super) fn mark_unavailable(&self, error: &str) {
        if self.available.swap(false, Ordering::SeqCst) {
            tracing::error!(
                error,
                "store write failed; ingest answers 503 until it recovers"
            );
        }
        *self.last_error.lock() = Some(error.to_string());
        self.metrics.store_available.set(0);
    }
}
