//! Prometheus metrics, all prefixed `collector_`; README lists every name (alerts depend on them).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use buckets::{count_buckets, latency_buckets, sink_latency_buckets, size_buckets};
use common::extensions::DropReason;
use common::sanitize::{Changes, Field};

mod buckets;
mod delivery;
mod ingest;

pub use delivery::{DeliveryLabels, DeliveryOutcome, SinkLabels};
pub use ingest::{
    FieldLabels, IngestCounts, IngestSummary, Limit, LimitLabels, Outcome, OutcomeLabels,
    ReasonLabels, RefusalLog, RouteLabels,
};

/// Every metric the collector exports.
pub struct Metrics {
    registry: Registry,
    /// Ingest answers since the last summary line of the log.
    pub ingest_summary: IngestSummary,
    /// Expected refusals, logged at most once a second per kind.
    refusals: RefusalLog,
    /// `collector_reports_total{outcome}`
    pub reports: Family<OutcomeLabels, Counter>,
    /// `collector_http_request_duration_seconds{route,status}`
    pub request_duration: Family<RouteLabels, Histogram>,
    /// `collector_store_commit_duration_seconds`
    pub commit_duration: Histogram,
    /// `collector_store_commit_group_size`: reports per committed transaction.
    pub commit_group_size: Histogram,
    /// `collector_store_log_restart_duration_seconds`: the writer's checkpoints between groups.
    pub log_restart_duration: Histogram,
    /// `collector_unknown_fields_dropped_total`
    pub unknown_fields_dropped: Counter,
    /// `collector_extensions_dropped_total{reason}`
    pub extensions_dropped: Family<ReasonLabels, Counter>,
    /// `collector_fields_sanitized_total{field}`
    pub fields_sanitized: Family<FieldLabels, Counter>,
    /// `collector_store_size_bytes`: database plus write-ahead log.
    pub store_size: Gauge,
    /// Bytes of the memory budget charged by requests in flight.
    pub inflight_memory: Gauge,
    /// Ingest requests answered 503 because their memory could not be charged in time.
    pub memory_budget_refusals: Counter,
    /// `collector_store_available`: 1 while the store accepts writes.
    pub store_available: Gauge,
    /// `collector_store_reports`: reports in the store.
    pub store_reports: Gauge,
    /// `collector_reports_pruned_total`: deleted by retention.
    pub reports_pruned: Counter,
    /// `collector_reports_erased_total`: deleted by cluster opt-out.
    pub reports_erased: Counter,
    /// `collector_reports_imported_total`: stored through `POST /api/v1/import`.
    pub reports_imported: Counter,
    /// `collector_stats_rollup_duration_seconds`: one run of the weekly statistics' rollup.
    pub stats_rollup_duration: Histogram,
    /// `collector_stats_rolled_up_reports_total`
    pub stats_rolled_up_reports: Counter,
    /// `collector_stats_published_timestamp_seconds`: when the last rollup finished.
    pub stats_published: Gauge,
    /// `collector_rate_limiter_tracked_clusters`
    pub rate_limiter_tracked: Gauge,
    /// Sources whose per-source limit state is in memory.
    pub source_limiter_tracked: Gauge,
    /// Reports refused (429) by each rate limit.
    pub rate_limited: Family<LimitLabels, Counter>,
    /// `collector_deliveries_total{sink,type,outcome}`
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// `collector_outbox_depth{sink,type}`: pending deliveries.
    pub outbox_depth: Family<SinkLabels, Gauge>,
    /// `collector_outbox_oldest_seconds{sink,type}`: age of the oldest pending delivery.
    pub outbox_oldest: Family<SinkLabels, Gauge>,
    /// `collector_outbox_dead{sink,type}`: dead-lettered deliveries.
    pub outbox_dead: Family<SinkLabels, Gauge>,
    /// `collector_sink_request_duration_seconds{sink,type}`
    pub sink_request_duration: Family<SinkLabels, Histogram>,
    /// `collector_sink_request_bytes{sink,type}`: body size of each request (batch fill).
    pub sink_request_bytes: Family<SinkLabels, Histogram>,
    /// `collector_sink_request_items{sink,type}`: deliveries in each request.
    pub sink_request_items: Family<SinkLabels, Histogram>,
    /// `collector_sink_up{sink,type}`: 1 when the startup healthcheck passed.
    pub sink_up: Family<SinkLabels, Gauge>,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("collector");
        common::cli::register_build_info(&mut registry, "collector");
        let r = &mut registry;
        let metrics = Metrics {
            reports: register(
                r,
                "reports",
                "Ingest requests by outcome",
                None,
                Family::default(),
            ),
            request_duration: register(
                r,
                "http_request_duration",
                "Time from request to response, by route and status",
                Some(Unit::Seconds),
                Family::new_with_constructor(latency_buckets as fn() -> Histogram),
            ),
            commit_duration: register(
                r,
                "store_commit_duration",
                "Time to commit one group of reports durably",
                Some(Unit::Seconds),
                Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            ),
            commit_group_size: register(
                r,
                "store_commit_group_size",
                "Reports committed per transaction (group commit)",
                None,
                Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            ),
            log_restart_duration: register(
                r,
                "store_log_restart_duration",
                "Time the writer spent between two groups copying the last frames of the \
                 write-ahead log, so that its next commit starts the log over",
                Some(Unit::Seconds),
                Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            ),
            unknown_fields_dropped: register(
                r,
                "unknown_fields_dropped",
                "JSON fields the report format does not know, dropped before storing",
                None,
                Counter::default(),
            ),
            extensions_dropped: register(
                r,
                "extensions_dropped",
                "Extensions left out of accepted reports, by reason",
                None,
                Family::default(),
            ),
            fields_sanitized: register(
                r,
                "fields_sanitized",
                "Field values the privacy sanitizer rewrote or dropped, by field",
                None,
                Family::default(),
            ),
            inflight_memory: register(
                r,
                "inflight_memory",
                "Memory charged to the budget by ingest requests in flight (--max-inflight-memory)",
                Some(Unit::Bytes),
                Gauge::default(),
            ),
            memory_budget_refusals: register(
                r,
                "memory_budget_refusals",
                "Ingest requests answered 503 because their memory could not be charged within 100 ms",
                None,
                Counter::default(),
            ),
            store_size: register(
                r,
                "store_size",
                "Size of the embedded store on disk (database and write-ahead log)",
                Some(Unit::Bytes),
                Gauge::default(),
            ),
            store_available: register(
                r,
                "store_available",
                "1 while the store accepts writes, 0 when it is full or unwritable",
                None,
                Gauge::default(),
            ),
            store_reports: register(
                r,
                "store_reports",
                "Reports in the store",
                None,
                Gauge::default(),
            ),
            reports_pruned: register(
                r,
                "reports_pruned",
                "Reports deleted because they outlived the retention period",
                None,
                Counter::default(),
            ),
            reports_erased: register(
                r,
                "reports_erased",
                "Reports deleted by a cluster's opt-out (DELETE /api/v1/clusters/{id})",
                None,
                Counter::default(),
            ),
            reports_imported: register(
                r,
                "reports_imported",
                "Reports stored through POST /api/v1/import",
                None,
                Counter::default(),
            ),
            stats_rollup_duration: register(
                r,
                "stats_rollup_duration",
                "Time of one rollup of the weekly statistics: folding new reports, republishing",
                Some(Unit::Seconds),
                Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            ),
            stats_rolled_up_reports: register(
                r,
                "stats_rolled_up_reports",
                "Reports folded into the weekly statistics",
                None,
                Counter::default(),
            ),
            stats_published: register(
                r,
                "stats_published_timestamp",
                "Unix time when the weekly statistics were last rolled up and published",
                Some(Unit::Seconds),
                Gauge::default(),
            ),
            rate_limiter_tracked: register(
                r,
                "rate_limiter_tracked_clusters",
                "Cluster ids whose rate-limit state is held in memory",
                None,
                Gauge::default(),
            ),
            source_limiter_tracked: register(
                r,
                "source_limiter_tracked_sources",
                "Source addresses (keyed hashes) whose per-source limit state is held in memory",
                None,
                Gauge::default(),
            ),
            rate_limited: register(
                r,
                "rate_limited",
                "Reports refused with 429, by the limit that refused them",
                None,
                Family::default(),
            ),
            deliveries: register(
                r,
                "deliveries",
                "Deliveries to sinks by outcome (delivered, retried, dead)",
                None,
                Family::default(),
            ),
            outbox_depth: register(
                r,
                "outbox_depth",
                "Deliveries waiting for their sink",
                None,
                Family::default(),
            ),
            outbox_oldest: register(
                r,
                "outbox_oldest",
                "Age of the oldest delivery waiting for its sink",
                Some(Unit::Seconds),
                Family::default(),
            ),
            outbox_dead: register(
                r,
                "outbox_dead",
                "Deliveries dead-lettered (see GET /api/v1/deliveries?state=dead)",
                None,
                Family::default(),
            ),
            sink_request_duration: register(
                r,
                "sink_request_duration",
                "Time from a request to a sink to its answer",
                Some(Unit::Seconds),
                Family::new_with_constructor(sink_latency_buckets as fn() -> Histogram),
            ),
            sink_request_bytes: register(
                r,
                "sink_request",
                "Body size of each request to a sink (batch fill)",
                Some(Unit::Bytes),
                Family::new_with_constructor(size_buckets as fn() -> Histogram),
            ),
            sink_request_items: register(
                r,
                "sink_request_items",
                "Deliveries carried by each request to a sink",
                None,
                Family::new_with_constructor(count_buckets as fn() -> Histogram),
            ),
            sink_up: register(
                r,
                "sink_up",
                "1 when the sink's startup healthcheck passed, 0 when it failed",
                None,
                Family::default(),
            ),
            registry,
            ingest_summary: IngestSummary::default(),
            refusals: RefusalLog::default(),
        };
        // Pre-create every label value so dashboards and alerts see zeros, not gaps.
        for outcome in <Outcome as strum::VariantArray>::VARIANTS {
            let _ = metrics
                .reports
                .get_or_create(&OutcomeLabels { outcome: *outcome });
        }
        for limit in <Limit as strum::VariantArray>::VARIANTS {
            let _ = metrics
                .rate_limited
                .get_or_create(&LimitLabels { limit: *limit });
        }
        for reason in DropReason::ALL {
            let _ = metrics.extensions_dropped.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            });
        }
        for field in Field::all() {
            let _ = metrics.fields_sanitized.get_or_create(&FieldLabels {
                field: field.as_str(),
            });
        }
        metrics
    }

    /// Creates every per-sink series of `sink`, so that dashboards see zeros, not gaps.
    pub fn init_sink(&self, sink: &SinkLabels) {
        for gauge in [
            &self.outbox_depth,
            &self.outbox_oldest,
            &self.outbox_dead,
            &self.sink_up,
        ] {
            let _ = gauge.get_or_create(sink);
        }
        for histogram in [
            &self.sink_request_duration,
            &self.sink_request_bytes,
            &self.sink_request_items,
        ] {
            let _ = histogram.get_or_create(sink);
        }
        for outcome in [
            DeliveryOutcome::delivered,
            DeliveryOutcome::retried,
            DeliveryOutcome::dead,
        ] {
            let _ = self.deliveries.get_or_create(&DeliveryLabels {
                sink: sink.sink.clone(),
                r#type: sink.r#type,
                outcome,
            });
        }
    }

    /// Counts one ingest request.
    pub fn count_report(&self, outcome: Outcome) {
        self.reports.get_or_create(&OutcomeLabels { outcome }).inc();
        self.ingest_summary.count(outcome);
        self.refusals.note(outcome);
    }

    /// Counts one report refused by the rate limit named `limit`.
    pub fn count_rate_limited(&self, limit: Limit) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// Counts what admitting one report dropped or rewrote.
    pub fn count_admission(&self, unknown_fields: usize, changes: &Changes) {
        self.unknown_fields_dropped.inc_by(unknown_fields as u64);
        for (_, reason) in &changes.dropped_extensions {
            self.extensions_dropped
                .get_or_create(&ReasonLabels {
                    reason: reason.as_str(),
                })
                .inc();
        }
        for field in Field::all() {
            let n = changes.rewritten(field);
            if n > 0 {
                self.fields_sanitized
                    .get_or_create(&FieldLabels {
                        field: field.as_str(),
                    })
                    .inc_by(u64::from(n));
            }
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Registers `metric` under `name` (with its `unit`, if any) and returns it.
fn register<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    metric: M,
) -> M {
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, metric.clone()),
        None => registry.register(name, help, metric.clone()),
    }
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
