//! Where stored reports are forwarded: one module per sink, all behind the [`Sink`] trait, built
//! from the `[[sink]]` tables of the configuration file.

mod bigquery;
mod config;
mod file;
mod http_forward;
mod segment;
mod summary;
mod woopra;

use std::fmt;
use std::time::Duration;

use crate::store::OutboxItem;

pub use config::{Configured, SinkConfig, load};
pub use summary::{analytics_id, summary};

/// What became of one delivery in one `send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// The sink confirmed it.
    Delivered,
    /// Failed; worth another try.
    Retry(String),
    /// Failed for good (the sink refused it, or it can never be sent).
    Dead(String),
    /// Not sent this time (it did not fit a well-filled request); stays queued.
    Deferred,
}

/// One request made to a sink, for metrics (send latency, batch fill).
#[derive(Debug, Clone, Copy)]
pub struct RequestStats {
    /// Body bytes.
    pub bytes: usize,
    /// Deliveries it carried.
    pub items: usize,
    /// Time to the answer.
    pub duration: Duration,
}

/// The result of handing a batch to a sink.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// One outcome per delivery, in order.
    pub outcomes: Vec<ItemOutcome>,
    /// The sink asked to wait this long before trying again (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The requests made.
    pub requests: Vec<RequestStats>,
}

impl Sent {
    /// Every delivery gets the same outcome.
    pub fn all(items: usize, outcome: ItemOutcome) -> Self {
        Sent {
            outcomes: vec![outcome; items],
            ..Sent::default()
        }
    }
}

/// A destination for reports.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Most deliveries handed to one [`Sink::send`].
    fn max_batch(&self) -> usize;

    /// How long a partial batch may wait for more reports before it is sent anyway.
    fn flush_interval(&self) -> Duration;

    /// Checks at startup that the sink is reachable and configured (creating what it needs,
    /// such as a BigQuery table). A failure is logged and exported, not fatal.
    async fn healthcheck(&self) -> Result<(), String>;

    /// Sends `items`. `more_waiting` says the batch was full (more deliveries are queued), so a
    /// sink may defer a tail that would make a poorly filled request.
    async fn send(&self, items: &[OutboxItem], more_waiting: bool) -> Sent;
}

/// A secret (write key, token) read from an environment variable or a file. `Debug` and
/// `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// The secret itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The delay before retry `attempt` (1-based): full jitter over a doubling window from 1 s,
/// capped at `cap`.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    use rand::Rng;
    let window = Duration::from_secs(1)
        .saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .min(cap);
    window.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// Seconds from a `Retry-After` header (capped at an hour); HTTP dates are not honoured.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| Duration::from_secs(seconds.min(3600)))
}

/// Any HTTP answer from `url` (even an error status) proves the host is reachable.
pub async fn reachable(http: &reqwest::Client, url: &url::Url) -> Result<(), String> {
    http.get(url.clone())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{url} is unreachable: {e}"))
}

/// Unix seconds as RFC 3339 (`2026-11-21T15:00:00Z`).
pub fn rfc3339(unix_seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(unix_seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print() {
        let key = Credential("sk_live_123".into());
        assert_eq!(format!("{key:?} {key}"), "[redacted] [redacted]");
        assert_eq!(key.expose(), "sk_live_123");
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
