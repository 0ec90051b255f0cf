//! Key algorithms certctl accepts and the private keys it generates, loads and stores. A private key
//! is always held as PKCS#8 v1 DER, whatever form it arrived in, so one representation reaches the
//! database, the signing functions and exports.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
};
use rcgen::{KeyPair, PublicKeyData};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::PkiError;

/// The key algorithms and sizes certctl issues for and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

/// A private key as PKCS#8 v1 DER together with its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey {
    spec: KeySpec,
    pkcs8_der: Vec<u8>,
}

const ACCEPTED_SPECS: &str = "ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072, RSA-4096, Ed25519";

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_CURVE_P256: &str = "1.2.840.10045.3.1.7";
const OID_CURVE_P384: &str = "1.3.132.0.34";

impl KeySpec {
    /// Parses a key algorithm name such as `ECDSA-P256`, `P-384`, `RSA-3072` or `Ed25519`
    /// (case-insensitive). Bare `RSA` means RSA-2048 and bare `ECDSA` means P-256.
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ECDSA-P256" | "EC-P256" | "P-256" | "P256" | "ECDSA" | "EC" => Ok(Self::EcdsaP256),
            "ECDSA-P384" | "EC-P384" | "P-384" | "P384" => Ok(Self::EcdsaP384),
            "RSA-2048" | "RSA2048" | "RSA" => Ok(Self::Rsa2048),
            "RSA-3072" | "RSA3072" => Ok(Self::Rsa3072),
            "RSA-4096" | "RSA4096" => Ok(Self::Rsa4096),
            "ED25519" => Ok(Self::Ed25519),
            _ => Err(PkiError::InvalidParameter(format!("unknown key algorithm {s:?}; accepted: {ACCEPTED_SPECS}"))),
        }
    }

    /// The canonical name, which [`KeySpec::parse`] accepts back.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ECDSA-P256",
            Self::EcdsaP384 => "ECDSA-P384",
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
            Self::Rsa4096 => "RSA-4096",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// `ECDSA`, `RSA` or `Ed25519`.
    pub fn family(self) -> &'static str {
        match self {
            Self::EcdsaP256 | Self::EcdsaP384 => "ECDSA",
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => "RSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// The curve size or modulus length in bits.
    pub fn size_bits(self) -> u32 {
        match self {
            Self::EcdsaP256 | Self::Ed25519 => 256,
            Self::EcdsaP384 => 384,
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        }
    }

    /// Whether this is an RSA key, which also needs keyEncipherment in a TLS leaf.
    pub fn is_rsa(self) -> bool {
        self.family() == "RSA"
    }

    /// Identifies the key in a SubjectPublicKeyInfo. Keys outside the accepted set, including RSA
    /// keys under 2048 bits, are a policy refusal rather than a parse error: the structure is fine,
    /// the key is not acceptable.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, PkiError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| PkiError::InvalidPem(format!("SubjectPublicKeyInfo does not parse: {e}")))?;
        if !rest.is_empty() {
            return Err(PkiError::InvalidPem("trailing bytes after SubjectPublicKeyInfo".into()));
        }
        Self::from_spki(&spki)
    }

    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, PkiError> {
        let alg = spki.algorithm.algorithm.to_id_string();
        match alg.as_str() {
            OID_RSA_ENCRYPTION => {
                let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                    return Err(PkiError::InvalidPem("RSA public key does not parse".into()));
                };
                match modulus_bits(rsa.modulus) {
                    2048 => Ok(Self::Rsa2048),
                    3072 => Ok(Self::Rsa3072),
                    4096 => Ok(Self::Rsa4096),
                    bits if bits < 2048 => Err(PkiError::Policy(format!(
                        "key algorithm RSA-{bits} is not accepted: RSA keys must have at least 2048 bits"
                    ))),
                    bits => Err(PkiError::Policy(format!(
                        "key algorithm RSA-{bits} is not accepted; accepted: {ACCEPTED_SPECS}"
                    ))),
                }
            }
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| oid.to_id_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    OID_CURVE_P256 => Ok(Self::EcdsaP256),
                    OID_CURVE_P384 => Ok(Self::EcdsaP384),
                    _ => Err(PkiError::Policy(format!(
                        "key algorithm ECDSA on curve {curve} is not accepted; accepted: {ACCEPTED_SPECS}"
                    ))),
                }
            }
            OID_ED25519 => Ok(Self::Ed25519),
            other => {
                Err(PkiError::Policy(format!("key algorithm {other} is not accepted; accepted: {ACCEPTED_SPECS}")))
            }
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PrivateKey {
    /// Generates a fresh key.
    pub fn generate(spec: KeySpec) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let failed = |_| PkiError::Generate(rcgen::Error::RingUnspecified);
        let pkcs8_der = match spec {
            KeySpec::EcdsaP256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(failed)?.as_ref().to_vec()
            }
            KeySpec::EcdsaP384 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng).map_err(failed)?.as_ref().to_vec()
            }
            KeySpec::Ed25519 => Ed25519KeyPair::generate_pkcs8v1(&rng).map_err(failed)?.as_ref().to_vec(),
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let size = match spec {
                    KeySpec::Rsa2048 => KeySize::Rsa2048,
                    KeySpec::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let pair = RsaKeyPair::generate(size).map_err(failed)?;
                pair.as_der().map_err(failed)?.as_ref().to_vec()
            }
        };
        Ok(Self { spec, pkcs8_der })
    }

    /// Loads a PEM private key: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`). Encrypted keys are refused.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let blocks = pem_blocks(pem.as_bytes())?;
        let Some((label, der)) = blocks.into_iter().find(|(label, _)| label.ends_with("PRIVATE KEY")) else {
            return Err(PkiError::InvalidPem("no PRIVATE KEY block found".into()));
        };
        match label.as_str() {
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => Self::from_any_der(&der),
            "ENCRYPTED PRIVATE KEY" => Err(PkiError::InvalidPem("encrypted private keys are not supported".into())),
            other => Err(PkiError::InvalidPem(format!("unsupported private key type {other:?}"))),
        }
    }

    /// Loads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        Self::from_any_der(der)
    }

    /// Loads PKCS#8, SEC1 or PKCS#1 DER and re-encodes it as PKCS#8 v1.
    fn from_any_der(der: &[u8]) -> Result<Self, PkiError> {
        let pair = KeyPair::try_from(der).map_err(|_| PkiError::InvalidPem("private key does not parse".into()))?;
        let spec = KeySpec::from_spki_der(&pair.subject_public_key_info()).map_err(|e| match e {
            PkiError::Policy(m) => PkiError::InvalidParameter(m),
            other => other,
        })?;
        let rejected = |e: aws_lc_rs::error::KeyRejected| PkiError::InvalidPem(format!("private key rejected: {e}"));
        let unspecified = |_| PkiError::Encode("re-encoding the private key as PKCS#8 failed".into());
        let ec_pkcs8 = |alg: &'static EcdsaSigningAlgorithm| {
            let ec = EcdsaKeyPair::from_private_key_der(alg, der).map_err(rejected)?;
            Ok::<_, PkiError>(ec.to_pkcs8v1().map_err(unspecified)?.as_ref().to_vec())
        };
        let pkcs8_der = match spec {
            KeySpec::EcdsaP256 => ec_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING)?,
            KeySpec::EcdsaP384 => ec_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING)?,
            KeySpec::Ed25519 => {
                let ed = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?;
                ed.to_pkcs8v1().map_err(unspecified)?.as_ref().to_vec()
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let rsa = RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der)).map_err(rejected)?;
                rsa.as_der().map_err(unspecified)?.as_ref().to_vec()
            }
        };
        Ok(Self { spec, pkcs8_der })
    }

    /// The key as PKCS#8 v1 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM block.
    pub fn to_pem(&self) -> String {
        encode_pem("PRIVATE KEY", &self.pkcs8_der)
    }

    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The public half as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        // The key parsed when this value was built, so parsing again cannot fail.
        self.key_pair().map(|k| k.subject_public_key_info()).unwrap_or_default()
    }

    /// The key as an rcgen signing key. RSA keys sign with SHA-256, ECDSA keys with the hash that
    /// matches the curve.
    pub fn key_pair(&self) -> Result<KeyPair, PkiError> {
        KeyPair::try_from(self.pkcs8_der.as_slice())
            .map_err(|e| PkiError::InvalidPem(format!("private key does not load: {e}")))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("spec", &self.spec).field("pkcs8_der", &"[redacted]").finish()
    }
}

