//! Private keys made on the host: the algorithm a profile asks for, key generation, the CSR, and
//! the key files under `keys/<certificate_id>/<spki_sha256_hex>.key`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_lc_rs::digest;
use certctl_api::{KeyAlgorithm, KeyAlgorithmRule};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData, RsaKeySize, SanType, SignatureAlgorithm,
};

use crate::state::{StateError, write_private};

/// Key and CSR failures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key generation or CSR encoding failed.
    #[error("key or CSR generation failed: {0}")]
    Generate(String),
    /// A name cannot go into a CSR.
    #[error("'{0}' cannot be put in a CSR: {1}")]
    Name(String, String),
    /// The certificate ID is not safe to use as a directory name.
    #[error("certificate ID '{0}' is not usable as a directory name")]
    CertificateId(String),
    /// The key store could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The key algorithms the agent generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    EcdsaP256,
    EcdsaP384,
    Rsa(u32),
    Ed25519,
}

impl KeyChoice {
    /// The first rule the agent can satisfy, else ECDSA P-256 (also for an empty list).
    pub fn from_rules(rules: &[KeyAlgorithmRule]) -> KeyChoice {
        rules
            .iter()
            .find_map(|rule| match (rule.algorithm, rule.min_size) {
                (KeyAlgorithm::Ecdsa, 0..=256) => Some(KeyChoice::EcdsaP256),
                (KeyAlgorithm::Ecdsa, 257..=384) => Some(KeyChoice::EcdsaP384),
                (KeyAlgorithm::Rsa, 0..=2048) => Some(KeyChoice::Rsa(2048)),
                (KeyAlgorithm::Rsa, 2049..=3072) => Some(KeyChoice::Rsa(3072)),
                (KeyAlgorithm::Rsa, 3073..=4096) => Some(KeyChoice::Rsa(4096)),
                (KeyAlgorithm::Ed25519, _) => Some(KeyChoice::Ed25519),
                _ => None,
            })
            .unwrap_or(KeyChoice::EcdsaP256)
    }

    /// Generates a key pair; RSA takes up to a second, so callers run it off the event loop.
    pub fn generate(self) -> Result<KeyPair, KeyError> {
        let generated = match self {
            KeyChoice::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyChoice::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyChoice::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyChoice::Rsa(bits) => {
                let size = match bits {
                    4096 => RsaKeySize::_4096,
                    3072 => RsaKeySize::_3072,
                    _ => RsaKeySize::_2048,
                };
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
            }
        };
        generated.map_err(|e| KeyError::Generate(e.to_string()))
    }
}

/// Lower-case hex SHA-256 of a DER SubjectPublicKeyInfo: the key file's name.
pub fn spki_sha256(spki_der: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, spki_der))
}

/// A PEM CSR for `common_name` and `sans` (DNS names, IP addresses, and `@` names as emails).
/// The common name is added as a SAN when it is a DNS name or an IP address not listed.
pub fn csr_pem(key: &KeyPair, common_name: &str, sans: &[String]) -> Result<String, KeyError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if !common_name.is_empty() {
        dn.push(DnType::CommonName, common_name);
    }
    params.distinguished_name = dn;
    let mut names: Vec<SanType> = Vec::new();
    for name in sans.iter().map(String::as_str).chain(std::iter::once(common_name)).filter(|n| !n.is_empty()) {
        let is_cn = std::ptr::eq(name, common_name);
        let san = match san_of(name) {
            Ok(san) => san,
            // The CN need not be a name a SAN can carry (e.g. "Payments service").
            Err(_) if is_cn => continue,
            Err(e) => return Err(e),
        };
        if is_cn && matches!(san, SanType::Rfc822Name(_)) {
            continue;
        }
        if !names.contains(&san) {
            names.push(san);
        }
    }
    params.subject_alt_names = names;
    let csr = params.serialize_request(key).map_err(|e| KeyError::Generate(e.to_string()))?;
    csr.pem().map_err(|e| KeyError::Generate(e.to_string()))
}

fn san_of(name: &str) -> Result<SanType, KeyError> {
    let refused = |e: rcgen::Error| KeyError::Name(name.to_owned(), e.to_string());
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    if name.contains('@') {
        return Ok(SanType::Rfc822Name(name.try_into().map_err(refused)?));
    }
    let dns_like = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))
        });
    if !dns_like {
        return Err(KeyError::Name(name.to_owned(), "not a DNS name, an IP address or an email address".into()));
    }
    Ok(SanType::DnsName(name.try_into().map_err(refused)?))
}

