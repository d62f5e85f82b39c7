//! Per-cluster rate limiting (GCRA from `governor`) over a bounded LRU of cluster ids, so that a
//! flood of random ids evicts old state instead of growing memory.

use parking_lot::Mutex;
use std::hash::BuildHasher;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use lru::LruCache;

/// Rate-limit state per cluster, keyed by a hash of the canonical cluster id, holding at most
/// a fixed number of clusters. The least recently seen are forgotten (they start afresh), and
/// housekeeping drops those whose state is back to a full burst.
pub struct BoundedStateStore {
    states: Mutex<LruCache<u64, Nanos>>,
}

impl StateStore for BoundedStateStore {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut states = self.states.lock();
        let (result, next) = f(states.get(key).copied())?;
        states.put(*key, next);
        Ok(result)
    }
}

impl ShrinkableKeyedStateStore<u64> for BoundedStateStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let mut states = self.states.lock();
        let stale: Vec<u64> = states
            .iter()
            .filter(|(_, at)| **at <= drop_below)
            .map(|(key, _)| *key)
            .collect();
        for key in stale {
            states.pop(&key);
        }
    }

    fn len(&self) -> usize {
        self.states.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Limits reports per cluster id.
pub struct ClusterRateLimiter {
    limiter: RateLimiter<u64, BoundedStateStore, DefaultClock>,
    hasher: std::hash::RandomState,
}

impl ClusterRateLimiter {
    /// `per_hour` reports an hour with bursts of `burst`, remembering up to `tracked` clusters.
    pub fn new(per_hour: NonZeroU32, burst: NonZeroU32, tracked: NonZeroUsize) -> Self {
        let quota = Quota::per_hour(per_hour).allow_burst(burst);
        let store = BoundedStateStore {
            states: Mutex::new(LruCache::new(tracked)),
        };
        ClusterRateLimiter {
            limiter: RateLimiter::new(quota, store, DefaultClock::default()),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// `Ok` when the cluster may send a report now; otherwise how long until it may. Cluster ids
    /// arrive in canonical (lowercase) form.
    pub fn check(&self, cluster_id: &str) -> Result<(), Duration> {
        let key = self.hasher.hash_one(cluster_id);
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets clusters whose state is indistinguishable from a fresh one.
    pub fn housekeep(&self) {
        self.limiter.retain_recent();
    }

    /// Clusters whose state is held.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_hour: u32, burst: u32, tracked: usize) -> ClusterRateLimiter {
        ClusterRateLimiter::new(
            NonZeroU32::new(per_hour).unwrap(),
            NonZeroU32::new(burst).unwrap(),
            NonZeroUsize::new(tracked).unwrap(),
        )
    }

    #[test]
    fn a_burst_then_the_hourly_rate() {
        let limiter = limiter(60, 10, 100);
        for _ in 0..10 {
            assert!(limiter.check("cluster-a").is_ok());
        }
        let wait = limiter.check("cluster-a").unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        // Other clusters are unaffected.
        assert!(limiter.check("cluster-b").is_ok());
    }

    #[test]
    fn memory_is_bounded_by_the_tracked_count() {
        let limiter = limiter(60, 1, 3);
        for i in 0..1000 {
            assert!(limiter.check(&format!("random-{i}")).is_ok());
        }
        assert_eq!(limiter.tracked(), 3);
        // The most recent ones are still limited; the forgotten ones start afresh.
        assert!(limiter.check("random-999").is_err());
        assert!(limiter.check("random-0").is_ok());
    }

    #[test]
    fn housekeeping_keeps_limited_clusters() {
        let limiter = limiter(60, 2, 100);
        limiter.check("busy").unwrap();
        limiter.check("busy").unwrap();
        limiter.housekeep();
        assert_eq!(limiter.tracked(), 1, "a cluster still owing time is kept");
        assert!(limiter.check("busy").is_err());
    }
}
