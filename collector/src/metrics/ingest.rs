//! The ingest path's label sets: requests by outcome and route, and what admitting reports
//! dropped or rewrote.

use std::sync::atomic::{AtomicU64, Ordering};

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

/// The rate limit that refused a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue, strum::VariantArray)]
#[allow(non_camel_case_types)]
pub enum Limit {
    /// The cluster id's reports an hour.
    cluster,
    /// The source address's reports a minute.
    source,
    /// The source address's new cluster ids an hour.
    source_new_clusters,
}

/// Label set `{limit}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LimitLabels {
    /// Which limit.
    pub limit: Limit,
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

/// Ingest answers since the last summary line, for the log (the counters are for Prometheus).
#[derive(Debug, Default)]
pub struct IngestSummary {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicU64,
}

/// What [`IngestSummary::take`] hands the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Stored.
    pub accepted: u64,
    /// Already stored (resends).
    pub duplicates: u64,
    /// Refused with a 4xx: invalid, too large, unauthorized, rate-limited, ...
    pub refused: u64,
    /// Answered 503: the store unavailable, overloaded or shutting down.
    pub unavailable: u64,
}

impl IngestSummary {
    /// Counts one answer.
    pub fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::accepted => &self.accepted,
            Outcome::duplicate => &self.duplicates,
            Outcome::unavailable => &self.unavailable,
            _ => &self.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last call, starting again from zero.
    pub fn take(&self) -> IngestCounts {
        IngestCounts {
            accepted: self.accepted.swap(0, Ordering::Relaxed),
            duplicates: self.duplicates.swap(0, Ordering::Relaxed),
            refused: self.refused.swap(0, Ordering::Relaxed),
            unavailable: self.unavailable.swap(0, Ordering::Relaxed),
        }
    }
}

impl IngestCounts {
    /// True when nothing arrived.
    pub fn is_empty(&self) -> bool {
        *self == IngestCounts::default()
    }
}

/// Refusals a client is expected to act on (413, 429, 503, 408): each kind logged at WARN at most
/// once a second, with how many there were since its last line, so that a burst of hundreds is
/// a line a second rather than a line each.
#[derive(Debug)]
pub struct RefusalLog {
    started: std::time::Instant,
    kinds: [RefusalKind; 4],
}

#[derive(Debug, Default)]
struct RefusalKind {
    since_logged: AtomicU64,
    /// Milliseconds from `started` of the last line, plus one (0: never logged).
    logged_at: AtomicU64,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog {
            started: std::time::Instant::now(),
            kinds: Default::default(),
        }
    }
}

impl RefusalLog {
    /// Notes one answer; logs when it is a refusal of a kind not logged in the last second.
    pub fn note(&self, outcome: Outcome) {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        if let Some((status, refused, what)) = self.due(outcome, now) {
            tracing::warn!(status, refused, "ingest requests refused: {what}");
        }
    }

    /// Counts `outcome` at `now` (milliseconds, from 1); when a line is due, its status, how many
    /// it covers and what they were.
    fn due(&self, outcome: Outcome, now: u64) -> Option<(u16, u64, &'static str)> {
        let (index, status, what) = match outcome {
            Outcome::too_large => (0, 413, "over a size limit"),
            Outcome::rate_limited => (
                1,
                429,
                "over a rate limit (by limit: collector_rate_limited_total)",
            ),
            Outcome::unavailable => (2, 503, "the store unavailable or the collector overloaded"),
            Outcome::timeout => (3, 408, "not completed within the request timeout"),
            _ => return None,
        };
        let kind = &self.kinds[index];
        kind.since_logged.fetch_add(1, Ordering::Relaxed);
        let last = kind.logged_at.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= 1_000;
        let won = due
            && kind
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        won.then(|| (status, kind.since_logged.swap(0, Ordering::Relaxed), what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_since_it_was_last_taken() {
        let summary = IngestSummary::default();
        for outcome in [
            Outcome::accepted,
            Outcome::accepted,
            Outcome::duplicate,
            Outcome::invalid,
            Outcome::rate_limited,
            Outcome::unavailable,
        ] {
            summary.count(outcome);
        }
        let counts = summary.take();
        assert_eq!(
            counts,
            IngestCounts {
                accepted: 2,
                duplicates: 1,
                refused: 2,
                unavailable: 1
            }
        );
        assert!(summary.take().is_empty());
    }

    #[test]
    fn a_burst_of_refusals_is_one_line_a_second_per_kind() {
        let log = RefusalLog::default();
        assert_eq!(log.due(Outcome::accepted, 1), None);
        assert_eq!(log.due(Outcome::unavailable, 1).map(|d| d.1), Some(1));
        for ms in 2..1_000 {
            assert_eq!(log.due(Outcome::unavailable, ms), None, "at {ms} ms");
        }
        // Another kind has its own second.
        assert_eq!(log.due(Outcome::rate_limited, 500).map(|d| d.0), Some(429));
        // A second after the first line: one line for the 998 held back and this one.
        assert_eq!(
            log.due(Outcome::unavailable, 1_001),
            Some((
                503,
                999,
                "the store unavailable or the collector overloaded"
            ))
        );
        assert_eq!(log.due(Outcome::unavailable, 1_002), None);
    }
}
