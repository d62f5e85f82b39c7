//! The admin read API (the analog of CCX's aggregator): clusters, their reports, fleet
//! statistics, and a cluster's erasure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, ErrorBody};
use crate::store::{ClusterSummary, Stats, StoredReport};
use common::{Report, canonical_cluster_id};

/// Most items on one page.
const MAX_PAGE: usize = 1000;

/// Query parameters whose rejection is a JSON 400 like every other error.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| ApiQuery(query))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// Paging of `GET /api/v1/clusters`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClustersQuery {
    /// Items per page (1-1000, default 100).
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// One cluster.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// Cluster id.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// First report received (RFC 3339).
    pub first_seen: String,
    /// Last report received (RFC 3339).
    pub last_seen: String,
    /// Reports stored.
    pub reports: i64,
    /// `masterVersion` of the latest report.
    pub latest_master_version: Option<String>,
    /// Nodes in the latest report.
    pub latest_node_count: i64,
}

/// A page of clusters.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterPage {
    /// Clusters in id order.
    pub clusters: Vec<ClusterView>,
    /// Cursor for the next page (`?after=`), absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Paging of a cluster's reports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Items per page (1-1000, default 100).
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    before: Option<i64>,
}

/// One stored report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportView {
    /// Report id (UUID v5; the dedup key sinks use).
    pub id: String,
    /// When the collector received it (RFC 3339).
    pub received_at: String,
    /// The report's time (RFC 3339): its timestamp when plausible, else `receivedAt`.
    pub report_time: String,
    /// `client` or `received`: where `reportTime` came from.
    pub time_source: &'static str,
    /// The report as stored (sanitized; `timestamp` is `reportTime` in unix seconds).
    pub report: Report,
}

/// A page of a cluster's reports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    /// Cluster id.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// Reports, newest first.
    pub reports: Vec<ReportView>,
    /// Cursor for the next page (`?before=`), absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// The window of `GET /api/v1/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Clusters seen within this long (e.g. `30d`, `12h`; default `30d`).
    window: Option<String>,
}

/// Fleet statistics from the latest report of each cluster seen in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// The window, as given.
    pub window: String,
    /// Start of the window (RFC 3339).
    pub since: String,
    /// The counts.
    #[serde(flatten)]
    pub stats: Stats,
}

/// The result of an erasure.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erased {
    /// Cluster id.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// Reports deleted.
    pub reports_erased: u64,
}

/// List clusters, paged by id.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "admin", params(ClustersQuery),
    responses(
        (status = 200, description = "A page of clusters", body = ClusterPage),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn list_clusters(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ClustersQuery>,
) -> Result<Json<ClusterPage>, ApiError> {
    let limit = page_size(query.limit)?;
    let clusters = state
        .store()
        .clusters(query.after, limit + 1)
        .await
        .map_err(ApiError::from_internal)?;
    let (clusters, next) = split_page(clusters, limit, |c| c.cluster_id.clone());
    Ok(Json(ClusterPage {
        clusters: clusters.into_iter().map(cluster_view).collect(),
        next,
    }))
}

/// A cluster's reports, newest first.
#[utoipa::path(get, path = "/api/v1/clusters/{id}/reports", tag = "admin",
    params(("id" = String, Path, description = "Cluster id"), ReportsQuery),
    responses(
        (status = 200, description = "A page of reports", body = ReportPage),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No reports from this cluster", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn cluster_reports(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReportsQuery>,
) -> Result<Json<ReportPage>, ApiError> {
    let limit = page_size(query.limit)?;
    let cluster_id = canonical_cluster_id(&id);
    let reports = state
        .store()
        .cluster_reports(cluster_id.clone(), query.before, limit + 1)
        .await
        .map_err(ApiError::from_internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no reports from cluster {cluster_id:?}")))?;
    let (reports, next) = split_page(reports, limit, |r| r.seq);
    Ok(Json(ReportPage {
        cluster_id,
        reports: reports.into_iter().map(report_view).collect(),
        next,
    }))
}

/// Erase every report of a cluster (its opt-out).
#[utoipa::path(delete, path = "/api/v1/clusters/{id}", tag = "admin",
    params(("id" = String, Path, description = "Cluster id")),
    responses(
        (status = 200, description = "Erased", body = Erased),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No reports from this cluster", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn delete_cluster(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Erased>, ApiError> {
    let cluster_id = canonical_cluster_id(&id);
    let erased = state
        .store()
        .delete_cluster(&cluster_id)
        .await
        .map_err(ApiError::from_internal)?;
    if erased == 0 {
        return Err(ApiError::NotFound(format!(
            "no reports from cluster {cluster_id:?}"
        )));
    }
    state.metrics().reports_erased.inc_by(erased);
    tracing::info!(cluster_id = %cluster_id, reports = erased, "cluster erased on request");
    Ok(Json(Erased {
        cluster_id,
        reports_erased: erased,
    }))
}

/// Fleet statistics from the latest report of each cluster seen in the window.
#[utoipa::path(get, path = "/api/v1/stats", tag = "admin", params(StatsQuery),
    responses(
        (status = 200, description = "Statistics", body = StatsView),
        (status = 400, description = "Bad window", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<StatsView>, ApiError> {
    let window = query.window.unwrap_or_else(|| "30d".to_string());
    let duration = humantime::parse_duration(&window).map_err(|e| {
        ApiError::bad_request(format!(
            "window {window:?} is not a duration such as 30d: {e}"
        ))
    })?;
    if duration.is_zero() || duration > state.settings().retention {
        return Err(ApiError::bad_request(format!(
            "window must be longer than zero and at most the retention period ({})",
            humantime::format_duration(state.settings().retention)
        )));
    }
    let since = SystemTime::now()
        .checked_sub(duration)
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let stats = state
        .store()
        .stats(since)
        .await
        .map_err(ApiError::from_internal)?;
    Ok(Json(StatsView {
        window,
        since: rfc3339(since),
        stats,
    }))
}

fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(100) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}, not {n}"
        ))),
    }
}

