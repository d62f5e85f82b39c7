//! The admin read API's view of the fleet (the analog of CCX's aggregator): clusters, their
//! reports, fleet statistics, and a cluster's erasure.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum_extra::extract::WithRejection;
use common::report::NodeFact;
use common::time::rfc3339;
use common::{Report, canonical_cluster_id};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::query::{ApiQuery, page_size, split_page};
use super::state::AppState;
use crate::store::{ClusterSummary, StoredReport};

/// Paging of `GET /api/v1/clusters`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClustersQuery {
    /// Items per page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
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
    #[param(minimum = 1, maximum = 1000)]
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
    /// Clusters seen within this long: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
    /// (e.g. `30d`, `12h`; default `30d`), at most the retention period.
    #[param(pattern = "^[1-9][0-9]{0,5}[smhdw]$")]
    window: Option<String>,
}

/// Fleet statistics from the latest report of each cluster seen in the window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    /// The window, as given.
    pub window: String,
    /// Start of the window (RFC 3339).
    pub since: String,
    /// Clusters seen.
    pub clusters: i64,
    /// Nodes in their latest reports.
    pub nodes: i64,
    /// Clusters by `masterVersion`.
    pub master_versions: BTreeMap<String, i64>,
    /// Nodes by `operatingSystem`.
    pub operating_systems: BTreeMap<String, i64>,
    /// Nodes by `osImage`.
    pub os_images: BTreeMap<String, i64>,
    /// Nodes by `architecture`.
    pub architectures: BTreeMap<String, i64>,
    /// Nodes by `containerRuntimeVersion`.
    pub container_runtimes: BTreeMap<String, i64>,
    /// Nodes by `kubeletVersion`.
    pub kubelet_versions: BTreeMap<String, i64>,
    /// Nodes by `cloudProvider`.
    pub cloud_providers: BTreeMap<String, i64>,
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
    WithRejection(Query(query), _): ApiQuery<ClustersQuery>,
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
    WithRejection(Query(query), _): ApiQuery<ReportsQuery>,
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
    state.sources().forget(&cluster_id);
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
    WithRejection(Query(query), _): ApiQuery<StatsQuery>,
) -> Result<Json<StatsView>, ApiError> {
    let window = query.window.unwrap_or_else(|| "30d".to_string());
    let duration = parse_window(&window).ok_or_else(|| {
        ApiError::bad_request(format!(
            "window {window:?} is not a whole number and a unit (s, m, h, d or w), such as 30d"
        ))
    })?;
    if duration > state.settings().retention {
        return Err(ApiError::bad_request(format!(
            "window must be at most the retention period ({})",
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
        clusters: stats.clusters,
        nodes: stats.nodes,
        operating_systems: stats.nodes_by(NodeFact::OperatingSystem),
        os_images: stats.nodes_by(NodeFact::OsImage),
        architectures: stats.nodes_by(NodeFact::Architecture),
        container_runtimes: stats.nodes_by(NodeFact::ContainerRuntimeVersion),
        kubelet_versions: stats.nodes_by(NodeFact::KubeletVersion),
        cloud_providers: stats.nodes_by(NodeFact::CloudProvider),
        master_versions: stats.master_versions,
    }))
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

/// Longest number of a window, in digits.
pub(super) const WINDOW_DIGITS: usize = 6;

/// A window of `GET /api/v1/stats`: 1 to [`WINDOW_DIGITS`] digits without a leading zero, then
/// `s`, `m`, `h`, `d` or `w` (the documented pattern, exactly).
fn parse_window(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at_checked(text.len().checked_sub(1)?)?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    let well_formed = (1..=WINDOW_DIGITS).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0');
    if !well_formed {
        return None;
    }
    Some(Duration::from_secs(number.parse::<u64>().ok()? * seconds))
}

#[cfg(test)]
mod tests {
    use super::{Duration, parse_window};

    #[test]
    fn windows_are_a_whole_number_and_a_unit() {
        assert_eq!(parse_window("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_window("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_window("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_window("2w"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(
            parse_window("999999m"),
            Some(Duration::from_secs(999_999 * 60))
        );
        for bad in [
            "", "d", "0d", "030d", "1000000d", "30", "30 d", "+3d", "30days", "1h30m", "3é",
            "forever",
        ] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
    }
}
