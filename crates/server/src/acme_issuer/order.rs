//! One ACME issuance: order the certificate's names, answer each authorization's challenge,
//! finalize with the CSR, download the chain, and check that it certifies the requested key.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus, RetryPolicy};
use x509_parser::prelude::{FromDer, X509Certificate};

use certctl_api::ManagedCertificate;
use certctl_pki::constraints::San;
use certctl_pki::issue::IssuedCert;
use certctl_pki::keys::{KeySpec, PrivateKey};

use super::config::{AcmeIssuerConfig, Challenge, DnsHooks};
use super::dns01::{self, TxtRecord};
use super::http01::{Published, Responder};
use super::{account, load_config, upstream};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::local_ca::pki_error;

/// How long the CA may take to validate every authorization.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the CA may take to issue after finalization.
const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(120);

fn polling(timeout: Duration) -> RetryPolicy {
    RetryPolicy::new().initial_delay(Duration::from_millis(250)).backoff(1.5).timeout(timeout)
}

/// What the certificate is issued for.
pub enum CsrSource<'a> {
    /// A server-generated key; certctl builds and signs the CSR.
    Key(&'a PrivateKey),
    /// An agent's CSR, already parsed and checked against the certificate's names.
    Csr { der: &'a [u8], public_key_der: &'a [u8], key: KeySpec },
}

/// The challenge material published for one order; dropping it withdraws the http-01 tokens.
struct Published01 {
    http: Vec<Published>,
    dns: Vec<TxtRecord>,
}

fn identifiers(names: &[San]) -> ApiResult<Vec<Identifier>> {
    names
        .iter()
        .map(|n| match n {
            San::Dns(d) => Ok(Identifier::Dns(d.clone())),
            San::Ip(ip) => Ok(Identifier::Ip(*ip)),
            other => Err(ApiError::Unprocessable(format!(
                "sans: '{other}' cannot be ordered from an ACME CA, which validates DNS names and IP addresses only"
            ))),
        })
        .collect()
}

fn build_csr(cert: &ManagedCertificate, names: &[San], key: &PrivateKey) -> ApiResult<Vec<u8>> {
    let mut params = rcgen::CertificateParams::default();
    let mut sans = Vec::with_capacity(names.len());
    for name in names {
        sans.push(match name {
            San::Dns(d) => rcgen::SanType::DnsName(
                d.clone().try_into().map_err(|e| ApiError::Unprocessable(format!("sans: '{d}': {e}")))?,
            ),
            San::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            other => return Err(ApiError::Unprocessable(format!("sans: '{other}' cannot be ordered over ACME"))),
        });
    }
    params.subject_alt_names = sans;
    params.distinguished_name = rcgen::DistinguishedName::new();
    // CAs take the common name only when it is one of the names ordered.
    if names.iter().any(|n| n.to_string().eq_ignore_ascii_case(&cert.common_name)) {
        params.distinguished_name.push(rcgen::DnType::CommonName, cert.common_name.clone());
    }
    let pair = key.key_pair().map_err(pki_error)?;
    let csr = params
        .serialize_request(&pair)
        .map_err(|e| ApiError::Internal(format!("cannot build the CSR for certificate '{}': {e}", cert.id)))?;
    Ok(csr.der().to_vec())
}

/// Orders the certificate from the issuer's CA; returns the leaf and the chain above it.
pub async fn issue(
    s: &AppState,
    cert: &ManagedCertificate,
    names: &[San],
    source: CsrSource<'_>,
) -> ApiResult<(IssuedCert, String)> {
    let config = load_config(s, &cert.issuer_id).await?;
    let directory = config.directory_url.as_str().to_owned();
    let (csr_der, public_key_der, key) = match source {
        CsrSource::Key(k) => (build_csr(cert, names, k)?, k.public_key_der(), k.spec()),
        CsrSource::Csr { der, public_key_der, key } => (der.to_vec(), public_key_der.to_vec(), key),
    };
    let identifiers = identifiers(names)?;
    let account = account::account(s, &cert.issuer_id, &config).await?;
    let mut new_order = NewOrder::new(&identifiers);
    if let Some(profile) = &config.profile {
        new_order = new_order.profile(profile);
    }
    let mut order = account.new_order(&new_order).await.map_err(|e| upstream(&directory, "new-order", &e))?;
    let responder = match &config.challenge {
        Challenge::Http01 { listen } => Some(s.engine.acme_client.responders.acquire(*listen).await?),
        Challenge::Dns01(_) => None,
    };
    let mut published = Published01 { http: Vec::new(), dns: Vec::new() };
    let result = validate_and_finalize(&config, &mut order, responder.as_ref(), &mut published, &csr_der).await;
    // Tokens are withdrawn and TXT records removed whatever the outcome.
    drop(published.http);
    drop(responder);
    if let Challenge::Dns01(hooks) = &config.challenge {
        cleanup(hooks, &published.dns).await;
    }
    let chain_pem = result.map_err(|e| match e {
        Failure::Acme(step, e) => upstream(&directory, step, &e),
        Failure::Local(e) => e,
    })?;
    let issued = leaf(&chain_pem, &public_key_der, key)?;
    let (_, rest) = certctl_pki::export::split_pem_chain(&chain_pem).map_err(pki_error)?;
    super::renewal_info::record_renewal_window(s, &account, &directory, &cert.id, &issued.der, &issued.serial_hex)
        .await?;
    Ok((issued, rest))
}

