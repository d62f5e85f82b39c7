//! The metrics under the names README and the alerts use.

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
        "collector_store_log_restart_duration_seconds_bucket",
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
