//! OCSP (RFC 6960, profiled by RFC 5019): request parsing, matching CertIDs to an issuer, a
//! delegated responder certificate, and signing responses.

use std::time::Duration as StdDuration;

use aws_lc_rs::digest;
use base64::Engine;
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetString};
use der::{DateTime, Decode, Encode, Sequence, Tagged};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SerialNumber, SignatureAlgorithm, SigningKey,
};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{OcspGeneralizedTime, OcspRequest, OcspResponse, OcspResponseStatus, ResponderId, ResponseBytes};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::revocation::{RevocationReason, load_ca};
use crate::serial::random_serial;
use crate::{PkiError, SigningCa};

/// More CertIDs than this in one request is refused: RFC 5019 clients send one, and the cap bounds
/// the signing work a single request can cause.
pub const MAX_CERT_IDS: usize = 16;
/// Nonces longer than this are ignored (RFC 8954 §2.1 lets a responder drop them).
const MAX_NONCE_LEN: usize = 32;
/// Longer GET paths are refused before decoding; real requests are a few hundred bytes.
const MAX_GET_PATH_LEN: usize = 8192;

const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// id-pkix-ocsp-nonce.
pub const OID_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-basic.
const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nocheck, as rcgen takes OIDs.
const OCSP_NOCHECK_ARCS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// DER NULL, the parameters RSA signature algorithms and CertID hash algorithms carry.
const DER_NULL: [u8; 2] = [0x05, 0x00];

/// Why a request cannot be answered; the server maps both to `malformedRequest`, but logs the
/// difference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// The request is not a well-formed OCSPRequest or breaks a limit.
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
    /// The request is well formed but asks for something certctl does not do (an unknown hash).
    #[error("unsupported OCSP request: {0}")]
    Unsupported(String),
}

/// The hash algorithm of a CertID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// One CertID of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdRef {
    pub hash: HashAlg,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    /// The serial as a magnitude without leading zero bytes (a zero serial is `[0]`).
    pub serial: Vec<u8>,
    /// The CertID exactly as received, DER; responses echo it so the client's hash choice holds.
    pub der: Vec<u8>,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspQuery {
    pub ids: Vec<CertIdRef>,
    /// The nonce extension's extnValue contents exactly as received (for RFC 8954 clients, the DER
    /// of an OCTET STRING), ready to echo with [`sign_response`]. `None` when absent or too long.
    pub nonce: Option<Vec<u8>>,
}

/// The name and key hashes of one CA under every supported algorithm, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerHashes {
    /// (name hash, key hash), indexed by [`HashAlg::index`].
    by_alg: [(Vec<u8>, Vec<u8>); 4],
}

/// The status a single answer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked { at: OffsetDateTime, reason: Option<RevocationReason> },
    Unknown,
}

/// A delegated OCSP responder: a certificate the CA issued with id-kp-OCSPSigning, and its key.
/// Everything `sign_response` needs is parsed once here, because signing is the hot path.
pub struct Responder {
    cert_der: Vec<u8>,
    key_pkcs8_der: Vec<u8>,
    key: KeyPair,
    not_after: OffsetDateTime,
    /// SHA-1 of the responder's subjectPublicKey bits: the byKey ResponderID.
    key_hash: [u8; 20],
    /// The DER AlgorithmIdentifier of the signature the key makes.
    signature_algorithm: Vec<u8>,
}

/// The answer for one CertID.
#[derive(Debug, Clone, Copy)]
pub struct SingleAnswer<'a> {
    pub id: &'a CertIdRef,
    pub status: CertStatus,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

/// The unsuccessful OCSPResponseStatus values a responder sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspResponseStatusCode {
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    Unauthorized = 6,
}

/// A SingleResponse whose CertID is the request's bytes, so the echo is exact by construction.
#[derive(Sequence)]
struct SingleResponseOut<'a> {
    cert_id: AnyRef<'a>,
    cert_status: x509_ocsp::CertStatus,
    this_update: OcspGeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    next_update: Option<OcspGeneralizedTime>,
}

/// ResponseData; the version is v1, the DEFAULT, so DER leaves it out.
#[derive(Sequence)]
struct ResponseDataOut<'a> {
    responder_id: ResponderId,
    produced_at: OcspGeneralizedTime,
    responses: Vec<SingleResponseOut<'a>>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    response_extensions: Option<Vec<Extension>>,
}

