//! The delivery engine: one worker per sink reads its outbox in order, hands batches to the sink,
//! and records what the sink confirmed. A sink that is down only slows its own worker.

use std::sync::Arc;
use std::time::Duration;

use common::time::unix_now;
use common::wire;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::{DeliveryLabels, DeliveryOutcome, Metrics, SinkLabels};
use crate::sinks::{Configured, ItemOutcome, Sent};
use crate::store::{Held, OutboxItem, OutboxReader, OutboxUpdate, Store};

/// How often a worker refreshes its outbox gauges when idle.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// Longest idle wait before a worker looks at its outbox again.
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// Settings of the delivery engine.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Deliveries older than this are dead-lettered instead of tried again.
    pub max_age: Duration,
    /// Longest wait between attempts while a sink keeps failing.
    pub max_backoff: Duration,
}

/// Starts one worker per sink; each first runs its sink's startup healthcheck (logged and
/// exported; a BigQuery sink creates its table there), then delivers. The healthchecks run at
/// once and in the background, so a slow sink host delays neither ingest nor the other sinks.
/// The workers end when `stopped` turns true.
pub fn start(
    sinks: &[Configured],
    store: &Store,
    metrics: Arc<Metrics>,
    settings: DeliverySettings,
    stopped: watch::Receiver<bool>,
) -> crate::error::Result<Vec<JoinHandle<()>>> {
    let mut workers = Vec::new();
    for configured in sinks {
        let labels = SinkLabels {
            sink: configured.name.clone(),
            r#type: configured.kind.as_str(),
        };
        metrics.init_sink(&labels);
        let worker = Worker {
            sink: configured.clone(),
            labels,
            store: store.clone(),
            reader: store.outbox_reader()?,
            metrics: metrics.clone(),
            settings,
            partial_since: None,
        };
        workers.push(tokio::spawn(worker.run(stopped.clone())));
    }
    Ok(workers)
}

struct Worker {
    sink: Configured,
    labels: SinkLabels,
    store: Store,
    reader: OutboxReader,
    metrics: Arc<Metrics>,
    settings: DeliverySettings,
    /// When the worker first saw the partial batch it is waiting to fill.
    partial_since: Option<tokio::time::Instant>,
}

