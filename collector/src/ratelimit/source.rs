//! Per-source limits: reports a minute from one address, and new cluster ids an hour from one
//! address, so that one client cannot walk around the per-cluster limit with random ids and fill
//! the store. An address is only ever a keyed hash in memory (the key random per process): never
//! stored, logged or sent anywhere.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use governor::Quota;
use ipnet::IpNet;
use parking_lot::Mutex;

use super::keyed::KeyedLimiter;

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
    /// the source may still bring a new one this hour: `Ok(true)` for a new one, to be
    /// [learned](Self::learn) once its report is stored.
    pub fn check_cluster(&self, source: u64, cluster_id: &str) -> Result<bool, SourceRefusal> {
        let Some(limiter) = &self.new_clusters else {
            return Ok(false);
        };
        let cluster = self.cluster_key.hash_one(cluster_id);
        if self.known_clusters.lock().contains(&cluster) {
            return Ok(false);
        }
        limiter.check(source).map_err(SourceRefusal::NewClusters)?;
        Ok(true)
    }

    /// Marks a cluster whose report was stored as known.
    pub fn learn(&self, cluster_id: &str) {
        if self.new_clusters.is_some() {
            let cluster = self.cluster_key.hash_one(cluster_id);
            self.known_clusters.lock().insert(cluster);
        }
    }

    /// An empty set of known clusters to fill from the store and [put in
    /// place](Self::replace_known): at start, and after retention deleted clusters.
    pub fn known_clusters_builder(&self) -> KnownClusters {
        KnownClusters {
            key: self.cluster_key.clone(),
            hashes: HashSet::new(),
        }
    }

    /// Puts a freshly read set of known clusters in place of the one in use.
    pub fn replace_known(&self, known: KnownClusters) {
        *self.known_clusters.lock() = known.hashes;
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

/// Known clusters being read from the store, keyed like those in use.
pub struct KnownClusters {
    key: RandomState,
    hashes: HashSet<u64>,
}

impl KnownClusters {
    /// Adds one cluster id.
    pub fn add(&mut self, cluster_id: &str) {
        self.hashes.insert(self.key.hash_one(cluster_id));
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
        // Some proxies write a port too: `203.0.113.9:4711`, `[2001:db8::1]:4711`.
        let address = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|socket| socket.ip()));
        match address {
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
        let mut known = limits.known_clusters_builder();
        known.add("known");
        limits.replace_known(known);
        let source = limits.key(ip("192.0.2.1"));
        for id in ["first", "second"] {
            assert!(limits.check_cluster(source, id).unwrap(), "{id} is new");
            limits.learn(id);
        }
        let Err(SourceRefusal::NewClusters(wait)) = limits.check_cluster(source, "third") else {
            panic!("a third new cluster in the hour is refused");
        };
        assert!(wait > Duration::from_secs(60 * 29), "{wait:?}");
        // Clusters it already brought, and clusters known before, still pass.
        for known in ["first", "second", "known", "known"] {
            assert!(!limits.check_cluster(source, known).unwrap());
        }
        // Another source has its own allowance; an erased cluster is new again, and a cluster
        // whose report was not stored is never learned.
        let other = limits.key(ip("192.0.2.2"));
        assert!(limits.check_cluster(other, "third").unwrap());
        assert!(limits.check_cluster(other, "third").unwrap());
        limits.forget("first");
        assert!(limits.check_cluster(source, "first").is_err());
        // Reading the store again drops what is no longer in it.
        limits.replace_known(limits.known_clusters_builder());
        assert!(limits.check_cluster(other, "known").is_err());
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
        for with_port in ["203.0.113.9:4711", "[2001:db8::9]:4711"] {
            let address = with_port
                .rsplit_once(':')
                .unwrap()
                .0
                .trim_matches(['[', ']']);
            assert_eq!(
                source_address(ip("10.0.0.2"), [with_port], &trusted),
                ip(address)
            );
        }
    }
}
