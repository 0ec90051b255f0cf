//! Jobs: listing, inspection and cancellation.

use axum::Json as Reply;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{ErrorBody, Job, JobFilter, JobStatus, JobType, Page, PageParams};
use certctl_store::JobQuery;

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_jobs)).routes(routes!(get_job)).routes(routes!(cancel_job))
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
