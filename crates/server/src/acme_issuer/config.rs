//! The configuration of an ACME issuer: parsed when the issuer is saved (a mistake is a 400
//! naming the field) and again, from the decrypted document, before each use.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::notify::guard;

/// Where the built-in http-01 responder listens when the configuration names no address.
const DEFAULT_HTTP01_LISTEN: &str = "0.0.0.0:80";
/// How long a DNS hook command may run.
const DEFAULT_DNS_TIMEOUT_SECONDS: u64 = 60;
/// Longest DNS hook timeout and propagation wait accepted.
const MAX_DNS_SECONDS: u64 = 600;

/// How certctl proves control of the names it orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The built-in responder serves `/.well-known/acme-challenge/{token}` on `listen` while
    /// an order is validated.
    Http01 { listen: SocketAddr },
    /// Operator commands publish and remove the `_acme-challenge` TXT record.
    Dns01(DnsHooks),
}

/// The dns-01 hook commands, run as argv (never through a shell) with the record in
/// `CERTCTL_ACME_DNS_NAME`, `CERTCTL_ACME_DNS_FQDN` and `CERTCTL_ACME_DNS_VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsHooks {
    pub present: Vec<String>,
    pub cleanup: Option<Vec<String>>,
    /// Bound on each command run.
    pub timeout: Duration,
    /// Pause after publishing before the CA is asked to look, for DNS propagation.
    pub propagation: Duration,
}

/// External account binding credentials (RFC 8555 §7.3.4).
#[derive(Clone, PartialEq, Eq)]
pub struct Eab {
    pub kid: String,
    pub hmac_key: Vec<u8>,
}

impl fmt::Debug for Eab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Eab").field("kid", &self.kid).field("hmac_key", &certctl_api::REDACTED).finish()
    }
}

/// A validated ACME issuer configuration.
#[derive(Debug, Clone)]
pub struct AcmeIssuerConfig {
    pub directory_url: reqwest::Url,
    /// `mailto:` URIs.
    pub contact: Vec<String>,
    pub eab: Option<Eab>,
    pub challenge: Challenge,
    /// An ACME profile name (the profiles extension) to order with.
    pub profile: Option<String>,
    /// PEM certificates trusted for the ACME server's TLS instead of the system roots.
    pub ca_bundle_pem: Option<String>,
}

/// The configuration as sent; every key the issuer accepts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    directory_url: String,
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    eab_kid: Option<String>,
    #[serde(default)]
    eab_hmac_key: Option<String>,
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    http01_listen: Option<String>,
    #[serde(default)]
    dns_present_command: Option<Vec<String>>,
    #[serde(default)]
    dns_cleanup_command: Option<Vec<String>>,
    #[serde(default)]
    dns_timeout_seconds: Option<u64>,
    #[serde(default)]
    dns_propagation_seconds: Option<u64>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    ca_bundle_pem: Option<String>,
    #[serde(default)]
    ca_bundle_path: Option<String>,
}

fn bad(field: &str, message: impl fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("config.{field}: {message}"))
}

/// Deserializes with the path of the first offending key in the error.
fn raw(config: &Map<String, Value>) -> Result<Raw, ApiError> {
    // Blank strings and nulls mean "not set", as in the other issuer configurations.
    let cleaned: Map<String, Value> = config
        .iter()
        .filter(|(_, v)| !v.is_null() && !matches!(v, Value::String(s) if s.trim().is_empty()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_path_to_error::deserialize(Value::Object(cleaned)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(name) = quoted_after(&inner, "unknown field `") {
            return bad(name, "unknown field");
        }
        if let Some(name) = quoted_after(&inner, "missing field `") {
            return bad(name, "required");
        }
        let message = match inner.split_once(", expected ") {
            Some((_, expected)) => format!("expected {expected}"),
            None => inner,
        };
        if path == "." { ApiError::BadRequest(format!("config: {message}")) } else { bad(&path, message) }
    })
}

fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.strip_prefix(marker)?.split_once('`').map(|(name, _)| name)
}

fn is_loopback_host(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An https URL (http only for a loopback host when loopback targets are allowed), passing
/// the SSRF guard.
pub fn directory_url(value: &str, allow_loopback: bool) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(value.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must not carry credentials or a fragment".into());
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && is_loopback_host(&url) => {}
        _ => {
            return Err("must be an https URL (http only for a loopback host when \
                        CERTCTL_ALLOW_LOOPBACK_TARGETS=true)"
                .into());
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !allow_loopback && is_loopback_host(&url) {
        return Err("refusing a loopback host (set CERTCTL_ALLOW_LOOPBACK_TARGETS=true to allow it)".into());
    }
    guard::check_literal(&url, allow_loopback)?;
    Ok(url)
}

fn contact(value: &str) -> Result<String, String> {
    let address = value.trim().strip_prefix("mailto:").unwrap_or(value.trim());
    let (local, domain) = address.split_once('@').ok_or("must be an e-mail address")?;
    let clean = |s: &str| {
        !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | ',' | '<' | '>'))
    };
    if !clean(local) || !clean(domain) || !domain.contains('.') || address.len() > 254 {
        return Err(format!("'{value}' is not an e-mail address"));
    }
    Ok(format!("mailto:{address}"))
}

