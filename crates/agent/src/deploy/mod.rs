//! Deployment: the certificate material, the connector seam (what each target type writes), and
//! one engine that every connector goes through.

mod command;
pub mod connectors;
pub mod engine;
mod files;

use aws_lc_rs::digest;
use certctl_api::{TargetConfig, VerificationReport};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use zeroize::Zeroizing;

pub use engine::{Action, Outcome, Plan, StagedFile};

/// A deployment that did not complete; `reason` goes into the job's `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct DeployFailure {
    pub reason: String,
    /// The TLS check's result, when it ran.
    pub verification: Option<VerificationReport>,
}

impl DeployFailure {
    pub fn new(reason: impl Into<String>) -> DeployFailure {
        DeployFailure { reason: reason.into(), verification: None }
    }
}

/// What is deployed: the certificate chain and its private key.
#[derive(Clone)]
pub struct Material {
    pub leaf_der: Vec<u8>,
    /// Intermediates, leaf excluded, in the order served.
    pub chain_der: Vec<Vec<u8>>,
    /// PKCS#8 PEM.
    pub key_pem: Zeroizing<String>,
    /// Lower-case hex SHA-256 of the leaf.
    pub fingerprint: String,
    /// The leaf's CN, else its first DNS SAN: the default SNI of the TLS check.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl Material {
    /// Reads a PEM chain (leaf first) and the leaf's key.
    pub fn new(chain_pem: &str, key_pem: Zeroizing<String>) -> Result<Material, DeployFailure> {
        let blocks = ::pem::parse_many(chain_pem.as_bytes())
            .map_err(|e| DeployFailure::new(format!("the certificate PEM does not parse: {e}")))?;
        let mut certs = blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE").map(::pem::Pem::into_contents);
        let leaf_der = certs.next().ok_or_else(|| DeployFailure::new("the certificate PEM holds no certificate"))?;
        let (_, leaf) = X509Certificate::from_der(&leaf_der)
            .map_err(|e| DeployFailure::new(format!("the leaf certificate does not parse: {e}")))?;
        let server_name = server_name_of(&leaf);
        Ok(Material { fingerprint: sha256_hex(&leaf_der), leaf_der, chain_der: certs.collect(), key_pem, server_name })
    }

    pub fn leaf_pem(&self) -> String {
        pem_of(&self.leaf_der)
    }

    /// The intermediates as PEM (empty when there are none).
    pub fn chain_pem(&self) -> String {
        self.chain_der.iter().map(|d| pem_of(d)).collect()
    }

    /// Leaf then intermediates.
    pub fn fullchain_pem(&self) -> String {
        self.leaf_pem() + &self.chain_pem()
    }

    /// The key's PKCS#8 DER.
    pub fn key_der(&self) -> Result<Zeroizing<Vec<u8>>, DeployFailure> {
        ::pem::parse(self.key_pem.as_bytes())
            .map(|p| Zeroizing::new(p.into_contents()))
            .map_err(|e| DeployFailure::new(format!("the private key does not parse: {e}")))
    }
}

fn server_name_of(leaf: &X509Certificate<'_>) -> Option<String> {
    let cn = leaf.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    // A CN such as "Payments service" cannot be sent as SNI; the first DNS SAN can.
    let usable = |name: &String| rustls::pki_types::ServerName::try_from(name.trim_start_matches("*.")).is_ok();
    cn.filter(usable).or_else(|| {
        leaf.extensions().iter().find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => san.general_names.iter().find_map(|n| match n {
                GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            }),
            _ => None,
        })
    })
}

pub fn pem_of(der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new("CERTIFICATE", der.to_vec()),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// Deploys `material` to a target of `config` through its connector and the engine.
pub async fn deploy(config: &TargetConfig, material: &Material) -> Result<Outcome, DeployFailure> {
    let connector = connectors::for_config(config);
    let plan = Plan::build(config, connector.as_ref(), material)?;
    engine::apply(&plan, connector.as_ref(), material).await
}
