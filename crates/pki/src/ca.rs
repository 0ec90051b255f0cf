//! Issuing CAs: creating roots and subordinate CAs, loading an operator's CA certificate and key,
//! and the facts about a CA that issuance depends on (validity, path length, the name constraints
//! of the CA and every ancestor).

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, NameConstraints, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::constraints::{NameConstraintSet, check_subset, mask};
use crate::keys::{KeySpec, PrivateKey, encode_pem, pem_blocks};
use crate::serial::{random_serial, serial_hex};
use crate::{PkiError, SigningCa};

/// How far certificates are backdated, so a relying party whose clock runs a little slow accepts
/// them at once.
pub(crate) const BACKDATE: Duration = Duration::minutes(5);

/// What a new root or subordinate CA should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSpec {
    pub common_name: String,
    pub organization: Option<String>,
    /// ECDSA P-256/P-384 or RSA 2048–4096; Ed25519 CAs are refused because CRL and OCSP consumers
    /// rarely verify Ed25519 signatures.
    pub key: KeySpec,
    pub validity: Duration,
    /// The basicConstraints pathLenConstraint; `None` leaves the depth unlimited (roots) or takes
    /// the most the parent allows (subordinates).
    pub path_len: Option<u8>,
    pub name_constraints: NameConstraintSet,
}

/// A CA certificate, its private key and its ancestors.
#[derive(Clone)]
pub struct CaCert {
    cert_der: Vec<u8>,
    key: PrivateKey,
    /// Ancestors, nearest first, up to and including the root; empty for a root.
    chain_der: Vec<Vec<u8>>,
    info: CaInfo,
    /// Non-empty name constraints of this CA and every ancestor.
    effective: Vec<NameConstraintSet>,
    /// How many more CA certificates may follow this one in a path, after the path length
    /// constraints of this CA and every ancestor; `None` when unlimited.
    remaining_path_len: Option<u8>,
    /// The signer every issuance uses, built once: loading the key checks it against its public
    /// point (an elliptic-curve multiplication) and reading the certificate parses it, which
    /// together cost more than the signature itself.
    issuer: std::sync::Arc<Issuer<'static, KeyPair>>,
}

/// Facts about a CA certificate, as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInfo {
    pub subject: String,
    pub serial_hex: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub path_len: Option<u8>,
    pub name_constraints: NameConstraintSet,
    pub key: KeySpec,
}

/// What issuance needs from one parsed CA certificate.
struct ParsedCa {
    info: CaInfo,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    public_key: Vec<u8>,
}

impl CaSpec {
    /// Checks the spec and returns it with normalized name constraints.
    fn validated(&self) -> Result<Self, PkiError> {
        let cn = self.common_name.trim();
        if cn.is_empty() || cn.chars().count() > 64 {
            return Err(PkiError::InvalidParameter("a CA common name must have 1 to 64 characters".into()));
        }
        if self.organization.as_ref().is_some_and(|o| o.trim().is_empty() || o.chars().count() > 64) {
            return Err(PkiError::InvalidParameter("a CA organization must have 1 to 64 characters".into()));
        }
        if self.key == KeySpec::Ed25519 {
            return Err(PkiError::InvalidParameter(
                "Ed25519 is not accepted for CA keys; use ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072 or RSA-4096"
                    .into(),
            ));
        }
        if self.validity <= Duration::ZERO {
            return Err(PkiError::InvalidParameter("CA validity must be positive".into()));
        }
        Ok(Self {
            common_name: cn.to_owned(),
            organization: self.organization.as_ref().map(|o| o.trim().to_owned()),
            name_constraints: self.name_constraints.normalized()?,
            ..self.clone()
        })
    }

    fn distinguished_name(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        if let Some(org) = &self.organization {
            dn.push(DnType::OrganizationName, org.as_str());
        }
        dn.push(DnType::CommonName, self.common_name.as_str());
        dn
    }

    /// Certificate parameters common to roots and subordinates.
    fn params(&self, now: OffsetDateTime, not_after: OffsetDateTime) -> Result<CertificateParams, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = self.distinguished_name();
        params.is_ca = IsCa::Ca(match self.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        params.use_authority_key_identifier_extension = true;
        if !self.name_constraints.is_empty() {
            params.name_constraints = Some(to_rcgen_constraints(&self.name_constraints));
        }
        Ok(params)
    }
}

