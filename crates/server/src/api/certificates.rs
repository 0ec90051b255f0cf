//! Managed certificates: inventory, versions and target mappings.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    CertificateDeployments, CertificateQuery, CertificateVersion, CreateCertificate, CursorPage, ErrorBody,
    ManagedCertificate, Page, PageParams, UpdateCertificate,
};
use certctl_store::{CertificateListQuery, Listing};

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_certificates, create_certificate))
        .routes(routes!(get_certificate, update_certificate, archive_certificate))
        .routes(routes!(list_versions))
        .routes(routes!(list_deployments))
        .routes(routes!(map_target, unmap_target))
}

/// JSON field names of a managed certificate, for `fields=`.
const CERT_FIELDS: &[&str] = &[
    "id",
    "name",
    "common_name",
    "sans",
    "environment",
    "owner_id",
    "team_id",
    "issuer_id",
    "target_ids",
    "renewal_policy_id",
    "certificate_profile_id",
    "status",
    "expires_at",
    "tags",
    "last_renewal_at",
    "last_deployment_at",
    "revoked_at",
    "revocation_reason",
    "source",
    "created_at",
    "updated_at",
];

/// Parses `fields=a,b`: every name must be a certificate field.
fn sparse_fields(fields: Option<&str>) -> ApiResult<Option<Vec<String>>> {
    let Some(fields) = fields.filter(|f| !f.trim().is_empty()) else {
        return Ok(None);
    };
    let names: Vec<String> = fields.split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect();
    if let Some(bad) = names.iter().find(|n| !CERT_FIELDS.contains(&n.as_str())) {
        return Err(ApiError::BadRequest(format!("fields: '{bad}' is not a certificate field")));
    }
    Ok(Some(names))
}

fn project(cert: &ManagedCertificate, fields: &[String]) -> Value {
    let mut full = match serde_json::to_value(cert) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Value::Object(fields.iter().filter_map(|f| full.remove(f).map(|v| (f.clone(), v))).collect())
}

/// List certificates with filters, sorting, sparse fields and page or keyset paging.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "Certificates", params(PageParams, CertificateQuery), responses(
    (status = 200, body = Page<ManagedCertificate>, description = "Page envelope; with cursor/page_size the keyset envelope CursorPage"),
    (status = 400, body = ErrorBody)))]
async fn list_certificates(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(q): Query<CertificateQuery>,
) -> ApiResult<Response> {
    let fields = sparse_fields(q.fields.as_deref())?;
    let query = CertificateListQuery::parse(&q)?;
    let result = s.store.list_certificates(&query, &paging(&p)?).await?;
    let Some(fields) = fields else {
        return Ok(listing(result));
    };
    Ok(match result {
        Listing::Page { data, total, page, per_page } => {
            let data = data.iter().map(|c| project(c, &fields)).collect();
            Reply(Page { data, total, page, per_page }).into_response()
        }
        Listing::Cursor { data, next_cursor, page_size } => {
            let data = data.iter().map(|c| project(c, &fields)).collect();
            Reply(CursorPage { data, next_cursor, page_size }).into_response()
        }
    })
}

/// Create a managed certificate (status `Pending` until its first issuance).
#[utoipa::path(post, path = "/api/v1/certificates", tag = "Certificates", request_body = CreateCertificate, responses(
    (status = 201, body = ManagedCertificate), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_certificate(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateCertificate>,
) -> ApiResult<(StatusCode, Reply<ManagedCertificate>)> {
    let cert = s.store.create_certificate(&req, "API", &p.actor(), s.clock.now()).await?;
    Ok((StatusCode::CREATED, Reply(cert)))
}

/// Get a managed certificate.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "Certificates", responses(
    (status = 200, body = ManagedCertificate), (status = 404, body = ErrorBody)))]
async fn get_certificate(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<ManagedCertificate>> {
    Ok(Reply(s.store.certificate(&id).await?))
}

/// Update a managed certificate; absent fields keep their value, `target_ids` replaces the
/// mapping set.
#[utoipa::path(put, path = "/api/v1/certificates/{id}", tag = "Certificates", request_body = UpdateCertificate, responses(
    (status = 200, body = ManagedCertificate), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_certificate(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateCertificate>,
) -> ApiResult<Reply<ManagedCertificate>> {
    Ok(Reply(s.store.update_certificate(&id, &req, &p.actor(), s.clock.now()).await?))
}

/// Archive a managed certificate (soft delete; history is kept).
#[utoipa::path(delete, path = "/api/v1/certificates/{id}", tag = "Certificates", responses(
    (status = 204), (status = 404, body = ErrorBody)))]
async fn archive_certificate(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.archive_certificate(&id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issued versions of a certificate, newest first.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/versions", tag = "Certificates", params(PageParams), responses(
    (status = 200, body = Page<CertificateVersion>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(listing(s.store.list_versions(&id, &paging(&p)?).await?))
}

/// The deployment targets the certificate is mapped to.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/deployments", tag = "Certificates", responses(
    (status = 200, body = CertificateDeployments), (status = 404, body = ErrorBody)))]
async fn list_deployments(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<CertificateDeployments>> {
    let mut data = Vec::new();
    // A certificate maps to a handful of targets, so one lookup each stays cheap.
    for target_id in s.store.certificate_target_ids(&id).await? {
        data.push(s.store.target(&target_id).await?);
    }
    Ok(Reply(CertificateDeployments { total: data.len() as i64, data }))
}

/// Map the certificate to a deployment target (idempotent).
#[utoipa::path(put, path = "/api/v1/certificates/{id}/targets/{target_id}", tag = "Certificates", responses(
    (status = 204), (status = 404, body = ErrorBody)))]
async fn map_target(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path((id, target_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.store.map_target(&id, &target_id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the mapping between the certificate and a deployment target.
#[utoipa::path(delete, path = "/api/v1/certificates/{id}/targets/{target_id}", tag = "Certificates", responses(
    (status = 204), (status = 404, body = ErrorBody)))]
async fn unmap_target(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path((id, target_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.store.unmap_target(&id, &target_id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
