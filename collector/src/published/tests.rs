//! The fold, the summaries, erasure, retention and the minimum group size, on a real store.

use std::time::Duration;

use common::time::unix_now;
use common::{ClusterIdRule, admit};
use serde_json::json;

use super::views::WeeklyView;
use super::*;
use crate::metrics::Metrics;
use crate::stats::Week;
use crate::store::{NewReport, StoreOptions};

const RETENTION: Duration = Duration::from_secs(400 * 86_400);

struct Fleet {
    _dir: tempfile::TempDir,
    store: Store,
    weekly: WeeklyStats,
}

async fn fleet(k: u32) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let store = Store::open(dir.path(), StoreOptions::default(), metrics.clone()).unwrap();
    let weekly = WeeklyStats::new(store.clone(), metrics, k, RETENTION).unwrap();
    Fleet {
        _dir: dir,
        store,
        weekly,
    }
}

fn cluster(n: u128) -> String {
    uuid::Uuid::from_u128(n).to_string()
}

impl Fleet {
    /// Stores a report of `cluster` received at `at`, with one node per architecture given.
    async fn receive(&self, cluster: &str, at: i64, archs: &[&str], extensions: &[(&str, &str)]) {
        let body = json!({
            "version": "v1.1.0",
            "timestamp": at.to_string(),
            "clusterID": cluster,
            "masterVersion": "v1.31.2",
            "nodes": archs.iter().enumerate().map(|(i, arch)| json!({
                "id": format!("{i:032x}"),
                "architecture": arch,
            })).collect::<Vec<_>>(),
            "extensions": extensions.iter().map(|(name, value)| json!({
                "name": name, "value": value,
            })).collect::<Vec<_>>(),
        });
        let admitted = admit(body.to_string().as_bytes(), ClusterIdRule::Uuid, at).unwrap();
        self.store.insert(NewReport::from(admitted)).await.unwrap();
    }

    async fn published(&self) -> Arc<Published> {
        self.weekly.refresh().await.unwrap();
        self.weekly.published()
    }
}

/// A time `weeks` weeks before the current week, `hours` into it.
fn weeks_ago(weeks: i64, hours: i64) -> i64 {
    Week::of(unix_now()).plus(-weeks).start() + hours * 3_600
}

fn values(view: &WeeklyView, index: usize) -> Vec<(String, i64)> {
    view.dimension
        .as_ref()
        .unwrap()
        .values
        .iter()
        .filter(|v| v.clusters[index] > 0)
        .map(|v| (v.value.clone(), v.clusters[index]))
        .collect()
}

#[tokio::test]
async fn a_cluster_counts_once_a_week_as_its_latest_report_received_that_week() {
    let fleet = fleet(1).await;
    let a = cluster(1);
    for hour in 0..6 {
        fleet.receive(&a, weeks_ago(1, hour), &["amd64"], &[]).await;
    }
    fleet
        .receive(&a, weeks_ago(1, 100), &["arm64", "arm64"], &[])
        .await;
    let published = fleet.published().await;
    let weeks = published.last_weeks(2);
    let view = published.weekly(Some("architecture"), &weeks).unwrap();
    assert_eq!(view.weeks[1].active, 1);
    assert_eq!(view.weeks[1].nodes, 2);
    assert_eq!(values(&view, 1), [("arm64".to_string(), 1)]);
    assert_eq!(view.headline.as_ref().unwrap().active, 1);

    // A report received later the same week but made earlier (its own timestamp) still wins:
    // the week and the order come from the collector's receive time.
    fleet.receive(&a, weeks_ago(1, 101), &["s390x"], &[]).await;
    let published = fleet.published().await;
    let view = published.weekly(Some("architecture"), &weeks).unwrap();
    assert_eq!(values(&view, 1), [("s390x".to_string(), 1)]);
    assert_eq!(view.weeks[1].active, 1);
}

