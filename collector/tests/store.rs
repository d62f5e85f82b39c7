//! The store's conformance suite (`conformance/`) on every backend, and what only one backend
//! promises.

mod conformance;
mod database;
mod reports;

use conformance::{Backend, Sqlite};
use reports::{NOW, report};

/// A test of each named conformance function (in `conformance::$module`) on every backend.
macro_rules! on_every_backend {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    crate::conformance::$module::$test(&crate::conformance::Sqlite::new()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let name = concat!(stringify!($module), "::", stringify!($test));
                    if let Some(backend) = crate::conformance::Postgres::new(name).await {
                        crate::conformance::$module::$test(&backend).await;
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    reports::pruning_deletes_old_reports_and_recomputes_clusters,
    reports::a_cluster_erased_or_pruned_away_starts_again_when_it_reports,
    reports::pruning_goes_in_chunks,
    reports::a_reopened_store_has_everything_committed_and_knows_duplicates,
    reports::the_report_count_gauge_follows_inserts_erasure_pruning_and_a_reopen,
    outbox::every_stored_report_is_queued_for_every_sink_and_survives_a_restart,
    outbox::a_backfill_sends_exactly_the_reports_a_sink_never_had,
    outbox::a_failed_delivery_gets_a_row_and_the_queue_lists_after_it,
    outbox::a_backfill_during_a_batch_keeps_the_position_where_it_was,
    commits::reports_sent_together_share_commits_and_each_gets_its_answer,
    commits::a_waiter_wakes_when_the_reports_it_waits_for_are_stored,
    listing::clusters_are_listed_in_id_order_page_by_page,
    listing::a_clusters_reports_are_listed_newest_first_page_by_page,
    listing::statistics_count_the_latest_report_of_each_cluster_seen_in_the_window,
    listing::the_store_says_it_is_available_and_how_large_it_is,
    weekly::the_rollup_counts_each_cluster_week_once_and_answers_every_complete_week,
);

#[tokio::test]
async fn a_clean_stop_leaves_the_embedded_log_empty() {
    let backend = Sqlite::new();
    let store = backend.open().await;
    let cluster = "44444444-4444-4444-8444-444444444444";
    for i in 0..50 {
        store
            .insert(report(cluster, NOW - i, NOW, "v1.31.0"))
            .await
            .unwrap();
    }
    store.close().await;
    let log = backend.0.path().join("collector.sqlite3-wal");
    assert!(
        !log.exists() || std::fs::metadata(&log).unwrap().len() == 0,
        "a clean stop checkpoints the log into the database"
    );
}

/// A store written by the release before the store interface (schema 6, at 81e0c30), by
/// `fixtures/make-store.sh`: the current code opens it and carries on where it stopped.
#[tokio::test]
async fn a_store_written_by_the_previous_release_opens_and_carries_on() {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use collector::metrics::Metrics;
    use collector::sinks::SinkKind;
    use collector::stats::Week;
    use collector::store::{InsertOutcome, SinkRegistration, Store, StoreOptions};

    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-schema-6.sqlite3"
    );
    std::fs::copy(fixture, dir.path().join(collector::store::DB_FILE)).unwrap();
    let sink = |name: &str, kind| SinkRegistration {
        name: name.into(),
        kind,
    };
    let options = StoreOptions {
        sinks: vec![
            sink("file", SinkKind::Jsonl),
            sink("refused", SinkKind::Http),
        ],
        ..StoreOptions::default()
    };
    let metrics = Arc::new(Metrics::new());
    let store = Store::open(dir.path(), options, metrics.clone()).unwrap();
    assert_eq!(metrics.store_reports.get(), 3);

    let (first, second, erased) = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
    );
    let clusters = store.clusters(None, 10).await.unwrap();
    let listed: Vec<_> = clusters
        .iter()
        .map(|c| (c.cluster_id.as_str(), c.reports))
        .collect();
    assert_eq!(listed, [(first, 2), (second, 1)]);
    let reports = store
        .cluster_reports(first.into(), None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reports.len(), 2);
    assert!(
        reports[0].report_time > reports[1].report_time,
        "newest first"
    );
    assert_eq!(reports[0].report.nodes.len(), 1);
    assert!(
        store
            .cluster_reports(erased.into(), None, 10)
            .await
            .unwrap()
            .is_none(),
        "the erased cluster stays erased"
    );
    assert_eq!(store.stats(0).await.unwrap().clusters, 2);

    let outbox = store.outbox_reader().unwrap();
    let pending = |sink: &'static str| {
        let outbox = outbox.clone();
        async move {
            outbox
                .pending(sink, i64::MAX, 10)
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(pending("file").await, 0, "the jsonl sink had every report");
    assert_eq!(
        pending("refused").await,
        3,
        "the refused sink still has them all"
    );
    let rows = store
        .deliveries(None, Some("refused".into()), None, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].attempts >= 1, "its failed attempts are kept");

    let weekly = store.weekly_reader().unwrap();
    let changes = weekly
        .changes(BTreeMap::new(), Week::of(i64::MAX / 2))
        .await
        .unwrap();
    let active: i64 = changes.summaries.values().map(|week| week.active).sum();
    assert_eq!(
        active, 2,
        "the rolled-up weeks are read as they were written"
    );

    // The old reports' keys still hold: another body under an old report's id is a conflict.
    let changed = report(
        first,
        reports[1].report_time,
        reports[1].received_at,
        "v1.20.0",
    );
    assert_eq!(
        store.insert(changed).await.unwrap(),
        InsertOutcome::Conflict
    );
    // New reports go on after the old ones.
    let newer = report(first, NOW, NOW, "v1.32.0");
    assert_eq!(
        store.insert(newer.clone()).await.unwrap(),
        InsertOutcome::Stored
    );
    assert_eq!(store.insert(newer).await.unwrap(), InsertOutcome::Duplicate);
    assert_eq!(pending("file").await, 1);
    assert_eq!(metrics.store_reports.get(), 4);
    store.close().await;
}

/// The embedded store's side of `postgres.rs`'s test of the same name.
#[tokio::test]
async fn an_unreadable_report_is_left_out_of_the_statistics() {
    let backend = Sqlite::new();
    let store = backend.open().await;
    let (kept, damaged) = (
        "88888888-8888-4888-8888-888888888888",
        "99999999-9999-4999-8999-999999999999",
    );
    for cluster in [kept, damaged] {
        store
            .insert(report(cluster, NOW, NOW, "v1.31.0"))
            .await
            .unwrap();
    }
    let file = backend.0.path().join(collector::store::DB_FILE);
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute(
            "UPDATE reports SET body = 'not a report' WHERE cluster_id = ?1",
            [damaged],
        )
        .unwrap();
    let reader = store.weekly_reader().unwrap();
    let progress = store
        .apply_rollup(reader.prepare_rollup(0, 100).await.unwrap())
        .await
        .unwrap();
    assert!(progress.caught_up && !progress.stale);
    let week = collector::stats::Week::of(NOW);
    let changes = reader
        .changes(Default::default(), week.plus(1))
        .await
        .unwrap();
    assert_eq!(changes.summaries[&week].active, 1, "only the readable one");
    store.close().await;
}
