//! The weekly statistics: a rollup folds what was stored, step by step until it caught up, and
//! the store answers every complete week's totals and cells exactly as the fleet implies, so that
//! every backend gives the same answers for the same fleet.

use std::collections::BTreeMap;

use collector::stats::Week;
use collector::store::{Store, WeekSummary};

use super::Backend;
use crate::reports::{NOW, report};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000000";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000000";
const C: &str = "cccccccc-0000-4000-8000-000000000000";

/// Rolls everything stored up in steps of `limit` reports; returns the steps taken.
async fn roll_up(store: &Store, limit: usize) -> usize {
    let reader = store.weekly_reader().unwrap();
    let mut steps = 0;
    loop {
        let prepared = reader.prepare_rollup(0, limit).await.unwrap();
        let progress = store.apply_rollup(prepared).await.unwrap();
        steps += 1;
        assert!(!progress.stale, "nothing changed between prepare and apply");
        if progress.caught_up {
            return steps;
        }
        assert!(steps < 100, "the rollup does not catch up");
    }
}

/// Each week's totals, and its cells as sorted `(dimension, value, clusters, nodes)`.
type Answers = BTreeMap<Week, (WeekSummary, Vec<(String, String, i64, i64)>)>;

async fn answers(store: &Store, running: Week) -> Answers {
    let changes = store
        .weekly_reader()
        .unwrap()
        .changes(BTreeMap::new(), running)
        .await
        .unwrap();
    assert_eq!(
        changes.revisions.keys().collect::<Vec<_>>(),
        changes.summaries.keys().collect::<Vec<_>>()
    );
    changes
        .summaries
        .into_iter()
        .map(|(week, summary)| {
            let mut cells: Vec<_> = changes.cells[&week]
                .iter()
                .map(|(dimension, cell)| {
                    (
                        dimension.clone(),
                        cell.value.clone(),
                        cell.clusters,
                        cell.nodes,
                    )
                })
                .collect();
            cells.sort();
            (week, (summary, cells))
        })
        .collect()
}

fn summary(active: i64, new: i64, churned: i64) -> WeekSummary {
    WeekSummary {
        active,
        new,
        churned,
        nodes: active,
    }
}

pub async fn the_rollup_counts_each_cluster_week_once_and_answers_every_complete_week(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    let running = Week::of(NOW);
    let at = |weeks_ago: i64, hours: i64| running.plus(-weeks_ago).start() + hours * 3600;
    // A reports every week; B only six weeks ago (churned four weeks later); C twice two
    // weeks ago, the later report counting, and once in the running week (not answered).
    for weeks_ago in 1..=6 {
        store
            .insert(report(A, at(weeks_ago, 1), at(weeks_ago, 1), "v1.30.0"))
            .await
            .unwrap();
    }
    store
        .insert(report(B, at(6, 2), at(6, 2), "v1.29.0"))
        .await
        .unwrap();
    store
        .insert(report(C, at(2, 3), at(2, 3), "v1.30.0"))
        .await
        .unwrap();
    store
        .insert(report(C, at(2, 4), at(2, 4), "v1.31.0"))
        .await
        .unwrap();
    store
        .insert(report(C, at(0, 5), at(0, 5), "v1.31.0"))
        .await
        .unwrap();
    assert!(roll_up(&store, 3).await > 1, "in steps of three reports");

    let answered = answers(&store, running).await;
    let totals: Vec<(i64, WeekSummary)> = answered
        .iter()
        .map(|(week, (summary, _))| ((running.start() - week.start()) / (7 * 86_400), *summary))
        .collect();
    assert_eq!(
        totals,
        [
            (6, summary(2, 2, 0)),
            (5, summary(1, 0, 0)),
            (4, summary(1, 0, 0)),
            (3, summary(1, 0, 0)),
            (2, summary(2, 1, 1)),
            (1, summary(1, 0, 0)),
        ]
    );
    let two_weeks_ago = &answered[&running.plus(-2)].1;
    let versions: Vec<_> = two_weeks_ago
        .iter()
        .filter(|(dimension, ..)| dimension == "server-version")
        .map(|(_, value, clusters, nodes)| (value.as_str(), *clusters, *nodes))
        .collect();
    assert_eq!(versions, [("v1.30.0", 1, 1), ("v1.31.0", 1, 1)]);

    // Rolling up again changes nothing; an erasure takes the cluster out of every week.
    roll_up(&store, 1_000).await;
    assert_eq!(answers(&store, running).await, answered);
    store.delete_cluster(C).await.unwrap();
    roll_up(&store, 1_000).await;
    let after = answers(&store, running).await;
    assert_eq!(after[&running.plus(-2)].0, summary(1, 0, 1));
    store.close().await;
}
