//! Group commit: reports arriving together share transactions, and each gets its own answer
//! (stored, duplicate, conflict) once its transaction committed, the way ingest and an import
//! send them.

use std::sync::Arc;

use collector::metrics::Metrics;
use collector::store::{InsertOutcome, StoreOptions};
use futures::future::join_all;

use super::Backend;
use crate::reports::{NOW, report};

/// Reports sent at once.
const AT_ONCE: i64 = 300;

/// Transactions committed so far, from the metrics as `/metrics` shows them.
fn commits(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix("collector_store_commit_group_size_count "))
        .map_or(0, |count| count.trim().parse().unwrap())
}

fn cluster(i: i64) -> String {
    format!("{:08x}-0000-4000-8000-000000000000", i * 7919 % 4096)
}

pub async fn reports_sent_together_share_commits_and_each_gets_its_answer(backend: &impl Backend) {
    let metrics = Arc::new(Metrics::new());
    let store = backend
        .open_with(StoreOptions::default(), metrics.clone())
        .await;
    // Already stored: its resend is a duplicate, another body under its id a conflict.
    let known = report(&cluster(0), NOW - 1, NOW, "v1.31.0");
    assert_eq!(
        store.insert(known.clone()).await.unwrap(),
        InsertOutcome::Stored
    );
    let commits_before = commits(&metrics);

    let mut batch = Vec::new();
    for i in 1..=AT_ONCE {
        batch.push(report(&cluster(i), NOW - 1, NOW, "v1.31.0"));
    }
    batch.push(known.clone());
    batch.push(report(&cluster(0), NOW - 1, NOW, "v1.32.0"));
    // The same new report twice in one batch: stored once, a duplicate once.
    batch.push(report(&cluster(1), NOW - 2, NOW, "v1.31.0"));
    batch.push(report(&cluster(1), NOW - 2, NOW, "v1.31.0"));
    let outcomes: Vec<InsertOutcome> = join_all(batch.into_iter().map(|r| store.insert(r)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let count = |outcome| outcomes.iter().filter(|o| **o == outcome).count();
    assert_eq!(count(InsertOutcome::Stored), AT_ONCE as usize + 1);
    assert_eq!(count(InsertOutcome::Duplicate), 2);
    assert_eq!(count(InsertOutcome::Conflict), 1);
    assert_eq!(outcomes[AT_ONCE as usize], InsertOutcome::Duplicate);
    assert_eq!(outcomes[AT_ONCE as usize + 1], InsertOutcome::Conflict);

    let commits = commits(&metrics) - commits_before;
    assert!(
        commits > 0 && commits < AT_ONCE as u64 / 2,
        "{commits} commits for {AT_ONCE} reports sent at once"
    );
    assert_eq!(metrics.store_reports.get(), AT_ONCE + 2);
    assert_eq!(store.queued_total(), AT_ONCE as u64 + 2);
    let listed = store.clusters(None, 10_000).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.reports).sum::<i64>(),
        AT_ONCE + 2,
        "every stored report is readable once its answer came"
    );
    store.close().await;
}

pub async fn a_waiter_wakes_when_the_reports_it_waits_for_are_stored(backend: &impl Backend) {
    let store = backend.open().await;
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .wait_for_reports(3, std::time::Duration::from_secs(30))
                .await;
            store.queued_total()
        })
    };
    for i in 0..3 {
        store
            .insert(report(&cluster(i), NOW, NOW, "v1.31.0"))
            .await
            .unwrap();
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("woken by the third report, not by the timeout")
        .unwrap();
    assert!(seen >= 3);
    store.close().await;
}
