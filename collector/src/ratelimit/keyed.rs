//! One quota per key over a bounded LRU of keys: the machinery both limiters share.

use std::num::NonZeroUsize;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use lru::LruCache;
use parking_lot::Mutex;

/// Rate-limit state per key (a keyed hash), holding at most a fixed number of keys. The least
/// recently seen are forgotten (they start afresh), and housekeeping drops those whose state is
/// back to a full burst.
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

/// One quota applied to each key on its own, remembering at most a fixed number of keys.
pub struct KeyedLimiter {
    limiter: RateLimiter<u64, BoundedStateStore, DefaultClock>,
}

impl KeyedLimiter {
    /// `quota` for each key, remembering up to `tracked` keys.
    pub fn new(quota: Quota, tracked: NonZeroUsize) -> Self {
        let store = BoundedStateStore {
            states: Mutex::new(LruCache::new(tracked)),
        };
        KeyedLimiter {
            limiter: RateLimiter::new(quota, store, DefaultClock::default()),
        }
    }

    /// `Ok` when `key` may act now (and it is counted); otherwise how long until it may.
    pub fn check(&self, key: u64) -> Result<(), Duration> {
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets keys whose state is indistinguishable from a fresh one.
    pub fn housekeep(&self) {
        self.limiter.retain_recent();
    }

    /// Keys whose state is held.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}
