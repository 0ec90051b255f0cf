//! CA hierarchies of local-CA issuers (admin keys only) and the public PKI endpoints: CRLs,
//! OCSP and CA certificates under `/.well-known/pki`.

use axum::Json as Reply;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{CreateIntermediate, ErrorBody, IntermediateCa, NameConstraints, RetireCa};
use certctl_pki::ca::CaSpec;
use certctl_pki::keys::KeySpec;
use certctl_store::{CaRecord, CaState, new_id};

use crate::AppState;
use crate::auth::{Admin, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::local_ca::constraints_from_wire;
use crate::revocation;

/// Largest OCSP request accepted; real requests are a few hundred bytes.
const OCSP_REQUEST_LIMIT: usize = 16 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_intermediate, list_intermediates))
        .routes(routes!(get_intermediate))
        .routes(routes!(retire_intermediate))
        .routes(routes!(issuer_ca_chain))
}

/// The unauthenticated PKI routes; also served alone on `CERTCTL_PKI_HTTP_LISTEN`.
pub fn pki_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_crl)).routes(routes!(ocsp_post)).routes(routes!(ca_certificate))
}

fn to_wire(r: CaRecord) -> IntermediateCa {
    IntermediateCa {
        name_constraints: serde_json::from_value::<NameConstraints>(r.name_constraints).unwrap_or_default(),
        id: r.id,
        issuer_id: r.issuer_id,
        parent_ca_id: r.parent_ca_id,
        name: r.name,
        state: r.state.as_str().to_owned(),
        source: r.source,
        subject: r.subject,
        serial_number: r.serial_number,
        key_algorithm: r.key_algorithm,
        path_len_constraint: r.path_len,
        not_before: r.not_before,
        not_after: r.not_after,
        cert_pem: r.cert_pem,
        created_at: r.created_at,
    }
}

/// Create a child CA under the issuer's root (created on first use) or under `parent_ca_id`.
/// Path length and name constraints of every ancestor are enforced.
#[utoipa::path(post, path = "/api/v1/issuers/{id}/intermediates", tag = "IntermediateCAs",
    params(("id" = String, Path, description = "Issuer ID")), request_body = CreateIntermediate,
    responses((status = 201, body = IntermediateCa), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, description = "Parent CA not active", body = ErrorBody),
    (status = 422, description = "Refused by the parent's path length or name constraints", body = ErrorBody)))]
async fn create_intermediate(
    Admin(p): Admin,
    State(s): State<AppState>,
    Path(issuer_id): Path<String>,
    Json(req): Json<CreateIntermediate>,
) -> ApiResult<(StatusCode, Reply<IntermediateCa>)> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::BadRequest("name: must be 1 to 255 characters".into()));
    }
    let parent_id = match req.parent_ca_id.as_deref().filter(|v| !v.is_empty()) {
        Some(id) => id.to_owned(),
        None => s.engine.authorities.ensure_root_id(&s, &issuer_id).await?,
    };
    let parent = s.engine.authorities.load(&s, &parent_id).await?;
    if parent.record.issuer_id != issuer_id {
        return Err(ApiError::BadRequest(format!(
            "parent_ca_id: CA '{parent_id}' belongs to issuer '{}', not '{issuer_id}'",
            parent.record.issuer_id
        )));
    }
    let key = match req.algorithm.as_deref() {
        Some(a) => KeySpec::parse(a).map_err(|e| ApiError::BadRequest(format!("algorithm: {e}")))?,
        None => KeySpec::EcdsaP256,
    };
    let ttl_days = req.ttl_days.unwrap_or(1825);
    if !(1..=36500).contains(&ttl_days) {
        return Err(ApiError::BadRequest("ttl_days: must be from 1 to 36500".into()));
    }
    let spec = CaSpec {
        common_name: req.common_name.clone().unwrap_or_else(|| name.to_owned()),
        organization: req.organization.clone(),
        key,
        validity: Duration::days(ttl_days),
        path_len: req.path_len_constraint,
        name_constraints: constraints_from_wire(&req.name_constraints.clone().unwrap_or_default())?,
    };
    let id = new_id("ca");
    let record = s.engine.authorities.create_child(&s, &parent, &id, name, spec, &p.actor()).await?;
    s.engine.authorities.forget_signers();
    Ok((StatusCode::CREATED, Reply(to_wire(record))))
}

