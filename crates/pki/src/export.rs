//! Certificate exports: PEM chains split into leaf and issuers, and PKCS#12 bundles.

use aws_lc_rs::digest;
use der::pem::LineEnding;
use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{KeyPair, PublicKeyData};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// The DER of every CERTIFICATE block in `pem`, in order. Other blocks (keys, parameters) and
/// text around the blocks are skipped; a certificate block that does not parse is an error.
pub fn pem_certs_to_der(pem: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let mut certs = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| PkiError::InvalidPem(e.to_string()))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        match X509Certificate::from_der(&block.contents) {
            Ok(([], _)) => certs.push(block.contents),
            Ok(_) => return Err(PkiError::InvalidPem("trailing data after a certificate".into())),
            Err(e) => return Err(PkiError::InvalidPem(format!("certificate {}: {e}", certs.len() + 1))),
        }
    }
    if certs.is_empty() {
        return Err(PkiError::InvalidPem("no certificate found".into()));
    }
    Ok(certs)
}

/// Splits a PEM chain into the first certificate (the leaf) and the rest, each re-encoded as
/// canonical PEM; the rest is empty when the chain has one certificate.
pub fn split_pem_chain(pem: &str) -> Result<(String, String), PkiError> {
    let certs = pem_certs_to_der(pem)?;
    let leaf = der_to_pem(&certs[0])?;
    let rest = certs[1..].iter().map(|c| der_to_pem(c)).collect::<Result<String, _>>()?;
    Ok((leaf, rest))
}

fn der_to_pem(der: &[u8]) -> Result<String, PkiError> {
    der::pem::encode_string("CERTIFICATE", LineEnding::LF, der).map_err(|e| PkiError::Encode(e.to_string()))
}

/// A PKCS#12 bundle of `chain_der` (leaf first) and, when given, the leaf's private key, encrypted
/// with PBES2/AES-256-CBC and MACed with HMAC-SHA-256 under `password`. Without a key the bundle
/// holds certificates only, as trust stores do.
pub fn pkcs12(
    chain_der: &[Vec<u8>],
    key_pkcs8_der: Option<&[u8]>,
    password: &str,
    friendly_name: &str,
) -> Result<Vec<u8>, PkiError> {
    let Some(leaf) = chain_der.first() else {
        return Err(PkiError::InvalidParameter("a PKCS#12 export needs at least one certificate".into()));
    };
    // p12-keystore writes no unencrypted stores, and an empty password is read differently by
    // different consumers (empty BMPString or none), so it is refused rather than half-supported.
    if password.is_empty() {
        return Err(PkiError::InvalidParameter("the PKCS#12 password must not be empty".into()));
    }
    let alias = if friendly_name.is_empty() { "certificate" } else { friendly_name };
    let certs = chain_der
        .iter()
        .map(|der| p12_keystore::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::InvalidPem(format!("certificate: {e}")))?;

    let mut store = KeyStore::new();
    match key_pkcs8_der {
        Some(key_der) => {
            check_key_matches(leaf, key_der)?;
            let key = PrivateKey::from_der(key_der).map_err(|e| PkiError::InvalidPem(format!("private key: {e}")))?;
            // The localKeyId ties the key bag to the leaf's bag; OpenSSL uses the SHA-1 of the
            // certificate for it, and so do we.
            let local_key_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, leaf).as_ref().to_vec();
            store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)));
        }
        None => {
            for (i, cert) in certs.into_iter().enumerate() {
                // Entries are written in alias order, so the suffix keeps the chain order.
                let name = if i == 0 { alias.to_owned() } else { format!("{alias} chain {i:02}") };
                store.add_entry(&name, KeyStoreEntry::Certificate(cert));
            }
        }
    }
    store.writer(password).write().map_err(|e| PkiError::Encode(format!("PKCS#12: {e}")))
}

