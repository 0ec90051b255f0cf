//! Lifecycle operations on certificates: renew, revoke (single and bulk), export, and the CSR
//! an agent submits for an issuance waiting on it.

use axum::Json as Reply;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    BulkItemError, BulkRenewResult, BulkRevokeRequest, BulkRevokeResult, BulkSelection, CertificateStatus, CsrIssued,
    CsrSubmission, EnqueuedJob, ErrorBody, PemExport, Pkcs12Request, RenewRequest, RenewalAccepted, RevocationResult,
    RevokeRequest, Role,
};
use certctl_pki::revocation::RevocationReason;
use certctl_store::CertificateFilter;

use crate::AppState;
use crate::auth::{Admin, Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, parse_json};
use crate::local_ca::pki_error;
use crate::{issuance, revocation};

/// Most certificates one bulk operation touches.
const BULK_LIMIT: i64 = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(renew))
        .routes(routes!(bulk_renew))
        .routes(routes!(revoke))
        .routes(routes!(bulk_revoke))
        .routes(routes!(export_pem))
        .routes(routes!(export_pkcs12))
        .routes(routes!(submit_csr))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
struct ForceParam {
    /// Replace an issuance already in progress.
    #[serde(default)]
    force: Option<bool>,
}

/// Request a renewal (or the first issuance); answered with the job that carries it.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/renew", tag = "Certificates",
    params(("id" = String, Path, description = "Certificate ID"), ForceParam),
    request_body(content = Option<RenewRequest>),
    responses((status = 202, body = RenewalAccepted), (status = 404, body = ErrorBody),
    (status = 409, description = "Archived, revoked, or an issuance is already in progress", body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn renew(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ForceParam>,
    body: Bytes,
) -> ApiResult<(StatusCode, Reply<RenewalAccepted>)> {
    let req: RenewRequest =
        if body.iter().all(u8::is_ascii_whitespace) { RenewRequest::default() } else { parse_json(&body)? };
    let force = req.force || q.force.unwrap_or(false);
    let job = issuance::request_renewal(&s, &id, force, &p.actor()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Reply(RenewalAccepted { status: "renewal_triggered".into(), job_id: job.id.clone(), job }),
    ))
}

fn selection_filter(sel: &BulkSelection) -> ApiResult<Option<CertificateFilter>> {
    let filter = CertificateFilter {
        owner_id: sel.owner_id.clone().filter(|v| !v.is_empty()),
        team_id: sel.team_id.clone().filter(|v| !v.is_empty()),
        issuer_id: sel.issuer_id.clone().filter(|v| !v.is_empty()),
        profile_id: sel.profile_id.clone().filter(|v| !v.is_empty()),
        agent_id: sel.agent_id.clone().filter(|v| !v.is_empty()),
        ..Default::default()
    };
    let has_filter = filter != CertificateFilter::default();
    let has_ids = sel.certificate_ids.as_ref().is_some_and(|ids| !ids.is_empty());
    if !has_filter && !has_ids {
        return Err(ApiError::BadRequest(
            "give at least one of certificate_ids, profile_id, owner_id, agent_id, issuer_id, team_id".into(),
        ));
    }
    Ok(has_filter.then_some(filter))
}

/// The certificates a bulk selection names: filters AND-ed, intersected with the IDs when both
/// are given; unknown IDs are reported, not dropped.
async fn select(s: &AppState, sel: &BulkSelection) -> ApiResult<(Vec<String>, Vec<BulkItemError>)> {
    let filter = selection_filter(sel)?;
    let mut missing = Vec::new();
    let ids = match (filter, &sel.certificate_ids) {
        (Some(f), ids) => {
            let matched = s.store.certificate_ids(&f, BULK_LIMIT).await?;
            match ids.as_ref().filter(|i| !i.is_empty()) {
                Some(ids) => matched.into_iter().filter(|m| ids.contains(m)).collect(),
                None => matched,
            }
        }
        (None, Some(ids)) => {
            if ids.len() as i64 > BULK_LIMIT {
                return Err(ApiError::BadRequest(format!("certificate_ids: at most {BULK_LIMIT} per request")));
            }
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                match s.store.certificate(id).await {
                    Ok(_) => found.push(id.clone()),
                    Err(certctl_store::StoreError::NotFound { .. }) => missing
                        .push(BulkItemError { certificate_id: id.clone(), error: "certificate not found".into() }),
                    Err(e) => return Err(e.into()),
                }
            }
            found
        }
        (None, None) => Vec::new(),
    };
    Ok((ids, missing))
}

