//! Delivery to the collector: gzip, POST to `<collector>/api/v1`, and retries of the identical
//! bytes (same report id) with capped exponential backoff until a deadline.

use std::time::Duration;

use common::secret::Credential;
use common::wire::{self, Verdict};
use rand::Rng;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;
use url::Url;

use crate::config::Config;
use crate::{Error, Result};

/// Longest retry delay.
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// The delay before retry `attempt` (1-based): full jitter over a doubling, capped window.
pub fn backoff(attempt: u32) -> Duration {
    wire::backoff(
        attempt,
        BACKOFF_CAP,
        rand::rng().random_range(wire::BACKOFF_JITTER),
    )
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
    token: Option<Credential>,
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
                Some(token.trim())
                    .filter(|t| !t.is_empty())
                    .map(Credential::new)
            }
            None => None,
        };
        Ok(Publisher {
            http: http
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
            endpoint: wire::ingest_url(collector),
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
            wire::gzip(report)
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
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|error| common::error_chain(&error))?;
        let status = response.status().as_u16();
        Ok(match wire::collector_verdict(Some(status)) {
            Verdict::Delivered => AttemptResult::Delivered,
            Verdict::Retry => AttemptResult::Retry {
                status,
                retry_after: wire::retry_after(
                    response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()),
                ),
            },
            Verdict::Dead => AttemptResult::Rejected {
                status,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..40 {
            let window = wire::BACKOFF_BASE.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
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
    fn the_token_never_prints() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t-ingest-token\n").unwrap();
        let config = Config::parse_from([
            "volunteer",
            "--collector",
            "https://c.example.com",
            "--collector-token-file",
            token.to_str().unwrap(),
        ]);
        let publisher = Publisher::new(&config, config.collector.as_ref().unwrap()).unwrap();
        let printed = format!("{publisher:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}
