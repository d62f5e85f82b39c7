//! `POST /api/v1`: the Spartakus endpoint. Checks media type and size, charges the memory budget
//! for the body's worst case, decodes gzip, admits the report (validate + sanitize), applies the
//! per-cluster rate limit and answers 204 only after the store committed it.

use std::borrow::Cow;
use std::net::SocketAddr;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::auth::bearer_matches;
use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::budget::{BUDGET_WAIT, Charge};
use crate::metrics::{Limit, Outcome};
use crate::ratelimit::{SourceRefusal, source_address};
use crate::store::{InsertOutcome, NewReport};
use common::cost::Cost;
use common::time::unix_now;
use common::wire::{Encoding, decode_body};
use common::{Admitted, ClusterIdRule, Report, admit};

/// The header trusted proxies name the client in.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Bodies larger than this are decoded and admitted on a blocking thread, so that a 15,000-node
/// report does not stall the async workers.
const INLINE_ADMIT_LIMIT: usize = 256 * 1024;

/// Receive one report.
#[utoipa::path(
    post,
    path = "/api/v1",
    tag = "ingest",
    request_body(
        content = Report,
        content_type = "application/json",
        description = "One report; `Content-Encoding: gzip` is accepted. Unknown fields are dropped."
    ),
    responses(
        (status = 204, description = "Stored durably, or already stored (same id and content)"),
        (status = 400, description = "Malformed or invalid report; `problems` lists every field", body = ErrorBody),
        (status = 401, description = "Missing or wrong ingest token (only when one is configured)", body = ErrorBody),
        (status = 408, description = "Not completed within the request timeout", body = ErrorBody),
        (status = 409, description = "A different report with the same id (cluster and time) is stored; the first copy is kept", body = ErrorBody),
        (status = 413, description = "Over 8 MiB on the wire or 32 MiB decompressed (defaults)", body = ErrorBody),
        (status = 415, description = "Not `application/json`, or an encoding other than gzip", body = ErrorBody),
        (status = 429, description = "Over the cluster's rate limit, or its source address's (reports a minute, new cluster ids an hour); see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Store unavailable or collector overloaded; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security((), ("ingest_token" = []))
)]
pub async fn post_report(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(secret) = state.ingest_token()
        && !bearer_matches(&headers, secret)
    {
        return Err(ApiError::Unauthorized);
    }
    // A request that did not come through a listener (an in-process test) has no source.
    let source = peer.map(|Extension(ConnectInfo(peer))| {
        let forwarded = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok());
        let address = source_address(peer.ip(), forwarded, &state.settings().trusted_proxies);
        state.sources().key(address)
    });
    if let Some(source) = source {
        state
            .sources()
            .check_report(source)
            .map_err(|refusal| source_refused(&state, refusal))?;
    }
    check_content_type(&headers)?;
    let encoding = content_encoding(&headers)?;
    let settings = state.settings();
    let limit = settings.max_decompressed_size;
    let declared = declared_length(&headers, settings.max_body_size)?;
    // A body of unknown length is charged as if it were as long as it may be.
    let worst = Cost::before_reading(declared.unwrap_or(settings.max_body_size), encoding, limit);
    let Some(mut charge) = state.budget().charge(worst.total(), BUDGET_WAIT).await else {
        state.metrics().memory_budget_refusals.inc();
        return Err(ApiError::Unavailable {
            message: "the collector's memory for reports in flight is taken; retry later".into(),
            retry_after_seconds: 1,
        });
    };
    let wire = read_body(body, declared, settings.max_body_size).await?;

    let rule = settings.cluster_id_rule;
    let received_at = unix_now();
    let admitted = if wire.len() > INLINE_ADMIT_LIMIT || encoding == Encoding::Gzip {
        let (admitted, kept) = tokio::task::spawn_blocking(move || {
            let admitted =
                inflate_and_admit(&wire, encoding, limit, &mut charge, rule, received_at);
            (admitted, charge)
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "decoding a report failed");
            ApiError::Internal
        })?;
        charge = kept;
        admitted?
    } else {
        inflate_and_admit(&wire, encoding, limit, &mut charge, rule, received_at)?
    };

    state
        .metrics()
        .count_admission(admitted.unknown_fields, &admitted.changes);
    for (key, reason) in &admitted.changes.dropped_extensions {
        let key: String = key.chars().take(64).collect();
        tracing::info!(
            cluster_id = %admitted.report.cluster_id,
            extension = ?key,
            reason = reason.as_str(),
            "extension dropped"
        );
    }

    if let Some(limiter) = state.limiter() {
        limiter
            .check(&admitted.report.cluster_id)
            .map_err(|retry_after| {
                state.metrics().count_rate_limited(Limit::cluster);
                ApiError::RateLimited {
                    what: "too many reports from this cluster",
                    retry_after,
                }
            })?;
    }
    let new_cluster = match source {
        Some(source) => state
            .sources()
            .check_cluster(source, &admitted.report.cluster_id)
            .map_err(|refusal| source_refused(&state, refusal))?,
        None => false,
    };

    // The report is held until the store has committed it, even if this request is given up
    // (a timeout, a client gone): the charge goes with it, and is given back only then.
    let id = admitted.id;
    let store = state.store().clone();
    let learn = new_cluster.then(|| (state.sources_handle(), admitted.report.cluster_id.clone()));
    let committed = tokio::spawn(async move {
        let outcome = store.insert(NewReport::from(admitted)).await;
        drop(charge);
        if let (Some((sources, cluster_id)), Ok(InsertOutcome::Stored)) = (learn, &outcome) {
            sources.learn(&cluster_id);
        }
        outcome
    });
    let outcome = committed
        .await
        .map_err(|error| {
            tracing::error!(%error, "storing a report failed");
            ApiError::Internal
        })?
        .map_err(ApiError::from_internal)?;
    match outcome {
        InsertOutcome::Stored => Ok(StatusCode::NO_CONTENT.into_response()),
        InsertOutcome::Duplicate => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.extensions_mut().insert(Outcome::duplicate);
            Ok(response)
        }
        InsertOutcome::Conflict => Err(ApiError::Conflict(format!(
            "a different report with id {id} (same cluster and timestamp) is already stored; \
             the first copy is kept"
        ))),
    }
}

