//! The durable store: what the API, the delivery engine, maintenance and the weekly statistics
//! ask of it ([`Store`]), and the backends that answer. Today the one backend is `sqlite`, the
//! embedded store under `--data-dir`; [`postgres`] is being built beside it.

mod handle;
mod listing;
mod options;
mod outbox;
pub mod postgres;
mod records;
mod rollup;
mod sqlite;
mod weekly;
mod writes;

pub use handle::{OutboxReader, Store, WeeklyReader};
pub use listing::{ClusterSummary, NOT_REPORTED, Stats, StoredReport};
pub use options::StoreOptions;
pub use outbox::{
    CURSOR_SEQ_DIGITS, DeliveryCursor, DeliveryRow, DeliveryState, Held, OutboxItem, OutboxStats,
    OutboxUpdate, Pending, SinkRegistration,
};
pub use records::{InsertOutcome, NewReport, NodeGroup};
pub use rollup::{CHURN_WEEKS, Prepared, RollupProgress};
pub use sqlite::{DB_FILE, SCHEMA_VERSION};
pub use weekly::{WeekSummary, WeeklyChanges};
