//! Orders and authorizations (RFC 8555 §7.4, §7.5): `dns` and `ip` (RFC 8738) identifiers,
//! wildcards (dns-01 only), `notBefore`/`notAfter`, and the two authorization modes of a
//! certctl profile: `trust_authenticated` (authorizations valid at once) and `challenge`.

use std::collections::HashMap;
use std::net::IpAddr;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use certctl_api::AcmeAuthMode;
use certctl_pki::constraints::San;
use certctl_store::{
    AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeIdentifier, AcmeOrder, AuthzStatus, ChallengeStatus, NewAcmeOrder,
    OrderStatus, new_id,
};

use super::problem::{AcmeError, AcmeResult, Subproblem};
use super::request::{ByKid, Directory};
use super::{resource, rfc3339};
use crate::AppState;

/// Most identifiers one order may carry.
const MAX_IDENTIFIERS: usize = 100;
/// How long an order (and its authorizations) may wait to be finalized.
pub const ORDER_TTL: Duration = Duration::hours(24);
/// Random bytes in a challenge token (256 bits; RFC 8555 §8 asks for at least 128).
const TOKEN_BYTES: usize = 32;

/// A parsed identifier: what the certificate will name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// A DNS name, lower case; `wildcard` when it was `*.name` (stored without the `*.`).
    Dns {
        name: String,
        wildcard: bool,
    },
    Ip(IpAddr),
}

impl Identifier {
    /// Parses one wire identifier, or says why not.
    pub fn parse(id: &AcmeIdentifier) -> Result<Identifier, Subproblem> {
        match id.kind.as_str() {
            "dns" => match San::parse(&id.value) {
                Ok(San::Dns(name)) => match name.strip_prefix("*.") {
                    Some(base) if base.contains('*') => Err(reject(id, "only the leftmost label may be a wildcard")),
                    Some(base) => Ok(Identifier::Dns { name: base.to_owned(), wildcard: true }),
                    None if name.contains('*') => Err(reject(id, "a wildcard must be the whole leftmost label")),
                    None => Ok(Identifier::Dns { name, wildcard: false }),
                },
                _ => Err(reject(id, "is not a valid DNS name")),
            },
            "ip" => match id.value.parse::<IpAddr>() {
                // RFC 8738: the canonical textual form, so the certificate names what was asked.
                Ok(ip) if ip.to_string() == id.value => Ok(Identifier::Ip(ip)),
                _ => Err(reject(id, "is not an IP address in canonical form")),
            },
            other => Err(Subproblem::new(
                "unsupportedIdentifier",
                format!("identifier type {other:?} is not supported (dns, ip)"),
                id.clone(),
            )),
        }
    }

    /// The wire identifier of the order (with the `*.` of a wildcard).
    pub fn wire(&self) -> AcmeIdentifier {
        match self {
            Identifier::Dns { name, wildcard: true } => {
                AcmeIdentifier { kind: "dns".into(), value: format!("*.{name}") }
            }
            Identifier::Dns { name, .. } => AcmeIdentifier { kind: "dns".into(), value: name.clone() },
            Identifier::Ip(ip) => AcmeIdentifier { kind: "ip".into(), value: ip.to_string() },
        }
    }

    /// The subject alternative name the certificate carries for it.
    pub fn san(&self) -> San {
        match self {
            Identifier::Dns { name, wildcard: true } => San::Dns(format!("*.{name}")),
            Identifier::Dns { name, .. } => San::Dns(name.clone()),
            Identifier::Ip(ip) => San::Ip(*ip),
        }
    }
}

/// Whether the profile's SAN patterns allow an identifier. No patterns allow everything; a
/// pattern is an exact name or `*.suffix`, which covers every name below `suffix` (and
/// wildcards below it). Addresses never match a DNS pattern.
pub fn allowed_by_patterns(patterns: &[String], id: &Identifier) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let Identifier::Dns { name, wildcard } = id else { return false };
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(suffix) => {
                name.strip_suffix(suffix).is_some_and(|head| head.ends_with('.')) || (*wildcard && name == suffix)
            }
            None => !wildcard && *name == p,
        }
    })
}

fn reject(id: &AcmeIdentifier, why: &str) -> Subproblem {
    Subproblem::new("rejectedIdentifier", format!("{:?} {why}", id.value), id.clone())
}

