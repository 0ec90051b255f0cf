//! JSON Web Signatures as RFC 8555 §6.2 uses them: one signature, flattened JSON (or compact)
//! serialization, a protected header carrying `alg`, `nonce`, `url` and exactly one of `jwk` or
//! `kid`; account keys as JWKs with their RFC 7638 thumbprints; signature verification with
//! aws-lc-rs for ES256, ES384, RS256, PS256 and EdDSA (Ed25519).

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::problem::AcmeError;

/// The algorithms the server verifies, as advertised in `badSignatureAlgorithm` problems.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];

/// A JWS signature algorithm the server verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
    Rs256,
    Ps256,
    EdDsa,
}

impl Alg {
    fn parse(name: &str) -> Result<Alg, AcmeError> {
        Ok(match name {
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "RS256" => Alg::Rs256,
            "PS256" => Alg::Ps256,
            "EdDSA" => Alg::EdDsa,
            other => {
                return Err(AcmeError::BadSignatureAlgorithm(format!(
                    "JWS algorithm {other:?} is not supported; use one of {}",
                    ALGORITHMS.join(", ")
                )));
            }
        })
    }
}

/// An account public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwk {
    /// `kty` EC on P-256 (`crv` P-256) or P-384; `x` and `y` are the coordinates.
    Ec { curve: Curve, x: Vec<u8>, y: Vec<u8> },
    /// `kty` RSA, modulus and public exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// `kty` OKP, `crv` Ed25519.
    Ed25519 { x: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url, naming `what` when it is not.
pub fn unb64(what: &str, text: &str) -> Result<Vec<u8>, AcmeError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| AcmeError::Malformed(format!("{what} is not unpadded base64url")))
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

