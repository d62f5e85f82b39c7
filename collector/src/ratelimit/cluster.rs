//! Per-cluster rate limiting: a quota per canonical cluster id, keyed by a hash with a random
//! per-process key.

use std::hash::BuildHasher;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use governor::Quota;

use super::keyed::KeyedLimiter;

/// Limits reports per cluster id.
pub struct ClusterRateLimiter {
    limiter: KeyedLimiter,
    hasher: std::hash::RandomState,
}

impl ClusterRateLimiter {
    /// `per_hour` reports an hour with bursts of `burst`, remembering up to `tracked` clusters.
    pub fn new(per_hour: NonZeroU32, burst: NonZeroU32, tracked: NonZeroUsize) -> Self {
        let quota = Quota::per_hour(per_hour).allow_burst(burst);
        ClusterRateLimiter {
            limiter: KeyedLimiter::new(quota, tracked),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// `Ok` when the cluster may send a report now; otherwise how long until it may. Cluster ids
    /// arrive in canonical (lowercase) form.
    pub fn check(&self, cluster_id: &str) -> Result<(), Duration> {
        self.limiter.check(self.hasher.hash_one(cluster_id))
    }

    /// Forgets clusters whose state is indistinguishable from a fresh one.
    pub fn housekeep(&self) {
        self.limiter.housekeep();
    }

    /// Clusters whose state is held.
    pub fn tracked(&self) -> usize {
        self.limiter.tracked()
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
