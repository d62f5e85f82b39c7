//! The per-sink outbox: every stored report is queued for every sink, and outcomes, restarts,
//! re-queues, backfills and erasure keep each sink's queue exact.

use collector::store::{InsertOutcome, OutboxUpdate, Store};

use super::Backend;
use crate::reports::{NOW, report};

async fn insert_reports(store: &Store, cluster: &str, range: std::ops::Range<i64>) {
    for i in range {
        let outcome = store
            .insert(report(cluster, NOW + i, NOW + i, "v1.31.0"))
            .await
            .unwrap();
        assert_eq!(outcome, InsertOutcome::Stored);
    }
}

/// Confirms `seqs` as delivered to `sink` and moves its position past the last of them.
async fn deliver(store: &Store, sink: &str, seqs: &[i64]) {
    store
        .update_outbox(OutboxUpdate {
            sink: sink.into(),
            delivered: seqs.to_vec(),
            position: seqs.last().copied(),
            ..OutboxUpdate::default()
        })
        .await
        .unwrap();
}

/// The report times (less `NOW`) of what `sink`'s worker would be handed at `now`.
async fn pending_times(store: &Store, sink: &str, now: i64) -> Vec<i64> {
    let reader = store.outbox_reader().unwrap();
    reader
        .pending(sink, now, 100)
        .await
        .unwrap()
        .items
        .iter()
        .map(|item| item.report_time - NOW)
        .collect()
}

async fn pending_seqs(store: &Store, sink: &str) -> Vec<i64> {
    let reader = store.outbox_reader().unwrap();
    reader
        .pending(sink, i64::MAX, 10_000)
        .await
        .unwrap()
        .items
        .iter()
        .map(|item| item.seq)
        .collect()
}

pub async fn every_stored_report_is_queued_for_every_sink_and_survives_a_restart(
    backend: &impl Backend,
) {
    let cluster = "55555555-5555-4555-8555-555555555555";
    let store = backend.open_with_sinks(&["a", "b"]).await;
    insert_reports(&store, cluster, 0..10).await;
    // A duplicate is not queued again.
    let again = store
        .insert(report(cluster, NOW, NOW, "v1.31.0"))
        .await
        .unwrap();
    assert_eq!(again, InsertOutcome::Duplicate);
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
            position: Some(seqs[5]),
            generation: 0,
        })
        .await
        .unwrap();
    store.close().await;

    let store = backend.open_with_sinks(&["a", "b"]).await;
    let reader = store.outbox_reader().unwrap();
    // Due now: the four never tried; the two retried are due in an hour.
    let due: Vec<i64> = reader
        .pending("a", NOW, 100)
        .await
        .unwrap()
        .items
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

pub async fn a_backfill_sends_exactly_the_reports_a_sink_never_had(backend: &impl Backend) {
    let cluster = "66666666-6666-4666-8666-666666666666";
    // Reports 0..4 before the sink exists.
    let store = backend.open_with_sinks(&[]).await;
    insert_reports(&store, cluster, 0..4).await;
    store.close().await;
    // Configured: 4..7 are queued for it and delivered.
    let store = backend.open_with_sinks(&["late"]).await;
    insert_reports(&store, cluster, 4..7).await;
    let seqs = pending_seqs(&store, "late").await;
    assert_eq!(seqs.len(), 3, "only reports after the sink was added");
    deliver(&store, "late", &seqs).await;
    store.close().await;
    // Removed for a while: 7..9 are stored without it; restarts in between keep its ranges.
    for _ in 0..2 {
        let store = backend.open_with_sinks(&[]).await;
        store.close().await;
    }
    let store = backend.open_with_sinks(&[]).await;
    insert_reports(&store, cluster, 7..9).await;
    store.close().await;
    // Back again: 9 is queued. A backfill adds 0..4 and 7..9, not the delivered 4..7.
    let store = backend.open_with_sinks(&["late"]).await;
    insert_reports(&store, cluster, 9..10).await;
    assert_eq!(pending_seqs(&store, "late").await.len(), 1);
    assert_eq!(store.requeue("late", false, 0).await.unwrap(), 6);
    let times = pending_times(&store, "late", i64::MAX).await;
    assert_eq!(times, [0, 1, 2, 3, 7, 8, 9]);
    // A second backfill finds nothing new.
    assert_eq!(store.requeue("late", false, 0).await.unwrap(), 0);
    // A backfill `since` a time only reaches reports received since then.
    store.close().await;
    let store = backend.open_with_sinks(&["late", "fresh"]).await;
    assert_eq!(store.requeue("fresh", false, NOW + 8).await.unwrap(), 2);
    let times = pending_times(&store, "fresh", i64::MAX).await;
    assert_eq!(times, [8, 9]);
    store.close().await;
}

