//! Prometheus metrics, all prefixed `collector_`; README lists every name (alerts depend on them).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use common::extensions::DropReason;
use common::sanitize::{Changes, Field};

/// What happened to one ingest request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// Stored (204).
    accepted,
    /// Same id and content as a stored report (204, stored once).
    duplicate,
    /// Same id as a stored report but different content; the first copy is kept (409).
    conflict,
    /// Malformed or invalid (400).
    invalid,
    /// Over the wire or decompressed size limit (413).
    too_large,
    /// Not `application/json`, or an unsupported `Content-Encoding` (415).
    unsupported_media,
    /// Over the cluster's rate limit (429).
    rate_limited,
    /// Store unavailable, overloaded or shutting down (503).
    unavailable,
    /// Missing or wrong ingest token (401).
    unauthorized,
    /// Not completed within the request timeout (408).
    timeout,
}

/// Label set `{outcome}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The outcome.
    pub outcome: Outcome,
}

/// Label set `{route, status}` of the request latency histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// Matched route, e.g. `/api/v1/clusters/{id}`; `unmatched` for 404s.
    pub route: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// Label set `{reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why the extension was dropped.
    pub reason: &'static str,
}

/// Label set `{field}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FieldLabels {
    /// Wire name of the rewritten field.
    pub field: &'static str,
}

/// Label set `{sink, type}` of the per-sink metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SinkLabels {
    /// Sink name.
    pub sink: String,
    /// Sink type.
    pub r#type: &'static str,
}

/// What became of deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DeliveryOutcome {
    /// The sink confirmed.
    delivered,
    /// Failed, queued again.
    retried,
    /// Dead-lettered.
    dead,
}

/// Label set `{sink, type, outcome}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// Sink name.
    pub sink: String,
    /// Sink type.
    pub r#type: &'static str,
    /// Outcome.
    pub outcome: DeliveryOutcome,
}

/// Label set of `collector_build_info`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    schema: &'static str,
}

