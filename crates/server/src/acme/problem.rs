//! The ACME error type: every failure of an `/acme` handler becomes one of these, rendered as
//! an RFC 7807 `application/problem+json` document with the RFC 8555 §6.7 error type. Internal
//! causes are logged once and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use certctl_store::{AcmeIdentifier, StoreError};

/// The problem a response carries, for the audit of rejected requests.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub kind: &'static str,
    pub detail: String,
}

/// The RFC 8555 error namespace.
const NS: &str = "urn:ietf:params:acme:error:";

/// One failure about one identifier, inside a compound problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Subproblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub identifier: AcmeIdentifier,
}

impl Subproblem {
    pub fn new(kind: &str, detail: impl Into<String>, identifier: AcmeIdentifier) -> Self {
        Subproblem { kind: format!("{NS}{kind}"), detail: detail.into(), identifier }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The request does not parse or breaks a protocol rule.
    #[error("{0}")]
    Malformed(String),
    /// The addressed resource does not exist (or is not the caller's to see).
    #[error("{0}")]
    NotFound(String),
    /// The body exceeds the size limit.
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    /// The request is not `application/jose+json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The nonce is missing, forged, expired or already spent.
    #[error("{0}")]
    BadNonce(String),
    /// The JWS algorithm is not one the server verifies.
    #[error("{0}")]
    BadSignatureAlgorithm(String),
    /// The JWK is unusable (wrong size, unknown curve, weak RSA key).
    #[error("{0}")]
    BadPublicKey(String),
    /// The signature, the URL or the account does not authorize the request.
    #[error("{0}")]
    Unauthorized(String),
    /// `kid` names no account (or `onlyReturnExisting` found none).
    #[error("{0}")]
    AccountDoesNotExist(String),
    /// A contact is not a usable `mailto:` address.
    #[error("{0}")]
    InvalidContact(String),
    /// A contact uses a scheme other than `mailto:`.
    #[error("{0}")]
    UnsupportedContact(String),
    /// Identifiers the server will not issue for, each with its own reason.
    #[error("{detail}")]
    RejectedIdentifier { detail: String, subproblems: Vec<Subproblem> },
    /// Identifier types the server does not support.
    #[error("{detail}")]
    UnsupportedIdentifier { detail: String, subproblems: Vec<Subproblem> },
    /// The CSR does not match the order or the profile.
    #[error("{0}")]
    BadCsr(String),
    /// The order is not in a state that allows the request.
    #[error("{0}")]
    OrderNotReady(String),
    #[error("{0}")]
    AlreadyRevoked(String),
    #[error("{0}")]
    BadRevocationReason(String),
    /// A key-change names a key another account already has; `location` is that account.
    #[error("{detail}")]
    KeyInUse { detail: String, location: String },
    /// The directory requires an external account binding and the request has none.
    #[error("{0}")]
    ExternalAccountRequired(String),
    /// A rate limit is exhausted; `retry_after` seconds until its window frees.
    #[error("{detail}")]
    RateLimited { detail: String, retry_after: u64 },
    /// The database is unreachable; the client may retry.
    #[error("service unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure; the cause is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// The problem document.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    detail: String,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    subproblems: Option<&'a [Subproblem]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithms: Option<&'static [&'static str]>,
}

impl AcmeError {
    /// The status and the RFC 8555 error type (without its namespace).
    pub fn parts(&self) -> (StatusCode, &'static str) {
        use AcmeError::*;
        match self {
            Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            NotFound(_) => (StatusCode::NOT_FOUND, "malformed"),
            TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "malformed"),
            UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "malformed"),
            BadNonce(_) => (StatusCode::BAD_REQUEST, "badNonce"),
            BadSignatureAlgorithm(_) => (StatusCode::BAD_REQUEST, "badSignatureAlgorithm"),
            BadPublicKey(_) => (StatusCode::BAD_REQUEST, "badPublicKey"),
            Unauthorized(_) => (StatusCode::FORBIDDEN, "unauthorized"),
            AccountDoesNotExist(_) => (StatusCode::BAD_REQUEST, "accountDoesNotExist"),
            InvalidContact(_) => (StatusCode::BAD_REQUEST, "invalidContact"),
            UnsupportedContact(_) => (StatusCode::BAD_REQUEST, "unsupportedContact"),
            RejectedIdentifier { .. } => (StatusCode::BAD_REQUEST, "rejectedIdentifier"),
            UnsupportedIdentifier { .. } => (StatusCode::BAD_REQUEST, "unsupportedIdentifier"),
            BadCsr(_) => (StatusCode::BAD_REQUEST, "badCSR"),
            OrderNotReady(_) => (StatusCode::FORBIDDEN, "orderNotReady"),
            AlreadyRevoked(_) => (StatusCode::BAD_REQUEST, "alreadyRevoked"),
            BadRevocationReason(_) => (StatusCode::BAD_REQUEST, "badRevocationReason"),
            KeyInUse { .. } => (StatusCode::CONFLICT, "malformed"),
            ExternalAccountRequired(_) => (StatusCode::FORBIDDEN, "externalAccountRequired"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rateLimited"),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "serverInternal"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "serverInternal"),
        }
    }

