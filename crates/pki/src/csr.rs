//! PKCS#10 certificate signing requests: decoding PEM or DER, checking the self-signature, and
//! reading the key, subject common name and requested subject alternative names. Nothing else a
//! CSR asks for is trusted; issuance builds every extension itself.

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::prelude::FromDer;

use crate::PkiError;
use crate::constraints::San;
use crate::keys::{KeySpec, pem_blocks};

/// A CSR whose self-signature verifies, with the parts issuance uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCsr {
    pub der: Vec<u8>,
    /// SubjectPublicKeyInfo DER.
    pub public_key_der: Vec<u8>,
    pub key: KeySpec,
    /// The self-signature's algorithm, e.g. `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    pub common_name: Option<String>,
    pub sans: Vec<San>,
}

/// Parses a CSR in PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER. A request
/// that does not decode or whose signature does not verify is `MalformedCsr`; one whose key is
/// not accepted (unknown curve, RSA under 2048 bits) is `Policy`.
pub fn parse_csr(input: &[u8]) -> Result<ParsedCsr, PkiError> {
    let der = decode(input)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::MalformedCsr(format!("the request is not a valid PKCS#10 structure: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::MalformedCsr("trailing bytes after the request".into()));
    }
    let info = &csr.certification_request_info;
    // The key is judged before the signature: aws-lc refuses to verify with short RSA keys, and
    // "key too weak" is the answer the requester needs.
    let key = KeySpec::from_spki(&info.subject_pki).map_err(|e| match e {
        PkiError::Policy(m) => PkiError::Policy(m),
        other => PkiError::MalformedCsr(format!("the public key does not parse: {other}")),
    })?;
    let signature_algorithm = oid2sn(&csr.signature_algorithm.algorithm, oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| csr.signature_algorithm.algorithm.to_id_string());
    csr.verify_signature().map_err(|e| {
        PkiError::MalformedCsr(format!("the request's signature ({signature_algorithm}) does not verify: {e}"))
    })?;

    let common_name = match info.subject.iter_common_name().next() {
        Some(cn) => Some(
            cn.as_str()
                .map_err(|_| PkiError::MalformedCsr("the subject common name is not a readable string".into()))?
                .to_owned(),
        ),
        None => None,
    };
    let sans = requested_sans(&csr)?;
    Ok(ParsedCsr {
        public_key_der: info.subject_pki.raw.to_vec(),
        der: der.clone(),
        key,
        signature_algorithm,
        common_name,
        sans,
    })
}

/// The CSR's DER: PEM is decoded, anything starting with a SEQUENCE tag is taken as DER.
fn decode(input: &[u8]) -> Result<Vec<u8>, PkiError> {
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let blocks = pem_blocks(trimmed).map_err(|e| PkiError::MalformedCsr(e.to_string()))?;
        let Some((label, der)) = blocks.into_iter().next() else {
            return Err(PkiError::MalformedCsr("no PEM block found".into()));
        };
        return match label.as_str() {
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Ok(der),
            other => Err(PkiError::MalformedCsr(format!("expected a CERTIFICATE REQUEST PEM block, found {other}"))),
        };
    }
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    Err(PkiError::MalformedCsr("the request is neither PEM nor DER".into()))
}

