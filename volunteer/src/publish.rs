//! Delivery to the collector: gzip, POST to `<collector>/api/v1`, and retries of the identical
//! bytes (same report id) with capped exponential backoff until a deadline.

use std::io::Write;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;
use url::Url;

use crate::config::Config;
use crate::{Error, Result};

/// First retry delay.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Longest `Retry-After` honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// Whether an answer is worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored (any 2xx).
    Delivered,
    /// Worth another try: the collector or the network may recover.
    Retry,
    /// The collector refused the report; sending it again cannot help.
    Rejected,
}

/// The retry decision for an HTTP status: retry 408, 429 and 5xx; other 4xx are final.
pub fn verdict(status: StatusCode) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Rejected,
    }
}

/// The delay before retry `attempt` (1-based): full jitter over a doubling, capped window.
pub fn backoff(attempt: u32) -> Duration {
    let window = BACKOFF_BASE
        .saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .min(BACKOFF_CAP);
    let jittered = rand::rng().random_range(0.5..=1.0) * window.as_secs_f64();
    Duration::from_secs_f64(jittered)
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The collector stored the report.
    Delivered {
        /// Attempts made.
        attempts: u32,
    },
    /// The collector refused it (a 4xx other than 408 and 429).
    Rejected {
        /// The status.
        status: u16,
        /// The collector's error body, as sent.
        error: String,
    },
    /// Every attempt failed until the deadline.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last_error: String,
    },
    /// Shutdown came first.
    Interrupted,
}

/// Sends reports to one collector.
#[derive(Debug, Clone)]
pub struct Publisher {
    http: reqwest::Client,
    endpoint: Url,
    gzip: bool,
    token: Option<String>,
}

impl Publisher {
    /// A publisher for `--collector`, with its timeout, token and CA flags.
    pub fn new(config: &Config, collector: &Url) -> Result<Self> {
        let mut http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("k8s-usage-volunteer/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.collector_ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!("--collector-ca-file {}: {e}", path.display()))
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!("--collector-ca-file {}: {e}", path.display()))
            })?;
            http = http.add_root_certificate(certificate);
        }
        let token = match &config.collector_token_file {
            Some(path) => {
                let token = std::fs::read_to_string(path).map_err(|e| {
                    Error::Config(format!("--collector-token-file {}: {e}", path.display()))
                })?;
                Some(token.trim().to_string()).filter(|t| !t.is_empty())
            }
            None => None,
        };
        Ok(Publisher {
            http: http
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
            endpoint: endpoint(collector),
            gzip: config.gzip,
            token,
        })
    }

    /// Where reports go.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Delivers `report` (its JSON bytes), retrying until `deadline`; `stop` ends waiting early.
    pub async fn deliver(
        &self,
        report: &[u8],
        deadline: Instant,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Outcome {
        let body = if self.gzip {
            gzip(report)
        } else {
            report.to_vec()
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let wait = match self.attempt(&body).await {
                Ok(AttemptResult::Delivered) => return Outcome::Delivered { attempts },
                Ok(AttemptResult::Rejected { status, error }) => {
                    return Outcome::Rejected { status, error };
                }
                Ok(AttemptResult::Retry {
                    status,
                    retry_after,
                }) => {
                    let delay = retry_after.unwrap_or_else(|| backoff(attempts));
                    tracing::warn!(status, attempt = attempts, retry_in = ?delay, "collector asked to retry");
                    (delay, format!("collector answered {status}"))
                }
                Err(error) => {
                    let delay = backoff(attempts);
                    tracing::warn!(%error, attempt = attempts, retry_in = ?delay, "delivery failed");
                    (delay, error)
                }
            };
            let (delay, last_error) = wait;
            if Instant::now() + delay >= deadline {
                return Outcome::GaveUp {
                    attempts,
                    last_error,
                };
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => return Outcome::Interrupted,
            }
        }
    }

    async fn attempt(&self, body: &[u8]) -> std::result::Result<AttemptResult, String> {
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body.to_vec());
        if self.gzip {
            request = request.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        Ok(match verdict(status) {
            Verdict::Delivered => AttemptResult::Delivered,
            Verdict::Retry => AttemptResult::Retry {
                status: status.as_u16(),
                retry_after: response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP)),
            },
            Verdict::Rejected => AttemptResult::Rejected {
                status: status.as_u16(),
                error: response.text().await.unwrap_or_default(),
            },
        })
    }
}

enum AttemptResult {
    Delivered,
    Retry {
        status: u16,
        retry_after: Option<Duration>,
    },
    Rejected {
        status: u16,
        error: String,
    },
}

/// `<collector>/api/v1`: appended to the collector URL's path (so a collector behind a path
/// prefix works), unless the URL already ends with it.
pub fn endpoint(collector: &Url) -> Url {
    let mut url = collector.clone();
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with("/api/v1") {
        url.set_path(&format!("{path}/api/v1"));
    }
    url
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decisions() {
        let table = [
            (200, Verdict::Delivered),
            (202, Verdict::Delivered),
            (204, Verdict::Delivered),
            (400, Verdict::Rejected),
            (401, Verdict::Rejected),
            (403, Verdict::Rejected),
            (404, Verdict::Rejected),
            (408, Verdict::Retry),
            (409, Verdict::Rejected),
            (413, Verdict::Rejected),
            (415, Verdict::Rejected),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (502, Verdict::Retry),
            (503, Verdict::Retry),
            (504, Verdict::Retry),
        ];
        for (status, expected) in table {
            assert_eq!(
                verdict(StatusCode::from_u16(status).unwrap()),
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..40 {
            let window = BACKOFF_BASE.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
            let window = window.min(BACKOFF_CAP.as_secs_f64());
            let delay = backoff(attempt).as_secs_f64();
            assert!(
                delay >= window / 2.0 - 1e-9 && delay <= window + 1e-9,
                "{attempt}: {delay}"
            );
        }
        assert!(backoff(u32::MAX) <= BACKOFF_CAP);
    }

    #[test]
    fn endpoints() {
        let cases = [
            ("https://c.example.com", "https://c.example.com/api/v1"),
            ("https://c.example.com/", "https://c.example.com/api/v1"),
            (
                "https://c.example.com/telemetry/",
                "https://c.example.com/telemetry/api/v1",
            ),
            (
                "http://127.0.0.1:8080/api/v1",
                "http://127.0.0.1:8080/api/v1",
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(endpoint(&given.parse().unwrap()).as_str(), expected);
        }
    }
}
