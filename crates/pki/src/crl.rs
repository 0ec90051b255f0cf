//! Certificate revocation lists (RFC 5280 §5): a full v2 CRL signed by the issuing CA.

use rcgen::{CertificateRevocationListParams, Issuer, KeyIdMethod, RevokedCertParams, SerialNumber};
use time::{OffsetDateTime, UtcOffset};
use x509_parser::extensions::ParsedExtension;

use crate::revocation::{RevocationReason, load_ca};
use crate::{PkiError, SigningCa};

/// One revoked certificate as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The serial number as a big-endian magnitude (leading zero bytes are allowed).
    pub serial: Vec<u8>,
    pub revoked_at: OffsetDateTime,
    pub reason: RevocationReason,
}

/// Builds and signs a DER CRL v2 carrying the authority key identifier, the CRL number, this and
/// next update, and a reason code per entry. The reason code extension is left out for
/// `Unspecified`, as RFC 5280 §5.3.1 recommends.
pub fn build_crl(
    ca: SigningCa,
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: &[RevokedEntry],
) -> Result<Vec<u8>, PkiError> {
    if next_update <= this_update {
        return Err(PkiError::InvalidParameter("CRL nextUpdate must be after thisUpdate".into()));
    }
    let (cert, key) = load_ca(ca)?;
    // The AKI must equal the CA's subject key identifier, whichever method computed it, or
    // relying parties that match CRLs to issuers by key identifier will not find the CA.
    let key_identifier_method = cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(KeyIdMethod::PreSpecified(id.0.to_vec())),
            _ => None,
        })
        .unwrap_or(KeyIdMethod::Sha256);

    let revoked_certs = entries.iter().map(revoked_params).collect::<Result<Vec<_>, _>>()?;
    let params = CertificateRevocationListParams {
        this_update: this_update.to_offset(UtcOffset::UTC),
        next_update: next_update.to_offset(UtcOffset::UTC),
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method,
    };
    let issuer = Issuer::from_ca_cert_der(&ca.cert_der.into(), key)
        .map_err(|e| PkiError::InvalidPem(format!("CA certificate: {e}")))?;
    let crl = params.signed_by(&issuer).map_err(|e| match e {
        rcgen::Error::IssuerNotCrlSigner => {
            PkiError::Policy("the CA certificate's key usage does not allow signing CRLs".into())
        }
        other => PkiError::Generate(other),
    })?;
    Ok(crl.der().to_vec())
}

fn revoked_params(entry: &RevokedEntry) -> Result<RevokedCertParams, PkiError> {
    let start = entry.serial.iter().position(|b| *b != 0).unwrap_or(entry.serial.len());
    let magnitude = &entry.serial[start..];
    if magnitude.is_empty() || magnitude.len() > 20 {
        return Err(PkiError::InvalidParameter(format!(
            "revoked serial must be 1 to 20 non-zero-led bytes, got {}",
            crate::serial::serial_hex(&entry.serial)
        )));
    }
    Ok(RevokedCertParams {
        serial_number: SerialNumber::from_slice(magnitude),
        revocation_time: entry.revoked_at.to_offset(UtcOffset::UTC),
        reason_code: match entry.reason {
            RevocationReason::Unspecified => None,
            other => Some(rcgen_reason(other)),
        },
        invalidity_date: None,
    })
}