/// The bit length of a big-endian unsigned integer, ignoring leading zero bytes.
fn modulus_bits(modulus: &[u8]) -> u32 {
    let Some(start) = modulus.iter().position(|b| *b != 0) else {
        return 0;
    };
    let bytes = u32::try_from(modulus.len() - start).unwrap_or(u32::MAX / 8);
    bytes * 8 - modulus[start].leading_zeros()
}

/// Encodes DER as one PEM block with LF line endings.
pub(crate) fn encode_pem(label: &str, der: &[u8]) -> String {
    // Encoding only fails for labels that are not valid PEM labels; ours are constants.
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Every PEM block in `input`, as (label, DER), in order. Text around and between blocks is
/// ignored, as OpenSSL does.
pub(crate) fn pem_blocks(input: &[u8]) -> Result<Vec<(String, Vec<u8>)>, PkiError> {
    x509_parser::pem::Pem::iter_from_buffer(input)
        .map(|block| {
            block
                .map(|pem| (pem.label, pem.contents))
                .map_err(|e| PkiError::InvalidPem(format!("PEM does not decode: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_case_insensitively() {
        let table = [
            ("ECDSA-P256", KeySpec::EcdsaP256),
            ("ec-p256", KeySpec::EcdsaP256),
            ("P-256", KeySpec::EcdsaP256),
            ("ecdsa", KeySpec::EcdsaP256),
            ("ECDSA-P384", KeySpec::EcdsaP384),
            ("p-384", KeySpec::EcdsaP384),
            ("RSA", KeySpec::Rsa2048),
            ("rsa-2048", KeySpec::Rsa2048),
            ("RSA-3072", KeySpec::Rsa3072),
            ("RSA-4096", KeySpec::Rsa4096),
            ("ed25519", KeySpec::Ed25519),
        ];
        for (input, want) in table {
            assert_eq!(KeySpec::parse(input).unwrap(), want, "{input}");
            assert_eq!(KeySpec::parse(want.as_str()).unwrap(), want);
        }
        let err = KeySpec::parse("RSA-1024").unwrap_err();
        assert!(matches!(&err, PkiError::InvalidParameter(m) if m.contains("ECDSA-P256") && m.contains("Ed25519")));
        assert!(KeySpec::parse("P-521").is_err());
    }

    #[test]
    fn reports_family_and_size() {
        assert_eq!(KeySpec::EcdsaP384.family(), "ECDSA");
        assert_eq!(KeySpec::Rsa3072.family(), "RSA");
        assert_eq!(KeySpec::Ed25519.family(), "Ed25519");
        assert_eq!(KeySpec::EcdsaP384.size_bits(), 384);
        assert_eq!(KeySpec::Rsa4096.size_bits(), 4096);
        assert_eq!(KeySpec::Ed25519.size_bits(), 256);
    }

    #[test]
    fn generated_keys_round_trip_through_pem() {
        for spec in [KeySpec::EcdsaP256, KeySpec::EcdsaP384, KeySpec::Ed25519, KeySpec::Rsa2048] {
            let key = PrivateKey::generate(spec).unwrap();
            assert_eq!(key.spec(), spec);
            let pem = key.to_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
            let back = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(back, key);
            assert_eq!(PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap(), key);
            assert_eq!(KeySpec::from_spki_der(&key.public_key_der()).unwrap(), spec);
            assert!(key.key_pair().is_ok());
        }
    }

    #[test]
    fn debug_output_hides_key_material() {
        let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("redacted"), "{debug}");
        assert!(debug.contains("EcdsaP256"));
        let first_bytes = format!("{:?}", &key.pkcs8_der()[..8]);
        assert!(!debug.contains(&first_bytes[1..first_bytes.len() - 1]));
    }

    #[test]
    fn refuses_garbage_and_encrypted_keys() {
        assert!(matches!(PrivateKey::from_pem("not a key"), Err(PkiError::InvalidPem(_))));
        let junk = encode_pem("PRIVATE KEY", b"\x30\x03\x02\x01\x00");
        assert!(matches!(PrivateKey::from_pem(&junk), Err(PkiError::InvalidPem(_))));
        let encrypted = encode_pem("ENCRYPTED PRIVATE KEY", b"\x30\x00");
        let err = PrivateKey::from_pem(&encrypted).unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
    }

    #[test]
    fn counts_modulus_bits() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(modulus_bits(&[0x01, 0x00]), 9);
        assert_eq!(modulus_bits(&[0x00]), 0);
    }
}
