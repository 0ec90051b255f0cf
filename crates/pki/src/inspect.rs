//! Facts read from an existing certificate (one found on a host, or imported): the fields an
//! inventory records, derived from the certificate itself rather than taken from whoever sent it.

use std::net::IpAddr;

use aws_lc_rs::digest::{SHA256, digest};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::PkiError;
use crate::export::pem_certs_to_der;
use crate::serial::serial_hex;

/// What an inventory records about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint_sha256: String,
    /// Lower-case hex, no separators, no leading zero bytes.
    pub serial_hex: String,
    pub common_name: String,
    /// DNS names, IP addresses, e-mail addresses and URIs, in certificate order.
    pub sans: Vec<String>,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// `ECDSA`, `RSA`, `Ed25519` or the algorithm's OID.
    pub key_algorithm: String,
    pub key_size: u32,
    pub is_ca: bool,
    /// The certificate alone, re-encoded as PEM.
    pub pem: String,
}

/// Reads one DER certificate.
pub fn inspect_der(der: &[u8]) -> Result<CertificateFacts, PkiError> {
    let (rest, x509) = X509Certificate::from_der(der).map_err(|e| PkiError::InvalidPem(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidPem("trailing bytes after the certificate".into()));
    }
    let common_name =
        x509.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_owned();
    let mut sans = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) | GeneralName::RFC822Name(d) | GeneralName::URI(d) => {
                    sans.push((*d).to_owned())
                }
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => sans.push(IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default()).to_string()),
                    16 => sans.push(IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default()).to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let spki = x509.public_key();
    let (key_algorithm, key_size) = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.3.101.112" => ("Ed25519".to_owned(), 256),
        oid => match spki.parsed() {
            Ok(PublicKey::EC(ec)) => ("ECDSA".to_owned(), ec.key_size() as u32),
            Ok(PublicKey::RSA(rsa)) => ("RSA".to_owned(), rsa.key_size() as u32),
            _ => (oid.to_owned(), 0),
        },
    };
    let is_ca = matches!(x509.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    Ok(CertificateFacts {
        fingerprint_sha256: hex::encode(digest(&SHA256, der)),
        serial_hex: serial_hex(x509.raw_serial()),
        common_name,
        sans,
        subject_dn: x509.subject().to_string(),
        issuer_dn: x509.issuer().to_string(),
        not_before: x509.validity().not_before.to_datetime(),
        not_after: x509.validity().not_after.to_datetime(),
        key_algorithm,
        key_size,
        is_ca,
        pem: crate::keys::encode_pem("CERTIFICATE", der),
    })
}

/// Reads every certificate in a PEM text, in order.
pub fn inspect_pem(pem: &str) -> Result<Vec<CertificateFacts>, PkiError> {
    pem_certs_to_der(pem)?.iter().map(|der| inspect_der(der)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap;

    #[test]
    fn facts_come_from_the_certificate() {
        let now = time::macros::datetime!(2026-03-01 10:00 UTC);
        let ca = bootstrap::create_ca("Inspect Test CA", now).unwrap();
        let facts = inspect_pem(&ca.cert_pem).unwrap();
        assert_eq!(facts.len(), 1);
        let f = &facts[0];
        assert!(f.is_ca);
        assert_eq!(f.key_algorithm, "ECDSA");
        assert_eq!(f.fingerprint_sha256.len(), 64);
        assert!(f.not_after > now && f.not_before <= now);
        assert_eq!(f.subject_dn, f.issuer_dn, "self-signed");
        assert_eq!(f.common_name, "Inspect Test CA");
        let names = ["web.example.com".to_owned(), "127.0.0.1".to_owned()];
        let leaf = bootstrap::issue_server_cert(&ca, &names, now).unwrap();
        let both = inspect_pem(&format!("{}{}", leaf.cert_pem, ca.cert_pem)).unwrap();
        assert_eq!(both.len(), 2, "a chain reads as its certificates in order");
        assert!(!both[0].is_ca && both[1].is_ca);
        assert_eq!(both[0].sans, names);
        assert_eq!(both[0].issuer_dn, f.subject_dn);
        assert!(inspect_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(inspect_der(b"not der").is_err());
    }
}
