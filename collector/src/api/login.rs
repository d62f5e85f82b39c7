//! The dashboard's login form on the admin listener: the admin token typed into a form opens a
//! session, held by the browser in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind
//! TLS) that carries a random id, never the token; logging out closes it.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::WithRejection;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::auth::{SESSION_COOKIE, admitted};
use super::dashboard::login_page;
use super::error::ApiError;
use super::state::AppState;

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    /// The admin token.
    token: String,
}

/// Whether the browser reached the collector over TLS (a proxy in front says so in
/// `X-Forwarded-Proto`), so that the cookie is sent over TLS only.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

fn session_cookie(id: String, max_age: Duration, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
}

/// `GET /dashboard/login`: the form, unless the browser needs none.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if admitted(&state, &Method::GET, &headers) {
        Redirect::to("/dashboard").into_response()
    } else {
        login_page(StatusCode::OK, false)
    }
}

/// `POST /dashboard/login`: opens a session for the right token; the form again (401) for a
/// wrong one.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    WithRejection(Form(form), _): WithRejection<Form<LoginForm>, ApiError>,
) -> Response {
    let Some(secret) = state.admin_token() else {
        return Redirect::to("/dashboard").into_response();
    };
    if !secret.matches(form.token.trim()) {
        tracing::info!("a dashboard login with a wrong token");
        return login_page(StatusCode::UNAUTHORIZED, true);
    }
    let sessions = state.sessions();
    let cookie = session_cookie(sessions.open(), sessions.ttl(), over_tls(&headers));
    (jar.add(cookie), Redirect::to("/dashboard")).into_response()
}

/// `POST /dashboard/logout`: closes the session and forgets the cookie.
pub async fn logout(State(state): State<AppState>, jar: CookieJar) -> Response {
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        state.sessions().close(cookie.value());
    }
    let removal = Cookie::build((SESSION_COOKIE, "")).path("/").build();
    (jar.remove(removal), Redirect::to("/dashboard/login")).into_response()
}
