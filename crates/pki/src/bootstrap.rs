//! The bootstrap CA that issues certctl-server's own HTTPS certificate when the operator gives
//! none. It is separate from any issuer an operator configures: its only job is to let a fresh
//! install speak TLS, with a CA file clients can pin.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::PkiError;
use crate::serial::random_serial;

/// Validity of the bootstrap CA.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Validity of the server certificate; it is re-issued at start-up well before expiry.
const SERVER_VALIDITY: Duration = Duration::days(397);

/// A CA certificate and its key, both PEM.
#[derive(Debug, Clone)]
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Creates a new self-signed ECDSA P-256 CA valid from `now`.
pub fn create_ca(common_name: &str, now: OffsetDateTime) -> Result<PemPair, PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    let cert = params.self_signed(&key)?;
    Ok(PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Issues a TLS server certificate for `names` (DNS names or IP addresses) from `ca`.
pub fn issue_server_cert(ca: &PemPair, names: &[String], now: OffsetDateTime) -> Result<PemPair, PkiError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|e| PkiError::InvalidPem(format!("CA key: {e}")))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)
        .map_err(|e| PkiError::InvalidPem(format!("CA certificate: {e}")))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(names.first().map(String::as_str).unwrap_or("certctl-server"));
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::minutes(5);
    params.not_after = (now + SERVER_VALIDITY).min(ca_not_after(&ca.cert_pem)?);
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    let cert = params.signed_by(&key, &issuer)?;
    Ok(PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// The notAfter of the first certificate in `pem`.
pub fn not_after(pem: &str) -> Result<OffsetDateTime, PkiError> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| PkiError::InvalidPem(e.to_string()))?;
    let cert = parsed.parse_x509().map_err(|e| PkiError::InvalidPem(e.to_string()))?;
    Ok(cert.validity().not_after.to_datetime())
}

/// The DNS and IP subject alternative names of the first certificate in `pem`.
pub fn san_names(pem: &str) -> Result<Vec<String>, PkiError> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| PkiError::InvalidPem(e.to_string()))?;
    let cert = parsed.parse_x509().map_err(|e| PkiError::InvalidPem(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default()).to_string()),
                    16 => names.push(IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default()).to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(names)
}

fn ca_not_after(pem: &str) -> Result<OffsetDateTime, PkiError> {
    not_after(pem)
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "certctl");
    dn.push(DnType::CommonName, common_name);
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_server_cert_within_ca_validity() {
        let now = OffsetDateTime::now_utc();
        let ca = create_ca("certctl bootstrap CA", now).unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let leaf = issue_server_cert(&ca, &names, now).unwrap();
        assert!(not_after(&leaf.cert_pem).unwrap() <= not_after(&ca.cert_pem).unwrap());
        assert_eq!(san_names(&leaf.cert_pem).unwrap(), names);
    }
}