/// BasicOCSPResponse over already-encoded parts, so the responder certificate is copied as bytes
/// instead of being decoded and re-encoded per response.
#[derive(Sequence)]
struct BasicOcspResponseOut<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    certs: Option<Vec<AnyRef<'a>>>,
}

impl HashAlg {
    pub const ALL: [Self; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.oid() == *oid)
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => OID_SHA1,
            Self::Sha256 => OID_SHA256,
            Self::Sha384 => OID_SHA384,
            Self::Sha512 => OID_SHA512,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            // SHA-1 is what most OCSP clients still put in CertIDs; it identifies, it does not sign.
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Parses a DER OCSPRequest. The optional requestor signature is ignored, as RFC 5019 allows.
pub fn parse_request(der: &[u8]) -> Result<OcspQuery, OcspError> {
    let request = OcspRequest::from_der(der).map_err(|e| OcspError::Malformed(e.to_string()))?;
    let list = &request.tbs_request.request_list;
    if list.is_empty() {
        return Err(OcspError::Malformed("the request lists no CertID".into()));
    }
    if list.len() > MAX_CERT_IDS {
        return Err(OcspError::Malformed(format!("{} CertIDs; at most {MAX_CERT_IDS} are answered", list.len())));
    }
    let ids = list.iter().map(|r| cert_id_ref(&r.req_cert)).collect::<Result<_, _>>()?;
    let nonce = request
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == OID_OCSP_NONCE)
        .map(|e| e.extn_value.as_bytes())
        .filter(|value| (1..=MAX_NONCE_LEN).contains(&nonce_len(value)))
        .map(<[u8]>::to_vec);
    Ok(OcspQuery { ids, nonce })
}

/// The length of the nonce an extnValue carries: the OCTET STRING's contents when it is one
/// (RFC 8954), else the raw bytes, which some older clients send.
fn nonce_len(extn_value: &[u8]) -> usize {
    OctetString::from_der(extn_value).map_or(extn_value.len(), |inner| inner.as_bytes().len())
}

fn cert_id_ref(id: &x509_ocsp::CertId) -> Result<CertIdRef, OcspError> {
    let oid = &id.hash_algorithm.oid;
    let hash = HashAlg::from_oid(oid).ok_or_else(|| OcspError::Unsupported(format!("CertID hash algorithm {oid}")))?;
    if let Some(params) = &id.hash_algorithm.parameters
        && (params.tag() != der::Tag::Null || !params.value().is_empty())
    {
        return Err(OcspError::Malformed("CertID hash algorithm parameters must be NULL or absent".into()));
    }
    let name_hash = id.issuer_name_hash.as_bytes();
    let key_hash = id.issuer_key_hash.as_bytes();
    if name_hash.len() != hash.output_len() || key_hash.len() != hash.output_len() {
        return Err(OcspError::Malformed(format!("CertID hashes are not {} digests", hash.name())));
    }
    let raw = id.serial_number.as_bytes();
    // A negative serial is never one certctl issued, and its bytes would alias a positive one.
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(OcspError::Malformed("negative serial number".into()));
    }
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len().saturating_sub(1));
    // Decoding enforced DER, so re-encoding reproduces the received bytes exactly.
    let der = id.to_der().map_err(|e| OcspError::Malformed(e.to_string()))?;
    Ok(CertIdRef {
        hash,
        issuer_name_hash: name_hash.to_vec(),
        issuer_key_hash: key_hash.to_vec(),
        serial: raw[start..].to_vec(),
        der,
    })
}

/// Decodes the request from an RFC 5019 GET path component: percent-encoded base64 of the DER.
/// Standard and URL-safe alphabets are accepted, with or without padding, and a space is read as
/// the `+` a form decoder turned it into.
pub fn parse_get_path(b64: &str) -> Result<Vec<u8>, OcspError> {
    if b64.len() > MAX_GET_PATH_LEN {
        return Err(OcspError::Malformed(format!("GET path longer than {MAX_GET_PATH_LEN} bytes")));
    }
    let decoded = percent_decode(b64.trim_start_matches('/'))?;
    let normalised: Vec<u8> = decoded
        .into_iter()
        .map(|b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b' ' => b'+',
            other => other,
        })
        .collect();
    let der = base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(&normalised)
        .map_err(|e| OcspError::Malformed(format!("GET path is not base64: {e}")))?;
    if der.is_empty() {
        return Err(OcspError::Malformed("empty GET path".into()));
    }
    Ok(der)
}