impl Worker {
    /// The sink's startup healthcheck, logged and exported as `collector_sink_up`.
    async fn healthcheck(&self) {
        let (sink, kind) = (&self.sink.name, self.sink.kind.as_str());
        let up = match self.sink.sink.healthcheck().await {
            Ok(()) => {
                tracing::info!(sink = %sink, r#type = kind, "sink healthcheck passed");
                1
            }
            Err(error) => {
                tracing::warn!(sink = %sink, r#type = kind, %error, "sink healthcheck failed; deliveries wait and retry");
                0
            }
        };
        self.metrics.sink_up.get_or_create(&self.labels).set(up);
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        tokio::select! {
            () = self.healthcheck() => {}
            () = async { let _ = stopped.wait_for(|stop| *stop).await; } => return,
        }
        let mut failures = 0u32;
        let mut gauges_at = tokio::time::Instant::now();
        loop {
            if *stopped.borrow() {
                return;
            }
            if gauges_at.elapsed() >= GAUGES_EVERY {
                self.refresh_gauges().await;
                gauges_at = tokio::time::Instant::now();
            }
            let queued_before = self.store.queued_total();
            let (wait, wanted) = match self.round().await {
                Round::Idle { wait, wanted } => {
                    failures = 0;
                    (wait, wanted)
                }
                Round::Progress => {
                    failures = 0;
                    continue;
                }
                Round::Failed(retry_after) => {
                    failures += 1;
                    let delay = retry_after
                        .unwrap_or_default()
                        .max(backoff(failures, self.settings.max_backoff));
                    tracing::warn!(sink = %self.sink.name, failures, retry_in = ?delay, "sink failing; backing off");
                    self.refresh_gauges().await;
                    (delay, 0)
                }
            };
            let woken = async {
                if failures == 0 {
                    // Woken early only once enough reports arrived to be worth a round: one
                    // when the outbox was empty, a full batch's worth when a partial one waits.
                    self.store
                        .wait_for_reports(queued_before + wanted, wait)
                        .await;
                } else {
                    tokio::time::sleep(wait).await;
                }
            };
            tokio::select! {
                () = woken => {}
                () = async { let _ = stopped.wait_for(|stop| *stop).await; } => return,
            }
        }
    }

    /// One batch: fetch, send, record.
    async fn round(&mut self) -> Round {
        let now = unix_now();
        let limit = self.sink.sink.max_batch();
        let (items, generation) = match self.reader.pending(&self.sink.name, now, limit).await {
            Ok(batch) => (batch.items, batch.generation),
            Err(error) => {
                tracing::warn!(sink = %self.sink.name, %error, "cannot read the outbox");
                return Round::Failed(None);
            }
        };
        if items.is_empty() {
            let next_due = self
                .reader
                .stats(&self.sink.name)
                .await
                .ok()
                .and_then(|stats| stats.next_due)
                .map(|due| Duration::from_secs(due.saturating_sub(now).max(1) as u64));
            return Round::Idle {
                wait: next_due.unwrap_or(IDLE_WAIT).min(IDLE_WAIT),
                wanted: 1,
            };
        }
        let full = items.len() == limit;
        // A partial batch waits, up to the sink's flush interval from when the worker first saw
        // it, for more reports to share its requests; one queued longer ago (say, before a
        // restart) goes at once.
        let flush = self.sink.sink.flush_interval();
        let oldest = items.iter().map(|i| i.queued_at).min().unwrap_or(now);
        let seen = *self
            .partial_since
            .get_or_insert_with(tokio::time::Instant::now);
        let fresh = now.saturating_sub(oldest) <= flush.as_secs().max(1) as i64;
        if !full && fresh && seen.elapsed() < flush {
            return Round::Idle {
                wait: flush - seen.elapsed(),
                wanted: (limit - items.len()) as u64,
            };
        }
        self.partial_since = None;

        let max_age = self.settings.max_age.as_secs() as i64;
        let (expired, items): (Vec<_>, Vec<_>) = items
            .into_iter()
            .partition(|item| now.saturating_sub(item.queued_at) > max_age);
        let sent = if items.is_empty() {
            Sent::default()
        } else {
            self.sink.sink.send(&items, full).await
        };
        for request in &sent.requests {
            self.metrics
                .sink_request_duration
                .get_or_create(&self.labels)
                .observe(request.duration.as_secs_f64());
            self.metrics
                .sink_request_bytes
                .get_or_create(&self.labels)
                .observe(request.bytes as f64);
            self.metrics
                .sink_request_items
                .get_or_create(&self.labels)
                .observe(request.items as f64);
        }
        let position = position_reached(&expired, &items, &sent.outcomes);
        // A report after the position reached is read again in the next round, whatever became
        // of it in this one.
        let recorded = |item: &OutboxItem| {
            item.held == Held::Row || position.is_some_and(|reached| item.seq <= reached)
        };
        let mut update = OutboxUpdate {
            sink: self.sink.name.clone(),
            position,
            generation,
            ..OutboxUpdate::default()
        };
        for item in expired.iter().filter(|item| recorded(item)) {
            update.dead.push((
                item.seq,
                format!(
                    "not delivered within --max-delivery-age ({})",
                    humantime::format_duration(self.settings.max_age)
                ),
            ));
        }
        let mut retried = 0;
        for (item, outcome) in items.iter().zip(sent.outcomes) {
            if !recorded(item) {
                continue;
            }
            match outcome {
                ItemOutcome::Delivered => update.delivered.push(item.seq),
                ItemOutcome::Dead(reason) => {
                    tracing::warn!(sink = %self.sink.name, report = %item.id, %reason, "delivery dead-lettered");
                    update.dead.push((item.seq, reason));
                }
                ItemOutcome::Retry(error) => {
                    retried += 1;
                    update.retried.push((item.seq, error));
                }
                ItemOutcome::Deferred => {}
            }
        }
        let progress = !update.delivered.is_empty() || !update.dead.is_empty();
        // Retried rows are due again at once: the worker itself backs off when nothing moved.
        update.retry_at = now;
        self.count(DeliveryOutcome::delivered, update.delivered.len());
        self.count(DeliveryOutcome::dead, update.dead.len());
        self.count(DeliveryOutcome::retried, retried);
        if let Err(error) = self.store.update_outbox(update).await {
            tracing::warn!(sink = %self.sink.name, %error, "cannot record deliveries; they will be sent again");
            return Round::Failed(None);
        }
        if progress {
            Round::Progress
        } else if retried > 0 {
            Round::Failed(sent.retry_after)
        } else {
            // Only deferred items: wait for more reports to fill the next request.
            Round::Idle {
                wait: flush.max(Duration::from_millis(100)),
                wanted: (limit - items.len()).max(1) as u64,
            }
        }
    }

    fn count(&self, outcome: DeliveryOutcome, n: usize) {
        if n > 0 {
            self.metrics
                .deliveries
                .get_or_create(&DeliveryLabels {
                    sink: self.labels.sink.clone(),
                    r#type: self.labels.r#type,
                    outcome,
                })
                .inc_by(n as u64);
        }
    }

    async fn refresh_gauges(&self) {
        if let Ok(stats) = self.reader.stats(&self.sink.name).await {
            let now = unix_now();
            self.metrics
                .outbox_depth
                .get_or_create(&self.labels)
                .set(stats.pending);
            self.metrics
                .outbox_dead
                .get_or_create(&self.labels)
                .set(stats.dead);
            self.metrics
                .outbox_oldest
                .get_or_create(&self.labels)
                .set(stats.oldest_pending.map_or(0, |t| now.saturating_sub(t)));
        }
    }
}

/// How far a round moves its sink's position: past the reports after the old position that were
/// dead-lettered as too old or handed to the sink, up to the first one the sink deferred (it is
/// read again in the next round). `None` when the round held no such report.
fn position_reached(
    expired: &[OutboxItem],
    sent: &[OutboxItem],
    outcomes: &[ItemOutcome],
) -> Option<i64> {
    let after_position = |item: &&OutboxItem| item.held == Held::AfterPosition;
    let handed: Vec<(i64, bool)> = sent
        .iter()
        .zip(outcomes)
        .filter(|(item, _)| after_position(item))
        .map(|(item, outcome)| (item.seq, *outcome == ItemOutcome::Deferred))
        .collect();
    let deferred_at = handed
        .iter()
        .find(|(_, deferred)| *deferred)
        .map(|(seq, _)| *seq);
    expired
        .iter()
        .filter(after_position)
        .map(|item| item.seq)
        .chain(handed.iter().map(|(seq, _)| *seq))
        .filter(|seq| deferred_at.is_none_or(|deferred| *seq < deferred))
        .max()
}

/// How one round went.
enum Round {
    /// Nothing to send now; look again after `wait`, or once `wanted` more reports arrived.
    Idle { wait: Duration, wanted: u64 },
    /// Something was delivered or dead-lettered: go on at once.
    Progress,
    /// Nothing moved: back off (at least as long as the sink asked).
    Failed(Option<Duration>),
}

/// The delay before retry `attempt` (1-based) of a failing sink: full jitter over a doubling
/// window from 1 s, capped at `cap`.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    wire::backoff(attempt, cap, rand::rng().random_range(wire::BACKOFF_JITTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: i64, held: Held) -> OutboxItem {
        OutboxItem {
            seq,
            held,
            ..crate::sinks::sample_item()
        }
    }