fn source_refused(state: &AppState, refusal: SourceRefusal) -> ApiError {
    let (limit, what, retry_after) = match refusal {
        SourceRefusal::Reports(wait) => (Limit::source, "too many reports from this address", wait),
        SourceRefusal::NewClusters(wait) => (
            Limit::source_new_clusters,
            "too many new cluster ids from this address",
            wait,
        ),
    };
    state.metrics().count_rate_limited(limit);
    ApiError::RateLimited { what, retry_after }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim());
    match media_type {
        Some(media) if media.eq_ignore_ascii_case("application/json") => Ok(()),
        Some(media) => Err(ApiError::UnsupportedMedia(format!(
            "Content-Type {media:?} is not supported; send application/json"
        ))),
        None => Err(ApiError::UnsupportedMedia(
            "Content-Type is missing; send application/json".into(),
        )),
    }
}

/// The body's encoding; one the wire does not use is refused.
pub(super) fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let value = value.to_str().unwrap_or_default();
    Encoding::from_header(value).ok_or_else(|| {
        ApiError::UnsupportedMedia(format!(
            "Content-Encoding {:?} is not supported; send gzip or no encoding",
            value.trim().to_ascii_lowercase()
        ))
    })
}

/// Inflates the body and admits the report, giving back the charge an inflated body did not need
/// before decoding it.
fn inflate_and_admit(
    wire: &[u8],
    encoding: Encoding,
    limit: usize,
    charge: &mut Charge,
    rule: ClusterIdRule,
    received_at: i64,
) -> Result<Admitted, common::Error> {
    let json = decode_body(wire, encoding, limit)?;
    let inflated = match &json {
        Cow::Owned(json) => json.capacity(),
        Cow::Borrowed(_) => 0,
    };
    charge.shrink_to(Cost::after_inflating(wire.len(), inflated, encoding).total());
    admit(&json, rule, received_at)
}

/// The body length the request declares; one over `limit` is refused before anything is read.
fn declared_length(headers: &HeaderMap, limit: usize) -> Result<Option<usize>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        Some(length) => Ok(Some(length as usize)),
        None => Ok(None),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "the request body is larger than {limit} bytes; compress it with gzip"
    ))
}

/// Reads the body into one buffer, frame by frame (each frame let go once copied, so a body of
/// a million one-byte chunks costs what its bytes do): sized from the declared length, or grown
/// by doubling when there is none (`Limited` stops it at `limit` bytes).
async fn read_body(body: Body, declared: Option<usize>, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let outcome = loop {
        match body.as_mut().frame().await {
            None => break Ok(()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                }
            }
            Some(Err(error)) => break Err(error),
        }
    };
    match outcome {
        Ok(()) => Ok(buffer.freeze()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large(limit)),
        Err(error) => Err(ApiError::bad_request(format!(
            "could not read the request body: {error}"
        ))),
    }
}
