//! Finalization and certificate download (RFC 8555 §7.4, §7.4.2): the CSR must name exactly the
//! order's identifiers and carry a key the profile accepts; the certificate is issued by the
//! issuer the profile is bound to and filed as a managed certificate (source ACME), so it shows
//! in the inventory, the CRL and OCSP like any other.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use certctl_pki::constraints::San;
use certctl_pki::csr::{ParsedCsr, parse_csr};
use certctl_pki::issue::{LeafRequest, PkiUrls, issue_leaf};
use certctl_store::{AcmeIssuance, AcmeOrder, IssuedVersion, OrderStatus, acme_actor, new_id};

use super::jws::unb64;
use super::order::{Identifier, owned_order, render_order};
use super::problem::{AcmeError, AcmeResult};
use super::request::{ByKid, Directory};
use crate::AppState;
use crate::issuance::{check_key, ekus, pki_base_url};

#[derive(Deserialize)]
struct Finalize {
    csr: String,
}

/// The names a CSR asks for: its SANs and its common name, each once.
fn requested_names(csr: &ParsedCsr) -> AcmeResult<BTreeSet<String>> {
    let mut names: BTreeSet<String> = csr.sans.iter().map(|s| s.to_string().to_ascii_lowercase()).collect();
    if let Some(cn) = csr.common_name.as_deref().filter(|cn| !cn.is_empty()) {
        match San::parse(cn) {
            Ok(san @ (San::Dns(_) | San::Ip(_))) => names.insert(san.to_string()),
            _ => {
                return Err(AcmeError::BadCsr(format!("the CSR's common name {cn:?} is not a DNS name or IP address")));
            }
        };
    }
    Ok(names)
}

/// Checks that the CSR names exactly the order's identifiers.
fn check_names(order: &AcmeOrder, ids: &[Identifier], csr: &ParsedCsr) -> AcmeResult<()> {
    let expected: BTreeSet<String> = ids.iter().map(|i| i.san().to_string()).collect();
    let requested = requested_names(csr)?;
    if requested == expected {
        return Ok(());
    }
    let extra: Vec<&String> = requested.difference(&expected).collect();
    let missing: Vec<&String> = expected.difference(&requested).collect();
    Err(AcmeError::BadCsr(format!(
        "the CSR's names must equal order {}'s identifiers; not in the order: {extra:?}; missing from the CSR: {missing:?}",
        order.id
    )))
}

/// `order/{id}/finalize`.
pub async fn finalize(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    let order = owned_order(&s, &req, params.get("order_id")).await?;
    let dir = &req.0.dir;
    let now = s.clock.now();
    match order.status {
        // Finalizing again returns the order as it is: a client retrying after a lost response
        // sees the certificate instead of an error.
        OrderStatus::Valid | OrderStatus::Processing => return Ok(render_order(dir, &order, StatusCode::OK)),
        OrderStatus::Ready if order.expires_at > now => {}
        OrderStatus::Ready => return Err(AcmeError::OrderNotReady("the order has expired".into())),
        OrderStatus::Pending => {
            return Err(AcmeError::OrderNotReady("the order's authorizations are not all valid yet".into()));
        }
        OrderStatus::Invalid => return Err(AcmeError::OrderNotReady("the order is invalid".into())),
    }
    let body: Finalize = req.0.json()?;
    let der = unb64("csr", &body.csr)?;
    let csr = parse_csr(&der).map_err(|e| AcmeError::BadCsr(e.to_string()))?;
    let ids = order
        .identifiers
        .iter()
        .map(Identifier::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|p| AcmeError::Internal(format!("stored identifier does not parse: {}", p.detail)))?;
    check_names(&order, &ids, &csr)?;
    check_key(Some(&dir.profile), csr.key).map_err(|e| AcmeError::BadCsr(e.to_string()))?;
    // The local CA signs within the request, so the order goes from `ready` to `valid` in the
    // transaction that files the certificate; no client ever waits on `processing`.
    match issue(&s, dir, &order, &ids, &csr, now).await {
        Ok(Some(done)) => Ok(render_order(dir, &done, StatusCode::OK)),
        Ok(None) => {
            // Another finalize got there first; its outcome is the answer.
            let current = owned_order(&s, &req, Some(&order.id)).await?;
            Ok(render_order(dir, &current, StatusCode::OK))
        }
        Err(e) => {
            let problem = e.to_json();
            if let Err(store) = s
                .store
                .transition_acme_order(&order.id, &[OrderStatus::Ready], OrderStatus::Invalid, Some(&problem), now)
                .await
            {
                tracing::error!(order_id = %order.id, error = %store, "cannot mark the ACME order invalid");
            }
            Err(e)
        }
    }
}

