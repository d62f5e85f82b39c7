//! Spartakus's `http` database: each report forwarded to another collector's `/api/v1` (gzipped,
//! optionally with a bearer token), whose idempotent ingest makes resends harmless.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::config::{duration, secret};
use super::{Credential, ItemOutcome, RequestStats, Sent, Sink, retry_after};
use crate::store::OutboxItem;

/// `[[sink]] type = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Sink name.
    pub name: String,
    /// The other collector's base URL; reports go to `<endpoint>/api/v1`.
    pub endpoint: Url,
    /// Environment variable holding its ingest token, if it has one.
    pub token_env: Option<String>,
    /// File holding its ingest token, if it has one.
    pub token_file: Option<PathBuf>,
    /// Time allowed for one request (default `30s`).
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
}

/// Whether the other collector's answer is worth another try (408, 429, 5xx, network errors).
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(code) => matches!(code, 408 | 429 | 500..=599),
    }
}

/// Forwards reports to another collector.
pub struct HttpForward {
    url: Url,
    base: Url,
    token: Option<Credential>,
    http: reqwest::Client,
}

impl HttpForward {
    /// Builds the sink.
    pub fn new(config: HttpConfig) -> Result<Self, String> {
        let token = match (&config.token_env, &config.token_file) {
            (None, None) => None,
            (env, file) => Some(secret("token", env.as_deref(), file.as_deref())?),
        };
        let mut url = config.endpoint.clone();
        let path = url.path().trim_end_matches('/').to_string();
        if !path.ends_with("/api/v1") {
            url.set_path(&format!("{path}/api/v1"));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout.unwrap_or(Duration::from_secs(30)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpForward {
            url,
            base: config.endpoint,
            token,
            http,
        })
    }

    async fn forward(&self, item: &OutboxItem) -> (ItemOutcome, Option<Duration>, RequestStats) {
        let json = serde_json::to_vec(&item.report).expect("a report serializes");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&json).expect("writing to a Vec cannot fail");
        let body = gzip.finish().expect("writing to a Vec cannot fail");
        let bytes = body.len();
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let started = Instant::now();
        let answer = request.send().await;
        let stats = RequestStats {
            bytes,
            items: 1,
            duration: started.elapsed(),
        };
        match answer {
            Ok(response) if response.status().is_success() => (ItemOutcome::Delivered, None, stats),
            Ok(response) => {
                let status = response.status().as_u16();
                let wait = retry_after(response.headers());
                let text: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                let error = format!("the collector answered {status}: {text}");
                let outcome = if retryable(Some(status)) {
                    ItemOutcome::Retry(error)
                } else {
                    ItemOutcome::Dead(error)
                };
                (outcome, wait, stats)
            }
            Err(error) => (
                ItemOutcome::Retry(format!("the collector is unreachable: {error}")),
                None,
                stats,
            ),
        }
    }
}

#[async_trait::async_trait]
impl Sink for HttpForward {
    fn max_batch(&self) -> usize {
        100
    }

    fn flush_interval(&self) -> Duration {
        Duration::ZERO
    }

    async fn healthcheck(&self) -> Result<(), String> {
        let url = self.base.join("readyz").map_err(|e| e.to_string())?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("{url} is unreachable: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url} answered {}", response.status()))
        }
    }

    async fn send(&self, items: &[OutboxItem], _more_waiting: bool) -> Sent {
        let mut sent = Sent::all(items.len(), ItemOutcome::Deferred);
        for (i, item) in items.iter().enumerate() {
            let (outcome, wait, stats) = self.forward(item).await;
            sent.requests.push(stats);
            let stop = matches!(outcome, ItemOutcome::Retry(_));
            sent.outcomes[i] = outcome;
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
        for (status, expected) in [
            (None, true),
            (Some(400), false),
            (Some(401), false),
            (Some(408), true),
            (Some(409), false),
            (Some(413), false),
            (Some(429), true),
            (Some(503), true),
        ] {
            assert_eq!(retryable(status), expected, "{status:?}");
        }
    }
}
