//! Jobs: listing, inspection, cancellation, and the approval of jobs waiting for a second person.

use axum::Json as Reply;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{ErrorBody, Job, JobFilter, JobStatus, JobType, Page, PageParams, RejectJob};
use certctl_store::JobQuery;

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query, paging, parse_json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
        .routes(routes!(approve_job))
        .routes(routes!(reject_job))
}

/// Parses an optional enum query parameter, naming it when the value is not one of the variants.
fn parse_param<T: std::str::FromStr<Err = certctl_api::InvalidValue>>(
    name: &str,
    value: Option<String>,
) -> ApiResult<Option<T>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<T>().map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

/// List jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "Jobs", params(PageParams, JobFilter), responses(
    (status = 200, body = Page<Job>), (status = 400, body = ErrorBody)))]
async fn list_jobs(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(f): Query<JobFilter>,
) -> ApiResult<Response> {
    let query = JobQuery {
        status: parse_param::<JobStatus>("status", f.status)?,
        job_type: parse_param::<JobType>("type", f.job_type)?,
        certificate_id: f.certificate_id.filter(|v| !v.is_empty()),
        agent_id: f.agent_id.filter(|v| !v.is_empty()),
        target_id: f.target_id.filter(|v| !v.is_empty()),
    };
    Ok(listing(s.store.list_jobs(&query, &paging(&p)?).await?))
}

/// Get a job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "Jobs",
    params(("id" = String, Path, description = "Job ID")),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
async fn get_job(_: Viewer, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Job>> {
    Ok(Reply(s.store.job(&id).await?))
}

/// Cancel a job that is pending, awaiting a CSR or approval, or running.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "Jobs",
    params(("id" = String, Path, description = "Job ID")),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody),
    (status = 409, description = "The job has already finished", body = ErrorBody)))]
async fn cancel_job(Operator(p): Operator, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Job>> {
    Ok(Reply(s.store.cancel_job(&id, &p.actor(), s.clock.now()).await?))
}

/// Approve a job awaiting approval: it becomes Pending and the issuance runner takes it up.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/approve", tag = "Jobs",
    params(("id" = String, Path, description = "Job ID")),
    responses((status = 200, body = Job), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "The job is not awaiting approval", body = ErrorBody)))]
async fn approve_job(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<Job>> {
    let job = s.store.approve_job(&id, &p.actor(), s.clock.now()).await?;
    s.engine.wake.notify_one();
    Ok(Reply(job))
}

/// Reject a job awaiting approval: it ends Cancelled, never retried, with the reason recorded.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/reject", tag = "Jobs",
    params(("id" = String, Path, description = "Job ID")), request_body(content = Option<RejectJob>),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "The job is not awaiting approval", body = ErrorBody)))]
async fn reject_job(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Reply<Job>> {
    let req: RejectJob =
        if body.iter().all(u8::is_ascii_whitespace) { RejectJob::default() } else { parse_json(&body)? };
    let reason = req.reason.unwrap_or_default();
    if reason.chars().count() > 1024 {
        return Err(ApiError::BadRequest("reason: at most 1024 characters".into()));
    }
    Ok(Reply(s.store.reject_job(&id, &reason, &p.actor(), s.clock.now()).await?))
}
