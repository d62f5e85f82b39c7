//! The embedded backend: SQLite in WAL mode, one writer thread that group-commits, and read-only
//! connections for the read API and the delivery workers.
//!
//! Durability: every transaction is committed with `synchronous=FULL`, so the write-ahead log is
//! fsynced before the commit returns, and a request is answered 204 only after the commit that
//! holds its report returned. Many concurrent reports share one transaction (and one fsync).

mod checkpoint;
mod command;
mod connection;
mod handle;
mod meta;
mod outbox;
mod read;
mod removal;
mod rollup;
mod schema;
mod sql;
mod weekly;
mod writer;

pub use handle::{DB_FILE, OutboxReader, SqliteStore, WeeklyReader};
pub use schema::SCHEMA_VERSION;
