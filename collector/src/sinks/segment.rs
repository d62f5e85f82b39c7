//! Segment: `track` events through the HTTP API's batch call (`POST {endpoint}/v1/batch`, Basic
//! auth with the write key), `messageId` = report id so that Segment deduplicates resends.

use std::path::PathBuf;
use std::time::Duration;

use common::secret::Credential;
use common::time::{rfc3339, unix_now};
use common::wire::Verdict;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::http::{Wording, client, exchange, reachable};
use super::sink::{ItemOutcome, RequestLimits, Sent, Sink};
use super::summary::{analytics_id, summary};
use super::table::secret;
use crate::error::Result;
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
/// Bytes of the envelope around the events (an upper bound).
const ENVELOPE_BYTES: usize = 200;
/// What one batch request may carry: events joined by commas inside the envelope.
pub const LIMITS: RequestLimits = RequestLimits {
    max_bytes: MAX_REQUEST_BYTES,
    max_items: MAX_EVENTS,
    envelope_bytes: ENVELOPE_BYTES,
    item_overhead: 1,
};

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
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
    /// Time allowed for one request (default `30s`).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

fn default_endpoint() -> Url {
    "https://api.segment.io".parse().expect("a valid URL")
}

fn default_event() -> String {
    "Cluster Report".into()
}

/// Segment's answer: 2xx stored; network errors, 408, 410, 429, 460 and 5xx except 501, 505
/// and 511 are worth another try; 400 (and every other answer) is final.
pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        None | Some(408 | 410 | 429 | 460) => Verdict::Retry,
        Some(501 | 505 | 511) => Verdict::Dead,
        Some(500..=599) => Verdict::Retry,
        Some(_) => Verdict::Dead,
    }
}

/// How failures read: as Segment answered, or why it could not be reached.
const WORDING: Wording = Wording {
    answered: |status, _, body| format!("Segment answered {status}: {body}"),
    no_answer: |_, error| format!("Segment unreachable: {}", common::error_chain(error)),
    reads_body: true,
};

/// The Segment sink.
pub struct Segment {
    config: SegmentConfig,
    write_key: Credential,
    url: Url,
    http: reqwest::Client,
}

impl Segment {
    /// Builds the sink, resolving the write key.
    pub fn new(config: SegmentConfig) -> Result<Self> {
        let write_key = secret(
            &config.name,
            "write_key",
            config.write_key_env.as_deref(),
            config.write_key_file.as_deref(),
        )?;
        let url = config.endpoint.join("v1/batch").map_err(|source| {
            crate::error::Error::sink_context(&config.name, "`endpoint`", source)
        })?;
        let http = client(
            &config.name,
            config.timeout.unwrap_or(Duration::from_secs(30)),
        )?;
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

    fn request(&self, events: &[&[u8]]) -> (reqwest::RequestBuilder, usize) {
        let body = envelope(events);
        let bytes = body.len();
        let request = self
            .http
            .post(self.url.clone())
            .basic_auth(self.write_key.expose(), Some(""))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        (request, bytes)
    }
}

/// `{"batch": [events], "sentAt": now, "context": {"library": ...}}`.
fn envelope(events: &[&[u8]]) -> Vec<u8> {
    let sent_at = rfc3339(unix_now());
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

#[async_trait::async_trait]
impl Sink for Segment {
    fn max_batch(&self) -> usize {
        MAX_EVENTS * 4
    }

    fn flush_interval(&self) -> Duration {
        self.config.flush_interval.unwrap_or(Duration::from_secs(2))
    }

    async fn healthcheck(&self) -> Result<()> {
        // The API has no health endpoint and every batch records something: any HTTP answer
        // from the host proves it is reachable.
        reachable(&self.config.name, &self.http, &self.config.endpoint).await
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
        let mut groups = LIMITS.pack(&sizes);
        if more_waiting && groups.len() > 1 {
            let last = &groups[groups.len() - 1];
            let bytes = LIMITS.request_bytes(sizes[last.clone()].iter().copied());
            if (bytes as f64) < GOOD_FILL * MAX_REQUEST_BYTES as f64 {
                groups.pop(); // the tail waits for the next round, to fill its request
            }
        }
        let groups = groups.into_iter().map(|group| sendable[group].to_vec());
        sent.send_in_order(groups, |indexes: Vec<usize>| {
            let payload: Vec<&[u8]> = indexes.iter().map(|i| events[*i].as_slice()).collect();
            let (request, bytes) = self.request(&payload);
            exchange(&WORDING, request, bytes, payload.len(), |status, _| {
                verdict(status)
            })
        })
        .await;
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decisions() {
        use Verdict::{Dead, Delivered, Retry};
        let table = [
            (None, Retry),
            (Some(200), Delivered),
            (Some(400), Dead),
            (Some(401), Dead),
            (Some(404), Dead),
            (Some(408), Retry),
            (Some(410), Retry),
            (Some(413), Dead),
            (Some(429), Retry),
            (Some(460), Retry),
            (Some(500), Retry),
            (Some(501), Dead),
            (Some(502), Retry),
            (Some(503), Retry),
            (Some(505), Dead),
            (Some(511), Dead),
        ];
        for (status, expected) in table {
            assert_eq!(verdict(status), expected, "{status:?}");
        }
    }

    #[test]
    fn packing_respects_the_byte_and_event_caps() {
        let sizes = vec![1_000; 1_200];
        let groups = LIMITS.pack(&sizes);
        for group in &groups {
            let bytes: usize =
                sizes[group.clone()].iter().map(|s| s + 1).sum::<usize>() + ENVELOPE_BYTES;
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
        }
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 1_200);
        assert_eq!(groups[0].len(), 474);

        let small = vec![10; 6_000];
        let groups = LIMITS.pack(&small);
        assert!(groups.iter().all(|g| g.len() <= MAX_EVENTS));
        assert_eq!(groups.len(), 3);
        assert!(LIMITS.pack(&[]).is_empty());
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
