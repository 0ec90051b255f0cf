//! Server configuration: environment variables over an optional TOML file, validated into
//! [`Config`] once at start-up. A bad value stops start-up with one line naming the variable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certctl_api::KeyMode;

/// A configuration problem, displayed as `CERTCTL_X: what is wrong`.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

fn err(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { var: var.to_owned(), message: message.into() }
}

/// Where the HTTPS listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Issued at start-up from a bootstrap CA kept in `$CERTCTL_DATA_DIR/tls`.
    Bootstrap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_max_connections: u32,
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub pki_http_listen: Option<SocketAddr>,
    pub bootstrap_api_key: Option<String>,
    pub external_url: String,
    pub encryption_key: Option<String>,
    pub keygen_mode: KeyMode,
    pub notification_retry_interval: Duration,
    pub notification_retry_base: Duration,
    pub notification_retry_cap: Duration,
    pub notification_max_attempts: u32,
    pub renewal_check_interval: Duration,
    pub job_process_interval: Duration,
    pub allow_loopback_targets: bool,
    /// The scheduled digest loop runs only when set (`CERTCTL_DIGEST_ENABLED`).
    pub digest_enabled: bool,
    /// How often the digest goes out (`CERTCTL_DIGEST_INTERVAL`, at least an hour).
    pub digest_interval: Duration,
    /// Channels declared by `CERTCTL_SMTP_*`, `CERTCTL_WEBHOOK_*`, `CERTCTL_SLACK_*`, … (raw JSON
    /// channel settings keyed by channel type; validated by `notify::EnvChannels`).
    pub notification_env: BTreeMap<String, String>,
    pub metrics_public: bool,
    pub log: String,
    pub log_format: LogFormat,
    /// New ACME accounts one client IP may create per hour, 0 for no limit
    /// (`CERTCTL_ACME_RATE_LIMIT_ACCOUNTS_PER_HOUR`).
    pub acme_rate_limit_accounts_per_hour: u32,
    /// New ACME orders one account may place per hour, 0 for no limit
    /// (`CERTCTL_ACME_RATE_LIMIT_ORDERS_PER_HOUR`).
    pub acme_rate_limit_orders_per_hour: u32,
    /// How often expired ACME nonces, orders and rate-limit windows are removed
    /// (`CERTCTL_ACME_GC_INTERVAL`).
    pub acme_gc_interval: Duration,
    /// The profile `/acme/directory` serves (`CERTCTL_ACME_DEFAULT_PROFILE_ID`).
    pub acme_default_profile_id: Option<String>,
    /// The port http-01 validation dials (`CERTCTL_ACME_HTTP01_PORT`, 80; tests move it).
    pub acme_http01_port: u16,
    /// The DNS server ACME validation asks (`CERTCTL_ACME_DNS_RESOLVER`, `ip:port`); the
    /// system resolver when unset.
    pub acme_dns_resolver: Option<SocketAddr>,
    /// The port tls-alpn-01 validation dials (`CERTCTL_ACME_TLSALPN01_PORT`, 443; tests move it).
    pub acme_tlsalpn01_port: u16,
}

