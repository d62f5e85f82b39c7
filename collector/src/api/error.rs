//! Every error answer is JSON: `{"error": "..."}`, with `"problems": [...]` for an invalid report.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::Problem;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words a user can act on.
    pub error: String,
    /// For invalid reports: every problem, each with its field path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// An error answer of the API.
#[derive(Debug)]
pub enum ApiError {
    /// 400: malformed or invalid input.
    BadRequest {
        /// Summary.
        message: String,
        /// Problems with field paths.
        problems: Vec<Problem>,
    },
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 404
    NotFound(String),
    /// 409: a different report with the same id is stored.
    Conflict(String),
    /// 413
    TooLarge(String),
    /// 415
    UnsupportedMedia(String),
    /// 429, with `Retry-After`.
    RateLimited {
        /// What is over its limit: "too many reports from this cluster".
        what: &'static str,
        /// When the sender may send again.
        retry_after: Duration,
    },
    /// 503, with `Retry-After`.
    Unavailable {
        /// Why.
        message: String,
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// 500: a failure the client cannot fix; details are logged, not sent.
    Internal,
}

impl ApiError {
    /// A 400 without field problems.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// The answer for a server-side failure, logging its cause.
    pub fn from_internal(error: crate::error::Error) -> Self {
        match error {
            crate::error::Error::Unavailable(cause) => ApiError::Unavailable {
                message: format!("the store is unavailable: {cause}"),
                retry_after_seconds: 30,
            },
            crate::error::Error::ShuttingDown => ApiError::Unavailable {
                message: "the collector is shutting down".into(),
                retry_after_seconds: 5,
            },
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::Internal
            }
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<axum::extract::rejection::FormRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::FormRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<common::Error> for ApiError {
    fn from(error: common::Error) -> Self {
        let message = match &error {
            common::Error::TooLarge { .. } => return ApiError::TooLarge(error.to_string()),
            common::Error::Gzip(_) => error.to_string(),
            common::Error::Decode(_) => "the body is not a valid report".to_string(),
            common::Error::Invalid(problems) => {
                format!("the report is invalid ({} problems)", problems.0.len())
            }
        };
        ApiError::BadRequest {
            message,
            problems: error.problems().to_vec(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut extra_headers = Vec::new();
        let (error, problems) = match self {
            ApiError::BadRequest { message, problems } => (message, problems),
            ApiError::Unauthorized => {
                extra_headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
                ("a valid bearer token is required".to_string(), vec![])
            }
            ApiError::NotFound(message)
            | ApiError::Conflict(message)
            | ApiError::TooLarge(message)
            | ApiError::UnsupportedMedia(message) => (message, vec![]),
            ApiError::RateLimited { what, retry_after } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                extra_headers.push((header::RETRY_AFTER, HeaderValue::from(seconds.max(1))));
                (format!("{what}; retry in {} s", seconds.max(1)), vec![])
            }
            ApiError::Unavailable {
                message,
                retry_after_seconds,
            } => {
                extra_headers.push((header::RETRY_AFTER, HeaderValue::from(retry_after_seconds)));
                (message, vec![])
            }
            ApiError::Internal => (
                "internal error; see the collector's log".to_string(),
                vec![],
            ),
        };
        let mut response = (status, Json(ErrorBody { error, problems })).into_response();
        response.headers_mut().extend(extra_headers);
        response
    }
}

/// Gives error answers made outside our handlers (404s, 405s, 408s from the timeout layer,
/// 503s from load shedding, extractor rejections) the same JSON shape as ours.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    // JSON errors stay as they are, and so do the dashboard's pages (its login form answers 401
    // with the form again).
    let is_json_or_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value.starts_with(b"application/json") || value.starts_with(b"text/html")
        });
    if !is_error || is_json_or_page {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => "no such route".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_string(),
        StatusCode::REQUEST_TIMEOUT => {
            "the request did not complete within the request timeout".to_string()
        }
        StatusCode::SERVICE_UNAVAILABLE => "the collector is overloaded; retry later".to_string(),
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&ErrorBody {
        error,
        problems: vec![],
    })
    .expect("an error body serializes");
    Response::from_parts(parts, Body::from(body))
}
