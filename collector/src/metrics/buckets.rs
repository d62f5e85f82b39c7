//! Bucket layouts of the collector's histograms.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Buckets of the HTTP request latency: 0.5 ms to 16 s.
pub(super) fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Buckets of a sink's request latency: 1 ms to 33 s.
pub(super) fn sink_latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Buckets of a sink request's body size: 1 KiB to 8 MiB.
pub(super) fn size_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1024.0, 2.0, 14))
}

/// Buckets of deliveries per sink request: 1 to 4096.
pub(super) fn count_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}
