//! Liveness, readiness, version and metrics endpoints.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::state::AppState;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

/// Versions of this collector.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    /// Collector release.
    pub version: &'static str,
    /// Report schema version this collector's volunteer writes.
    pub schema: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The collector can take reports: the store is writable and it is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Store unavailable (e.g. disk full) or shutting down", body = ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::Unavailable {
            message: "the collector is shutting down".into(),
            retry_after_seconds: 5,
        });
    }
    if !state.store().is_available() {
        let cause = state.store().last_error().unwrap_or_default();
        return Err(ApiError::Unavailable {
            message: format!("the store is unavailable: {cause}"),
            retry_after_seconds: 30,
        });
    }
    Ok(Json(Health { status: "ok" }))
}

/// This collector's version.
#[utoipa::path(get, path = "/version", tag = "health",
    responses((status = 200, description = "Versions", body = Version)))]
pub async fn version() -> Json<Version> {
    Json(Version {
        version: env!("CARGO_PKG_VERSION"),
        schema: common::report::SCHEMA_VERSION,
    })
}

/// Prometheus metrics (OpenMetrics text). Served on the admin listener without the admin token.
#[utoipa::path(get, path = "/metrics", tag = "admin",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.store().refresh_size_gauge().await;
    if let Some(limiter) = state.limiter() {
        state
            .metrics()
            .rate_limiter_tracked
            .set(limiter.tracked() as i64);
    }
    let metrics = state.metrics();
    metrics
        .source_limiter_tracked
        .set(state.sources().tracked() as i64);
    metrics.inflight_memory.set(state.budget().in_use() as i64);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
}