/// Keeps the first `limit` items (one more was fetched to learn whether a next page exists).
fn split_page<T, C>(
    mut items: Vec<T>,
    limit: usize,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(cursor);
        (items, next)
    } else {
        (items, None)
    }
}

fn rfc3339(unix_seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(unix_seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn cluster_view(cluster: ClusterSummary) -> ClusterView {
    ClusterView {
        first_seen: rfc3339(cluster.first_seen),
        last_seen: rfc3339(cluster.last_seen),
        cluster_id: cluster.cluster_id,
        reports: cluster.reports,
        latest_master_version: cluster.latest_master_version,
        latest_node_count: cluster.latest_node_count,
    }
}

fn report_view(stored: StoredReport) -> ReportView {
    ReportView {
        id: stored.id,
        received_at: rfc3339(stored.received_at),
        report_time: rfc3339(stored.report_time),
        time_source: stored.time_source.as_str(),
        report: stored.report,
    }
}

/// Filters and paging of `GET /api/v1/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `pending` or `dead` (default: both).
    state: Option<String>,
    /// Only this sink.
    sink: Option<String>,
    /// Items per page (1-1000, default 100).
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// One delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The sink.
    pub sink: String,
    /// Report id.
    #[serde(rename = "reportID")]
    pub report_id: String,
    /// Cluster id.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// `pending` or `dead`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was queued (RFC 3339).
    pub queued_at: String,
    /// When it is due again (RFC 3339), for pending deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The last failure, or why it is dead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A page of deliveries, in (sink, report) order.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Deliveries.
    pub deliveries: Vec<DeliveryView>,
    /// Cursor for the next page (`?after=`), absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Deliveries still queued or dead-lettered (delivered ones are pruned).
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "admin", params(DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Bad filter or paging", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let limit = page_size(query.limit)?;
    if let Some(wanted) = &query.state
        && !matches!(wanted.as_str(), "pending" | "dead")
    {
        return Err(ApiError::bad_request("state must be pending or dead"));
    }
    let after = match &query.after {
        Some(cursor) => Some(
            cursor
                .rsplit_once(':')
                .and_then(|(sink, seq)| Some((sink.to_string(), seq.parse().ok()?)))
                .ok_or_else(|| {
                    ApiError::bad_request("after is not a cursor from a previous page")
                })?,
        ),
        None => None,
    };
    let rows = state
        .store()
        .deliveries(query.state, query.sink, after, limit + 1)
        .await
        .map_err(ApiError::from_internal)?;
    let (rows, next) = split_page(rows, limit, |row| {
        format!("{}:{}", row.sink, row.report_seq)
    });
    Ok(Json(DeliveryPage {
        deliveries: rows
            .into_iter()
            .map(|row| DeliveryView {
                next_attempt_at: (row.state == "pending")
                    .then(|| rfc3339(row.next_attempt_at.max(row.queued_at))),
                sink: row.sink,
                report_id: row.report_id,
                cluster_id: row.cluster_id,
                state: row.state,
                attempts: row.attempts,
                queued_at: rfc3339(row.queued_at),
                last_error: row.last_error,
            })
            .collect(),
        next,
    }))
}

/// What to re-queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequeueQuery {
    /// The sink.
    sink: String,
    /// `dead`: only dead-lettered deliveries. Without it: also a deliberate backfill, every
    /// stored report that was received while the sink was not configured (so never sent to it);
    /// reports it already received are not sent again.
    state: Option<String>,
    /// Only reports received since then (RFC 3339 or unix seconds; default: all).
    since: Option<String>,
}

/// The result of a re-queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    /// The sink.
    pub sink: String,
    /// Deliveries pending again.
    pub requeued: u64,
}

/// Re-queue dead deliveries of a sink, or backfill it with stored reports.
#[utoipa::path(post, path = "/api/v1/deliveries/requeue", tag = "admin", params(RequeueQuery),
    responses(
        (status = 200, description = "Re-queued", body = Requeued),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such sink", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn requeue(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RequeueQuery>,
) -> Result<Json<Requeued>, ApiError> {
    if !state.sinks().iter().any(|sink| sink.name == query.sink) {
        return Err(ApiError::NotFound(format!(
            "no sink named {:?} is configured",
            query.sink
        )));
    }
    let dead_only = match query.state.as_deref() {
        None => false,
        Some("dead") => true,
        Some(_) => return Err(ApiError::bad_request("state must be dead, or absent")),
    };
    let since = match query.since.as_deref() {
        None => 0,
        Some(text) => parse_time(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "since {text:?} is neither RFC 3339 nor unix seconds"
            ))
        })?,
    };
    let requeued = state
        .store()
        .requeue(&query.sink, dead_only, since)
        .await
        .map_err(ApiError::from_internal)?;
    tracing::info!(sink = %query.sink, dead_only, since, requeued, "deliveries re-queued");
    Ok(Json(Requeued {
        sink: query.sink,
        requeued,
    }))
}

/// RFC 3339 or unix seconds.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    humantime::parse_rfc3339(text)
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}
