//! Teams and owners.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    CreateOwner, CreateTeam, ErrorBody, Owner, OwnerFilter, Page, PageParams, Team, UpdateOwner, UpdateTeam,
};

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team, delete_team))
        .routes(routes!(list_owners, create_owner))
        .routes(routes!(get_owner, update_owner, delete_owner))
}

/// List teams.
#[utoipa::path(get, path = "/api/v1/teams", tag = "Teams", params(PageParams), responses(
    (status = 200, body = Page<Team>), (status = 400, body = ErrorBody)))]
async fn list_teams(_: Viewer, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    Ok(listing(s.store.list_teams(&paging(&p)?).await?))
}

/// Create a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "Teams", request_body = CreateTeam, responses(
    (status = 201, body = Team), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_team(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateTeam>,
) -> ApiResult<(StatusCode, Reply<Team>)> {
    Ok((StatusCode::CREATED, Reply(s.store.create_team(&req, &p.actor(), s.clock.now()).await?)))
}

/// Get a team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "Teams", responses(
    (status = 200, body = Team), (status = 404, body = ErrorBody)))]
async fn get_team(_: Viewer, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Team>> {
    Ok(Reply(s.store.team(&id).await?))
}

/// Update a team; absent fields keep their value.
#[utoipa::path(put, path = "/api/v1/teams/{id}", tag = "Teams", request_body = UpdateTeam, responses(
    (status = 200, body = Team), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_team(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateTeam>,
) -> ApiResult<Reply<Team>> {
    Ok(Reply(s.store.update_team(&id, &req, &p.actor(), s.clock.now()).await?))
}

/// Delete a team that no owner or certificate references.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "Teams", responses(
    (status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_team(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_team(&id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List owners, optionally of one team.
#[utoipa::path(get, path = "/api/v1/owners", tag = "Owners", params(PageParams, OwnerFilter), responses(
    (status = 200, body = Page<Owner>), (status = 400, body = ErrorBody)))]
async fn list_owners(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(f): Query<OwnerFilter>,
) -> ApiResult<Response> {
    Ok(listing(s.store.list_owners(f.team_id.as_deref(), &paging(&p)?).await?))
}

/// Create an owner.
#[utoipa::path(post, path = "/api/v1/owners", tag = "Owners", request_body = CreateOwner, responses(
    (status = 201, body = Owner), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_owner(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateOwner>,
) -> ApiResult<(StatusCode, Reply<Owner>)> {
    Ok((StatusCode::CREATED, Reply(s.store.create_owner(&req, &p.actor(), s.clock.now()).await?)))
}

/// Get an owner.
#[utoipa::path(get, path = "/api/v1/owners/{id}", tag = "Owners", responses(
    (status = 200, body = Owner), (status = 404, body = ErrorBody)))]
async fn get_owner(_: Viewer, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Owner>> {
    Ok(Reply(s.store.owner(&id).await?))
}

/// Update an owner; absent fields keep their value.
#[utoipa::path(put, path = "/api/v1/owners/{id}", tag = "Owners", request_body = UpdateOwner, responses(
    (status = 200, body = Owner), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_owner(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateOwner>,
) -> ApiResult<Reply<Owner>> {
    Ok(Reply(s.store.update_owner(&id, &req, &p.actor(), s.clock.now()).await?))
}

/// Delete an owner that no certificate references.
#[utoipa::path(delete, path = "/api/v1/owners/{id}", tag = "Owners", responses(
    (status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_owner(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_owner(&id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