/// Every setting: TOML key (the variable name without `CERTCTL_`, lower case) and default.
const SETTINGS: &[(&str, Option<&str>)] = &[
    ("data_dir", Some("./data")),
    ("database_url", None),
    ("database_max_connections", Some("16")),
    ("listen", Some("127.0.0.1:8443")),
    ("tls_cert_path", None),
    ("tls_key_path", None),
    ("pki_http_listen", None),
    ("bootstrap_api_key", None),
    ("external_url", None),
    ("encryption_key", None),
    ("keygen_mode", Some("agent")),
    ("notification_retry_interval", Some("2m")),
    ("notification_retry_base", Some("1m")),
    ("notification_retry_cap", Some("1h")),
    ("notification_max_attempts", Some("5")),
    ("renewal_check_interval", Some("1h")),
    ("job_process_interval", Some("30s")),
    ("allow_loopback_targets", Some("false")),
    ("smtp_host", None),
    ("smtp_port", None),
    ("smtp_username", None),
    ("smtp_password", None),
    ("smtp_from", None),
    ("smtp_from_address", None),
    ("smtp_tls", None),
    ("smtp_ca_path", None),
    ("smtp_to", None),
    ("webhook_url", None),
    ("webhook_secret", None),
    ("slack_webhook_url", None),
    ("teams_webhook_url", None),
    ("pagerduty_routing_key", None),
    ("pagerduty_url", None),
    ("opsgenie_api_key", None),
    ("opsgenie_region", Some("us")),
    ("opsgenie_url", None),
    ("digest_recipients", None),
    ("digest_enabled", Some("false")),
    ("digest_interval", Some("24h")),
    ("metrics_public", Some("false")),
    ("log", Some("info")),
    ("log_format", Some("text")),
    ("acme_rate_limit_accounts_per_hour", Some("20")),
    ("acme_rate_limit_orders_per_hour", Some("300")),
    ("acme_gc_interval", Some("1m")),
    ("acme_default_profile_id", None),
    ("acme_http01_port", Some("80")),
    ("acme_dns_resolver", None),
    ("acme_tlsalpn01_port", Some("443")),
];

/// The settings that declare notification channels, handed to the notifier as given.
const NOTIFICATION_KEYS: &[&str] = &[
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_from",
    "smtp_from_address",
    "smtp_tls",
    "smtp_ca_path",
    "smtp_to",
    "webhook_url",
    "webhook_secret",
    "slack_webhook_url",
    "teams_webhook_url",
    "pagerduty_routing_key",
    "pagerduty_url",
    "opsgenie_api_key",
    "opsgenie_region",
    "opsgenie_url",
    "digest_recipients",
];

/// Raw settings keyed by variable name (`CERTCTL_LISTEN`), before validation.
#[derive(Debug, Clone, Default)]
pub struct RawSettings(BTreeMap<String, String>);

fn var_name(key: &str) -> String {
    format!("CERTCTL_{}", key.to_ascii_uppercase())
}

impl RawSettings {
    /// Reads the optional TOML file, then the environment on top of it.
    pub fn load(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut raw = RawSettings::default();
        if let Some(path) = config_file {
            raw.merge_toml(path)?;
        }
        for (k, v) in env {
            if let Some(key) = k.strip_prefix("CERTCTL_")
                && SETTINGS.iter().any(|(s, _)| s.eq_ignore_ascii_case(key))
            {
                raw.0.insert(k, v);
            }
        }
        Ok(raw)
    }

