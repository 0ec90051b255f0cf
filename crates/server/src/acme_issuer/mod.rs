//! The ACME issuer connector: certctl as an ACME client of an external CA (Let's Encrypt, a
//! private ACME server, another certctl). It owns the account, places orders for a managed
//! certificate's names, answers their challenges, and revokes at the CA.

mod account;
pub mod config;
mod dns01;
mod http01;
mod order;
mod renewal_info;

use std::fmt::Display;

pub use account::check_directory;
pub use config::AcmeIssuerConfig;
pub use order::{CsrSource, issue};

use certctl_api::{ManagedCertificate, RevocationResult};
use certctl_pki::revocation::RevocationReason;
use certctl_store::{Actor, ExternalRevocation};
use instant_acme::RevocationRequest;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::local_ca::issuer_config;

/// Runtime state of the connector shared by every order in this process.
#[derive(Default)]
pub struct AcmeClient {
    responders: http01::Responders,
}

/// An error from the CA (or from reaching it), naming the CA and the step.
fn upstream(directory: &str, step: &str, e: &dyn Display) -> ApiError {
    ApiError::Upstream(format!("ACME CA {directory}: {step} failed: {e}"))
}

/// The parsed configuration of an ACME issuer.
pub async fn load_config(s: &AppState, issuer_id: &str) -> ApiResult<AcmeIssuerConfig> {
    AcmeIssuerConfig::parse(&issuer_config(s, issuer_id).await?, s.config.allow_loopback_targets)
}

fn reason_for(reason: RevocationReason) -> instant_acme::RevocationReason {
    use instant_acme::RevocationReason as R;
    match reason.code() {
        1 => R::KeyCompromise,
        2 => R::CaCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        6 => R::CertificateHold,
        8 => R::RemoveFromCrl,
        9 => R::PrivilegeWithdrawn,
        10 => R::AaCompromise,
        _ => R::Unspecified,
    }
}

/// Revokes a certificate's current version at its ACME CA (with the issuer's account), then
/// records the revocation locally.
pub async fn revoke(
    s: &AppState,
    cert: &ManagedCertificate,
    reason: RevocationReason,
    actor: &Actor,
) -> ApiResult<RevocationResult> {
    let version = s
        .store
        .current_version(&cert.id)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("certificate '{}' has no issued version to revoke", cert.id)))?;
    let leaf = certctl_pki::export::pem_certs_to_der(&version.version.pem_chain)
        .map_err(crate::local_ca::pki_error)?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal(format!("certificate '{}' has an empty chain", cert.id)))?;
    let config = load_config(s, &cert.issuer_id).await?;
    let account = account::account(s, &cert.issuer_id, &config).await?;
    let der = rustls::pki_types::CertificateDer::from(leaf);
    let request = RevocationRequest { certificate: &der, reason: Some(reason_for(reason)) };
    account.revoke(&request).await.map_err(|e| upstream(config.directory_url.as_str(), "revoke-cert", &e))?;
    let rev = ExternalRevocation {
        certificate_id: cert.id.clone(),
        issuer_id: cert.issuer_id.clone(),
        serial_number: version.version.serial_number.clone(),
        reason: reason.name().to_owned(),
    };
    let revoked_at = s.store.record_external_revocation(&rev, actor, s.clock.now()).await?;
    tracing::info!(certificate_id = %cert.id, serial = %rev.serial_number, "revoked at the ACME CA");
    Ok(RevocationResult {
        status: "revoked".into(),
        certificate_id: cert.id.clone(),
        serial_number: rev.serial_number,
        reason: rev.reason,
        revoked_at,
    })
}
