//! API key management (admin keys only).

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{ApiKey, CreateApiKey, CreatedApiKey, ErrorBody, Page, PageParams};
use certctl_store::NewApiKey;

use super::listing;
use crate::AppState;
use crate::auth::{Admin, generate_key, hash_key};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_keys, create_key)).routes(routes!(delete_key))
}

/// List API keys (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/apikeys", tag = "API Keys", params(PageParams), responses(
    (status = 200, body = Page<ApiKey>), (status = 403, body = ErrorBody)))]
async fn list_keys(_: Admin, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    Ok(listing(s.store.list_api_keys(&paging(&p)?).await?))
}

/// Create an API key; the response is the only time the key is shown.
#[utoipa::path(post, path = "/api/v1/apikeys", tag = "API Keys", request_body = CreateApiKey, responses(
    (status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_key(
    Admin(p): Admin,
    State(s): State<AppState>,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, Reply<CreatedApiKey>)> {
    let key = generate_key();
    let new =
        NewApiKey { name: req.name.into_inner(), role: req.role, key_hash: hash_key(&key), created_by: p.name.clone() };
    let stored = s.store.create_api_key(&new, &p.actor(), s.clock.now()).await?;
    let reply =
        CreatedApiKey { id: stored.id, name: stored.name, role: stored.role, key, created_at: stored.created_at };
    Ok((StatusCode::CREATED, Reply(reply)))
}

/// Delete an API key; it stops working at once on this server and within seconds on others.
#[utoipa::path(delete, path = "/api/v1/apikeys/{id}", tag = "API Keys", responses(
    (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "The key is the caller's own or the last admin key")))]
async fn delete_key(Admin(p): Admin, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if id == p.key_id {
        return Err(ApiError::Conflict("an API key cannot delete itself; use another admin key".into()));
    }
    let hash = s.store.delete_api_key(&id, &p.actor(), s.clock.now()).await?;
    s.auth.forget(&hash);
    Ok(StatusCode::NO_CONTENT)
}
