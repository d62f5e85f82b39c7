//! Handler tests through `router(...).oneshot(...)`: every status code of the API, with the
//! store, limits and layers as the binary builds them.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;

use support::{App, app};

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

async fn call(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    if status.is_client_error() || status.is_server_error() {
        assert!(
            json.get("error").and_then(Value::as_str).is_some(),
            "{status} without the JSON error shape: {json}"
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
    Answer {
        status,
        headers,
        json,
    }
}

fn post() -> axum::http::request::Builder {
    Request::post("/api/v1").header(header::CONTENT_TYPE, "application/json")
}

fn json_post(body: impl Into<Body>) -> Request<Body> {
    post().body(body.into()).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const CLUSTER: &str = "2f9c93d3-156c-47aa-8802-578ffca9b50e";

/// A small valid report of `cluster` at `timestamp`.
fn report(cluster: &str, timestamp: i64, kubelet: &str) -> String {
    json!({
        "version": "v1.1.0",
        "timestamp": timestamp.to_string(),
        "clusterID": cluster,
        "masterVersion": "v1.31.2",
        "nodes": [{"id": "c8863d09ecc5be8d9791f72acd275fc2", "operatingSystem": "linux",
                   "kubeletVersion": kubelet, "capacity": [{"resource": "cpu", "value": "4"}]}],
    })
    .to_string()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../common/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn metric(app: &App, outcome: &str) -> u64 {
    let text = app.state.metrics().encode();
    let prefix = format!("collector_reports_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .parse()
        .unwrap()
}

async fn reports_of(app: &App, cluster: &str) -> Vec<Value> {
    let answer = call(
        &app.admin,
        get(&format!("/api/v1/clusters/{cluster}/reports")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    answer.json["reports"].as_array().unwrap().clone()
}

#[tokio::test]
async fn spartakus_report_is_stored_once_and_read_back() {
    let app = app(&[]).await;
    let answer = call(&app.public, json_post(fixture("spartakus-readme.json"))).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.json, Value::Null);
    // The same report again is a duplicate: 204, stored once.
    let again = call(&app.public, json_post(fixture("spartakus-readme.json"))).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(metric(&app, "accepted"), 1);
    assert_eq!(metric(&app, "duplicate"), 1);

    let reports = reports_of(&app, CLUSTER).await;
    assert_eq!(reports.len(), 1);
    let stored = &reports[0];
    assert_eq!(stored["timeSource"], "received");
    assert_eq!(stored["report"]["nodes"][0]["osImage"], "debian 7");
    assert_eq!(stored["report"]["masterVersion"], "v1.3.5");
    let timestamp: i64 = stored["report"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (timestamp - now()).abs() < 60,
        "timestamp is the receive time"
    );

    let scrape = call(&app.admin, get("/metrics")).await;
    let text = scrape.json.as_str().unwrap();
    assert!(text.contains("collector_store_reports 1\n"), "{text}");
    assert!(!text.contains("collector_store_size_bytes 0\n"), "{text}");

    let clusters = call(&app.admin, get("/api/v1/clusters")).await;
    assert_eq!(clusters.json["clusters"][0]["clusterID"], CLUSTER);
    assert_eq!(clusters.json["clusters"][0]["latestNodeCount"], 2);
    assert_eq!(clusters.json["clusters"][0]["reports"], 1);
}

#[tokio::test]
async fn same_id_with_other_content_is_a_conflict() {
    let app = app(&[]).await;
    let t = now();
    assert_eq!(
        call(&app.public, json_post(report(CLUSTER, t, "v1.31.2")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let answer = call(&app.public, json_post(report(CLUSTER, t, "v1.31.3"))).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.json["error"]
            .as_str()
            .unwrap()
            .contains("first copy is kept")
    );
    assert_eq!(metric(&app, "conflict"), 1);
    let reports = reports_of(&app, CLUSTER).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0]["report"]["nodes"][0]["kubeletVersion"],
        "v1.31.2"
    );
}

#[tokio::test]
async fn invalid_reports_get_400_with_every_problem() {
    let app = app(&[]).await;
    let answer = call(&app.public, json_post("{\"clusterID\": ")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["problems"].as_array().unwrap().len(), 1);

    let body = json!({
        "version": "",
        "clusterID": "my-cluster",
        "namespaces": -3,
        "nodes": [{"id": "a", "capacity": []}, {"id": "", "kubeletVersion": "v1\u{1}"}],
    });
    let answer = call(&app.public, json_post(body.to_string())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = answer.json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "version",
            "clusterID",
            "nodes[1].id",
            "nodes[1].kubeletVersion",
            "namespaces"
        ]
    );

    let answer = call(&app.public, json_post(r#"{"clusterID": 7}"#)).await;
    assert_eq!(answer.json["problems"][0]["field"], "clusterID");
    assert_eq!(metric(&app, "invalid"), 3);
}

#[tokio::test]
async fn relaxed_cluster_ids_are_a_flag() {
    let strict = app(&[]).await;
    let body = fixture("spartakus-walkthrough.json");
    assert_eq!(
        call(&strict.public, json_post(body.clone())).await.status,
        StatusCode::BAD_REQUEST
    );
    let relaxed = app(&["--relaxed-cluster-ids"]).await;
    assert_eq!(
        call(&relaxed.public, json_post(body)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        reports_of(&relaxed, "1E679954-3666-4275-ACB2").await.len(),
        1
    );
}

#[tokio::test]
async fn unknown_fields_and_bad_extensions_are_dropped_and_counted() {
    let app = app(&[]).await;
    let body = json!({
        "version": "v1.1.0", "timestamp": now().to_string(), "clusterID": CLUSTER,
        "customerName": "ACME Corp",
        "nodes": [{"id": "c8863d09ecc5be8d9791f72acd275fc2", "hostIP": "10.1.2.3"}],
        "extensions": [{"name": "example.com/tier", "value": "gold"},
                       {"name": "bad key!", "value": "secret-value"}],
    });
    assert_eq!(
        call(&app.public, json_post(body.to_string())).await.status,
        StatusCode::NO_CONTENT
    );
    let stored = reports_of(&app, CLUSTER).await[0]["report"].to_string();
    for leaked in [
        "ACME",
        "10.1.2.3",
        "customerName",
        "hostIP",
        "secret-value",
        "bad key",
    ] {
        assert!(!stored.contains(leaked), "{leaked} was stored: {stored}");
    }
    assert!(stored.contains("example.com/tier"));
    let text = app.state.metrics().encode();
    assert!(
        text.contains("collector_unknown_fields_dropped_total 2"),
        "{text}"
    );
    assert!(
        text.contains("collector_extensions_dropped_total{reason=\"invalid_name\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn media_types_and_encodings() {
    let app = app(&[]).await;
    let t = now();
    let with_type = |content_type: &str, body: String| {
        Request::post("/api/v1")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let answer = call(
        &app.public,
        with_type("text/plain", report(CLUSTER, t, "v1.31.2")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let missing = Request::post("/api/v1")
        .body(Body::from(report(CLUSTER, t, "v1.31.2")))
        .unwrap();
    assert_eq!(
        call(&app.public, missing).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let brotli = Request::post("/api/v1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "br")
        .body(Body::from(report(CLUSTER, t, "v1.31.2")))
        .unwrap();
    assert_eq!(
        call(&app.public, brotli).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(metric(&app, "unsupported_media"), 3);

    let answer = call(
        &app.public,
        with_type(
            "application/json; charset=utf-8",
            report(CLUSTER, t, "v1.31.2"),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(report(CLUSTER, t + 1, "v1.31.2").as_bytes())
        .unwrap();
    let gzipped = Request::post("/api/v1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    assert_eq!(
        call(&app.public, gzipped).await.status,
        StatusCode::NO_CONTENT
    );
    let not_gzip = Request::post("/api/v1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from("plain text"))
        .unwrap();
    assert_eq!(
        call(&app.public, not_gzip).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(reports_of(&app, CLUSTER).await.len(), 2);
}

#[tokio::test]
async fn oversized_bodies_get_413_on_the_wire_and_after_gunzip() {
    let app = app(&[
        "--max-body-size",
        "64KiB",
        "--max-decompressed-size",
        "256KiB",
    ])
    .await;
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    // Declared by Content-Length.
    let answer = call(&app.public, json_post(big.clone())).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length.
    let chunks: Vec<Result<Bytes, std::io::Error>> = big
        .as_bytes()
        .chunks(8 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let streamed = post()
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    assert_eq!(
        call(&app.public, streamed).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A small gzip body that inflates past the decompressed limit (a gzip bomb).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 1024 * 1024]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    let request = Request::post("/api/v1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(bomb))
        .unwrap();
    assert_eq!(
        call(&app.public, request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(metric(&app, "too_large"), 3);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let app = app(&["--rate-limit-per-hour", "60", "--rate-limit-burst", "3"]).await;
    let t = now();
    for i in 0..3 {
        let answer = call(&app.public, json_post(report(CLUSTER, t - i, "v1.31.2"))).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
    }
    let answer = call(&app.public, json_post(report(CLUSTER, t - 10, "v1.31.2"))).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = answer.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another cluster is not affected.
    let other = "9b1c4e2a-0d3f-4a5b-8c7d-6e5f4a3b2c1d";
    assert_eq!(
        call(&app.public, json_post(report(other, t, "v1.31.2")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(metric(&app, "rate_limited"), 1);
}

#[tokio::test]
async fn ingest_and_admin_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = dir.path().join("ingest");
    let admin = dir.path().join("admin");
    std::fs::write(&ingest, "ingest-secret\n").unwrap();
    std::fs::write(&admin, "admin-secret").unwrap();
    let app = app(&[
        "--ingest-token-file",
        ingest.to_str().unwrap(),
        "--admin-token-file",
        admin.to_str().unwrap(),
    ])
    .await;
    let t = now();
    let answer = call(&app.public, json_post(report(CLUSTER, t, "v1.31.2"))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
    let wrong = post()
        .header(header::AUTHORIZATION, "Bearer admin-secret")
        .body(Body::from(report(CLUSTER, t, "v1.31.2")))
        .unwrap();
    assert_eq!(
        call(&app.public, wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
    let right = post()
        .header(header::AUTHORIZATION, "Bearer ingest-secret")
        .body(Body::from(report(CLUSTER, t, "v1.31.2")))
        .unwrap();
    assert_eq!(
        call(&app.public, right).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(metric(&app, "unauthorized"), 2);

    assert_eq!(
        call(&app.admin, get("/api/v1/clusters")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let authorized = Request::get("/api/v1/clusters")
        .header(header::AUTHORIZATION, "Bearer admin-secret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app.admin, authorized).await.status, StatusCode::OK);
    // Prometheus scrapes without the token.
    assert_eq!(
        call(&app.admin, get("/metrics")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_stalled_upload_gets_408() {
    let app = app(&["--request-timeout", "200ms"]).await;
    let stalled = futures::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(b"{\"version\":"))
    })
    .chain(futures::stream::pending());
    let request = post().body(Body::from_stream(stalled)).unwrap();
    let answer = call(&app.public, request).await;
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(metric(&app, "timeout"), 1);
}

#[tokio::test]
async fn overflow_is_shed_with_503_not_queued() {
    let app = app(&["--max-concurrent-requests", "1", "--request-timeout", "5s"]).await;
    // A body that says when the handler starts reading it, then never ends.
    let (reading, started) = tokio::sync::oneshot::channel::<()>();
    let stalled = futures::stream::once(async move {
        let _ = reading.send(());
        futures::future::pending::<Result<Bytes, std::io::Error>>().await
    });
    let holder = tokio::spawn(
        app.public
            .clone()
            .oneshot(post().body(Body::from_stream(stalled)).unwrap()),
    );
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the first request never reached the handler")
        .unwrap();
    // The only slot is taken: the next request is shed at once.
    let answer = call(&app.public, json_post(report(CLUSTER, now(), "v1.31.2"))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    holder.abort();
    assert_eq!(metric(&app, "unavailable"), 1);
}

#[tokio::test]
async fn a_full_store_answers_503_fails_readiness_and_recovers() {
    if support::on_postgres() {
        // --max-store-size is the embedded store's limit; a database server has its own.
        return;
    }
    let app = app(&["--max-store-size", "100KiB", "--rate-limit-per-hour", "0"]).await;
    assert_eq!(
        call(&app.public, get("/readyz")).await.status,
        StatusCode::OK
    );
    let t = now();
    let mut full = None;
    for i in 0..500 {
        let cluster = uuid::Uuid::new_v4().to_string();
        let answer = call(&app.public, json_post(fixture_with(&cluster, t - i))).await;
        match answer.status {
            StatusCode::NO_CONTENT => continue,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(answer.headers.contains_key(header::RETRY_AFTER));
                full = Some(cluster);
                break;
            }
            other => panic!("unexpected {other}: {}", answer.json),
        }
    }
    assert!(full.is_some(), "the store never filled up");
    let ready = call(&app.public, get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ready.json["error"].as_str().unwrap().contains("full"),
        "{}",
        ready.json
    );
    assert!(metric(&app, "unavailable") >= 1);
    assert!(
        app.state
            .metrics()
            .encode()
            .contains("collector_store_available 0")
    );

    // Erasing the clusters frees whole pages; the store takes writes again.
    let clusters = call(&app.admin, get("/api/v1/clusters?limit=1000")).await;
    for cluster in clusters.json["clusters"].as_array().unwrap() {
        let id = cluster["clusterID"].as_str().unwrap();
        let erase = Request::delete(format!("/api/v1/clusters/{id}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app.admin, erase).await.status, StatusCode::OK);
    }
    assert_eq!(
        call(&app.public, get("/readyz")).await.status,
        StatusCode::OK
    );
    let answer = call(&app.public, json_post(fixture_with(&full.unwrap(), t))).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
}

/// The Spartakus README report under another cluster id and timestamp.
fn fixture_with(cluster: &str, timestamp: i64) -> Vec<u8> {
    let mut report: Value = serde_json::from_slice(&fixture("spartakus-readme.json")).unwrap();
    report["clusterID"] = json!(cluster);
    report["timestamp"] = json!(timestamp.to_string());
    serde_json::to_vec(&report).unwrap()
}

#[tokio::test]
async fn read_api_pages_filters_and_erases() {
    let app = app(&["--rate-limit-per-hour", "0"]).await;
    let t = now();
    let mut clusters: Vec<String> = (0..5).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    clusters.sort();
    for cluster in &clusters {
        for i in 0..3 {
            let kubelet = if i == 2 { "v1.31.2" } else { "v1.30.0" };
            let answer = call(
                &app.public,
                json_post(report(cluster, t - 100 + i, kubelet)),
            )
            .await;
            assert_eq!(answer.status, StatusCode::NO_CONTENT);
        }
    }
    // Clusters, two per page.
    let mut seen = Vec::new();
    let mut path = "/api/v1/clusters?limit=2".to_string();
    loop {
        let page = call(&app.admin, get(&path)).await;
        assert_eq!(page.status, StatusCode::OK);
        for cluster in page.json["clusters"].as_array().unwrap() {
            assert_eq!(cluster["reports"], 3);
            assert_eq!(cluster["latestMasterVersion"], "v1.31.2");
            seen.push(cluster["clusterID"].as_str().unwrap().to_string());
        }
        match page.json["next"].as_str() {
            Some(next) => path = format!("/api/v1/clusters?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, clusters);

    // A cluster's reports, newest first, one per page; the id is case-insensitive.
    let upper = clusters[0].to_uppercase();
    let first = call(
        &app.admin,
        get(&format!("/api/v1/clusters/{upper}/reports?limit=1")),
    )
    .await;
    assert_eq!(first.json["reports"].as_array().unwrap().len(), 1);
    assert_eq!(
        first.json["reports"][0]["report"]["nodes"][0]["kubeletVersion"],
        "v1.31.2"
    );
    assert_eq!(first.json["reports"][0]["timeSource"], "client");
    let next = first.json["next"].as_i64().unwrap();
    let second = call(
        &app.admin,
        get(&format!(
            "/api/v1/clusters/{}/reports?limit=5&before={next}",
            clusters[0]
        )),
    )
    .await;
    assert_eq!(second.json["reports"].as_array().unwrap().len(), 2);
    assert!(second.json.get("next").is_none());

    // Statistics from each cluster's latest report.
    let stats = call(&app.admin, get("/api/v1/stats?window=1h")).await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.json["clusters"], 5);
    assert_eq!(stats.json["nodes"], 5);
    assert_eq!(stats.json["kubeletVersions"], json!({"v1.31.2": 5}));
    assert_eq!(stats.json["operatingSystems"], json!({"linux": 5}));
    assert_eq!(stats.json["cloudProviders"], json!({"(not reported)": 5}));
    assert_eq!(stats.json["masterVersions"], json!({"v1.31.2": 5}));

    for bad in [
        "/api/v1/stats?window=forever",
        "/api/v1/stats?window=1000d",
        "/api/v1/clusters?limit=0",
        "/api/v1/clusters?limit=x",
    ] {
        assert_eq!(
            call(&app.admin, get(bad)).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    // Erasure.
    let erase = |id: &str| {
        Request::delete(format!("/api/v1/clusters/{id}"))
            .body(Body::empty())
            .unwrap()
    };
    let erased = call(&app.admin, erase(&clusters[1])).await;
    assert_eq!(erased.status, StatusCode::OK);
    assert_eq!(erased.json["reportsErased"], 3);
    assert_eq!(
        call(&app.admin, erase(&clusters[1])).await.status,
        StatusCode::NOT_FOUND
    );
    let gone = call(
        &app.admin,
        get(&format!("/api/v1/clusters/{}/reports", clusters[1])),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let stats = call(&app.admin, get("/api/v1/stats")).await;
    assert_eq!(stats.json["clusters"], 4);
}

#[tokio::test]
async fn health_version_openapi_and_unknown_routes() {
    let app = app(&[]).await;
    assert_eq!(
        call(&app.public, get("/healthz")).await.json["status"],
        "ok"
    );
    assert_eq!(
        call(&app.public, get("/readyz")).await.status,
        StatusCode::OK
    );
    let version = call(&app.public, get("/version")).await;
    assert_eq!(version.json["version"], env!("CARGO_PKG_VERSION"));

    let missing = call(&app.public, get("/nope")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let wrong_method = call(&app.public, get("/api/v1")).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    // The admin API is not on the public listener.
    assert_eq!(
        call(&app.public, get("/api/v1/clusters")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app.public, get("/metrics")).await.status,
        StatusCode::NOT_FOUND
    );
}

/// The paths and methods a listener's document names.
fn documented(document: &Value) -> Vec<String> {
    let mut operations: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{method} {path}"))
        })
        .collect();
    operations.sort();
    operations
}

#[tokio::test]
async fn each_listener_documents_its_own_routes_and_no_others() {
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "s3cret-token-for-the-test\n").unwrap();
    let listeners = app(&["--admin-token-file", token.path().to_str().unwrap()]).await;
    assert_eq!(
        call(&listeners.admin, get("/api/v1/clusters")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let public = call(&listeners.public, get("/openapi.json")).await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(public.headers[header::CONTENT_TYPE], "application/json");
    assert!(public.json["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        documented(&public.json),
        [
            "get /healthz",
            "get /readyz",
            "get /version",
            "post /api/v1"
        ]
    );
    assert!(public.json["components"]["schemas"]["Report"].is_object());
    assert!(public.json["components"]["securitySchemes"]["ingest_token"].is_object());

    // The admin document is served without the token, like /metrics.
    let admin = call(&listeners.admin, get("/openapi.json")).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.json);
    assert_eq!(
        documented(&admin.json),
        [
            "delete /api/v1/clusters/{id}",
            "get /api/v1/clusters",
            "get /api/v1/clusters/{id}/reports",
            "get /api/v1/deliveries",
            "get /api/v1/stats",
            "get /api/v1/stats/dimensions",
            "get /api/v1/stats/export",
            "get /api/v1/stats/weekly",
            "get /metrics",
            "post /api/v1/deliveries/requeue",
            "post /api/v1/import",
        ]
    );
    assert!(admin.json["components"]["securitySchemes"]["admin_token"].is_object());
    // Every documented admin operation is served there (with the token), none on the public
    // listener; the public listener's operations are served nowhere else.
    for operation in documented(&admin.json) {
        let path = operation.split(' ').nth(1).unwrap();
        assert!(
            !documented(&public.json).contains(&operation),
            "{operation}"
        );
        let answer = call(&listeners.public, get(&path.replace("{id}", "x"))).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{operation}");
    }

    let with_public_stats = app(&["--public-stats"]).await;
    let document = call(&with_public_stats.public, get("/openapi.json")).await;
    assert_eq!(
        documented(&document.json),
        [
            "get /api/v1/stats/dimensions",
            "get /api/v1/stats/export",
            "get /api/v1/stats/weekly",
            "get /healthz",
            "get /readyz",
            "get /version",
            "post /api/v1",
        ]
    );
}

#[tokio::test]
async fn the_report_schema_states_the_limits_validation_enforces() {
    use common::report::OBJECTS_PER_NAMESPACE_BUCKETS;
    use common::validate::{
        MAX_CAPACITY_ENTRIES, MAX_EXTENSIONS, MAX_INTEGER, MAX_NODES, MAX_RELAXED_CLUSTER_ID,
        MAX_SKIPPED, MAX_STRING_CHARS,
    };
    let document = call(&app(&[]).await.public, get("/openapi.json"))
        .await
        .json;
    let schemas = &document["components"]["schemas"];
    let required = |name: &str| -> Vec<&str> {
        let mut fields: Vec<&str> = schemas[name]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} requires nothing"))
            .iter()
            .map(|field| field.as_str().unwrap())
            .collect();
        fields.sort();
        fields
    };
    assert_eq!(required("Report"), ["clusterID", "version"]);
    assert_eq!(required("Node"), ["id"]);
    assert_eq!(required("Resource"), ["resource", "value"]);
    assert_eq!(required("Skipped"), ["reason", "section"]);
    assert_eq!(required("ObjectStats"), ["perNamespace", "total"]);

    let report = &schemas["Report"]["properties"];
    for (list, max) in [
        ("nodes", MAX_NODES),
        ("extensions", MAX_EXTENSIONS),
        ("skipped", MAX_SKIPPED),
    ] {
        assert_eq!(report[list]["maxItems"], max, "{list}");
    }
    assert_eq!(
        schemas["Node"]["properties"]["capacity"]["maxItems"],
        MAX_CAPACITY_ENTRIES
    );
    for field in ["version", "timestamp", "masterVersion"] {
        assert_eq!(report[field]["maxLength"], MAX_STRING_CHARS, "{field}");
    }
    assert_eq!(report["namespaces"]["maximum"], MAX_INTEGER);
    let stats = &schemas["ObjectStats"]["properties"];
    assert_eq!(stats["total"]["maximum"], MAX_INTEGER);
    assert_eq!(
        stats["perNamespace"]["minItems"],
        OBJECTS_PER_NAMESPACE_BUCKETS
    );
    assert_eq!(
        stats["perNamespace"]["maxItems"],
        OBJECTS_PER_NAMESPACE_BUCKETS
    );
    assert_eq!(stats["perNamespace"]["items"]["maximum"], MAX_INTEGER);
    assert!(
        report["clusterID"]["pattern"]
            .as_str()
            .unwrap()
            .contains("[Uu][Rr][Nn]")
    );

    let relaxed = call(
        &app(&["--relaxed-cluster-ids"]).await.public,
        get("/openapi.json"),
    )
    .await;
    let cluster_id = &relaxed.json["components"]["schemas"]["Report"]["properties"]["clusterID"];
    assert_eq!(cluster_id["maxLength"], MAX_RELAXED_CLUSTER_ID);
    assert_eq!(cluster_id["pattern"], "^[A-Za-z0-9._-]+$");
    assert_eq!(
        relaxed.json["components"]["schemas"]["Report"]["required"][1],
        "clusterID"
    );
}
