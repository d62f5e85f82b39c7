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

/// Unix seconds (1 to [`UNIX_SECONDS_DIGITS`] digits) or an RFC 3339 date-time.
fn parse_time(text: &str) -> Option<i64> {
    if (1..=UNIX_SECONDS_DIGITS).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    rfc3339_seconds(text)
}

/// The unix seconds of an RFC 3339 date-time, exactly its grammar (what JSON Schema's
/// `date-time` means): `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, `T` and `Z` in either
/// case, a leap second taken as the second before it, the fraction dropped.
fn rfc3339_seconds(text: &str) -> Option<i64> {
    let number = |at: usize, len: usize| -> Option<i64> {
        let digits = text.get(at..at + len)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let bytes = text.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if !separators
        .iter()
        .all(|&(at, byte)| bytes.get(at) == Some(&byte))
        || !matches!(bytes.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let end = text.len();
            let (hours, minutes) = (number(end - 5, 2)?, number(end - 2, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let date = jiff::civil::Date::new(year as i16, month as i8, day as i8).ok()?;
    let days = date
        .duration_since(jiff::civil::date(1970, 1, 1))
        .as_secs()
        .div_euclid(86_400);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_unix_seconds_or_rfc_3339() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-15T00:13:20+02:00"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14t22:13:20.5z"), Some(1_700_000_000));
        assert_eq!(
            parse_time("2023-11-14T17:13:20.1234567890123-05:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), Some(-62_135_596_800));
        assert_eq!(parse_time("9999-12-31T23:59:60Z"), Some(253_402_300_799));
        assert_eq!(parse_time("2016-12-31T23:59:60Z"), Some(1_483_228_799));
        for bad in [
            "",
            "-5",
            "+5",
            "1234567890123",
            "2023-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+02",
            "2023-11-14T22:13:20+0200",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20+24:00",
            "2023-11-14T22:13:20Z[Europe/Paris]",
            "2023-11-14T22:13:20+02:0x",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