/// Every CA of an issuer, oldest first; `parent_ca_id` links them into a tree.
#[utoipa::path(get, path = "/api/v1/issuers/{id}/intermediates", tag = "IntermediateCAs",
    params(("id" = String, Path, description = "Issuer ID")),
    responses((status = 200, body = Vec<IntermediateCa>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_intermediates(_: Admin, State(s): State<AppState>, Path(issuer_id): Path<String>) -> ApiResult<Response> {
    let cas = s.store.issuer_cas(&issuer_id).await?;
    let data: Vec<IntermediateCa> = cas.into_iter().map(to_wire).collect();
    Ok(Reply(serde_json::json!({ "data": data, "total": data.len() })).into_response())
}

/// Get one CA.
#[utoipa::path(get, path = "/api/v1/intermediates/{id}", tag = "IntermediateCAs",
    params(("id" = String, Path, description = "CA ID")),
    responses((status = 200, body = IntermediateCa), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_intermediate(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<IntermediateCa>> {
    Ok(Reply(to_wire(s.store.ca(&id).await?)))
}

/// Retire a CA in two steps: active → retiring (stops issuing, keeps signing its CRL and OCSP),
/// then with `confirm` retiring → retired once no child CA is still live.
#[utoipa::path(post, path = "/api/v1/intermediates/{id}/retire", tag = "IntermediateCAs",
    params(("id" = String, Path, description = "CA ID")), request_body(content = Option<RetireCa>),
    responses((status = 200, body = IntermediateCa), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody)))]
async fn retire_intermediate(
    Admin(p): Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Reply<IntermediateCa>> {
    let req: RetireCa =
        if body.iter().all(u8::is_ascii_whitespace) { RetireCa::default() } else { crate::extract::parse_json(&body)? };
    let to = if req.confirm { CaState::Retired } else { CaState::Retiring };
    let record = s.store.set_ca_state(&id, to, &p.actor(), s.clock.now()).await?;
    s.engine.authorities.forget_signers();
    Ok(Reply(to_wire(record)))
}

/// The issuer's signing CA chain as PEM (signing CA first, root last).
#[utoipa::path(get, path = "/api/v1/issuers/{id}/ca", tag = "Issuers",
    params(("id" = String, Path, description = "Issuer ID")),
    responses((status = 200, content_type = "application/x-pem-file", body = String), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn issuer_ca_chain(_: Viewer, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let ca = s.engine.authorities.signing_ca(&s, &id).await?;
    let mut response = ca.ca.chain_pem().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file"));
    Ok(response)
}

fn der_response(content_type: &'static str, body: Bytes) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The CA's current CRL (DER). `{issuer_id}` may be an issuer ID (its root CA) or a CA ID.
#[utoipa::path(get, path = "/.well-known/pki/crl/{issuer_id}", tag = "PKI", security(()),
    params(("issuer_id" = String, Path, description = "Issuer or CA ID")),
    responses((status = 200, content_type = "application/pkix-crl", body = Vec<u8>), (status = 304),
    (status = 404, body = ErrorBody)))]
async fn get_crl(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let crl = revocation::crl(&s, &id).await?;
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == crl.etag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        der_response("application/pkix-crl", crl.der)
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&crl.etag) {
        h.insert(header::ETAG, v);
    }
    let max_age = (crl.next_update - s.clock.now()).whole_seconds().clamp(0, 300);
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}, no-transform")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    Ok(response)
}

/// OCSP over POST (RFC 6960): the body is a DER OCSPRequest.
#[utoipa::path(post, path = "/.well-known/pki/ocsp/{issuer_id}", tag = "PKI", security(()),
    params(("issuer_id" = String, Path, description = "Issuer or CA ID")),
    request_body(content = Vec<u8>, content_type = "application/ocsp-request"),
    responses((status = 200, content_type = "application/ocsp-response", body = Vec<u8>)))]
async fn ocsp_post(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let der = if body.len() > OCSP_REQUEST_LIMIT {
        Bytes::from(certctl_pki::ocsp::error_response(certctl_pki::ocsp::OcspResponseStatusCode::MalformedRequest))
    } else {
        revocation::answer_ocsp(&s, &id, &body).await
    };
    der_response("application/ocsp-response", der)
}

/// OCSP over GET (RFC 5019): the path ends with the base64 DER OCSPRequest, which may itself
/// contain '/', so this route is a wildcard registered outside the OpenAPI router.
pub async fn ocsp_get(State(s): State<AppState>, uri: axum::http::Uri) -> Response {
    // The request may contain '/', so it is everything after the issuer segment.
    let rest = uri.path().strip_prefix("/.well-known/pki/ocsp/").unwrap_or("");
    let (id, encoded) = rest.split_once('/').unwrap_or((rest, ""));
    let der = match certctl_pki::ocsp::parse_get_path(encoded) {
        Ok(req) if req.len() <= OCSP_REQUEST_LIMIT => revocation::answer_ocsp(&s, id, &req).await,
        _ => {
            Bytes::from(certctl_pki::ocsp::error_response(certctl_pki::ocsp::OcspResponseStatusCode::MalformedRequest))
        }
    };
    let mut response = der_response("application/ocsp-response", der);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300, no-transform"));
    response
}

/// A CA certificate (DER), the target of the AIA caIssuers link in issued certificates.
#[utoipa::path(get, path = "/.well-known/pki/ca/{ca_id}", tag = "PKI", security(()),
    params(("ca_id" = String, Path, description = "CA ID")),
    responses((status = 200, content_type = "application/pkix-cert", body = Vec<u8>), (status = 404, body = ErrorBody)))]
async fn ca_certificate(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let record = s.store.ca(&id).await?;
    let der = certctl_pki::export::pem_certs_to_der(&record.cert_pem)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal(format!("CA '{id}' has no certificate")))?;
    Ok(der_response("application/pkix-cert", Bytes::from(der)))
}
