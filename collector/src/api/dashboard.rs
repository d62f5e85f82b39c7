//! The dashboard's pages: on the admin listener behind the admin token (or a login session),
//! drawn for each request; on the public listener with `--public-stats`, drawn once per rollup
//! and served from the cache. Every page carries a strict Content-Security-Policy.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::WithRejection;
use serde::Deserialize;

use super::auth::open_session;
use super::error::ApiError;
use super::query::ApiQuery;
use super::state::AppState;
use crate::dashboard::layout::{login, not_ready};
use crate::dashboard::pages::{dimension, overview};
use crate::dashboard::{Audience, DEFAULT_WINDOW, ICON, PageKey, STYLE, WINDOWS};
use crate::published::Published;

/// What every page allows itself: its own stylesheet, forms to itself, nothing else (no
/// script, no inline style, no frames).
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /dashboard`.
#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    /// Weeks shown: 12, 26 (default) or 52.
    weeks: Option<usize>,
}

/// `GET /dashboard/dimension`.
#[derive(Debug, Deserialize)]
pub struct DimensionQuery {
    /// A dimension of `GET /api/v1/stats/dimensions`.
    name: String,
    /// Weeks shown: 12, 26 (default) or 52.
    weeks: Option<usize>,
}

fn window(weeks: Option<usize>) -> Result<usize, ApiError> {
    let weeks = weeks.unwrap_or(DEFAULT_WINDOW);
    if WINDOWS.contains(&weeks) {
        Ok(weeks)
    } else {
        Err(ApiError::bad_request(format!(
            "weeks must be one of {WINDOWS:?}, not {weeks}"
        )))
    }
}

/// An HTML answer with the page's security headers; `public` pages may be cached by others.
pub(super) fn html_page(
    status: StatusCode,
    body: impl Into<axum::body::Body>,
    public: bool,
) -> Response {
    let cache = if public {
        "public, max-age=60"
    } else {
        "no-store"
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body.into(),
    )
        .into_response()
}

/// Shown (503) until the first rollup after startup has finished; never kept by a cache.
fn not_ready_page() -> Response {
    let mut page = html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        not_ready().into_string(),
        false,
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    page
}

fn draw(published: &Published, key: &PageKey, audience: Audience) -> Option<String> {
    let page = match key {
        PageKey::Overview(weeks) => overview(published, *weeks, audience),
        PageKey::Dimension(name, weeks) => dimension(published, name, *weeks, audience)?,
    };
    Some(page.into_string())
}

fn no_dimension(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no dimension {name:?}; GET /api/v1/stats/dimensions lists them"
    ))
}

/// Draws `key` for the admin listener (`logout` offered to a browser with a session).
fn admin_page(state: &AppState, headers: &HeaderMap, key: PageKey) -> Result<Response, ApiError> {
    let published = state.weekly().published();
    if !published.ready {
        return Ok(not_ready_page());
    }
    let audience = Audience::Admin {
        logout: open_session(state, headers).is_some(),
    };
    let body = draw(&published, &key, audience).ok_or_else(|| match &key {
        PageKey::Dimension(name, _) => no_dimension(name),
        PageKey::Overview(_) => ApiError::NotFound("no such page".into()),
    })?;
    Ok(html_page(StatusCode::OK, body, false))
}

/// Serves `key` on the public listener from the cache of the current snapshot.
fn public_page(state: &AppState, key: PageKey) -> Result<Response, ApiError> {
    let published = state.weekly().published();
    if !published.ready {
        return Ok(not_ready_page());
    }
    let name = match &key {
        PageKey::Dimension(name, _) => Some(name.clone()),
        PageKey::Overview(_) => None,
    };
    let body = state
        .pages()
        .get_or_render(published.generation, key.clone(), || {
            draw(&published, &key, Audience::Public)
        })
        .ok_or_else(|| no_dimension(name.as_deref().unwrap_or_default()))?;
    Ok(html_page(StatusCode::OK, body, true))
}

/// The overview, admin listener.
pub async fn admin_overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    WithRejection(Query(query), _): ApiQuery<OverviewQuery>,
) -> Result<Response, ApiError> {
    admin_page(&state, &headers, PageKey::Overview(window(query.weeks)?))
}

/// A dimension's page, admin listener.
pub async fn admin_dimension(
    State(state): State<AppState>,
    headers: HeaderMap,
    WithRejection(Query(query), _): ApiQuery<DimensionQuery>,
) -> Result<Response, ApiError> {
    let key = PageKey::Dimension(query.name, window(query.weeks)?);
    admin_page(&state, &headers, key)
}

/// The overview, public listener.
pub async fn public_overview(
    State(state): State<AppState>,
    WithRejection(Query(query), _): ApiQuery<OverviewQuery>,
) -> Result<Response, ApiError> {
    public_page(&state, PageKey::Overview(window(query.weeks)?))
}

/// A dimension's page, public listener.
pub async fn public_dimension(
    State(state): State<AppState>,
    WithRejection(Query(query), _): ApiQuery<DimensionQuery>,
) -> Result<Response, ApiError> {
    public_page(&state, PageKey::Dimension(query.name, window(query.weeks)?))
}

/// A file the pages use, served with its type and kept by browsers for `max_age` seconds.
fn asset(content_type: &'static str, max_age: u32, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        body,
    )
        .into_response()
}

/// `GET /dashboard/style.css`.
pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", 3_600, STYLE)
}

/// `GET /dashboard/icon.svg`.
pub async fn icon() -> Response {
    asset("image/svg+xml", 86_400, ICON)
}

/// The login form, for a browser with neither token nor session.
pub(super) fn login_page(status: StatusCode, failed: bool) -> Response {
    html_page(status, login(failed).into_string(), false)
}