/// Every metric the collector exports.
pub struct Metrics {
    registry: Registry,
    /// `collector_reports_total{outcome}`
    pub reports: Family<OutcomeLabels, Counter>,
    /// `collector_http_request_duration_seconds{route,status}`
    pub request_duration: Family<RouteLabels, Histogram>,
    /// `collector_store_commit_duration_seconds`
    pub commit_duration: Histogram,
    /// `collector_store_commit_group_size`: reports per committed transaction.
    pub commit_group_size: Histogram,
    /// `collector_unknown_fields_dropped_total`
    pub unknown_fields_dropped: Counter,
    /// `collector_extensions_dropped_total{reason}`
    pub extensions_dropped: Family<ReasonLabels, Counter>,
    /// `collector_fields_sanitized_total{field}`
    pub fields_sanitized: Family<FieldLabels, Counter>,
    /// `collector_store_size_bytes`: database plus write-ahead log.
    pub store_size: Gauge,
    /// `collector_store_available`: 1 while the store accepts writes.
    pub store_available: Gauge,
    /// `collector_store_reports`: reports in the store.
    pub store_reports: Gauge,
    /// `collector_reports_pruned_total`: deleted by retention.
    pub reports_pruned: Counter,
    /// `collector_reports_erased_total`: deleted by cluster opt-out.
    pub reports_erased: Counter,
    /// `collector_rate_limiter_tracked_clusters`
    pub rate_limiter_tracked: Gauge,
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
        let reports = Family::<OutcomeLabels, Counter>::default();
        registry.register("reports", "Ingest requests by outcome", reports.clone());
        let request_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from request to response, by route and status",
            Unit::Seconds,
            request_duration.clone(),
        );
        let commit_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register_with_unit(
            "store_commit_duration",
            "Time to commit one group of reports durably",
            Unit::Seconds,
            commit_duration.clone(),
        );
        let commit_group_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "store_commit_group_size",
            "Reports committed per transaction (group commit)",
            commit_group_size.clone(),
        );
        let unknown_fields_dropped = Counter::default();
        registry.register(
            "unknown_fields_dropped",
            "JSON fields the report format does not know, dropped before storing",
            unknown_fields_dropped.clone(),
        );
        let extensions_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "extensions_dropped",
            "Extensions left out of accepted reports, by reason",
            extensions_dropped.clone(),
        );
        let fields_sanitized = Family::<FieldLabels, Counter>::default();
        registry.register(
            "fields_sanitized",
            "Field values the privacy sanitizer rewrote or dropped, by field",
            fields_sanitized.clone(),
        );
        let store_size = Gauge::default();
        registry.register_with_unit(
            "store_size",
            "Size of the embedded store on disk (database and write-ahead log)",
            Unit::Bytes,
            store_size.clone(),
        );
        let store_available = Gauge::default();
        registry.register(
            "store_available",
            "1 while the store accepts writes, 0 when it is full or unwritable",
            store_available.clone(),
        );
        let store_reports = Gauge::default();
        registry.register(
            "store_reports",
            "Reports in the store",
            store_reports.clone(),
        );
        let reports_pruned = Counter::default();
        registry.register(
            "reports_pruned",
            "Reports deleted because they outlived the retention period",
            reports_pruned.clone(),
        );
        let reports_erased = Counter::default();
        registry.register(
            "reports_erased",
            "Reports deleted by a cluster's opt-out (DELETE /api/v1/clusters/{id})",
            reports_erased.clone(),
        );
        let rate_limiter_tracked = Gauge::default();
        registry.register(
            "rate_limiter_tracked_clusters",
            "Cluster ids whose rate-limit state is held in memory",
            rate_limiter_tracked.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Deliveries to sinks by outcome (delivered, retried, dead)",
            deliveries.clone(),
        );
        let outbox_depth = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "outbox_depth",
            "Deliveries waiting for their sink",
            outbox_depth.clone(),
        );
        let outbox_oldest = Family::<SinkLabels, Gauge>::default();
        registry.register_with_unit(
            "outbox_oldest",
            "Age of the oldest delivery waiting for its sink",
            Unit::Seconds,
            outbox_oldest.clone(),
        );
        let outbox_dead = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "outbox_dead",
            "Deliveries dead-lettered (see GET /api/v1/deliveries?state=dead)",
            outbox_dead.clone(),
        );
        let sink_request_duration = Family::<SinkLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "sink_request_duration",
            "Time from a request to a sink to its answer",
            Unit::Seconds,
            sink_request_duration.clone(),
        );
        let sink_request_bytes = Family::<SinkLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1024.0, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "sink_request",
            "Body size of each request to a sink (batch fill)",
            Unit::Bytes,
            sink_request_bytes.clone(),
        );
        let sink_request_items = Family::<SinkLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1.0, 2.0, 13))) as fn() -> Histogram,
        );
        registry.register(
            "sink_request_items",
            "Deliveries carried by each request to a sink",
            sink_request_items.clone(),
        );
        let sink_up = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "sink_up",
            "1 when the sink's startup healthcheck passed, 0 when it failed",
            sink_up.clone(),
        );
        registry.register(
            "build",
            "Version of this collector and of the report schema it writes",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                schema: common::report::SCHEMA_VERSION,
            }),
        );
        // Pre-create every label value so dashboards and alerts see zeros, not gaps.
        for outcome in [
            Outcome::accepted,
            Outcome::duplicate,
            Outcome::conflict,
            Outcome::invalid,
            Outcome::too_large,
            Outcome::unsupported_media,
            Outcome::rate_limited,
            Outcome::unavailable,
            Outcome::unauthorized,
            Outcome::timeout,
        ] {
            let _ = reports.get_or_create(&OutcomeLabels { outcome });
        }
        for reason in DropReason::ALL {
            let _ = extensions_dropped.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            });
        }
        for field in Field::all() {
            let _ = fields_sanitized.get_or_create(&FieldLabels {
                field: field.as_str(),
            });
        }
        Metrics {
            registry,
            reports,
            request_duration,
            commit_duration,
            commit_group_size,
            unknown_fields_dropped,
            extensions_dropped,
            fields_sanitized,
            store_size,
            store_available,
            store_reports,
            reports_pruned,
            reports_erased,
            rate_limiter_tracked,
            deliveries,
            outbox_depth,
            outbox_oldest,
            outbox_dead,
            sink_request_duration,
            sink_request_bytes,
            sink_request_items,
            sink_up,
        }
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_names_are_exported() {
        let metrics = Metrics::new();
        metrics.commit_duration.observe(0.001);
        metrics.commit_group_size.observe(3.0);
        metrics
            .request_duration
            .get_or_create(&RouteLabels {
                route: "/api/v1",
                status: 204,
            })
            .observe(0.002);
        let text = metrics.encode();
        for name in [
            "collector_reports_total{outcome=\"accepted\"} 0",
            "collector_reports_total{outcome=\"unavailable\"} 0",
            "collector_http_request_duration_seconds_bucket",
            "collector_store_commit_duration_seconds_bucket",
            "collector_store_commit_group_size_bucket",
            "collector_unknown_fields_dropped_total",
            "collector_extensions_dropped_total{reason=\"invalid_name\"}",
            "collector_fields_sanitized_total{field=\"osImage\"}",
            "collector_store_size_bytes",
            "collector_store_available",
            "collector_store_reports",
            "collector_reports_pruned_total",
            "collector_reports_erased_total",
            "collector_rate_limiter_tracked_clusters",
            "collector_build_info{version=",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
