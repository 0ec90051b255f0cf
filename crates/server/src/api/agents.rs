//! Agents: listing and inspection. Registration, heartbeats and retirement belong to the agent
//! protocol.

use axum::Json as Reply;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{Agent, AgentFilter, AgentStatus, ErrorBody, Page, PageParams};

use super::listing;
use crate::AppState;
use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_agents)).routes(routes!(list_retired_agents)).routes(routes!(get_agent))
}

/// List agents; retired ones only with `include_retired=true`.
#[utoipa::path(get, path = "/api/v1/agents", tag = "Agents", params(PageParams, AgentFilter), responses(
    (status = 200, body = Page<Agent>), (status = 400, body = ErrorBody)))]
async fn list_agents(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(f): Query<AgentFilter>,
) -> ApiResult<Response> {
    let status = f
        .status
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<AgentStatus>().map_err(|e| ApiError::BadRequest(format!("status: {e}"))))
        .transpose()?;
    let include_retired = f.include_retired.unwrap_or(false);
    Ok(listing(s.store.list_agents(status, include_retired, &paging(&p)?).await?))
}

/// List retired agents.
#[utoipa::path(get, path = "/api/v1/agents/retired", tag = "Agents", params(PageParams), responses(
    (status = 200, body = Page<Agent>), (status = 400, body = ErrorBody)))]
async fn list_retired_agents(_: Viewer, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    Ok(listing(s.store.list_retired_agents(&paging(&p)?).await?))
}

/// Get an agent, retired or not.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "Agents",
    params(("id" = String, Path, description = "Agent ID")),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody)))]
async fn get_agent(_: Viewer, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Agent>> {
    Ok(Reply(s.store.agent(&id).await?))
}