impl CaCert {
    /// Creates a self-signed root CA valid from `now`.
    pub fn create_root(spec: &CaSpec, now: OffsetDateTime) -> Result<Self, PkiError> {
        let spec = spec.validated()?;
        let key = PrivateKey::generate(spec.key)?;
        let key_pair = key.key_pair()?;
        let cert = spec.params(now, now + spec.validity)?.self_signed(&key_pair)?;
        Self::from_parts(cert.der().to_vec(), key, Vec::new())
    }

    /// Loads a CA from PEM: the first certificate is the CA, any following ones its ancestors,
    /// nearest first.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let mut certs = pem_blocks(cert_pem.as_bytes())?
            .into_iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| der);
        let cert_der = certs.next().ok_or_else(|| PkiError::InvalidPem("no CERTIFICATE block found".into()))?;
        let key = PrivateKey::from_pem(key_pem)?;
        Self::from_parts(cert_der, key, certs.collect())
    }

    /// Assembles a CA from stored parts, checking that the certificate is a CA certificate, that
    /// the key belongs to it, and that each chain certificate issued the one before it.
    pub fn from_parts(cert_der: Vec<u8>, key: PrivateKey, chain_der: Vec<Vec<u8>>) -> Result<Self, PkiError> {
        let own = parse_ca(&cert_der, "the CA certificate")?;
        if key.spec() == KeySpec::Ed25519 {
            return Err(PkiError::InvalidParameter("Ed25519 CA keys are not supported".into()));
        }
        let key_spki = key.public_key_der();
        let key_public = x509_parser::x509::SubjectPublicKeyInfo::from_der(&key_spki)
            .map(|(_, spki)| spki.subject_public_key.data.to_vec())
            .unwrap_or_default();
        if key.spec() != own.info.key || key_public != own.public_key {
            return Err(PkiError::InvalidPem(format!(
                "the private key ({}) does not match the public key of CA certificate {}",
                key.spec(),
                own.info.subject
            )));
        }

        let mut parsed = vec![own];
        for (i, der) in chain_der.iter().enumerate() {
            let ancestor = parse_ca(der, &format!("chain certificate {}", i + 1))?;
            let child = &parsed[parsed.len() - 1];
            let child_der = if i == 0 { &cert_der } else { &chain_der[i - 1] };
            if child.issuer_raw != ancestor.subject_raw || !signed_by(child_der, der) {
                return Err(PkiError::InvalidPem(format!(
                    "chain certificate {} ({}) did not issue {}",
                    i + 1,
                    ancestor.info.subject,
                    child.info.subject
                )));
            }
            parsed.push(ancestor);
        }

        // Building the issuer now surfaces subjects rcgen cannot reproduce when the CA is loaded
        // rather than at its first issuance.
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key.key_pair()?)
            .map_err(|e| PkiError::InvalidPem(format!("the CA certificate cannot be used for signing: {e}")))?;

        let remaining_path_len = parsed
            .iter()
            .enumerate()
            .filter_map(|(depth, ca)| ca.info.path_len.map(|n| i64::from(n) - depth as i64))
            .min()
            .map(|n| u8::try_from(n.max(0)).unwrap_or(u8::MAX));
        let effective = parsed.iter().map(|ca| ca.info.name_constraints.clone()).filter(|nc| !nc.is_empty()).collect();
        let info = parsed.swap_remove(0).info;
        Ok(Self { cert_der, key, chain_der, info, effective, remaining_path_len, issuer: std::sync::Arc::new(issuer) })
    }

    /// Issues a subordinate CA valid from `now`. Its path length must be below what this CA
    /// still allows, its name constraints must stay inside those of this CA and every ancestor,
    /// and its validity ends no later than this CA's.
    pub fn issue_child(&self, spec: &CaSpec, now: OffsetDateTime) -> Result<Self, PkiError> {
        let mut spec = spec.validated()?;
        spec.path_len = match (self.remaining_path_len, spec.path_len) {
            (Some(0), _) => {
                return Err(PkiError::Constraint(format!(
                    "CA {} has path length 0 and cannot issue subordinate CAs",
                    self.info.subject
                )));
            }
            (Some(left), Some(asked)) if asked >= left => {
                return Err(PkiError::Constraint(format!(
                    "a subordinate of CA {} must have a path length below {left}; {asked} was requested",
                    self.info.subject
                )));
            }
            (Some(left), None) => Some(left - 1),
            (_, asked) => asked,
        };
        for parent in &self.effective {
            check_subset(&spec.name_constraints, parent)?;
        }
        self.check_usable(now)?;
        if self.same_subject(&spec)? {
            return Err(PkiError::InvalidParameter(
                "a subordinate CA needs a subject different from its issuer's".into(),
            ));
        }

        let key = PrivateKey::generate(spec.key)?;
        let key_pair = key.key_pair()?;
        let params = spec.params(now, (now + spec.validity).min(self.not_after()))?;
        let cert = params.signed_by(&key_pair, self.issuer())?;
        self.check_issued(cert.der())?;
        let mut chain = Vec::with_capacity(self.chain_der.len() + 1);
        chain.push(self.cert_der.clone());
        chain.extend(self.chain_der.iter().cloned());
        Self::from_parts(cert.der().to_vec(), key, chain)
    }

    /// This CA as the signing functions take it.
    pub fn signing(&self) -> SigningCa<'_> {
        SigningCa { cert_der: &self.cert_der, key_pkcs8_der: self.key.pkcs8_der() }
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Ancestors, nearest first, up to and including the root.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    pub fn cert_pem(&self) -> String {
        encode_pem("CERTIFICATE", &self.cert_der)
    }

    /// This CA's certificate followed by its ancestors, nearest first.
    pub fn chain_pem(&self) -> String {
        std::iter::once(&self.cert_der).chain(&self.chain_der).map(|der| encode_pem("CERTIFICATE", der)).collect()
    }

    pub fn info(&self) -> CaInfo {
        self.info.clone()
    }

    /// The non-empty name constraints of this CA and of every ancestor; a name a certificate from
    /// this CA carries must satisfy all of them.
    pub fn effective_constraints(&self) -> Vec<NameConstraintSet> {
        self.effective.clone()
    }

    /// How many more CA certificates may follow this one, after every ancestor's path length
    /// constraint; `None` when unlimited.
    pub fn remaining_path_len(&self) -> Option<u8> {
        self.remaining_path_len
    }

    pub(crate) fn not_after(&self) -> OffsetDateTime {
        self.info.not_after
    }

    /// Refuses to sign with a CA that is not valid at `now`.
    pub(crate) fn check_usable(&self, now: OffsetDateTime) -> Result<(), PkiError> {
        if now >= self.info.not_after {
            return Err(PkiError::Policy(format!("CA {} expired at {}", self.info.subject, self.info.not_after)));
        }
        if now < self.info.not_before {
            return Err(PkiError::Policy(format!(
                "CA {} is not valid before {}",
                self.info.subject, self.info.not_before
            )));
        }
        Ok(())
    }

    /// The rcgen issuer for this CA.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Whether a spec would give a subordinate the same common name and organization as this CA,
    /// which would make it look self-issued to path building.
    fn same_subject(&self, spec: &CaSpec) -> Result<bool, PkiError> {
        let (_, x509) = X509Certificate::from_der(&self.cert_der)
            .map_err(|e| PkiError::InvalidPem(format!("CA certificate does not parse: {e}")))?;
        let subject = x509.subject();
        let cn = subject.iter_common_name().next().and_then(|a| a.as_str().ok());
        let org = subject.iter_organization().next().and_then(|a| a.as_str().ok());
        Ok(cn == Some(spec.common_name.as_str()) && org == spec.organization.as_deref())
    }

    /// Checks that an issued certificate names this CA's subject byte for byte, so path
    /// building matches it to this CA.
    pub(crate) fn check_issued(&self, der: &[u8]) -> Result<(), PkiError> {
        let issued = X509Certificate::from_der(der).map_err(|e| PkiError::Encode(e.to_string()))?.1;
        let ca = X509Certificate::from_der(&self.cert_der).map_err(|e| PkiError::Encode(e.to_string()))?.1;
        if issued.issuer().as_raw() != ca.subject().as_raw() {
            return Err(PkiError::Encode(format!(
                "the issued certificate's issuer does not reproduce the CA subject {} exactly",
                self.info.subject
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for CaCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCert")
            .field("info", &self.info)
            .field("key", &self.key)
            .field("chain_len", &self.chain_der.len())
            .finish()
    }
}

/// Parses a CA certificate; `what` names it in error messages.
fn parse_ca(der: &[u8], what: &str) -> Result<ParsedCa, PkiError> {
    let (rest, x509) =
        X509Certificate::from_der(der).map_err(|e| PkiError::InvalidPem(format!("{what} does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidPem(format!("{what} has trailing bytes")));
    }
    let subject = x509.subject().to_string();
    let bc = x509
        .basic_constraints()
        .map_err(|e| PkiError::InvalidPem(format!("{what}: basicConstraints: {e}")))?
        .map(|ext| ext.value.clone());
    let Some(bc) = bc.filter(|bc| bc.ca) else {
        return Err(PkiError::InvalidPem(format!("{what} ({subject}) is not a CA certificate")));
    };
    let ku = x509.key_usage().map_err(|e| PkiError::InvalidPem(format!("{what}: keyUsage: {e}")))?;
    if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
        return Err(PkiError::InvalidPem(format!("{what} ({subject}) may not sign certificates (no keyCertSign)")));
    }
    let key =
        KeySpec::from_spki(x509.public_key()).map_err(|e| PkiError::InvalidPem(format!("{what} ({subject}): {e}")))?;
    let name_constraints = constraints_from_cert(&x509).map_err(|e| PkiError::InvalidPem(format!("{what}: {e}")))?;
    Ok(ParsedCa {
        info: CaInfo {
            subject,
            serial_hex: serial_hex(x509.raw_serial()),
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            path_len: bc.path_len_constraint.map(|n| u8::try_from(n).unwrap_or(u8::MAX)),
            name_constraints,
            key,
        },
        subject_raw: x509.subject().as_raw().to_vec(),
        issuer_raw: x509.issuer().as_raw().to_vec(),
        public_key: x509.public_key().subject_public_key.data.to_vec(),
    })
}

/// Whether `issuer_der`'s key verifies the signature on `cert_der`.
fn signed_by(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, issuer))) = (X509Certificate::from_der(cert_der), X509Certificate::from_der(issuer_der))
    else {
        return false;
    };
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// The DNS, IP and email subtrees of a certificate's name constraints. Other subtree types
/// (directory names, URIs) are not modelled; relying parties still enforce them.
pub(crate) fn constraints_from_cert(x509: &X509Certificate<'_>) -> Result<NameConstraintSet, String> {
    let mut set = NameConstraintSet::default();
    let Some(nc) = x509.name_constraints().map_err(|e| format!("nameConstraints: {e}"))? else {
        return Ok(set);
    };
    let mut add = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>, permitted: bool| {
        for subtree in subtrees.iter().flatten() {
            match &subtree.base {
                GeneralName::DNSName(d) => {
                    let list = if permitted { &mut set.permitted_dns } else { &mut set.excluded_dns };
                    list.push(d.to_ascii_lowercase());
                }
                GeneralName::RFC822Name(e) => {
                    let list = if permitted { &mut set.permitted_email } else { &mut set.excluded_email };
                    list.push(e.to_string());
                }
                GeneralName::IPAddress(bytes) => {
                    let cidr = cidr_from_bytes(bytes).ok_or_else(|| "invalid IP address subtree".to_string())?;
                    let list = if permitted { &mut set.permitted_ip } else { &mut set.excluded_ip };
                    list.push(cidr);
                }
                _ => {}
            }
        }
        Ok::<(), String>(())
    };
    add(&nc.value.permitted_subtrees, true)?;
    add(&nc.value.excluded_subtrees, false)?;
    Ok(set)
}

/// Decodes an iPAddress subtree (address then mask) into address and prefix length. Masks with
/// gaps are refused.
fn cidr_from_bytes(bytes: &[u8]) -> Option<(IpAddr, u8)> {
    let (addr, mask_bytes) = bytes.split_at(bytes.len() / 2);
    let (addr, ones, zeros, width) = match (<[u8; 4]>::try_from(addr), <[u8; 16]>::try_from(addr)) {
        (Ok(v4), _) => {
            let m = u32::from_be_bytes(mask_bytes.try_into().ok()?);
            (IpAddr::from(v4), m.leading_ones(), m.trailing_zeros(), 32)
        }
        (_, Ok(v6)) => {
            let m = u128::from_be_bytes(mask_bytes.try_into().ok()?);
            (IpAddr::from(v6), m.leading_ones(), m.trailing_zeros(), 128)
        }
        _ => return None,
    };
    let prefix = u8::try_from(ones).ok()?;
    (ones + zeros == width || ones == width).then(|| (mask(addr, prefix), prefix))
}

fn to_rcgen_constraints(set: &NameConstraintSet) -> NameConstraints {
    let subtrees = |dns: &[String], ip: &[(IpAddr, u8)], email: &[String]| {
        dns.iter()
            .map(|d| GeneralSubtree::DnsName(d.clone()))
            .chain(
                ip.iter().map(|&(addr, prefix)| GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(addr, prefix))),
            )
            .chain(email.iter().map(|e| GeneralSubtree::Rfc822Name(e.clone())))
            .collect()
    };
    NameConstraints {
        permitted_subtrees: subtrees(&set.permitted_dns, &set.permitted_ip, &set.permitted_email),
        excluded_subtrees: subtrees(&set.excluded_dns, &set.excluded_ip, &set.excluded_email),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn spec(cn: &str, path_len: Option<u8>, validity_days: i64) -> CaSpec {
        CaSpec {
            common_name: cn.into(),
            organization: Some("certctl tests".into()),
            key: KeySpec::EcdsaP256,
            validity: Duration::days(validity_days),
            path_len,
            name_constraints: NameConstraintSet::default(),
        }
    }

    fn dns_constraints(permitted: &[&str], excluded: &[&str]) -> NameConstraintSet {
        NameConstraintSet {
            permitted_dns: permitted.iter().map(|s| s.to_string()).collect(),
            excluded_dns: excluded.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn root_has_the_requested_shape() {
        let mut s = spec("Test Root", Some(2), 3650);
        s.key = KeySpec::EcdsaP384;
        s.name_constraints = NameConstraintSet {
            permitted_dns: vec!["Example.com".into()],
            excluded_ip: vec![("10.9.0.0".parse().unwrap(), 16)],
            permitted_email: vec![".example.com".into()],
            ..Default::default()
        };
        let root = CaCert::create_root(&s, now()).unwrap();
        let info = root.info();
        assert_eq!(info.subject, "O=certctl tests, CN=Test Root");
        assert_eq!(info.key, KeySpec::EcdsaP384);
        assert_eq!(info.path_len, Some(2));
        assert_eq!(info.not_before, now() - BACKDATE);
        assert_eq!(info.not_after, now() + Duration::days(3650));
        assert!(info.serial_hex.len() >= 38, "{}", info.serial_hex);
        assert_eq!(info.name_constraints, s.name_constraints.normalized().unwrap());
        assert!(root.chain_der().is_empty());
        assert_eq!(root.effective_constraints(), vec![info.name_constraints.clone()]);

        let (_, x509) = X509Certificate::from_der(root.cert_der()).unwrap();
        assert_eq!(x509.subject().as_raw(), x509.issuer().as_raw());
        let ku = x509.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
        assert!(x509.basic_constraints().unwrap().unwrap().critical);
        assert!(x509.name_constraints().unwrap().unwrap().critical);
        let ski = x509
            .extensions()
            .iter()
            .any(|e| matches!(e.parsed_extension(), x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_)));
        assert!(ski);
        assert!(x509.verify_signature(None).is_ok());

        let signing = root.signing();
        assert_eq!(signing.cert_der, root.cert_der());
        assert_eq!(signing.key_pkcs8_der, root.key().pkcs8_der());
    }

    #[test]
    fn refuses_bad_specs() {
        let mut ed = spec("Ed Root", None, 10);
        ed.key = KeySpec::Ed25519;
        assert!(matches!(CaCert::create_root(&ed, now()), Err(PkiError::InvalidParameter(m)) if m.contains("Ed25519")));
        assert!(matches!(CaCert::create_root(&spec("", None, 10), now()), Err(PkiError::InvalidParameter(_))));
        assert!(matches!(CaCert::create_root(&spec("R", None, 0), now()), Err(PkiError::InvalidParameter(_))));
        let mut bad_nc = spec("R", None, 10);
        bad_nc.name_constraints = dns_constraints(&["not a domain"], &[]);
        assert!(matches!(CaCert::create_root(&bad_nc, now()), Err(PkiError::InvalidParameter(_))));
    }

    #[test]
    fn loads_what_it_writes_and_checks_the_key_and_chain() {
        let root = CaCert::create_root(&spec("Root", Some(1), 3650), now()).unwrap();
        let inter = root.issue_child(&spec("Intermediate", None, 365), now()).unwrap();
        assert_eq!(inter.chain_der(), &[root.cert_der().to_vec()]);

        let loaded = CaCert::from_pem(&inter.chain_pem(), &inter.key().to_pem()).unwrap();
        assert_eq!(loaded.cert_der(), inter.cert_der());
        assert_eq!(loaded.chain_der(), inter.chain_der());
        assert_eq!(loaded.info(), inter.info());
        let parts =
            CaCert::from_parts(inter.cert_der().to_vec(), inter.key().clone(), inter.chain_der().to_vec()).unwrap();
        assert_eq!(parts.info(), inter.info());

        let wrong_key = CaCert::from_pem(&inter.cert_pem(), &root.key().to_pem()).unwrap_err();
        assert!(matches!(&wrong_key, PkiError::InvalidPem(m) if m.contains("does not match")), "{wrong_key}");

        // The chain must run from the CA towards the root.
        let other_root = CaCert::create_root(&spec("Other Root", None, 3650), now()).unwrap();
        let bad_chain =
            CaCert::from_parts(inter.cert_der().to_vec(), inter.key().clone(), vec![other_root.cert_der().to_vec()])
                .unwrap_err();
        assert!(matches!(&bad_chain, PkiError::InvalidPem(m) if m.contains("did not issue")), "{bad_chain}");

        // A leaf is not a CA.
        let leaf_key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let mut params = CertificateParams::new(vec!["leaf.test".to_string()]).unwrap();
        params.is_ca = IsCa::ExplicitNoCa;
        let leaf = params.signed_by(&leaf_key.key_pair().unwrap(), root.issuer()).unwrap();
        let not_ca = CaCert::from_parts(leaf.der().to_vec(), leaf_key, vec![]).unwrap_err();
        assert!(matches!(&not_ca, PkiError::InvalidPem(m) if m.contains("not a CA")), "{not_ca}");

        assert!(matches!(CaCert::from_pem("", &root.key().to_pem()), Err(PkiError::InvalidPem(_))));
    }

    #[test]
    fn path_length_shrinks_down_the_hierarchy() {
        let root = CaCert::create_root(&spec("Root", Some(1), 3650), now()).unwrap();
        let too_long = root.issue_child(&spec("Inter", Some(1), 365), now()).unwrap_err();
        assert!(matches!(&too_long, PkiError::Constraint(m) if m.contains("below 1")), "{too_long}");
        let inter = root.issue_child(&spec("Inter", None, 365), now()).unwrap();
        assert_eq!(inter.info().path_len, Some(0));
        let refused = inter.issue_child(&spec("Sub", None, 30), now()).unwrap_err();
        assert!(matches!(&refused, PkiError::Constraint(m) if m.contains("path length 0")), "{refused}");

        let open_root = CaCert::create_root(&spec("Open Root", None, 3650), now()).unwrap();
        assert_eq!(open_root.remaining_path_len(), None);
        let deep = open_root.issue_child(&spec("Deep", Some(5), 365), now()).unwrap();
        assert_eq!(deep.info().path_len, Some(5));
        assert!(open_root.issue_child(&spec("Unbounded", None, 365), now()).unwrap().info().path_len.is_none());
    }

    #[test]
    fn ancestors_path_length_binds_an_imported_intermediate() {
        // An intermediate without its own limit under a root with pathlen 0 cannot issue CAs.
        let root = CaCert::create_root(&spec("Root", Some(0), 3650), now()).unwrap();
        let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let mut params = spec("Unbounded Inter", None, 365).params(now(), now() + Duration::days(365)).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.signed_by(&key.key_pair().unwrap(), root.issuer()).unwrap();
        let inter = CaCert::from_parts(cert.der().to_vec(), key, vec![root.cert_der().to_vec()]).unwrap();
        assert_eq!(inter.info().path_len, None);
        assert_eq!(inter.remaining_path_len(), Some(0));
        assert!(matches!(inter.issue_child(&spec("Sub", None, 30), now()), Err(PkiError::Constraint(_))));
    }

    #[test]
    fn child_validity_and_constraints_stay_inside_the_parent() {
        let mut root_spec = spec("Root", None, 100);
        root_spec.name_constraints = dns_constraints(&["example.com"], &["bad.example.com"]);
        let root = CaCert::create_root(&root_spec, now()).unwrap();

        let mut long = spec("Long", None, 1000);
        long.name_constraints = dns_constraints(&["example.com"], &[]);
        let capped = root.issue_child(&long, now() + Duration::days(10)).unwrap();
        assert_eq!(capped.info().not_after, root.info().not_after);
        assert_eq!(capped.info().not_before, now() + Duration::days(10) - BACKDATE);

        let mut wider = spec("Wider", None, 10);
        wider.name_constraints = dns_constraints(&["example.org"], &[]);
        assert!(matches!(root.issue_child(&wider, now()), Err(PkiError::Constraint(_))));
        let mut unexcluding = spec("Unexcluding", None, 10);
        unexcluding.name_constraints = dns_constraints(&["x.bad.example.com"], &[]);
        assert!(matches!(root.issue_child(&unexcluding, now()), Err(PkiError::Constraint(_))));

        let mut narrower = spec("Narrower", None, 10);
        narrower.name_constraints = dns_constraints(&["eng.example.com"], &[]);
        let child = root.issue_child(&narrower, now()).unwrap();
        assert_eq!(child.effective_constraints().len(), 2);
        assert_eq!(child.info().name_constraints.permitted_dns, vec!["eng.example.com"]);
        // Leaving out DNS constraints would widen the parent's, and so would a sibling subtree.
        assert!(matches!(child.issue_child(&spec("Grandchild", None, 10), now()), Err(PkiError::Constraint(_))));
        let mut sibling = spec("Sibling", None, 10);
        sibling.name_constraints = dns_constraints(&["ops.example.com"], &[]);
        assert!(matches!(child.issue_child(&sibling, now()), Err(PkiError::Constraint(_))));

        let mut same = spec("Root", None, 10);
        same.name_constraints = dns_constraints(&["example.com"], &[]);
        let same_subject = root.issue_child(&same, now()).unwrap_err();
        assert!(matches!(same_subject, PkiError::InvalidParameter(_)));
        let mut late = spec("Late", None, 10);
        late.name_constraints = dns_constraints(&["example.com"], &[]);
        assert!(matches!(root.issue_child(&late, now() + Duration::days(200)), Err(PkiError::Policy(_))));
    }

    #[test]
    fn decodes_ip_subtree_masks() {
        assert_eq!(cidr_from_bytes(&[10, 0, 0, 0, 255, 0, 0, 0]), Some(("10.0.0.0".parse().unwrap(), 8)));
        assert_eq!(cidr_from_bytes(&[0, 0, 0, 0, 0, 0, 0, 0]), Some(("0.0.0.0".parse().unwrap(), 0)));
        assert_eq!(cidr_from_bytes(&[1, 2, 3, 4, 255, 255, 255, 255]), Some(("1.2.3.4".parse().unwrap(), 32)));
        assert_eq!(cidr_from_bytes(&[10, 0, 0, 0, 255, 0, 255, 0]), None);
        assert_eq!(cidr_from_bytes(&[10, 0, 0, 0]), None);
        let mut v6 = [0u8; 32];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[16..20].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(cidr_from_bytes(&v6), Some(("2001::".parse().unwrap(), 32)));
    }
}