    /// The problem document as stored on an invalid order or challenge.
    pub fn to_json(&self) -> String {
        let (status, kind) = self.parts();
        serde_json::to_string(&self.problem(status, kind)).unwrap_or_default()
    }

    fn problem(&self, status: StatusCode, kind: &str) -> Problem<'_> {
        let subproblems = match self {
            AcmeError::RejectedIdentifier { subproblems, .. }
            | AcmeError::UnsupportedIdentifier { subproblems, .. } => Some(subproblems.as_slice()),
            _ => None,
        };
        let algorithms = matches!(self, AcmeError::BadSignatureAlgorithm(_)).then_some(super::jws::ALGORITHMS);
        Problem {
            kind: format!("{NS}{kind}"),
            detail: self.to_string(),
            status: status.as_u16(),
            subproblems,
            algorithms,
        }
    }
}

impl From<StoreError> for AcmeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => AcmeError::NotFound(e.to_string()),
            StoreError::Conflict(m) => AcmeError::Malformed(m),
            StoreError::Invalid { .. } | StoreError::InvalidReference { .. } => AcmeError::Malformed(e.to_string()),
            StoreError::Forbidden(m) | StoreError::Gone(m) => AcmeError::Unauthorized(m),
            _ if e.is_unavailable() => AcmeError::Unavailable(e.to_string()),
            StoreError::Database(_)
            | StoreError::Engine(_)
            | StoreError::Unavailable(_)
            | StoreError::Corrupt(_)
            | StoreError::Migrate(_) => AcmeError::Internal(e.to_string()),
        }
    }
}

impl From<crate::error::ApiError> for AcmeError {
    fn from(e: crate::error::ApiError) -> Self {
        use crate::error::ApiError as A;
        match e {
            A::NotFound(m) => AcmeError::NotFound(m),
            A::BadRequest(m) | A::Unprocessable(m) | A::Conflict(m) => AcmeError::Malformed(m),
            A::Unavailable(m) => AcmeError::Unavailable(m),
            other => AcmeError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        let (status, kind) = self.parts();
        match &self {
            AcmeError::Internal(cause) | AcmeError::Unavailable(cause) => {
                tracing::error!(request_id = %crate::error::current_request_id(), cause, "ACME request failed");
            }
            other => tracing::info!(problem = kind, detail = %other, "ACME request refused"),
        }
        let body = serde_json::to_vec(&self.problem(status, kind)).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.extensions_mut().insert(Rejection { kind, detail: self.to_string() });
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let AcmeError::KeyInUse { location, .. } = &self
            && let Ok(v) = HeaderValue::from_str(location)
        {
            headers.insert(header::LOCATION, v);
        }
        if let AcmeError::RateLimited { retry_after, .. } = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        response
    }
}

pub type AcmeResult<T> = Result<T, AcmeError>;
