//! Spartakus's `http` database: each report forwarded to another collector's `/api/v1` (gzipped,
//! optionally with a bearer token), whose idempotent ingest makes resends harmless.

use std::path::PathBuf;
use std::time::Duration;

use common::secret::Credential;
use common::wire;
use serde::Deserialize;
use url::Url;

use super::http::{Wording, client, exchange};
use super::sink::{ItemOutcome, Sent, Sink};
use super::table::secret;
use crate::error::{Error, Result};
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
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// How failures read: as the collector answered, or why it could not be reached.
const WORDING: Wording = Wording {
    answered: |status, _, body| format!("the collector answered {status}: {body}"),
    no_answer: |_, error| {
        format!(
            "the collector is unreachable: {}",
            common::error_chain(error)
        )
    },
    reads_body: true,
};

/// Forwards reports to another collector.
pub struct HttpForward {
    name: String,
    url: Url,
    base: Url,
    token: Option<Credential>,
    http: reqwest::Client,
}

impl HttpForward {
    /// Builds the sink.
    pub fn new(config: HttpConfig) -> Result<Self> {
        let token = match (&config.token_env, &config.token_file) {
            (None, None) => None,
            (env, file) => Some(secret(
                &config.name,
                "token",
                env.as_deref(),
                file.as_deref(),
            )?),
        };
        let http = client(
            &config.name,
            config.timeout.unwrap_or(Duration::from_secs(30)),
        )?;
        Ok(HttpForward {
            url: wire::ingest_url(&config.endpoint),
            base: config.endpoint,
            name: config.name,
            token,
            http,
        })
    }

    fn request(&self, item: &OutboxItem) -> (reqwest::RequestBuilder, usize) {
        let json = serde_json::to_vec(&item.report).expect("a report serializes");
        let body = wire::gzip(&json);
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
        (request, bytes)
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

    async fn healthcheck(&self) -> Result<()> {
        let url = self
            .base
            .join("readyz")
            .map_err(|source| Error::sink(&self.name, source))?;
        let response = self.http.get(url.clone()).send().await.map_err(|source| {
            Error::sink_context(&self.name, format!("{url} is unreachable"), source)
        })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::sink(
                &self.name,
                format!("{url} answered {}", response.status()),
            ))
        }
    }

    async fn send(&self, items: &[OutboxItem], _more_waiting: bool) -> Sent {
        let mut sent = Sent::all(items.len(), ItemOutcome::Deferred);
        sent.send_in_order((0..items.len()).map(|i| [i]), |[i]| {
            let (request, bytes) = self.request(&items[i]);
            exchange(&WORDING, request, bytes, 1, |status, _| {
                wire::collector_verdict(status)
            })
        })
        .await;
        sent
    }
}