fn check_key_matches(leaf_der: &[u8], key_der: &[u8]) -> Result<(), PkiError> {
    let (_, leaf) = X509Certificate::from_der(leaf_der).map_err(|e| PkiError::InvalidPem(format!("leaf: {e}")))?;
    let key = KeyPair::try_from(key_der).map_err(|e| PkiError::InvalidPem(format!("private key: {e}")))?;
    if key.der_bytes() != leaf.public_key().subject_public_key.data.as_ref() {
        return Err(PkiError::InvalidParameter("the private key does not belong to the leaf certificate".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use p12_keystore::Pkcs12ImportPolicy;
    use time::OffsetDateTime;

    use super::*;
    use crate::bootstrap::{create_ca, issue_server_cert};

    fn chain() -> (String, String, String) {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let ca = create_ca("export test CA", now).unwrap();
        let leaf = issue_server_cert(&ca, &["leaf.example".to_owned()], now).unwrap();
        (leaf.cert_pem, leaf.key_pem, ca.cert_pem)
    }

    #[test]
    fn splits_chains_and_skips_other_blocks() {
        let (leaf, key, ca) = chain();
        let messy = format!("subject=leaf\n{leaf}\n\n{key}issuer\n{ca}");
        let (got_leaf, rest) = split_pem_chain(&messy).unwrap();
        assert_eq!(pem_certs_to_der(&got_leaf).unwrap(), pem_certs_to_der(&leaf).unwrap());
        assert_eq!(pem_certs_to_der(&rest).unwrap(), pem_certs_to_der(&ca).unwrap());
        assert!(got_leaf.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(pem_certs_to_der(&messy).unwrap().len(), 2);

        let (alone, empty) = split_pem_chain(&leaf).unwrap();
        assert_eq!(alone.trim(), leaf.trim());
        assert!(empty.is_empty());
    }

    #[test]
    fn refuses_input_without_certificates() {
        let (_, key, _) = chain();
        for bad in ["", "hello", key.as_str(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"] {
            assert!(matches!(split_pem_chain(bad), Err(PkiError::InvalidPem(_))), "{bad:?}");
            assert!(matches!(pem_certs_to_der(bad), Err(PkiError::InvalidPem(_))), "{bad:?}");
        }
    }

    #[test]
    fn pkcs12_round_trips_through_p12_keystore() {
        let (leaf, key_pem, ca) = chain();
        let certs = pem_certs_to_der(&format!("{leaf}{ca}")).unwrap();
        let key_der = KeyPair::from_pem(&key_pem).unwrap().serialize_der();

        let with_key = pkcs12(&certs, Some(&key_der), "secret", "my leaf").unwrap();
        let store = KeyStore::from_pkcs12(&with_key, "secret", Pkcs12ImportPolicy::Strict).unwrap();
        let (alias, keychain) = store.private_key_chain().unwrap();
        assert_eq!(alias, "my leaf");
        assert_eq!(keychain.key().as_der(), key_der);
        let stored: Vec<&[u8]> = keychain.certs().iter().map(|c| c.as_der()).collect();
        assert_eq!(stored, [certs[0].as_slice(), certs[1].as_slice()]);
        assert!(KeyStore::from_pkcs12(&with_key, "wrong", Pkcs12ImportPolicy::Strict).is_err());

        let certs_only = pkcs12(&certs, None, "secret", "trust").unwrap();
        let store = KeyStore::from_pkcs12(&certs_only, "secret", Pkcs12ImportPolicy::Raw).unwrap();
        assert!(store.private_key_chain().is_none());
        assert_eq!(store.entries_len(), 2);

        let (_, other_key, _) = chain();
        let other_der = KeyPair::from_pem(&other_key).unwrap().serialize_der();
        assert!(matches!(pkcs12(&certs, Some(&other_der), "secret", "x"), Err(PkiError::InvalidParameter(_))));
        assert!(matches!(pkcs12(&[], None, "secret", "x"), Err(PkiError::InvalidParameter(_))));
        assert!(matches!(pkcs12(&certs, None, "", "x"), Err(PkiError::InvalidParameter(_))));
    }
}
