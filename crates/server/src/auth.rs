//! API-key authentication and role checks.
//!
//! Keys are 256 random bits, shown once, stored as SHA-256 hashes. The `authenticate`
//! middleware resolves the bearer key to a [`Principal`] for every `/api/v1` call and records
//! the call in the audit trail; handlers state the role they need by taking [`Viewer`],
//! [`Operator`] or [`Admin`], so no handler is reachable without that proof.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use subtle::ConstantTimeEq;

use certctl_api::{ActorType, Role};
use certctl_store::{Actor, AuditEntry, Store};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;

/// Prefixes that make certctl secrets recognisable to secret scanners, and tell the
/// authenticator where to look a presented secret up.
const KEY_PREFIX: &str = "cck_";
/// An agent's own credential, returned once at enrolment.
pub const AGENT_CREDENTIAL_PREFIX: &str = "cca_";
/// A one-time enrolment token.
pub const ENROLMENT_TOKEN_PREFIX: &str = "cce_";

/// How long a resolved key is trusted without asking the database again. A deleted key is
/// dropped from this replica's cache at once and stops working on other replicas within this.
const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 10_000;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    /// Set when the caller authenticated with an agent credential: the only agent it may act as.
    pub agent_id: Option<String>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.name.clone(),
            kind: if self.role == Role::Agent { ActorType::Agent } else { ActorType::User },
        }
    }
}

/// A new random API key in clear.
pub fn generate_key() -> String {
    generate_secret(KEY_PREFIX)
}

/// 256 random bits behind `prefix`.
pub fn generate_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing is unrecoverable for a security product.
    SystemRandom::new().fill(&mut bytes).expect("system random number generator failed");
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Lower-case hex SHA-256 of a key, its stored form.
pub fn hash_key(key: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, key.as_bytes()))
}

/// Resolves keys to principals with a short-lived cache in front of the store.
pub struct Authenticator {
    store: Store,
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl Authenticator {
    pub fn new(store: Store) -> Self {
        Authenticator { store, cache: Mutex::new(HashMap::new()) }
    }

    /// The principal for a presented key, or `Unauthorized`.
    pub async fn resolve(&self, presented: &str) -> Result<Principal, ApiError> {
        let hash = hash_key(presented);
        if let Some(p) = self.cached(&hash) {
            return Ok(p);
        }
        let principal = if presented.starts_with(AGENT_CREDENTIAL_PREFIX) {
            let agent = self.store.agent_by_credential(&hash).await?;
            let Some(agent) = agent.filter(|a| bool::from(a.credential_hash.as_bytes().ct_eq(hash.as_bytes()))) else {
                return Err(ApiError::Unauthorized("invalid agent credential".into()));
            };
            if agent.is_retired() {
                return Err(ApiError::Gone(format!("agent '{}' is retired; it must stop", agent.id)));
            }
            Principal { key_id: agent.id.clone(), name: agent.name, role: Role::Agent, agent_id: Some(agent.id) }
        } else {
            let record = self.store.api_key_by_hash(&hash).await?;
            let Some(record) = record else {
                return Err(ApiError::Unauthorized("invalid API key".into()));
            };
            if !bool::from(record.key_hash.as_bytes().ct_eq(hash.as_bytes())) {
                return Err(ApiError::Unauthorized("invalid API key".into()));
            }
            Principal { key_id: record.key.id, name: record.key.name, role: record.key.role, agent_id: None }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (principal.clone(), Instant::now()));
        Ok(principal)
    }

    fn cached(&self, hash: &str) -> Option<Principal> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(hash).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(p, _)| p.clone())
    }

    /// Forgets a key at once (after deletion).
    pub fn forget(&self, hash: &str) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(hash);
    }

    /// Forgets an agent's credential at once (after retirement).
    pub fn forget_agent(&self, agent_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (p, _)| p.agent_id.as_deref() != Some(agent_id));
    }
}