impl Jwk {
    /// Parses a public JWK. Private members are refused: a client that sends its private key
    /// has leaked it.
    pub fn parse(v: &Value) -> Result<Jwk, AcmeError> {
        let obj = v.as_object().ok_or_else(|| AcmeError::Malformed("jwk is not a JSON object".into()))?;
        if obj.contains_key("d") {
            return Err(AcmeError::BadPublicKey("jwk contains a private key".into()));
        }
        let field = |name: &str| -> Result<Vec<u8>, AcmeError> {
            let text = obj
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| AcmeError::BadPublicKey(format!("jwk has no {name:?} member")))?;
            unb64(&format!("jwk member {name:?}"), text)
        };
        let kty = obj.get("kty").and_then(Value::as_str).unwrap_or_default();
        let crv = obj.get("crv").and_then(Value::as_str).unwrap_or_default();
        match kty {
            "EC" => {
                let curve = match crv {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    other => return Err(AcmeError::BadPublicKey(format!("EC curve {other:?} is not supported"))),
                };
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                    return Err(AcmeError::BadPublicKey(format!("{} coordinates have the wrong length", curve.name())));
                }
                Ok(Jwk::Ec { curve, x, y })
            }
            "RSA" => {
                let n = strip_zeros(&field("n")?).to_vec();
                let e = strip_zeros(&field("e")?).to_vec();
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if !(2048..=8192).contains(&bits) {
                    return Err(AcmeError::BadPublicKey(format!("RSA keys must have 2048 to 8192 bits, not {bits}")));
                }
                if e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) {
                    return Err(AcmeError::BadPublicKey("RSA public exponent is not a small odd number".into()));
                }
                Ok(Jwk::Rsa { n, e })
            }
            "OKP" if crv == "Ed25519" => {
                let x = field("x")?;
                if x.len() != 32 {
                    return Err(AcmeError::BadPublicKey("Ed25519 keys are 32 bytes".into()));
                }
                Ok(Jwk::Ed25519 { x })
            }
            "OKP" => Err(AcmeError::BadPublicKey(format!("OKP curve {crv:?} is not supported"))),
            other => Err(AcmeError::BadPublicKey(format!("key type {other:?} is not supported"))),
        }
    }

    /// The RFC 7638 canonical form: the required members in lexicographic order, no spaces.
    /// It is also the stored form of an account key.
    pub fn canonical(&self) -> String {
        match self {
            Jwk::Ec { curve, x, y } => {
                format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, curve.name(), b64(x), b64(y))
            }
            Jwk::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Jwk::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        }
    }

    /// The RFC 7638 thumbprint: base64url SHA-256 of the canonical form.
    pub fn thumbprint(&self) -> String {
        b64(digest::digest(&digest::SHA256, self.canonical().as_bytes()).as_ref())
    }

    /// Whether `alg` is a signature this key can make.
    fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (Jwk::Ec { curve: Curve::P256, .. }, Alg::Es256)
                | (Jwk::Ec { curve: Curve::P384, .. }, Alg::Es384)
                | (Jwk::Rsa { .. }, Alg::Rs256 | Alg::Ps256)
                | (Jwk::Ed25519 { .. }, Alg::EdDsa)
        )
    }

    /// Verifies `sig` over `msg`.
    pub fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> Result<(), AcmeError> {
        if !self.fits(alg) {
            // A supported algorithm that the key cannot make: the request is not the key holder's.
            return Err(AcmeError::Unauthorized(format!("a {alg:?} signature cannot come from this key")));
        }
        let ok = match self {
            Jwk::Ec { curve, x, y } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let algorithm = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(algorithm, point).verify(msg, sig).is_ok()
            }
            Jwk::Rsa { n, e } => {
                let params = match alg {
                    Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA256,
                };
                RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, msg, sig).is_ok()
            }
            Jwk::Ed25519 { x } => UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig).is_ok(),
        };
        if ok { Ok(()) } else { Err(AcmeError::Unauthorized("the JWS signature does not verify".into())) }
    }

    /// Whether this key is the subject public key of a certificate (the `subjectPublicKey` bits
    /// of its SPKI: the EC point, the Ed25519 key, or the DER RSAPublicKey).
    pub fn matches_spki(&self, spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> bool {
        use x509_parser::public_key::PublicKey;
        match (self, spki.parsed()) {
            (Jwk::Ec { x, y, .. }, Ok(PublicKey::EC(point))) => {
                let data = point.data();
                data.len() == 1 + x.len() + y.len()
                    && data[0] == 0x04
                    && data[1..1 + x.len()] == x[..]
                    && data[1 + x.len()..] == y[..]
            }
            (Jwk::Rsa { n, e }, Ok(PublicKey::RSA(rsa))) => {
                strip_zeros(rsa.modulus) == n.as_slice() && strip_zeros(rsa.exponent) == e.as_slice()
            }
            (Jwk::Ed25519 { x }, _) => {
                spki.algorithm.algorithm.to_id_string() == "1.3.101.112" && spki.subject_public_key.data.as_ref() == x
            }
            _ => false,
        }
    }
}

/// Who signed: a key (new accounts, revocation by certificate key) or an account URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    Jwk(Jwk),
    Kid(String),
}

