//! PEM file connectors: certificate and key files (NGINX, Apache, Postfix, Dovecot, File), a
//! combined PEM (HAProxy), a certificate directory (Traefik, Caddy) and Envoy with its SDS file.

use std::path::Path;

use certctl_api::{CertKeyFiles, CombinedPem, EnvoyConfig, PlainFiles, TargetConfig};

use super::Connector;
use crate::deploy::engine::StagedFile;
use crate::deploy::{DeployFailure, Material};

const PUBLIC: u32 = 0o644;
const PRIVATE: u32 = 0o600;

fn key_file(config: &TargetConfig, path: impl AsRef<Path>, m: &Material) -> StagedFile {
    StagedFile::new(config, "key", path.as_ref(), m.key_pem.as_bytes().to_vec(), PRIVATE)
}

/// Certificate, key, and a chain file when configured (else the chain follows the leaf).
pub struct CertKey<'a> {
    pub config: &'a TargetConfig,
    pub files: &'a CertKeyFiles,
}

impl Connector for CertKey<'_> {
    fn files(&self, m: &Material) -> Result<Vec<StagedFile>, DeployFailure> {
        let cert = if self.files.chain_path.is_some() { m.leaf_pem() } else { m.fullchain_pem() };
        let mut out = vec![
            StagedFile::new(self.config, "cert", self.files.cert_path.as_str(), cert.into_bytes(), PUBLIC),
            key_file(self.config, self.files.key_path.as_str(), m),
        ];
        if let Some(chain) = &self.files.chain_path {
            out.push(StagedFile::new(self.config, "chain", chain.as_str(), m.chain_pem().into_bytes(), PUBLIC));
        }
        Ok(out)
    }
}

/// Plain files: as [`CertKey`], plus an optional full-chain file.
pub struct Plain<'a> {
    pub config: &'a TargetConfig,
    pub files: &'a PlainFiles,
}

impl Connector for Plain<'_> {
    fn files(&self, m: &Material) -> Result<Vec<StagedFile>, DeployFailure> {
        let f = self.files;
        let separate = f.chain_path.is_some() || f.fullchain_path.is_some();
        let cert = if separate { m.leaf_pem() } else { m.fullchain_pem() };
        let mut out = vec![
            StagedFile::new(self.config, "cert", f.cert_path.as_str(), cert.into_bytes(), PUBLIC),
            key_file(self.config, f.key_path.as_str(), m),
        ];
        if let Some(chain) = &f.chain_path {
            out.push(StagedFile::new(self.config, "chain", chain.as_str(), m.chain_pem().into_bytes(), PUBLIC));
        }
        if let Some(full) = &f.fullchain_path {
            out.push(StagedFile::new(self.config, "fullchain", full.as_str(), m.fullchain_pem().into_bytes(), PUBLIC));
        }
        Ok(out)
    }
}

/// HAProxy: leaf, chain and key in one file, private by default.
pub struct Combined<'a> {
    pub config: &'a TargetConfig,
    pub pem: &'a CombinedPem,
}

impl Connector for Combined<'_> {
    fn files(&self, m: &Material) -> Result<Vec<StagedFile>, DeployFailure> {
        let mut bytes = m.fullchain_pem().into_bytes();
        bytes.extend_from_slice(m.key_pem.as_bytes());
        Ok(vec![StagedFile::new(self.config, "pem", self.pem.pem_path.as_str(), bytes, PRIVATE)])
    }
}

/// A directory holding a full-chain certificate file and a key file.
pub struct Directory<'a> {
    pub config: &'a TargetConfig,
    pub dir: &'a str,
    pub cert_file: &'a str,
    pub key_file: &'a str,
}

impl Connector for Directory<'_> {
    fn files(&self, m: &Material) -> Result<Vec<StagedFile>, DeployFailure> {
        let dir = Path::new(self.dir);
        Ok(vec![
            StagedFile::new(self.config, "cert", dir.join(self.cert_file), m.fullchain_pem().into_bytes(), PUBLIC),
            key_file(self.config, dir.join(self.key_file), m),
        ])
    }
}

/// Envoy: certificate, key and optional chain in a directory, and optionally an SDS document
/// (`sds.yaml`) naming them for a file-watching SDS config source.
pub struct Envoy<'a> {
    pub config: &'a TargetConfig,
    pub envoy: &'a EnvoyConfig,
}

impl Connector for Envoy<'_> {
    fn files(&self, m: &Material) -> Result<Vec<StagedFile>, DeployFailure> {
        let e = self.envoy;
        let dir = Path::new(e.cert_dir.as_str());
        let cert_path = dir.join(e.cert_filename.as_str());
        let key_path = dir.join(e.key_filename.as_str());
        let cert = if e.chain_filename.is_some() { m.leaf_pem() } else { m.fullchain_pem() };
        let mut out = vec![
            StagedFile::new(self.config, "cert", &cert_path, cert.into_bytes(), PUBLIC),
            key_file(self.config, &key_path, m),
        ];
        if let Some(chain) = &e.chain_filename {
            out.push(StagedFile::new(
                self.config,
                "chain",
                dir.join(chain.as_str()),
                m.chain_pem().into_bytes(),
                PUBLIC,
            ));
        }
        if e.sds_config {
            let sds = format!(
                "resources:\n- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n  \
                 name: certctl\n  tls_certificate:\n    certificate_chain:\n      filename: {}\n    private_key:\n      \
                 filename: {}\n",
                yaml_string(&cert_path),
                yaml_string(&key_path)
            );
            out.push(StagedFile::new(self.config, "sds", dir.join("sds.yaml"), sds.into_bytes(), PUBLIC));
        }
        Ok(out)
    }
}

/// A path as a double-quoted YAML scalar (JSON string syntax is valid YAML).
fn yaml_string(path: &Path) -> String {
    serde_json::Value::String(path.to_string_lossy().into_owned()).to_string()
}
