//! The published weekly statistics: a rollup run folds new reports into the store's weekly
//! tables, then the in-memory snapshot every statistics answer is served from is rebuilt from
//! what changed. Requests only read the snapshot, so an anonymous caller cannot make the
//! collector recompute anything.

mod snapshot;
pub mod views;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::time::unix_now;
use parking_lot::RwLock;

pub use snapshot::{DimensionInfo, Published};

use crate::error::Result;
use crate::metrics::Metrics;
use crate::stats::Week;
use crate::store::{Store, WeeklyReader};

/// Reports folded per rollup transaction, so that a run never holds the writer for long.
const ROLLUP_CHUNK: usize = 5_000;

/// The weekly statistics of one store; cheap to clone.
#[derive(Clone)]
pub struct WeeklyStats(Arc<Inner>);

struct Inner {
    store: Store,
    metrics: Arc<Metrics>,
    reader: WeeklyReader,
    min_group_clusters: i64,
    retention: Duration,
    published: RwLock<Arc<Published>>,
    running: tokio::sync::Mutex<()>,
}

impl WeeklyStats {
    /// Statistics of `store` with groups of fewer than `min_group_clusters` folded, over the
    /// weeks `retention` keeps. Empty (not ready) until the first [`WeeklyStats::refresh`].
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        min_group_clusters: u32,
        retention: Duration,
    ) -> Result<Self> {
        Ok(WeeklyStats(Arc::new(Inner {
            reader: store.weekly_reader()?,
            store,
            metrics,
            min_group_clusters: i64::from(min_group_clusters.max(1)),
            retention,
            published: RwLock::new(Arc::new(Published::default())),
            running: tokio::sync::Mutex::new(()),
        })))
    }

    /// The statistics as last published.
    pub fn published(&self) -> Arc<Published> {
        self.0.published.read().clone()
    }

    /// Folds every report stored since the last run into the weekly tables, then publishes
    /// what changed. One run at a time; a caller arriving during a run waits for the next.
    pub async fn refresh(&self) -> Result<()> {
        let _running = self.0.running.lock().await;
        let started = Instant::now();
        let mut folded = 0;
        let rolled_up = loop {
            let keep_from = unix_now().saturating_sub(self.0.retention.as_secs() as i64);
            let progress = match self.0.reader.prepare_rollup(keep_from, ROLLUP_CHUNK).await {
                Ok(prepared) => self.0.store.apply_rollup(prepared).await,
                Err(error) => Err(error),
            };
            match progress {
                Ok(progress) if progress.stale => continue,
                Ok(progress) => {
                    folded += progress.reports;
                    self.0
                        .metrics
                        .stats_rolled_up_reports
                        .inc_by(progress.reports as u64);
                    if progress.caught_up {
                        break Ok(());
                    }
                }
                // What is stored is published all the same (at startup too, so the endpoints
                // answer); the next run tries again.
                Err(error) => break Err(error),
            }
        };
        let now = unix_now();
        let running = Week::of(now);
        let current = self.published();
        let changes = self
            .0
            .reader
            .changes(current.revisions().clone(), running)
            .await?;
        // Rebuilt when a complete week changed, and when a week has ended (it is published from
        // then on); not for the running week, which is not.
        let unchanged = current.ready
            && current.current_week() == running
            && changes.cells.is_empty()
            && changes.revisions == *current.revisions();
        if !unchanged {
            let next = current.apply(changes, self.0.min_group_clusters, now);
            *self.0.published.write() = Arc::new(next);
        }
        let metrics = &self.0.metrics;
        metrics
            .stats_rollup_duration
            .observe(started.elapsed().as_secs_f64());
        if rolled_up.is_ok() {
            metrics.stats_published.set(now);
        }
        tracing::debug!(
            reports = folded,
            republished = !unchanged,
            seconds = started.elapsed().as_secs_f64(),
            "weekly statistics rolled up"
        );
        rolled_up
    }
}

#[cfg(test)]
mod tests;
