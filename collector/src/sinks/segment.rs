//! Segment: `track` events through the HTTP API's batch call (`POST {endpoint}/v1/batch`, Basic
//! auth with the write key), `messageId` = report id so that Segment deduplicates resends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::config::{duration, secret};
use super::{
    Credential, ItemOutcome, RequestStats, Sent, Sink, analytics_id, retry_after, rfc3339, summary,
};
use crate::store::OutboxItem;

/// Largest batch request sent (Segment's limit is 500 KB; the official clients cap at 500,000
/// bytes, and 25 KB stay free for the envelope and any rounding).
pub const MAX_REQUEST_BYTES: usize = 475_000;
/// Most events in one batch request.
pub const MAX_EVENTS: usize = 2_500;
/// Largest single event Segment accepts.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// A request at least this full is worth sending while more events wait.
const GOOD_FILL: f64 = 0.90;

/// `[[sink]] type = "segment"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    /// Sink name.
    pub name: String,
    /// API base, e.g. `https://api.segment.io` or `https://events.eu1.segmentapis.com`.
    #[serde(default = "default_endpoint")]
    pub endpoint: Url,
    /// Environment variable holding the write key.
    pub write_key_env: Option<String>,
    /// File holding the write key.
    pub write_key_file: Option<PathBuf>,
    /// Event name (default `Cluster Report`).
    #[serde(default = "default_event")]
    pub event: String,
    /// Extension whose value is the `userId` (default: the cluster id).
    pub identity_extension: Option<String>,
    /// How long a partial batch waits for more reports (default `2s`).
    #[serde(default, deserialize_with = "duration")]
    pub flush_interval: Option<Duration>,
    /// Time allowed for one request (default `30s`).
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
}

fn default_endpoint() -> Url {
    "https://api.segment.io".parse().expect("a valid URL")
}

fn default_event() -> String {
    "Cluster Report".into()
}

/// Whether Segment's answer is worth another try: network errors, 408, 410, 429, 460 and 5xx
/// except 501, 505 and 511 are; 400 (and every other answer) is not.
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(408 | 410 | 429 | 460) => true,
        Some(501 | 505 | 511) => false,
        Some(code) => (500..=599).contains(&code),
    }
}

/// The Segment sink.
pub struct Segment {
    config: SegmentConfig,
    write_key: Credential,
    url: Url,
    http: reqwest::Client,
}

impl Segment {
    /// Builds the sink, resolving the write key.
    pub fn new(config: SegmentConfig) -> Result<Self, String> {
        let write_key = secret(
            "write_key",
            config.write_key_env.as_deref(),
            config.write_key_file.as_deref(),
        )?;
        let url = config
            .endpoint
            .join("v1/batch")
            .map_err(|e| format!("`endpoint`: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout.unwrap_or(Duration::from_secs(30)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Segment {
            config,
            write_key,
            url,
            http,
        })
    }

    /// The JSON of one `track` event.
    fn event(&self, item: &OutboxItem) -> Vec<u8> {
        let properties: Map<String, Value> = summary(item).into_iter().collect();
        serde_json::to_vec(&json!({
            "type": "track",
            "event": self.config.event,
            "userId": analytics_id(item, self.config.identity_extension.as_deref()),
            "messageId": item.id.to_string(),
            "timestamp": rfc3339(item.report_time),
            "properties": properties,
        }))
        .expect("an event serializes")
    }

    async fn post(
        &self,
        events: &[&[u8]],
    ) -> (Result<(), (bool, String)>, Option<Duration>, RequestStats) {
        let body = envelope(events);
        let started = Instant::now();
        let bytes = body.len();
        let answer = self
            .http
            .post(self.url.clone())
            .basic_auth(self.write_key.expose(), Some(""))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let stats = |duration| RequestStats {
            bytes,
            items: events.len(),
            duration,
        };
        match answer {
            Ok(response) if response.status().is_success() => {
                (Ok(()), None, stats(started.elapsed()))
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let wait = retry_after(response.headers());
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                let error = format!("Segment answered {status}: {text}");
                (
                    Err((retryable(Some(status)), error)),
                    wait,
                    stats(started.elapsed()),
                )
            }
            Err(error) => (
                Err((retryable(None), format!("Segment unreachable: {error}"))),
                None,
                stats(started.elapsed()),
            ),
        }
    }
}

/// `{"batch": [events], "sentAt": now, "context": {"library": ...}}`.
fn envelope(events: &[&[u8]]) -> Vec<u8> {
    let sent_at = rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default(),
    );
    let tail = format!(
        r#"],"sentAt":"{sent_at}","context":{{"library":{{"name":"k8s-usage-collector","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    );
    let mut body = Vec::with_capacity(MAX_REQUEST_BYTES);
    body.extend_from_slice(br#"{"batch":["#);
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event);
    }
    body.extend_from_slice(tail.as_bytes());
    body
}

