//! The store on its own: retention pruning keeps the cluster summaries right, and a reopened
//! store has everything a previous one committed.

use std::sync::Arc;

use collector::metrics::Metrics;
use collector::store::{NewReport, Store, StoreOptions};
use common::{ClusterIdRule, admit};

const DAY: i64 = 86_400;
const NOW: i64 = 1_763_737_200;

fn report(cluster: &str, timestamp: i64, received_at: i64, kubelet: &str) -> NewReport {
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

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default(), Arc::new(Metrics::new())).unwrap()
}

#[tokio::test]
async fn pruning_deletes_old_reports_and_recomputes_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = "11111111-1111-4111-8111-111111111111";
    let mixed = "22222222-2222-4222-8222-222222222222";
    let old_at = NOW - 500 * DAY;
    let recent_at = NOW - 10 * DAY;
    store
        .insert(report(old, old_at, old_at, "v1.20.0"))
        .await
        .unwrap();
    store
        .insert(report(mixed, old_at, old_at, "v1.20.0"))
        .await
        .unwrap();
    store
        .insert(report(mixed, recent_at, recent_at, "v1.31.0"))
        .await
        .unwrap();
    // An older report (by its own timestamp) received late must not become the latest.
    store
        .insert(report(
            mixed,
            recent_at - 100 * DAY,
            recent_at + 1,
            "v1.19.0",
        ))
        .await
        .unwrap();

    let deleted = store.prune(NOW - 400 * DAY, 10).await.unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(store.prune(NOW - 400 * DAY, 10).await.unwrap(), 0);

    let clusters = store.clusters(None, 10).await.unwrap();
    assert_eq!(
        clusters.len(),
        1,
        "a cluster whose reports are all gone is gone"
    );
    let summary = &clusters[0];
    assert_eq!(summary.cluster_id, mixed);
    assert_eq!(summary.reports, 2);
    assert_eq!(summary.last_seen, recent_at + 1);
    assert_eq!(summary.first_seen, recent_at);
    assert_eq!(summary.latest_master_version.as_deref(), Some("v1.31.0"));
    assert!(
        store
            .cluster_reports(old.into(), None, 10)
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}

#[tokio::test]
async fn pruning_goes_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let cluster = "33333333-3333-4333-8333-333333333333";
    for i in 0..25 {
        let at = NOW - 500 * DAY + i;
        store
            .insert(report(cluster, at, at, "v1.20.0"))
            .await
            .unwrap();
    }
    let mut chunks = Vec::new();
    loop {
        let deleted = store.prune(NOW - 400 * DAY, 10).await.unwrap();
        chunks.push(deleted);
        if deleted < 10 {
            break;
        }
    }
    assert_eq!(chunks, vec![10, 10, 5]);
    assert!(store.clusters(None, 10).await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn a_reopened_store_has_everything_committed_and_knows_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = "44444444-4444-4444-8444-444444444444";
    let first = open(dir.path());
    for i in 0..50 {
        first
            .insert(report(cluster, NOW - i, NOW, "v1.31.0"))
            .await
            .unwrap();
    }
    first.close().await;
    assert!(
        !dir.path().join("collector.sqlite3-wal").exists()
            || std::fs::metadata(dir.path().join("collector.sqlite3-wal"))
                .unwrap()
                .len()
                == 0,
        "a clean stop checkpoints the log into the database"
    );

    let second = open(dir.path());
    let reports = second
        .cluster_reports(cluster.into(), None, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reports.len(), 50);
    let again = second
        .insert(report(cluster, NOW, NOW, "v1.31.0"))
        .await
        .unwrap();
    assert_eq!(again, collector::store::InsertOutcome::Duplicate);
    let changed = second
        .insert(report(cluster, NOW, NOW, "v1.31.1"))
        .await
        .unwrap();
    assert_eq!(changed, collector::store::InsertOutcome::Conflict);
    second.close().await;
}
