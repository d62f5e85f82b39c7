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

/// Sends `request` (carrying `items` deliveries in `bytes` of body) to `peer`, and reads the
/// answer with the sink's retry decision: `verdict(status, connected)` gets the status, or
/// `None` when there was no answer, with `connected` telling whether the request may have
/// reached the peer before it failed.
pub async fn exchange(
    peer: &str,
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
                    let text: String = response
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(ERROR_BODY_CHARS)
                        .collect();
                    let error = format!("{peer} answered {status}: {text}");
                    if refused == Verdict::Retry {
                        ItemOutcome::Retry(error)
                    } else {
                        ItemOutcome::Dead(error)
                    }
                }
            };
            Reply {
                outcomes: Replied::All(outcome),
                retry_after,
            }
        }
        Err(error) => {
            let outcome = match verdict(None, !error.is_connect()) {
                Verdict::Dead => ItemOutcome::Dead(format!(
                    "unknown whether {peer} received the event ({error}); not retried, since {peer} \
                     cannot deduplicate a resend"
                )),
                _ => ItemOutcome::Retry(format!("{peer} is unreachable: {error}")),
            };
            Reply {
                outcomes: Replied::All(outcome),
                retry_after: None,
            }
        }
    };
    (reply, stats)
}

/// Any HTTP answer from `url` (even an error status) proves the host is reachable.
pub async fn reachable(sink: &str, http: &reqwest::Client, url: &Url) -> Result<()> {
    http.get(url.clone())
        .send()
        .await
        .map(|_| ())
        .map_err(|source| Error::sink_context(sink, format!("{url} is unreachable"), source))
}