/// Parses an order's identifiers (deduplicated, in request order); every bad one is reported.
pub fn parse_identifiers(ids: &[AcmeIdentifier]) -> AcmeResult<Vec<Identifier>> {
    if ids.is_empty() {
        return Err(AcmeError::Malformed("an order needs at least one identifier".into()));
    }
    if ids.len() > MAX_IDENTIFIERS {
        return Err(AcmeError::RejectedIdentifier {
            detail: format!("an order may carry at most {MAX_IDENTIFIERS} identifiers"),
            subproblems: Vec::new(),
        });
    }
    let mut parsed = Vec::with_capacity(ids.len());
    let mut problems = Vec::new();
    for id in ids {
        match Identifier::parse(id) {
            Ok(p) if !parsed.contains(&p) => parsed.push(p),
            Ok(_) => {}
            Err(sub) => problems.push(sub),
        }
    }
    if problems.is_empty() {
        return Ok(parsed);
    }
    let detail = format!("{} identifier(s) cannot be issued for", problems.len());
    if problems.iter().all(|p| p.kind.ends_with(":unsupportedIdentifier")) {
        Err(AcmeError::UnsupportedIdentifier { detail, subproblems: problems })
    } else {
        Err(AcmeError::RejectedIdentifier { detail, subproblems: problems })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    identifiers: Vec<AcmeIdentifier>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_before: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_after: Option<OffsetDateTime>,
    /// The ACME profiles extension: must name this directory's profile when present.
    #[serde(default)]
    profile: Option<String>,
    /// ARI (RFC 9773 §5): the certificate this order replaces; accepted, not required.
    #[serde(default)]
    replaces: Option<String>,
}

fn token() -> AcmeResult<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SystemRandom::new().fill(&mut bytes).map_err(|_| AcmeError::Internal("random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The challenges offered for an identifier: dns-01 only for wildcards (RFC 8555 §7.1.3),
/// http-01, dns-01 and tls-alpn-01 for other names, http-01 and tls-alpn-01 for addresses
/// (RFC 8738 §7 forbids dns-01 for IPs).
pub fn offered(id: &Identifier) -> &'static [&'static str] {
    match id {
        Identifier::Dns { wildcard: true, .. } => &["dns-01"],
        Identifier::Dns { .. } => &["http-01", "dns-01", "tls-alpn-01"],
        Identifier::Ip(_) => &["http-01", "tls-alpn-01"],
    }
}

fn build_authz(
    id: &Identifier,
    account: &AcmeAccount,
    mode: AcmeAuthMode,
    now: OffsetDateTime,
) -> AcmeResult<AcmeAuthz> {
    let authz_id = new_id("authz");
    let trusted = mode == AcmeAuthMode::TrustAuthenticated;
    // In trust mode the one challenge listed is the one "validated": the account's
    // authentication itself.
    let kinds: &[&str] = if trusted { &offered(id)[..1] } else { offered(id) };
    let mut challenges = Vec::with_capacity(kinds.len());
    for kind in kinds {
        challenges.push(AcmeChallenge {
            id: new_id("chall"),
            authz_id: authz_id.clone(),
            kind: (*kind).to_owned(),
            token: token()?,
            status: if trusted { ChallengeStatus::Valid } else { ChallengeStatus::Pending },
            validated_at: trusted.then_some(now),
            error: None,
        });
    }
    let (identifier, wildcard) = match id {
        Identifier::Dns { name, wildcard } => (AcmeIdentifier { kind: "dns".into(), value: name.clone() }, *wildcard),
        Identifier::Ip(ip) => (AcmeIdentifier { kind: "ip".into(), value: ip.to_string() }, false),
    };
    Ok(AcmeAuthz {
        id: authz_id,
        order_id: String::new(),
        account_id: account.id.clone(),
        identifier,
        wildcard,
        status: if trusted { AuthzStatus::Valid } else { AuthzStatus::Pending },
        expires_at: now + ORDER_TTL,
        challenges,
    })
}

/// Checks the requested validity against the profile: no backdating, no start in the future
/// (certificates are issued now), and no end past what the profile allows.
fn check_validity(dir: &Directory, o: &NewOrder, now: OffsetDateTime) -> AcmeResult<()> {
    if let Some(nb) = o.not_before
        && (nb > now + Duration::minutes(5) || nb < now - Duration::hours(1))
    {
        return Err(AcmeError::Malformed("notBefore must be now: certificates are issued at finalize".into()));
    }
    if let Some(na) = o.not_after {
        if na <= now {
            return Err(AcmeError::Malformed("notAfter is in the past".into()));
        }
        let max = dir.profile.max_ttl_seconds;
        if max > 0 && na > now + ORDER_TTL + Duration::seconds(max) {
            return Err(AcmeError::Malformed(format!("notAfter is beyond this profile's {max} s maximum validity")));
        }
    }
    Ok(())
}

/// `new-order`.
pub async fn new_order(State(s): State<AppState>, req: ByKid) -> AcmeResult<Response> {
    let account = req.account().clone();
    super::ratelimit::check(&s, super::ratelimit::Limit::NewOrder, &account.id).await?;
    let dir = &req.0.dir;
    let body: NewOrder = req.0.json()?;
    if let Some(p) = &body.profile
        && *p != dir.profile.id
    {
        return Err(AcmeError::Malformed(format!(
            "profile {p:?} is not offered by this directory (it issues under {:?})",
            dir.profile.id
        )));
    }
    let now = s.clock.now();
    check_validity(dir, &body, now)?;
    if let Some(replaces) = &body.replaces {
        tracing::debug!(replaces, "order replaces a certificate");
    }
    let identifiers = parse_identifiers(&body.identifiers)?;
    let patterns = &dir.profile.required_san_patterns;
    let refused: Vec<Subproblem> = identifiers
        .iter()
        .filter(|id| !allowed_by_patterns(patterns, id))
        .map(|id| reject(&id.wire(), "is outside the names this profile issues for"))
        .collect();
    if !refused.is_empty() {
        return Err(AcmeError::RejectedIdentifier {
            detail: format!("the profile issues only for {}", patterns.join(", ")),
            subproblems: refused,
        });
    }
    let mode = dir.profile.acme_auth_mode;
    let authzs = identifiers.iter().map(|id| build_authz(id, &account, mode, now)).collect::<AcmeResult<Vec<_>>>()?;
    let new = NewAcmeOrder {
        id: new_id("order"),
        account_id: account.id.clone(),
        profile_id: dir.profile.id.clone(),
        status: if mode == AcmeAuthMode::TrustAuthenticated { OrderStatus::Ready } else { OrderStatus::Pending },
        expires_at: now + ORDER_TTL,
        identifiers: identifiers.iter().map(Identifier::wire).collect(),
        not_before: body.not_before,
        not_after: body.not_after,
        authzs,
    };
    let order = s.acme.orders.create(&s, new).await?;
    Ok(render_order(dir, &order, StatusCode::CREATED))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderDoc<'a> {
    status: &'static str,
    expires: String,
    identifiers: &'a [AcmeIdentifier],
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
    authorizations: Vec<String>,
    finalize: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// The order object with `Location`.
pub fn render_order(dir: &Directory, o: &AcmeOrder, status: StatusCode) -> Response {
    let doc = OrderDoc {
        status: o.status.as_str(),
        expires: rfc3339(o.expires_at),
        identifiers: &o.identifiers,
        not_before: o.not_before.map(rfc3339),
        not_after: o.not_after.map(rfc3339),
        authorizations: o.authz_ids.iter().map(|id| dir.url(&format!("authz/{id}"))).collect(),
        finalize: dir.url(&format!("order/{}/finalize", o.id)),
        certificate: (o.status == OrderStatus::Valid).then(|| dir.url(&format!("cert/{}", o.id))),
        error: o.error.as_deref().and_then(|e| serde_json::from_str(e).ok()),
    };
    resource(status, Some(&dir.url(&format!("order/{}", o.id))), &doc)
}

/// The order a path names, when the signing account owns it. Another account's order is
/// reported as missing, so IDs cannot be probed.
pub async fn owned_order(s: &AppState, req: &ByKid, id: Option<&String>) -> AcmeResult<AcmeOrder> {
    let missing = || AcmeError::NotFound("no such order".into());
    let id = id.ok_or_else(missing)?;
    let order = s.store.acme_order(id).await?.ok_or_else(missing)?;
    if order.account_id != req.account().id {
        return Err(missing());
    }
    Ok(order)
}

/// `order/{id}`: POST-as-GET.
pub async fn order(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    req.0.must_be_post_as_get()?;
    let order = owned_order(&s, &req, params.get("order_id")).await?;
    Ok(render_order(&req.0.dir, &order, StatusCode::OK))
}

#[derive(Serialize)]
struct ChallengeDoc {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    status: &'static str,
    token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    validated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// A challenge object.
pub fn challenge_doc(dir: &Directory, c: &AcmeChallenge) -> impl Serialize + use<> {
    ChallengeDoc {
        kind: c.kind.clone(),
        url: dir.url(&format!("chall/{}", c.id)),
        status: c.status.as_str(),
        token: c.token.clone(),
        validated: c.validated_at.map(rfc3339),
        error: c.error.as_deref().and_then(|e| serde_json::from_str(e).ok()),
    }
}

/// The authorization object.
pub fn render_authz(dir: &Directory, a: &AcmeAuthz) -> Response {
    let challenges: Vec<_> = a.challenges.iter().map(|c| challenge_doc(dir, c)).collect();
    let mut doc = serde_json::json!({
        "identifier": a.identifier,
        "status": a.status.as_str(),
        "expires": rfc3339(a.expires_at),
        "challenges": challenges,
    });
    if a.wildcard {
        doc["wildcard"] = serde_json::Value::Bool(true);
    }
    resource(StatusCode::OK, Some(&dir.url(&format!("authz/{}", a.id))), &doc)
}

/// `authz/{id}`: POST-as-GET, only for the owning account.
pub async fn authz(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    req.0.must_be_post_as_get()?;
    let missing = || AcmeError::NotFound("no such authorization".into());
    let id = params.get("authz_id").ok_or_else(missing)?;
    let authz = s.store.acme_authz(id).await?.ok_or_else(missing)?;
    if authz.account_id != req.account().id {
        return Err(missing());
    }
    Ok(render_authz(&req.0.dir, &authz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, value: &str) -> AcmeIdentifier {
        AcmeIdentifier { kind: kind.into(), value: value.into() }
    }

    #[test]
    fn identifiers() {
        let ok =
            parse_identifiers(&[id("dns", "a.example.com"), id("dns", "*.example.com"), id("ip", "10.0.0.1")]).unwrap();
        assert_eq!(ok[1], Identifier::Dns { name: "example.com".into(), wildcard: true });
        assert_eq!(ok[2].wire().value, "10.0.0.1");
        assert!(matches!(parse_identifiers(&[id("email", "a@b.c")]), Err(AcmeError::UnsupportedIdentifier { .. })));
        let Err(AcmeError::RejectedIdentifier { subproblems, .. }) = parse_identifiers(&[
            id("dns", "ok.example.com"),
            id("dns", "a..b"),
            id("ip", "010.0.0.1"),
            id("dns", "x.*.com"),
        ]) else {
            panic!("rejected")
        };
        assert_eq!(subproblems.len(), 3);
        assert!(parse_identifiers(&[]).is_err());
        let patterns = vec!["*.svc.example.com".to_owned(), "api.example.com".to_owned()];
        let dns = |name: &str, wildcard| Identifier::Dns { name: name.into(), wildcard };
        assert!(allowed_by_patterns(&patterns, &dns("a.svc.example.com", false)));
        assert!(allowed_by_patterns(&patterns, &dns("a.b.svc.example.com", false)));
        assert!(allowed_by_patterns(&patterns, &dns("svc.example.com", true)));
        assert!(allowed_by_patterns(&patterns, &dns("api.example.com", false)));
        assert!(!allowed_by_patterns(&patterns, &dns("evilsvc.example.com", false)));
        assert!(!allowed_by_patterns(&patterns, &dns("svc.example.com", false)));
        assert!(!allowed_by_patterns(&patterns, &dns("example.com", true)));
        assert!(!allowed_by_patterns(&patterns, &Identifier::Ip("10.0.0.1".parse().unwrap())));
        assert!(allowed_by_patterns(&[], &Identifier::Ip("10.0.0.1".parse().unwrap())));
        assert_eq!(parse_identifiers(&[id("dns", "Upper.Example.com")]).unwrap()[0].wire().value, "upper.example.com");
    }
}