/// Request renewals for every selected certificate; per-item results.
#[utoipa::path(post, path = "/api/v1/certificates/bulk-renew", tag = "Certificates", request_body = BulkSelection,
    responses((status = 200, body = BulkRenewResult), (status = 400, body = ErrorBody)))]
async fn bulk_renew(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(sel): Json<BulkSelection>,
) -> ApiResult<Reply<BulkRenewResult>> {
    let (ids, missing) = select(&s, &sel).await?;
    let mut out = BulkRenewResult {
        total_matched: ids.len(),
        total_failed: missing.len(),
        errors: missing,
        ..Default::default()
    };
    let actor = p.actor();
    for id in ids {
        let cert = s.store.certificate(&id).await?;
        if matches!(
            cert.status,
            CertificateStatus::Archived | CertificateStatus::Revoked | CertificateStatus::RenewalInProgress
        ) {
            out.total_skipped += 1;
            continue;
        }
        match issuance::request_renewal(&s, &id, false, &actor).await {
            Ok(job) => {
                out.total_enqueued += 1;
                out.enqueued_jobs.push(EnqueuedJob { certificate_id: id, job_id: job.id });
            }
            Err(e) => {
                out.total_failed += 1;
                out.errors.push(BulkItemError { certificate_id: id, error: e.to_string() });
            }
        }
    }
    Ok(Reply(out))
}

/// Revoke the current certificate with an RFC 5280 reason; visible in CRL and OCSP at once.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/revoke", tag = "Certificates",
    params(("id" = String, Path, description = "Certificate ID")),
    request_body(content = Option<RevokeRequest>),
    responses((status = 200, body = RevocationResult), (status = 400, description = "Unknown reason", body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "Already revoked or archived", body = ErrorBody)))]
async fn revoke(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Reply<RevocationResult>> {
    let req: RevokeRequest =
        if body.iter().all(u8::is_ascii_whitespace) { RevokeRequest::default() } else { parse_json(&body)? };
    Ok(Reply(revocation::revoke(&s, &id, req.reason.as_deref(), &p.actor()).await?))
}

/// Revoke every selected certificate (admin keys only); per-item results.
#[utoipa::path(post, path = "/api/v1/certificates/bulk-revoke", tag = "Certificates", request_body = BulkRevokeRequest,
    responses((status = 200, body = BulkRevokeResult), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn bulk_revoke(
    Admin(p): Admin,
    State(s): State<AppState>,
    Json(req): Json<BulkRevokeRequest>,
) -> ApiResult<Reply<BulkRevokeResult>> {
    RevocationReason::parse(&req.reason).map_err(|e| ApiError::BadRequest(format!("reason: {e}")))?;
    let sel = BulkSelection {
        certificate_ids: req.certificate_ids,
        profile_id: req.profile_id,
        owner_id: req.owner_id,
        agent_id: req.agent_id,
        issuer_id: req.issuer_id,
        team_id: req.team_id,
    };
    let (ids, missing) = select(&s, &sel).await?;
    let mut out = BulkRevokeResult {
        total_matched: ids.len(),
        total_failed: missing.len(),
        errors: missing,
        ..Default::default()
    };
    let actor = p.actor();
    let mut changed = Vec::new();
    for id in ids {
        let cert = s.store.certificate(&id).await?;
        if matches!(cert.status, CertificateStatus::Archived | CertificateStatus::Revoked) {
            out.total_skipped += 1;
            continue;
        }
        match revocation::revoke_only(&s, &id, Some(&req.reason), &actor).await {
            Ok((_, ca_id)) => {
                out.total_revoked += 1;
                changed.extend(ca_id);
            }
            Err(e) => {
                out.total_failed += 1;
                out.errors.push(BulkItemError { certificate_id: id, error: e.to_string() });
            }
        }
    }
    revocation::publish(&s, &changed).await;
    Ok(Reply(out))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
struct DownloadParam {
    /// Answer with the full chain as a PEM file attachment.
    #[serde(default)]
    download: Option<bool>,
}

/// Export the current certificate and its chain as PEM.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/export/pem", tag = "Certificates",
    params(("id" = String, Path, description = "Certificate ID"), DownloadParam),
    responses((status = 200, body = PemExport), (status = 404, body = ErrorBody)))]
async fn export_pem(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DownloadParam>,
) -> ApiResult<Response> {
    let version = current_version(&s, &id).await?;
    let (cert_pem, chain_pem) = certctl_pki::export::split_pem_chain(&version.version.pem_chain)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let full_pem = format!("{cert_pem}{chain_pem}");
    if q.download.unwrap_or(false) {
        return Ok(attachment(full_pem.into_response(), "application/x-pem-file", &id, "pem"));
    }
    Ok(Reply(PemExport { cert_pem, chain_pem, full_pem }).into_response())
}

async fn current_version(s: &AppState, id: &str) -> ApiResult<certctl_store::VersionSecrets> {
    s.store
        .current_version(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("certificate '{id}' has no issued version yet")))
}