enum Failure {
    Acme(&'static str, instant_acme::Error),
    Local(ApiError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Local(e)
    }
}

fn acme(step: &'static str) -> impl FnOnce(instant_acme::Error) -> Failure {
    move |e| Failure::Acme(step, e)
}

async fn validate_and_finalize(
    config: &AcmeIssuerConfig,
    order: &mut Order,
    responder: Option<&Arc<Responder>>,
    published: &mut Published01,
    csr_der: &[u8],
) -> Result<String, Failure> {
    if order.state().status == OrderStatus::Pending {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(acme("fetching an authorization"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(Failure::Local(ApiError::Upstream(format!(
                        "ACME CA {}: authorization for {} is {other:?}",
                        config.directory_url,
                        authz.identifier()
                    ))));
                }
            }
            let (kind, wanted) = match &config.challenge {
                Challenge::Http01 { .. } => (ChallengeType::Http01, "http-01"),
                Challenge::Dns01(_) => (ChallengeType::Dns01, "dns-01"),
            };
            let name = authz.identifier().to_string();
            let mut challenge = authz.challenge(kind).ok_or_else(|| {
                Failure::Local(ApiError::Upstream(format!(
                    "ACME CA {}: it offers no {wanted} challenge for {name} (config.challenge)",
                    config.directory_url
                )))
            })?;
            let key_authorization = challenge.key_authorization();
            match (&config.challenge, responder) {
                (Challenge::Dns01(hooks), _) => {
                    let record = TxtRecord::new(&name, key_authorization.dns_value());
                    dns01::run("dns_present_command", &hooks.present, &record, hooks.timeout)
                        .await
                        .map_err(|e| Failure::Local(ApiError::Upstream(e)))?;
                    published.dns.push(record);
                    if !hooks.propagation.is_zero() {
                        tokio::time::sleep(hooks.propagation).await;
                    }
                }
                (Challenge::Http01 { .. }, Some(responder)) => {
                    published.http.push(Published::publish(responder, &challenge.token, key_authorization.as_str()));
                }
                (Challenge::Http01 { .. }, None) => {
                    return Err(Failure::Local(ApiError::Internal("http-01 without a responder".into())));
                }
            }
            challenge.set_ready().await.map_err(acme("answering a challenge"))?;
        }
    }
    let status = order.poll_ready(&polling(VALIDATION_TIMEOUT)).await.map_err(acme("validation"))?;
    if status != OrderStatus::Ready {
        return Err(Failure::Local(ApiError::Upstream(format!(
            "ACME CA {}: validation failed: {}",
            config.directory_url,
            invalid_reason(order).await
        ))));
    }
    order.finalize_csr(csr_der).await.map_err(acme("finalize"))?;
    order.poll_certificate(&polling(ISSUANCE_TIMEOUT)).await.map_err(acme("certificate download"))
}

/// Why an order went invalid, from its failed challenges.
async fn invalid_reason(order: &mut Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        if authz.refresh().await.is_err() {
            continue;
        }
        let name = authz.identifier().to_string();
        for c in &authz.challenges {
            if let Some(problem) = &c.error {
                reasons.push(format!("{name}: {problem}"));
            }
        }
    }
    if reasons.is_empty() { "the order became invalid".into() } else { reasons.join("; ") }
}

async fn cleanup(hooks: &DnsHooks, records: &[TxtRecord]) {
    let Some(argv) = &hooks.cleanup else { return };
    for record in records {
        if let Err(e) = dns01::run("dns_cleanup_command", argv, record, hooks.timeout).await {
            tracing::warn!(record = %record.name, error = %e, "dns-01 cleanup failed");
        }
    }
}

/// The leaf of a downloaded chain, after checking it certifies the key that was requested.
fn leaf(chain_pem: &str, public_key_der: &[u8], key: KeySpec) -> ApiResult<IssuedCert> {
    let ders = certctl_pki::export::pem_certs_to_der(chain_pem).map_err(pki_error)?;
    let der =
        ders.into_iter().next().ok_or_else(|| ApiError::Upstream("the ACME CA returned no certificate".into()))?;
    let (_, x509) = X509Certificate::from_der(&der)
        .map_err(|e| ApiError::Upstream(format!("the ACME CA returned a certificate that does not parse: {e}")))?;
    if x509.public_key().raw != public_key_der {
        return Err(ApiError::Upstream("the ACME CA returned a certificate for a different key".into()));
    }
    let facts = certctl_pki::inspect::inspect_der(&der).map_err(pki_error)?;
    Ok(IssuedCert {
        pem: facts.pem,
        serial_hex: facts.serial_hex,
        not_before: facts.not_before,
        not_after: facts.not_after,
        fingerprint_sha256: facts.fingerprint_sha256,
        key,
        der,
    })
}
