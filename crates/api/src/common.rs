//! Envelopes, errors and meta responses shared by every resource.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Default `per_page` for page-numbered lists.
pub const DEFAULT_PER_PAGE: u32 = 50;
/// Largest accepted `per_page` / `page_size`.
pub const MAX_PER_PAGE: u32 = 500;

/// The error body of every failed REST call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ErrorBody {
    /// Short machine-readable code, e.g. `not_found`, `conflict`, `bad_request`.
    pub error: String,
    /// Human sentence saying what went wrong, naming the field when one is at fault.
    pub message: String,
    /// The request's `X-Request-ID`.
    #[serde(default)]
    pub request_id: String,
}

/// Page-numbered list envelope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Rows matching the filters, across all pages.
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

/// Keyset-paged list envelope, returned when `cursor` or `page_size` is given.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CursorPage<T> {
    pub data: Vec<T>,
    /// Opaque cursor for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub page_size: u32,
}

/// Paging parameters accepted by every list endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page number, from 1 (page-numbered mode).
    pub page: Option<u32>,
    /// Rows per page, 1–500, default 50 (page-numbered mode).
    pub per_page: Option<u32>,
    /// Opaque keyset cursor from a previous `next_cursor` (keyset mode).
    pub cursor: Option<String>,
    /// Rows per keyset page, 1–500, default 50 (keyset mode).
    pub page_size: Option<u32>,
}

/// `{"status": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub status: String,
}

/// Readiness probe result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadyResponse {
    pub status: String,
    pub db: String,
}

/// Build information of the running server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    pub version: String,
    /// Git commit the binary was built from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub rust_version: String,
}

/// What the login screen needs to know about authentication.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthInfo {
    pub auth_type: String,
    pub required: bool,
}

/// Result of `GET /api/v1/auth/check`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthCheck {
    pub status: String,
    /// Name of the API key used.
    pub user: String,
    pub role: crate::Role,
    pub admin: bool,
}
