//! External account binding (RFC 8555 §7.3.4): admins create HMAC keys over REST and hand the
//! kid and key to a client out of band; a new-account request on a profile that requires it
//! carries a JWS, MACed with that key, over the account key. Keys are sealed at rest, shown
//! once, and bind one account each.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{AcmeEabKey, CreateAcmeEabKey, CreatedAcmeEabKey, ErrorBody, Page, PageParams};
use certctl_store::{AcmeEabKeyRecord, new_id};

use super::jws::{Jwk, unb64};
use super::problem::{AcmeError, AcmeResult};
use super::request::Signed;
use crate::AppState;
use crate::api::listing;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};

/// Bytes of a generated HMAC key (256 bits, as HS256 wants at least).
const KEY_LEN: usize = 32;
/// Longest accepted note.
const MAX_NOTE: usize = 256;

/// The sealing context of a key: bound to its kid, so a sealed key moved to another row does
/// not open.
fn context(kid: &str) -> String {
    format!("acme-eab-key:{kid}")
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_keys, create_key)).routes(routes!(key, delete_key))
}

fn wire(r: AcmeEabKeyRecord) -> AcmeEabKey {
    AcmeEabKey {
        kid: r.id,
        profile_id: r.profile_id,
        note: r.note,
        account_id: r.account_id,
        used_at: r.used_at,
        created_by: r.created_by,
        created_at: r.created_at,
    }
}

/// List EAB keys (never the HMAC keys).
#[utoipa::path(get, path = "/api/v1/acme/eab-keys", tag = "ACME", params(PageParams), responses(
    (status = 200, body = Page<AcmeEabKey>), (status = 403, body = ErrorBody)))]
async fn list_keys(_: Admin, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    let rows = s.store.list_acme_eab_keys(&paging(&p)?).await?;
    Ok(listing(rows.try_map(|r| Ok::<_, ApiError>(wire(r)))?))
}

/// Create an EAB key; the response is the only time the HMAC key is shown.
#[utoipa::path(post, path = "/api/v1/acme/eab-keys", tag = "ACME", request_body = CreateAcmeEabKey, responses(
    (status = 201, body = CreatedAcmeEabKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_key(
    Admin(p): Admin,
    State(s): State<AppState>,
    Json(req): Json<CreateAcmeEabKey>,
) -> ApiResult<(StatusCode, Reply<CreatedAcmeEabKey>)> {
    let note = req.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::BadRequest(format!("note: at most {MAX_NOTE} characters")));
    }
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut key).map_err(|_| ApiError::Internal("random generator failed".into()))?;
    let kid = new_id("eab");
    let record = AcmeEabKeyRecord {
        id: kid.clone(),
        profile_id: req.profile_id.map(|id| id.to_string()),
        note,
        account_id: None,
        used_at: None,
        created_by: p.name.clone(),
        created_at: s.clock.now(),
    };
    let sealed = s.secrets.seal(&context(&kid), &key);
    let stored = s.store.create_acme_eab_key(&record, &sealed, &p.actor(), s.clock.now()).await?;
    let reply = CreatedAcmeEabKey {
        kid: stored.id,
        hmac_key: URL_SAFE_NO_PAD.encode(key),
        profile_id: stored.profile_id,
        note: stored.note,
        created_at: stored.created_at,
    };
    Ok((StatusCode::CREATED, Reply(reply)))
}

/// One EAB key (never the HMAC key).
#[utoipa::path(get, path = "/api/v1/acme/eab-keys/{kid}", tag = "ACME", responses(
    (status = 200, body = AcmeEabKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn key(_: Admin, State(s): State<AppState>, Path(kid): Path<String>) -> ApiResult<Reply<AcmeEabKey>> {
    let (record, _) =
        s.store.acme_eab_key(&kid).await?.ok_or_else(|| ApiError::NotFound(format!("EAB key '{kid}' not found")))?;
    Ok(Reply(wire(record)))
}

/// Delete an EAB key: it binds no further account; accounts it bound keep working.
#[utoipa::path(delete, path = "/api/v1/acme/eab-keys/{kid}", tag = "ACME", responses(
    (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_key(Admin(p): Admin, State(s): State<AppState>, Path(kid): Path<String>) -> ApiResult<StatusCode> {
    s.store.delete_acme_eab_key(&kid, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

#[derive(Deserialize)]
struct Protected {
    alg: Option<String>,
    kid: Option<String>,
    url: Option<String>,
    nonce: Option<Value>,
    jwk: Option<Value>,
}

/// Verifies a new-account request's `externalAccountBinding` and returns the EAB kid it names.
/// The MAC is checked in constant time; whether the key is still free is decided when the
/// account is stored, in the same transaction that binds it.
pub async fn verify(s: &AppState, req: &Signed, binding: &Value) -> AcmeResult<String> {
    let malformed = |why: &str| AcmeError::Malformed(format!("externalAccountBinding: {why}"));
    let f: Flattened = serde_json::from_value(binding.clone()).map_err(|_| malformed("not a flattened JWS object"))?;
    let header: Protected = serde_json::from_slice(&unb64("externalAccountBinding protected", &f.protected)?)
        .map_err(|_| malformed("the protected header is not a JSON object"))?;
    let algorithm = match header.alg.as_deref() {
        Some("HS256") => hmac::HMAC_SHA256,
        Some("HS384") => hmac::HMAC_SHA384,
        Some("HS512") => hmac::HMAC_SHA512,
        other => return Err(malformed(&format!("alg {other:?} is not one of HS256, HS384, HS512"))),
    };
    if header.nonce.is_some() || header.jwk.is_some() {
        return Err(malformed("the protected header must carry neither a nonce nor a jwk"));
    }
    if header.url.as_deref() != Some(req.url.as_str()) {
        return Err(AcmeError::Unauthorized("externalAccountBinding: url is not the newAccount URL".into()));
    }
    let kid = header.kid.filter(|k| !k.is_empty()).ok_or_else(|| malformed("the protected header has no kid"))?;
    let payload: Value = serde_json::from_slice(&unb64("externalAccountBinding payload", &f.payload)?)
        .map_err(|_| malformed("the payload is not a JWK"))?;
    if Jwk::parse(&payload)? != req.jwk {
        return Err(AcmeError::Unauthorized("externalAccountBinding: the payload is not the account key".into()));
    }
    let signature = unb64("externalAccountBinding signature", &f.signature)?;
    let refused =
        || AcmeError::Unauthorized(format!("EAB key {kid:?} is unknown, already used or not for this profile"));
    let (record, sealed) = s.store.acme_eab_key(&kid).await?.ok_or_else(refused)?;
    if record.account_id.is_some() || record.profile_id.as_ref().is_some_and(|p| *p != req.dir.profile.id) {
        return Err(refused());
    }
    let secret = s.secrets.open(&context(&kid), &sealed).map_err(|e| AcmeError::Internal(e.to_string()))?;
    let signing_input = format!("{}.{}", f.protected, f.payload);
    hmac::verify(&hmac::Key::new(algorithm, &secret), signing_input.as_bytes(), &signature)
        .map_err(|_| AcmeError::Unauthorized("externalAccountBinding: the MAC does not verify".into()))?;
    Ok(kid)
}
