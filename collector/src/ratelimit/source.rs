//! Per-source limits: reports a minute from one address, and new cluster ids an hour from one
//! address, so that one client cannot walk around the per-cluster limit with random ids and fill
//! the store. An address is only ever a keyed hash in memory (the key random per process): never
//! stored, logged or sent anywhere.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use governor::Quota;
use ipnet::IpNet;
use parking_lot::Mutex;

use super::KeyedLimiter;

/// The limits, from the flags.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Reports a source may send a minute (`None`: no limit).
    pub reports_per_minute: Option<NonZeroU32>,
    /// Reports a source may send at once before the rate applies.
    pub reports_burst: NonZeroU32,
    /// Cluster ids the collector has not seen that a source may bring an hour, and at once
    /// (`None`: no limit).
    pub new_clusters_per_hour: Option<NonZeroU32>,
    /// Sources whose state is kept; the least recently seen are forgotten.
    pub tracked: NonZeroUsize,
}

/// Why a source was refused, and how long until it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRefusal {
    /// Over its reports a minute.
    Reports(Duration),
    /// Over its new cluster ids an hour.
    NewClusters(Duration),
}

/// The per-source limits and the cluster ids already known (keyed hashes of each).
pub struct SourceLimits {
    reports: Option<KeyedLimiter>,
    new_clusters: Option<KeyedLimiter>,
    known_clusters: Mutex<HashSet<u64>>,
    address_key: RandomState,
    cluster_key: RandomState,
}

impl SourceLimits {
    /// Limits with `settings` and no cluster known yet.
    pub fn new(settings: &SourceSettings) -> Self {
        let reports = settings.reports_per_minute.map(|per_minute| {
            let quota = Quota::per_minute(per_minute).allow_burst(settings.reports_burst);
            KeyedLimiter::new(quota, settings.tracked)
        });
        let new_clusters = settings.new_clusters_per_hour.map(|per_hour| {
            KeyedLimiter::new(
                Quota::per_hour(per_hour).allow_burst(per_hour),
                settings.tracked,
            )
        });
        SourceLimits {
            reports,
            new_clusters,
            known_clusters: Mutex::new(HashSet::new()),
            address_key: RandomState::new(),
            cluster_key: RandomState::new(),
        }
    }

    /// The key a source's state is kept under: a keyed hash of its address, IPv6 addresses by
    /// their /64 (one host's share of a network), IPv4-mapped ones as IPv4.
    pub fn key(&self, address: IpAddr) -> u64 {
        match address.to_canonical() {
            IpAddr::V4(v4) => self.address_key.hash_one(v4.octets()),
            IpAddr::V6(v6) => self.address_key.hash_one(&v6.octets()[..8]),
        }
    }

    /// Counts one report from `source`, or refuses it.
    pub fn check_report(&self, source: u64) -> Result<(), SourceRefusal> {
        match &self.reports {
            Some(limiter) => limiter.check(source).map_err(SourceRefusal::Reports),
            None => Ok(()),
        }
    }

    /// Lets a report of `cluster_id` from `source` through when the cluster is known, or when
    /// the source may still bring a new one this hour (the cluster is known from then on).
    pub fn check_cluster(&self, source: u64, cluster_id: &str) -> Result<(), SourceRefusal> {
        let Some(limiter) = &self.new_clusters else {
            return Ok(());
        };
        let cluster = self.cluster_key.hash_one(cluster_id);
        if self.known_clusters.lock().contains(&cluster) {
            return Ok(());
        }
        limiter.check(source).map_err(SourceRefusal::NewClusters)?;
        self.known_clusters.lock().insert(cluster);
        Ok(())
    }

    /// Marks clusters as known (those in the store at start, and imported ones).
    pub fn learn<'a>(&self, cluster_ids: impl IntoIterator<Item = &'a str>) {
        if self.new_clusters.is_none() {
            return;
        }
        let hashes: Vec<u64> = cluster_ids
            .into_iter()
            .map(|id| self.cluster_key.hash_one(id))
            .collect();
        self.known_clusters.lock().extend(hashes);
    }

    /// Forgets an erased cluster: if it reports again, it is new again.
    pub fn forget(&self, cluster_id: &str) {
        let cluster = self.cluster_key.hash_one(cluster_id);
        self.known_clusters.lock().remove(&cluster);
    }

    /// Whether the new-cluster limit is on (and so the known clusters are worth loading).
    pub fn limits_new_clusters(&self) -> bool {
        self.new_clusters.is_some()
    }

    /// Forgets sources whose state is back to a fresh one.
    pub fn housekeep(&self) {
        for limiter in [&self.reports, &self.new_clusters].into_iter().flatten() {
            limiter.housekeep();
        }
    }

    /// Sources whose state is held (the larger of the two limits' counts).
    pub fn tracked(&self) -> usize {
        [&self.reports, &self.new_clusters]
            .into_iter()
            .flatten()
            .map(KeyedLimiter::tracked)
            .max()
            .unwrap_or(0)
    }
}

