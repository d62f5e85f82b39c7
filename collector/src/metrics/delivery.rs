//! The delivery engine's label sets: per sink, and per sink and outcome.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

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
