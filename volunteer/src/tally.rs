//! Folding streamed object metadata into the report's integers: totals, per-namespace histograms
//! and age percentiles, in memory that does not grow with the number of objects.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use common::report::{
    AgePercentiles, OBJECTS_PER_NAMESPACE_BOUNDS, OBJECTS_PER_NAMESPACE_BUCKETS, ObjectStats,
};

/// Sub-buckets per power of two in the age histogram: ages are kept within ~9%.
const AGE_STEPS_PER_DOUBLING: u32 = 8;
/// Age buckets: up to 2^40 seconds (34,000 years) with 8 steps a doubling.
const AGE_BUCKETS: usize = 41 * AGE_STEPS_PER_DOUBLING as usize;

/// Age distribution in fixed log-scale buckets, plus the exact maximum.
#[derive(Debug, Clone)]
pub struct AgeHistogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for AgeHistogram {
    fn default() -> Self {
        AgeHistogram {
            counts: vec![0; AGE_BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl AgeHistogram {
    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &AgeHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Records one age in seconds.
    pub fn record(&mut self, seconds: u64) {
        self.counts[bucket_of(seconds)] += 1;
        self.total += 1;
        self.max = self.max.max(seconds);
    }

    /// p50, p90, p99 and max in whole seconds (each percentile is the upper bound of its
    /// bucket, never above the maximum), or `None` when nothing was recorded.
    pub fn percentiles(&self) -> Option<AgePercentiles> {
        if self.total == 0 {
            return None;
        }
        let at = |q: f64| -> i64 {
            let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
            let mut seen = 0;
            for (bucket, count) in self.counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return upper_bound(bucket).min(self.max) as i64;
                }
            }
            self.max as i64
        };
        Some(AgePercentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: self.max as i64,
        })
    }
}

/// Bucket 0 holds age 0; bucket `b >= 1` holds ages in `[2^((b-1)/8), 2^(b/8))`.
fn bucket_of(seconds: u64) -> usize {
    if seconds == 0 {
        return 0;
    }
    let exact = (seconds as f64).log2() * f64::from(AGE_STEPS_PER_DOUBLING);
    ((exact.floor() as usize) + 1).min(AGE_BUCKETS - 1)
}

/// The largest whole number of seconds in `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    if bucket == 0 {
        return 0;
    }
    let bound = 2f64.powf(bucket as f64 / f64::from(AGE_STEPS_PER_DOUBLING));
    (bound.ceil() as u64).saturating_sub(1).max(1)
}

/// The tally of one kind of object: how many, in which namespaces, how old.
#[derive(Debug, Clone, Default)]
pub struct KindTally {
    /// Objects per namespace, keyed by a hash of the namespace name (names are never kept). The
    /// hash is the same in every tally, so tallies of several namespaces merge.
    per_namespace: HashMap<u64, u64>,
    total: u64,
    ages: AgeHistogram,
}

/// The namespace-name hash shared by every tally.
type NamespaceHasher = BuildHasherDefault<DefaultHasher>;

impl KindTally {
    /// Counts one object of `namespace`, created at `created` (unix seconds), seen at `now`.
    pub fn add(&mut self, namespace: &str, created: Option<i64>, now: i64) {
        *self
            .per_namespace
            .entry(NamespaceHasher::default().hash_one(namespace))
            .or_default() += 1;
        self.total += 1;
        if let Some(created) = created {
            self.ages.record(now.saturating_sub(created).max(0) as u64);
        }
    }

    /// Adds another tally (of other namespaces, or the same) to this one.
    pub fn merge(&mut self, other: KindTally) {
        for (namespace, count) in other.per_namespace {
            *self.per_namespace.entry(namespace).or_default() += count;
        }
        self.total += other.total;
        self.ages.merge(&other.ages);
    }

