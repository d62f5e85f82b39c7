//! The durable store: what the API, the delivery engine, maintenance and the weekly statistics
//! ask of it, and the backends that answer. Today the one backend is [`sqlite`], the embedded
//! store under `--data-dir`.

mod listing;
mod outbox;
mod records;
mod rollup;
pub mod sqlite;
mod weekly;

pub use listing::{ClusterSummary, NOT_REPORTED, Stats, StoredReport};
pub use outbox::{
    CURSOR_SEQ_DIGITS, DeliveryCursor, DeliveryRow, DeliveryState, Held, OutboxItem, OutboxStats,
    OutboxUpdate, Pending, SinkRegistration,
};
pub use records::{InsertOutcome, NewReport, NodeGroup};
pub use rollup::{CHURN_WEEKS, RollupProgress};
pub use sqlite::{
    DB_FILE, OutboxReader, Prepared, SCHEMA_VERSION, SqliteStore as Store, StoreOptions,
    WeeklyReader,
};
pub use weekly::{WeekSummary, WeeklyChanges};
