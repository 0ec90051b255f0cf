//! Revocation reasons as RFC 5280 §5.3.1 defines them, shared by CRLs and OCSP responses.

use rcgen::{KeyPair, PublicKeyData};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{PkiError, SigningCa};

/// Why a certificate was revoked. `removeFromCRL` (8) is absent on purpose: it only exists in
/// delta CRLs, which certctl does not issue, and it is not a reason anyone revokes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in CRLReason code order.
    pub const ALL: [Self; 9] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// Parses the RFC 5280 camelCase name ("keyCompromise", "cACompromise") or its snake_case form
    /// ("key_compromise"). "caCompromise" and "aaCompromise" are accepted too because people
    /// rarely reproduce the RFC's capitalisation.
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        Self::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(s) || r.snake_name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|r| r.name()).collect();
            PkiError::InvalidParameter(format!(
                "unknown revocation reason {s:?}; expected one of {} (or their snake_case forms)",
                names.join(", ")
            ))
        })
    }

    /// The RFC 5280 ASN.1 name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The snake_case form of [`Self::name`], as JSON APIs and CLIs spell it.
    pub fn snake_name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "key_compromise",
            Self::CaCompromise => "ca_compromise",
            Self::AffiliationChanged => "affiliation_changed",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessation_of_operation",
            Self::CertificateHold => "certificate_hold",
            Self::PrivilegeWithdrawn => "privilege_withdrawn",
            Self::AaCompromise => "aa_compromise",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason for a CRLReason code; `None` for 7 (unassigned), 8 (removeFromCRL) and above 10.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a CA certificate and its key for signing CRLs, OCSP responder certificates and the
/// like, and refuses a key that does not belong to the certificate: anything it signed would fail
/// verification everywhere.
pub(crate) fn load_ca(ca: SigningCa<'_>) -> Result<(X509Certificate<'_>, KeyPair), PkiError> {
    let (_, cert) =
        X509Certificate::from_der(ca.cert_der).map_err(|e| PkiError::InvalidPem(format!("CA certificate: {e}")))?;
    let key = KeyPair::try_from(ca.key_pkcs8_der).map_err(|e| PkiError::InvalidPem(format!("CA key: {e}")))?;
    if key.der_bytes() != cert.public_key().subject_public_key.data.as_ref() {
        return Err(PkiError::InvalidParameter("the CA key does not match the CA certificate".into()));
    }
    Ok((cert, key))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh self-signed CA as (certificate DER, PKCS#8 key DER).
    pub(crate) fn test_ca(now: time::OffsetDateTime) -> (Vec<u8>, Vec<u8>) {
        let pair = crate::bootstrap::create_ca("certctl test CA", now).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(pair.cert_pem.as_bytes()).unwrap();
        let key = KeyPair::from_pem(&pair.key_pem).unwrap();
        (pem.contents, key.serialize_der())
    }

    /// A self-signed CA on a caller-chosen key (for RSA and P-384), as (certificate DER, PKCS#8).
    pub(crate) fn test_ca_with(key: KeyPair, now: time::OffsetDateTime) -> (Vec<u8>, Vec<u8>) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "certctl test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        let cert = params.self_signed(&key).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }

    /// RSA-2048 and P-384 CAs, the key families besides bootstrap's P-256.
    pub(crate) fn other_family_cas(now: time::OffsetDateTime) -> Vec<(Vec<u8>, Vec<u8>)> {
        let rsa = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        vec![test_ca_with(rsa, now), test_ca_with(p384, now)]
    }

    #[test]
    fn names_and_codes_round_trip() {
        let codes: Vec<u8> = RevocationReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 9, 10]);
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::parse(r.name()).unwrap(), r);
            assert_eq!(RevocationReason::parse(r.snake_name()).unwrap(), r);
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
        for code in [7, 8, 11, 255] {
            assert_eq!(RevocationReason::from_code(code), None);
        }
    }

    #[test]
    fn accepts_common_spellings() {
        use RevocationReason::*;
        assert_eq!(RevocationReason::parse("cACompromise").unwrap(), CaCompromise);
        assert_eq!(RevocationReason::parse("caCompromise").unwrap(), CaCompromise);
        assert_eq!(RevocationReason::parse("ca_compromise").unwrap(), CaCompromise);
        assert_eq!(RevocationReason::parse("aa_compromise").unwrap(), AaCompromise);
        assert_eq!(RevocationReason::parse("key_compromise").unwrap(), KeyCompromise);
        assert_eq!(RevocationReason::parse("cessation_of_operation").unwrap(), CessationOfOperation);
        assert_eq!(RevocationReason::parse("privilegeWithdrawn").unwrap(), PrivilegeWithdrawn);
        assert_eq!(CaCompromise.name(), "cACompromise");
    }

    #[test]
    fn rejects_unknown_names_listing_the_accepted_ones() {
        for bad in ["", "removeFromCRL", "key compromise", "compromised", "k_e_y_compromise", "KEY_COMPROMISE"] {
            match RevocationReason::parse(bad) {
                Err(PkiError::InvalidParameter(msg)) => {
                    assert!(msg.contains("keyCompromise") && msg.contains("aACompromise"), "{msg}")
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
