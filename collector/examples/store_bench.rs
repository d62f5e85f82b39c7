//! Store-only throughput, without HTTP: `TASKS` concurrent inserters store `REPORTS` distinct
//! Spartakus README reports as fast as group commits allow.
//!
//! `cargo run --release -p collector --example store_bench -- [TASKS=32] [REPORTS=100000]`

use std::sync::{Arc, Mutex};
use std::time::Instant;

use collector::metrics::Metrics;
use collector::store::{NewReport, Store, StoreOptions};

const FIXTURE: &str = include_str!("../../common/tests/fixtures/spartakus-readme.json");
const FIXTURE_CLUSTER: &str = "2f9c93d3-156c-47aa-8802-578ffca9b50e";

#[tokio::main]
async fn main() {
    let arg = |n: usize, default: usize| {
        std::env::args()
            .nth(n)
            .map_or(default, |s| s.parse().expect("a whole number"))
    };
    let (tasks, total) = (arg(1, 32), arg(2, 100_000));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let metrics = Arc::new(Metrics::new());
    let store = Store::open(dir.path(), StoreOptions::default(), metrics.clone()).expect("store");
    let received_at = 1_763_737_200;
    let reports: Vec<NewReport> = (0..total)
        .map(|i| {
            let cluster =
                uuid::Uuid::from_u128(0x1234_0000_0000_4000_8000_0000_0000_0000 | i as u128);
            let body = FIXTURE.replace(FIXTURE_CLUSTER, &cluster.to_string());
            let admitted = common::admit(body.as_bytes(), common::ClusterIdRule::Uuid, received_at)
                .expect("the fixture is valid");
            NewReport::from(admitted)
        })
        .collect();
    let reports = Arc::new(Mutex::new(reports));
    let started = Instant::now();
    let inserters: Vec<_> = (0..tasks)
        .map(|_| {
            let (store, reports) = (store.clone(), reports.clone());
            tokio::spawn(async move {
                loop {
                    let next = reports.lock().unwrap().pop();
                    let Some(report) = next else { break };
                    store.insert(report).await.expect("stored");
                }
            })
        })
        .collect();
    for inserter in inserters {
        inserter.await.expect("inserter finished");
    }
    let seconds = started.elapsed().as_secs_f64();
    let text = metrics.encode();
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap_or(0.0))
    };
    let commits = value("collector_store_commit_group_size_count");
    println!(
        "{tasks} inserters, {total} reports: {:.0} reports/s, {commits} commits, {:.1} reports a \
         commit, {:.0} us a commit",
        total as f64 / seconds,
        total as f64 / commits,
        value("collector_store_commit_duration_seconds_sum") / commits * 1e6,
    );
    store.close().await;
}
