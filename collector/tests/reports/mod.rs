//! A report as ingest stores it (admitted from its JSON, received at a given time), for the tests
//! of the store and of its outbox.

use collector::store::NewReport;
use common::{ClusterIdRule, admit};

/// A time in November 2025, unix seconds.
pub const NOW: i64 = 1_763_737_200;

/// A one-node report of `cluster` at `timestamp`, received at `received_at`.
pub fn report(cluster: &str, timestamp: i64, received_at: i64, kubelet: &str) -> NewReport {
    let body = serde_json::json!({
        "version": "v1.1.0",
        "timestamp": timestamp.to_string(),
        "clusterID": cluster,
        "masterVersion": kubelet,
        "nodes": [{"id": "c8863d09ecc5be8d9791f72acd275fc2", "kubeletVersion": kubelet}],
    });
    let admitted = admit(
        body.to_string().as_bytes(),
        ClusterIdRule::Uuid,
        received_at,
    )
    .unwrap();
    NewReport::from(admitted)
}
