//! The memory budget that request work draws from: bodies as received, inflated and decoded,
//! across every request in flight. A request is charged its worst case all at once before its
//! body is read (so it never holds part of the budget while waiting for the rest), refunded what
//! its body turned out not to need, and refused when the charge cannot be had in time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::listener;

/// The budget is kept in units of this many bytes (the semaphore counts `u32` permits).
const UNIT: usize = 1024;

/// How long a request waits for its charge before it is answered 503.
pub const BUDGET_WAIT: Duration = Duration::from_millis(100);

/// The process without requests: code, runtime, the published statistics, the rate limiters at
/// their caps (100,000 clusters and twice 100,000 sources, about 20 MiB), the dashboard's sessions
/// and pages (26 MiB measured idle; the rest is headroom for the caps).
pub const PROCESS_BASE: u64 = 64 << 20;
/// The embedded store's page caches: the writer's 32 MiB and 2 MiB for each reader.
pub const STORE_CACHES: u64 = 48 << 20;
/// What one connection may hold before its requests are charged: an HTTP/2 connection's window,
/// the heads of its streams, and buffers, TLS records included (an HTTP/1 connection holds
/// less).
pub const PER_CONNECTION: u64 = listener::HTTP2_CONNECTION_WINDOW as u64
    + listener::HTTP2_STREAMS as u64 * listener::HTTP2_HEADER_LIST as u64
    + (64 << 10)
    + TLS_BUFFERS;

/// What rustls holds for one connection: a record being read and one being written (16 KiB
/// each at most, with their overhead) and the session's state.
const TLS_BUFFERS: u64 = 48 << 10;

/// What each cluster in the store takes in the set of known clusters of the per-source
/// new-cluster cap (a keyed 8-byte hash in a hash set, with room to grow).
pub const PER_KNOWN_CLUSTER: u64 = 32;

/// The collector's memory at worst, with `inflight` bytes of budget, `connections` open on the
/// public listener (the admin listener's are counted too) and `clusters` in the store: what a
/// memory limit must allow.
pub fn worst_case_memory(inflight: u64, connections: usize, clusters: u64) -> u64 {
    let connections = (connections + listener::ADMIN_CONNECTIONS) as u64;
    PROCESS_BASE
        + STORE_CACHES
        + inflight
        + connections * PER_CONNECTION
        + clusters * PER_KNOWN_CLUSTER
}

/// The shared budget; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    capacity: u32,
}

/// What one request holds of the budget; dropping it gives it back.
#[derive(Debug)]
pub struct Charge {
    permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Self {
        let capacity = units(usize::try_from(bytes).unwrap_or(usize::MAX));
        MemoryBudget {
            permits: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Charges `bytes` (at most the whole budget), waiting up to `wait` for them to be free;
    /// `None` when they are not. Waiters are served in arrival order, so a large request is not
    /// starved by a stream of small ones.
    pub async fn charge(&self, bytes: usize, wait: Duration) -> Option<Charge> {
        let wanted = units(bytes).min(self.capacity);
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_many_owned(wanted))
            .await
            .ok()?
            .expect("the budget's semaphore is never closed");
        Some(Charge { permit })
    }

    /// Bytes charged now (what `collector_inflight_memory_bytes` reports at each scrape).
    pub fn in_use(&self) -> usize {
        (self.capacity as usize - self.permits.available_permits()) * UNIT
    }
}

impl Charge {
    /// Gives back what is charged beyond `bytes` (never charges more).
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = units(bytes).max(1) as usize;
        let surplus = self.permit.num_permits().saturating_sub(keep);
        drop(self.permit.split(surplus));
    }

    /// Bytes charged.
    pub fn bytes(&self) -> usize {
        self.permit.num_permits() * UNIT
    }
}

/// `bytes` in whole units, rounded up.
fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[tokio::test]
    async fn charges_wait_their_turn_and_refunds_let_the_next_one_in() {
        let budget = MemoryBudget::new(10 * MIB as u64);
        let mut first = budget.charge(8 * MIB, BUDGET_WAIT).await.unwrap();
        assert_eq!(budget.in_use(), 8 * MIB);
        assert!(budget.charge(4 * MIB, BUDGET_WAIT).await.is_none());

        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.charge(4 * MIB, Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        first.shrink_to(5 * MIB);
        let second = waiting
            .await
            .unwrap()
            .expect("the refund admits the waiter");
        assert_eq!(budget.in_use(), 9 * MIB);
        assert_eq!(second.bytes(), 4 * MIB);
        drop((first, second));
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn a_charge_over_the_whole_budget_takes_all_of_it_and_shrinking_never_grows() {
        let budget = MemoryBudget::new(MIB as u64);
        let mut all = budget.charge(5 * MIB, BUDGET_WAIT).await.unwrap();
        assert_eq!(all.bytes(), MIB);
        all.shrink_to(2 * MIB);
        assert_eq!(all.bytes(), MIB);
        all.shrink_to(1);
        assert_eq!((all.bytes(), budget.in_use()), (UNIT, UNIT));
    }
}
