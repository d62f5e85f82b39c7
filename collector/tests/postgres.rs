//! What only the PostgreSQL backend promises, against a real server (the conformance suite,
//! `store.rs`, covers the rest on both backends): a fresh database is migrated once; of collectors
//! starting together one migrates it and writes, and the others are refused; a database migrated
//! by a newer collector is refused; an unreachable server is a clear error that names the database
//! without its password; a lost connection is answered unavailable, and then stored; an
//! unreadable report is left out of the statistics.

mod database;
mod reports;

use std::sync::Arc;

use collector::metrics::Metrics;
use collector::store::InsertOutcome;
use collector::store::postgres::{DatabaseSettings, PostgresStore, SCHEMA_VERSION};
use database::TestDatabase;
use reports::{NOW, report};

async fn connect(settings: &DatabaseSettings) -> collector::Result<PostgresStore> {
    PostgresStore::connect(settings, Default::default(), Arc::new(Metrics::new())).await
}

#[tokio::test]
async fn a_fresh_database_is_migrated_once_and_opens_again() {
    let Some(database) = TestDatabase::create("a_fresh_database_is_migrated_once").await else {
        return;
    };
    let store = connect(&database.settings()).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.close().await;
    let again = connect(&database.settings()).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
    again.close().await;
    let client = database.client().await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, SCHEMA_VERSION);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    for table in [
        "reports",
        "clusters",
        "sink_positions",
        "stats_weeks",
        "meta",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
}