fn argv(field: &str, value: Vec<String>) -> Result<Vec<String>, ApiError> {
    match value.first() {
        Some(program) if !program.trim().is_empty() => {}
        _ => return Err(bad(field, "must be a non-empty argv array whose first element names the program")),
    }
    if value.iter().any(|a| a.contains('\0')) {
        return Err(bad(field, "arguments must not contain NUL"));
    }
    Ok(value)
}

fn seconds(field: &str, value: Option<u64>, default: u64) -> Result<Duration, ApiError> {
    match value.unwrap_or(default) {
        n if n <= MAX_DNS_SECONDS => Ok(Duration::from_secs(n)),
        _ => Err(bad(field, format!("must be at most {MAX_DNS_SECONDS} seconds"))),
    }
}

fn listen(value: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = value.trim().parse().map_err(|_| "must be ip:port, e.g. 0.0.0.0:80".to_owned())?;
    if addr.port() == 0 {
        return Err("must name a port".into());
    }
    Ok(addr)
}

fn ca_bundle(raw: &Raw) -> Result<Option<String>, ApiError> {
    let (field, pem) = match (&raw.ca_bundle_pem, &raw.ca_bundle_path) {
        (Some(pem), _) => ("ca_bundle_pem", pem.clone()),
        (None, Some(path)) => {
            if !path.starts_with('/') {
                return Err(bad("ca_bundle_path", "must be an absolute path"));
            }
            let pem =
                std::fs::read_to_string(path).map_err(|e| bad("ca_bundle_path", format!("cannot read {path}: {e}")))?;
            ("ca_bundle_path", pem)
        }
        (None, None) => return Ok(None),
    };
    match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
        Ok(certs) if !certs.is_empty() => Ok(Some(pem)),
        Ok(_) => Err(bad(field, "holds no PEM certificate")),
        Err(e) => Err(bad(field, format!("is not a PEM certificate bundle: {e}"))),
    }
}