/// The address a request comes from: its peer, unless the peer is one of the `trusted` proxies,
/// in which case `X-Forwarded-For` is read from the right, past every trusted hop, to the first
/// address that is not one. An entry that is not an address stops the walk at the hop that
/// added it.
pub fn source_address<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |address: &IpAddr| {
        let address = address.to_canonical();
        trusted.iter().any(|net| net.contains(&address))
    };
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .collect();
    let mut source = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(address) => {
                source = address;
                if !is_trusted(&address) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    source
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_minute: u32, burst: u32, new_per_hour: u32) -> SourceSettings {
        SourceSettings {
            reports_per_minute: NonZeroU32::new(per_minute),
            reports_burst: NonZeroU32::new(burst).unwrap(),
            new_clusters_per_hour: NonZeroU32::new(new_per_hour),
            tracked: NonZeroUsize::new(1000).unwrap(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_of_reports_and_others_are_not_affected() {
        let limits = SourceLimits::new(&settings(60, 3, 0));
        let one = limits.key(ip("203.0.113.7"));
        for _ in 0..3 {
            limits.check_report(one).unwrap();
        }
        let Err(SourceRefusal::Reports(wait)) = limits.check_report(one) else {
            panic!("a fourth report at once is refused");
        };
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        limits.check_report(limits.key(ip("203.0.113.8"))).unwrap();
    }

    #[test]
    fn ipv6_sources_are_their_64_and_mapped_ipv4_is_ipv4() {
        let limits = SourceLimits::new(&settings(60, 1, 0));
        assert_eq!(
            limits.key(ip("2001:db8:1:2:aaaa::1")),
            limits.key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            limits.key(ip("2001:db8:1:2::1")),
            limits.key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            limits.key(ip("::ffff:198.51.100.4")),
            limits.key(ip("198.51.100.4"))
        );
    }

    #[test]
    fn new_cluster_ids_are_capped_per_source_and_known_ones_always_pass() {
        let limits = SourceLimits::new(&settings(0, 1, 2));
        limits.learn(["known"]);
        let source = limits.key(ip("192.0.2.1"));
        limits.check_cluster(source, "first").unwrap();
        limits.check_cluster(source, "second").unwrap();
        let Err(SourceRefusal::NewClusters(wait)) = limits.check_cluster(source, "third") else {
            panic!("a third new cluster in the hour is refused");
        };
        assert!(wait > Duration::from_secs(60 * 29), "{wait:?}");
        // Clusters it already brought, and clusters known before, still pass.
        for known in ["first", "second", "known", "known"] {
            limits.check_cluster(source, known).unwrap();
        }
        // Another source has its own allowance; an erased cluster is new again.
        let other = limits.key(ip("192.0.2.2"));
        limits.check_cluster(other, "third").unwrap();
        limits.forget("first");
        assert!(limits.check_cluster(source, "first").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let client = ip("203.0.113.9");
        // An untrusted peer's header is ignored: it could say anything.
        assert_eq!(
            source_address(ip("198.51.100.1"), ["203.0.113.9"], &trusted),
            ip("198.51.100.1")
        );
        // Through two trusted proxies: the first address from the right that is not one. What a
        // client put to the left of it (spoofed) is not believed.
        assert_eq!(
            source_address(
                ip("10.0.0.2"),
                ["1.2.3.4, 203.0.113.9", "10.0.0.1"],
                &trusted
            ),
            client
        );
        assert_eq!(source_address(ip("::1"), ["203.0.113.9"], &trusted), client);
        // No header, or one that is not an address: the nearest hop that can be named.
        assert_eq!(source_address(ip("10.0.0.2"), [], &trusted), ip("10.0.0.2"));
        assert_eq!(
            source_address(ip("10.0.0.2"), ["203.0.113.9, unknown"], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            source_address(ip("10.0.0.2"), ["10.0.0.5"], &trusted),
            ip("10.0.0.5")
        );
    }
}
