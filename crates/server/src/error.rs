//! The REST error type: every failure of an `/api/v1` handler becomes one of these, rendered as
//! `{"error", "message", "request_id"}` with its status. Internal causes are logged once and
//! never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use certctl_api::ErrorBody;
use certctl_store::StoreError;

tokio::task_local! {
    /// The request ID of the request being served, set by the request-ID middleware.
    pub static REQUEST_ID: String;
}

/// Current request ID, or empty outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// No API key or an unknown one.
    #[error("{0}")]
    Unauthorized(String),
    /// The key's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller is retired for good (an agent): it should stop calling.
    #[error("{0}")]
    Gone(String),
    /// The path exists but not with this method.
    #[error("this endpoint does not accept the request's method")]
    MethodNotAllowed,
    /// Uniqueness or a reference blocks the change.
    #[error("{0}")]
    Conflict(String),
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but semantically unacceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// A feature the request needs is not set up (no email channel for the digest); the
    /// message says what to configure.
    #[error("{0}")]
    NotConfigured(String),
    /// An upstream service the request depends on (an ACME CA) failed or refused; the message
    /// says which and why.
    #[error("{0}")]
    Upstream(String),
    /// The database is unreachable or failing.
    #[error("service unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure; the cause is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity"),
            ApiError::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Forbidden(m) => ApiError::Forbidden(m),
            StoreError::Gone(m) => ApiError::Gone(m),
            StoreError::InvalidReference { .. } | StoreError::Invalid { .. } => ApiError::BadRequest(e.to_string()),
            _ if e.is_unavailable() => ApiError::Unavailable(e.to_string()),
            StoreError::Database(_)
            | StoreError::Engine(_)
            | StoreError::Unavailable(_)
            | StoreError::Corrupt(_)
            | StoreError::Migrate(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let request_id = current_request_id();
        let message = match &self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(request_id, cause, "request failed");
                self.to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody { error: code.to_owned(), message, request_id };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"certctl\""));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
