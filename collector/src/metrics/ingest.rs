//! The ingest path's label sets: requests by outcome and route, and what admitting reports
//! dropped or rewrote.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

/// What happened to one ingest request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue, strum::VariantArray)]
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
