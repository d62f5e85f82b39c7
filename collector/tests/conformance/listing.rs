//! What the read API lists: clusters in id order page by page, a cluster's reports newest first
//! page by page, fleet statistics over a window, every cluster id, and the store's size and
//! availability.

use std::sync::Arc;

use collector::metrics::Metrics;
use collector::store::{NOT_REPORTED, StoreOptions};
use common::report::NodeFact;

use super::Backend;
use crate::reports::{NOW, report};

/// Cluster ids in the order the listing pages through them.
const CLUSTERS: [&str; 5] = [
    "0a000000-0000-4000-8000-000000000001",
    "1b000000-0000-4000-8000-000000000002",
    "2c000000-0000-4000-8000-000000000003",
    "3d000000-0000-4000-8000-000000000004",
    "4e000000-0000-4000-8000-000000000005",
];

pub async fn clusters_are_listed_in_id_order_page_by_page(backend: &impl Backend) {
    let store = backend.open().await;
    // Stored out of order: the listing's order is the ids', not the arrival's.
    for (i, cluster) in CLUSTERS.iter().enumerate().rev() {
        let at = NOW - 100 + i as i64;
        store
            .insert(report(cluster, at, at, "v1.30.0"))
            .await
            .unwrap();
    }
    store
        .insert(report(CLUSTERS[1], NOW, NOW, "v1.31.0"))
        .await
        .unwrap();
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store.clusters(after.clone(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|c| c.cluster_id.clone());
        pages.push(page);
    }
    let ids: Vec<Vec<&str>> = pages
        .iter()
        .map(|page| page.iter().map(|c| c.cluster_id.as_str()).collect())
        .collect();
    assert_eq!(
        ids,
        [
            vec![CLUSTERS[0], CLUSTERS[1]],
            vec![CLUSTERS[2], CLUSTERS[3]],
            vec![CLUSTERS[4]]
        ]
    );
    let second = &pages[0][1];
    assert_eq!(second.reports, 2);
    assert_eq!((second.first_seen, second.last_seen), (NOW - 99, NOW));
    assert_eq!(second.latest_master_version.as_deref(), Some("v1.31.0"));
    assert_eq!(second.latest_node_count, 1);

    let ids = store
        .fold_cluster_ids(Vec::new(), |ids, id| ids.push(id.to_string()))
        .await
        .unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, CLUSTERS, "every cluster id, once");
    store.close().await;
}

pub async fn a_clusters_reports_are_listed_newest_first_page_by_page(backend: &impl Backend) {
    let store = backend.open().await;
    let cluster = CLUSTERS[2];
    for i in 0..7 {
        store
            .insert(report(cluster, NOW - 10 + i, NOW + i, "v1.31.0"))
            .await
            .unwrap();
    }
    // Another cluster's reports in between are not listed.
    store
        .insert(report(CLUSTERS[3], NOW, NOW, "v1.31.0"))
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .cluster_reports(cluster.into(), before, 3)
            .await
            .unwrap()
            .expect("a known cluster");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        before = page.last().map(|r| r.seq);
        received.extend(page.iter().map(|r| r.received_at - NOW));
    }
    assert_eq!(received, [6, 5, 4, 3, 2, 1, 0]);
    let newest = &store
        .cluster_reports(cluster.into(), None, 1)
        .await
        .unwrap()
        .unwrap()[0];
    assert_eq!(newest.report_time, NOW - 4);
    assert_eq!(newest.report.cluster_id, cluster);
    assert_eq!(newest.report.timestamp, (NOW - 4).to_string());
    assert!(
        store
            .cluster_reports(CLUSTERS[4].into(), None, 3)
            .await
            .unwrap()
            .is_none(),
        "an unknown cluster is None, not an empty page"
    );
    store.close().await;
}

pub async fn statistics_count_the_latest_report_of_each_cluster_seen_in_the_window(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    let day = 86_400;
    store
        .insert(report(
            CLUSTERS[0],
            NOW - 40 * day,
            NOW - 40 * day,
            "v1.29.0",
        ))
        .await
        .unwrap();
    store
        .insert(report(
            CLUSTERS[1],
            NOW - 40 * day,
            NOW - 40 * day,
            "v1.29.0",
        ))
        .await
        .unwrap();
    store
        .insert(report(CLUSTERS[1], NOW - day, NOW - day, "v1.31.0"))
        .await
        .unwrap();
    store
        .insert(report(CLUSTERS[2], NOW, NOW, "v1.31.0"))
        .await
        .unwrap();

    let recent = store.stats(NOW - 30 * day).await.unwrap();
    assert_eq!((recent.clusters, recent.nodes), (2, 2));
    assert_eq!(
        recent
            .master_versions
            .clone()
            .into_iter()
            .collect::<Vec<_>>(),
        [("v1.31.0".to_string(), 2)]
    );
    let kubelets = recent.nodes_by(NodeFact::KubeletVersion);
    assert_eq!(
        kubelets.into_iter().collect::<Vec<_>>(),
        [("v1.31.0".to_string(), 2)]
    );
    let operating_systems = recent.nodes_by(NodeFact::OperatingSystem);
    assert_eq!(
        operating_systems.into_iter().collect::<Vec<_>>(),
        [(NOT_REPORTED.to_string(), 2)],
        "a fact the reports leave out is counted as not reported"
    );
    let all = store.stats(0).await.unwrap();
    assert_eq!(all.clusters, 3);
    assert_eq!(
        all.master_versions.into_iter().collect::<Vec<_>>(),
        [("v1.29.0".to_string(), 1), ("v1.31.0".to_string(), 2)]
    );
    assert_eq!(store.stats(NOW + 1).await.unwrap().clusters, 0);
    store.close().await;
}

pub async fn the_store_says_it_is_available_and_how_large_it_is(backend: &impl Backend) {
    let metrics = Arc::new(Metrics::new());
    let store = backend
        .open_with(StoreOptions::default(), metrics.clone())
        .await;
    assert!(store.is_available());
    assert_eq!(store.last_error(), None);
    assert_eq!(metrics.store_available.get(), 1);
    store.probe().await.unwrap();
    store
        .insert(report(CLUSTERS[0], NOW, NOW, "v1.31.0"))
        .await
        .unwrap();
    store.refresh_size_gauge().await;
    assert!(
        metrics.store_size.get() > 0,
        "the size is the store's bytes"
    );
    store.close().await;
}