fn percent_decode(s: &str) -> Result<Vec<u8>, OcspError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| OcspError::Malformed("bad percent escape in GET path".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl IssuerHashes {
    /// Hashes the CA's subject Name (its DER) and its subjectPublicKey BIT STRING contents, as
    /// RFC 6960 §4.1.1 defines a CertID.
    pub fn new(ca_cert_der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) =
            X509Certificate::from_der(ca_cert_der).map_err(|e| PkiError::InvalidPem(format!("CA certificate: {e}")))?;
        let name = cert.subject().as_raw();
        let key = cert.public_key().subject_public_key.data.as_ref();
        let by_alg = HashAlg::ALL.map(|h| (h.digest(name), h.digest(key)));
        Ok(Self { by_alg })
    }

    /// Whether `id` names a certificate of this CA.
    pub fn matches(&self, id: &CertIdRef) -> bool {
        let (name, key) = &self.by_alg[id.hash.index()];
        *name == id.issuer_name_hash && *key == id.issuer_key_hash
    }

    pub fn name_hash(&self, hash: HashAlg) -> &[u8] {
        &self.by_alg[hash.index()].0
    }

    pub fn key_hash(&self, hash: HashAlg) -> &[u8] {
        &self.by_alg[hash.index()].1
    }
}

impl Responder {
    /// Issues a new delegated responder from `ca`: a fresh ECDSA P-256 key and a certificate with
    /// id-kp-OCSPSigning, digitalSignature and id-pkix-ocsp-nocheck (clients cannot ask the
    /// responder about itself), valid from five minutes before `now` for `validity`, capped at the
    /// CA's own expiry.
    pub fn issue(ca: SigningCa, now: OffsetDateTime, validity: Duration) -> Result<Self, PkiError> {
        if validity <= Duration::ZERO {
            return Err(PkiError::InvalidParameter("responder validity must be positive".into()));
        }
        let (ca_cert, ca_key) = load_ca(ca)?;
        let ca_not_after = ca_cert.validity().not_after.to_datetime();
        let not_after = (now + validity).min(ca_not_after);
        if not_after <= now {
            return Err(PkiError::InvalidParameter("the CA expires before the responder would be valid".into()));
        }
        let ca_name = ca_cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok());
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            ca_name.map_or_else(|| "OCSP responder".to_owned(), |n| format!("{n} OCSP responder")),
        );

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params.custom_extensions = vec![CustomExtension::from_oid_content(OCSP_NOCHECK_ARCS, DER_NULL.to_vec())];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        params.not_before = now - Duration::minutes(5);
        params.not_after = not_after;
        let issuer = Issuer::from_ca_cert_der(&ca.cert_der.into(), ca_key)
            .map_err(|e| PkiError::InvalidPem(format!("CA certificate: {e}")))?;
        let cert = params.signed_by(&key, &issuer)?;
        Self::from_parts(cert.der().to_vec(), key.serialize_der())
    }

    /// Loads a stored responder, checking that the key belongs to the certificate and that the
    /// certificate may sign OCSP responses.
    pub fn from_parts(cert_der: Vec<u8>, key_pkcs8_der: Vec<u8>) -> Result<Self, PkiError> {
        let (rest, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| PkiError::InvalidPem(format!("responder certificate: {e}")))?;
        if !rest.is_empty() || AnyRef::from_der(&cert_der).is_err() {
            return Err(PkiError::InvalidPem("responder certificate is not a single DER certificate".into()));
        }
        let ocsp_signing = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
        if !ocsp_signing {
            return Err(PkiError::InvalidParameter("responder certificate lacks id-kp-OCSPSigning".into()));
        }
        let key = KeyPair::try_from(key_pkcs8_der.as_slice())
            .map_err(|e| PkiError::InvalidPem(format!("responder key: {e}")))?;
        let public_key = cert.public_key().subject_public_key.data.as_ref();
        if key.der_bytes() != public_key {
            return Err(PkiError::InvalidParameter("responder key does not match its certificate".into()));
        }
        let mut key_hash = [0u8; 20];
        key_hash.copy_from_slice(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, public_key).as_ref());
        let not_after = cert.validity().not_after.to_datetime();
        let signature_algorithm = signature_algorithm_der(key.algorithm())?;
        Ok(Self { cert_der, key_pkcs8_der, key, not_after, key_hash, signature_algorithm })
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn key_pkcs8_der(&self) -> &[u8] {
        &self.key_pkcs8_der
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("key_hash", &hex::encode(self.key_hash))
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The DER AlgorithmIdentifier for signatures made by a key rcgen loaded as `alg`.
fn signature_algorithm_der(alg: &'static SignatureAlgorithm) -> Result<Vec<u8>, PkiError> {
    let (oid, null_params) = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        (OID_ECDSA_SHA256, false)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        (OID_ECDSA_SHA384, false)
    } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
        (OID_ECDSA_SHA512, false)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        (OID_RSA_SHA256, true)
    } else if alg == &rcgen::PKCS_RSA_SHA384 {
        (OID_RSA_SHA384, true)
    } else if alg == &rcgen::PKCS_RSA_SHA512 {
        (OID_RSA_SHA512, true)
    } else if alg == &rcgen::PKCS_ED25519 {
        (OID_ED25519, false)
    } else {
        return Err(PkiError::InvalidParameter(format!("unsupported responder key algorithm {alg:?}")));
    };
    let params = if null_params { Some(AnyRef::from_der(&DER_NULL).map_err(encode_err)?) } else { None };
    x509_cert::spki::AlgorithmIdentifier { oid, parameters: params }.to_der().map_err(encode_err)
}

