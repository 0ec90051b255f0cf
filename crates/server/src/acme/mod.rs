//! The ACME server (RFC 8555, RFC 9773 ARI): routes under `/acme/profile/{profile_id}/…` for
//! every certctl profile an admin bound to ACME, and under `/acme/…` for the default profile
//! (`CERTCTL_ACME_DEFAULT_PROFILE_ID`). Requests are authenticated by the JWS extractors in
//! [`request`]; failures are [`problem::AcmeError`]s rendered as problem+json; every response
//! carries a fresh `Replay-Nonce` and a `Link` to the directory.

pub mod account;
pub mod admin;
pub mod ari;
pub mod challenge;
pub mod directory;
pub mod dns01;
pub mod eab;
pub mod finalize;
pub mod gc;
pub mod jws;
pub mod nonce;
pub mod order;
pub mod problem;
pub mod ratelimit;
pub mod request;
pub mod resolve;
pub mod revoke;
pub mod tls_alpn01;
pub mod writes;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::AppState;

/// Runtime state of the ACME server, shared by every request.
pub struct AcmeRuntime {
    pub nonce_key: nonce::NonceKey,
    pub nonce_spends: nonce::NonceSpends,
    /// Bounds concurrent challenge validations, so a burst of orders cannot open unbounded
    /// outbound connections.
    pub validations: tokio::sync::Semaphore,
    /// Each served profile with its binding, as read moments ago: every ACME request resolves
    /// its directory, and reading two rows per request would dominate the cheap ones
    /// (directory, new-nonce). A change to a profile or binding is seen within
    /// [`request::DIRECTORY_CACHE_TTL`].
    pub directories: request::DirectoryCache,
    /// New orders and finalized orders, written in batches.
    pub orders: writes::OrderWrites,
    /// Accounts with their parsed keys, as read moments ago (see
    /// [`request::ACCOUNT_CACHE_TTL`]).
    pub accounts: crate::ttl_cache::TtlCache<(certctl_store::AcmeAccount, jws::Jwk)>,
}

impl Default for AcmeRuntime {
    fn default() -> Self {
        AcmeRuntime {
            nonce_key: nonce::NonceKey::default(),
            nonce_spends: nonce::NonceSpends::default(),
            validations: tokio::sync::Semaphore::new(16),
            directories: request::DirectoryCache::default(),
            orders: writes::OrderWrites::default(),
            accounts: crate::ttl_cache::TtlCache::new(request::ACCOUNT_CACHE_TTL),
        }
    }
}

static REPLAY_NONCE: HeaderName = HeaderName::from_static("replay-nonce");

/// Every ACME route, under both the default and the per-profile prefix.
pub fn router(state: AppState) -> Router<AppState> {
    let mut r = Router::new();
    for prefix in ["/acme", "/acme/profile/{profile_id}"] {
        let p = |path: &str| format!("{prefix}/{path}");
        r = r
            .route(&p("directory"), get(directory::directory))
            .route(&p("new-nonce"), get(directory::new_nonce_get).head(directory::new_nonce_head))
            .route(&p("new-account"), post(account::new_account))
            .route(&p("account/{account_id}"), post(account::account))
            .route(&p("account/{account_id}/orders"), post(account::orders))
            .route(&p("key-change"), post(account::key_change))
            .route(&p("new-order"), post(order::new_order))
            .route(&p("order/{order_id}"), post(order::order))
            .route(&p("order/{order_id}/finalize"), post(finalize::finalize))
            .route(&p("authz/{authz_id}"), post(order::authz))
            .route(&p("chall/{challenge_id}"), post(challenge::respond))
            .route(&p("cert/{order_id}"), post(finalize::certificate))
            .route(&p("cert/{order_id}/{n}"), post(finalize::alternate))
            .route(&p("revoke-cert"), post(revoke::revoke))
            .route(&p("renewal-info/{cert_id}"), get(ari::renewal_info));
    }
    r.layer(axum::middleware::from_fn_with_state(state, acme_headers))
}

/// The directory base (`…/acme` or `…/acme/profile/{id}`) a request path is under.
fn base_of(s: &AppState, path: &str) -> String {
    let external = s.config.external_url.trim_end_matches('/');
    match path.strip_prefix("/acme/profile/").and_then(|rest| rest.split('/').next()) {
        Some(id) if !id.is_empty() => format!("{external}/acme/profile/{id}"),
        _ => format!("{external}/acme"),
    }
}

/// Adds a fresh `Replay-Nonce` and the directory `Link` to every response, errors included
/// (RFC 8555 §6.5, §7.1), so a client never needs an extra round trip after a refusal.
async fn acme_headers(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let base = base_of(&s, req.uri().path());
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let mut response = next.run(req).await;
    if let Some(rejection) = response.extensions().get::<problem::Rejection>() {
        audit_rejection(&s, &method, &path, response.status(), rejection).await;
    }
    match nonce::issue(&s).await {
        Ok(n) => {
            if let Ok(v) = HeaderValue::from_str(&n) {
                response.headers_mut().insert(REPLAY_NONCE.clone(), v);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot issue an ACME nonce"),
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{base}/directory>;rel=\"index\"")) {
        response.headers_mut().append(header::LINK, v);
    }
    response
}

/// Records a refused ACME request. The requester is not known at this layer (the refusal may
/// be that it could not be authenticated), so the record names the path and the problem.
async fn audit_rejection(s: &AppState, method: &str, path: &str, status: StatusCode, r: &problem::Rejection) {
    let details = serde_json::json!({
        "method": method,
        "status": status.as_u16(),
        "problem": r.kind,
        "detail": r.detail,
        "request_id": crate::error::current_request_id(),
    });
    let entry = certctl_store::AuditEntry::new(
        "acme",
        certctl_api::ActorType::User,
        "acme_request_rejected",
        "acme",
        path,
        details,
    );
    s.audit_log.record(entry).await;
}

/// A JSON ACME resource with its status and, for created or addressed resources, `Location`.
pub fn resource(status: StatusCode, location: Option<&str>, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, loc);
    }
    response
}

/// RFC 3339 text of a time, as ACME objects carry it.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
