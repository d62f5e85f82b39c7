//! Background work: retention pruning, store recovery probes and rate-limiter housekeeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Reports deleted per transaction, so pruning never holds the writer for long.
const PRUNE_CHUNK: usize = 5_000;
/// How often an unavailable store is tried again.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How often rate-limit state of idle clusters is dropped.
const HOUSEKEEP_EVERY: Duration = Duration::from_secs(60);

/// Starts the background loops; they end when `stopped` turns true.
pub fn spawn(
    state: AppState,
    retention: Duration,
    stopped: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let prune_state = state.clone();
    let probe_state = state.clone();
    vec![
        tokio::spawn(every(PRUNE_EVERY, stopped.clone(), move || {
            let state = prune_state.clone();
            async move { prune(&state, retention).await }
        })),
        tokio::spawn(every(PROBE_EVERY, stopped.clone(), move || {
            let state = probe_state.clone();
            async move {
                if !state.store().is_available() && state.store().probe().await.is_ok() {
                    tracing::info!("store probe succeeded");
                }
            }
        })),
        tokio::spawn(every(HOUSEKEEP_EVERY, stopped, move || {
            let state = state.clone();
            async move {
                if let Some(limiter) = state.limiter() {
                    limiter.housekeep();
                }
                state.store().refresh_size_gauge();
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

/// Deletes reports received before now minus `retention`, in chunks.
pub async fn prune(state: &AppState, retention: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let cutoff = now.saturating_sub(retention.as_secs() as i64);
    let mut total = 0;
    loop {
        match state.store().prune(cutoff, PRUNE_CHUNK).await {
            Ok(deleted) => {
                total += deleted;
                state.metrics().reports_pruned.inc_by(deleted);
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
}
