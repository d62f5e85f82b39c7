//! Reports in the store: insert (new, duplicate, conflict), retention pruning and erasure keep
//! the cluster summaries right, and a reopened store has everything a previous one committed.

use std::sync::Arc;

use collector::metrics::Metrics;
use collector::store::{InsertOutcome, StoreOptions};

use super::Backend;
use crate::reports::{NOW, report};

const DAY: i64 = 86_400;

pub async fn pruning_deletes_old_reports_and_recomputes_clusters(backend: &impl Backend) {
    let store = backend.open().await;
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

pub async fn a_cluster_erased_or_pruned_away_starts_again_when_it_reports(backend: &impl Backend) {
    let store = backend.open().await;
    let erased = "55555555-5555-4555-8555-555555555555";
    let pruned = "66666666-6666-4666-8666-666666666666";
    let old_at = NOW - 500 * DAY;
    for cluster in [erased, pruned] {
        store
            .insert(report(cluster, old_at, old_at, "v1.20.0"))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_cluster(erased).await.unwrap(), 1);
    assert_eq!(store.prune(NOW - 400 * DAY, 10).await.unwrap(), 1);
    assert!(store.clusters(None, 10).await.unwrap().is_empty());
    for cluster in [erased, pruned] {
        // The same report again is new: nothing of the cluster is left to match it.
        let resent = report(cluster, old_at, NOW, "v1.20.0");
        assert_eq!(
            store.insert(resent.clone()).await.unwrap(),
            InsertOutcome::Stored
        );
        assert_eq!(
            store.insert(resent).await.unwrap(),
            InsertOutcome::Duplicate
        );
        let reports = store
            .cluster_reports(cluster.into(), None, 10)
            .await
            .unwrap()
            .expect("the cluster is known again");
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].received_at, NOW);
    }
    let clusters = store.clusters(None, 10).await.unwrap();
    assert_eq!(clusters.len(), 2);
    assert!(
        clusters
            .iter()
            .all(|c| c.reports == 1 && c.first_seen == NOW)
    );
    store.close().await;
}

pub async fn pruning_goes_in_chunks(backend: &impl Backend) {
    let store = backend.open().await;
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

pub async fn a_reopened_store_has_everything_committed_and_knows_duplicates(
    backend: &impl Backend,
) {
    let cluster = "44444444-4444-4444-8444-444444444444";
    let first = backend.open().await;
    for i in 0..50 {
        first
            .insert(report(cluster, NOW - i, NOW, "v1.31.0"))
            .await
            .unwrap();
    }
    first.close().await;

    let second = backend.open().await;
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
    assert_eq!(again, InsertOutcome::Duplicate);
    let changed = second
        .insert(report(cluster, NOW, NOW, "v1.31.1"))
        .await
        .unwrap();
    assert_eq!(changed, InsertOutcome::Conflict);
    second.close().await;
}

pub async fn the_report_count_gauge_follows_inserts_erasure_pruning_and_a_reopen(
    backend: &impl Backend,
) {
    let open_counted = async || {
        let metrics = Arc::new(Metrics::new());
        let store = backend
            .open_with(StoreOptions::default(), metrics.clone())
            .await;
        (store, metrics)
    };
    let (store, metrics) = open_counted().await;
    let kept = "55555555-5555-4555-8555-555555555555";
    let erased = "66666666-6666-4666-8666-666666666666";
    for i in 0..3 {
        store
            .insert(report(kept, NOW - i, NOW, "v1.31.0"))
            .await
            .unwrap();
        store
            .insert(report(erased, NOW - i, NOW, "v1.31.0"))
            .await
            .unwrap();
    }
    store
        .insert(report(kept, NOW - 500 * DAY, NOW - 500 * DAY, "v1.20.0"))
        .await
        .unwrap();
    // A duplicate stores nothing.
    store
        .insert(report(kept, NOW, NOW, "v1.31.0"))
        .await
        .unwrap();
    assert_eq!(metrics.store_reports.get(), 7);
    assert_eq!(store.delete_cluster(erased).await.unwrap(), 3);
    assert_eq!(metrics.store_reports.get(), 4);
    assert_eq!(store.prune(NOW - 400 * DAY, 10).await.unwrap(), 1);
    assert_eq!(metrics.store_reports.get(), 3);
    store.close().await;

    let (reopened, metrics) = open_counted().await;
    assert_eq!(metrics.store_reports.get(), 3);
    reopened.close().await;
}
