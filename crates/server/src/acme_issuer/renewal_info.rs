//! ACME Renewal Information (RFC 9773): the renewal window the CA suggests for a certificate,
//! stored so the renewal scan starts the renewal inside it rather than at the policy's fixed
//! distance from expiry.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use instant_acme::{Account, CertificateIdentifier};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use certctl_store::RenewalWindow;

use super::upstream;
use crate::AppState;
use crate::error::ApiResult;

/// A uniformly random moment in `[start, end)`, as RFC 9773 §4.2 asks of clients so that
/// renewals of many certificates spread over the window.
fn pick(start: OffsetDateTime, end: OffsetDateTime) -> OffsetDateTime {
    let span = (end - start).whole_seconds();
    if span <= 0 {
        return start;
    }
    let mut bytes = [0u8; 8];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return start;
    }
    let offset = u64::from_le_bytes(bytes) % span as u64;
    start + time::Duration::seconds(offset as i64)
}

/// Asks the CA for the renewal window of a just-issued certificate and stores it; when the CA
/// offers no ARI (or cannot answer now) the certificate's stored window is dropped, so an
/// earlier version's window never triggers a renewal of this one.
pub async fn record_renewal_window(
    s: &AppState,
    account: &Account,
    directory: &str,
    certificate_id: &str,
    leaf_der: &[u8],
    serial_hex: &str,
) -> ApiResult<Option<RenewalWindow>> {
    let der = CertificateDer::from(leaf_der);
    let answer = match CertificateIdentifier::try_from(&der) {
        Ok(id) => match account.renewal_info(&id).await {
            Ok((info, _)) => Some(info.suggested_window),
            Err(instant_acme::Error::Unsupported(_)) => None,
            Err(e) => {
                tracing::warn!(certificate_id, error = %upstream(directory, "renewal-info", &e), "no ARI window");
                None
            }
        },
        Err(e) => {
            tracing::warn!(certificate_id, error = %e, "the certificate has no ARI identifier");
            None
        }
    };
    let Some(window) = answer else {
        s.store.clear_renewal_window(certificate_id).await?;
        return Ok(None);
    };
    let window = RenewalWindow {
        certificate_id: certificate_id.to_owned(),
        serial_number: serial_hex.to_owned(),
        start: window.start,
        end: window.end,
        renew_at: pick(window.start, window.end),
        checked_at: s.clock.now(),
    };
    s.store.put_renewal_window(&window).await?;
    Ok(Some(window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pick_falls_inside_the_window() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let end = start + time::Duration::days(2);
        for _ in 0..100 {
            let at = pick(start, end);
            assert!(start <= at && at < end, "{at}");
        }
        assert_eq!(pick(end, start), end, "an inverted window starts at once");
    }
}
