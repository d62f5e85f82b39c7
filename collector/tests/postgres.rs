//! The PostgreSQL backend against a real server: a fresh database is migrated once, collectors
//! starting together migrate it once, a database migrated by a newer collector is refused, and
//! an unreachable server is a clear error that names the database without its password.

mod database;

use collector::store::postgres::{DatabaseSettings, PostgresStore, SCHEMA_VERSION};
use database::TestDatabase;

#[tokio::test]
async fn a_fresh_database_is_migrated_once_and_opens_again() {
    let Some(database) = TestDatabase::create("a_fresh_database_is_migrated_once").await else {
        return;
    };
    let store = PostgresStore::connect(&database.settings()).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.close();
    let again = PostgresStore::connect(&database.settings()).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
    again.close();
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
async fn collectors_starting_together_migrate_once() {
    let Some(database) = TestDatabase::create("collectors_starting_together").await else {
        return;
    };
    let settings = database.settings();
    let starts = (0..4).map(|_| PostgresStore::connect(&settings));
    for store in futures::future::join_all(starts).await {
        store.unwrap().close();
    }
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
    PostgresStore::connect(&database.settings())
        .await
        .unwrap()
        .close();
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
    let error = PostgresStore::connect(&database.settings())
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
    let error = PostgresStore::connect(&settings)
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
