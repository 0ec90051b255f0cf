//! The HTTPS listener's certificate: the operator's files, or one issued at start-up from a
//! bootstrap CA kept under `$CERTCTL_DATA_DIR/tls` (its certificate at `tls/ca.pem` for clients
//! to trust).

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use time::{Duration, OffsetDateTime};

use certctl_pki::bootstrap::{self, PemPair};

use crate::config::{Config, TlsSource};
use crate::fsutil::{write_private, write_public};

/// PEM certificate chain and key for the listener.
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Re-issue the bootstrap server certificate when it has less than this left.
const RENEW_BEFORE: Duration = Duration::days(30);

pub fn load(config: &Config, now: OffsetDateTime) -> anyhow::Result<ServerTls> {
    match &config.tls {
        TlsSource::Files { cert, key } => Ok(ServerTls {
            cert_pem: std::fs::read_to_string(cert)
                .with_context(|| format!("CERTCTL_TLS_CERT_PATH: cannot read {}", cert.display()))?,
            key_pem: std::fs::read_to_string(key)
                .with_context(|| format!("CERTCTL_TLS_KEY_PATH: cannot read {}", key.display()))?,
        }),
        TlsSource::Bootstrap => bootstrap(&config.data_dir.join("tls"), &server_names(config), now),
    }
}

/// Names the bootstrap certificate covers: loopback, the listen address and the external host.
fn server_names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let ip = config.listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    let host = config
        .external_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|authority| match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        })
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned());
    if let Some(host) = host {
        let canonical = host.parse::<IpAddr>().map(|ip| ip.to_string()).unwrap_or(host);
        names.push(canonical);
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn bootstrap(dir: &Path, names: &[String], now: OffsetDateTime) -> anyhow::Result<ServerTls> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let ca = match (std::fs::read_to_string(&ca_cert), std::fs::read_to_string(&ca_key)) {
        (Ok(cert_pem), Ok(key_pem)) => PemPair { cert_pem, key_pem },
        _ => {
            let ca = bootstrap::create_ca("certctl bootstrap CA", now)?;
            write_private(&ca_key, ca.key_pem.as_bytes())?;
            write_public(&ca_cert, ca.cert_pem.as_bytes())?;
            tracing::info!(path = %ca_cert.display(), "created the bootstrap CA for the server's TLS certificate");
            ca
        }
    };
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    if let (Ok(cert_pem), Ok(key_pem)) = (std::fs::read_to_string(&cert_path), std::fs::read_to_string(&key_path)) {
        let fresh = bootstrap::not_after(&cert_pem).map(|t| t - RENEW_BEFORE > now).unwrap_or(false);
        let covered =
            bootstrap::san_names(&cert_pem).map(|have| names.iter().all(|n| have.contains(n))).unwrap_or(false);
        if fresh && covered {
            return Ok(ServerTls { cert_pem: format!("{cert_pem}{}", ca.cert_pem), key_pem });
        }
    }
    let leaf = bootstrap::issue_server_cert(&ca, names, now)?;
    write_private(&key_path, leaf.key_pem.as_bytes())?;
    write_public(&cert_path, leaf.cert_pem.as_bytes())?;
    tracing::info!(names = ?names, "issued the server's TLS certificate from the bootstrap CA");
    Ok(ServerTls { cert_pem: format!("{}{}", leaf.cert_pem, ca.cert_pem), key_pem: leaf.key_pem })
}