/// Signs the certificate and files it; the order ends `valid`. `None` when another finalize
/// filed its certificate first.
async fn issue(
    s: &AppState,
    dir: &Directory,
    order: &AcmeOrder,
    ids: &[Identifier],
    csr: &ParsedCsr,
    now: OffsetDateTime,
) -> AcmeResult<Option<AcmeOrder>> {
    let started = std::time::Instant::now();
    let signer = s.engine.authorities.signer(s, &dir.binding.issuer_id).await?;
    let mut validity = Duration::days(signer.config.validity_days);
    if dir.profile.max_ttl_seconds > 0 {
        validity = validity.min(Duration::seconds(dir.profile.max_ttl_seconds));
    }
    if let Some(not_after) = order.not_after {
        validity = validity.min(not_after - now);
    }
    let sans: Vec<San> = ids.iter().map(Identifier::san).collect();
    // The common name is the CSR's when it has one, else the first DNS name; addresses and
    // names longer than a CN allows leave it empty (the SANs are what clients check).
    let common_name = csr
        .common_name
        .clone()
        .filter(|cn| !cn.is_empty())
        .or_else(|| sans.iter().find_map(|s| s.as_dns().map(str::to_owned)))
        .filter(|cn| cn.chars().count() <= 64)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let base = pki_base_url(s);
    let ca_id = signer.ca.record.id.clone();
    let urls = PkiUrls {
        crl: Some(format!("{base}/.well-known/pki/crl/{ca_id}")),
        ocsp: Some(format!("{base}/.well-known/pki/ocsp/{ca_id}")),
        ca_issuers: Some(format!("{base}/.well-known/pki/ca/{ca_id}")),
    };
    let ekus = ekus(Some(&dir.profile));
    let leaf = LeafRequest {
        public_key_der: &csr.public_key_der,
        common_name: &common_name,
        sans: &sans,
        ekus: &ekus,
        must_staple: dir.profile.must_staple,
        validity,
        urls: &urls,
    };
    let issued = issue_leaf(&signer.ca.ca, &leaf, now);
    let outcome = if issued.is_ok() { "success" } else { "failure" };
    s.metrics.issuance(certctl_api::IssuerType::GenericCa.as_str(), outcome, started.elapsed());
    let issued = issued.map_err(|e| match e {
        certctl_pki::PkiError::Constraint(m) | certctl_pki::PkiError::Policy(m) => AcmeError::RejectedIdentifier {
            detail: format!("the issuing CA may not issue for these names: {m}"),
            subproblems: Vec::new(),
        },
        other => AcmeError::Internal(other.to_string()),
    })?;
    let version = IssuedVersion {
        id: new_id("certver"),
        certificate_id: String::new(),
        serial_number: issued.serial_hex.clone(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        fingerprint_sha256: issued.fingerprint_sha256.clone(),
        pem_chain: format!("{}{}", issued.pem, signer.ca.ca.chain_pem()),
        csr_pem: Some(pem_csr(&csr.der)),
        key_algorithm: issued.key.family().to_owned(),
        key_size: i64::from(issued.key.size_bits()),
        issuer_ca_id: Some(ca_id),
        sealed_private_key: None,
    };
    let certificate_id = new_id("cert");
    let filing = AcmeIssuance {
        order_id: order.id.clone(),
        version: IssuedVersion { certificate_id: certificate_id.clone(), ..version },
        certificate_id,
        name: format!("acme-{}", order.id),
        common_name: if common_name.is_empty() { sans[0].to_string() } else { common_name },
        sans: sans.iter().map(San::to_string).collect(),
        binding: dir.binding.clone(),
    };
    let filed_certificate = filing.certificate_id.clone();
    if !s.acme.orders.file(s, filing, acme_actor(&order.account_id)).await? {
        return Ok(None);
    }
    // The order as filed: what finalize read, now valid with its certificate.
    Ok(Some(AcmeOrder { status: OrderStatus::Valid, certificate_id: Some(filed_certificate), ..order.clone() }))
}

fn pem_csr(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE REQUEST-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE REQUEST-----\n");
    out
}

/// `cert/{order_id}`: the PEM chain of the order's certificate, for the owning account.
pub async fn certificate(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    download(&s, &params, &req, 0).await
}

/// `cert/{order_id}/{n}`: alternate chain `n` (RFC 8555 §7.4.2), as the default chain's
/// `Link rel="alternate"` headers list them.
pub async fn alternate(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    req: ByKid,
) -> AcmeResult<Response> {
    let n = params
        .get("n")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| AcmeError::NotFound("no such alternate chain".into()))?;
    download(&s, &params, &req, n).await
}

