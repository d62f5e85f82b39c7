//! The store on its own: retention pruning and erasure keep the cluster summaries right, a
//! reopened store has everything a previous one committed, and the per-sink outbox queues,
//! records, re-queues and backfills deliveries exactly.

use std::sync::Arc;

use collector::metrics::Metrics;
use collector::store::{NewReport, OutboxUpdate, SinkRegistration, Store, StoreOptions};
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
async fn a_cluster_erased_or_pruned_away_starts_again_when_it_reports() {
    use collector::store::InsertOutcome;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
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

fn open_with_sinks(dir: &std::path::Path, sinks: &[&str]) -> Store {
    let options = StoreOptions {
        sinks: sinks
            .iter()
            .map(|name| SinkRegistration {
                name: name.to_string(),
                kind: collector::sinks::SinkKind::Segment,
            })
            .collect(),
        ..StoreOptions::default()
    };
    Store::open(dir, options, Arc::new(Metrics::new())).unwrap()
}

async fn insert_reports(store: &Store, cluster: &str, range: std::ops::Range<i64>) {
    for i in range {
        let outcome = store
            .insert(report(cluster, NOW + i, NOW + i, "v1.31.0"))
            .await
            .unwrap();
        assert_eq!(outcome, collector::store::InsertOutcome::Stored);
    }
}

async fn pending_seqs(store: &Store, sink: &str) -> Vec<i64> {
    let reader = store.outbox_reader().unwrap();
    reader
        .pending(sink, i64::MAX, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|item| item.seq)
        .collect()
}

#[tokio::test]
async fn every_stored_report_is_queued_for_every_sink_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = "55555555-5555-4555-8555-555555555555";
    let store = open_with_sinks(dir.path(), &["a", "b"]);
    insert_reports(&store, cluster, 0..10).await;
    // A duplicate is not queued again.
    let again = store
        .insert(report(cluster, NOW, NOW, "v1.31.0"))
        .await
        .unwrap();
    assert_eq!(again, collector::store::InsertOutcome::Duplicate);
    assert_eq!(pending_seqs(&store, "a").await.len(), 10);
    assert_eq!(pending_seqs(&store, "b").await.len(), 10);

    // Sink a confirms three, retries two, dead-letters one.
    let seqs = pending_seqs(&store, "a").await;
    store
        .update_outbox(OutboxUpdate {
            sink: "a".into(),
            delivered: seqs[..3].to_vec(),
            retried: vec![(seqs[3], "503".into()), (seqs[4], "503".into())],
            dead: vec![(seqs[5], "400: refused".into())],
            retry_at: NOW + 3_600,
        })
        .await
        .unwrap();
    store.close().await;

    let store = open_with_sinks(dir.path(), &["a", "b"]);
    let reader = store.outbox_reader().unwrap();
    // Due now: the four never tried; the two retried are due in an hour.
    let due: Vec<i64> = reader
        .pending("a", NOW, 100)
        .await
        .unwrap()
        .iter()
        .map(|i| i.seq)
        .collect();
    assert_eq!(due, seqs[6..].to_vec());
    assert_eq!(pending_seqs(&store, "a").await.len(), 6);
    let stats = reader.stats("a").await.unwrap();
    assert_eq!((stats.pending, stats.dead), (6, 1));
    assert_eq!(
        pending_seqs(&store, "b").await.len(),
        10,
        "sinks are independent"
    );
    let dead = store
        .deliveries(
            Some(collector::store::DeliveryState::Dead),
            Some("a".into()),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("400: refused"));
    assert_eq!(dead[0].attempts, 1);

    // Re-queueing the dead one makes it pending again, due at once.
    assert_eq!(store.requeue("a", true, 0).await.unwrap(), 1);
    assert_eq!(reader.stats("a").await.unwrap().dead, 0);
    assert_eq!(pending_seqs(&store, "a").await.len(), 7);

    // Erasing the cluster drops its deliveries too.
    store.delete_cluster(cluster).await.unwrap();
    assert!(pending_seqs(&store, "a").await.is_empty());
    assert!(pending_seqs(&store, "b").await.is_empty());
    store.close().await;
}

#[tokio::test]
async fn a_backfill_sends_exactly_the_reports_a_sink_never_had() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = "66666666-6666-4666-8666-666666666666";
    // Reports 0..4 before the sink exists.
    let store = open_with_sinks(dir.path(), &[]);
    insert_reports(&store, cluster, 0..4).await;
    store.close().await;
    // Configured: 4..7 are queued for it and delivered.
    let store = open_with_sinks(dir.path(), &["late"]);
    insert_reports(&store, cluster, 4..7).await;
    let seqs = pending_seqs(&store, "late").await;
    assert_eq!(seqs.len(), 3, "only reports after the sink was added");
    store
        .update_outbox(OutboxUpdate {
            sink: "late".into(),
            delivered: seqs.clone(),
            ..OutboxUpdate::default()
        })
        .await
        .unwrap();
    store.close().await;
    // Removed for a while: 7..9 are stored without it; restarts in between keep its ranges.
    for _ in 0..2 {
        let store = open_with_sinks(dir.path(), &[]);
        store.close().await;
    }
    let store = open_with_sinks(dir.path(), &[]);
    insert_reports(&store, cluster, 7..9).await;
    store.close().await;
    // Back again: 9 is queued. A backfill adds 0..4 and 7..9, not the delivered 4..7.
    let store = open_with_sinks(dir.path(), &["late"]);
    insert_reports(&store, cluster, 9..10).await;
    assert_eq!(pending_seqs(&store, "late").await.len(), 1);
    assert_eq!(store.requeue("late", false, 0).await.unwrap(), 6);
    let reader = store.outbox_reader().unwrap();
    let times: Vec<i64> = reader
        .pending("late", i64::MAX, 100)
        .await
        .unwrap()
        .iter()
        .map(|item| item.report_time - NOW)
        .collect();
    assert_eq!(times, [0, 1, 2, 3, 7, 8, 9]);
    // A second backfill finds nothing new.
    assert_eq!(store.requeue("late", false, 0).await.unwrap(), 0);
    // A backfill `since` a time only reaches reports received since then.
    store.close().await;
    let store = open_with_sinks(dir.path(), &["late", "fresh"]);
    assert_eq!(store.requeue("fresh", false, NOW + 8).await.unwrap(), 2);
    let times: Vec<i64> = store
        .outbox_reader()
        .unwrap()
        .pending("fresh", i64::MAX, 100)
        .await
        .unwrap()
        .iter()
        .map(|item| item.report_time - NOW)
        .collect();
    assert_eq!(times, [8, 9]);
    store.close().await;
}

#[tokio::test]
async fn the_report_count_gauge_follows_inserts_erasure_pruning_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let open_counted = || {
        let metrics = Arc::new(Metrics::new());
        let store = Store::open(dir.path(), StoreOptions::default(), metrics.clone()).unwrap();
        (store, metrics)
    };
    let (store, metrics) = open_counted();
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

    let (reopened, metrics) = open_counted();
    assert_eq!(metrics.store_reports.get(), 3);
    reopened.close().await;
}
