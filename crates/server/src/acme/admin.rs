//! REST administration of the ACME server: binding certctl profiles to ACME.

use axum::Json as Reply;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{AcmeBinding, AcmeRenewNow, CreateRenewalPolicy, ErrorBody, IssuerType, PutAcmeBinding};
use certctl_store::{AcmeBindingRecord, StoreError};

use crate::AppState;
use crate::auth::{Admin, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};

/// The renewal policy ACME certificates are filed under when a binding names none.
pub const ACME_RENEWAL_POLICY_ID: &str = "rp-acme";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bindings))
        .routes(routes!(put_binding))
        .routes(routes!(renew_certificate_now))
        .routes(routes!(renew_issuer_now))
        .merge(super::eab::router())
}

fn wire(s: &AppState, b: AcmeBindingRecord) -> AcmeBinding {
    let external = s.config.external_url.trim_end_matches('/');
    AcmeBinding {
        directory_url: format!("{external}/acme/profile/{}/directory", b.profile_id),
        profile_id: b.profile_id,
        issuer_id: b.issuer_id,
        owner_id: b.owner_id,
        team_id: b.team_id,
        renewal_policy_id: b.renewal_policy_id,
        external_account_required: b.external_account_required,
        created_at: b.created_at,
        updated_at: b.updated_at,
    }
}

/// List the profiles served over ACME.
#[utoipa::path(get, path = "/api/v1/acme/profiles", tag = "ACME", responses((status = 200, body = Vec<AcmeBinding>)))]
async fn list_bindings(_: Viewer, State(s): State<AppState>) -> ApiResult<Reply<Vec<AcmeBinding>>> {
    let all = s.store.list_acme_bindings().await?;
    Ok(Reply(all.into_iter().map(|b| wire(&s, b)).collect()))
}

/// Serve a profile over ACME (or change its binding): its certificates are issued by
/// `issuer_id` and filed under the owner, team and renewal policy given.
#[utoipa::path(put, path = "/api/v1/acme/profiles/{profile_id}", tag = "ACME", request_body = PutAcmeBinding,
    responses((status = 200, body = AcmeBinding), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn put_binding(
    Admin(p): Admin,
    State(s): State<AppState>,
    Path(profile_id): Path<String>,
    Json(req): Json<PutAcmeBinding>,
) -> ApiResult<Reply<AcmeBinding>> {
    let now = s.clock.now();
    let issuer = s.store.issuer(req.issuer_id.as_str()).await.map_err(|e| match e {
        StoreError::NotFound { .. } => {
            ApiError::BadRequest(format!("issuer_id: issuer '{}' does not exist", req.issuer_id))
        }
        other => other.into(),
    })?;
    if issuer.issuer_type != IssuerType::GenericCa {
        return Err(ApiError::Unprocessable(format!(
            "issuer_id: issuer '{}' is of type {}; ACME issues through local-CA (GenericCA) issuers",
            issuer.id, issuer.issuer_type
        )));
    }
    let policy_id = match &req.renewal_policy_id {
        Some(id) => id.to_string(),
        None => {
            ensure_acme_policy(&s, &p.actor(), now).await?;
            ACME_RENEWAL_POLICY_ID.to_owned()
        }
    };
    let policy = s.store.renewal_policy(&policy_id).await.map_err(|e| match e {
        StoreError::NotFound { .. } => {
            ApiError::BadRequest(format!("renewal_policy_id: renewal policy '{policy_id}' does not exist"))
        }
        other => other.into(),
    })?;
    if policy.auto_renew {
        return Err(ApiError::Unprocessable(format!(
            "renewal_policy_id: policy '{policy_id}' auto-renews, but ACME clients renew their own certificates"
        )));
    }
    let record = AcmeBindingRecord {
        profile_id,
        issuer_id: issuer.id,
        owner_id: req.owner_id.to_string(),
        team_id: req.team_id.to_string(),
        renewal_policy_id: policy_id,
        external_account_required: req.external_account_required,
        created_at: now,
        updated_at: now,
    };
    let saved = s.store.put_acme_binding(&record, &p.actor(), now).await?;
    s.acme.directories.clear();
    Ok(Reply(wire(&s, saved)))
}

async fn ensure_acme_policy(s: &AppState, actor: &certctl_store::Actor, now: time::OffsetDateTime) -> ApiResult<()> {
    match s.store.renewal_policy(ACME_RENEWAL_POLICY_ID).await {
        Ok(_) => return Ok(()),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let req: CreateRenewalPolicy = serde_json::from_value(serde_json::json!({
        "id": ACME_RENEWAL_POLICY_ID,
        "name": "ACME (renewed by the client)",
        "auto_renew": false,
    }))
    .map_err(|e| ApiError::Internal(format!("the ACME renewal policy request does not build: {e}")))?;
    match s.store.create_renewal_policy(&req, actor, now).await {
        // A concurrent request created it.
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// How long the window of a "renew now" stays open: clients polling ARI pick a moment in it.
pub const RENEW_NOW_WINDOW: time::Duration = time::Duration::hours(1);

async fn renew_now(
    s: &AppState,
    actor: &certctl_store::Actor,
    certificate_id: Option<&str>,
    issuer_id: Option<&str>,
) -> ApiResult<Reply<AcmeRenewNow>> {
    let now = s.clock.now();
    let end = now + RENEW_NOW_WINDOW;
    let certificates = s.store.acme_renew_now(certificate_id, issuer_id, now, end, actor, now).await?;
    Ok(Reply(AcmeRenewNow { certificates, window_start: now, window_end: end }))
}

/// Renew a certificate now (RFC 9773 incident response): its ARI window becomes the next hour,
/// so ACME clients that poll renewal-info replace it at once.
#[utoipa::path(post, path = "/api/v1/acme/certificates/{certificate_id}/renew-now", tag = "ACME",
    responses((status = 200, body = AcmeRenewNow), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn renew_certificate_now(
    Admin(p): Admin,
    State(s): State<AppState>,
    Path(certificate_id): Path<String>,
) -> ApiResult<Reply<AcmeRenewNow>> {
    renew_now(&s, &p.actor(), Some(&certificate_id), None).await
}

/// Renew every certificate of an issuer now (RFC 9773 incident response, for example after a
/// CA compromise): their ARI windows become the next hour.
#[utoipa::path(post, path = "/api/v1/acme/issuers/{issuer_id}/renew-now", tag = "ACME",
    responses((status = 200, body = AcmeRenewNow), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn renew_issuer_now(
    Admin(p): Admin,
    State(s): State<AppState>,
    Path(issuer_id): Path<String>,
) -> ApiResult<Reply<AcmeRenewNow>> {
    renew_now(&s, &p.actor(), None, Some(&issuer_id)).await
}
