//! What a store is opened with, whichever backend holds it.

use super::outbox::SinkRegistration;

/// Settings of [`Store::open`](super::Store::open).
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Largest database size in bytes; writes past it fail as if the disk were full.
    pub max_size: Option<u64>,
    /// Sinks to queue every stored report for.
    pub sinks: Vec<SinkRegistration>,
}