impl AcmeIssuerConfig {
    /// Parses a decrypted issuer configuration; errors are 400s naming the field.
    pub fn parse(config: &Map<String, Value>, allow_loopback: bool) -> Result<Self, ApiError> {
        let raw = raw(config)?;
        let ca_bundle_pem = ca_bundle(&raw)?;
        let directory_url = directory_url(&raw.directory_url, allow_loopback).map_err(|e| bad("directory_url", e))?;
        let contact = raw
            .contact
            .iter()
            .enumerate()
            .map(|(i, c)| contact(c).map_err(|e| bad(&format!("contact[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let eab = match (&raw.eab_kid, &raw.eab_hmac_key) {
            (Some(kid), Some(key)) => {
                let key = key.trim();
                let hmac_key = URL_SAFE_NO_PAD
                    .decode(key.trim_end_matches('='))
                    .or_else(|_| URL_SAFE.decode(key))
                    .map_err(|_| bad("eab_hmac_key", "must be base64url, as the CA hands it out"))?;
                if hmac_key.is_empty() {
                    return Err(bad("eab_hmac_key", "must not be empty"));
                }
                Some(Eab { kid: kid.trim().to_owned(), hmac_key })
            }
            (Some(_), None) => return Err(bad("eab_hmac_key", "required with eab_kid")),
            (None, Some(_)) => return Err(bad("eab_kid", "required with eab_hmac_key")),
            (None, None) => None,
        };
        let challenge = match raw.challenge.as_deref().map(str::trim).unwrap_or("http-01") {
            "http-01" => {
                if raw.dns_present_command.is_some() || raw.dns_cleanup_command.is_some() {
                    return Err(bad("dns_present_command", "only applies to challenge dns-01"));
                }
                let addr = raw.http01_listen.as_deref().unwrap_or(DEFAULT_HTTP01_LISTEN);
                Challenge::Http01 { listen: listen(addr).map_err(|e| bad("http01_listen", e))? }
            }
            "dns-01" => {
                let present = raw
                    .dns_present_command
                    .ok_or_else(|| bad("dns_present_command", "required with challenge dns-01"))?;
                Challenge::Dns01(DnsHooks {
                    present: argv("dns_present_command", present)?,
                    cleanup: raw.dns_cleanup_command.map(|c| argv("dns_cleanup_command", c)).transpose()?,
                    timeout: seconds("dns_timeout_seconds", raw.dns_timeout_seconds, DEFAULT_DNS_TIMEOUT_SECONDS)?,
                    propagation: seconds("dns_propagation_seconds", raw.dns_propagation_seconds, 0)?,
                })
            }
            other => return Err(bad("challenge", format!("'{other}' is not one of http-01, dns-01"))),
        };
        let profile = match raw.profile.as_deref().map(str::trim) {
            Some(p) if p.len() > 64 || p.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(bad("profile", "must be a profile name (no spaces, at most 64 characters)"));
            }
            p => p.map(str::to_owned),
        };
        Ok(AcmeIssuerConfig { directory_url, contact, eab, challenge, profile, ca_bundle_pem })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<AcmeIssuerConfig, String> {
        AcmeIssuerConfig::parse(v.as_object().unwrap(), false).map_err(|e| e.to_string())
    }

    fn field_of(v: Value) -> String {
        let e = parse(v).unwrap_err();
        e.split_once(':').unwrap().0.to_owned()
    }

    #[test]
    fn defaults_and_normalised_contacts() {
        let c = parse(json!({"directory_url": "https://acme.example.com/dir", "contact": ["ops@example.com",
            "mailto:sec@example.com"]}))
        .unwrap();
        assert_eq!(c.contact, ["mailto:ops@example.com", "mailto:sec@example.com"]);
        assert_eq!(c.challenge, Challenge::Http01 { listen: "0.0.0.0:80".parse().unwrap() });
        assert!(c.eab.is_none() && c.profile.is_none() && c.ca_bundle_pem.is_none());
    }

    #[test]
    fn eab_and_dns_hooks() {
        let c = parse(json!({
            "directory_url": "https://acme.example.com/dir", "eab_kid": "kid-1", "eab_hmac_key": "c2VjcmV0LWtleQ",
            "challenge": "dns-01", "dns_present_command": ["/usr/local/bin/dns", "add"],
            "dns_cleanup_command": ["/usr/local/bin/dns", "del"], "dns_timeout_seconds": 30, "profile": "shortlived"
        }))
        .unwrap();
        assert_eq!(c.eab.as_ref().unwrap().hmac_key, b"secret-key");
        assert!(!format!("{:?}", c.eab).contains("secret"), "the HMAC key never shows in Debug");
        let Challenge::Dns01(h) = c.challenge else { panic!("dns-01") };
        assert_eq!(h.present, ["/usr/local/bin/dns", "add"]);
        assert_eq!(h.timeout, Duration::from_secs(30));
        assert_eq!(c.profile.as_deref(), Some("shortlived"));
    }

    #[test]
    fn errors_name_the_field() {
        let url = "https://acme.example.com/dir";
        assert_eq!(field_of(json!({})), "config.directory_url");
        assert_eq!(field_of(json!({"directory_url": "http://acme.example.com/dir"})), "config.directory_url");
        assert_eq!(field_of(json!({"directory_url": "http://127.0.0.1:14000/dir"})), "config.directory_url");
        assert_eq!(field_of(json!({"directory_url": "https://169.254.169.254/dir"})), "config.directory_url");
        assert_eq!(field_of(json!({"directory_url": url, "contact": ["nope"]})), "config.contact[0]");
        assert_eq!(field_of(json!({"directory_url": url, "eab_kid": "k"})), "config.eab_hmac_key");
        assert_eq!(field_of(json!({"directory_url": url, "eab_hmac_key": "a2V5"})), "config.eab_kid");
        assert_eq!(
            field_of(json!({"directory_url": url, "eab_kid": "k", "eab_hmac_key": "!!"})),
            "config.eab_hmac_key"
        );
        assert_eq!(field_of(json!({"directory_url": url, "challenge": "tls-alpn-01"})), "config.challenge");
        assert_eq!(field_of(json!({"directory_url": url, "http01_listen": "localhost"})), "config.http01_listen");
        assert_eq!(field_of(json!({"directory_url": url, "challenge": "dns-01"})), "config.dns_present_command");
        assert_eq!(
            field_of(json!({"directory_url": url, "challenge": "dns-01", "dns_present_command": "sh -c x"})),
            "config.dns_present_command"
        );
        assert_eq!(
            field_of(json!({"directory_url": url, "challenge": "dns-01", "dns_present_command": []})),
            "config.dns_present_command"
        );
        assert_eq!(field_of(json!({"directory_url": url, "ca_bundle_pem": "not pem"})), "config.ca_bundle_pem");
        assert_eq!(field_of(json!({"directory_url": url, "ca_bundle_path": "rel.pem"})), "config.ca_bundle_path");
        assert_eq!(field_of(json!({"directory_url": url, "profile": "two words"})), "config.profile");
        assert_eq!(field_of(json!({"directory_url": url, "colour": 1})), "config.colour");
    }

    #[test]
    fn loopback_only_when_allowed() {
        let m = json!({"directory_url": "http://127.0.0.1:14000/dir"});
        assert!(AcmeIssuerConfig::parse(m.as_object().unwrap(), true).is_ok());
        let m = json!({"directory_url": "https://localhost:14000/dir"});
        assert!(AcmeIssuerConfig::parse(m.as_object().unwrap(), false).is_err());
        assert!(AcmeIssuerConfig::parse(m.as_object().unwrap(), true).is_ok());
    }
}
