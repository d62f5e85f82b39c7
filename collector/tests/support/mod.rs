//! What the router tests share: a collector on a temporary store built from flags as the binary
//! builds it, calls through `oneshot`, and import lines of a small fleet.

#![allow(dead_code)] // each test file uses its own part

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use clap::Parser;
use collector::{AppState, Config, admin_router, public_router};
use common::time::{rfc3339, unix_now};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

#[path = "../database/mod.rs"]
pub mod database;

/// Both routers of one collector on a temporary store.
pub struct App {
    pub _dir: tempfile::TempDir,
    pub _database: Option<database::TestDatabase>,
    pub state: AppState,
    pub public: Router,
    pub admin: Router,
}

/// True when the handler tests run on PostgreSQL (`COLLECTOR_TEST_BACKEND=postgres`: `./test.sh`
/// runs them once on each backend), each collector on a fresh database of the test server.
pub fn on_postgres() -> bool {
    std::env::var("COLLECTOR_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// A collector started with `flags` (and its own `--data-dir`, or its own database).
pub async fn app(flags: &[&str]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database = if on_postgres() {
        Some(
            database::TestDatabase::create("a handler test")
                .await
                .expect("COLLECTOR_TEST_BACKEND=postgres needs COLLECTOR_TEST_DATABASE_URL"),
        )
    } else {
        None
    };
    let mut argv = vec!["collector", "--data-dir", data_dir.to_str().unwrap()];
    if let Some(database) = &database {
        argv.extend(["--database-url", database.url.as_str()]);
    }
    argv.extend_from_slice(flags);
    let state = collector::open(&Config::parse_from(argv), &[])
        .await
        .unwrap();
    App {
        public: public_router(state.clone()),
        admin: admin_router(state.clone()),
        state,
        _dir: dir,
        _database: database,
    }
}

/// An answer, its body as text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

pub async fn call(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn import(body: impl Into<Body>) -> Request<Body> {
    Request::post("/api/v1/import")
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(body.into())
        .unwrap()
}

pub fn cluster(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// A week ago, so that the reports fall in the last complete week.
pub fn last_week() -> i64 {
    unix_now() - 7 * 86_400
}

/// Lines of `clusters` clusters reporting `arch` nodes last week, as records of the JSON-lines
/// sink (even clusters) and bare Spartakus reports (odd ones).
pub fn lines(first: u32, clusters: u32, arch: &str) -> String {
    let at = last_week();
    (first..first + clusters)
        .map(|n| {
            let report = json!({
                "version": "v1.0.0",
                "timestamp": at.to_string(),
                "clusterID": cluster(n),
                "masterVersion": "v1.30.4",
                "nodes": [{"id": "c8863d09ecc5be8d9791f72acd275fc2", "architecture": arch}],
            });
            let line = if n % 2 == 0 {
                json!({"receivedAt": rfc3339(at), "report": report})
            } else {
                report
            };
            format!("{line}\n")
        })
        .collect()
}
