//! What the HTTP sinks share: their client, and one reading of an answer (status, `Retry-After`,
//! body) into the outcome of the deliveries a request carried.

use std::time::{Duration, Instant};

use common::wire::{self, Verdict};
use url::Url;

use super::sink::{ItemOutcome, Replied, Reply, RequestStats};
use crate::error::{Error, Result};

/// Most characters of an error answer's body kept in a delivery's last error.
const ERROR_BODY_CHARS: usize = 300;

/// An HTTP client for sink `sink` that gives up on a request after `timeout`.
pub fn client(sink: &str, timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|source| Error::sink(sink, source))
}

/// How a sink words the failures of its requests, as each delivery's last error keeps them.
pub struct Wording {
    /// The peer answered `status`, which the verdict refused (`Retry` or `Dead`); `body` is the
    /// start of the answer (empty unless [`Wording::reads_body`]).
    pub answered: fn(u16, Verdict, &str) -> String,
    /// No answer came; the verdict says whether the request is tried again.
    pub no_answer: fn(Verdict, &reqwest::Error) -> String,
    /// Whether the body of a refused answer is read for [`Wording::answered`].
    pub reads_body: bool,
}

/// Sends `request` (carrying `items` deliveries in `bytes` of body) and reads the answer with
/// the sink's retry decision: `verdict(status, connected)` gets the status, or `None` when there
/// was no answer, with `connected` telling whether the request may have reached the peer before
/// it failed. Failures are worded as `wording` says.
pub async fn exchange(
    wording: &Wording,
    request: reqwest::RequestBuilder,
    bytes: usize,
    items: usize,
    verdict: impl Fn(Option<u16>, bool) -> Verdict,
) -> (Reply, RequestStats) {
    let started = Instant::now();
    let answer = request.send().await;
    let stats = RequestStats {
        bytes,
        items,
        duration: started.elapsed(),
    };
    let reply = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = wire::retry_after(
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok()),
            );
            let outcome = match verdict(Some(status), true) {
                Verdict::Delivered => ItemOutcome::Delivered,
                refused => {
                    let body: String = if wording.reads_body {
                        let text = response.text().await.unwrap_or_default();
                        text.chars().take(ERROR_BODY_CHARS).collect()
                    } else {
                        String::new()
                    };
                    outcome(refused, (wording.answered)(status, refused, &body))
                }
            };
            Reply {
                outcomes: Replied::All(outcome),
                retry_after,
            }
        }
        Err(error) => {
            let refused = verdict(None, !error.is_connect());
            Reply {
                outcomes: Replied::All(outcome(refused, (wording.no_answer)(refused, &error))),
                retry_after: None,
            }
        }
    };
    (reply, stats)
}

/// A failure as the outcome its verdict gives (an answer that was not refused is delivered).
fn outcome(verdict: Verdict, error: String) -> ItemOutcome {
    match verdict {
        Verdict::Delivered => ItemOutcome::Delivered,
        Verdict::Retry => ItemOutcome::Retry(error),
        Verdict::Dead => ItemOutcome::Dead(error),
    }
}

/// Any HTTP answer from `url` (even an error status) proves the host is reachable.
pub async fn reachable(sink: &str, http: &reqwest::Client, url: &Url) -> Result<()> {
    http.get(url.clone())
        .send()
        .await
        .map(|_| ())
        .map_err(|source| Error::sink_context(sink, format!("{url} is unreachable"), source))
}