/// A parsed JWS whose signature is not yet verified.
#[derive(Debug, Clone)]
pub struct Jws {
    pub alg: Alg,
    pub nonce: Option<String>,
    pub url: String,
    pub signer: Signer,
    pub payload: Vec<u8>,
    /// `protected || '.' || payload` as sent: the signing input.
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

#[derive(Deserialize)]
struct Protected {
    alg: Option<String>,
    nonce: Option<String>,
    url: Option<String>,
    jwk: Option<Value>,
    kid: Option<String>,
    crit: Option<Value>,
}

impl Jws {
    /// Parses a flattened JSON serialization, or a compact one (`a.b.c`).
    pub fn parse(body: &[u8]) -> Result<Jws, AcmeError> {
        let text = std::str::from_utf8(body).map_err(|_| AcmeError::Malformed("the JWS is not UTF-8".into()))?;
        let trimmed = text.trim();
        let (protected, payload, signature) = if trimmed.starts_with('{') {
            let value: Value =
                serde_json::from_str(trimmed).map_err(|e| AcmeError::Malformed(format!("the JWS is not JSON: {e}")))?;
            if value.get("signatures").is_some() {
                return Err(AcmeError::Malformed("JWS with multiple signatures are not accepted".into()));
            }
            if value.get("header").is_some() {
                return Err(AcmeError::Malformed("the JWS unprotected header must not be used".into()));
            }
            let f: Flattened = serde_json::from_value(value)
                .map_err(|e| AcmeError::Malformed(format!("the JWS is not a flattened JSON serialization: {e}")))?;
            (f.protected, f.payload, f.signature)
        } else {
            let mut parts = trimmed.split('.');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(p), Some(l), Some(s), None) => (p.to_owned(), l.to_owned(), s.to_owned()),
                _ => return Err(AcmeError::Malformed("the body is neither a flattened nor a compact JWS".into())),
            }
        };
        let header_bytes = unb64("protected", &protected)?;
        let header: Protected = serde_json::from_slice(&header_bytes)
            .map_err(|e| AcmeError::Malformed(format!("the protected header is not a JSON object: {e}")))?;
        if header.crit.is_some() {
            return Err(AcmeError::Malformed("no critical JWS header extensions are supported".into()));
        }
        let alg = Alg::parse(
            header.alg.as_deref().ok_or_else(|| AcmeError::Malformed("the protected header has no alg".into()))?,
        )?;
        let url = header.url.ok_or_else(|| AcmeError::Malformed("the protected header has no url".into()))?;
        let signer = match (header.jwk, header.kid) {
            (Some(jwk), None) => Signer::Jwk(Jwk::parse(&jwk)?),
            (None, Some(kid)) => Signer::Kid(kid),
            (Some(_), Some(_)) => return Err(AcmeError::Malformed("the protected header has both jwk and kid".into())),
            (None, None) => return Err(AcmeError::Malformed("the protected header has neither jwk nor kid".into())),
        };
        let mut signing_input = Vec::with_capacity(protected.len() + 1 + payload.len());
        signing_input.extend_from_slice(protected.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload.as_bytes());
        Ok(Jws {
            alg,
            nonce: header.nonce,
            url,
            signer,
            payload: unb64("payload", &payload)?,
            signing_input,
            signature: unb64("signature", &signature)?,
        })
    }

    /// Verifies the signature with `key`.
    pub fn verify(&self, key: &Jwk) -> Result<(), AcmeError> {
        key.verify(self.alg, &self.signing_input, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(Jwk::parse(&jwk).unwrap().thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    fn es256_jws(payload: &str, header_extra: &str) -> (Vec<u8>, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = key.public_key().as_ref();
        let jwk = Jwk::Ec { curve: Curve::P256, x: point[1..33].to_vec(), y: point[33..].to_vec() };
        let header = format!(r#"{{"alg":"ES256","nonce":"n","url":"https://x/acme/new-order"{header_extra}}}"#);
        let protected = b64(header.as_bytes());
        let payload = b64(payload.as_bytes());
        let sig = key.sign(&rng, format!("{protected}.{payload}").as_bytes()).unwrap();
        let body =
            format!(r#"{{"protected":"{protected}","payload":"{payload}","signature":"{}"}}"#, b64(sig.as_ref()));
        (body.into_bytes(), jwk)
    }

    #[test]
    fn es256_signature_verifies_and_tampering_does_not() {
        let (body, jwk) = es256_jws("{}", r#","kid":"https://x/acme/account/1""#);
        let jws = Jws::parse(&body).unwrap();
        assert_eq!(jws.signer, Signer::Kid("https://x/acme/account/1".into()));
        jws.verify(&jwk).unwrap();
        let (other, other_key) = es256_jws("{}", r#","kid":"k""#);
        assert!(matches!(Jws::parse(&other).unwrap().verify(&jwk), Err(AcmeError::Unauthorized(_))));
        assert_ne!(other_key, jwk);
    }

    #[test]
    fn header_rules() {
        let (body, _) = es256_jws("{}", "");
        assert!(matches!(Jws::parse(&body), Err(AcmeError::Malformed(m)) if m.contains("neither")));
        assert!(matches!(Jws::parse(b"not a jws"), Err(AcmeError::Malformed(_))));
        let header = b64(br#"{"alg":"HS256","url":"u","kid":"k"}"#);
        let body = format!(r#"{{"protected":"{header}","payload":"","signature":""}}"#);
        assert!(matches!(Jws::parse(body.as_bytes()), Err(AcmeError::BadSignatureAlgorithm(_))));
    }
}
