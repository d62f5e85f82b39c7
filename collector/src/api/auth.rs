//! Bearer tokens: the ingest token senders may be asked for, and the admin token in front of the
//! read API and erasure.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::config::Secret;

/// True when the request carries `Authorization: Bearer <secret>`.
pub(super) fn bearer_matches(headers: &HeaderMap, secret: &Secret) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| secret.matches(token.trim()))
}

pub(super) async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match state.admin_token() {
        Some(secret) if !bearer_matches(request.headers(), secret) => {
            ApiError::Unauthorized.into_response()
        }
        _ => next.run(request).await,
    }
}
