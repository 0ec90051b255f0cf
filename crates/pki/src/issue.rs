//! End-entity certificate issuance. Every extension is built here from the request; nothing is
//! copied from a CSR.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use der::Encode;
use der::asn1::{Ia5String, ObjectIdentifier};
use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::PkiError;
use crate::ca::{BACKDATE, CaCert};
use crate::constraints::{San, check_names};
use crate::keys::{KeySpec, PrivateKey, encode_pem};
use crate::serial::{random_serial, serial_hex};

/// id-pe-tlsfeature (RFC 7633).
const OID_TLS_FEATURE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 24];
/// TLSFeatures ::= SEQUENCE { INTEGER 5 (status_request) }: the must-staple feature.
const MUST_STAPLE_VALUE: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];
/// id-pe-authorityInfoAccess.
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const OID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

/// Extended key usages a leaf can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eku {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
}

/// Where relying parties find revocation information and the issuer certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiUrls {
    pub crl: Option<String>,
    pub ocsp: Option<String>,
    pub ca_issuers: Option<String>,
}

/// What an end-entity certificate should contain.
#[derive(Debug, Clone, Copy)]
pub struct LeafRequest<'a> {
    /// SubjectPublicKeyInfo DER of the key to certify.
    pub public_key_der: &'a [u8],
    /// May be empty when `sans` is not.
    pub common_name: &'a str,
    pub sans: &'a [San],
    /// Empty means serverAuth.
    pub ekus: &'a [Eku],
    pub must_staple: bool,
    pub validity: Duration,
    pub urls: &'a PkiUrls,
}

/// An issued certificate and the facts recorded about it, read back from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub der: Vec<u8>,
    pub pem: String,
    pub serial_hex: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint_sha256: String,
    pub key: KeySpec,
}

