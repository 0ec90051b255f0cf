//! Java keystores: a PKCS#12 file holding the key and chain under one alias.

use aws_lc_rs::digest;
use certctl_api::{KeystoreConfig, TargetConfig};
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy, PrivateKey, PrivateKeyChain};
use zeroize::Zeroizing;

use super::Connector;
use crate::deploy::engine::StagedFile;
use crate::deploy::{DeployFailure, Material};

pub struct Keystore<'a> {
    pub config: &'a TargetConfig,
    pub ks: &'a KeystoreConfig,
}

impl Connector for Keystore<'_> {
    fn files(&self, m: &Material) -> Result<Vec<StagedFile>, DeployFailure> {
        let bytes = pkcs12(m, &self.ks.alias, self.ks.keystore_password.expose())?;
        Ok(vec![StagedFile::new(self.config, "keystore", self.ks.keystore_path.as_str(), bytes, 0o600)])
    }

    /// PKCS#12 encryption is salted, so equal content means the same key and chain under the
    /// alias, both stores read back with the password.
    fn same_content(&self, file: &StagedFile, existing: &Zeroizing<Vec<u8>>) -> bool {
        let read = |bytes: &[u8]| {
            let store =
                KeyStore::from_pkcs12(bytes, self.ks.keystore_password.expose(), Pkcs12ImportPolicy::Relaxed).ok()?;
            match store.entry(&self.ks.alias)? {
                KeyStoreEntry::PrivateKeyChain(chain) => Some((
                    store.entries_len(),
                    Zeroizing::new(chain.key().as_der().to_vec()),
                    chain.certs().iter().map(|c| c.as_der().to_vec()).collect::<Vec<_>>(),
                )),
                _ => None,
            }
        };
        match (read(existing), read(&file.contents)) {
            (Some(old), Some(new)) => old == new,
            _ => false,
        }
    }
}

/// A PKCS#12 keystore with `alias` → key + leaf + intermediates.
pub fn pkcs12(m: &Material, alias: &str, password: &str) -> Result<Vec<u8>, DeployFailure> {
    let refused = |e: p12_keystore::error::Error| DeployFailure::new(format!("cannot build the PKCS#12 keystore: {e}"));
    let key_der = m.key_der()?;
    let key = PrivateKey::from_der(&key_der).map_err(refused)?;
    let certs = std::iter::once(&m.leaf_der)
        .chain(&m.chain_der)
        .map(|der| p12_keystore::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(refused)?;
    // The localKeyId ties the key to the leaf; OpenSSL and keytool use the leaf's SHA-1.
    let local_key_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &m.leaf_der).as_ref().to_vec();
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)));
    store.writer(password).write().map_err(refused)
}
