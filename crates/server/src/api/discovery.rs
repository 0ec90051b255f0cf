//! Discovery: agents report the certificates they find on their hosts; operators triage them
//! into the inventory (claim into an existing or a new managed certificate) or dismiss them.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    ClaimDiscovered, CreateCertificate, DiscoveredCertificate, DiscoveredFilter, DiscoveryAccepted, DiscoveryRejection,
    DiscoveryReport, DiscoverySummary, ErrorBody, Page, PageParams,
};
use certctl_store::{DEFAULT_RENEWAL_POLICY_ID, DISCOVERY_STATUSES, NewDiscovery};

use super::listing;
use crate::AppState;
use crate::auth::{AgentCaller, Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};

/// Certificates one report may carry, and the size of one entry's PEM.
const MAX_ENTRIES: usize = 5_000;
const MAX_PEM: usize = 64 * 1024;
const MAX_PATH: usize = 4_096;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(list_discovered))
        .routes(routes!(get_discovered))
        .routes(routes!(claim))
        .routes(routes!(dismiss))
        .routes(routes!(summary))
}

/// Report a filesystem scan. The server reads every certificate's facts from its PEM itself;
/// entries it cannot read come back in `rejected`, the others are recorded.
#[utoipa::path(post, path = "/api/v1/agents/{id}/discoveries", tag = "Discovery",
    params(("id" = String, Path, description = "Agent ID")), request_body = DiscoveryReport,
    responses((status = 202, body = DiscoveryAccepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 410, description = "The agent is retired", body = ErrorBody)))]
async fn report(
    caller: AgentCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<DiscoveryReport>,
) -> ApiResult<(StatusCode, Reply<DiscoveryAccepted>)> {
    caller.must_be(&id)?;
    if req.certificates.len() > MAX_ENTRIES {
        return Err(ApiError::BadRequest(format!("certificates: at most {MAX_ENTRIES} per report")));
    }
    let mut found = Vec::new();
    let mut rejected = Vec::new();
    for (i, entry) in req.certificates.iter().enumerate() {
        let path = &entry.source_path;
        if !path.starts_with('/') || path.len() > MAX_PATH || path.chars().any(char::is_control) {
            return Err(ApiError::BadRequest(format!(
                "certificates[{i}].source_path: an absolute path of at most {MAX_PATH} bytes"
            )));
        }
        let format = entry.source_format.as_deref().unwrap_or("PEM");
        if !matches!(format, "PEM" | "DER") {
            return Err(ApiError::BadRequest(format!("certificates[{i}].source_format: PEM or DER")));
        }
        if entry.pem_data.len() > MAX_PEM {
            rejected
                .push(DiscoveryRejection { source_path: path.clone(), error: format!("larger than {MAX_PEM} bytes") });
            continue;
        }
        match certctl_pki::inspect::inspect_pem(&entry.pem_data) {
            Ok(certs) if !certs.is_empty() => found.extend(certs.into_iter().map(|f| NewDiscovery {
                source_path: path.clone(),
                source_format: format.to_owned(),
                fingerprint_sha256: f.fingerprint_sha256,
                common_name: f.common_name,
                sans: f.sans,
                serial_number: f.serial_hex,
                subject_dn: f.subject_dn,
                issuer_dn: f.issuer_dn,
                not_before: f.not_before,
                not_after: f.not_after,
                key_algorithm: f.key_algorithm,
                key_size: i64::from(f.key_size),
                is_ca: f.is_ca,
                pem_data: f.pem,
            })),
            Ok(_) => rejected
                .push(DiscoveryRejection { source_path: path.clone(), error: "no certificate in pem_data".into() }),
            Err(e) => rejected.push(DiscoveryRejection { source_path: path.clone(), error: e.to_string() }),
        }
    }
    let scan = json!({
        "directories": req.directories,
        "errors": req.errors.len(),
        "rejected": rejected.len(),
        "scan_duration_ms": req.scan_duration_ms,
    });
    let (new, updated) = s.store.record_discoveries(&id, &found, scan, s.clock.now()).await?;
    let reply = DiscoveryAccepted { received: req.certificates.len(), new, updated, rejected };
    Ok((StatusCode::ACCEPTED, Reply(reply)))
}

/// List discovered certificates, optionally of one agent or in one triage state.
#[utoipa::path(get, path = "/api/v1/discovered-certificates", tag = "Discovery", params(PageParams, DiscoveredFilter),
    responses((status = 200, body = Page<DiscoveredCertificate>), (status = 400, body = ErrorBody)))]
