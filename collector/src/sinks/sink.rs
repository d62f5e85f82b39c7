//! The sink contract: the [`Sink`] trait, what one send returns, and the pieces the sinks share
//! (packing deliveries into requests, sending requests in order).

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use crate::error::Result;
use crate::store::OutboxItem;

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

/// What the answer to one request means for the deliveries it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replied {
    /// The same for every delivery of the request.
    All(ItemOutcome),
    /// One outcome per delivery (a service that accepts some rows and refuses others).
    Each(Vec<ItemOutcome>),
}

/// The answer to one request, with the wait the sink asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What it means for the deliveries.
    pub outcomes: Replied,
    /// The sink asked to wait this long before trying again.
    pub retry_after: Option<Duration>,
}

impl Sent {
    /// Every delivery gets the same outcome.
    pub fn all(items: usize, outcome: ItemOutcome) -> Self {
        Sent {
            outcomes: vec![outcome; items],
            ..Sent::default()
        }
    }

    /// Sends one request per group of delivery indexes, one after another, recording each
    /// reply; stops at the first request the sink wants retried as a whole (it is struggling:
    /// the groups after it stay queued, as [`ItemOutcome::Deferred`]).
    pub async fn send_in_order<G, F, Fut>(
        &mut self,
        groups: impl IntoIterator<Item = G>,
        mut send: F,
    ) where
        G: Clone + IntoIterator<Item = usize>,
        F: FnMut(G) -> Fut,
        Fut: Future<Output = (Reply, RequestStats)>,
    {
        for group in groups {
            let indexes: Vec<usize> = group.clone().into_iter().collect();
            let (reply, stats) = send(group).await;
            self.requests.push(stats);
            match reply.outcomes {
                Replied::All(outcome) => {
                    let stop = matches!(outcome, ItemOutcome::Retry(_));
                    for i in &indexes {
                        self.outcomes[*i] = outcome.clone();
                    }
                    if stop {
                        self.retry_after = reply.retry_after;
                        return;
                    }
                }
                Replied::Each(outcomes) => {
                    for (i, outcome) in indexes.iter().zip(outcomes) {
                        self.outcomes[*i] = outcome;
                    }
                }
            }
        }
    }
}

/// The size limits of one request to a sink.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest body, in bytes.
    pub max_bytes: usize,
    /// Most deliveries in one request.
    pub max_items: usize,
    /// Bytes of the envelope around the items (an upper bound).
    pub envelope_bytes: usize,
    /// Bytes each item adds besides its own (a separator, an id).
    pub item_overhead: usize,
}

impl RequestLimits {
    /// Bytes of a request carrying items of `sizes`.
    pub fn request_bytes(&self, sizes: impl IntoIterator<Item = usize>) -> usize {
        self.envelope_bytes
            + sizes
                .into_iter()
                .map(|size| size + self.item_overhead)
                .sum::<usize>()
    }

    /// Splits items of `sizes` (in order) into requests within these limits; returns index
    /// ranges. An item too large for any request still gets one of its own.
    pub fn pack(&self, sizes: &[usize]) -> Vec<Range<usize>> {
        let mut groups = Vec::new();
        let mut start = 0;
        let mut bytes = self.envelope_bytes;
        for (i, size) in sizes.iter().enumerate() {
            let count = i - start;
            let item = size + self.item_overhead;
            if count > 0 && (bytes + item > self.max_bytes || count == self.max_items) {
                groups.push(start..i);
                start = i;
                bytes = self.envelope_bytes;
            }
            bytes += item;
        }
        if start < sizes.len() {
            groups.push(start..sizes.len());
        }
        groups
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
    async fn healthcheck(&self) -> Result<()>;

    /// Sends `items`. `more_waiting` says the batch was full (more deliveries are queued), so a
    /// sink may defer a tail that would make a poorly filled request.
    async fn send(&self, items: &[OutboxItem], more_waiting: bool) -> Sent;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> RequestStats {
        RequestStats {
            bytes: 1,
            items: 1,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn packing_respects_the_byte_and_item_caps() {
        let limits = RequestLimits {
            max_bytes: 1_000,
            max_items: 3,
            envelope_bytes: 100,
            item_overhead: 10,
        };
        assert_eq!(limits.pack(&[200, 200, 200, 200, 200]), [0..3, 3..5]);
        assert_eq!(limits.pack(&[400, 400, 100]), [0..2, 2..3]);
        assert_eq!(
            limits.pack(&[5_000, 1]),
            [0..1, 1..2],
            "an oversized item goes alone"
        );
        assert!(limits.pack(&[]).is_empty());
        assert_eq!(limits.request_bytes([200, 300]), 620);
    }

    #[tokio::test]
    async fn requests_go_in_order_until_one_must_be_retried() {
        let mut sent = Sent::all(5, ItemOutcome::Deferred);
        let replies = [
            Replied::Each(vec![
                ItemOutcome::Delivered,
                ItemOutcome::Dead("bad row".into()),
            ]),
            Replied::All(ItemOutcome::Retry("503".into())),
            Replied::All(ItemOutcome::Delivered),
        ];
        let mut next = replies.into_iter();
        sent.send_in_order([vec![0, 1], vec![2, 3], vec![4]], |_| {
            let outcomes = next.next().unwrap();
            async move {
                let reply = Reply {
                    outcomes,
                    retry_after: Some(Duration::from_secs(7)),
                };
                (reply, stats())
            }
        })
        .await;
        assert_eq!(
            sent.outcomes,
            [
                ItemOutcome::Delivered,
                ItemOutcome::Dead("bad row".into()),
                ItemOutcome::Retry("503".into()),
                ItemOutcome::Retry("503".into()),
                ItemOutcome::Deferred,
            ]
        );
        assert_eq!(sent.requests.len(), 2);
        assert_eq!(sent.retry_after, Some(Duration::from_secs(7)));
    }
}