    fn merge_toml(&mut self, path: &Path) -> Result<(), ConfigError> {
        let var = "CERTCTL_CONFIG";
        let text =
            std::fs::read_to_string(path).map_err(|e| err(var, format!("cannot read {}: {e}", path.display())))?;
        let table: toml::Table = text.parse().map_err(|e| err(var, format!("{}: {e}", path.display())))?;
        for (key, value) in table {
            if !SETTINGS.iter().any(|(s, _)| *s == key) {
                return Err(err(var, format!("{}: unknown setting '{key}'", path.display())));
            }
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(err(&var_name(&key), format!("unsupported value {other} in {}", path.display())));
                }
            };
            self.0.insert(var_name(&key), value);
        }
        Ok(())
    }

    /// Sets one value (tests and sub-commands).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(var_name(key), value.into());
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0
            .get(&var_name(key))
            .cloned()
            .filter(|v| !v.is_empty())
            .or_else(|| SETTINGS.iter().find(|(k, _)| *k == key).and_then(|(_, d)| d.map(str::to_owned)))
    }

    fn parse<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Option<T>, ConfigError> {
        self.get(key).map(|v| parse(&v).map_err(|m| err(&var_name(key), m))).transpose()
    }

    fn required<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        self.parse(key, parse)?.ok_or_else(|| err(&var_name(key), "is required"))
    }

    /// Validates every setting.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let data_dir = PathBuf::from(self.required("data_dir", |v| Ok(v.to_owned()))?);
        let database_url = match self.get("database_url") {
            Some(url) => {
                let ok =
                    url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://");
                if !ok {
                    return Err(err("CERTCTL_DATABASE_URL", format!("'{url}' must start with sqlite: or postgres://")));
                }
                url
            }
            None => format!("sqlite://{}", data_dir.join("certctl.db").display()),
        };
        let listen = self.required("listen", parse_addr)?;
        let tls = match (self.get("tls_cert_path"), self.get("tls_key_path")) {
            (Some(cert), Some(key)) => TlsSource::Files { cert: cert.into(), key: key.into() },
            (None, None) => TlsSource::Bootstrap,
            (Some(_), None) => {
                return Err(err("CERTCTL_TLS_KEY_PATH", "is required when CERTCTL_TLS_CERT_PATH is set"));
            }
            (None, Some(_)) => {
                return Err(err("CERTCTL_TLS_CERT_PATH", "is required when CERTCTL_TLS_KEY_PATH is set"));
            }
        };
        let external_url = match self.get("external_url") {
            Some(url) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 9 {
                    return Err(err("CERTCTL_EXTERNAL_URL", format!("'{url}' must be an http(s):// URL")));
                }
                url.trim_end_matches('/').to_owned()
            }
            None => format!("https://{listen}"),
        };
        let bootstrap_api_key = self.get("bootstrap_api_key");
        if let Some(key) = &bootstrap_api_key
            && key.len() < 32
        {
            return Err(err("CERTCTL_BOOTSTRAP_API_KEY", "must be at least 32 characters"));
        }
        let max_attempts = self.required("notification_max_attempts", parse_u32)?;
        if max_attempts == 0 {
            return Err(err("CERTCTL_NOTIFICATION_MAX_ATTEMPTS", "must be at least 1"));
        }
        let digest_interval = self.required("digest_interval", parse_duration)?;
        if digest_interval < Duration::from_secs(3600) {
            return Err(err("CERTCTL_DIGEST_INTERVAL", "must be at least 1h"));
        }
        let database_max_connections = self.required("database_max_connections", parse_u32)?;
        if database_max_connections == 0 {
            return Err(err("CERTCTL_DATABASE_MAX_CONNECTIONS", "must be at least 1"));
        }
        Ok(Config {
            database_url,
            database_max_connections,
            listen,
            tls,
            pki_http_listen: self.parse("pki_http_listen", parse_addr)?,
            bootstrap_api_key,
            external_url,
            encryption_key: self.get("encryption_key"),
            keygen_mode: self.required("keygen_mode", |v| v.parse::<KeyMode>().map_err(|e| e.0))?,
            notification_retry_interval: self.required("notification_retry_interval", parse_duration)?,
            notification_retry_base: self.required("notification_retry_base", parse_duration)?,
            notification_retry_cap: self.required("notification_retry_cap", parse_duration)?,
            notification_max_attempts: max_attempts,
            renewal_check_interval: self.required("renewal_check_interval", parse_duration)?,
            job_process_interval: self.required("job_process_interval", parse_duration)?,
            allow_loopback_targets: self.required("allow_loopback_targets", parse_bool)?,
            digest_enabled: self.required("digest_enabled", parse_bool)?,
            digest_interval,
            notification_env: NOTIFICATION_KEYS.iter().filter_map(|k| self.get(k).map(|v| (var_name(k), v))).collect(),
            metrics_public: self.required("metrics_public", parse_bool)?,
            log: self.required("log", |v| Ok(v.to_owned()))?,
            log_format: self.required("log_format", |v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!("'{v}' is not one of text, json")),
            })?,
            acme_rate_limit_accounts_per_hour: self.required("acme_rate_limit_accounts_per_hour", parse_u32)?,
            acme_rate_limit_orders_per_hour: self.required("acme_rate_limit_orders_per_hour", parse_u32)?,
            acme_gc_interval: self.required("acme_gc_interval", parse_duration)?,
            acme_default_profile_id: self.get("acme_default_profile_id"),
            acme_http01_port: self.required("acme_http01_port", parse_port)?,
            acme_dns_resolver: self.parse("acme_dns_resolver", parse_resolver)?,
            acme_tlsalpn01_port: self.required("acme_tlsalpn01_port", parse_port)?,
            data_dir,
        })
    }
}

fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| format!("'{v}' is not an IP:port address"))
}

/// A DNS server as `ip:port`, or a bare IP on port 53.
fn parse_resolver(v: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = v.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    v.parse().map_err(|_| format!("'{v}' is not a DNS server address (ip:port)"))
}

fn parse_port(v: &str) -> Result<u16, String> {
    v.parse().ok().filter(|p| *p > 0).ok_or_else(|| format!("'{v}' is not a TCP port (1-65535)"))
}

fn parse_u32(v: &str) -> Result<u32, String> {
    v.parse().map_err(|_| format!("'{v}' is not a non-negative integer"))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h` (and `d`); a bare number is seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("'{v}' is not a duration like 500ms, 30s, 2m or 1h");
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        "d" => Duration::from_secs(n.checked_mul(86_400).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(format!("'{v}' must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        RawSettings::load(None, pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))?.into_config()
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(c.database_url, "sqlite://./data/certctl.db");
        assert_eq!(c.external_url, "https://127.0.0.1:8443");
        assert_eq!(c.tls, TlsSource::Bootstrap);
        assert_eq!(c.notification_retry_interval, Duration::from_secs(120));
        assert_eq!(c.notification_max_attempts, 5);
        assert!(!c.digest_enabled);
        assert_eq!(c.digest_interval, Duration::from_secs(86_400));
        assert_eq!(c.acme_dns_resolver, None);
        assert_eq!(c.acme_tlsalpn01_port, 443);
        let c =
            load(&[("CERTCTL_ACME_DNS_RESOLVER", "127.0.0.1:8053"), ("CERTCTL_ACME_TLSALPN01_PORT", "5001")]).unwrap();
        assert_eq!(c.acme_dns_resolver, Some("127.0.0.1:8053".parse().unwrap()));
        assert_eq!(c.acme_tlsalpn01_port, 5001);
        let c = load(&[("CERTCTL_ACME_DNS_RESOLVER", "::1")]).unwrap();
        assert_eq!(c.acme_dns_resolver, Some("[::1]:53".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = load(&[("CERTCTL_LISTEN", "nope")]).unwrap_err();
        assert_eq!(e.to_string(), "CERTCTL_LISTEN: 'nope' is not an IP:port address");
        let e = load(&[("CERTCTL_NOTIFICATION_RETRY_BASE", "5 minutes")]).unwrap_err();
        assert!(e.to_string().starts_with("CERTCTL_NOTIFICATION_RETRY_BASE: "));
        let e = load(&[("CERTCTL_TLS_CERT_PATH", "/x")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_TLS_KEY_PATH");
        let e = load(&[("CERTCTL_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_DATABASE_URL");
        let e = load(&[("CERTCTL_KEYGEN_MODE", "hsm")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_KEYGEN_MODE");
        let e = load(&[("CERTCTL_DIGEST_INTERVAL", "30m")]).unwrap_err();
        assert_eq!(e.to_string(), "CERTCTL_DIGEST_INTERVAL: must be at least 1h");
        let e = load(&[("CERTCTL_DIGEST_INTERVAL", "daily")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_DIGEST_INTERVAL");
        let e = load(&[("CERTCTL_DIGEST_ENABLED", "maybe")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_DIGEST_ENABLED");
        let e = load(&[("CERTCTL_ACME_DNS_RESOLVER", "dns.example.com:53")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CERTCTL_ACME_DNS_RESOLVER: 'dns.example.com:53' is not a DNS server address (ip:port)"
        );
        let e = load(&[("CERTCTL_ACME_TLSALPN01_PORT", "0")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_ACME_TLSALPN01_PORT");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn toml_file_then_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certctl.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n").unwrap();
        let raw = RawSettings::load(Some(&path), [("CERTCTL_LOG".to_string(), "warn".to_string())]).unwrap();
        let c = raw.into_config().unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.log, "warn");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let e = RawSettings::load(Some(&path), []).unwrap_err();
        assert!(e.to_string().contains("unknown setting 'lisen'"), "{e}");
    }
}
