//! The run loop: build a report, deliver it, wait for the next jittered period; or once
//! (`--period 0`), or print it (`--dry-run`).

use std::sync::Arc;
use std::time::Duration;

use common::anonymize::NodeIdKey;
use common::report::Report;
use common::time::unix_now;
use kube::Client;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Config;
use crate::metrics::{Metrics, ReportOutcome};
use crate::publish::{Outcome, Publisher};
use crate::{Result, report};

/// Share of the period by which each period is lengthened or shortened at random.
const PERIOD_JITTER: f64 = 0.10;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The report was delivered (one-shot), printed (dry run), or the loop was stopped.
    Ok,
    /// One-shot: the report could not be delivered.
    Undelivered,
}

/// Everything a run needs.
pub struct Volunteer {
    config: Config,
    client: Client,
    publisher: Option<Publisher>,
    metrics: Arc<Metrics>,
    /// Used when no other node-id key is available (ids then change on restart).
    fallback_key: NodeIdKey,
}

impl Volunteer {
    /// A volunteer reading through `client` (the only place the real one is built is `main`).
    pub fn new(config: Config, client: Client, metrics: Arc<Metrics>) -> Result<Self> {
        config.check()?;
        let publisher = match (&config.collector, config.dry_run) {
            (Some(collector), false) => Some(Publisher::new(&config, collector)?),
            _ => None,
        };
        let mut secret = [0u8; 32];
        rand::rng().fill(&mut secret);
        Ok(Volunteer {
            config,
            client,
            publisher,
            metrics,
            fallback_key: NodeIdKey::derive(&secret),
        })
    }

    /// Builds one report now (see [`report::build`]).
    pub async fn build_report(&self) -> Result<Report> {
        report::build(
            &self.client,
            &self.config,
            &self.fallback_key,
            &self.metrics,
        )
        .await
    }

    /// Runs until done (dry run, one-shot) or until `stop` turns true (periodic).
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<Finished> {
        if self.config.dry_run {
            let report = self.build_report().await?;
            println!("{}", report::pretty(&report));
            return Ok(Finished::Ok);
        }
        let one_shot = self.config.period.is_zero();
        if !one_shot && !self.config.initial_delay_max.is_zero() {
            let delay = self
                .config
                .initial_delay_max
                .mul_f64(rand::rng().random_range(0.0..=1.0));
            tracing::info!(delay = ?delay, "waiting before the first report");
            if sleep_or_stop(delay, &mut stop).await {
                return Ok(Finished::Ok);
            }
        }
        loop {
            let period_started = Instant::now();
            let next_due = period_started + jittered(self.config.period);
            let deadline = if one_shot {
                period_started + self.config.retry_for
            } else {
                next_due
            };
            let outcome = self.report_once(deadline, &mut stop).await;
            self.metrics.count(outcome, unix_now());
            if one_shot {
                return Ok(match outcome {
                    ReportOutcome::delivered => Finished::Ok,
                    _ => Finished::Undelivered,
                });
            }
            if *stop.borrow() {
                return Ok(Finished::Ok);
            }
            let wait = next_due.saturating_duration_since(Instant::now());
            tracing::info!(next_in = ?wait, "next report");
            if sleep_or_stop(wait, &mut stop).await {
                return Ok(Finished::Ok);
            }
        }
    }

    async fn report_once(
        &self,
        deadline: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> ReportOutcome {
        let report = match self.build_report().await {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(%error, "no report this period");
                return ReportOutcome::error;
            }
        };
        let publisher = self
            .publisher
            .as_ref()
            .expect("a collector is configured unless --dry-run");
        let bytes = serde_json::to_vec(&report).expect("a report serializes");
        match publisher.deliver(&bytes, deadline, stop).await {
            Outcome::Delivered { attempts } => {
                tracing::info!(attempts, collector = %publisher.endpoint(), "report delivered");
                ReportOutcome::delivered
            }
            Outcome::Rejected { status, error } => {
                let error: String = error.chars().take(4096).collect();
                tracing::error!(status, collector_error = %error, "the collector refused the report; not retrying");
                ReportOutcome::rejected
            }
            Outcome::GaveUp {
                attempts,
                last_error,
            } => {
                tracing::error!(attempts, %last_error, "the report could not be delivered");
                ReportOutcome::failed
            }
            Outcome::Interrupted => {
                tracing::info!("stopping during delivery");
                ReportOutcome::failed
            }
        }
    }
}

/// The period lengthened or shortened at random by up to [`PERIOD_JITTER`].
pub fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + rand::rng().random_range(-PERIOD_JITTER..=PERIOD_JITTER))
}

/// Sleeps for `duration`; true when `stop` turned true first.
async fn sleep_or_stop(duration: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => *stop.borrow(),
        () = async { let _ = stop.wait_for(|stop| *stop).await; } => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_jittered_by_at_most_ten_percent() {
        let period = Duration::from_secs(86_400);
        let samples: Vec<Duration> = (0..1000).map(|_| jittered(period)).collect();
        assert!(
            samples
                .iter()
                .all(|d| { *d >= period.mul_f64(0.9) && *d <= period.mul_f64(1.1) })
        );
        assert!(samples.iter().any(|d| *d < period) && samples.iter().any(|d| *d > period));
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