/// The key files of each certificate.
#[derive(Debug, Clone)]
pub struct KeyStore {
    root: PathBuf,
}

impl KeyStore {
    pub fn new(root: PathBuf) -> KeyStore {
        KeyStore { root }
    }

    fn cert_dir(&self, certificate_id: &str) -> Result<PathBuf, KeyError> {
        let safe = !certificate_id.is_empty()
            && !certificate_id.starts_with('.')
            && certificate_id.len() <= 128
            && certificate_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !safe {
            return Err(KeyError::CertificateId(certificate_id.to_owned()));
        }
        Ok(self.root.join(certificate_id))
    }

    /// Saves a new key (PKCS#8 PEM, 0600, its directory 0700) and returns its path.
    pub fn save(&self, certificate_id: &str, key: &KeyPair) -> Result<PathBuf, KeyError> {
        let dir = self.cert_dir(certificate_id)?;
        let io = |source| KeyError::State(StateError::Io { path: dir.clone(), source });
        fs::create_dir_all(&dir).map_err(io)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        let path = dir.join(format!("{}.key", spki_sha256(&key.subject_public_key_info())));
        let pem = zeroize::Zeroizing::new(key.serialize_pem());
        write_private(&path, pem.as_bytes())?;
        Ok(path)
    }

    /// The key whose public key is the certificate's: by file name (the SPKI's SHA-256), else by
    /// reading each key of the certificate and comparing public keys.
    pub fn find(&self, certificate_id: &str, spki_der: &[u8], public_key: &[u8]) -> Result<Option<PathBuf>, KeyError> {
        let dir = self.cert_dir(certificate_id)?;
        let by_name = dir.join(format!("{}.key", spki_sha256(spki_der)));
        if by_name.is_file() {
            return Ok(Some(by_name));
        }
        for (path, _) in list_keys(&dir) {
            let Ok(pem) = fs::read_to_string(&path).map(zeroize::Zeroizing::new) else { continue };
            if KeyPair::from_pem(&pem).is_ok_and(|k| k.der_bytes() == public_key) {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// After `deployed` is in service: removes the certificate's other keys, except the newest
    /// one made after it (a CSR that may still be answered).
    pub fn prune(&self, certificate_id: &str, deployed: &Path) -> Result<Vec<PathBuf>, KeyError> {
        let dir = self.cert_dir(certificate_id)?;
        let keys = list_keys(&dir);
        let deployed_at = keys.iter().find(|(p, _)| p == deployed).map(|(_, t)| *t);
        let newest_pending = keys
            .iter()
            .filter(|(p, t)| p != deployed && deployed_at.is_some_and(|d| *t > d))
            .max_by_key(|(_, t)| *t)
            .map(|(p, _)| p.clone());
        let mut removed = Vec::new();
        for (path, _) in keys {
            if path != deployed && Some(&path) != newest_pending.as_ref() && fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Removes a key whose CSR was refused.
    pub fn discard(&self, path: &Path) {
        if let Err(e) = fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove an unused key");
        }
    }
}

/// The `.key` files of a directory with their modification times, oldest first.
fn list_keys(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut keys: Vec<(PathBuf, SystemTime)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .filter_map(|p| {
            let modified = fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            Some((p, modified))
        })
        .collect();
    keys.sort_by_key(|(_, t)| *t);
    keys
}

/// The signature algorithm name of a key, for logs.
pub fn algorithm_name(key: &KeyPair) -> &'static str {
    let alg: &SignatureAlgorithm = key.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        "ECDSA P-256"
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        "ECDSA P-384"
    } else if alg == &rcgen::PKCS_ED25519 {
        "Ed25519"
    } else {
        "RSA"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    fn rule(algorithm: KeyAlgorithm, min_size: u32) -> KeyAlgorithmRule {
        KeyAlgorithmRule { algorithm, min_size }
    }

    #[test]
    fn choice_follows_the_profile() {
        assert_eq!(KeyChoice::from_rules(&[]), KeyChoice::EcdsaP256);
        assert_eq!(KeyChoice::from_rules(&[rule(KeyAlgorithm::Ecdsa, 384)]), KeyChoice::EcdsaP384);
        assert_eq!(KeyChoice::from_rules(&[rule(KeyAlgorithm::Rsa, 3072)]), KeyChoice::Rsa(3072));
        assert_eq!(KeyChoice::from_rules(&[rule(KeyAlgorithm::Rsa, 0)]), KeyChoice::Rsa(2048));
        assert_eq!(
            KeyChoice::from_rules(&[rule(KeyAlgorithm::Rsa, 8192), rule(KeyAlgorithm::Ed25519, 256)]),
            KeyChoice::Ed25519
        );
        assert_eq!(KeyChoice::from_rules(&[rule(KeyAlgorithm::Rsa, 8192)]), KeyChoice::EcdsaP256);
    }

    #[test]
    fn csr_carries_the_names_and_the_key() {
        for choice in [KeyChoice::EcdsaP256, KeyChoice::EcdsaP384, KeyChoice::Ed25519, KeyChoice::Rsa(2048)] {
            let key = choice.generate().unwrap();
            let sans = vec!["www.example.com".to_owned(), "10.0.0.1".to_owned(), "ops@example.com".to_owned()];
            let pem = csr_pem(&key, "example.com", &sans).unwrap();
            let der = ::pem::parse(&pem).unwrap();
            let (_, csr) =
                x509_parser::certification_request::X509CertificationRequest::from_der(der.contents()).unwrap();
            csr.verify_signature().unwrap();
            let info = &csr.certification_request_info;
            assert_eq!(info.subject.iter_common_name().next().unwrap().as_str().unwrap(), "example.com");
            assert_eq!(info.subject_pki.raw, key.subject_public_key_info().as_slice(), "{choice:?}");
            let sans: Vec<String> = csr
                .requested_extensions()
                .into_iter()
                .flatten()
                .filter_map(|e| match e {
                    x509_parser::extensions::ParsedExtension::SubjectAlternativeName(s) => Some(s),
                    _ => None,
                })
                .flat_map(|s| s.general_names.iter().map(|n| n.to_string()))
                .collect();
            assert_eq!(sans.len(), 4, "{sans:?}");
            assert!(sans.iter().any(|s| s.contains("example.com") && s.starts_with("DNSName")), "{sans:?}");
        }
        let key = KeyChoice::EcdsaP256.generate().unwrap();
        assert!(csr_pem(&key, "Payments service", &[]).is_ok(), "a CN that is no DNS name stays out of the SANs");
        assert!(matches!(csr_pem(&key, "a", &["bad name!".into()]), Err(KeyError::Name(..))));
    }

    #[test]
    fn key_files_are_private_found_and_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let store = KeyStore::new(tmp.path().to_owned());
        let old = KeyChoice::EcdsaP256.generate().unwrap();
        let old_path = store.save("mc-1", &old).unwrap();
        assert_eq!(fs::metadata(&old_path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(tmp.path().join("mc-1")).unwrap().permissions().mode() & 0o777, 0o700);
        let name = old_path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!("{}.key", spki_sha256(&old.subject_public_key_info())));
        assert!(fs::read_to_string(&old_path).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));

        std::thread::sleep(std::time::Duration::from_millis(20));
        let new = KeyChoice::EcdsaP256.generate().unwrap();
        let new_path = store.save("mc-1", &new).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let newer = KeyChoice::EcdsaP256.generate().unwrap();
        let newer_path = store.save("mc-1", &newer).unwrap();

        let found = store.find("mc-1", &new.subject_public_key_info(), new.der_bytes()).unwrap();
        assert_eq!(found.as_deref(), Some(new_path.as_path()));
        // A different SPKI encoding still finds the key through its public key.
        let found = store.find("mc-1", b"other encoding", newer.der_bytes()).unwrap();
        assert_eq!(found.as_deref(), Some(newer_path.as_path()));
        let stranger = KeyChoice::EcdsaP256.generate().unwrap();
        assert!(store.find("mc-1", &stranger.subject_public_key_info(), stranger.der_bytes()).unwrap().is_none());

        // Deploying `new` removes the older key and keeps the newer pending one.
        let removed = store.prune("mc-1", &new_path).unwrap();
        assert_eq!(removed, vec![old_path.clone()]);
        assert!(new_path.exists() && newer_path.exists() && !old_path.exists());
        // Deploying the newest removes everything else.
        store.prune("mc-1", &newer_path).unwrap();
        assert!(!new_path.exists() && newer_path.exists());

        assert!(matches!(store.save("../x", &new), Err(KeyError::CertificateId(_))));
    }
}
