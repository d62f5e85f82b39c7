//! The HTTP API: the public router (ingest, health, OpenAPI, optionally the weekly statistics and
//! the dashboard) and the admin router (read API, weekly statistics, dashboard, import, erasure,
//! metrics), their shared state and middleware.

mod auth;
mod clusters;
mod dashboard;
mod deliveries;
mod error;
mod health;
mod import;
mod ingest;
mod login;
mod openapi;
mod query;
mod state;
mod stats;

use std::time::Instant;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{
    DefaultMakeSpan, DefaultOnBodyChunk, DefaultOnEos, DefaultOnRequest, DefaultOnResponse,
    HttpMakeClassifier, TraceLayer,
};

use crate::metrics::{Outcome, RouteLabels};

pub use error::{ApiError, ErrorBody, json_errors};
pub use openapi::{admin_openapi, public_openapi};
use openapi::{
    admin_routes, health_routes, ingest_routes, metrics_routes, serve_document, stats_routes,
};
pub use state::{ApiSettings, AppState};

/// The public listener's router: `POST /api/v1`, `/healthz`, `/readyz`, `/version`,
/// `/openapi.json`, and the weekly statistics when `--public-stats` is given.
pub fn public_router(state: AppState) -> Router {
    let settings = state.settings().clone();
    let (ingest, _) = ingest_routes().split_for_parts();
    let ingest = ingest.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(state.clone(), count_ingest))
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                overloaded()
            }))
            .load_shed()
            .concurrency_limit(settings.max_concurrent_requests)
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                settings.request_timeout,
            )),
    );
    let (health, _) = health_routes().split_for_parts();
    let document = public_openapi(&settings);
    let mut public = ingest.merge(health);
    if settings.public_stats {
        public = public
            .merge(stats_routes().split_for_parts().0)
            .route("/dashboard", get(dashboard::public_overview))
            .route("/dashboard/dimension", get(dashboard::public_dimension))
            .route("/dashboard/style.css", get(dashboard::stylesheet))
            .route("/dashboard/icon.svg", get(dashboard::icon));
    }
    public
        .route("/openapi.json", serve_document(document))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::map_response(json_errors))
        .layer(trace_layer())
        .with_state(state)
}

/// Request spans for the log, without the trace layer's ERROR line for each 5xx: a 500's cause
/// is logged where it happens, and 503s are expected refusals, logged at most once a second.
fn trace_layer() -> TraceLayer<
    HttpMakeClassifier,
    DefaultMakeSpan,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
> {
    TraceLayer::new_for_http().on_failure(())
}

/// The admin listener's router: the read API, erasure and the dashboard (behind the admin token
/// when one is set; the dashboard's login form opens a session that stands for it), and
/// `/metrics` and `/openapi.json` (never behind it, so Prometheus can scrape and tools can read
/// the document).
pub fn admin_router(state: AppState) -> Router {
    let (api, _) = admin_routes().split_for_parts();
    let api = api.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin_token,
    ));
    let pages = Router::new()
        .route("/dashboard", get(dashboard::admin_overview))
        .route("/dashboard/dimension", get(dashboard::admin_dimension))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_dashboard_login,
        ))
        .route("/dashboard/style.css", get(dashboard::stylesheet))
        .route("/dashboard/icon.svg", get(dashboard::icon))
        .route("/dashboard/login", get(login::form).post(login::login))
        .route("/dashboard/logout", post(login::logout));
    let (metrics, _) = metrics_routes().split_for_parts();
    api.merge(pages)
        .merge(metrics)
        .route("/openapi.json", serve_document(admin_openapi()))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::map_response(json_errors))
        .layer(trace_layer())
        .with_state(state)
}

fn overloaded() -> Response {
    ApiError::Unavailable {
        message: "the collector is handling as many reports as it may; retry later".into(),
        retry_after_seconds: 1,
    }
    .into_response()
}

/// Every route of both routers, as the latency histogram labels them.
const ROUTES: &[&str] = &[
    "/api/v1",
    "/healthz",
    "/readyz",
    "/version",
    "/openapi.json",
    "/metrics",
    "/api/v1/clusters",
    "/api/v1/clusters/{id}",
    "/api/v1/clusters/{id}/reports",
    "/api/v1/stats",
    "/api/v1/stats/dimensions",
    "/api/v1/stats/weekly",
    "/api/v1/stats/export",
    "/api/v1/import",
    "/api/v1/deliveries",
    "/api/v1/deliveries/requeue",
    "/dashboard",
    "/dashboard/dimension",
    "/dashboard/style.css",
    "/dashboard/icon.svg",
    "/dashboard/login",
    "/dashboard/logout",
];

/// Records the latency of every request by route and status.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => ROUTES
            .iter()
            .find(|route| **route == path.as_str())
            .copied()
            .unwrap_or("other"),
        None => "unmatched",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics()
        .request_duration
        .get_or_create(&RouteLabels {
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Counts every ingest answer by outcome, including those made by layers (408, 503).
async fn count_ingest(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .copied()
        .or(match response.status() {
            StatusCode::NO_CONTENT => Some(Outcome::accepted),
            StatusCode::BAD_REQUEST => Some(Outcome::invalid),
            StatusCode::UNAUTHORIZED => Some(Outcome::unauthorized),
            StatusCode::REQUEST_TIMEOUT => Some(Outcome::timeout),
            StatusCode::CONFLICT => Some(Outcome::conflict),
            StatusCode::PAYLOAD_TOO_LARGE => Some(Outcome::too_large),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(Outcome::unsupported_media),
            StatusCode::TOO_MANY_REQUESTS => Some(Outcome::rate_limited),
            StatusCode::SERVICE_UNAVAILABLE => Some(Outcome::unavailable),
            _ => None,
        });
    if let Some(outcome) = outcome {
        state.metrics().count_report(outcome);
    }
    response
}