/// Signs a successful BasicOCSPResponse: byKey responder ID, each CertID echoed byte for byte,
/// the nonce (an extnValue as [`OcspQuery::nonce`] holds it) echoed when given, and the responder
/// certificate attached so clients can verify the delegation. A revocation reason of
/// `Unspecified` is left out, as the CA/Browser Forum baseline requirements ask.
pub fn sign_response(
    responder: &Responder,
    answers: &[SingleAnswer],
    produced_at: OffsetDateTime,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, PkiError> {
    if answers.is_empty() {
        return Err(PkiError::InvalidParameter("an OCSP response needs at least one answer".into()));
    }
    let responses = answers.iter().map(single_response).collect::<Result<Vec<_>, _>>()?;
    let response_extensions = match nonce {
        Some(value) => Some(vec![Extension {
            extn_id: OID_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(value).map_err(encode_err)?,
        }]),
        None => None,
    };
    let tbs = ResponseDataOut {
        responder_id: ResponderId::ByKey(OctetString::new(responder.key_hash.as_slice()).map_err(encode_err)?),
        produced_at: generalized_time(produced_at)?,
        responses,
        response_extensions,
    }
    .to_der()
    .map_err(encode_err)?;
    let signature = responder.key.sign(&tbs)?;
    let basic = BasicOcspResponseOut {
        tbs_response_data: AnyRef::from_der(&tbs).map_err(encode_err)?,
        signature_algorithm: AnyRef::from_der(&responder.signature_algorithm).map_err(encode_err)?,
        signature: BitStringRef::from_bytes(&signature).map_err(encode_err)?,
        certs: Some(vec![AnyRef::from_der(&responder.cert_der).map_err(encode_err)?]),
    }
    .to_der()
    .map_err(encode_err)?;
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: OID_OCSP_BASIC,
            response: OctetString::new(basic).map_err(encode_err)?,
        }),
    }
    .to_der()
    .map_err(encode_err)
}

fn single_response<'a>(answer: &SingleAnswer<'a>) -> Result<SingleResponseOut<'a>, PkiError> {
    if answer.next_update < answer.this_update {
        return Err(PkiError::InvalidParameter("OCSP nextUpdate is before thisUpdate".into()));
    }
    let cert_status = match answer.status {
        CertStatus::Good => x509_ocsp::CertStatus::good(),
        CertStatus::Unknown => x509_ocsp::CertStatus::unknown(),
        CertStatus::Revoked { at, reason } => x509_ocsp::CertStatus::Revoked(x509_ocsp::RevokedInfo {
            revocation_time: generalized_time(at)?,
            revocation_reason: reason.and_then(crl_reason),
        }),
    };
    Ok(SingleResponseOut {
        cert_id: AnyRef::from_der(&answer.id.der).map_err(encode_err)?,
        cert_status,
        this_update: generalized_time(answer.this_update)?,
        next_update: Some(generalized_time(answer.next_update)?),
    })
}

