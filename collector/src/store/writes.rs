//! What a backend's writer shares with the store's handles, whichever backend: whether writes
//! succeed (and the last failure), the count of reports stored and deliveries re-queued that
//! delivery workers wait on, and the metrics the writer keeps current.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::{BoxError, Error, Result, SharedError};
use crate::metrics::Metrics;

/// The writer's side of a store, shared with its handles.
pub(in crate::store) struct WriterState {
    available: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// The collector's metrics.
    pub metrics: Arc<Metrics>,
    /// Woken after every commit that stored a new report, and after a requeue.
    stored: Notify,
    /// Reports stored plus deliveries re-queued since the store was opened: a worker waiting to
    /// fill a batch sleeps until this has grown by the number it lacks.
    queued: AtomicU64,
}

impl WriterState {
    /// A store that takes writes, holding `reports`.
    pub fn new(metrics: Arc<Metrics>, reports: i64) -> Self {
        metrics.store_available.set(1);
        metrics.store_reports.set(reports);
        WriterState {
            available: AtomicBool::new(true),
            last_error: Mutex::new(None),
            metrics,
            stored: Notify::new(),
            queued: AtomicU64::new(0),
        }
    }

    /// A write succeeded.
    pub fn mark_available(&self) {
        if !self.available.swap(true, Ordering::SeqCst) {
            tracing::info!("store is writable again");
        }
        *self.last_error.lock() = None;
        self.metrics.store_available.set(1);
    }

    /// A write failed with `error`.
    pub fn mark_unavailable(&self, error: &str) {
        if self.available.swap(false, Ordering::SeqCst) {
            tracing::error!(
                error,
                "store write failed; ingest answers 503 until it recovers"
            );
        }
        *self.last_error.lock() = Some(error.to_string());
        self.metrics.store_available.set(0);
    }

    /// A failed write as the store answers it: unavailable, the failure kept for every waiter.
    pub fn failed(&self, error: impl Into<BoxError>) -> SharedError {
        let error: SharedError = Arc::from(error.into());
        self.mark_unavailable(&error.to_string());
        error
    }

    /// `result` of a write as the store answers it.
    pub fn track<T, E: Into<BoxError>>(&self, result: Result<T, E>) -> Result<T> {
        match result {
            Ok(value) => {
                self.mark_available();
                Ok(value)
            }
            Err(error) => Err(Error::Unavailable(self.failed(error))),
        }
    }

    /// `stored` new reports were committed.
    pub fn stored(&self, stored: usize) {
        if stored > 0 {
            self.metrics.store_reports.inc_by(stored as i64);
            self.requeued(stored as u64);
        }
    }

    /// `requeued` deliveries are pending again.
    pub fn requeued(&self, requeued: u64) {
        self.queued.fetch_add(requeued, Ordering::AcqRel);
        self.stored.notify_waiters();
    }

    /// True while writes succeed.
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::SeqCst)
    }

    /// The last write error, while the store is unavailable.
    pub fn last_error(&self) -> Option<String> {
        if self.is_available() {
            None
        } else {
            self.last_error.lock().clone()
        }
    }

    /// How many reports were stored and deliveries re-queued since the store was opened.
    pub fn queued_total(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits until [`WriterState::queued_total`] reaches `total`, or `timeout` passes.
    pub async fn wait_for_reports(&self, total: u64, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let notified = self.stored.notified();
                tokio::pin!(notified);
                // Registered before the check, so a commit in between still wakes us.
                notified.as_mut().enable();
                if self.queued_total() >= total {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}
