//! The agent protocol: admins create one-time enrolment tokens; an agent trades one for its own
//! credential and from then on acts only as itself: heartbeats, its work, reports on its jobs,
//! the certificates it deploys. Admins retire agents; a retired agent gets 410 on every call.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    ActorType, AgentCertificate, AgentHeartbeat, AgentRetired, AgentRetirementBlocked, AgentToken, AgentWork,
    CreateAgentToken, EnrollAgent, EnrolledAgent, ErrorBody, HeartbeatRecorded, Job, JobStatusReport, JobType, Page,
    PageParams, RetireAgentParams, TargetType, WorkItem,
};
use certctl_store::{Actor, AgentWorkRow, NewAgent, NewAgentToken, Retirement};

use super::listing;
use crate::AppState;
use crate::auth::{AGENT_CREDENTIAL_PREFIX, Admin, AgentCaller, ENROLMENT_TOKEN_PREFIX, generate_secret, hash_key};
use crate::config::parse_duration;
use crate::error::{ApiError, ApiResult, current_request_id};
use crate::extract::{Json, Path, Query, paging};

/// Enrolment tokens live a day unless the admin says otherwise, and never more than 30 days.
const DEFAULT_TOKEN_TTL: time::Duration = time::Duration::hours(24);
const MAX_TOKEN_TTL: time::Duration = time::Duration::days(30);
/// How long a deployment claimed by a work poll stays with the agent without a report before
/// another poll hands it out again.
const DEPLOYMENT_CLAIM: time::Duration = time::Duration::minutes(10);
/// Jobs handed out per poll.
const WORK_LIMIT: i64 = 50;
const MAX_NAME: usize = 128;
const MAX_FACT: usize = 255;

/// Routes that need an API key or agent credential.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agent_tokens, create_agent_token))
        .routes(routes!(delete_agent_token))
        .routes(routes!(heartbeat))
        .routes(routes!(work))
        .routes(routes!(report_job))
        .routes(routes!(agent_certificate))
        .routes(routes!(retire_agent))
}

/// The enrolment route, authenticated by its own one-time token rather than an API key.
pub fn enrolment_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(enroll))
}

fn check_len(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(ApiError::BadRequest(format!("{field}: at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!("{field}: control characters are not allowed")));
    }
    Ok(())
}

/// The host facts an agent sends at enrolment and with every heartbeat.
fn check_facts(version: &str, hostname: &str, os: &str, architecture: &str, ip_address: &str) -> ApiResult<()> {
    let facts = [
        ("version", version),
        ("hostname", hostname),
        ("os", os),
        ("architecture", architecture),
        ("ip_address", ip_address),
    ];
    facts.into_iter().try_for_each(|(field, value)| check_len(field, value, MAX_FACT))
}

/// List enrolment tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/agent-tokens", tag = "Agents", params(PageParams), responses(
    (status = 200, body = Page<AgentToken>), (status = 403, body = ErrorBody)))]
async fn list_agent_tokens(_: Admin, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    Ok(listing(s.store.list_agent_tokens(&paging(&p)?).await?))
}

