//! A fresh PostgreSQL database for one test, on the server `COLLECTOR_TEST_DATABASE_URL` names
//! (`./test.sh` starts a throwaway one). Without the URL a test that needs it is skipped with a
//! notice, unless `COLLECTOR_REQUIRE_POSTGRES=1`: then it fails, as it does when the server
//! cannot be reached.

#![allow(dead_code)] // each test file uses its own part

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use collector::store::postgres::DatabaseSettings;
use tokio_postgres::NoTls;

/// A database created for one test, dropped when the test ends.
pub struct TestDatabase {
    /// The server's URL, connected to its own database.
    server: String,
    /// This test's database.
    pub name: String,
    /// This test's database's URL.
    pub url: String,
}

/// The test server's URL, or `None` (with a notice) when the test is to be skipped.
fn server_url(test: &str) -> Option<String> {
    match std::env::var("COLLECTOR_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("COLLECTOR_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("COLLECTOR_REQUIRE_POSTGRES=1 but COLLECTOR_TEST_DATABASE_URL is not set")
        }
        _ => {
            // Written past the test harness's capture, so that a passing run shows it too.
            let _ = writeln!(
                std::io::stderr(),
                "skipping {test}: set COLLECTOR_TEST_DATABASE_URL to a PostgreSQL server to run \
                 it (./test.sh starts one)"
            );
            None
        }
    }
}

/// A client of the server's own database, for creating and dropping test databases.
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("the test database server at {url} cannot be reached: {e}"));
    tokio::spawn(connection);
    client
}

impl TestDatabase {
    /// A new, empty database for `test`; `None` when PostgreSQL tests are skipped.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server_url(test)?;
        let name = format!(
            "collector_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin(&server)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&server, &name);
        Some(TestDatabase { server, name, url })
    }

    /// Settings for this database, as `--database-url` gives them.
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings::from_url(&self.url, None, None).unwrap()
    }

    /// A client of this database, for looking at what the store wrote.
    pub async fn client(&self) -> tokio_postgres::Client {
        admin(&self.url).await
    }
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Dropped on a thread of its own: `Drop` cannot wait on the test's runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = admin(&server).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}