#[tokio::test]
async fn collectors_starting_together_migrate_once_and_one_of_them_writes() {
    let Some(database) = TestDatabase::create("collectors_starting_together").await else {
        return;
    };
    let settings = database.settings();
    let starts = (0..4).map(|_| connect(&settings));
    let mut writing = 0;
    for started in futures::future::join_all(starts).await {
        match started {
            Ok(store) => {
                writing += 1;
                store.close().await;
            }
            Err(error) => assert!(
                error.to_string().contains("another collector is writing"),
                "{error}"
            ),
        }
    }
    assert_eq!(writing, 1);
    let applied: i64 = database
        .client()
        .await
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_collector_is_refused() {
    let Some(database) = TestDatabase::create("a_database_migrated_by_a_newer").await else {
        return;
    };
    connect(&database.settings()).await.unwrap().close().await;
    database
        .client()
        .await
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES ($1, 'later', '2027-01-01T00:00:00Z', '1')",
            &[&(SCHEMA_VERSION as i32 + 1)],
        )
        .await
        .unwrap();
    let error = connect(&database.settings())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("newer collector"), "{error}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_without_the_password() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://collector:hunter2@127.0.0.1:{port}/telemetry?sslmode=disable");
    let settings = DatabaseSettings::from_url(&url, None, None).unwrap();
    let error = connect(&settings)
        .await
        .err()
        .expect("nothing listens")
        .to_string();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(
        error.contains(&format!("postgres://collector@127.0.0.1:{port}/telemetry")),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn reports_sent_together_are_stored_once_and_read_back_in_order() {
    let Some(database) = TestDatabase::create("reports_sent_together").await else {
        return;
    };
    let metrics = Arc::new(Metrics::new());
    let store = PostgresStore::connect(&database.settings(), Default::default(), metrics.clone())
        .await
        .unwrap();
    let cluster = |i: i64| format!("{i:08x}-0000-4000-8000-000000000000");
    let known = report(&cluster(0), NOW - 1, NOW, "v1.31.0");
    assert_eq!(
        store.insert(known.clone()).await.unwrap(),
        InsertOutcome::Stored
    );
    let mut batch: Vec<_> = (1..=200)
        .map(|i| report(&cluster(i % 50), NOW - 1000 + i, NOW + i, "v1.31.0"))
        .collect();
    batch.push(known.clone());
    batch.push(report(&cluster(0), NOW - 1, NOW, "v1.32.0"));
    batch.push(batch[0].clone());
    let outcomes: Vec<InsertOutcome> =
        futures::future::join_all(batch.into_iter().map(|r| store.insert(r)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let count = |o| outcomes.iter().filter(|x| **x == o).count();
    assert_eq!(
        (
            count(InsertOutcome::Stored),
            count(InsertOutcome::Duplicate),
            count(InsertOutcome::Conflict)
        ),
        (200, 2, 1)
    );
    assert_eq!(outcomes[201], InsertOutcome::Conflict);
    assert_eq!(metrics.store_reports.get(), 201);
    assert_eq!(store.queued_total(), 201);
    let commits = metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix("collector_store_commit_group_size_count "))
        .map(|n| n.trim().parse::<u64>().unwrap())
        .unwrap();
    assert!(commits < 100, "{commits} commits for 201 reports");

    // Clusters page by page in id order, each with its own figures.
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store.clusters(after.clone(), 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.cluster_id.clone());
        ids.extend(page.iter().map(|c| (c.cluster_id.clone(), c.reports)));
    }
    assert_eq!(ids.len(), 50);
    assert!(ids.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(ids[0], (cluster(0), 5), "known, and four of the batch");
    assert_eq!(ids[1], (cluster(1), 4));
    let first = &store.clusters(None, 1).await.unwrap()[0];
    assert_eq!((first.first_seen, first.last_seen), (NOW, NOW + 200));

    // A cluster's reports newest first, page by page.
    let mut received = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .cluster_reports(cluster(1), before, 3)
            .await
            .unwrap()
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        received.extend(page.iter().map(|r| r.received_at - NOW));
    }
    assert_eq!(received, [151, 101, 51, 1]);
    assert!(
        store
            .cluster_reports(cluster(99), None, 3)
            .await
            .unwrap()
            .is_none()
    );
    let stats = store.stats(0).await.unwrap();
    assert_eq!((stats.clusters, stats.nodes), (50, 50));
    let folded = store.fold_cluster_ids(0, |n, _| *n += 1).await.unwrap();
    assert_eq!(folded, 50);
    store.refresh_size_gauge().await;
    assert!(metrics.store_size.get() > 0);
    assert!(store.is_available() && store.last_error().is_none());
    store.close().await;

    // Reopened, it goes on after what it stored and knows the old keys.
    let metrics = Arc::new(Metrics::new());
    let again = PostgresStore::connect(&database.settings(), Default::default(), metrics.clone())
        .await
        .unwrap();
    assert_eq!(metrics.store_reports.get(), 201);
    assert_eq!(again.insert(known).await.unwrap(), InsertOutcome::Duplicate);
    let newer = report(&cluster(1), NOW + 500, NOW + 500, "v1.33.0");
    assert_eq!(again.insert(newer).await.unwrap(), InsertOutcome::Stored);
    let latest = &again
        .cluster_reports(cluster(1), None, 1)
        .await
        .unwrap()
        .unwrap()[0];
    assert_eq!(latest.received_at, NOW + 500);
    let summary = &again.clusters(Some(cluster(0)), 1).await.unwrap()[0];
    assert_eq!(summary.latest_master_version.as_deref(), Some("v1.33.0"));
    again.close().await;
}

#[tokio::test]
async fn a_second_collector_writing_to_the_same_database_is_refused() {
    let Some(database) = TestDatabase::create("a_second_collector_writing").await else {
        return;
    };
    let options = collector::store::StoreOptions::default;
    let first =
        collector::store::Store::connect(&database.settings(), options(), Arc::new(Metrics::new()))
            .await
            .unwrap();
    let second =
        collector::store::Store::connect(&database.settings(), options(), Arc::new(Metrics::new()))
            .await
            .err()
            .expect("refused while the first one writes")
            .to_string();
    assert!(second.contains("another collector is writing"), "{second}");
    first.close().await;
    // Once the first has stopped, another may write.
    collector::store::Store::connect(&database.settings(), options(), Arc::new(Metrics::new()))
        .await
        .unwrap()
        .close()
        .await;
}

#[tokio::test]
async fn a_lost_connection_is_answered_unavailable_and_the_next_report_is_stored() {
    let Some(database) = TestDatabase::create("a_lost_connection").await else {
        return;
    };
    let metrics = Arc::new(Metrics::new());
    let store =
        collector::store::Store::connect(&database.settings(), Default::default(), metrics.clone())
            .await
            .unwrap();
    let cluster = "77777777-7777-4777-8777-777777777777";
    let stored = |at: i64| report(cluster, at, at, "v1.31.0");
    assert_eq!(
        store.insert(stored(NOW)).await.unwrap(),
        InsertOutcome::Stored
    );
    // Every connection of the collector is cut, the writer's among them.
    database
        .client()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'collector' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    let lost = store.insert(stored(NOW + 1)).await;
    assert!(
        matches!(lost, Err(collector::Error::Unavailable(_))),
        "{lost:?}"
    );
    assert!(!store.is_available());
    assert!(store.last_error().is_some());
    // The next group takes a new connection; the report answered unavailable is stored when
    // it is sent again, after the one stored before.
    assert_eq!(
        store.insert(stored(NOW + 1)).await.unwrap(),
        InsertOutcome::Stored
    );
    assert!(store.is_available());
    let reports = store
        .cluster_reports(cluster.into(), None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reports.len(), 2);
    assert!(reports[0].seq > reports[1].seq);
    store.close().await;
}

#[tokio::test]
async fn an_unreadable_report_is_left_out_of_the_statistics() {
    let Some(database) = TestDatabase::create("an_unreadable_report").await else {
        return;
    };
    let store = collector::store::Store::connect(
        &database.settings(),
        Default::default(),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
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
    // The damaged cluster's only report no longer parses.
    database
        .client()
        .await
        .execute(
            "UPDATE reports SET body = 'not a report' WHERE cluster_no = \
             (SELECT cluster_no FROM clusters WHERE cluster_id = $1)",
            &[&damaged],
        )
        .await
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
