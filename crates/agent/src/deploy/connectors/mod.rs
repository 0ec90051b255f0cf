//! The connector seam: what each target type writes and what it runs after. Everything else
//! (skip, backup, staging, validate, reload, verify, rollback) is the engine's.

mod caddy_api;
mod keystore;
mod pem_files;

use certctl_api::{CaddyMode, TargetConfig, TargetKind};
use zeroize::Zeroizing;

use super::engine::{Action, StagedFile};
use super::{DeployFailure, Material, sha256_hex};

/// A target type's part of a deployment.
pub trait Connector {
    /// The files to put in place, with their contents.
    fn files(&self, material: &Material) -> Result<Vec<StagedFile>, DeployFailure>;

    /// What replaces the reload command, for targets driven through an API.
    fn action(&self, _material: &Material) -> Result<Option<Action>, DeployFailure> {
        Ok(None)
    }

    /// Whether `existing` already holds what `file` would write (byte-identical by default).
    fn same_content(&self, file: &StagedFile, existing: &Zeroizing<Vec<u8>>) -> bool {
        sha256_hex(existing) == sha256_hex(&file.contents)
    }
}

/// The connector for a parsed configuration.
pub fn for_config(config: &TargetConfig) -> Box<dyn Connector + '_> {
    match &config.kind {
        TargetKind::Nginx(files)
        | TargetKind::Apache(files)
        | TargetKind::Postfix(files)
        | TargetKind::Dovecot(files) => Box::new(pem_files::CertKey { config, files }),
        TargetKind::File(files) => Box::new(pem_files::Plain { config, files }),
        TargetKind::HaProxy(pem) => Box::new(pem_files::Combined { config, pem }),
        TargetKind::Traefik(dir) => Box::new(pem_files::Directory {
            config,
            dir: dir.cert_dir.as_str(),
            cert_file: dir.cert_file.as_str(),
            key_file: dir.key_file.as_str(),
        }),
        TargetKind::Caddy(caddy) => match (caddy.mode, &caddy.cert_dir) {
            (CaddyMode::File, Some(dir)) => Box::new(pem_files::Directory {
                config,
                dir: dir.as_str(),
                cert_file: caddy.cert_file.as_str(),
                key_file: caddy.key_file.as_str(),
            }),
            _ => Box::new(caddy_api::CaddyApi { caddy }),
        },
        TargetKind::Envoy(envoy) => Box::new(pem_files::Envoy { config, envoy }),
        TargetKind::JavaKeystore(ks) => Box::new(keystore::Keystore { config, ks }),
    }
}