/// Create a one-time enrolment token; the response is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/agent-tokens", tag = "Agents", request_body = CreateAgentToken, responses(
    (status = 201, body = AgentToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_agent_token(
    Admin(p): Admin,
    State(s): State<AppState>,
    Json(req): Json<CreateAgentToken>,
) -> ApiResult<(StatusCode, Reply<AgentToken>)> {
    let name = req.name.unwrap_or_default();
    check_len("name", &name, MAX_NAME)?;
    if let Some(g) = &req.group {
        check_len("group", g, MAX_NAME)?;
    }
    let ttl = match req.expires_in.as_deref() {
        None | Some("") => DEFAULT_TOKEN_TTL,
        Some(v) => {
            let d = parse_duration(v).map_err(|e| ApiError::BadRequest(format!("expires_in: {e}")))?;
            time::Duration::try_from(d).map_err(|_| ApiError::BadRequest("expires_in: too long".into()))?
        }
    };
    if ttl > MAX_TOKEN_TTL {
        return Err(ApiError::BadRequest("expires_in: at most 30d".into()));
    }
    let token = generate_secret(ENROLMENT_TOKEN_PREFIX);
    let now = s.clock.now();
    let new = NewAgentToken { name, group: req.group, token_hash: hash_key(&token), expires_at: now + ttl };
    let mut stored = s.store.create_agent_token(&new, &p.actor(), now).await?;
    stored.token = Some(token);
    Ok((StatusCode::CREATED, Reply(stored)))
}

/// Delete an enrolment token; agents that enrolled with it keep their credentials.
#[utoipa::path(delete, path = "/api/v1/agent-tokens/{id}", tag = "Agents",
    params(("id" = String, Path, description = "Enrolment token ID")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_agent_token(
    Admin(p): Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_agent_token(&id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enrol an agent with a one-time enrolment token (`Authorization: Bearer cce_…`): the answer
/// holds the agent's own credential, shown this once and stored only as a hash.
#[utoipa::path(post, path = "/api/v1/agents/enroll", tag = "Agents", request_body = EnrollAgent,
    security(("bearerAuth" = [])),
    responses((status = 201, body = EnrolledAgent), (status = 400, body = ErrorBody),
    (status = 401, description = "Unknown, expired or already used token", body = ErrorBody),
    (status = 409, description = "An agent with this name exists", body = ErrorBody)))]
async fn enroll(
    State(s): State<AppState>,
    parts: Parts,
    Json(req): Json<EnrollAgent>,
) -> ApiResult<(StatusCode, Reply<EnrolledAgent>)> {
    let token = crate::auth::bearer(&parts)?;
    let refused = || ApiError::Unauthorized("the enrolment token is invalid, expired or already used".into());
    if !token.starts_with(ENROLMENT_TOKEN_PREFIX) {
        return Err(refused());
    }
    let name = req.name.trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest("name: required".into()));
    }
    check_len("name", name, MAX_NAME)?;
    check_facts(&req.version, &req.hostname, &req.os, &req.architecture, &req.ip_address)?;
    let credential = generate_secret(AGENT_CREDENTIAL_PREFIX);
    let new = NewAgent {
        id: None,
        name: name.to_owned(),
        hostname: req.hostname,
        os: req.os,
        architecture: req.architecture,
        ip_address: req.ip_address,
        version: req.version,
        status: certctl_api::AgentStatus::Online,
        credential_hash: Some(hash_key(&credential)),
    };
    let agent = s.store.enroll_agent(&hash_key(token), &new, s.clock.now()).await?.ok_or_else(refused)?;
    Ok((StatusCode::CREATED, Reply(EnrolledAgent { agent, credential })))
}

/// Record a heartbeat with the host's facts; the agent shows `Online`.
#[utoipa::path(post, path = "/api/v1/agents/{id}/heartbeat", tag = "Agents",
    params(("id" = String, Path, description = "Agent ID")), request_body = AgentHeartbeat,
    responses((status = 200, body = HeartbeatRecorded), (status = 403, body = ErrorBody),
    (status = 410, description = "The agent is retired", body = ErrorBody)))]
async fn heartbeat(
    caller: AgentCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(hb): Json<AgentHeartbeat>,
) -> ApiResult<Reply<HeartbeatRecorded>> {
    caller.must_be(&id)?;
    check_facts(&hb.version, &hb.hostname, &hb.os, &hb.architecture, &hb.ip_address)?;
    s.engine.heartbeats.record(&s, id, hb).await?;
    Ok(Reply(HeartbeatRecorded { status: "heartbeat_recorded".into() }))
}

/// The agent's work: deployments it now holds (each claim lasts 10 minutes unless the agent
/// reports `Running`), and certificates waiting for a CSR from it. Target configurations come
/// with their secrets, for this agent only.
#[utoipa::path(get, path = "/api/v1/agents/{id}/work", tag = "Agents",
    params(("id" = String, Path, description = "Agent ID")),
    responses((status = 200, body = AgentWork), (status = 403, body = ErrorBody),
    (status = 410, description = "The agent is retired", body = ErrorBody)))]
async fn work(caller: AgentCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<AgentWork>> {
    caller.must_be(&id)?;
    let rows = s.store.agent_work(&id, s.clock.now(), DEPLOYMENT_CLAIM, WORK_LIMIT).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        jobs.push(work_item(&s, row).await?);
    }
    Ok(Reply(AgentWork { count: jobs.len(), jobs }))
}

async fn work_item(s: &AppState, row: AgentWorkRow) -> ApiResult<WorkItem> {
    let job = row.job;
    let is_csr = job.job_type != JobType::Deployment;
    let allowed_key_algorithms = match (&row.profile_id, is_csr) {
        (Some(profile_id), true) => s.store.profile(profile_id).await?.allowed_key_algorithms,
        _ => Vec::new(),
    };
    let target_config = match (&job.target_id, row.target_sealed_config) {
        (Some(target_id), Some(sealed)) => {
            let context = super::targets::context(target_id);
            let clear = s
                .secrets
                .open(&context, &sealed)
                .map_err(|e| ApiError::Internal(format!("target '{target_id}' configuration cannot be opened: {e}")))?;
            let config: Map<String, Value> = serde_json::from_slice(&clear)
                .map_err(|e| ApiError::Internal(format!("target '{target_id}' configuration is corrupt: {e}")))?;
            Some(Value::Object(config))
        }
        (Some(_), None) => Some(Value::Object(Map::new())),
        _ => None,
    };
    let target_type = row
        .target_type
        .map(|t| t.parse::<TargetType>())
        .transpose()
        .map_err(|e| ApiError::Internal(format!("job '{}': stored target type is unknown: {}", job.id, e.0)))?;
    Ok(WorkItem {
        id: job.id,
        job_type: job.job_type,
        status: job.status,
        certificate_id: job.certificate_id,
        common_name: is_csr.then_some(row.common_name),
        sans: if is_csr { row.sans } else { Vec::new() },
        allowed_key_algorithms,
        target_id: job.target_id,
        target_type,
        target_config,
        attempts: job.attempts,
    })
}