/// Marks a response as a file download named after the certificate.
fn attachment(mut response: Response, content_type: &'static str, id: &str, extension: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let name: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// Export the current certificate as PKCS#12: certificates only, or with the private key when it
/// was generated by the server and the caller holds an admin key.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/export/pkcs12", tag = "Certificates",
    params(("id" = String, Path, description = "Certificate ID")), request_body = Pkcs12Request,
    responses((status = 200, content_type = "application/x-pkcs12", body = Vec<u8>), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn export_pkcs12(
    Viewer(p): Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<Pkcs12Request>,
) -> ApiResult<Response> {
    let version = current_version(&s, &id).await?;
    let chain = certctl_pki::export::pem_certs_to_der(&version.version.pem_chain).map_err(pki_error)?;
    let key = if req.include_key {
        if p.role != Role::Admin {
            return Err(ApiError::Forbidden("include_key: exporting a private key needs an admin key".into()));
        }
        let sealed = version.sealed_private_key.as_ref().ok_or_else(|| {
            ApiError::Conflict(format!(
                "certificate '{id}' has no server-held private key; its key was generated on the host"
            ))
        })?;
        Some(
            s.secrets
                .open(&issuance::version_key_context(&version.version.id), sealed)
                .map_err(|e| ApiError::Internal(format!("the private key cannot be decrypted: {e}")))?,
        )
    } else {
        None
    };
    let der = certctl_pki::export::pkcs12(&chain, key.as_deref(), &req.password, &id).map_err(pki_error)?;
    Ok(attachment(der.into_response(), "application/x-pkcs12", &id, "p12"))
}

/// Submit a CSR for a certificate: completes the issuance waiting for it, or issues directly;
/// answered with the issued certificate.
#[utoipa::path(post, path = "/api/v1/agents/{id}/csr", tag = "Agents",
    params(("id" = String, Path, description = "Agent ID")), request_body = CsrSubmission,
    responses((status = 201, body = CsrIssued), (status = 400, description = "Malformed CSR", body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "The certificate is archived or revoked", body = ErrorBody),
    (status = 422, description = "Key or names refused by the profile or certificate", body = ErrorBody)))]
async fn submit_csr(
    p: crate::auth::AnyKey,
    State(s): State<AppState>,
    Path(agent_id): Path<String>,
    Json(req): Json<CsrSubmission>,
) -> ApiResult<(StatusCode, Reply<CsrIssued>)> {
    if p.0.role == Role::Viewer {
        return Err(ApiError::Forbidden("submitting a CSR needs an agent, operator or admin key".into()));
    }
    if let Some(own) = p.0.agent_id.as_deref()
        && own != agent_id
    {
        return Err(ApiError::Forbidden(format!(
            "this credential belongs to agent '{own}' and cannot submit a CSR for agent '{agent_id}'"
        )));
    }
    let issued = issuance::submit_csr(&s, &agent_id, &req.certificate_id, &req.csr_pem, &p.0.actor()).await?;
    Ok((StatusCode::CREATED, Reply(issued)))
}