#[tokio::test]
async fn new_returning_and_churned_clusters_follow_a_hand_made_history() {
    let fleet = fleet(1).await;
    let (a, b, c) = (cluster(1), cluster(2), cluster(3));
    for week in [6, 5] {
        fleet.receive(&a, weeks_ago(week, 1), &["amd64"], &[]).await;
    }
    for week in 1..=5 {
        fleet.receive(&b, weeks_ago(week, 2), &["amd64"], &[]).await;
    }
    fleet.receive(&c, weeks_ago(1, 3), &["amd64"], &[]).await;
    let published = fleet.published().await;
    let weeks = published.last_weeks(6);
    let view = published.weekly(None, &weeks).unwrap();
    let table: Vec<(i64, i64, i64, Option<i64>)> = view
        .weeks
        .iter()
        .map(|w| (w.active, w.new, w.returning, w.churned))
        .collect();
    // Weeks C-6 … C-1 (the running week C is not published): A in C-6 and C-5, B in C-5 … C-1,
    // C new in C-1. Churn is known from the fifth kept week on.
    assert_eq!(
        table,
        [
            (1, 1, 0, None),
            (2, 1, 1, None),
            (1, 0, 1, None),
            (1, 0, 1, None),
            (1, 0, 1, Some(0)),
            (2, 1, 1, Some(1)), // A: active in C-5, in none of C-4 … C-1
        ]
    );

    // Erasure takes A out of every week it was counted in.
    assert_eq!(fleet.store.delete_cluster(&a).await.unwrap(), 2);
    let published = fleet.published().await;
    let view = published.weekly(Some("architecture"), &weeks).unwrap();
    let active: Vec<i64> = view.weeks.iter().map(|w| w.active).collect();
    assert_eq!(active, [0, 1, 1, 1, 1, 2]);
    assert_eq!(view.weeks[1].new, 1, "B is new in C-5 now");
    assert_eq!(view.weeks[5].churned, Some(0));
    assert_eq!(values(&view, 0), []);
    assert_eq!(values(&view, 1), [("amd64".to_string(), 1)]);
}

#[tokio::test]
async fn retention_drops_the_weeks_it_has_started_to_prune() {
    let fleet = fleet(1).await;
    fleet
        .receive(&cluster(1), weeks_ago(3, 1), &["amd64"], &[])
        .await;
    fleet
        .receive(&cluster(1), weeks_ago(2, 1), &["amd64"], &[])
        .await;
    fleet
        .receive(&cluster(2), weeks_ago(1, 1), &["amd64"], &[])
        .await;
    let published = fleet.published().await;
    assert_eq!(published.kept_weeks().len(), 3);
    // Prune inside week C-2: C-3 goes, and C-2 too, being no longer whole.
    fleet.store.prune(weeks_ago(2, 2), 100).await.unwrap();
    let published = fleet.published().await;
    let kept = published.kept_weeks();
    assert_eq!(kept, [Week::of(weeks_ago(1, 0))]);
    let view = published.weekly(None, &kept).unwrap();
    assert_eq!(view.weeks[0].active, 1);
    assert_eq!(view.weeks[0].new, 1);
}

