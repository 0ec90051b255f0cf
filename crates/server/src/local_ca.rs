//! The built-in local CA: which CA of an issuer signs, creating the root on first use, and
//! keeping decrypted CA keys in memory so issuance does not decrypt on every request.
//!
//! Decrypted material (certificate and key) is immutable and cached for good. What an issuer
//! signs with (its configuration and its current signing CA) is cached for `SIGNER_TTL`: a
//! change made through this replica (issuer update, intermediate created or retired) drops the
//! cache at once, and one made through another replica takes effect here within `SIGNER_TTL`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use certctl_api::{IssuerType, NameConstraints};
use certctl_pki::PkiError;
use certctl_pki::ca::{CaCert, CaSpec};
use certctl_pki::constraints::NameConstraintSet;
use certctl_pki::keys::{KeySpec, PrivateKey};
use certctl_store::{Actor, CaRecord, CaState, NewCa, StoreError};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::ttl_cache::TtlCache;

/// Leaf validity when the issuer config names none.
const DEFAULT_LEAF_DAYS: i64 = 90;
/// Validity of a generated root.
const DEFAULT_ROOT_DAYS: i64 = 3650;

/// The local-CA part of an issuer's configuration.
#[derive(Debug, Clone)]
pub struct LocalCaConfig {
    pub ca_cert_pem: Option<String>,
    pub ca_key_pem: Option<String>,
    pub key_algorithm: KeySpec,
    pub common_name: Option<String>,
    pub organization: Option<String>,
    pub validity_days: i64,
    pub ca_validity_days: i64,
}

fn text(config: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::Unprocessable(format!("config.{key}: must be a string"))),
    }
}

fn days(config: &Map<String, Value>, key: &str, default: i64, max: i64) -> ApiResult<i64> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_i64() {
            Some(d) if (1..=max).contains(&d) => Ok(d),
            _ => Err(ApiError::Unprocessable(format!("config.{key}: must be a whole number of days from 1 to {max}"))),
        },
    }
}

fn read_file(config: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match text(config, key)? {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| ApiError::Unprocessable(format!("config.{key}: cannot read {path}: {e}"))),
    }
}

impl LocalCaConfig {
    /// Reads the local-CA settings of a decrypted issuer configuration. Inline PEM wins over
    /// paths; a certificate without its key (or the reverse) is refused.
    pub fn parse(config: &Map<String, Value>) -> ApiResult<Self> {
        let ca_cert_pem = match text(config, "ca_cert_pem")? {
            Some(pem) => Some(pem),
            None => read_file(config, "ca_cert_path")?,
        };
        let ca_key_pem = match text(config, "ca_key_pem")? {
            Some(pem) => Some(pem),
            None => read_file(config, "ca_key_path")?,
        };
        if ca_cert_pem.is_some() != ca_key_pem.is_some() {
            return Err(ApiError::Unprocessable(
                "config: a sub-CA needs both its certificate (ca_cert_pem or ca_cert_path) and its key \
                 (ca_key_pem or ca_key_path)"
                    .into(),
            ));
        }
        let key_algorithm = match text(config, "key_algorithm")? {
            Some(k) => KeySpec::parse(&k).map_err(|e| ApiError::Unprocessable(format!("config.key_algorithm: {e}")))?,
            None => KeySpec::EcdsaP256,
        };
        Ok(LocalCaConfig {
            ca_cert_pem,
            ca_key_pem,
            key_algorithm,
            common_name: text(config, "common_name")?,
            organization: text(config, "organization")?,
            validity_days: days(config, "validity_days", DEFAULT_LEAF_DAYS, 3650)?,
            ca_validity_days: days(config, "ca_validity_days", DEFAULT_ROOT_DAYS, 36500)?,
        })
    }
}

fn check_not_expired(issuer_id: &str, record: &CaRecord, now: OffsetDateTime) -> ApiResult<()> {
    if record.not_after <= now {
        return Err(ApiError::Conflict(format!(
            "certificate authority '{}' of issuer '{issuer_id}' expired on {}",
            record.id, record.not_after
        )));
    }
    Ok(())
}

/// A CA ready to sign: its stored record and its decrypted material.
pub struct LoadedCa {
    pub record: CaRecord,
    pub ca: Arc<CaCert>,
}