impl Eku {
    /// Parses `serverAuth`, `clientAuth`, `codeSigning`, `emailProtection` or `timeStamping`
    /// (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "serverauth" => Ok(Self::ServerAuth),
            "clientauth" => Ok(Self::ClientAuth),
            "codesigning" => Ok(Self::CodeSigning),
            "emailprotection" => Ok(Self::EmailProtection),
            "timestamping" => Ok(Self::TimeStamping),
            _ => Err(PkiError::InvalidParameter(format!(
                "unknown extended key usage {s:?}; accepted: serverAuth, clientAuth, codeSigning, emailProtection, \
                 timeStamping"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerAuth => "serverAuth",
            Self::ClientAuth => "clientAuth",
            Self::CodeSigning => "codeSigning",
            Self::EmailProtection => "emailProtection",
            Self::TimeStamping => "timeStamping",
        }
    }

    fn purpose(self) -> ExtendedKeyUsagePurpose {
        match self {
            Self::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Self::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            Self::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            Self::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            Self::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
        }
    }
}

impl fmt::Display for Eku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Issues an end-entity certificate for `req.public_key_der` from `ca`, valid from `now` (less
/// a small backdate) until `now + validity` or the CA's notAfter, whichever comes first. Every
/// name is checked against the name constraints of the CA and all its ancestors first.
pub fn issue_leaf(ca: &CaCert, req: &LeafRequest<'_>, now: OffsetDateTime) -> Result<IssuedCert, PkiError> {
    ca.check_usable(now)?;
    if req.validity <= Duration::ZERO {
        return Err(PkiError::InvalidParameter("certificate validity must be positive".into()));
    }
    let key = KeySpec::from_spki_der(req.public_key_der)?;
    let public_key = SubjectPublicKeyInfo::from_der(req.public_key_der)
        .map_err(|e| PkiError::InvalidParameter(format!("public key not usable: {e}")))?;
    if req.common_name.chars().count() > 64 {
        return Err(PkiError::InvalidParameter("the common name is longer than 64 characters".into()));
    }
    if req.common_name.is_empty() && req.sans.is_empty() {
        return Err(PkiError::InvalidParameter(
            "a certificate needs a common name or a subject alternative name".into(),
        ));
    }

    let mut sans: Vec<San> = Vec::with_capacity(req.sans.len());
    for san in req.sans {
        if !sans.contains(san) {
            sans.push(san.clone());
        }
    }
    // Validators that fall back to the common name treat it as a host name, so a CN that reads
    // as one must satisfy the constraints too.
    let mut checked = sans.clone();
    if let Ok(cn @ (San::Dns(_) | San::Ip(_))) = San::parse(req.common_name) {
        checked.push(cn);
    }
    for constraints in ca.effective_constraints() {
        check_names(&constraints, &checked)?;
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if !req.common_name.is_empty() {
        params.distinguished_name.push(DnType::CommonName, req.common_name);
    }
    params.subject_alt_names = sans.iter().map(to_rcgen_san).collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if key.is_rsa() {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    let ekus = if req.ekus.is_empty() { &[Eku::ServerAuth][..] } else { req.ekus };
    for eku in ekus {
        params.insert_extended_key_usage(eku.purpose());
    }
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = (now + req.validity).min(ca.not_after());
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    if let Some(crl) = &req.urls.crl {
        params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![checked_url("CRL", crl)?] }];
    }
    if let Some(aia) = authority_info_access(req.urls)? {
        params.custom_extensions.push(aia);
    }
    if req.must_staple {
        params.custom_extensions.push(CustomExtension::from_oid_content(OID_TLS_FEATURE, MUST_STAPLE_VALUE.to_vec()));
    }

    let cert = params.signed_by(&public_key, ca.issuer())?;
    let der = cert.der().to_vec();
    ca.check_issued(&der)?;
    issued(der, key)
}

/// Generates a key of `spec` and issues a certificate for it, for requesters that do not make
/// their own key (EST server-side key generation, the dashboard).
#[allow(clippy::too_many_arguments)] // mirrors LeafRequest field by field; callers name each value
pub fn issue_with_new_key(
    ca: &CaCert,
    spec: KeySpec,
    common_name: &str,
    sans: &[San],
    ekus: &[Eku],
    must_staple: bool,
    validity: Duration,
    urls: &PkiUrls,
    now: OffsetDateTime,
) -> Result<(IssuedCert, PrivateKey), PkiError> {
    let key = PrivateKey::generate(spec)?;
    let public_key_der = key.public_key_der();
    let req = LeafRequest { public_key_der: &public_key_der, common_name, sans, ekus, must_staple, validity, urls };
    Ok((issue_leaf(ca, &req, now)?, key))
}

/// Reads back the recorded facts from an issued certificate.
fn issued(der: Vec<u8>, key: KeySpec) -> Result<IssuedCert, PkiError> {
    let (_, x509) = X509Certificate::from_der(&der).map_err(|e| PkiError::Encode(e.to_string()))?;
    let serial = serial_hex(x509.raw_serial());
    let not_before = x509.validity().not_before.to_datetime();
    let not_after = x509.validity().not_after.to_datetime();
    Ok(IssuedCert {
        pem: encode_pem("CERTIFICATE", &der),
        serial_hex: serial,
        not_before,
        not_after,
        fingerprint_sha256: hex::encode(digest(&SHA256, &der)),
        key,
        der,
    })
}

fn to_rcgen_san(san: &San) -> Result<SanType, PkiError> {
    let ia5 = |s: &str| {
        s.to_owned().try_into().map_err(|e| PkiError::InvalidParameter(format!("{s:?} is not an IA5 string: {e}")))
    };
    Ok(match san {
        San::Dns(d) => SanType::DnsName(ia5(d)?),
        San::Ip(ip) => SanType::IpAddress(*ip),
        San::Email(e) => SanType::Rfc822Name(ia5(e)?),
        San::Uri(u) => SanType::URI(ia5(u)?),
    })
}

/// Checks that a configured URL is an absolute ASCII URI.
fn checked_url(what: &str, url: &str) -> Result<String, PkiError> {
    match San::parse(url) {
        Ok(San::Uri(u)) => Ok(u),
        _ => Err(PkiError::InvalidParameter(format!("the {what} URL {url:?} is not an absolute URL"))),
    }
}

/// The authorityInfoAccess extension for the OCSP and caIssuers URLs, if either is set.
fn authority_info_access(urls: &PkiUrls) -> Result<Option<CustomExtension>, PkiError> {
    let mut access = Vec::new();
    for (what, method, url) in [("OCSP", OID_AD_OCSP, &urls.ocsp), ("CA issuers", OID_AD_CA_ISSUERS, &urls.ca_issuers)]
    {
        if let Some(url) = url {
            let uri = Ia5String::new(&checked_url(what, url)?).map_err(|e| PkiError::Encode(e.to_string()))?;
            access.push(AccessDescription {
                access_method: method,
                access_location: GeneralName::UniformResourceIdentifier(uri),
            });
        }
    }
    if access.is_empty() {
        return Ok(None);
    }
    let der = AuthorityInfoAccessSyntax(access).to_der().map_err(|e| PkiError::Encode(e.to_string()))?;
    Ok(Some(CustomExtension::from_oid_content(OID_AUTHORITY_INFO_ACCESS, der)))
}

#[cfg(test)]
mod tests {
    use x509_parser::extensions::{GeneralName as ParsedName, ParsedExtension};

    use super::*;
    use crate::ca::CaSpec;
    use crate::constraints::NameConstraintSet;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn root(constraints: NameConstraintSet) -> CaCert {
        let spec = CaSpec {
            common_name: "Test Root".into(),
            organization: Some("certctl tests".into()),
            key: KeySpec::EcdsaP256,
            validity: Duration::days(365),
            path_len: Some(1),
            name_constraints: constraints,
        };
        CaCert::create_root(&spec, now()).unwrap()
    }

    fn names(list: &[&str]) -> Vec<San> {
        list.iter().map(|n| San::parse(n).unwrap()).collect()
    }

    #[test]
    fn parses_ekus() {
        assert_eq!(Eku::parse("serverAuth").unwrap(), Eku::ServerAuth);
        assert_eq!(Eku::parse("CLIENTAUTH").unwrap(), Eku::ClientAuth);
        assert_eq!(Eku::parse("codeSigning").unwrap(), Eku::CodeSigning);
        assert_eq!(Eku::parse("emailProtection").unwrap(), Eku::EmailProtection);
        assert_eq!(Eku::parse("timeStamping").unwrap(), Eku::TimeStamping);
        assert!(matches!(Eku::parse("ocspSigning"), Err(PkiError::InvalidParameter(_))));
        for eku in [Eku::ServerAuth, Eku::TimeStamping] {
            assert_eq!(Eku::parse(eku.as_str()).unwrap(), eku);
        }
    }

    #[test]
    fn leaf_carries_the_requested_profile() {
        let ca = root(NameConstraintSet::default());
        let urls = PkiUrls {
            crl: Some("http://pki.example/crl/1.crl".into()),
            ocsp: Some("http://pki.example/ocsp".into()),
            ca_issuers: Some("http://pki.example/ca.crt".into()),
        };
        let sans = names(&["www.example.com", "192.0.2.1", "ops@example.com", "spiffe://example.com/web"]);
        let (cert, key) = issue_with_new_key(
            &ca,
            KeySpec::Rsa2048,
            "www.example.com",
            &sans,
            &[Eku::ServerAuth, Eku::ClientAuth],
            true,
            Duration::days(30),
            &urls,
            now(),
        )
        .unwrap();
        assert_eq!(cert.key, KeySpec::Rsa2048);
        assert_eq!(key.spec(), KeySpec::Rsa2048);
        assert_eq!(cert.not_before, now() - BACKDATE);
        assert_eq!(cert.not_after, now() + Duration::days(30));
        assert_eq!(cert.fingerprint_sha256.len(), 64);
        assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----"));

        let (_, x509) = X509Certificate::from_der(&cert.der).unwrap();
        assert_eq!(serial_hex(x509.raw_serial()), cert.serial_hex);
        assert!(x509.raw_serial().len() >= 19, "serial too short: {}", cert.serial_hex);
        assert_eq!(x509.public_key().raw, key.public_key_der().as_slice());
        assert_eq!(x509.subject().to_string(), "CN=www.example.com");
        assert_eq!(x509.issuer().as_raw(), X509Certificate::from_der(ca.cert_der()).unwrap().1.subject().as_raw());
        let ku = x509.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth && !eku.code_signing);
        assert!(!x509.is_ca());
        let san = x509.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(san.general_names.len(), 4);
        assert!(san.general_names.contains(&ParsedName::URI("spiffe://example.com/web")));
        assert!(san.general_names.contains(&ParsedName::IPAddress(&[192, 0, 2, 1])));

        let mut seen = (false, false, false, false, false);
        for ext in x509.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(_) => seen.0 = true,
                ParsedExtension::SubjectKeyIdentifier(_) => seen.1 = true,
                ParsedExtension::CRLDistributionPoints(points) => {
                    seen.2 = true;
                    assert!(format!("{points:?}").contains("http://pki.example/crl/1.crl"));
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    seen.3 = true;
                    let locations: Vec<String> = aia
                        .accessdescs
                        .iter()
                        .map(|d| format!("{} {:?}", d.access_method, d.access_location))
                        .collect();
                    assert_eq!(locations.len(), 2, "{locations:?}");
                    assert!(locations[0].starts_with("1.3.6.1.5.5.7.48.1 ") && locations[0].contains("/ocsp"));
                    assert!(locations[1].starts_with("1.3.6.1.5.5.7.48.2 ") && locations[1].contains("/ca.crt"));
                }
                _ if ext.oid.to_id_string() == "1.3.6.1.5.5.7.1.24" => {
                    seen.4 = true;
                    assert_eq!(ext.value, MUST_STAPLE_VALUE);
                }
                _ => {}
            }
        }
        assert_eq!(seen, (true, true, true, true, true), "AKI, SKI, CDP, AIA, must-staple");
    }

    #[test]
    fn defaults_to_server_auth_and_ecdsa_key_usage() {
        let ca = root(NameConstraintSet::default());
        let urls = PkiUrls::default();
        let (cert, _) = issue_with_new_key(
            &ca,
            KeySpec::EcdsaP256,
            "",
            &names(&["a.test"]),
            &[],
            false,
            Duration::days(1),
            &urls,
            now(),
        )
        .unwrap();
        let (_, x509) = X509Certificate::from_der(&cert.der).unwrap();
        let ku = x509.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_encipherment());
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        // A SAN-only certificate has an empty subject and a critical SAN extension.
        assert!(x509.subject().as_raw().len() <= 2);
        assert!(x509.subject_alternative_name().unwrap().unwrap().critical);
        assert!(x509.extensions().iter().all(|e| e.oid.to_id_string() != "1.3.6.1.5.5.7.1.24"));
        assert!(x509.extensions().iter().all(|e| e.oid.to_id_string() != "1.3.6.1.5.5.7.1.1"));
    }

    #[test]
    fn serials_are_fresh_even_for_the_same_key() {
        let ca = root(NameConstraintSet::default());
        let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let spki = key.public_key_der();
        let urls = PkiUrls::default();
        let sans = names(&["a.test"]);
        let req = LeafRequest {
            public_key_der: &spki,
            common_name: "a.test",
            sans: &sans,
            ekus: &[],
            must_staple: false,
            validity: Duration::days(1),
            urls: &urls,
        };
        let a = issue_leaf(&ca, &req, now()).unwrap();
        let b = issue_leaf(&ca, &req, now()).unwrap();
        assert_ne!(a.serial_hex, b.serial_hex);
        assert_ne!(a.fingerprint_sha256, b.fingerprint_sha256);
    }

    #[test]
    fn validity_is_capped_by_the_ca() {
        let ca = root(NameConstraintSet::default());
        let (cert, _) = issue_with_new_key(
            &ca,
            KeySpec::EcdsaP256,
            "long.test",
            &[],
            &[],
            false,
            Duration::days(5000),
            &PkiUrls::default(),
            now(),
        )
        .unwrap();
        assert_eq!(cert.not_after, ca.info().not_after);
    }

    #[test]
    fn refuses_names_outside_the_constraints() {
        let ca = root(NameConstraintSet {
            permitted_dns: vec!["example.com".into()],
            excluded_dns: vec!["bad.example.com".into()],
            ..Default::default()
        });
        let issue = |cn: &str, sans: &[&str]| {
            issue_with_new_key(
                &ca,
                KeySpec::EcdsaP256,
                cn,
                &names(sans),
                &[],
                false,
                Duration::days(1),
                &PkiUrls::default(),
                now(),
            )
        };
        assert!(issue("www.example.com", &["www.example.com", "10.0.0.1"]).is_ok());
        assert!(issue("Web Frontend", &["www.example.com"]).is_ok());
        for (cn, sans) in [("x", &["evil.com"][..]), ("x", &["a.bad.example.com"]), ("evil.com", &["www.example.com"])]
        {
            match issue(cn, sans) {
                Err(PkiError::Constraint(m)) => assert!(m.contains("evil.com") || m.contains("bad.example.com"), "{m}"),
                other => panic!("{cn} {sans:?}: expected Constraint, got {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_bad_requests() {
        let ca = root(NameConstraintSet::default());
        let urls = PkiUrls::default();
        let issue = |cn: &str, sans: &[San], validity: Duration, urls: &PkiUrls, at: OffsetDateTime| {
            issue_with_new_key(&ca, KeySpec::EcdsaP256, cn, sans, &[], false, validity, urls, at)
        };
        let sans = names(&["a.test"]);
        assert!(matches!(issue("", &[], Duration::days(1), &urls, now()), Err(PkiError::InvalidParameter(_))));
        assert!(matches!(issue("a.test", &sans, Duration::ZERO, &urls, now()), Err(PkiError::InvalidParameter(_))));
        let long_cn = "x".repeat(65);
        assert!(matches!(issue(&long_cn, &sans, Duration::days(1), &urls, now()), Err(PkiError::InvalidParameter(_))));
        let bad_url = PkiUrls { ocsp: Some("not a url".into()), ..Default::default() };
        assert!(matches!(
            issue("a.test", &sans, Duration::days(1), &bad_url, now()),
            Err(PkiError::InvalidParameter(_))
        ));
        let after_expiry = now() + Duration::days(366);
        assert!(matches!(issue("a.test", &sans, Duration::days(1), &urls, after_expiry), Err(PkiError::Policy(_))));
        let garbage = LeafRequest {
            public_key_der: b"\x30\x00",
            common_name: "a.test",
            sans: &sans,
            ekus: &[],
            must_staple: false,
            validity: Duration::days(1),
            urls: &urls,
        };
        assert!(issue_leaf(&ca, &garbage, now()).is_err());
    }
}
