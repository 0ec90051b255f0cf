//! Certificate profiles and renewal policies.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    CertificateProfile, CreateProfile, CreateRenewalPolicy, ErrorBody, Page, PageParams, RenewalPolicy, UpdateProfile,
    UpdateRenewalPolicy,
};

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(get_profile, update_profile, delete_profile))
        .routes(routes!(list_renewal_policies, create_renewal_policy))
        .routes(routes!(get_renewal_policy, update_renewal_policy, delete_renewal_policy))
}

/// List certificate profiles.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "Profiles", params(PageParams), responses(
    (status = 200, body = Page<CertificateProfile>), (status = 400, body = ErrorBody)))]
async fn list_profiles(_: Viewer, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    Ok(listing(s.store.list_profiles(&paging(&p)?).await?))
}

/// Create a certificate profile; absent fields take their defaults.
#[utoipa::path(post, path = "/api/v1/profiles", tag = "Profiles", request_body = CreateProfile, responses(
    (status = 201, body = CertificateProfile), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_profile(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateProfile>,
) -> ApiResult<(StatusCode, Reply<CertificateProfile>)> {
    Ok((StatusCode::CREATED, Reply(s.store.create_profile(&req, &p.actor(), s.clock.now()).await?)))
}

/// Get a certificate profile.
#[utoipa::path(get, path = "/api/v1/profiles/{id}", tag = "Profiles", responses(
    (status = 200, body = CertificateProfile), (status = 404, body = ErrorBody)))]
async fn get_profile(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<CertificateProfile>> {
    Ok(Reply(s.store.profile(&id).await?))
}

/// Update a certificate profile; absent fields keep their value and the result is validated
/// as a whole.
#[utoipa::path(put, path = "/api/v1/profiles/{id}", tag = "Profiles", request_body = UpdateProfile, responses(
    (status = 200, body = CertificateProfile), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody)))]
async fn update_profile(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateProfile>,
) -> ApiResult<Reply<CertificateProfile>> {
    let updated = s.store.update_profile(&id, &req, &p.actor(), s.clock.now()).await?;
    // This replica applies the change at once; others within their caches' TTLs.
    s.acme.directories.clear();
    s.engine.profiles.clear();
    Ok(Reply(updated))
}

/// Delete a certificate profile that no certificate or renewal policy references.
#[utoipa::path(delete, path = "/api/v1/profiles/{id}", tag = "Profiles", responses(
    (status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_profile(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_profile(&id, &p.actor(), s.clock.now()).await?;
    s.acme.directories.clear();
    s.engine.profiles.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// List renewal policies.
#[utoipa::path(get, path = "/api/v1/renewal-policies", tag = "RenewalPolicies", params(PageParams), responses(
    (status = 200, body = Page<RenewalPolicy>), (status = 400, body = ErrorBody)))]
async fn list_renewal_policies(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(listing(s.store.list_renewal_policies(&paging(&p)?).await?))
}

/// Create a renewal policy; absent fields take their defaults and a missing ID is derived from
/// the name (`rp-<slug>`).
#[utoipa::path(post, path = "/api/v1/renewal-policies", tag = "RenewalPolicies", request_body = CreateRenewalPolicy,
    responses((status = 201, body = RenewalPolicy), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_renewal_policy(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateRenewalPolicy>,
) -> ApiResult<(StatusCode, Reply<RenewalPolicy>)> {
    check_routing(&s, req.alert_channels.as_ref()).await?;
    Ok((StatusCode::CREATED, Reply(s.store.create_renewal_policy(&req, &p.actor(), s.clock.now()).await?)))
}

/// Get a renewal policy.
#[utoipa::path(get, path = "/api/v1/renewal-policies/{id}", tag = "RenewalPolicies", responses(
    (status = 200, body = RenewalPolicy), (status = 404, body = ErrorBody)))]
async fn get_renewal_policy(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<RenewalPolicy>> {
    Ok(Reply(s.store.renewal_policy(&id).await?))
}

/// Update a renewal policy; absent fields keep their value and the result is validated as a
/// whole.
#[utoipa::path(put, path = "/api/v1/renewal-policies/{id}", tag = "RenewalPolicies",
    request_body = UpdateRenewalPolicy, responses(
    (status = 200, body = RenewalPolicy), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody)))]
async fn update_renewal_policy(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateRenewalPolicy>,
) -> ApiResult<Reply<RenewalPolicy>> {
    check_routing(&s, req.alert_channels.as_ref()).await?;
    Ok(Reply(s.store.update_renewal_policy(&id, &req, &p.actor(), s.clock.now()).await?))
}

/// Delete a renewal policy that no certificate uses.
#[utoipa::path(delete, path = "/api/v1/renewal-policies/{id}", tag = "RenewalPolicies", responses(
    (status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_renewal_policy(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_renewal_policy(&id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every channel an alert tier routes to must exist: one of the environment-declared channel
/// names (`Email`, `Webhook`, `Slack`, `Teams`, `PagerDuty`, `OpsGenie`) or a channel managed
/// through the API. A name that exists nowhere is refused with 422 rather than discovered when
/// the first alert goes dead.
async fn check_routing(
    s: &AppState,
    routes: Option<&std::collections::BTreeMap<certctl_api::SeverityTier, Vec<String>>>,
) -> ApiResult<()> {
    let Some(routes) = routes else { return Ok(()) };
    let mut names: Vec<String> = routes
        .values()
        .flatten()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty() && n.parse::<certctl_api::ChannelType>().is_err())
        .collect();
    names.sort();
    names.dedup();
    let missing = s.store.missing_channels(&names).await?;
    if let Some(name) = missing.first() {
        return Err(ApiError::Unprocessable(format!("alert_channels: notification channel '{name}' does not exist")));
    }
    Ok(())
}