    /// Objects counted so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The report's statistics. `namespaces_in_scope`, when known, lets the first bucket count the
    /// namespaces that hold no object of this kind.
    pub fn finish(&self, namespaces_in_scope: Option<u64>) -> ObjectStats {
        let mut buckets = vec![0i64; OBJECTS_PER_NAMESPACE_BUCKETS];
        for count in self.per_namespace.values() {
            buckets[namespace_bucket(*count)] += 1;
        }
        if let Some(scope) = namespaces_in_scope {
            let with_objects = self.per_namespace.len() as u64;
            buckets[0] += scope.saturating_sub(with_objects) as i64;
        }
        ObjectStats {
            total: self.total as i64,
            per_namespace: buckets,
            age_seconds: self.ages.percentiles(),
        }
    }
}

/// The histogram bucket of a namespace holding `count` objects.
pub fn namespace_bucket(count: u64) -> usize {
    OBJECTS_PER_NAMESPACE_BOUNDS
        .iter()
        .position(|bound| count <= *bound)
        .unwrap_or(OBJECTS_PER_NAMESPACE_BOUNDS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_buckets_follow_the_bounds() {
        let cases = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 3),
            (5, 4),
            (1024, 11),
            (1025, 12),
            (65_536, 17),
            (65_537, 18),
        ];
        for (count, bucket) in cases {
            assert_eq!(namespace_bucket(count), bucket, "{count}");
        }
    }

    #[test]
    fn a_tally_counts_per_namespace_and_fills_empty_namespaces() {
        let mut tally = KindTally::default();
        let now = 1_000_000;
        for _ in 0..3 {
            tally.add("a", Some(now - 10), now);
        }
        tally.add("b", Some(now - 100), now);
        tally.add("c", None, now);
        let stats = tally.finish(Some(10));
        assert_eq!(stats.total, 5);
        assert_eq!(stats.per_namespace.len(), OBJECTS_PER_NAMESPACE_BUCKETS);
        assert_eq!(stats.per_namespace[0], 7, "10 namespaces, 3 with objects");
        assert_eq!(stats.per_namespace[1], 2, "b and c hold one");
        assert_eq!(stats.per_namespace[3], 1, "a holds three (bucket <= 4)");
        let ages = stats.age_seconds.unwrap();
        assert_eq!(ages.max, 100);
        assert!(ages.p50 >= 10 && ages.p50 <= 11, "{ages:?}");
        assert!(ages.p99 <= ages.max);
    }

    #[test]
    fn percentiles_are_within_a_bucket_and_ordered() {
        let mut ages = AgeHistogram::default();
        for seconds in 1..=10_000u64 {
            ages.record(seconds);
        }
        let p = ages.percentiles().unwrap();
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max);
        for (got, exact) in [(p.p50, 5_000.0), (p.p90, 9_000.0), (p.p99, 9_900.0)] {
            let ratio = got as f64 / exact;
            assert!((0.99..1.1).contains(&ratio), "{got} vs {exact}");
        }
        assert_eq!(p.max, 10_000);
        assert_eq!(AgeHistogram::default().percentiles(), None);
    }

    #[test]
    fn tallies_of_several_namespaces_merge() {
        let now = 1_000;
        let mut a = KindTally::default();
        a.add("team-a", Some(now - 5), now);
        let mut b = KindTally::default();
        b.add("team-b", Some(now - 50), now);
        b.add("team-b", Some(now - 50), now);
        a.merge(b);
        let stats = a.finish(Some(2));
        assert_eq!(stats.total, 3);
        assert_eq!(stats.per_namespace[1], 1);
        assert_eq!(stats.per_namespace[2], 1);
        assert_eq!(stats.per_namespace[0], 0);
        assert_eq!(stats.age_seconds.unwrap().max, 50);
    }

    #[test]
    fn memory_does_not_grow_with_objects() {
        let mut tally = KindTally::default();
        for i in 0..100_000i64 {
            tally.add(if i % 2 == 0 { "x" } else { "y" }, Some(i), 200_000);
        }
        assert_eq!(tally.per_namespace.len(), 2);
        assert_eq!(tally.ages.counts.len(), AGE_BUCKETS);
        assert_eq!(tally.total(), 100_000);
    }
}
