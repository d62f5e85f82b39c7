//! What the outbox holds and answers: a delivery's state, its place in a sink's queue, what a
//! worker reads and records, and the listing's rows and cursor.

use std::fmt;
use std::str::FromStr;

use common::report::Report;
use common::time::TimeSource;
use strum::{EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

use crate::sinks::kind::SinkKind;

/// Where a delivery stands. Delivered ones are forgotten, so these are the only two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its sink (possibly after failed attempts).
    Pending,
    /// Failed for good, or not delivered within `--max-delivery-age`; kept until re-queued.
    Dead,
}

impl DeliveryState {
    /// The state as the store and the read API write it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where a page of the delivery listing ends: the last (sink, report) listed; written
/// `sink:seq` in the read API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCursor {
    /// The sink of the last delivery listed.
    pub sink: String,
    /// Its report's insertion order.
    pub seq: i64,
}

impl fmt::Display for DeliveryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.sink, self.seq)
    }
}

/// Most digits of a cursor's report position: every number of at most this many fits an `i64`.
pub const CURSOR_SEQ_DIGITS: usize = 18;

impl FromStr for DeliveryCursor {
    type Err = ();

    /// `sink:seq`, the position written as 1 to [`CURSOR_SEQ_DIGITS`] ASCII digits (no sign), so
    /// the grammar is exactly the read API's documented pattern.
    fn from_str(text: &str) -> Result<Self, ()> {
        let (sink, seq) = text.rsplit_once(':').ok_or(())?;
        if !(1..=CURSOR_SEQ_DIGITS).contains(&seq.len()) || !seq.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(());
        }
        Ok(DeliveryCursor {
            sink: sink.to_string(),
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// A sink the outbox keeps deliveries for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRegistration {
    /// Unique name from the configuration.
    pub name: String,
    /// Its type.
    pub kind: SinkKind,
}

/// Where a pending delivery is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A row of its own: tried before, or re-queued.
    Row,
    /// Nowhere but the sink's queue: a report after the sink's position, never tried.
    AfterPosition,
}

/// One pending delivery, with the report it carries.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Where the delivery is kept.
    pub held: Held,
    /// The report's insertion order.
    pub seq: i64,
    /// Report id (the sinks' dedup key).
    pub id: Uuid,
    /// Cluster id.
    pub cluster_id: String,
    /// The report's time, unix seconds.
    pub report_time: i64,
    /// Where the time came from.
    pub time_source: TimeSource,
    /// When the collector received it, unix seconds.
    pub received_at: i64,
    /// When the delivery was queued, unix seconds.
    pub queued_at: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// The report (`timestamp` set to its time).
    pub report: Report,
}

/// What one round of a sink's worker learned.
#[derive(Debug, Clone, Default)]
pub struct OutboxUpdate {
    /// The sink.
    pub sink: String,
    /// Confirmed by the sink: their rows are deleted.
    pub delivered: Vec<i64>,
    /// Failed, worth another try at `retry_at`.
    pub retried: Vec<(i64, String)>,
    /// Failed for good, with the reason.
    pub dead: Vec<(i64, String)>,
    /// When the retried ones are due again, unix seconds.
    pub retry_at: i64,
    /// The sink's new position: every report it covers up to this one was delivered, or has a
    /// row after this update (retried or dead). `None` leaves the position where it is.
    pub position: Option<i64>,
    /// The sink's queue generation the batch was read at ([`Pending::generation`]): if a backfill
    /// changed the queue since, the position stays and the outcomes of reports after it are
    /// dropped (the next round reads them again).
    pub generation: i64,
}

/// A batch of pending deliveries, as one read of the outbox saw it.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// The deliveries, oldest report first.
    pub items: Vec<OutboxItem>,
    /// The sink's queue generation at the read (see [`OutboxUpdate::generation`]).
    pub generation: i64,
}

/// Counts of one sink's outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Pending deliveries.
    pub pending: i64,
    /// Dead-lettered deliveries.
    pub dead: i64,
    /// When the oldest pending delivery was queued, unix seconds.
    pub oldest_pending: Option<i64>,
    /// The earliest time a pending delivery is due, unix seconds.
    pub next_due: Option<i64>,
}

/// One delivery as the read API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The sink.
    pub sink: String,
    /// The report's insertion order (the listing's cursor).
    pub report_seq: i64,
    /// Report id.
    pub report_id: String,
    /// Cluster id.
    pub cluster_id: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was queued, unix seconds.
    pub queued_at: i64,
    /// When it is due again, unix seconds.
    pub next_attempt_at: i64,
    /// The last failure, or why it is dead.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::words::Words;

    #[test]
    fn states_keep_their_stored_names() {
        assert_eq!(DeliveryState::words(), ["pending", "dead"]);
        assert!(DeliveryState::parse_back());
        assert!("Pending".parse::<DeliveryState>().is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = DeliveryCursor {
            sink: "eu:warehouse".into(),
            seq: 42,
        };
        assert_eq!(cursor.to_string(), "eu:warehouse:42");
        assert_eq!("eu:warehouse:42".parse::<DeliveryCursor>(), Ok(cursor));
        for bad in [
            "",
            "segment",
            "segment:",
            "segment:x",
            "segment:+5",
            "segment:-5",
            "segment:1234567890123456789",
        ] {
            assert!(bad.parse::<DeliveryCursor>().is_err(), "{bad}");
        }
    }
}