async fn list_discovered(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(f): Query<DiscoveredFilter>,
) -> ApiResult<Response> {
    let status = f.status.filter(|v| !v.is_empty());
    if let Some(st) = &status
        && !DISCOVERY_STATUSES.contains(&st.as_str())
    {
        return Err(ApiError::BadRequest(format!("status: one of {}", DISCOVERY_STATUSES.join(", "))));
    }
    let agent = f.agent_id.filter(|v| !v.is_empty());
    Ok(listing(s.store.list_discovered(agent.as_deref(), status.as_deref(), &paging(&p)?).await?))
}

/// Get a discovered certificate.
#[utoipa::path(get, path = "/api/v1/discovered-certificates/{id}", tag = "Discovery",
    params(("id" = String, Path, description = "Discovered certificate ID")),
    responses((status = 200, body = DiscoveredCertificate), (status = 404, body = ErrorBody)))]
async fn get_discovered(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<DiscoveredCertificate>> {
    Ok(Reply(s.store.discovered(&id).await?))
}

/// Claim a discovered certificate: link it to `managed_certificate_id`, or create a managed
/// certificate with its common name and SANs (`name`, `owner_id`, `team_id`, `issuer_id`).
#[utoipa::path(post, path = "/api/v1/discovered-certificates/{id}/claim", tag = "Discovery",
    params(("id" = String, Path, description = "Discovered certificate ID")), request_body = ClaimDiscovered,
    responses((status = 200, body = DiscoveredCertificate), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "Already claimed", body = ErrorBody)))]
async fn claim(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<ClaimDiscovered>,
) -> ApiResult<Reply<DiscoveredCertificate>> {
    let found = s.store.discovered(&id).await?;
    if found.status == "Managed" {
        return Err(ApiError::Conflict(format!("discovered certificate '{id}' is already claimed")));
    }
    let managed_id = match req.managed_certificate_id.filter(|m| !m.is_empty()) {
        Some(m) => m,
        None => {
            let field = |name: &str, v: Option<String>| {
                v.filter(|x| !x.is_empty()).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{name}: required to create a managed certificate (or give managed_certificate_id)"
                    ))
                })
            };
            let body = json!({
                "name": field("name", req.name)?,
                "common_name": found.common_name,
                "sans": found.sans,
                "owner_id": field("owner_id", req.owner_id)?,
                "team_id": field("team_id", req.team_id)?,
                "issuer_id": field("issuer_id", req.issuer_id)?,
                "renewal_policy_id": req.renewal_policy_id.filter(|x| !x.is_empty()).unwrap_or_else(|| DEFAULT_RENEWAL_POLICY_ID.to_owned()),
                "certificate_profile_id": req.certificate_profile_id.filter(|x| !x.is_empty()),
                "environment": req.environment,
            });
            // The typed request validates names exactly as `POST /certificates` does.
            let create: CreateCertificate = serde_json::from_value(body).map_err(|e| {
                ApiError::BadRequest(format!("the discovered certificate cannot become a managed one: {e}"))
            })?;
            s.store.create_certificate(&create, "Agent", &p.actor(), s.clock.now()).await?.id
        }
    };
    Ok(Reply(s.store.claim_discovered(&id, &managed_id, &p.actor(), s.clock.now()).await?))
}

/// Dismiss a discovered certificate (it stays listed as `Dismissed`).
#[utoipa::path(post, path = "/api/v1/discovered-certificates/{id}/dismiss", tag = "Discovery",
    params(("id" = String, Path, description = "Discovered certificate ID")),
    responses((status = 200, body = DiscoveredCertificate), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, description = "Claimed", body = ErrorBody)))]
async fn dismiss(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<DiscoveredCertificate>> {
    Ok(Reply(s.store.dismiss_discovered(&id, &p.actor(), s.clock.now()).await?))
}

/// Discovered certificates by triage state, with the unmanaged ones expired or expiring.
#[utoipa::path(get, path = "/api/v1/discovery-summary", tag = "Discovery",
    responses((status = 200, body = DiscoverySummary)))]
async fn summary(_: Viewer, State(s): State<AppState>) -> ApiResult<Reply<DiscoverySummary>> {
    Ok(Reply(s.store.discovery_summary(s.clock.now()).await?))
}