pub(crate) fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <api key> header".into()))?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(ApiError::Unauthorized("Authorization header must be 'Bearer <api key>'".into())),
    }
}

/// A REST call the dashboard makes in process on behalf of a signed-in session. Only server
/// code can put it in a request's extensions, so it cannot be forged over the network.
#[derive(Debug, Clone)]
pub struct DashboardCaller(pub Principal);

/// Authenticates an `/api/v1` call, hands the principal to the handler, and records the call
/// (actor, method, path, status, latency, SHA-256 of the body) in the audit trail.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let via_dashboard = parts.extensions.remove::<DashboardCaller>();
    let principal = match &via_dashboard {
        Some(DashboardCaller(p)) => p.clone(),
        None => match bearer(&parts) {
            Ok(token) => match state.auth.resolve(token).await {
                Ok(p) => p,
                Err(e) => return e.into_response(),
            },
            Err(e) => return e.into_response(),
        },
    };
    let at = state.clock.now();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let (response, body_sha256) = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            let hash = (!bytes.is_empty()).then(|| hex::encode(digest::digest(&digest::SHA256, &bytes)));
            parts.extensions.insert(principal.clone());
            (next.run(Request::from_parts(parts, Body::from(bytes))).await, hash)
        }
        Err(_) => (ApiError::PayloadTooLarge(MAX_BODY_BYTES).into_response(), None),
    };
    let details = json!({
        "method": method.as_str(),
        "path": path,
        "query": query,
        "status": response.status().as_u16(),
        "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
        "body_sha256": body_sha256,
        "request_id": crate::error::current_request_id(),
        // The record joins the chain a moment later, in a batch; this is when the call came in.
        "received_at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "via": if via_dashboard.is_some() { "dashboard" } else { "api" },
    });
    let entry = AuditEntry::new(
        principal.name.clone(),
        principal.actor().kind,
        format!("api_{}", method.as_str().to_ascii_lowercase()),
        "api",
        path,
        details,
    );
    state.audit_log.record(entry).await;
    response
}

fn principal(parts: &Parts) -> Result<Principal, ApiError> {
    parts
        .extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <api key> header".into()))
}

macro_rules! role_extractor {
    ($(#[$meta:meta])* $name:ident, [$($role:ident),+], $why:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
                let p = principal(parts)?;
                if matches!(p.role, $(Role::$role)|+) {
                    Ok($name(p))
                } else {
                    Err(ApiError::Forbidden(format!("this operation needs {} (key '{}' is {})", $why, p.name, p.role)))
                }
            }
        }
    };
}

role_extractor!(
    /// Any key that may read the inventory (admin, operator or viewer).
    Viewer,
    [Admin, Operator, Viewer],
    "an admin, operator or viewer key"
);
role_extractor!(
    /// A key that may change the inventory and run lifecycle operations.
    Operator,
    [Admin, Operator],
    "an admin or operator key"
);
role_extractor!(
    /// An admin key.
    Admin,
    [Admin],
    "an admin key"
);
role_extractor!(
    /// Any authenticated key, whatever its role.
    AnyKey,
    [Admin, Operator, Viewer, Agent],
    "an API key"
);

/// An agent authenticated with its own credential.
#[derive(Debug, Clone)]
pub struct AgentCaller {
    pub principal: Principal,
    pub agent_id: String,
}

impl AgentCaller {
    /// `Forbidden` unless `agent_id` (from the path) is the caller itself.
    pub fn must_be(&self, agent_id: &str) -> Result<(), ApiError> {
        if self.agent_id == agent_id {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this credential belongs to agent '{}' and cannot act for agent '{agent_id}'",
                self.agent_id
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let p = principal(parts)?;
        match p.agent_id.clone() {
            Some(agent_id) => Ok(AgentCaller { principal: p, agent_id }),
            None => Err(ApiError::Forbidden(format!(
                "this operation needs an agent's own credential (key '{}' is {}); enrol the agent with an enrolment token",
                p.name, p.role
            ))),
        }
    }
}