pub async fn a_failed_delivery_gets_a_row_and_the_queue_lists_after_it(backend: &impl Backend) {
    use collector::store::{DeliveryCursor, DeliveryState, Held};
    let (kept, erased) = (
        "77777777-7777-4777-8777-777777777777",
        "88888888-8888-4888-8888-888888888888",
    );
    let store = backend.open_with_sinks(&["a"]).await;
    insert_reports(&store, kept, 0..5).await;
    insert_reports(&store, erased, 5..6).await;
    let seqs = pending_seqs(&store, "a").await;
    assert_eq!(seqs.len(), 6);
    // Erased while its delivery was in flight: its failure leaves no row behind.
    store.delete_cluster(erased).await.unwrap();
    store
        .update_outbox(OutboxUpdate {
            sink: "a".into(),
            delivered: vec![seqs[0], seqs[3], seqs[4]],
            retried: vec![(seqs[1], "503".into()), (seqs[5], "503".into())],
            dead: vec![(seqs[2], "400: refused".into())],
            retry_at: NOW + 3_600,
            position: Some(seqs[5]),
            generation: 0,
        })
        .await
        .unwrap();
    let rows = store.deliveries(None, None, None, 100).await.unwrap();
    let listed: Vec<_> = rows
        .iter()
        .map(|row| (row.report_seq, row.state, row.attempts))
        .collect();
    assert_eq!(
        listed,
        [
            (seqs[1], DeliveryState::Pending, 1),
            (seqs[2], DeliveryState::Dead, 1)
        ]
    );
    assert_eq!(rows[0].queued_at, NOW + 1, "queued when it was received");
    assert_eq!(rows[0].next_attempt_at, NOW + 3_600);

    // Two more: queued after the position, listed and counted with the retried row.
    insert_reports(&store, kept, 6..8).await;
    let reader = store.outbox_reader().unwrap();
    let stats = reader.stats("a").await.unwrap();
    assert_eq!((stats.pending, stats.dead), (3, 1));
    assert_eq!(stats.oldest_pending, Some(NOW + 1));
    assert_eq!(stats.next_due, Some(0), "a queued report is due at once");
    let due: Vec<_> = reader
        .pending("a", NOW, 100)
        .await
        .unwrap()
        .items
        .iter()
        .map(|item| (item.report_time - NOW, item.held, item.attempts))
        .collect();
    assert_eq!(
        due,
        [(6, Held::AfterPosition, 0), (7, Held::AfterPosition, 0)]
    );
    let pending = |after: Option<DeliveryCursor>, limit| {
        let store = store.clone();
        async move {
            store
                .deliveries(Some(DeliveryState::Pending), Some("a".into()), after, limit)
                .await
                .unwrap()
                .iter()
                .map(|row| (row.report_seq, row.attempts, row.queued_at - NOW))
                .collect::<Vec<_>>()
        }
    };
    let first = pending(None, 2).await;
    assert_eq!(first[0], (seqs[1], 1, 1));
    assert_eq!((first[1].1, first[1].2), (0, 6));
    let cursor = DeliveryCursor {
        sink: "a".into(),
        seq: first[1].0,
    };
    let rest = pending(Some(cursor), 2).await;
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].1, rest[0].2), (0, 7));
    store.close().await;

    // A restart keeps the position: nothing delivered comes back.
    let store = backend.open_with_sinks(&["a"]).await;
    let times = pending_times(&store, "a", i64::MAX).await;
    assert_eq!(times, [1, 6, 7]);
    store.close().await;
}

pub async fn a_backfill_during_a_batch_keeps_the_position_where_it_was(backend: &impl Backend) {
    let cluster = "99999999-9999-4999-8999-999999999999";
    let store = backend.open_with_sinks(&["a"]).await;
    insert_reports(&store, cluster, 0..2).await;
    let first = pending_seqs(&store, "a").await;
    deliver(&store, "a", &first).await;
    store.close().await;
    // Reports 2 and 3 are stored while the sink is not configured; it comes back for 4.
    let store = backend.open_with_sinks(&[]).await;
    insert_reports(&store, cluster, 2..4).await;
    store.close().await;
    let store = backend.open_with_sinks(&["a"]).await;
    insert_reports(&store, cluster, 4..5).await;
    let reader = store.outbox_reader().unwrap();
    let batch = reader.pending("a", NOW, 100).await.unwrap();
    assert_eq!(batch.items.len(), 1);
    let in_flight: Vec<i64> = batch.items.iter().map(|item| item.seq).collect();
    // The backfill queues 2 and 3 (after the position) while report 4 is being sent, and the
    // sink then refuses report 4 for good.
    assert_eq!(store.requeue("a", false, 0).await.unwrap(), 2);
    store
        .update_outbox(OutboxUpdate {
            sink: "a".into(),
            dead: vec![(in_flight[0], "400".into())],
            position: Some(in_flight[0]),
            generation: batch.generation,
            ..OutboxUpdate::default()
        })
        .await
        .unwrap();
    let times = pending_times(&store, "a", NOW).await;
    assert_eq!(
        times,
        [2, 3, 4],
        "nothing the backfill queued is passed over"
    );
    assert_eq!(
        reader.stats("a").await.unwrap().dead,
        0,
        "read again instead"
    );
    store.close().await;
}