fn crl_reason(reason: RevocationReason) -> Option<CrlReason> {
    Some(match reason {
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    })
}

/// A GeneralizedTime in whole seconds (RFC 5019 §2.2.4 forbids fractions).
fn generalized_time(t: OffsetDateTime) -> Result<OcspGeneralizedTime, PkiError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| PkiError::InvalidParameter(format!("time {t} is before 1970")))?;
    let dt = DateTime::from_unix_duration(StdDuration::from_secs(secs)).map_err(encode_err)?;
    Ok(OcspGeneralizedTime::from(dt))
}

fn encode_err(e: der::Error) -> PkiError {
    PkiError::Encode(e.to_string())
}

/// An unsigned OCSPResponse carrying only an error status (RFC 6960 §4.2.1).
pub fn error_response(status: OcspResponseStatusCode) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }: five fixed bytes, so there is nothing to fail.
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    use x509_cert::serial_number::SerialNumber as X509Serial;
    use x509_cert::spki::AlgorithmIdentifierOwned;
    use x509_ocsp::{BasicOcspResponse, CertId, Request, TbsRequest};
    use x509_parser::extensions::ParsedExtension;

    use super::*;
    use crate::revocation::tests::{other_family_cas, test_ca};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn cert_id(hashes: &IssuerHashes, hash: HashAlg, alg_oid: ObjectIdentifier, serial: &[u8]) -> CertId {
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned { oid: alg_oid, parameters: Some(der::asn1::Null.into()) },
            issuer_name_hash: OctetString::new(hashes.name_hash(hash)).unwrap(),
            issuer_key_hash: OctetString::new(hashes.key_hash(hash)).unwrap(),
            serial_number: X509Serial::new(serial).unwrap(),
        }
    }

    fn request_der(ids: Vec<CertId>, nonce_extn_value: Option<&[u8]>) -> Vec<u8> {
        let request_extensions = nonce_extn_value.map(|v| {
            vec![Extension { extn_id: OID_OCSP_NONCE, critical: false, extn_value: OctetString::new(v).unwrap() }]
        });
        OcspRequest {
            tbs_request: TbsRequest {
                request_list: ids
                    .into_iter()
                    .map(|req_cert| Request { req_cert, single_request_extensions: None })
                    .collect(),
                request_extensions,
                ..Default::default()
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn parses_cert_ids_and_nonce() {
        let (ca_der, _) = test_ca(now());
        let hashes = IssuerHashes::new(&ca_der).unwrap();
        let ids = vec![
            cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[0x00, 0x9a, 0x01]),
            cert_id(&hashes, HashAlg::Sha256, OID_SHA256, &[0x42]),
        ];
        let nonce = [0x04, 0x03, 1, 2, 3];
        let der = request_der(ids, Some(&nonce));
        let query = parse_request(&der).unwrap();
        assert_eq!(query.nonce.as_deref(), Some(&nonce[..]));
        assert_eq!(query.ids.len(), 2);
        assert_eq!(query.ids[0].hash, HashAlg::Sha1);
        assert_eq!(query.ids[0].serial, [0x9a, 0x01]);
        assert_eq!(query.ids[1].hash, HashAlg::Sha256);
        assert_eq!(query.ids[1].serial, [0x42]);
        for id in &query.ids {
            assert!(hashes.matches(id));
            assert!(der.windows(id.der.len()).any(|w| w == id.der.as_slice()), "CertID bytes are verbatim");
        }

        let (other_ca, _) = test_ca(now());
        assert!(!IssuerHashes::new(&other_ca).unwrap().matches(&query.ids[0]));
        let mut wrong_alg = query.ids[1].clone();
        wrong_alg.hash = HashAlg::Sha384;
        assert!(!hashes.matches(&wrong_alg));
    }

    #[test]
    fn long_nonces_are_ignored_and_absent_ones_are_none() {
        let (ca_der, _) = test_ca(now());
        let hashes = IssuerHashes::new(&ca_der).unwrap();
        let id = || vec![cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[1])];
        assert_eq!(parse_request(&request_der(id(), None)).unwrap().nonce, None);
        let mut long = vec![0x04, 33];
        long.extend([7u8; 33]);
        assert_eq!(parse_request(&request_der(id(), Some(&long))).unwrap().nonce, None);
        let raw = [9u8; 16];
        assert_eq!(parse_request(&request_der(id(), Some(&raw))).unwrap().nonce.as_deref(), Some(&raw[..]));
    }

    #[test]
    fn refuses_garbage_and_limits() {
        let (ca_der, _) = test_ca(now());
        let hashes = IssuerHashes::new(&ca_der).unwrap();
        for garbage in [&b""[..], b"\x30\x00", b"hello world", &[0x30, 0x80, 0x00, 0x00]] {
            assert!(matches!(parse_request(garbage), Err(OcspError::Malformed(_))), "{garbage:?}");
        }
        let mut good = request_der(vec![cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[1])], None);
        good.push(0);
        assert!(matches!(parse_request(&good), Err(OcspError::Malformed(_))), "trailing data");

        assert!(matches!(parse_request(&request_der(vec![], None)), Err(OcspError::Malformed(_))));
        let many = (0..=MAX_CERT_IDS as u8).map(|i| cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[i + 1])).collect();
        assert!(matches!(parse_request(&request_der(many, None)), Err(OcspError::Malformed(_))));
        let max = (0..MAX_CERT_IDS as u8).map(|i| cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[i + 1])).collect();
        assert_eq!(parse_request(&request_der(max, None)).unwrap().ids.len(), MAX_CERT_IDS);

        let md5 = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
        let unknown = request_der(vec![cert_id(&hashes, HashAlg::Sha1, md5, &[1])], None);
        assert!(matches!(parse_request(&unknown), Err(OcspError::Unsupported(_))));
        let wrong_len = request_der(vec![cert_id(&hashes, HashAlg::Sha1, OID_SHA256, &[1])], None);
        assert!(matches!(parse_request(&wrong_len), Err(OcspError::Malformed(_))));
        // Uint encodes positive values only, so patch the INTEGER 0x7e into -2 by hand.
        let mut negative = request_der(vec![cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[0x7e])], None);
        let at = negative.windows(3).rposition(|w| w == [0x02, 0x01, 0x7e]).unwrap();
        negative[at + 2] = 0xfe;
        assert!(matches!(parse_request(&negative), Err(OcspError::Malformed(_))));
    }

    #[test]
    fn decodes_get_paths() {
        let der: Vec<u8> = (0u8..=255).collect();
        let standard = base64::engine::general_purpose::STANDARD.encode(&der);
        assert!(standard.contains('+') && standard.contains('/') && standard.ends_with('='));
        let escaped = standard.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
        let lower_escapes = escaped.replace("%2B", "%2b").replace("%2F", "%2f").replace("%3D", "%3d");
        for form in [&standard, &escaped, &lower_escapes, &url_safe] {
            assert_eq!(parse_get_path(form).unwrap(), der, "{form}");
        }
        assert_eq!(parse_get_path(&format!("/{standard}")).unwrap(), der);
        assert_eq!(parse_get_path(&standard.replace('+', " ")).unwrap(), der);

        for bad in ["", "%", "%zz", "%+1", "MEU%2", "not base64!", "////"] {
            assert!(matches!(parse_get_path(bad), Err(OcspError::Malformed(_))), "{bad:?}");
        }
        assert!(parse_get_path(&"A".repeat(MAX_GET_PATH_LEN + 4)).is_err());
    }

    #[test]
    fn signed_response_echoes_cert_ids_and_nonce_and_verifies() {
        let (ca_der, ca_key) = test_ca(now());
        let ca = SigningCa { cert_der: &ca_der, key_pkcs8_der: &ca_key };
        let responder = Responder::issue(ca, now(), Duration::days(30)).unwrap();
        assert_eq!(responder.not_after(), now() + Duration::days(30));
        let hashes = IssuerHashes::new(&ca_der).unwrap();
        let nonce = [0x04, 0x10, 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let req = request_der(
            vec![
                cert_id(&hashes, HashAlg::Sha256, OID_SHA256, &[0x11]),
                cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[0x22]),
                cert_id(&hashes, HashAlg::Sha512, OID_SHA512, &[0x33]),
            ],
            Some(&nonce),
        );
        let query = parse_request(&req).unwrap();
        let revoked_at = now() - Duration::hours(3);
        let statuses = [
            CertStatus::Good,
            CertStatus::Revoked { at: revoked_at, reason: Some(RevocationReason::KeyCompromise) },
            CertStatus::Unknown,
        ];
        let answers: Vec<SingleAnswer> = query
            .ids
            .iter()
            .zip(statuses)
            .map(|(id, status)| SingleAnswer {
                id,
                status,
                this_update: now(),
                next_update: now() + Duration::hours(1),
            })
            .collect();
        let der = sign_response(&responder, &answers, now(), query.nonce.as_deref()).unwrap();

        let response = OcspResponse::from_der(&der).unwrap();
        assert_eq!(response.response_status, OcspResponseStatus::Successful);
        let bytes = response.response_bytes.unwrap();
        assert_eq!(bytes.response_type, OID_OCSP_BASIC);
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        let data = &basic.tbs_response_data;
        let nonce_ext = data.response_extensions.as_ref().unwrap();
        assert_eq!(nonce_ext[0].extn_id, OID_OCSP_NONCE);
        assert_eq!(nonce_ext[0].extn_value.as_bytes(), nonce);
        for (single, id) in data.responses.iter().zip(&query.ids) {
            assert_eq!(single.cert_id.to_der().unwrap(), id.der);
        }
        assert_eq!(data.responses[0].cert_status, x509_ocsp::CertStatus::good());
        match &data.responses[1].cert_status {
            x509_ocsp::CertStatus::Revoked(info) => {
                assert_eq!(info.revocation_reason, Some(CrlReason::KeyCompromise));
                assert_eq!(info.revocation_time.0.to_unix_duration().as_secs(), revoked_at.unix_timestamp() as u64);
            }
            other => panic!("expected revoked, got {other:?}"),
        }
        assert_eq!(data.responses[2].cert_status, x509_ocsp::CertStatus::unknown());

        let certs = basic.certs.as_ref().unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].to_der().unwrap(), responder.cert_der());
        let (_, responder_cert) = X509Certificate::from_der(responder.cert_der()).unwrap();
        let public_key = responder_cert.public_key().subject_public_key.data.as_ref();
        let expected_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, public_key);
        assert_eq!(data.responder_id, ResponderId::ByKey(OctetString::new(expected_id.as_ref()).unwrap()));
        assert_eq!(basic.signature_algorithm.oid, OID_ECDSA_SHA256);
        let tbs = data.to_der().unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key).verify(&tbs, basic.signature.raw_bytes()).unwrap();

        let without_nonce = sign_response(&responder, &answers[..1], now(), None).unwrap();
        let basic = BasicOcspResponse::from_der(
            OcspResponse::from_der(&without_nonce).unwrap().response_bytes.unwrap().response.as_bytes(),
        )
        .unwrap();
        assert!(basic.tbs_response_data.response_extensions.is_none());
        assert!(sign_response(&responder, &[], now(), None).is_err());
    }

    #[test]
    fn responder_is_a_delegated_ocsp_signer() {
        let (ca_der, ca_key) = test_ca(now());
        let ca = SigningCa { cert_der: &ca_der, key_pkcs8_der: &ca_key };
        let responder = Responder::issue(ca, now(), Duration::days(7)).unwrap();
        let (_, cert) = X509Certificate::from_der(responder.cert_der()).unwrap();
        let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        assert!(cert.extended_key_usage().unwrap().unwrap().value.ocsp_signing);
        assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
        let nocheck = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.48.1.5")
            .expect("id-pkix-ocsp-nocheck");
        assert_eq!(nocheck.value, DER_NULL);
        assert!(
            cert.extensions()
                .iter()
                .any(|e| matches!(e.parsed_extension(), ParsedExtension::AuthorityKeyIdentifier(_)))
        );
        assert_eq!(cert.validity().not_before.timestamp(), (now() - Duration::minutes(5)).unix_timestamp());

        let reloaded =
            Responder::from_parts(responder.cert_der().to_vec(), responder.key_pkcs8_der().to_vec()).unwrap();
        assert_eq!(reloaded.not_after(), responder.not_after());
        // The CA certificate has no id-kp-OCSPSigning, and a foreign key does not match.
        assert!(Responder::from_parts(ca_der.clone(), ca_key.clone()).is_err());
        let other = Responder::issue(ca, now(), Duration::days(7)).unwrap();
        assert!(Responder::from_parts(responder.cert_der().to_vec(), other.key_pkcs8_der().to_vec()).is_err());
        assert!(Responder::issue(ca, now(), Duration::ZERO).is_err());
        // The responder never outlives its CA.
        let capped = Responder::issue(ca, now(), Duration::days(100_000)).unwrap();
        assert_eq!(capped.not_after(), ca_cert.validity().not_after.to_datetime());
    }

    #[test]
    fn rsa_and_p384_keys_sign_with_their_own_algorithm() {
        use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, RSA_PKCS1_2048_8192_SHA256, VerificationAlgorithm};
        for (ca_der, ca_key) in other_family_cas(now()) {
            let ca = SigningCa { cert_der: &ca_der, key_pkcs8_der: &ca_key };
            let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
            // A P-256 responder issued by this CA.
            let issued = Responder::issue(ca, now(), Duration::days(1)).unwrap();
            let (_, issued_cert) = X509Certificate::from_der(issued.cert_der()).unwrap();
            issued_cert.verify_signature(Some(ca_cert.public_key())).unwrap();

            // A responder on the CA's own key family: sign with it and check the algorithm.
            let key = KeyPair::try_from(ca_key.as_slice()).unwrap();
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, "same-family responder");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
            let issuer =
                Issuer::from_ca_cert_der(&ca_der.as_slice().into(), KeyPair::try_from(ca_key.as_slice()).unwrap())
                    .unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            let responder = Responder::from_parts(cert.der().to_vec(), ca_key.clone()).unwrap();

            let hashes = IssuerHashes::new(&ca_der).unwrap();
            let query =
                parse_request(&request_der(vec![cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[5])], None)).unwrap();
            let answer =
                SingleAnswer { id: &query.ids[0], status: CertStatus::Good, this_update: now(), next_update: now() };
            let der = sign_response(&responder, &[answer], now(), None).unwrap();
            let bytes = OcspResponse::from_der(&der).unwrap().response_bytes.unwrap();
            let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
            let (expected_oid, params_null, alg): (_, _, &'static dyn VerificationAlgorithm) =
                if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
                    (OID_RSA_SHA256, true, &RSA_PKCS1_2048_8192_SHA256)
                } else {
                    (OID_ECDSA_SHA384, false, &ECDSA_P384_SHA384_ASN1)
                };
            assert_eq!(basic.signature_algorithm.oid, expected_oid);
            assert_eq!(basic.signature_algorithm.parameters.is_some(), params_null);
            let public_key = ca_cert.public_key().subject_public_key.data.as_ref();
            UnparsedPublicKey::new(alg, public_key)
                .verify(&basic.tbs_response_data.to_der().unwrap(), basic.signature.raw_bytes())
                .unwrap();
        }
    }

    /// Prints the cost of one signed response; run with
    /// `cargo test --release -p certctl-pki ocsp::tests::sign_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn sign_timing() {
        let (ca_der, ca_key) = test_ca(now());
        let ca = SigningCa { cert_der: &ca_der, key_pkcs8_der: &ca_key };
        let responder = Responder::issue(ca, now(), Duration::days(1)).unwrap();
        let hashes = IssuerHashes::new(&ca_der).unwrap();
        let req = request_der(vec![cert_id(&hashes, HashAlg::Sha1, OID_SHA1, &[7; 20])], Some(&[0x04, 0x02, 1, 2]));
        let rounds = 10_000;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let query = parse_request(&req).unwrap();
            assert!(hashes.matches(&query.ids[0]));
            let answer =
                SingleAnswer { id: &query.ids[0], status: CertStatus::Good, this_update: now(), next_update: now() };
            sign_response(&responder, &[answer], now(), query.nonce.as_deref()).unwrap();
        }
        println!("parse + sign: {:?} per response", started.elapsed() / rounds);
    }

    #[test]
    fn error_responses_decode() {
        for (code, status) in [
            (OcspResponseStatusCode::MalformedRequest, OcspResponseStatus::MalformedRequest),
            (OcspResponseStatusCode::InternalError, OcspResponseStatus::InternalError),
            (OcspResponseStatusCode::TryLater, OcspResponseStatus::TryLater),
            (OcspResponseStatusCode::Unauthorized, OcspResponseStatus::Unauthorized),
        ] {
            let decoded = OcspResponse::from_der(&error_response(code)).unwrap();
            assert_eq!(decoded.response_status, status);
            assert!(decoded.response_bytes.is_none());
        }
    }
}
