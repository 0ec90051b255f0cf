//! ACME Renewal Information (RFC 9773): `renewal-info/{certID}`, where the certID is
//! `base64url(AKI keyIdentifier) "." base64url(serial)`, answers a suggested renewal window
//! drawn from the certificate's renewal policy, or the one an admin's "renew now" set. Clients pick a random moment inside the window
//! (RFC 9773 §4.2), which spreads a fleet's renewals over it; a revoked certificate's window
//! is now.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use certctl_pki::serial::serial_hex;

use super::jws::unb64;
use super::problem::{AcmeError, AcmeResult};
use super::request::Directory;
use super::{resource, rfc3339};
use crate::AppState;

/// How often clients should ask again.
const RETRY_AFTER_SECONDS: u64 = 6 * 3600;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenewalInfo {
    suggested_window: Window,
}

#[derive(Serialize)]
struct Window {
    start: String,
    end: String,
}

/// The window for a certificate valid over `[not_before, not_after]` under a policy that
/// renews `window_days` before expiry: the first half of the policy's window when it fits in
/// the lifetime, else the span from two thirds to five sixths of the lifetime.
pub fn suggested_window(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    window_days: i64,
) -> (OffsetDateTime, OffsetDateTime) {
    let lifetime = not_after - not_before;
    let policy = Duration::days(window_days.max(0));
    if policy > Duration::ZERO && policy < lifetime {
        let start = not_after - policy;
        (start, start + policy / 2)
    } else {
        (not_before + lifetime * 2 / 3, not_before + lifetime * 5 / 6)
    }
}

/// The Subject Key Identifier of a PEM CA certificate.
fn subject_key_id(pem: &str) -> Option<Vec<u8>> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let (_, cert) = X509Certificate::from_der(&block.contents).ok()?;
    cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
        _ => None,
    })
}

/// `GET renewal-info/{certID}`.
pub async fn renewal_info(
    State(s): State<AppState>,
    _dir: Directory,
    Path(params): Path<HashMap<String, String>>,
) -> AcmeResult<Response> {
    let id = params.get("cert_id").map(String::as_str).unwrap_or_default();
    let (aki, serial) =
        id.split_once('.').ok_or_else(|| AcmeError::Malformed("the certID is not AKI.serial (RFC 9773)".into()))?;
    let (aki, serial) = (unb64("the certID's key identifier", aki)?, unb64("the certID's serial", serial)?);
    if aki.is_empty() || serial.is_empty() || serial.len() > 21 {
        return Err(AcmeError::Malformed("the certID's parts are empty or too long".into()));
    }
    let unknown = || AcmeError::NotFound("this server did not issue a certificate with that certID".into());
    let issued = s.store.issued_by_serial(&serial_hex(&serial)).await?.ok_or_else(unknown)?;
    let ca_id = issued.ca_id.as_deref().ok_or_else(unknown)?;
    let ca = s.store.ca(ca_id).await?;
    if subject_key_id(&ca.cert_pem).is_none_or(|ski| ski != aki) {
        return Err(unknown());
    }
    let now = s.clock.now();
    let (start, end) = if issued.revoked || issued.not_after <= now {
        (now, now + Duration::hours(1))
    } else if let Some(window) = s.store.acme_renewal_override(&issued.certificate_id).await? {
        window
    } else {
        let cert = s.store.certificate(&issued.certificate_id).await?;
        let policy = s.store.renewal_policy(&cert.renewal_policy_id).await?;
        suggested_window(issued.not_before, issued.not_after, policy.renewal_window_days)
    };
    let body = RenewalInfo { suggested_window: Window { start: rfc3339(start), end: rfc3339(end) } };
    let mut response = resource(StatusCode::OK, None, &body);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows() {
        let nb = datetime!(2026-01-01 00:00 UTC);
        let na = nb + Duration::days(90);
        assert_eq!(suggested_window(nb, na, 30), (na - Duration::days(30), na - Duration::days(15)));
        // A policy window wider than the lifetime falls back to the lifetime's last third.
        assert_eq!(suggested_window(nb, na, 365), (nb + Duration::days(60), nb + Duration::days(75)));
    }
}