/// The subject alternative names in the extensionRequest attribute.
fn requested_sans(csr: &X509CertificationRequest<'_>) -> Result<Vec<San>, PkiError> {
    let mut sans = Vec::new();
    let Some(extensions) = csr.requested_extensions() else {
        return Ok(sans);
    };
    for ext in extensions {
        let names = match ext {
            ParsedExtension::SubjectAlternativeName(san) => &san.general_names,
            ParsedExtension::ParseError { error } => {
                return Err(PkiError::MalformedCsr(format!("a requested extension does not parse: {error}")));
            }
            _ => continue,
        };
        for name in names {
            let bad = |kind: &str, e: PkiError| PkiError::MalformedCsr(format!("requested {kind} name: {e}"));
            let san = match name {
                GeneralName::DNSName(d) => match San::parse(d).map_err(|e| bad("DNS", e))? {
                    dns @ San::Dns(_) => dns,
                    _ => return Err(PkiError::MalformedCsr(format!("requested DNS name {d:?} is not a DNS name"))),
                },
                GeneralName::RFC822Name(e) if e.contains('@') => San::parse(e).map_err(|err| bad("email", err))?,
                GeneralName::URI(u) if u.contains("://") => San::parse(u).map_err(|err| bad("URI", err))?,
                GeneralName::IPAddress(bytes) => San::Ip(ip_from_bytes(bytes).ok_or_else(|| {
                    PkiError::MalformedCsr(format!("requested IP address has {} bytes", bytes.len()))
                })?),
                GeneralName::RFC822Name(e) => {
                    return Err(PkiError::MalformedCsr(format!("requested email address {e:?} has no '@'")));
                }
                GeneralName::URI(u) => {
                    return Err(PkiError::Policy(format!("requested URI {u:?} is not an absolute URI")));
                }
                other => {
                    return Err(PkiError::Policy(format!(
                        "subject alternative name type {} is not accepted",
                        general_name_kind(other)
                    )));
                }
            };
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
    }
    Ok(sans)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn general_name_kind(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::Invalid(..) => "(invalid encoding)",
        GeneralName::RFC822Name(_) => "rfc822Name",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    use super::*;
    use crate::keys::{PrivateKey, encode_pem};

    /// An RSA-1024 CSR for CN=weak.example.com, made with
    /// `openssl req -new -newkey rsa:1024 -nodes -subj /CN=weak.example.com`.
    const RSA_1024_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIIBWjCBxAIBADAbMRkwFwYDVQQDDBB3ZWFrLmV4YW1wbGUuY29tMIGfMA0GCSqG
SIb3DQEBAQUAA4GNADCBiQKBgQDN7+qtOVFb2IqiV1U7WIKDLM+48cj2GqyHo/S8
EtnYrJSjBMs6saEuzY/8e5HsIXWMeFWPTJDdD4GM4Bc4nqIIlCLy4fRWDvJOUrYV
kDqBsAeWAnqmMpwQNIfvdQkzbXFwHYNnw7H1cFfpnYZiKwxDO/QmrVw696KwDVxb
O7+IQwIDAQABoAAwDQYJKoZIhvcNAQELBQADgYEArlmB2m0F6jTd7FN+GpOhtfLb
TUiIHpfluEYgkwfk6gCzfP6L94A4VoqNDrwPlDjMUklQ6gg4A4abc0JqGR2YYuhK
qQyAh+eYUNjtgWWlda7H5LsFdkgKzRxd/TDGVmkMlOA9VVQNZvYvYOlosW4ABFhM
S+63lwsqC3MJWjO6smQ=
-----END CERTIFICATE REQUEST-----
";

    fn csr_der(key: &KeyPair, cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        params.serialize_request(key).unwrap().der().to_vec()
    }

    fn malformed(result: Result<ParsedCsr, PkiError>, needle: &str) {
        match result {
            Err(PkiError::MalformedCsr(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
            other => panic!("expected MalformedCsr, got {other:?}"),
        }
    }

    #[test]
    fn parses_pem_and_der_with_every_san_kind() {
        let key = PrivateKey::generate(KeySpec::EcdsaP384).unwrap();
        let sans = vec![
            SanType::DnsName("WWW.example.com".try_into().unwrap()),
            SanType::IpAddress("192.0.2.7".parse().unwrap()),
            SanType::IpAddress("2001:db8::7".parse().unwrap()),
            SanType::Rfc822Name("ops@example.com".try_into().unwrap()),
            SanType::URI("spiffe://example.com/svc".try_into().unwrap()),
        ];
        let der = csr_der(&key.key_pair().unwrap(), Some("www.example.com"), sans);
        let pem = encode_pem("CERTIFICATE REQUEST", &der);
        for input in [pem.as_bytes(), der.as_slice()] {
            let csr = parse_csr(input).unwrap();
            assert_eq!(csr.der, der);
            assert_eq!(csr.key, KeySpec::EcdsaP384);
            assert_eq!(csr.public_key_der, key.public_key_der());
            assert_eq!(csr.signature_algorithm, "ecdsa-with-SHA384");
            assert_eq!(csr.common_name.as_deref(), Some("www.example.com"));
            let names: Vec<String> = csr.sans.iter().map(ToString::to_string).collect();
            assert_eq!(
                names,
                ["www.example.com", "192.0.2.7", "2001:db8::7", "ops@example.com", "spiffe://example.com/svc"]
            );
        }
        let legacy = encode_pem("NEW CERTIFICATE REQUEST", &der);
        assert!(parse_csr(legacy.as_bytes()).is_ok());
    }

    #[test]
    fn accepts_rsa_and_ed25519_without_a_common_name() {
        for spec in [KeySpec::Rsa2048, KeySpec::Ed25519] {
            let key = PrivateKey::generate(spec).unwrap();
            let der = csr_der(&key.key_pair().unwrap(), None, vec![SanType::DnsName("a.test".try_into().unwrap())]);
            let csr = parse_csr(&der).unwrap();
            assert_eq!(csr.key, spec);
            assert_eq!(csr.common_name, None);
            assert_eq!(csr.sans, vec![San::Dns("a.test".into())]);
        }
    }

    #[test]
    fn refuses_garbage_and_wrong_pem() {
        malformed(parse_csr(b"hello there"), "neither PEM nor DER");
        malformed(parse_csr(b"\x30\x03\x02\x01\x00"), "not a valid PKCS#10");
        let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let der = csr_der(&key.key_pair().unwrap(), Some("x.test"), vec![]);
        malformed(parse_csr(encode_pem("CERTIFICATE", &der).as_bytes()), "found CERTIFICATE");
        malformed(parse_csr(b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n"), "PEM");
        let mut trailing = der.clone();
        trailing.push(0);
        malformed(parse_csr(&trailing), "trailing");
    }

    #[test]
    fn refuses_a_tampered_signature_or_subject() {
        let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let der = csr_der(&key.key_pair().unwrap(), Some("aaaa.test"), vec![]);
        // Changing the subject invalidates the signature over it.
        let at = der.windows(4).position(|w| w == b"aaaa").unwrap();
        let mut forged = der.clone();
        forged[at] = b'b';
        malformed(parse_csr(&forged), "does not verify");
        // So does changing the signature itself (the last byte is inside the signature's s value).
        let mut bad_sig = der.clone();
        let last = bad_sig.len() - 1;
        bad_sig[last] ^= 0x01;
        malformed(parse_csr(&bad_sig), "does not verify");
    }

    #[test]
    fn weak_or_unknown_keys_are_a_policy_refusal() {
        match parse_csr(RSA_1024_CSR.as_bytes()) {
            Err(PkiError::Policy(m)) => assert!(m.contains("RSA-1024") && m.contains("2048"), "{m}"),
            other => panic!("expected Policy, got {other:?}"),
        }
        let p521 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        match parse_csr(&csr_der(&p521, Some("x.test"), vec![])) {
            Err(PkiError::Policy(m)) => assert!(m.contains("not accepted"), "{m}"),
            other => panic!("expected Policy, got {other:?}"),
        }
    }

    #[test]
    fn refuses_invalid_or_unsupported_names() {
        let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap().key_pair().unwrap();
        let bad_dns = csr_der(&key, None, vec![SanType::DnsName("bad_name.example.com".try_into().unwrap())]);
        malformed(parse_csr(&bad_dns), "DNS");
        let other = SanType::OtherName((vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3], "user@corp".into()));
        match parse_csr(&csr_der(&key, None, vec![other])) {
            Err(PkiError::Policy(m)) => assert!(m.contains("otherName"), "{m}"),
            other => panic!("expected Policy, got {other:?}"),
        }
    }
}
