//! Bearer tokens: the ingest token senders may be asked for, and the admin token in front of the
//! read API, erasure and the dashboard; and the dashboard's session cookie, which stands for the
//! admin token in a browser.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use super::error::ApiError;
use super::state::AppState;
use crate::secret::Secret;

/// Name of the dashboard's session cookie.
pub(super) const SESSION_COOKIE: &str = "collector_session";

/// True when the request carries `Authorization: Bearer <secret>`.
pub(super) fn bearer_matches(headers: &HeaderMap, secret: &Secret) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| secret.matches(token.trim()))
}

/// The session id of the request's cookie when it is an open session.
pub(super) fn open_session(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let jar = CookieJar::from_headers(headers);
    let id = jar.get(SESSION_COOKIE)?.value();
    state.sessions().is_open(id).then(|| id.to_string())
}

/// How a request may use the admin API: with the token as a bearer header; or, to read (`GET`,
/// `HEAD`: a dashboard's CSV links), with the session of a dashboard login. A session never
/// changes anything, so a page elsewhere cannot use a logged-in browser to erase or import (and
/// the cookie is `SameSite=Strict` besides).
pub(super) fn admitted(state: &AppState, method: &Method, headers: &HeaderMap) -> bool {
    let Some(secret) = state.admin_token() else {
        return true;
    };
    bearer_matches(headers, secret)
        || (matches!(*method, Method::GET | Method::HEAD) && open_session(state, headers).is_some())
}

/// The admin API: without the token (or, to read, a session), 401.
pub(super) async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    guard(&state, request, next, false).await
}

/// The dashboard's pages on the admin listener: like the API, but a browser without a session
/// is sent to the login form.
pub(super) async fn require_dashboard_login(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    guard(&state, request, next, true).await
}

async fn guard(state: &AppState, request: Request, next: Next, to_login: bool) -> Response {
    if admitted(state, request.method(), request.headers()) {
        next.run(request).await
    } else if to_login && *request.method() == Method::GET {
        Redirect::to("/dashboard/login").into_response()
    } else {
        ApiError::Unauthorized.into_response()
    }
}
