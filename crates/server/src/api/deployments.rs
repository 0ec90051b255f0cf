//! Operator-driven deployment of a certificate to its mapped targets, and bulk reassignment of
//! certificates to another owner.

use axum::Json as Reply;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{BulkReassignRequest, BulkReassignResult, DeployRequest, DeploymentTriggered, ErrorBody};

use crate::AppState;
use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, parse_json};

/// Most certificates one reassignment names.
const BULK_LIMIT: usize = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(deploy)).routes(routes!(bulk_reassign))
}

/// Deploy the current version: one Deployment job per mapped live target (or the one named),
/// claimed by the target's agent at its next work poll.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/deploy", tag = "Certificates",
    params(("id" = String, Path, description = "Certificate ID")), request_body(content = Option<DeployRequest>),
    responses((status = 202, body = DeploymentTriggered), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 409, description = "Not issued yet, revoked, archived, or mapped to no target", body = ErrorBody)))]
async fn deploy(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Reply<DeploymentTriggered>)> {
    let req: DeployRequest =
        if body.iter().all(u8::is_ascii_whitespace) { DeployRequest::default() } else { parse_json(&body)? };
    let target = req.target_id.as_deref().filter(|t| !t.is_empty());
    let jobs = s.store.create_deployment_jobs(&id, target, &p.actor(), s.clock.now()).await?;
    Ok((StatusCode::ACCEPTED, Reply(DeploymentTriggered { status: "deployment_triggered".into(), jobs })))
}

/// Reassign certificates to another owner (and team); per-item results.
#[utoipa::path(post, path = "/api/v1/certificates/bulk-reassign", tag = "Certificates", request_body = BulkReassignRequest,
    responses((status = 200, body = BulkReassignResult), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn bulk_reassign(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<BulkReassignRequest>,
) -> ApiResult<Reply<BulkReassignResult>> {
    if req.certificate_ids.is_empty() {
        return Err(ApiError::BadRequest("certificate_ids: name at least one certificate".into()));
    }
    if req.certificate_ids.len() > BULK_LIMIT {
        return Err(ApiError::BadRequest(format!("certificate_ids: at most {BULK_LIMIT}")));
    }
    if req.owner_id.trim().is_empty() {
        return Err(ApiError::BadRequest("owner_id: required".into()));
    }
    let team = req.team_id.as_deref().filter(|t| !t.is_empty());
    let out = s.store.bulk_reassign(&req.certificate_ids, &req.owner_id, team, &p.actor(), s.clock.now()).await?;
    Ok(Reply(out))
}