    #[test]
    fn the_position_stops_before_the_first_deferred_report() {
        let expired = [item(3, Held::Row), item(4, Held::AfterPosition)];
        let sent = [
            item(1, Held::Row),
            item(5, Held::AfterPosition),
            item(6, Held::AfterPosition),
            item(7, Held::AfterPosition),
            item(8, Held::AfterPosition),
        ];
        let outcomes = [
            ItemOutcome::Retry("503".into()),
            ItemOutcome::Delivered,
            ItemOutcome::Dead("400".into()),
            ItemOutcome::Deferred,
            ItemOutcome::Deferred,
        ];
        assert_eq!(position_reached(&expired, &sent, &outcomes), Some(6));
        let delivered = vec![ItemOutcome::Delivered; 5];
        assert_eq!(position_reached(&expired, &sent, &delivered), Some(8));
        let first_deferred = vec![ItemOutcome::Deferred; 5];
        assert_eq!(
            position_reached(&expired, &sent, &first_deferred),
            Some(4),
            "the expired ones before it are passed"
        );
        assert_eq!(
            position_reached(&[], &sent[..1], &outcomes[..1]),
            None,
            "rows alone do not move it"
        );
    }

    #[test]
    fn backoff_is_capped_with_jitter() {
        let cap = Duration::from_secs(300);
        for attempt in 1..30 {
            let delay = backoff(attempt, cap);
            assert!(delay <= cap, "{attempt}: {delay:?}");
            assert!(delay >= Duration::from_millis(500));
        }
        assert!(backoff(1, cap) <= Duration::from_secs(1));
        assert!(backoff(20, Duration::from_secs(2)) <= Duration::from_secs(2));
    }
}
