//! The embedded durable store: SQLite in WAL mode, one writer thread that group-commits, and
//! read-only connections for the read API and the delivery workers.
//!
//! Durability: every transaction is committed with `synchronous=FULL`, so the write-ahead log is
//! fsynced before the commit returns, and a request is answered 204 only after the commit that
//! holds its report returned. Many concurrent reports share one transaction (and one fsync).

mod checkpoint;
mod command;
mod connection;
mod handle;
mod meta;
pub mod outbox;
mod read;
mod records;
mod removal;
mod rollup;
mod schema;
mod sql;
mod weekly;
mod writer;

pub use handle::{DB_FILE, OutboxReader, Store, StoreOptions, WeeklyReader};
pub use outbox::{
    CURSOR_SEQ_DIGITS, DeliveryCursor, DeliveryRow, DeliveryState, Held, OutboxItem, OutboxStats,
    OutboxUpdate, Pending, SinkRegistration,
};
pub use read::{ClusterSummary, NOT_REPORTED, Stats, StoredReport};
pub use records::{InsertOutcome, NewReport, NodeGroup};
pub use rollup::{CHURN_WEEKS, Prepared, RollupProgress};
pub use schema::SCHEMA_VERSION;
pub use weekly::{WeekSummary, WeeklyChanges};
