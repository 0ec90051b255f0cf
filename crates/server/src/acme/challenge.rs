//! Challenges (RFC 8555 §7.5.1, §8): a client's "ready" starts validation in the background
//! and the client polls the authorization. http-01 (here), dns-01 ([`super::dns01`]) and
//! tls-alpn-01 ([`super::tls_alpn01`]) resolve names through [`ValidationDns`] and dial only
//! addresses the SSRF guard allows (loopback and link-local refused unless
//! `CERTCTL_ALLOW_LOOPBACK_TARGETS`). http-01 follows at most a few redirects and compares the
//! body with the key authorization. One failed attempt makes the challenge invalid, with the
//! RFC 8555 problem that says why on the challenge.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use certctl_store::{AcmeAuthz, AcmeChallenge, ChallengeStatus};

use super::order::{Identifier, challenge_doc};
use super::problem::{AcmeError, AcmeResult};
use super::request::ByKid;
use super::resolve::{ResolveError, ValidationDns};
use super::{dns01, resource, tls_alpn01};
use crate::AppState;
use crate::notify::guard::check_literal;

/// How long one validation may take, connection and body included.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest http-01 response body read.
const MAX_HTTP01_BODY: usize = 16 * 1024;
/// Redirects an http-01 validation follows.
const MAX_REDIRECTS: usize = 5;

/// Why a validation failed, as the RFC 8555 error type the challenge records.
#[derive(Debug)]
pub struct Failure {
    /// The error type without its `urn:ietf:params:acme:error:` namespace.
    pub kind: &'static str,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        Failure { kind, detail: detail.into() }
    }

    fn to_json(&self, status: u16) -> String {
        serde_json::json!({
            "type": format!("urn:ietf:params:acme:error:{}", self.kind),
            "detail": self.detail,
            "status": status,
        })
        .to_string()
    }
}

/// `chall/{id}`: the client says it is ready; validation starts unless it already ran.
pub async fn respond(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    let missing = || AcmeError::NotFound("no such challenge".into());
    let id = params.get("challenge_id").ok_or_else(missing)?;
    let authz = s.store.acme_authz_of_challenge(id).await?.ok_or_else(missing)?;
    let account = req.account().clone();
    if authz.account_id != account.id {
        return Err(missing());
    }
    let mut challenge = authz.challenges.iter().find(|c| c.id == *id).cloned().ok_or_else(missing)?;
    let dir = &req.0.dir;
    // POST-as-GET reads the challenge; `{}` (or any object) asks for validation.
    if !req.0.is_post_as_get() && challenge.status == ChallengeStatus::Pending {
        if authz.expires_at <= s.clock.now() {
            return Err(AcmeError::Malformed("the authorization has expired".into()));
        }
        if s.store.start_acme_challenge(&challenge.id, s.clock.now()).await? {
            challenge.status = ChallengeStatus::Processing;
            let key_authorization = format!("{}.{}", challenge.token, account.thumbprint);
            tokio::spawn(validate_in_background(s.clone(), authz.clone(), challenge.clone(), key_authorization));
        }
    }
    let mut response = resource(StatusCode::OK, None, &challenge_doc(dir, &challenge));
    let up = format!("<{}>;rel=\"up\"", dir.url(&format!("authz/{}", authz.id)));
    if let Ok(v) = axum::http::HeaderValue::from_str(&up) {
        response.headers_mut().append(axum::http::header::LINK, v);
    }
    Ok(response)
}

async fn validate_in_background(s: AppState, authz: AcmeAuthz, challenge: AcmeChallenge, key_authorization: String) {
    let outcome = match s.acme.validations.acquire().await {
        Ok(_permit) => {
            match tokio::time::timeout(VALIDATION_TIMEOUT, validate(&s, &authz, &challenge, &key_authorization)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::new("connection", "validation timed out")),
            }
        }
        Err(_) => Err(Failure::new("serverInternal", "the server is shutting down")),
    };
    let error = outcome.err().map(|f| {
        tracing::info!(challenge_id = %challenge.id, kind = f.kind, detail = %f.detail, "ACME challenge failed");
        f.to_json(if f.kind == "serverInternal" { 500 } else { 403 })
    });
    if let Err(e) = s.store.finish_acme_challenge(&challenge.id, error.as_deref(), s.clock.now()).await {
        tracing::error!(challenge_id = %challenge.id, error = %e, "cannot record the challenge outcome");
    }
}

async fn validate(s: &AppState, authz: &AcmeAuthz, c: &AcmeChallenge, key_authorization: &str) -> Result<(), Failure> {
    let dns = ValidationDns::new(&s.config);
    let id = Identifier::parse(&authz.identifier)
        .map_err(|p| Failure::new("serverInternal", format!("stored identifier: {}", p.detail)))?;
    let id = match id {
        Identifier::Dns { name, .. } => Identifier::Dns { name, wildcard: authz.wildcard },
        ip => ip,
    };
    match c.kind.as_str() {
        "http-01" => http01(s, &dns, &authz.identifier.value, &c.token, key_authorization).await,
        "dns-01" => match &id {
            Identifier::Dns { name, .. } => dns01::validate(&dns, name, key_authorization).await,
            Identifier::Ip(_) => Err(Failure::new("malformed", "dns-01 cannot prove an IP address")),
        },
        "tls-alpn-01" => tls_alpn01::validate(&dns, &id, s.config.acme_tlsalpn01_port, key_authorization).await,
        other => Err(Failure::new("serverInternal", format!("challenge type {other} is not validated by this server"))),
    }
}

/// The problem a failed HTTP request stands for: the resolver's own when resolution failed.
fn request_failure(url: &reqwest::Url, e: &reqwest::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(ResolveError(f)) = err.downcast_ref::<ResolveError>() {
            return Failure::new(f.kind, f.detail.clone());
        }
        source = err.source();
    }
    Failure::new("connection", format!("{url}: {e}"))
}

/// RFC 8555 §8.3.
async fn http01(
    s: &AppState,
    dns: &ValidationDns,
    host: &str,
    token: &str,
    key_authorization: &str,
) -> Result<(), Failure> {
    let allow_loopback = dns.allow_loopback;
    let authority = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    };
    let port = s.config.acme_http01_port;
    let url = format!("http://{authority}:{port}/.well-known/acme-challenge/{token}");
    let url = reqwest::Url::parse(&url).map_err(|e| Failure::new("malformed", format!("bad URL {url}: {e}")))?;
    check_literal(&url, allow_loopback).map_err(|e| Failure::new("connection", e))?;
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        let ok_scheme = matches!(attempt.url().scheme(), "http" | "https");
        match check_literal(attempt.url(), allow_loopback) {
            Ok(()) if ok_scheme => attempt.follow(),
            Ok(()) => attempt.error("redirect to a non-HTTP URL"),
            Err(e) => attempt.error(e),
        }
    });
    let client = reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(*dns))
        .redirect(redirects)
        .timeout(VALIDATION_TIMEOUT)
        .user_agent("certctl-acme-validator")
        .build()
        .map_err(|e| Failure::new("serverInternal", format!("HTTP client: {e}")))?;
    let mut response = client.get(url.clone()).send().await.map_err(|e| request_failure(&url, &e))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(Failure::new("unauthorized", format!("{url} answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::new("connection", format!("{url}: {e}")))? {
        if body.len() + chunk.len() > MAX_HTTP01_BODY {
            return Err(Failure::new("unauthorized", format!("{url} answered more than {MAX_HTTP01_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    if text.trim() == key_authorization {
        Ok(())
    } else {
        Err(Failure::new("incorrectResponse", format!("{url} did not answer the key authorization")))
    }
}
