//! From request bytes to a stored-ready report: decompress, decode, validate, sanitize, time
//! and id.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::decode::decode;
use crate::report::Report;
use crate::sanitize::{self, Changes};
use crate::time::{self, ReportTime, TimeSource};
use crate::validate::{ClusterIdRule, validate};
use crate::wire::{Encoding, decode_body};
use crate::{Error, id};

/// A report the collector may store, with everything it needs to store it.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The sanitized report; `timestamp` holds [`Admitted::time`] in unix seconds and a UUID
    /// `clusterID` is in canonical lowercase form.
    pub report: Report,
    /// The report id (idempotency and sink dedup key).
    pub id: Uuid,
    /// The report's time and its source.
    pub time: ReportTime,
    /// Unix seconds when the collector received it.
    pub received_at: i64,
    /// The canonical JSON of the sanitized report with an empty `timestamp` (the time is kept
    /// beside it): what is stored, and what [`Admitted::content_sha256`] hashes.
    pub canonical: Vec<u8>,
    /// SHA-256 of [`Admitted::canonical`]; tells a resend from a conflicting report.
    pub content_sha256: [u8; 32],
    /// Unknown fields dropped while decoding.
    pub unknown_fields: usize,
    /// What sanitizing changed.
    pub changes: Changes,
}

/// The stored form of a cluster id: a UUID in lowercase hyphenated form, any other id lowercased.
/// Cluster ids are case-insensitive (report ids hash the lowercased id), so `ABC` and `abc` are
/// one cluster.
pub fn canonical_cluster_id(id: &str) -> String {
    match Uuid::try_parse(id) {
        Ok(uuid) => uuid.hyphenated().to_string(),
        Err(_) => id.to_ascii_lowercase(),
    }
}

/// Admits a request body as it came off the wire (`encoding`, at most `limit` bytes once
/// decompressed): [`decode_body`], then [`admit`].
pub fn admit_body(
    wire: &[u8],
    encoding: Encoding,
    limit: usize,
    rule: ClusterIdRule,
    received_at: i64,
) -> Result<Admitted, Error> {
    admit(&decode_body(wire, encoding, limit)?, rule, received_at)
}

/// Decodes, validates and sanitizes one report received at `received_at` (unix seconds).
pub fn admit(body: &[u8], rule: ClusterIdRule, received_at: i64) -> Result<Admitted, Error> {
    let decoded = decode(body).map_err(Error::Decode)?;
    let mut report = decoded.report;
    validate(&report, rule).map_err(Error::Invalid)?;
    report.cluster_id = canonical_cluster_id(&report.cluster_id);
    let changes = sanitize::report(&mut report);
    let time = time::resolve(&report.timestamp, received_at);

    report.timestamp.clear();
    let canonical = serde_json::to_vec(&report).expect("a report always serializes");
    let content_sha256: [u8; 32] = Sha256::digest(&canonical).into();
    let id = match time.source {
        TimeSource::Client => id::for_time(&report.cluster_id, time.seconds),
        TimeSource::Received => id::for_content(
            &report.cluster_id,
            received_at.div_euclid(86_400),
            &content_sha256,
        ),
    };
    report.timestamp = time.seconds.to_string();
    Ok(Admitted {
        report,
        id,
        time,
        received_at,
        canonical,
        content_sha256,
        unknown_fields: decoded.unknown_fields,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_737_200;

    fn body(cluster: &str, timestamp: &str, kubelet: &str) -> Vec<u8> {
        format!(
            r#"{{"version":"v1.1.0","timestamp":"{timestamp}","clusterID":"{cluster}",
                "nodes":[{{"id":"c8863d09ecc5be8d9791f72acd275fc2","kubeletVersion":"{kubelet}"}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn resends_share_an_id_and_changes_do_not() {
        let c = "2f9c93d3-156c-47aa-8802-578ffca9b50e";
        let ts = NOW.to_string();
        let first = admit(&body(c, &ts, "v1.31.2"), ClusterIdRule::Uuid, NOW).unwrap();
        let resend = admit(&body(c, &ts, "v1.31.2"), ClusterIdRule::Uuid, NOW + 60).unwrap();
        assert_eq!(first.id, resend.id);
        assert_eq!(first.content_sha256, resend.content_sha256);
        let changed = admit(&body(c, &ts, "v1.31.3"), ClusterIdRule::Uuid, NOW).unwrap();
        assert_eq!(first.id, changed.id, "same cluster and second: same id");
        assert_ne!(
            first.content_sha256, changed.content_sha256,
            "so this is a conflict"
        );
        assert_eq!(first.time.source, TimeSource::Client);
        assert_eq!(first.report.timestamp, ts);
    }

    #[test]
    fn reports_without_time_are_identified_by_content_and_day() {
        let c = "2f9c93d3-156c-47aa-8802-578ffca9b50e";
        let a = admit(&body(c, "", "v1.3.2"), ClusterIdRule::Uuid, NOW).unwrap();
        let junk = admit(
            &body(c, "867530909031976", "v1.3.2"),
            ClusterIdRule::Uuid,
            NOW + 5,
        )
        .unwrap();
        assert_eq!(a.id, junk.id, "an implausible timestamp is no timestamp");
        assert_eq!(a.time.source, TimeSource::Received);
        assert_eq!(junk.report.timestamp, (NOW + 5).to_string());
        let next_day = admit(&body(c, "", "v1.3.2"), ClusterIdRule::Uuid, NOW + 86_400).unwrap();
        assert_ne!(a.id, next_day.id);
        let other = admit(&body(c, "", "v1.3.3"), ClusterIdRule::Uuid, NOW).unwrap();
        assert_ne!(a.id, other.id);
    }

    #[test]
    fn cluster_ids_are_canonical() {
        let upper = "2F9C93D3-156C-47AA-8802-578FFCA9B50E";
        let a = admit(&body(upper, "", "v1.3.2"), ClusterIdRule::Uuid, NOW).unwrap();
        assert_eq!(a.report.cluster_id, upper.to_lowercase());
        let relaxed = admit(&body("Prod-EU", "", "v1.3.2"), ClusterIdRule::Relaxed, NOW).unwrap();
        assert_eq!(relaxed.report.cluster_id, "prod-eu");
    }

    #[test]
    fn the_canonical_form_has_no_timestamp_and_decodes_back() {
        let c = "2f9c93d3-156c-47aa-8802-578ffca9b50e";
        let a = admit(
            &body(c, &NOW.to_string(), "v1.31.2"),
            ClusterIdRule::Uuid,
            NOW,
        )
        .unwrap();
        let mut back: Report = serde_json::from_slice(&a.canonical).unwrap();
        assert_eq!(back.timestamp, "");
        back.timestamp = a.time.seconds.to_string();
        assert_eq!(back, a.report);
    }

    #[test]
    fn errors_carry_their_problems() {
        let err = admit(b"{", ClusterIdRule::Uuid, NOW).unwrap_err();
        assert!(matches!(err, Error::Decode(_)));
        let err = admit(&body("not-a-uuid", "", "v1"), ClusterIdRule::Uuid, NOW).unwrap_err();
        assert_eq!(err.problems()[0].field, "clusterID");
    }
}