#[tokio::test]
async fn groups_smaller_than_k_are_never_named_in_json_csv_or_export() {
    let fleet = fleet(5).await;
    let at = weeks_ago(1, 5);
    for n in 1..=6 {
        let extensions = [("example.com/team", "platform")];
        fleet
            .receive(&cluster(n), at, &["amd64"], &extensions)
            .await;
    }
    for n in 7..=10 {
        let extensions = [("example.com/team", "platform"), ("acme.corp/rare", "x")];
        fleet
            .receive(&cluster(n), at, &["riscv64"], &extensions)
            .await;
    }
    let published = fleet.published().await;
    let weeks = published.last_weeks(2);
    let view = published.weekly(Some("architecture"), &weeks).unwrap();
    assert_eq!(
        values(&view, 1),
        [("amd64".to_string(), 6), ("other".to_string(), 4)]
    );
    assert_eq!(view.weeks[1].active, 10, "totals stay exact");
    let keys = published.weekly(Some("extension-keys"), &weeks).unwrap();
    assert_eq!(
        values(&keys, 1),
        [
            ("example.com/team".to_string(), 10),
            ("other".to_string(), 4)
        ]
    );
    assert!(
        published
            .weekly(Some("extension:acme.corp/rare"), &weeks)
            .is_none()
    );
    let team = published
        .weekly(Some("extension:example.com/team"), &weeks)
        .unwrap();
    assert_eq!(values(&team, 1), [("platform".to_string(), 10)]);
    let texts = [
        serde_json::to_string(&view).unwrap(),
        String::from_utf8(views::weekly_csv(&view)).unwrap(),
        String::from_utf8(published.export_json().to_vec()).unwrap(),
        String::from_utf8(published.export_csv().to_vec()).unwrap(),
        format!("{:?}", published.dimensions()),
    ];
    for text in texts {
        assert!(!text.contains("riscv64"), "{text}");
        assert!(!text.contains("acme"), "{text}");
    }
    let csv = String::from_utf8(published.export_csv().to_vec()).unwrap();
    let week = Week::of(at);
    assert!(
        csv.contains(&format!(
            "{week},{},architecture,amd64,6,6\n",
            week.start_date()
        )),
        "{csv}"
    );
    assert!(csv.starts_with("week,week_start,dimension,value,clusters,nodes\n"));
}

#[tokio::test]
async fn a_step_prepared_before_an_erasure_is_refused_and_prepared_again() {
    let fleet = fleet(1).await;
    fleet
        .receive(&cluster(1), weeks_ago(1, 1), &["amd64"], &[])
        .await;
    fleet
        .receive(&cluster(2), weeks_ago(1, 2), &["arm64"], &[])
        .await;
    let reader = fleet.store.weekly_reader().unwrap();
    let prepared = reader.prepare_rollup(0, 100).await.unwrap();
    fleet.store.delete_cluster(&cluster(1)).await.unwrap();
    let progress = fleet.store.apply_rollup(prepared).await.unwrap();
    assert!(progress.stale, "{progress:?}");
    let published = fleet.published().await;
    let weeks = published.last_weeks(2);
    let view = published.weekly(Some("architecture"), &weeks).unwrap();
    assert_eq!(view.weeks[1].active, 1);
    assert_eq!(values(&view, 1), [("arm64".to_string(), 1)]);
}

#[tokio::test]
async fn reports_stored_after_the_newest_were_erased_are_counted_across_a_restart() {
    let mut fleet = fleet(1).await;
    fleet
        .receive(&cluster(1), weeks_ago(1, 1), &["amd64"], &[])
        .await;
    fleet
        .receive(&cluster(2), weeks_ago(1, 2), &["arm64"], &[])
        .await;
    fleet.published().await;
    // The newest report goes: its seq must not be given again, or the rollup, already past
    // it, would never count the report that got it.
    fleet.store.delete_cluster(&cluster(2)).await.unwrap();
    fleet.store.close().await;
    let metrics = Arc::new(Metrics::new());
    fleet.store = Store::open(fleet._dir.path(), StoreOptions::default(), metrics.clone()).unwrap();
    fleet.weekly = WeeklyStats::new(fleet.store.clone(), metrics, 1, RETENTION).unwrap();
    fleet
        .receive(&cluster(3), weeks_ago(1, 3), &["s390x"], &[])
        .await;
    let published = fleet.published().await;
    let weeks = published.last_weeks(2);
    let view = published.weekly(Some("architecture"), &weeks).unwrap();
    assert_eq!(view.weeks[1].active, 2);
    assert_eq!(
        values(&view, 1),
        [("amd64".to_string(), 1), ("s390x".to_string(), 1)]
    );
}
