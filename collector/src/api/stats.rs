//! The weekly statistics: the registry of dimensions, one dimension week by week, and the open
//! data export, as JSON or CSV, with the minimum group size applied. Every answer is rendered
//! from the snapshot the last rollup published, never by querying the store.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::WithRejection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::query::ApiQuery;
use super::state::AppState;
use crate::published::views::{ExportView, WeeklyView, weekly_csv};
use crate::published::{DimensionInfo, Published};
use crate::stats::dimensions::EXTENSION_PREFIX;

/// Most weeks one weekly answer covers (ten years).
pub const MAX_WEEKS: usize = 520;
/// Weeks a weekly answer covers unless asked otherwise.
pub const DEFAULT_WEEKS: usize = 26;

/// The format of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `application/json`
    Json,
    /// `text/csv`: one row per week and value.
    Csv,
}

/// `GET /api/v1/stats/weekly`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WeeklyQuery {
    /// A dimension of `GET /api/v1/stats/dimensions`; without one, the weekly totals only.
    dimension: Option<String>,
    /// Complete weeks, the last one the week before this (1-520, default 26).
    #[param(minimum = 1, maximum = 520)]
    weeks: Option<usize>,
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    #[param(inline)]
    format: Option<Format>,
}

/// `GET /api/v1/stats/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    #[param(inline)]
    format: Option<Format>,
}

/// `GET /api/v1/stats/dimensions`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DimensionsView {
    /// Cells counted from fewer clusters than this are folded into `other`.
    pub min_group_clusters: i64,
    /// The registered dimensions, then one per extension key that at least that many clusters
    /// reported in some week.
    pub dimensions: Vec<DimensionInfo>,
}

/// The dimensions the weekly statistics count.
#[utoipa::path(get, path = "/api/v1/stats/dimensions", tag = "stats",
    responses(
        (status = 200, description = "The registry", body = DimensionsView),
        (status = 401, description = "Missing or wrong admin token (admin listener)", body = ErrorBody),
        (status = 503, description = "The statistics are still being computed after startup", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn dimensions(State(state): State<AppState>) -> Result<Response, ApiError> {
    let published = ready(&state)?;
    let view = DimensionsView {
        min_group_clusters: published.min_group_clusters,
        dimensions: published.dimensions().to_vec(),
    };
    Ok(cached(&published, Format::Json, json(&view)))
}

/// One dimension (or the totals alone), week by week.
#[utoipa::path(get, path = "/api/v1/stats/weekly", tag = "stats", params(WeeklyQuery),
    responses(
        (status = 200, description = "The weeks, oldest first; per value its clusters (and nodes) per week",
            content(
                (WeeklyView = "application/json"),
                (String = "text/csv", example = "week,week_start,dimension,value,clusters,nodes\n2026-W48,2026-11-23,architecture,amd64,812,5120\n"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 400, description = "Not a dimension's name, or bad `weeks` or `format`", body = ErrorBody),
        (status = 404, description = "An extension key's dimension that is not published", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (admin listener)", body = ErrorBody),
        (status = 503, description = "The statistics are still being computed after startup", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn weekly(
    State(state): State<AppState>,
    headers: HeaderMap,
    WithRejection(Query(query), _): ApiQuery<WeeklyQuery>,
) -> Result<Response, ApiError> {
    let published = ready(&state)?;
    let count = match query.weeks.unwrap_or(DEFAULT_WEEKS) {
        n @ 1..=MAX_WEEKS => n,
        n => {
            return Err(ApiError::bad_request(format!(
                "weeks must be between 1 and {MAX_WEEKS}, not {n}"
            )));
        }
    };
    let format = format(query.format, &headers);
    if let Some(response) = not_modified(&published, format, &headers) {
        return Ok(response);
    }
    let weeks = published.last_weeks(count);
    let view = published
        .weekly(query.dimension.as_deref(), &weeks)
        .ok_or_else(|| unknown_dimension(&query.dimension.unwrap_or_default()))?;
    let body = match format {
        Format::Json => json(&view),
        Format::Csv => weekly_csv(&view),
    };
    Ok(cached(&published, format, body))
}

/// Every dimension for every kept week, thresholded: the open data set.
#[utoipa::path(get, path = "/api/v1/stats/export", tag = "stats", params(ExportQuery),
    responses(
        (status = 200, description = "The open data set",
            content(
                (ExportView = "application/json"),
                (String = "text/csv", example = "week,week_start,dimension,value,clusters,nodes\n2026-W48,2026-11-23,fleet,active,1021,6400\n"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 400, description = "Bad `format`", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (admin listener)", body = ErrorBody),
        (status = 503, description = "The statistics are still being computed after startup", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    WithRejection(Query(query), _): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let published = ready(&state)?;
    let format = format(query.format, &headers);
    if let Some(response) = not_modified(&published, format, &headers) {
        return Ok(response);
    }
    let body = match format {
        Format::Json => published.export_json(),
        Format::Csv => published.export_csv(),
    };
    Ok(cached(&published, format, body))
}

/// Why there is no dimension `name`: 404 for a name of the documented form (an extension key's
/// dimension is published only once enough clusters report the key), 400 for any other name.
fn unknown_dimension(name: &str) -> ApiError {
    let hint = "GET /api/v1/stats/dimensions lists them";
    match name.strip_prefix(EXTENSION_PREFIX) {
        Some(key) if !key.is_empty() => {
            ApiError::NotFound(format!("no dimension {name:?} is published; {hint}"))
        }
        _ => ApiError::bad_request(format!("no dimension {name:?}; {hint}")),
    }
}

fn ready(state: &AppState) -> Result<std::sync::Arc<Published>, ApiError> {
    let published = state.weekly().published();
    if published.ready {
        Ok(published)
    } else {
        Err(ApiError::Unavailable {
            message: "the weekly statistics are being computed after startup; retry shortly".into(),
            retry_after_seconds: 5,
        })
    }
}

fn format(asked: Option<Format>, headers: &HeaderMap) -> Format {
    asked.unwrap_or_else(|| {
        let accepts_csv = headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv"));
        if accepts_csv {
            Format::Csv
        } else {
            Format::Json
        }
    })
}

fn json(view: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(view).expect("views serialize")
}

/// The entity tag of every answer from `published` in `format`: it changes with each rollup
/// that changed something, and with each restart.
fn etag(published: &Published, format: Format) -> HeaderValue {
    let format = match format {
        Format::Json => "json",
        Format::Csv => "csv",
    };
    HeaderValue::try_from(format!(
        "\"{}-{}-{format}\"",
        published.built_at, published.generation
    ))
    .expect("an ASCII tag")
}

fn not_modified(published: &Published, format: Format, headers: &HeaderMap) -> Option<Response> {
    let tag = etag(published, format);
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| candidate.trim().as_bytes() == tag.as_bytes());
    matches.then(|| (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response())
}

fn cached(published: &Published, format: Format, body: impl Into<axum::body::Body>) -> Response {
    let content_type = match format {
        Format::Json => "application/json",
        Format::Csv => "text/csv; charset=utf-8",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, etag(published, format)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        body.into(),
    )
        .into_response()
}