/// The PEM blocks of a chain, in order.
fn pem_blocks(chain: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in chain.lines() {
        if line.starts_with("-----BEGIN ") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

fn self_signed(pem: &str) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, block)) = x509_parser::pem::parse_x509_pem(pem.as_bytes()) else { return false };
    X509Certificate::from_der(&block.contents).is_ok_and(|(_, c)| c.subject() == c.issuer())
}

/// Every chain the certificate can be served with: as issued (leaf, intermediates, root), and,
/// when an intermediate sits below a root, without the root (which relying parties already
/// hold).
fn chains(stored: &str) -> Vec<String> {
    let blocks = pem_blocks(stored);
    let mut out = vec![stored.to_owned()];
    if blocks.len() >= 3 && blocks.last().is_some_and(|root| self_signed(root)) {
        out.push(blocks[..blocks.len() - 1].concat());
    }
    out
}

async fn download(s: &AppState, params: &HashMap<String, String>, req: &ByKid, n: usize) -> AcmeResult<Response> {
    req.0.must_be_post_as_get()?;
    let order = owned_order(s, req, params.get("order_id")).await?;
    let missing = || AcmeError::NotFound("the order has no certificate".into());
    let certificate_id = order.certificate_id.as_deref().ok_or_else(missing)?;
    let (stored, ca_id) = s.store.acme_certificate_download(certificate_id).await?.ok_or_else(missing)?;
    let chains = chains(&stored);
    let chain = chains.get(n).cloned().ok_or_else(|| AcmeError::NotFound("no such alternate chain".into()))?;
    let mut response = (StatusCode::OK, chain).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pem-certificate-chain"));
    // The issuer's certificate, served by the PKI endpoints as application/pkix-cert.
    if let Some(ca_id) = ca_id
        && let Ok(v) = HeaderValue::from_str(&format!("<{}/.well-known/pki/ca/{ca_id}>;rel=\"up\"", pki_base_url(s)))
    {
        headers.append(header::LINK, v);
    }
    let base = req.0.dir.url(&format!("cert/{}", order.id));
    for i in (0..chains.len()).filter(|i| *i != n) {
        let url = if i == 0 { base.clone() } else { format!("{base}/{i}") };
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>;rel=\"alternate\"")) {
            headers.append(header::LINK, v);
        }
    }
    Ok(response)
}
