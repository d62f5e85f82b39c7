//! The store's conformance suite (`conformance/`) on every backend, and what only one backend
//! promises.

mod conformance;
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