/// Report on one of the agent's Running jobs: `Running` (still working; renews the claim),
/// `Completed` or `Failed`, with the TLS verification result when the agent checked one.
#[utoipa::path(post, path = "/api/v1/agents/{id}/jobs/{job_id}/status", tag = "Agents",
    params(("id" = String, Path, description = "Agent ID"), ("job_id" = String, Path, description = "Job ID")),
    request_body = JobStatusReport,
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "The job is not Running", body = ErrorBody),
    (status = 410, description = "The agent is retired", body = ErrorBody)))]
async fn report_job(
    caller: AgentCaller,
    State(s): State<AppState>,
    Path((id, job_id)): Path<(String, String)>,
    Json(report): Json<JobStatusReport>,
) -> ApiResult<Reply<Job>> {
    caller.must_be(&id)?;
    if let Some(v) = &report.verification {
        if !matches!(v.status.as_str(), "success" | "failed" | "skipped") {
            return Err(ApiError::BadRequest("verification.status: one of success, failed, skipped".into()));
        }
        if let Some(f) = &v.fingerprint
            && (f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ApiError::BadRequest("verification.fingerprint: 64 hex digits (SHA-256)".into()));
        }
    }
    if report.error.as_ref().is_some_and(|e| e.chars().count() > 4096) {
        return Err(ApiError::BadRequest("error: at most 4096 characters".into()));
    }
    let actor = Actor { name: caller.principal.name.clone(), kind: ActorType::Agent };
    let job = s.store.report_agent_job(&id, &job_id, &report, DEPLOYMENT_CLAIM, &actor, s.clock.now()).await?;
    Ok(Reply(job))
}

/// The current version of a certificate the agent deploys (mapped to one of its targets, or
/// named by one of its jobs).
#[utoipa::path(get, path = "/api/v1/agents/{id}/certificates/{cert_id}", tag = "Agents",
    params(("id" = String, Path, description = "Agent ID"), ("cert_id" = String, Path, description = "Certificate ID")),
    responses((status = 200, body = AgentCertificate), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "Not issued yet", body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn agent_certificate(
    caller: AgentCaller,
    State(s): State<AppState>,
    Path((id, cert_id)): Path<(String, String)>,
) -> ApiResult<Reply<AgentCertificate>> {
    caller.must_be(&id)?;
    let version = s.store.agent_certificate(&id, &cert_id).await?;
    Ok(Reply(AgentCertificate { certificate_pem: version.pem_chain.clone(), version }))
}

/// Retire an agent. With live targets or open jobs it answers 409 with their counts unless
/// `force=true` (with a `reason`), which retires the targets and cancels the jobs with it in one
/// transaction. An agent already retired answers 204. A retired agent's calls get 410.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "Agents",
    params(("id" = String, Path, description = "Agent ID"), RetireAgentParams),
    responses((status = 200, body = AgentRetired), (status = 204, description = "Already retired"),
    (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "Dependencies block it", body = AgentRetirementBlocked)))]
async fn retire_agent(
    Admin(p): Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RetireAgentParams>,
) -> ApiResult<Response> {
    let force = q.force.unwrap_or(false);
    let reason = q.reason.unwrap_or_default();
    let reason = reason.trim();
    if force && reason.is_empty() {
        return Err(ApiError::BadRequest("reason: required with force=true".into()));
    }
    check_len("reason", reason, 1024)?;
    let reason = if reason.is_empty() { "retired by an administrator" } else { reason };
    match s.store.retire_agent(&id, force, reason, &p.actor(), s.clock.now()).await? {
        Retirement::AlreadyRetired => Ok(StatusCode::NO_CONTENT.into_response()),
        Retirement::Blocked(counts) => {
            let body = AgentRetirementBlocked {
                error: "blocked_by_dependencies".into(),
                message: format!(
                    "agent '{id}' has {} live target(s), {} mapped certificate(s) and {} open job(s); \
                     retire with force=true and a reason to retire them with it",
                    counts.targets, counts.certificates, counts.jobs
                ),
                request_id: current_request_id(),
                counts,
            };
            Ok((StatusCode::CONFLICT, Reply(body)).into_response())
        }
        Retirement::Retired { retired_at, cascade, counts } => {
            s.auth.forget_agent(&id);
            Ok(Reply(AgentRetired { retired_at, already_retired: false, cascade, counts }).into_response())
        }
    }
}
