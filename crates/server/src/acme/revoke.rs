//! Revocation (RFC 8555 §7.6): by the account that ordered the certificate (`kid`) or by the
//! certificate's own key (`jwk`), with an RFC 5280 reason; the revocation reaches the CRL and
//! OCSP like any other.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use certctl_pki::revocation::RevocationReason;
use certctl_pki::serial::serial_hex;
use certctl_store::acme_actor;

use super::jws::unb64;
use super::problem::{AcmeError, AcmeResult};
use super::request::ByEither;
use crate::AppState;

#[derive(Deserialize)]
struct Revoke {
    certificate: String,
    #[serde(default)]
    reason: Option<u8>,
}

/// The RFC 5280 CRLReason a code names; 7 is unassigned and 8 (removeFromCRL) is not a
/// revocation.
fn reason(code: Option<u8>) -> AcmeResult<RevocationReason> {
    let code = code.unwrap_or(0);
    let all = RevocationReason::ALL;
    match code {
        0..=6 => Ok(all[code as usize]),
        9 => Ok(RevocationReason::PrivilegeWithdrawn),
        10 => Ok(RevocationReason::AaCompromise),
        other => Err(AcmeError::BadRevocationReason(format!("revocation reason {other} is not accepted"))),
    }
}

/// `revoke-cert`.
pub async fn revoke(State(s): State<AppState>, ByEither(req): ByEither) -> AcmeResult<Response> {
    let body: Revoke = req.json()?;
    let reason = reason(body.reason)?;
    let der = unb64("certificate", &body.certificate)?;
    let (rest, cert) = X509Certificate::from_der(&der)
        .map_err(|e| AcmeError::Malformed(format!("certificate does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(AcmeError::Malformed("trailing bytes after the certificate".into()));
    }
    let serial = serial_hex(cert.raw_serial());
    let unknown = || AcmeError::NotFound("this server did not issue that certificate".into());
    let issued = s.store.issued_by_serial(&serial).await?.ok_or_else(unknown)?;
    // The presented certificate must be the stored one byte for byte: a look-alike with the
    // same serial and the requester's own key must not authorize anything.
    let fingerprint = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der));
    if issued.fingerprint_sha256 != fingerprint {
        return Err(unknown());
    }
    let actor = match &req.account {
        Some(account) => {
            if !s.store.acme_account_owns_certificate(&account.id, &issued.certificate_id).await? {
                return Err(AcmeError::Unauthorized("the account did not order this certificate".into()));
            }
            acme_actor(&account.id)
        }
        None => {
            if !req.jwk.matches_spki(cert.public_key()) {
                return Err(AcmeError::Unauthorized("the request is not signed by the certificate's key".into()));
            }
            certctl_store::Actor { name: "acme:certificate-key".into(), kind: certctl_api::ActorType::User }
        }
    };
    if issued.revoked {
        return Err(AcmeError::AlreadyRevoked("the certificate is already revoked".into()));
    }
    let current = s.store.current_version(&issued.certificate_id).await?;
    if current.is_none_or(|v| v.version.serial_number != serial) {
        return Err(AcmeError::Malformed(
            "the certificate is not the current version of its managed certificate; revoke it through the API".into(),
        ));
    }
    crate::revocation::revoke(&s, &issued.certificate_id, Some(reason.name()), &actor).await.map_err(|e| match e {
        crate::error::ApiError::Conflict(m) => AcmeError::AlreadyRevoked(m),
        other => other.into(),
    })?;
    Ok(StatusCode::OK.into_response())
}
