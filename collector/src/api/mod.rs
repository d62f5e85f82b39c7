//! The HTTP API: the public router (ingest, health, OpenAPI) and the admin router (read API,
//! erasure, metrics), their shared state and middleware.

mod error;
mod health;
mod ingest;
mod read;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Result;
use crate::config::{Config, Secret};
use crate::metrics::{Metrics, Outcome, RouteLabels};
use crate::ratelimit::ClusterRateLimiter;
use crate::store::Store;
use common::ClusterIdRule;

pub use error::{ApiError, ErrorBody, json_errors};

/// Settings the handlers need, taken from the flags.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Which cluster ids are valid.
    pub cluster_id_rule: ClusterIdRule,
    /// Largest body on the wire.
    pub max_body_size: usize,
    /// Largest body after decompression.
    pub max_decompressed_size: usize,
    /// Time allowed for one ingest request.
    pub request_timeout: Duration,
    /// Ingest requests handled at once.
    pub max_concurrent_requests: usize,
    /// Retention period (the largest useful statistics window).
    pub retention: Duration,
}

struct Inner {
    store: Store,
    metrics: Arc<Metrics>,
    sinks: Vec<crate::sinks::Configured>,
    limiter: Option<ClusterRateLimiter>,
    settings: ApiSettings,
    ingest_token: Option<Secret>,
    admin_token: Option<Secret>,
    shutting_down: AtomicBool,
}

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Builds the state from the flags (reading token files) around an open store and the
    /// configured sinks.
    pub fn new(
        config: &Config,
        store: Store,
        metrics: Arc<Metrics>,
        sinks: Vec<crate::sinks::Configured>,
    ) -> Result<Self> {
        let read_secret =
            |path: &Option<std::path::PathBuf>| path.as_deref().map(Secret::from_file).transpose();
        let limiter = std::num::NonZeroU32::new(config.rate_limit_per_hour).map(|per_hour| {
            ClusterRateLimiter::new(
                per_hour,
                config.rate_limit_burst,
                config.rate_limit_tracked_clusters,
            )
        });
        let settings = ApiSettings {
            cluster_id_rule: if config.relaxed_cluster_ids {
                ClusterIdRule::Relaxed
            } else {
                ClusterIdRule::Uuid
            },
            max_body_size: usize::try_from(config.max_body_size).unwrap_or(usize::MAX),
            max_decompressed_size: usize::try_from(config.max_decompressed_size)
                .unwrap_or(usize::MAX),
            request_timeout: config.request_timeout,
            max_concurrent_requests: config.max_concurrent_requests.get(),
            retention: config.retention,
        };
        Ok(AppState(Arc::new(Inner {
            store,
            metrics,
            sinks,
            limiter,
            settings,
            ingest_token: read_secret(&config.ingest_token_file)?,
            admin_token: read_secret(&config.admin_token_file)?,
            shutting_down: AtomicBool::new(false),
        })))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The metrics, shared.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    /// The configured sinks.
    pub fn sinks(&self) -> &[crate::sinks::Configured] {
        &self.0.sinks
    }

    /// The per-cluster rate limiter, unless rate limiting is off.
    pub fn limiter(&self) -> Option<&ClusterRateLimiter> {
        self.0.limiter.as_ref()
    }

    fn settings(&self) -> &ApiSettings {
        &self.0.settings
    }

    /// Makes `/readyz` fail from now on.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }
}

/// The public listener's router: `POST /api/v1`, `/healthz`, `/readyz`, `/version`,
/// `/openapi.json`.
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
    let document = openapi();
    ingest
        .merge(health)
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        )
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::map_response(json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The admin listener's router: the read API and erasure (behind the admin token when one is
/// set) and `/metrics` (never behind it, so Prometheus can scrape).
pub fn admin_router(state: AppState) -> Router {
    let (api, _) = admin_routes().split_for_parts();
    let api = api.route_layer(middleware::from_fn_with_state(
        state.clone(),
        require_admin_token,
    ));
    let (metrics, _) = metrics_routes().split_for_parts();
    api.merge(metrics)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::map_response(json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn ingest_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest::post_report))
}

fn health_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::version))
}

fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read::list_clusters))
        .routes(routes!(read::cluster_reports))
        .routes(routes!(read::delete_cluster))
        .routes(routes!(read::stats))
        .routes(routes!(read::deliveries))
        .routes(routes!(read::requeue))
}

fn metrics_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health::metrics))
}

/// The OpenAPI 3 document of both listeners, generated from the handlers' annotations.
pub fn openapi() -> OpenApi {
    let mut document = OpenApi::default();
    document.info = InfoBuilder::new()
        .title("collector")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Anonymous Kubernetes usage reports (Spartakus v1 compatible). Paths tagged `ingest` \
             and `health` are served on the public listener (default :8080); paths tagged \
             `admin` on the admin listener (default 127.0.0.1:9090).",
        ))
        .build();
    for routes in [
        ingest_routes(),
        health_routes(),
        admin_routes(),
        metrics_routes(),
    ] {
        document.merge(routes.split_for_parts().1);
    }
    let components = document.components.get_or_insert_with(Default::default);
    for name in ["ingest_token", "admin_token"] {
        components.add_security_scheme(
            name,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    document
}

/// True when the request carries `Authorization: Bearer <secret>`.
fn bearer_matches(headers: &HeaderMap, secret: &Secret) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| secret.matches(token.trim()))
}

async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match &state.0.admin_token {
        Some(secret) if !bearer_matches(request.headers(), secret) => {
            ApiError::Unauthorized.into_response()
        }
        _ => next.run(request).await,
    }
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
    "/api/v1/deliveries",
    "/api/v1/deliveries/requeue",
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
