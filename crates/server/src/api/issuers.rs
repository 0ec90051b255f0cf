//! Issuers, and the sealing of connector configurations that issuers and targets share.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    CreateIssuer, ErrorBody, Issuer, IssuerTestResult, IssuerType, Page, PageParams, REDACTED, ResourceId, UpdateIssuer,
};
use certctl_store::{IssuerChanges, NewIssuer, SealedConfig, new_id};

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};
use crate::local_ca::LocalCaConfig;
use crate::secrets::{SecretBox, merge_redacted, redact};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_issuers, create_issuer))
        .routes(routes!(get_issuer, update_issuer, delete_issuer))
        .routes(routes!(test_issuer))
}

/// A configuration as sent by a client, with its `********` placeholders resolved.
pub(super) struct ResolvedConfig {
    pub full: Map<String, Value>,
    /// The sealed document the placeholders were resolved from.
    pub merged_from: Option<Vec<u8>>,
}

fn has_placeholder(config: &Map<String, Value>) -> bool {
    config.values().any(|v| match v {
        Value::String(s) => s == REDACTED,
        Value::Object(inner) => has_placeholder(inner),
        _ => false,
    })
}

/// Replaces every `********` in `incoming` with the secret stored under the same key in the
/// sealed document `stored` (bound to `context`). A placeholder with nothing behind it is a 400
/// naming the field.
pub(super) fn resolve_config(
    secrets: &SecretBox,
    context: &str,
    incoming: Map<String, Value>,
    stored: Option<Vec<u8>>,
) -> ApiResult<ResolvedConfig> {
    if !has_placeholder(&incoming) {
        return Ok(ResolvedConfig { full: incoming, merged_from: None });
    }
    let Some(sealed) = stored else {
        let full = merge_redacted(&incoming, &Map::new(), "").map_err(ApiError::BadRequest)?;
        return Ok(ResolvedConfig { full, merged_from: None });
    };
    let plain = secrets.open(context, &sealed).map_err(|e| {
        tracing::warn!(context, error = %e, "stored configuration does not decrypt");
        ApiError::Unprocessable(format!(
            "config: the stored secrets of {context} cannot be decrypted with the server's current key; \
             send every secret value instead of '{REDACTED}'"
        ))
    })?;
    let stored: Map<String, Value> = serde_json::from_slice(&plain)
        .map_err(|e| ApiError::Internal(format!("stored configuration of {context} is not a JSON object: {e}")))?;
    let full = merge_redacted(&incoming, &stored, "").map_err(ApiError::BadRequest)?;
    Ok(ResolvedConfig { full, merged_from: Some(sealed) })
}

/// The stored form of a resolved configuration: its redacted copy and the sealed full document.
pub(super) fn seal_config(secrets: &SecretBox, context: &str, config: ResolvedConfig) -> SealedConfig {
    // A JSON map always serializes.
    let bytes = serde_json::to_vec(&config.full).unwrap_or_default();
    SealedConfig {
        redacted: redact(&config.full),
        sealed: secrets.seal(context, &bytes),
        merged_from: config.merged_from,
    }
}

/// Refuses a configuration its issuer type cannot use (a 422, or for ACME a 400, naming the
/// field), so a mistake shows when the issuer is saved rather than at its first issuance.
fn validate(issuer_type: IssuerType, config: &Map<String, Value>, allow_loopback: bool) -> ApiResult<()> {
    if issuer_type == IssuerType::Acme {
        crate::acme_issuer::AcmeIssuerConfig::parse(config, allow_loopback)?;
    }
    if issuer_type == IssuerType::GenericCa {
        let parsed = LocalCaConfig::parse(config)?;
        if let (Some(cert), Some(key)) = (&parsed.ca_cert_pem, &parsed.ca_key_pem) {
            certctl_pki::ca::CaCert::from_pem(cert, key)
                .map_err(|e| ApiError::Unprocessable(format!("config.ca_cert_pem / ca_key_pem: {e}")))?;
        }
    }
    Ok(())
}

fn context(id: &str) -> String {
    format!("issuer:{id}")
}

/// List issuers; configurations are redacted.
#[utoipa::path(get, path = "/api/v1/issuers", tag = "Issuers", params(PageParams), responses(
    (status = 200, body = Page<Issuer>), (status = 400, body = ErrorBody)))]
async fn list_issuers(_: Viewer, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    Ok(listing(s.store.list_issuers(&paging(&p)?).await?))
}

/// Create an issuer; secrets in its configuration are encrypted at rest and redacted on read.
#[utoipa::path(post, path = "/api/v1/issuers", tag = "Issuers", request_body = CreateIssuer, responses(
    (status = 201, body = Issuer), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_issuer(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateIssuer>,
) -> ApiResult<(StatusCode, Reply<Issuer>)> {
    // The ID is fixed before sealing because the sealed config is bound to it.
    let id = req.id.map(ResourceId::into_inner).unwrap_or_else(|| new_id("iss"));
    let ctx = context(&id);
    let resolved = resolve_config(&s.secrets, &ctx, req.config.unwrap_or_default(), None)?;
    validate(req.issuer_type, &resolved.full, s.config.allow_loopback_targets)?;
    let new = NewIssuer {
        config: seal_config(&s.secrets, &ctx, resolved),
        id,
        name: req.name,
        issuer_type: req.issuer_type,
        enabled: req.enabled.unwrap_or(true),
    };
    Ok((StatusCode::CREATED, Reply(s.store.create_issuer(&new, &p.actor(), s.clock.now()).await?)))
}

