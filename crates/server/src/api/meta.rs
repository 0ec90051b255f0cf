//! Health, readiness, version, authentication info and the OpenAPI document.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{AuthCheck, AuthInfo, ErrorBody, ReadyResponse, Role, StatusResponse, VersionInfo};

use crate::AppState;
use crate::auth::AnyKey;

pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(version))
        .routes(routes!(auth_info))
        .routes(routes!(openapi_json))
}

pub fn protected_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(auth_check))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "Health", security(()), responses((status = 200, body = StatusResponse)))]
async fn health() -> Json<StatusResponse> {
    Json(StatusResponse { status: "healthy".into() })
}

/// Readiness: the database answers within 2 seconds.
#[utoipa::path(get, path = "/ready", tag = "Health", security(()), responses(
    (status = 200, body = ReadyResponse),
    (status = 503, body = ErrorBody, description = "The database does not answer")
))]
async fn ready(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Json(ReadyResponse { status: "ready".into(), db: "reachable".into() }).into_response(),
        outcome => {
            let cause = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out after 2s".to_owned(),
            };
            tracing::warn!(cause, "readiness check failed");
            let body = ErrorBody {
                error: "db_unavailable".into(),
                message: "the database does not answer".into(),
                request_id: crate::error::current_request_id(),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// The running build.
#[utoipa::path(get, path = "/api/v1/version", tag = "Health", security(()), responses((status = 200, body = VersionInfo)))]
async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        commit: option_env!("CERTCTL_GIT_COMMIT").filter(|c| !c.is_empty()).map(str::to_owned),
        rust_version: env!("CARGO_PKG_RUST_VERSION").into(),
    })
}

/// How to authenticate, for sign-in screens.
#[utoipa::path(get, path = "/api/v1/auth/info", tag = "Health", security(()), responses((status = 200, body = AuthInfo)))]
async fn auth_info() -> Json<AuthInfo> {
    Json(AuthInfo { auth_type: "api-key".into(), required: true })
}

/// Who the presented key belongs to.
#[utoipa::path(get, path = "/api/v1/auth/check", tag = "Health", responses(
    (status = 200, body = AuthCheck),
    (status = 401, body = ErrorBody)
))]
async fn auth_check(AnyKey(p): AnyKey) -> Json<AuthCheck> {
    Json(AuthCheck { status: "authenticated".into(), admin: p.role == Role::Admin, user: p.name, role: p.role })
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "Health", security(()), responses((status = 200, description = "OpenAPI document")))]
async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| super::openapi().to_pretty_json().unwrap_or_default());
    ([(axum::http::header::CONTENT_TYPE, "application/json")], doc.as_str()).into_response()
}
