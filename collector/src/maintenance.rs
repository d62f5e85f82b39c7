//! Background work: retention pruning, the weekly statistics' rollup, store recovery probes,
//! rate-limiter housekeeping and the log's summary of what ingest answered.

use std::sync::Arc;
use std::time::Duration;

use common::time::unix_now;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::{IngestCounts, Metrics};
use crate::published::WeeklyStats;
use crate::ratelimit::{ClusterRateLimiter, KnownClusters, SourceLimits};
use crate::store::Store;

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Reports deleted per transaction, so pruning never holds the writer for long.
const PRUNE_CHUNK: usize = 5_000;
/// How often an unavailable store is tried again.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How often rate-limit state of idle clusters is dropped.
const HOUSEKEEP_EVERY: Duration = Duration::from_secs(60);

/// What the background loops work on.
pub struct Background {
    /// The store.
    pub store: Store,
    /// The weekly statistics.
    pub weekly: WeeklyStats,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The rate limiter, when there is one.
    pub limiter: Option<Arc<ClusterRateLimiter>>,
    /// The per-source limits.
    pub sources: Arc<SourceLimits>,
    /// Retention period.
    pub retention: Duration,
    /// How often the weekly statistics are rolled up (zero: at startup only).
    pub rollup_every: Duration,
}

/// Starts the background loops; they end when `stopped` turns true.
pub fn spawn(background: Background, stopped: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let Background {
        store,
        weekly,
        metrics,
        limiter,
        sources,
        retention,
        rollup_every,
    } = background;
    let prune_store = store.clone();
    let probe_store = store.clone();
    let prune_sources = sources.clone();
    let summary_metrics = metrics.clone();
    let rollup = async move |weekly: WeeklyStats| {
        if let Err(error) = weekly.refresh().await {
            tracing::warn!(%error, "the weekly statistics' rollup failed; will retry");
        }
    };
    let rollup_stopped = stopped.clone();
    let rollup_task = tokio::spawn(async move {
        if rollup_every.is_zero() {
            rollup(weekly).await;
        } else {
            every(rollup_every, rollup_stopped, move || rollup(weekly.clone())).await;
        }
    });
    vec![
        rollup_task,
        tokio::spawn(every(PRUNE_EVERY, stopped.clone(), move || {
            let store = prune_store.clone();
            let metrics = metrics.clone();
            let sources = prune_sources.clone();
            async move {
                if prune(&store, &metrics, retention).await > 0
                    && let Err(error) = load_known_clusters(&store, &sources).await
                {
                    tracing::warn!(%error, "reading the known clusters after pruning failed; will retry");
                }
            }
        })),
        tokio::spawn(every(PROBE_EVERY, stopped.clone(), move || {
            let store = probe_store.clone();
            async move {
                if !store.is_available() && store.probe().await.is_ok() {
                    tracing::info!("store probe succeeded");
                }
            }
        })),
        tokio::spawn(every(HOUSEKEEP_EVERY, stopped, move || {
            let store = store.clone();
            let limiter = limiter.clone();
            let sources = sources.clone();
            let counts = summary_metrics.ingest_summary.take();
            async move {
                log_summary(counts);
                if let Some(limiter) = limiter {
                    limiter.housekeep();
                }
                sources.housekeep();
                store.refresh_size_gauge().await;
            }
        })),
    ]
}

async fn every<F, Fut>(period: Duration, mut stopped: watch::Receiver<bool>, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => work().await,
            () = async { let _ = stopped.wait_for(|stop| *stop).await; } => return,
        }
    }
}

/// One INFO line of what ingest answered since the last one (nothing when nothing arrived): a
/// running collector shows it works without a line per report. Also logged at shutdown, for the
/// last, partial minute.
pub(crate) fn log_summary(counts: IngestCounts) {
    if !counts.is_empty() {
        tracing::info!(
            accepted = counts.accepted,
            duplicates = counts.duplicates,
            refused = counts.refused,
            unavailable = counts.unavailable,
            "reports received since the last summary"
        );
    }
}

/// Deletes reports received before now minus `retention`, in chunks.
/// Reads the cluster ids in the store into the per-source limits' known clusters (when their
/// new-cluster cap is on): at start, and after retention deleted reports (and so perhaps
/// clusters).
pub async fn load_known_clusters(
    store: &Store,
    sources: &SourceLimits,
) -> crate::error::Result<()> {
    if !sources.limits_new_clusters() {
        return Ok(());
    }
    let known = store
        .fold_cluster_ids(sources.known_clusters_builder(), KnownClusters::add)
        .await?;
    sources.replace_known(known);
    Ok(())
}

/// Deletes the reports past the retention period; how many.
pub async fn prune(store: &Store, metrics: &Metrics, retention: Duration) -> u64 {
    let cutoff = unix_now().saturating_sub(retention.as_secs() as i64);
    let mut total = 0;
    loop {
        match store.prune(cutoff, PRUNE_CHUNK).await {
            Ok(deleted) => {
                total += deleted;
                metrics.reports_pruned.inc_by(deleted);
                if deleted < PRUNE_CHUNK as u64 {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "retention pruning failed; will retry");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(reports = total, "pruned reports past the retention period");
    }
    total
}