/// Get an issuer; its configuration is redacted.
#[utoipa::path(get, path = "/api/v1/issuers/{id}", tag = "Issuers",
    params(("id" = String, Path, description = "Issuer ID")),
    responses((status = 200, body = Issuer), (status = 404, body = ErrorBody)))]
async fn get_issuer(_: Viewer, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Issuer>> {
    Ok(Reply(s.store.issuer(&id).await?))
}

/// Update an issuer; absent fields keep their value, and `********` in the configuration keeps
/// the stored secret.
#[utoipa::path(put, path = "/api/v1/issuers/{id}", tag = "Issuers",
    params(("id" = String, Path, description = "Issuer ID")),
    request_body = UpdateIssuer, responses(
    (status = 200, body = Issuer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_issuer(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateIssuer>,
) -> ApiResult<Reply<Issuer>> {
    let config = match req.config {
        Some(incoming) => {
            let ctx = context(&id);
            let stored = s.store.issuer_sealed_config(&id).await?;
            let resolved = resolve_config(&s.secrets, &ctx, incoming, stored)?;
            validate(s.store.issuer(&id).await?.issuer_type, &resolved.full, s.config.allow_loopback_targets)?;
            Some(seal_config(&s.secrets, &ctx, resolved))
        }
        None => None,
    };
    let changes = IssuerChanges { name: req.name, config, enabled: req.enabled };
    let issuer = s.store.update_issuer(&id, &changes, &p.actor(), s.clock.now()).await?;
    s.engine.authorities.forget_signers();
    Ok(Reply(issuer))
}

/// Delete an issuer that no certificate references.
#[utoipa::path(delete, path = "/api/v1/issuers/{id}", tag = "Issuers",
    params(("id" = String, Path, description = "Issuer ID")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_issuer(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_issuer(&id, &p.actor(), s.clock.now()).await?;
    s.engine.authorities.forget_signers();
    Ok(StatusCode::NO_CONTENT)
}

/// Check that the issuer can issue: for GenericCA that its signing CA loads and is unexpired
/// (the root is created on first use, as for an issuance), for ACME that the CA's directory
/// answers. The outcome is kept as the issuer's `test_status`.
#[utoipa::path(post, path = "/api/v1/issuers/{id}/test", tag = "Issuers",
    params(("id" = String, Path, description = "Issuer ID")),
    responses((status = 200, body = IssuerTestResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 422, description = "The issuer cannot issue; the message says why", body = ErrorBody)))]
async fn test_issuer(
    _: Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<IssuerTestResult>> {
    let issuer = s.store.issuer(&id).await?;
    let outcome = check_issuer(&s, &issuer).await;
    // A failure of certctl itself (database, a bug) says nothing about the issuer.
    if let Err(e @ (ApiError::Internal(_) | ApiError::Unavailable(_))) = outcome {
        return Err(e);
    }
    s.store.record_issuer_test(&id, outcome.is_ok(), s.clock.now()).await?;
    match outcome {
        Ok(message) => Ok(Reply(IssuerTestResult { status: "ok".into(), message })),
        Err(e) => Err(ApiError::Unprocessable(format!("issuer '{id}' cannot issue: {e}"))),
    }
}

async fn check_issuer(s: &AppState, issuer: &Issuer) -> ApiResult<String> {
    match issuer.issuer_type {
        IssuerType::GenericCa => {
            let signer = s.engine.authorities.signer(s, &issuer.id).await?;
            let ca = &signer.ca.record;
            Ok(format!("signing CA '{}' ({}) loads and is valid until {}", ca.id, ca.subject, ca.not_after.date()))
        }
        IssuerType::Acme => {
            let config = crate::acme_issuer::load_config(s, &issuer.id).await?;
            crate::acme_issuer::check_directory(&config, s.config.allow_loopback_targets).await?;
            Ok(format!("the ACME directory {} answers", config.directory_url))
        }
        other => Err(ApiError::Unprocessable(format!("certctl cannot issue through type {other} yet"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn placeholders_resolve_against_the_sealed_config() {
        let b = SecretBox::from_key(&[3u8; 32]);
        let first = resolve_config(&b, "issuer:a", map(json!({"url": "u", "auth": {"token": "t0p"}})), None).unwrap();
        let stored = seal_config(&b, "issuer:a", first);
        assert_eq!(Value::Object(stored.redacted.clone()), json!({"url": "u", "auth": {"token": REDACTED}}));
        assert!(stored.merged_from.is_none());

        let update = map(json!({"url": "v", "auth": {"token": REDACTED}}));
        let resolved = resolve_config(&b, "issuer:a", update, Some(stored.sealed.clone())).unwrap();
        assert_eq!(Value::Object(resolved.full.clone()), json!({"url": "v", "auth": {"token": "t0p"}}));
        assert_eq!(resolved.merged_from.as_deref(), Some(stored.sealed.as_slice()));

        // Without placeholders nothing is decrypted, so a config sealed for another record is
        // irrelevant; with them, it does not open.
        assert!(resolve_config(&b, "issuer:b", map(json!({"url": "w"})), Some(stored.sealed.clone())).is_ok());
        let err = resolve_config(&b, "issuer:b", map(json!({"auth": {"token": REDACTED}})), Some(stored.sealed))
            .err()
            .unwrap();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn a_placeholder_without_a_stored_secret_names_the_field() {
        let b = SecretBox::from_key(&[3u8; 32]);
        let err = resolve_config(&b, "issuer:a", map(json!({"api_key": REDACTED})), None).err().unwrap();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.to_string().starts_with("config.api_key"), "{err}");
    }
}