/// How long an issuer's configuration and signing CA are used without asking the database
/// again; bounds how long another replica's change takes to apply here.
const SIGNER_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// What an issuer signs new certificates with.
#[derive(Clone)]
pub struct Signer {
    pub config: Arc<LocalCaConfig>,
    pub ca: Arc<LoadedCa>,
}

/// Decrypted CA material by CA ID, and each issuer's signer and type for a short while.
pub struct Authorities {
    material: RwLock<HashMap<String, Arc<CaCert>>>,
    signers: Mutex<HashMap<String, (Signer, Instant)>>,
    types: TtlCache<IssuerType>,
}

impl Default for Authorities {
    fn default() -> Self {
        Authorities { material: Default::default(), signers: Default::default(), types: TtlCache::new(SIGNER_TTL) }
    }
}

/// The sealing context of a CA key.
pub fn key_context(ca_id: &str) -> String {
    format!("ca:{ca_id}")
}

/// The ID of the root an issuer gets on first use; fixed, so replicas racing to create it
/// collide on the primary key instead of making two roots.
fn root_id(issuer_id: &str) -> String {
    format!("ca-root-{issuer_id}")
}

pub fn pki_error(e: PkiError) -> ApiError {
    match e {
        PkiError::MalformedCsr(_) | PkiError::InvalidParameter(_) => ApiError::BadRequest(e.to_string()),
        PkiError::Policy(_) | PkiError::Constraint(_) | PkiError::InvalidPem(_) => {
            ApiError::Unprocessable(e.to_string())
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// Converts wire name constraints to the PKI form, naming the bad entry.
pub fn constraints_from_wire(nc: &NameConstraints) -> ApiResult<NameConstraintSet> {
    fn cidrs(field: &str, list: &[String]) -> ApiResult<Vec<(std::net::IpAddr, u8)>> {
        list.iter()
            .map(|c| {
                let (addr, len) = c.split_once('/').unwrap_or((c.as_str(), ""));
                let ip: std::net::IpAddr = addr.parse().map_err(|_| {
                    ApiError::BadRequest(format!("name_constraints.{field}: '{c}' is not a CIDR block"))
                })?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len = if len.is_empty() {
                    max
                } else {
                    len.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| {
                        ApiError::BadRequest(format!("name_constraints.{field}: '{c}' has a bad prefix length"))
                    })?
                };
                Ok((ip, len))
            })
            .collect()
    }
    Ok(NameConstraintSet {
        permitted_dns: nc.permitted_dns.iter().map(|d| d.trim().to_ascii_lowercase()).collect(),
        excluded_dns: nc.excluded_dns.iter().map(|d| d.trim().to_ascii_lowercase()).collect(),
        permitted_ip: cidrs("permitted_ip", &nc.permitted_ip)?,
        excluded_ip: cidrs("excluded_ip", &nc.excluded_ip)?,
        permitted_email: nc.permitted_email.clone(),
        excluded_email: nc.excluded_email.clone(),
    })
}

pub fn constraints_to_wire(nc: &NameConstraintSet) -> NameConstraints {
    let cidr = |list: &[(std::net::IpAddr, u8)]| list.iter().map(|(ip, len)| format!("{ip}/{len}")).collect();
    NameConstraints {
        permitted_dns: nc.permitted_dns.clone(),
        excluded_dns: nc.excluded_dns.clone(),
        permitted_ip: cidr(&nc.permitted_ip),
        excluded_ip: cidr(&nc.excluded_ip),
        permitted_email: nc.permitted_email.clone(),
        excluded_email: nc.excluded_email.clone(),
    }
}

/// The decrypted configuration of an issuer.
pub async fn issuer_config(s: &AppState, issuer_id: &str) -> ApiResult<Map<String, Value>> {
    let Some(sealed) = s.store.issuer_sealed_config(issuer_id).await? else {
        return Ok(Map::new());
    };
    let plain = s
        .secrets
        .open(&format!("issuer:{issuer_id}"), &sealed)
        .map_err(|e| ApiError::Internal(format!("issuer '{issuer_id}' configuration cannot be decrypted: {e}")))?;
    serde_json::from_slice(&plain)
        .map_err(|e| ApiError::Internal(format!("issuer '{issuer_id}' configuration is not JSON: {e}")))
}

impl Authorities {
    /// The decrypted material of a stored CA.
    pub fn material(&self, s: &AppState, record: &CaRecord) -> ApiResult<Arc<CaCert>> {
        if let Some(ca) = self.material.read().unwrap_or_else(|e| e.into_inner()).get(&record.id) {
            return Ok(ca.clone());
        }
        let key_der = s.secrets.open(&key_context(&record.id), &record.sealed_key).map_err(|e| {
            ApiError::Internal(format!("the key of certificate authority '{}' cannot be decrypted: {e}", record.id))
        })?;
        let key = PrivateKey::from_pkcs8_der(&key_der).map_err(pki_error)?;
        let cert_der = certctl_pki::export::pem_certs_to_der(&record.cert_pem).map_err(pki_error)?;
        let chain_der = if record.chain_pem.trim().is_empty() {
            Vec::new()
        } else {
            certctl_pki::export::pem_certs_to_der(&record.chain_pem).map_err(pki_error)?
        };
        let Some(cert_der) = cert_der.into_iter().next() else {
            return Err(ApiError::Internal(format!("certificate authority '{}' has no certificate", record.id)));
        };
        let ca = Arc::new(CaCert::from_parts(cert_der, key, chain_der).map_err(pki_error)?);
        self.material.write().unwrap_or_else(|e| e.into_inner()).insert(record.id.clone(), ca.clone());
        Ok(ca)
    }

    pub async fn load(&self, s: &AppState, ca_id: &str) -> ApiResult<LoadedCa> {
        let record = s.store.ca(ca_id).await?;
        let ca = self.material(s, &record)?;
        Ok(LoadedCa { record, ca })
    }

    /// The issuer's configuration and signing CA, from the cache while it is fresh.
    pub async fn signer(&self, s: &AppState, issuer_id: &str) -> ApiResult<Signer> {
        let cached = self.signers.lock().unwrap_or_else(|e| e.into_inner()).get(issuer_id).cloned();
        let signer = match cached {
            Some((signer, at)) if at.elapsed() < SIGNER_TTL => signer,
            _ => {
                let config = Arc::new(LocalCaConfig::parse(&issuer_config(s, issuer_id).await?)?);
                let ca = Arc::new(self.signing_ca(s, issuer_id).await?);
                let signer = Signer { config, ca };
                self.signers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(issuer_id.to_owned(), (signer.clone(), Instant::now()));
                signer
            }
        };
        check_not_expired(issuer_id, &signer.ca.record, s.clock.now())?;
        Ok(signer)
    }

    /// The issuer's type, which decides how it issues; cached like its signer.
    pub async fn issuer_type(&self, s: &AppState, issuer_id: &str) -> ApiResult<IssuerType> {
        self.types.get_or_load(issuer_id, async { Ok(s.store.issuer(issuer_id).await?.issuer_type) }).await
    }

    /// Drops every cached signer and issuer type; called after any change to issuers or their
    /// CAs.
    pub fn forget_signers(&self) {
        self.signers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.types.clear();
    }

    /// The CA that signs new certificates for an issuer: its newest active CA, with the root
    /// created (or imported from the issuer configuration) on first use.
    pub async fn signing_ca(&self, s: &AppState, issuer_id: &str) -> ApiResult<LoadedCa> {
        let mut cas = s.store.issuer_cas(issuer_id).await?;
        if cas.is_empty() {
            self.ensure_root(s, issuer_id).await?;
            cas = s.store.issuer_cas(issuer_id).await?;
        }
        let record = cas.into_iter().rev().find(|c| c.state == CaState::Active).ok_or_else(|| {
            ApiError::Conflict(format!("issuer '{issuer_id}' has no active certificate authority; all are retired"))
        })?;
        check_not_expired(issuer_id, &record, s.clock.now())?;
        let ca = self.material(s, &record)?;
        Ok(LoadedCa { record, ca })
    }

    /// The ID of the issuer's root CA, creating it when the issuer has none.
    pub async fn ensure_root_id(&self, s: &AppState, issuer_id: &str) -> ApiResult<String> {
        let cas = s.store.issuer_cas(issuer_id).await?;
        if let Some(root) = cas.iter().find(|c| c.parent_ca_id.is_none()) {
            return Ok(root.id.clone());
        }
        Ok(self.ensure_root(s, issuer_id).await?.id)
    }

    /// Creates the issuer's root CA (or imports its configured sub-CA) when it has none.
    pub async fn ensure_root(&self, s: &AppState, issuer_id: &str) -> ApiResult<CaRecord> {
        let issuer = s.store.issuer(issuer_id).await?;
        if issuer.issuer_type != IssuerType::GenericCa {
            return Err(ApiError::Unprocessable(format!(
                "issuer '{issuer_id}' is of type {} and certctl cannot issue through it yet; use a GenericCA \
                 (local CA) issuer",
                issuer.issuer_type
            )));
        }
        if !issuer.enabled {
            return Err(ApiError::Conflict(format!("issuer '{issuer_id}' is disabled")));
        }
        let config = LocalCaConfig::parse(&issuer_config(s, issuer_id).await?)?;
        let now = s.clock.now();
        let id = root_id(issuer_id);
        let (ca, source) = match (&config.ca_cert_pem, &config.ca_key_pem) {
            (Some(cert), Some(key)) => (CaCert::from_pem(cert, key).map_err(pki_error)?, "imported"),
            _ => {
                let spec = CaSpec {
                    common_name: config
                        .common_name
                        .clone()
                        .unwrap_or_else(|| format!("certctl Local CA {}", issuer.name)),
                    organization: config.organization.clone(),
                    key: config.key_algorithm,
                    validity: Duration::days(config.ca_validity_days),
                    path_len: None,
                    name_constraints: NameConstraintSet::default(),
                };
                let ca = tokio::task::spawn_blocking(move || CaCert::create_root(&spec, now))
                    .await
                    .map_err(|e| ApiError::Internal(format!("CA generation panicked: {e}")))?
                    .map_err(pki_error)?;
                (ca, "generated")
            }
        };
        let new = new_ca_record(s, &id, issuer_id, None, &issuer.name, source, &ca);
        match s.store.create_ca(&new, &Actor::system(), now).await {
            Ok(record) => {
                tracing::info!(issuer_id, ca_id = %record.id, source, "local CA ready");
                Ok(record)
            }
            // Another replica created it first; use theirs.
            Err(StoreError::Conflict(_)) => Ok(s.store.ca(&id).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a child CA under `parent`, enforcing path length and name constraints.
    pub async fn create_child(
        &self,
        s: &AppState,
        parent: &LoadedCa,
        id: &str,
        name: &str,
        spec: CaSpec,
        actor: &Actor,
    ) -> ApiResult<CaRecord> {
        if parent.record.state != CaState::Active {
            return Err(ApiError::Conflict(format!(
                "parent CA '{}' is {} and cannot sign new CAs",
                parent.record.id,
                parent.record.state.as_str()
            )));
        }
        let now = s.clock.now();
        let parent_ca = parent.ca.clone();
        let child = tokio::task::spawn_blocking(move || parent_ca.issue_child(&spec, now))
            .await
            .map_err(|e| ApiError::Internal(format!("CA generation panicked: {e}")))?
            .map_err(pki_error)?;
        let new = new_ca_record(
            s,
            id,
            &parent.record.issuer_id,
            Some(parent.record.id.clone()),
            name,
            "intermediate",
            &child,
        );
        Ok(s.store.create_ca(&new, actor, now).await?)
    }
}

fn new_ca_record(
    s: &AppState,
    id: &str,
    issuer_id: &str,
    parent: Option<String>,
    name: &str,
    source: &str,
    ca: &CaCert,
) -> NewCa {
    let info = ca.info();
    let chain_pem = ca.chain_pem();
    // chain_pem() starts with the CA itself; the record keeps only the ancestors.
    let own = ca.cert_pem();
    let ancestors = chain_pem.strip_prefix(&own).unwrap_or("").trim_start().to_owned();
    NewCa {
        id: id.to_owned(),
        issuer_id: issuer_id.to_owned(),
        parent_ca_id: parent,
        name: name.to_owned(),
        source: source.to_owned(),
        cert_pem: own,
        chain_pem: ancestors,
        sealed_key: s.secrets.seal(&key_context(id), ca.key().pkcs8_der()),
        subject: info.subject,
        serial_number: info.serial_hex,
        key_algorithm: info.key.as_str().to_owned(),
        path_len: info.path_len.map(i64::from),
        name_constraints: serde_json::to_value(constraints_to_wire(&info.name_constraints)).unwrap_or(Value::Null),
        not_before: info.not_before,
        not_after: info.not_after,
    }
}

/// Whether a time is inside a CA's validity.
pub fn ca_valid_at(record: &CaRecord, now: OffsetDateTime) -> bool {
    record.not_before <= now && now < record.not_after
}
