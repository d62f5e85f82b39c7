//! Prometheus metrics (prefix `volunteer_`) and the `/healthz` endpoint, served on
//! `--metrics-listen` so that an alert can fire when reporting keeps failing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::{Error, Result};

/// How one reporting period ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReportOutcome {
    /// The collector stored the report.
    delivered,
    /// The collector refused it.
    rejected,
    /// It could not be delivered before the next period (or `--retry-for`).
    failed,
    /// No report could be built (e.g. no cluster id).
    error,
}

/// Label set `{outcome}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: ReportOutcome,
}

/// Every metric the volunteer exports.
pub struct Metrics {
    registry: Registry,
    reports: Family<OutcomeLabels, Counter>,
    /// `volunteer_last_success_timestamp_seconds`
    pub last_success: Gauge,
    /// `volunteer_consecutive_failures`
    pub consecutive_failures: Gauge,
    /// `volunteer_snapshot_duration_seconds`
    pub snapshot_duration: Histogram,
    /// `volunteer_api_requests_total`: requests made to the Kubernetes API server.
    pub api_requests: Counter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("volunteer");
        let reports = Family::<OutcomeLabels, Counter>::default();
        registry.register("reports", "Reporting periods by outcome", reports.clone());
        let last_success = Gauge::default();
        registry.register_with_unit(
            "last_success_timestamp",
            "Unix time of the last report the collector stored",
            Unit::Seconds,
            last_success.clone(),
        );
        let consecutive_failures = Gauge::default();
        registry.register(
            "consecutive_failures",
            "Reporting periods in a row that did not deliver a report",
            consecutive_failures.clone(),
        );
        let snapshot_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register_with_unit(
            "snapshot_duration",
            "Time to read the cluster for one report",
            Unit::Seconds,
            snapshot_duration.clone(),
        );
        let api_requests = Counter::default();
        registry.register(
            "api_requests",
            "Requests made to the Kubernetes API server",
            api_requests.clone(),
        );
        common::cli::register_build_info(&mut registry, "volunteer");
        for outcome in [
            ReportOutcome::delivered,
            ReportOutcome::rejected,
            ReportOutcome::failed,
            ReportOutcome::error,
        ] {
            let _ = reports.get_or_create(&OutcomeLabels { outcome });
        }
        Metrics {
            registry,
            reports,
            last_success,
            consecutive_failures,
            snapshot_duration,
            api_requests,
        }
    }

    /// Records how a period ended.
    pub fn count(&self, outcome: ReportOutcome, now: i64) {
        self.reports.get_or_create(&OutcomeLabels { outcome }).inc();
        if outcome == ReportOutcome::delivered {
            self.last_success.set(now);
            self.consecutive_failures.set(0);
        } else {
            self.consecutive_failures.inc();
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `/metrics` and `/healthz`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                        .into_response()
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
}

/// Binds `address` and serves the metrics router until `stop` turns true.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind { address, source })?;
    tracing::info!(address = %listener.local_addr().unwrap_or(address), "serving metrics");
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router(metrics))
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "metrics server failed");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_move_the_failure_streak_and_last_success() {
        let metrics = Metrics::new();
        metrics.count(ReportOutcome::failed, 10);
        metrics.count(ReportOutcome::rejected, 20);
        assert_eq!(metrics.consecutive_failures.get(), 2);
        metrics.count(ReportOutcome::delivered, 30);
        assert_eq!(metrics.consecutive_failures.get(), 0);
        assert_eq!(metrics.last_success.get(), 30);
        let text = metrics.encode();
        for name in [
            "volunteer_reports_total{outcome=\"delivered\"} 1",
            "volunteer_reports_total{outcome=\"failed\"} 1",
            "volunteer_last_success_timestamp_seconds 30",
            "volunteer_consecutive_failures 0",
            "volunteer_snapshot_duration_seconds_count 0",
            "volunteer_api_requests_total 0",
            "volunteer_build_info{",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }
}