/// Bytes of the envelope around the events (an upper bound).
const ENVELOPE_BYTES: usize = 200;

/// Splits event sizes into requests of at most [`MAX_REQUEST_BYTES`] and [`MAX_EVENTS`]; returns
/// index ranges.
pub fn pack(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut bytes = ENVELOPE_BYTES;
    for (i, size) in sizes.iter().enumerate() {
        let count = i - start;
        if count > 0 && (bytes + size + 1 > MAX_REQUEST_BYTES || count == MAX_EVENTS) {
            groups.push(start..i);
            start = i;
            bytes = ENVELOPE_BYTES;
        }
        bytes += size + 1;
    }
    if start < sizes.len() {
        groups.push(start..sizes.len());
    }
    groups
}

#[async_trait::async_trait]
impl Sink for Segment {
    fn max_batch(&self) -> usize {
        MAX_EVENTS * 4
    }

    fn flush_interval(&self) -> Duration {
        self.config.flush_interval.unwrap_or(Duration::from_secs(2))
    }

    async fn healthcheck(&self) -> Result<(), String> {
        // The API has no health endpoint and every batch records something: any HTTP answer
        // from the host proves it is reachable.
        super::reachable(&self.http, &self.config.endpoint).await
    }

    async fn send(&self, items: &[OutboxItem], more_waiting: bool) -> Sent {
        let mut sent = Sent::all(items.len(), ItemOutcome::Deferred);
        let events: Vec<Vec<u8>> = items.iter().map(|item| self.event(item)).collect();
        let mut sendable = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if event.len() > MAX_EVENT_BYTES {
                sent.outcomes[i] = ItemOutcome::Dead(format!(
                    "the event is {} bytes; Segment accepts at most {MAX_EVENT_BYTES}",
                    event.len()
                ));
            } else {
                sendable.push(i);
            }
        }
        let sizes: Vec<usize> = sendable.iter().map(|i| events[*i].len()).collect();
        let groups = pack(&sizes);
        let last = groups.len().saturating_sub(1);
        for (n, group) in groups.into_iter().enumerate() {
            let indexes = &sendable[group];
            let bytes: usize =
                indexes.iter().map(|i| events[*i].len() + 1).sum::<usize>() + ENVELOPE_BYTES;
            if more_waiting
                && n == last
                && n > 0
                && (bytes as f64) < GOOD_FILL * MAX_REQUEST_BYTES as f64
            {
                break; // the tail waits for the next round, to fill its request
            }
            let payload: Vec<&[u8]> = indexes.iter().map(|i| events[*i].as_slice()).collect();
            let (result, wait, stats) = self.post(&payload).await;
            sent.requests.push(stats);
            let outcome = match result {
                Ok(()) => ItemOutcome::Delivered,
                Err((true, error)) => ItemOutcome::Retry(error),
                Err((false, error)) => ItemOutcome::Dead(error),
            };
            let stop = matches!(outcome, ItemOutcome::Retry(_));
            for i in indexes {
                sent.outcomes[*i] = outcome.clone();
            }
            if stop {
                sent.retry_after = wait;
                break;
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decisions() {
        let table = [
            (None, true),
            (Some(400), false),
            (Some(401), false),
            (Some(404), false),
            (Some(408), true),
            (Some(410), true),
            (Some(413), false),
            (Some(429), true),
            (Some(460), true),
            (Some(500), true),
            (Some(501), false),
            (Some(502), true),
            (Some(503), true),
            (Some(505), false),
            (Some(511), false),
        ];
        for (status, expected) in table {
            assert_eq!(retryable(status), expected, "{status:?}");
        }
    }

    #[test]
    fn packing_respects_the_byte_and_event_caps() {
        let sizes = vec![1_000; 1_200];
        let groups = pack(&sizes);
        for group in &groups {
            let bytes: usize =
                sizes[group.clone()].iter().map(|s| s + 1).sum::<usize>() + ENVELOPE_BYTES;
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
        }
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 1_200);
        assert_eq!(groups[0].len(), 474);

        let small = vec![10; 6_000];
        let groups = pack(&small);
        assert!(groups.iter().all(|g| g.len() <= MAX_EVENTS));
        assert_eq!(groups.len(), 3);
        assert!(pack(&[]).is_empty());
    }

    #[test]
    fn the_envelope_is_json_with_every_event() {
        let events: Vec<&[u8]> = vec![br#"{"a":1}"#, br#"{"b":2}"#];
        let body: Value = serde_json::from_slice(&envelope(&events)).unwrap();
        assert_eq!(body["batch"].as_array().unwrap().len(), 2);
        assert!(body["sentAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(body["context"]["library"]["name"], "k8s-usage-collector");
        assert!(envelope(&events).len() <= 16 + ENVELOPE_BYTES);
    }
}
