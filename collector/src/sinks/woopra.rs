//! Woopra: one custom event per report through the tracking API (`GET {endpoint}/track/ce`).
//! Woopra has no dedup key, so a retry after a lost answer could count a report twice: requests
//! are retried only when they surely did not arrive, or when Woopra answered 429 or 5xx.

use std::time::Duration;

use common::wire::Verdict;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::http::{Wording, client, exchange, reachable};
use super::sink::{Replied, Sent, Sink};
use super::summary::{analytics_id, summary};
use crate::error::{Error, Result};
use crate::store::OutboxItem;

/// `[[sink]] type = "woopra"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WoopraConfig {
    /// Sink name.
    pub name: String,
    /// API base (default `https://www.woopra.com`).
    #[serde(default = "default_endpoint")]
    pub endpoint: Url,
    /// The Woopra project (its domain).
    pub project: String,
    /// Event name (default `cluster_report`).
    #[serde(default = "default_event")]
    pub event: String,
    /// Extension whose value is the visitor id (default: the cluster id).
    pub identity_extension: Option<String>,
    /// Time allowed for one request (default `10s`).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Requests in flight at once (default 4).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_endpoint() -> Url {
    "https://www.woopra.com".parse().expect("a valid URL")
}

fn default_event() -> String {
    "cluster_report".into()
}

fn default_concurrency() -> usize {
    4
}

/// Woopra's visit timeout sent with each event, in milliseconds.
const VISIT_TIMEOUT_MS: u64 = 300_000;

/// The retry decision: retried when Woopra answered 429 or 5xx, or the request surely did not
/// arrive; refused, or possibly arrived, it is dead (Woopra has no dedup key). `status` is the
/// answer; without one, `connected` says whether the request may have reached Woopra (a timeout
/// or reset after connecting might have delivered it).
pub fn verdict(status: Option<u16>, connected: bool) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(429) | Some(500..=599) => Verdict::Retry,
        Some(_) => Verdict::Dead,
        None if !connected => Verdict::Retry,
        None => Verdict::Dead,
    }
}

/// How failures read. Woopra's error bodies say nothing useful, and a request that may have
/// arrived is dead-lettered with why it is not retried.
const WORDING: Wording = Wording {
    answered: |status, verdict, _| match verdict {
        Verdict::Retry => format!("Woopra answered {status}"),
        _ => format!("Woopra refused the event ({status})"),
    },
    no_answer: |verdict, error| match verdict {
        Verdict::Retry => format!("Woopra unreachable: {}", common::error_chain(error)),
        _ => format!(
            "unknown whether Woopra received the event ({error}); not retried, since Woopra \
             cannot deduplicate a resend"
        ),
    },
    reads_body: false,
};

/// The Woopra sink.
pub struct Woopra {
    config: WoopraConfig,
    url: Url,
    http: reqwest::Client,
}

impl Woopra {
    /// Builds the sink.
    pub fn new(config: WoopraConfig) -> Result<Self> {
        if config.project.is_empty() {
            return Err(Error::sink(&config.name, "`project` must not be empty"));
        }
        let url = config
            .endpoint
            .join("track/ce")
            .map_err(|source| Error::sink_context(&config.name, "`endpoint`", source))?;
        let http = client(
            &config.name,
            config.timeout.unwrap_or(Duration::from_secs(10)),
        )?;
        Ok(Woopra { config, url, http })
    }

    /// The query of one event: project, event, visitor id and cookie, time, `ce_*` properties.
    pub fn query(&self, item: &OutboxItem) -> Vec<(String, String)> {
        let id = analytics_id(item, self.config.identity_extension.as_deref());
        let mut query = vec![
            ("project".to_string(), self.config.project.clone()),
            ("event".to_string(), self.config.event.clone()),
            ("cv_id".to_string(), id.clone()),
            ("cookie".to_string(), id),
            (
                "timestamp".to_string(),
                (item.report_time * 1000).to_string(),
            ),
            ("timeout".to_string(), VISIT_TIMEOUT_MS.to_string()),
        ];
        for (key, value) in summary(item) {
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            query.push((format!("ce_{}", snake_case(&key)), value));
        }
        query
    }
}

/// `masterVersion` -> `master_version`, `clusterID` -> `cluster_id`; other characters become `_`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut previous_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out
}

#[async_trait::async_trait]
impl Sink for Woopra {
    fn max_batch(&self) -> usize {
        100
    }

    fn flush_interval(&self) -> Duration {
        Duration::ZERO
    }

    async fn healthcheck(&self) -> Result<()> {
        reachable(&self.config.name, &self.http, &self.config.endpoint).await
    }

    async fn send(&self, items: &[OutboxItem], _more_waiting: bool) -> Sent {
        let requests: Vec<_> = items
            .iter()
            .map(|item| {
                let query = self.query(item);
                let bytes = query.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
                let request = self.http.get(self.url.clone()).query(&query);
                exchange(&WORDING, request, bytes, 1, verdict)
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(requests)
            .buffered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut sent = Sent::default();
        for (reply, stats) in results {
            sent.retry_after = sent.retry_after.max(reply.retry_after);
            match reply.outcomes {
                Replied::All(outcome) => sent.outcomes.push(outcome),
                Replied::Each(outcomes) => sent.outcomes.extend(outcomes),
            }
            sent.requests.push(stats);
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
            (Some(200), true, Verdict::Delivered),
            (Some(400), true, Verdict::Dead),
            (Some(404), true, Verdict::Dead),
            (Some(429), true, Verdict::Retry),
            (Some(500), true, Verdict::Retry),
            (Some(503), true, Verdict::Retry),
            (None, false, Verdict::Retry),
            (None, true, Verdict::Dead),
        ];
        for (status, connected, expected) in table {
            assert_eq!(
                verdict(status, connected),
                expected,
                "{status:?} {connected}"
            );
        }
    }

    #[test]
    fn property_names_are_snake_case() {
        assert_eq!(snake_case("masterVersion"), "master_version");
        assert_eq!(
            snake_case("ext.example.com/account"),
            "ext_example_com_account"
        );
        assert_eq!(snake_case("nodes"), "nodes");
        assert_eq!(snake_case("clusterID"), "cluster_id");
        assert_eq!(snake_case("reportID"), "report_id");
    }
}
