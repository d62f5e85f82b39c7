//! The admin API's delivery administration: what waits for each sink or was dead-lettered, and
//! re-queueing (dead letters, or a deliberate backfill).

use axum::Json;
use axum::extract::{Query, State};
use axum_extra::extract::WithRejection;
use common::time::rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::query::{ApiQuery, page_size, split_page};
use super::state::AppState;
use crate::store::{DeliveryCursor, DeliveryState};

/// Filters and paging of `GET /api/v1/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `pending` or `dead` (default: both).
    #[param(pattern = "^(?:pending|dead)$")]
    state: Option<String>,
    /// Only this sink.
    sink: Option<String>,
    /// Items per page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next` cursor of the previous page: `sink:position`.
    #[param(pattern = r"^[\s\S]*:[0-9]{1,18}$")]
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
    pub state: &'static str,
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
    WithRejection(Query(query), _): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let limit = page_size(query.limit)?;
    let wanted = query
        .state
        .as_deref()
        .map(|state| {
            state
                .parse::<DeliveryState>()
                .map_err(|_| ApiError::bad_request("state must be pending or dead"))
        })
        .transpose()?;
    let after = query
        .after
        .as_deref()
        .map(|cursor| {
            cursor
                .parse::<DeliveryCursor>()
                .map_err(|()| ApiError::bad_request("after is not a cursor from a previous page"))
        })
        .transpose()?;
    let rows = state
        .store()
        .deliveries(wanted, query.sink, after, limit + 1)
        .await
        .map_err(ApiError::from_internal)?;
    let (rows, next) = split_page(rows, limit, |row| {
        DeliveryCursor {
            sink: row.sink.clone(),
            seq: row.report_seq,
        }
        .to_string()
    });
    Ok(Json(DeliveryPage {
        deliveries: rows
            .into_iter()
            .map(|row| DeliveryView {
                next_attempt_at: (row.state == DeliveryState::Pending)
                    .then(|| rfc3339(row.next_attempt_at.max(row.queued_at))),
                sink: row.sink,
                report_id: row.report_id,
                cluster_id: row.cluster_id,
                state: row.state.as_str(),
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
    #[param(pattern = "^dead$")]
    state: Option<String>,
    /// Only reports received since then: unix seconds or an RFC 3339 date-time (default: all).
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
    WithRejection(Query(query), _): ApiQuery<RequeueQuery>,
) -> Result<Json<Requeued>, ApiError> {
    if !state.sinks().iter().any(|sink| sink.name == query.sink) {
        return Err(ApiError::NotFound(format!(
            "no sink named {:?} is configured",
            query.sink
        )));
    }
    let dead_only = match query.state.as_deref().map(str::parse) {
        None => false,
        Some(Ok(DeliveryState::Dead)) => true,
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

/// Most digits of a time given in unix seconds.
pub(super) const UNIX_SECONDS_DIGITS: usize = 12;

/// Unix seconds (1 to [`UNIX_SECONDS_DIGITS`] digits) or an RFC 3339 date-time with its offset.
fn parse_time(text: &str) -> Option<i64> {
    if (1..=UNIX_SECONDS_DIGITS).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let time: jiff::Timestamp = text.parse().ok()?;
    Some(time.as_second())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_unix_seconds_or_rfc_3339() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-15T00:13:20+02:00"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.5z"), Some(1_700_000_000));
        for bad in [
            "",
            "-5",
            "+5",
            "1234567890123",
            "2023-13-01T00:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