fn rcgen_reason(reason: RevocationReason) -> rcgen::RevocationReason {
    use rcgen::RevocationReason as R;
    match reason {
        RevocationReason::Unspecified => R::Unspecified,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::revocation_list::CertificateRevocationList;

    use super::*;
    use crate::revocation::tests::{other_family_cas, test_ca};

    fn entry(serial: &[u8], reason: RevocationReason, at: OffsetDateTime) -> RevokedEntry {
        RevokedEntry { serial: serial.to_vec(), revoked_at: at, reason }
    }

    #[test]
    fn crl_carries_number_reasons_and_a_valid_signature() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (cert_der, key_der) = test_ca(now);
        let ca = SigningCa { cert_der: &cert_der, key_pkcs8_der: &key_der };
        let entries = [
            entry(&[0x00, 0x0a, 0xbc], RevocationReason::KeyCompromise, now - Duration::hours(1)),
            entry(&[0x80, 0x01], RevocationReason::Unspecified, now - Duration::hours(2)),
            entry(&[0x7f], RevocationReason::AaCompromise, now),
        ];
        let der = build_crl(ca, 4242, now, now + Duration::days(7), &entries).unwrap();

        let (rest, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert!(rest.is_empty());
        let (_, ca_cert) = X509Certificate::from_der(&cert_der).unwrap();
        crl.verify_signature(ca_cert.public_key()).unwrap();
        assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("4242".into()));
        assert_eq!(crl.issuer(), ca_cert.subject());
        assert_eq!(crl.last_update().timestamp(), now.unix_timestamp());
        assert_eq!(crl.next_update().unwrap().timestamp(), (now + Duration::days(7)).unix_timestamp());
        let revoked: Vec<_> = crl
            .iter_revoked_certificates()
            .map(|r| (r.raw_serial().to_vec(), r.reason_code().map(|(_, c)| c.0)))
            .collect();
        assert_eq!(revoked, [(vec![0x0a, 0xbc], Some(1)), (vec![0x00, 0x80, 0x01], None), (vec![0x7f], Some(10))]);
        let aki = crl
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|k| k.0.to_vec()),
                _ => None,
            })
            .unwrap();
        let ski = ca_cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski);
    }

    #[test]
    fn rsa_and_p384_cas_sign_verifiable_crls() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for (cert_der, key_der) in other_family_cas(now) {
            let ca = SigningCa { cert_der: &cert_der, key_pkcs8_der: &key_der };
            let entries = [entry(&[0x01], RevocationReason::CaCompromise, now)];
            let der = build_crl(ca, 1, now, now + Duration::days(1), &entries).unwrap();
            let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
            let (_, ca_cert) = X509Certificate::from_der(&cert_der).unwrap();
            crl.verify_signature(ca_cert.public_key()).unwrap();
            assert_eq!(crl.signature_algorithm.algorithm, ca_cert.signature_algorithm.algorithm);
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (cert_der, key_der) = test_ca(now);
        let ca = SigningCa { cert_der: &cert_der, key_pkcs8_der: &key_der };
        let later = now + Duration::days(1);
        assert!(matches!(build_crl(ca, 1, now, now, &[]), Err(PkiError::InvalidParameter(_))));
        for serial in [vec![], vec![0, 0], vec![1; 21]] {
            let e = [entry(&serial, RevocationReason::Superseded, now)];
            assert!(matches!(build_crl(ca, 1, now, later, &e), Err(PkiError::InvalidParameter(_))));
        }
        let (_, other_key) = test_ca(now);
        let mismatched = SigningCa { cert_der: &cert_der, key_pkcs8_der: &other_key };
        assert!(build_crl(mismatched, 1, now, later, &[]).is_err());
        // An empty CRL is still a valid CRL.
        assert!(build_crl(ca, 1, now, later, &[]).is_ok());
    }

    /// Prints how long 100,000 entries take; run with
    /// `cargo test --release -p certctl-pki crl::tests::large -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn large_crl_timing() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (cert_der, key_der) = test_ca(now);
        let ca = SigningCa { cert_der: &cert_der, key_pkcs8_der: &key_der };
        let entries: Vec<RevokedEntry> = (0..100_000u32)
            .map(|i| {
                let mut serial = [0x5au8; 20];
                serial[16..].copy_from_slice(&i.to_be_bytes());
                entry(&serial, RevocationReason::ALL[i as usize % 9], now - Duration::seconds(i64::from(i)))
            })
            .collect();
        let started = std::time::Instant::now();
        let der = build_crl(ca, 7, now, now + Duration::days(1), &entries).unwrap();
        let elapsed = started.elapsed();
        println!("100000-entry CRL: {} bytes in {elapsed:?}", der.len());
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 100_000);
    }
}
