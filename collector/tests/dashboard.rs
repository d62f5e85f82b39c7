//! The dashboard through the routers (`oneshot`): what it shows of an imported fleet, the
//! minimum group size, its security headers, the login form and its session cookie, and which
//! listener serves what.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use support::{Answer, App, app, call, cluster, get, import, lines};

const TOKEN: &str = "admin-token-for-the-dashboard-test";

/// A collector with an admin token (and `flags`), holding 8 amd64 clusters and 4 riscv64 ones
/// (fewer than the minimum group size of 5) last week.
async fn fleet(flags: &[&str]) -> (tempfile::NamedTempFile, App) {
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), format!("{TOKEN}\n")).unwrap();
    let mut argv = vec!["--admin-token-file", token.path().to_str().unwrap()];
    argv.extend_from_slice(flags);
    let app = app(&argv).await;
    let body = format!("{}{}", lines(1, 8, "amd64"), lines(9, 4, "riscv64"));
    let answer = call(&app.admin, with_token(import(body))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    (token, app)
}

fn with_token(mut request: Request<Body>) -> Request<Body> {
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    request
}

fn with_cookie(path: &str, method: &str, cookie: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

fn login(token: &str, forwarded_proto: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/dashboard/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(proto) = forwarded_proto {
        request = request.header("x-forwarded-proto", proto);
    }
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    request.body(Body::from(body)).unwrap()
}

fn assert_page(answer: &Answer) {
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let policy = answer.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(policy.contains("script-src 'none'"), "{policy}");
    assert_eq!(answer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(answer.text.starts_with("<!DOCTYPE html>"));
    assert!(
        !answer.text.contains("style=\""),
        "an inline style the policy blocks"
    );
    assert!(!answer.text.contains("<script"), "a script");
}

#[tokio::test]
async fn the_overview_shows_the_fleet_with_the_minimum_group_size() {
    let (_token, app) = fleet(&[]).await;
    let answer = call(&app.admin, with_token(get("/dashboard"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_page(&answer);
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    let page = &answer.text;
    // Headline: 12 active clusters, all new, one node each.
    for card in ["active", "nodes", "new"] {
        let value = page
            .split(&format!("id=\"{card}\""))
            .nth(1)
            .and_then(|rest| rest.split("<dd>").nth(1))
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_else(|| panic!("no {card} card"));
        assert_eq!(value, "12", "{card}");
    }
    assert!(page.contains("amd64: 8 clusters"), "the architecture bars");
    assert!(
        !page.contains("riscv64"),
        "4 clusters, fewer than 5, are named"
    );
    assert!(page.contains("other: 4 clusters"));
    assert!(page.contains("v1.30: 12 of 12 clusters (100.0%)"));
    assert!(page.contains("href=\"/dashboard/dimension?name=architecture&amp;weeks=26\""));
    assert!(
        !page.contains("Log out"),
        "a bearer token has no session to end"
    );

    let twelve = call(&app.admin, with_token(get("/dashboard?weeks=12"))).await;
    assert_eq!(twelve.status, StatusCode::OK);
    assert!(twelve.text.contains("aria-current=\"page\">12 weeks"));
    let bad = call(&app.admin, with_token(get("/dashboard?weeks=13"))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].as_str().unwrap().contains("12, 26, 52"));
}

#[tokio::test]
async fn every_dimension_has_a_page() {
    let (_token, app) = fleet(&[]).await;
    let dimensions = call(&app.admin, with_token(get("/api/v1/stats/dimensions"))).await;
    let names: Vec<String> = dimensions.json()["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= collector::stats::REGISTRY.len());
    let overview = call(&app.admin, with_token(get("/dashboard"))).await.text;
    for name in &names {
        let query: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let path = format!("/dashboard/dimension?name={query}");
        assert!(
            overview.contains(&path.replace('&', "&amp;")),
            "{name} is not linked"
        );
        let answer = call(&app.admin, with_token(get(&path))).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.text);
        assert_page(&answer);
        assert!(answer.text.contains(&format!("<h1>{name}</h1>")), "{name}");
    }
    let page = call(
        &app.admin,
        with_token(get("/dashboard/dimension?name=architecture&weeks=52")),
    )
    .await
    .text;
    assert!(
        page.contains("amd64: 8 of 12 nodes (66.7%)"),
        "shares of nodes"
    );
    let missing = call(
        &app.admin,
        with_token(get("/dashboard/dimension?name=nothing")),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.json()["error"]
            .as_str()
            .unwrap()
            .contains("nothing")
    );
}

#[tokio::test]
async fn a_browser_logs_in_with_the_form_and_out_again() {
    let (_token, app) = fleet(&[]).await;
    let away = call(&app.admin, get("/dashboard")).await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(away.headers[header::LOCATION], "/dashboard/login");
    let form = call(&app.admin, get("/dashboard/login")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_page(&form);
    assert!(form.text.contains("name=\"token\""));

    let wrong = call(&app.admin, login("not-the-token", None)).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_page(&wrong);
    assert!(wrong.text.contains("not the admin token"));
    assert!(!wrong.headers.contains_key(header::SET_COOKIE));

    let right = call(&app.admin, login(TOKEN, None)).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(right.headers[header::LOCATION], "/dashboard");
    let set = right.headers[header::SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    assert!(!set.contains(TOKEN), "the cookie holds the token");
    let cookie = set.split(';').next().unwrap().to_string();
    assert_eq!(cookie.len(), "collector_session=".len() + 64);

    let page = call(&app.admin, with_cookie("/dashboard", "GET", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Log out"));
    // The session reads the API (the charts' CSV links) but changes nothing.
    let csv = "/api/v1/stats/weekly?dimension=architecture&format=csv";
    let read = call(&app.admin, with_cookie(csv, "GET", &cookie)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let erase = format!("/api/v1/clusters/{}", cluster(1));
    let erase = call(&app.admin, with_cookie(&erase, "DELETE", &cookie)).await;
    assert_eq!(erase.status, StatusCode::UNAUTHORIZED);
    let again = call(&app.admin, get("/dashboard/login")).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "no session without the cookie"
    );

    let out = call(
        &app.admin,
        with_cookie("/dashboard/logout", "POST", &cookie),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers[header::LOCATION], "/dashboard/login");
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = call(&app.admin, with_cookie("/dashboard", "GET", &cookie)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session is closed");

    let behind_tls = call(&app.admin, login(TOKEN, Some("https"))).await;
    assert!(
        behind_tls.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn the_public_listener_serves_it_only_with_public_stats_and_without_login() {
    let (_token, private) = fleet(&[]).await;
    for path in ["/dashboard", "/dashboard/style.css", "/dashboard/login"] {
        let answer = call(&private.public, get(path)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_token, public) = fleet(&["--public-stats"]).await;
    let first = call(&public.public, get("/dashboard")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_page(&first);
    assert_eq!(first.headers[header::CACHE_CONTROL], "public, max-age=60");
    assert!(!first.text.contains("riscv64") && !first.text.contains("Log out"));
    let cached = call(&public.public, get("/dashboard")).await;
    assert_eq!(cached.text, first.text);
    let dimension = call(&public.public, get("/dashboard/dimension?name=os-image")).await;
    assert_eq!(dimension.status, StatusCode::OK);
    let style = call(&public.public, get("/dashboard/style.css")).await;
    assert_eq!(
        style.headers[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert!(style.text.contains(".s0"));
    for path in ["/dashboard/login", "/dashboard/logout"] {
        let answer = call(&public.public, get(path)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn without_an_admin_token_the_admin_dashboard_is_open_and_says_when_it_is_not_ready() {
    let app = app(&[]).await;
    let starting = call(&app.admin, get("/dashboard")).await;
    assert_eq!(starting.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_page(&starting);
    assert!(starting.headers.contains_key(header::RETRY_AFTER));
    app.state.weekly().refresh().await.unwrap();
    let empty = call(&app.admin, get("/dashboard")).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.text.contains("No complete week yet"));
    let login = call(&app.admin, get("/dashboard/login")).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "nothing to log in to");
}
