//! The weekly statistics and the import through the routers (`oneshot`): formats, caching,
//! the minimum group size, which listener serves what, and an idempotent import.

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

mod support;

use support::{app, call, cluster, get, import, lines};

#[tokio::test]
async fn an_import_is_counted_once_and_published_with_the_minimum_group_size() {
    let app = app(&[]).await;
    let answer = call(&app.admin, get("/api/v1/stats/weekly")).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    assert!(answer.headers.contains_key(header::RETRY_AFTER));

    let body = format!(
        "{}{}not json\n\n{}",
        lines(1, 8, "amd64"),
        lines(9, 4, "riscv64"),
        json!({"version": "v1.0.0", "clusterID": cluster(99)})
    );
    let answer = call(&app.admin, import(body.clone())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let summary = answer.json();
    assert_eq!(summary["lines"], 14);
    assert_eq!(summary["stored"], 12);
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["errors"][0]["line"], 13);
    assert!(
        summary["errors"][1]["error"]
            .as_str()
            .unwrap()
            .contains("timestamp")
    );

    let again = call(&app.admin, import(body)).await.json();
    assert_eq!(
        (again["stored"].clone(), again["duplicates"].clone()),
        (json!(0), json!(12))
    );

    let answer = call(
        &app.admin,
        get("/api/v1/stats/weekly?dimension=architecture&weeks=4"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let view = answer.json();
    assert_eq!(view["minGroupClusters"], 5);
    assert_eq!(view["weeks"].as_array().unwrap().len(), 4);
    assert_eq!(view["headline"]["active"], 12, "{view}");
    assert_eq!(view["headline"]["new"], 12);
    let values = &view["dimension"]["values"];
    assert_eq!(values[0]["value"], "amd64");
    assert_eq!(
        values[0]["clusters"][3], 8,
        "last week is the last one published"
    );
    assert_eq!(values[1]["value"], "other");
    assert_eq!(values[1]["clusters"][3], 4);
    assert!(!answer.text.contains("riscv64"));
}

#[tokio::test]
async fn csv_etags_and_bad_parameters() {
    let app = app(&["--min-group-clusters", "1"]).await;
    call(&app.admin, import(lines(1, 3, "arm64"))).await;
    let csv = call(
        &app.admin,
        Request::get("/api/v1/stats/weekly?dimension=architecture&weeks=2")
            .header(header::ACCEPT, "text/csv")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let mut rows = csv.text.lines();
    assert_eq!(
        rows.next(),
        Some("week,week_start,dimension,value,clusters,nodes")
    );
    assert!(csv.text.contains(",fleet,active,3,3\n"), "{}", csv.text);
    assert!(
        csv.text.contains(",architecture,arm64,3,3\n"),
        "{}",
        csv.text
    );
    let same = call(
        &app.admin,
        get("/api/v1/stats/weekly?dimension=architecture&weeks=2&format=csv"),
    )
    .await;
    assert_eq!(same.text, csv.text);

    let export = call(&app.admin, get("/api/v1/stats/export")).await;
    assert_eq!(export.status, StatusCode::OK);
    let tag = export.headers[header::ETAG].clone();
    let dimensions = export.json()["dimensions"].as_array().unwrap().len();
    let listed = call(&app.admin, get("/api/v1/stats/dimensions"))
        .await
        .json();
    assert_eq!(listed["dimensions"].as_array().unwrap().len(), dimensions);
    let unchanged = call(
        &app.admin,
        Request::get("/api/v1/stats/export")
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    let export_csv = call(&app.admin, get("/api/v1/stats/export?format=csv")).await;
    assert!(
        export_csv
            .text
            .contains(",server-version-minor,v1.30,3,3\n"),
        "{}",
        export_csv.text
    );

    for (query, expected) in [
        ("?dimension=nope", "no dimension"),
        ("?weeks=0", "weeks must be"),
        ("?weeks=521", "weeks must be"),
        ("?format=xml", "format"),
        ("?dimension=extension:", "no dimension"),
    ] {
        let answer = call(&app.admin, get(&format!("/api/v1/stats/weekly{query}"))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            answer.json()["error"].as_str().unwrap().contains(expected),
            "{query}: {}",
            answer.text
        );
    }
    // A well-formed name of a dimension that is not published (an extension key too few
    // clusters report) is not found, not malformed.
    let unpublished = call(
        &app.admin,
        get("/api/v1/stats/weekly?dimension=extension:example.com/nobody"),
    )
    .await;
    assert_eq!(
        unpublished.status,
        StatusCode::NOT_FOUND,
        "{}",
        unpublished.text
    );
}

#[tokio::test]
async fn statistics_are_public_only_when_asked_and_import_stays_admin() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let private = app(&["--admin-token-file", token.to_str().unwrap()]).await;
    let public = app(&[
        "--public-stats",
        "--admin-token-file",
        token.to_str().unwrap(),
    ])
    .await;
    call(
        &public.admin,
        Request::post("/api/v1/import")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::from(lines(1, 5, "amd64")))
            .unwrap(),
    )
    .await;
    for path in [
        "/api/v1/stats/dimensions",
        "/api/v1/stats/weekly",
        "/api/v1/stats/export",
    ] {
        assert_eq!(
            call(&private.public, get(path)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            call(&private.admin, get(path)).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            call(&public.public, get(path)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let answer = call(&public.public, import(lines(1, 1, "amd64"))).await;
    assert_eq!(
        answer.status,
        StatusCode::NOT_FOUND,
        "import is never public"
    );
    let answer = call(&public.admin, import(lines(1, 1, "amd64"))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_gzip_import_is_read_as_it_arrives() {
    let app = app(&["--min-group-clusters", "1"]).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines(1, 40, "amd64").as_bytes()).unwrap();
    let compressed = gz.finish().unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        compressed.chunks(100).map(|c| Ok(c.to_vec())).collect();
    let request = Request::post("/api/v1/import")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let summary = call(&app.admin, request).await.json();
    assert_eq!(summary["stored"], 40, "{summary}");
    // A body cut short: what came before the cut is stored, and the answer says how much.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines(41, 30, "amd64").as_bytes()).unwrap();
    let mut cut = gz.finish().unwrap();
    cut.truncate(cut.len() - 12);
    let answer = call(
        &app.admin,
        Request::post("/api/v1/import")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(cut))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let error = answer.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("is not valid gzip") && error.contains("were stored"),
        "{error}"
    );
    let stored: u64 = error
        .split("; the ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{error}"));
    assert!(
        stored >= 25,
        "most of the 30 lines came before the cut: {error}"
    );
    let broken = Request::post("/api/v1/import")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from("not gzip at all"))
        .unwrap();
    let answer = call(&app.admin, broken).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let answer = call(
        &app.admin,
        Request::post("/api/v1/import")
            .header(header::CONTENT_ENCODING, "br")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // No body at all is a mistake (a file not attached), not an import of nothing.
    let answer = call(
        &app.admin,
        Request::post("/api/v1/import").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert!(answer.text.contains("empty"), "{}", answer.text);
}
