//! The agent's configuration, parsed once from the environment; a bad value names its variable.

use std::path::PathBuf;
use std::time::Duration;

/// A refused setting: the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    pub message: String,
}

fn refuse(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { var, message: message.into() }
}

/// The secret the agent starts with.
#[derive(Clone, PartialEq, Eq)]
pub enum StartToken {
    /// A one-time enrolment token (`cce_…`).
    Enrolment(String),
    /// An agent credential (`cca_…`) with the agent's ID.
    Credential { agent_id: String, credential: String },
}

impl std::fmt::Debug for StartToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartToken::Enrolment(_) => f.write_str("Enrolment(********)"),
            StartToken::Credential { agent_id, .. } => write!(f, "Credential({agent_id}, ********)"),
        }
    }
}

/// Everything the agent reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of certctl-server, without a trailing slash.
    pub server_url: String,
    /// Absent when the state directory already holds a credential.
    pub token: Option<StartToken>,
    pub name: String,
    pub state_dir: PathBuf,
    /// PEM file of CAs to trust for the server instead of the system roots.
    pub ca_bundle: Option<PathBuf>,
    pub poll_interval: Duration,
    pub heartbeat_interval: Duration,
    /// Directories scanned for certificates; empty turns discovery off.
    pub discovery_dirs: Vec<PathBuf>,
    pub discovery_interval: Duration,
    /// A tracing filter such as `info` or `certctl_agent=debug`.
    pub log_level: String,
}

/// Where state lives when `CERTCTL_AGENT_STATE_DIR` is not set.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/certctl-agent";

impl Config {
    /// Reads the configuration through `var` (the process environment in `main`); `hostname`
    /// is the default agent name.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>, hostname: &str) -> Result<Config, ConfigError> {
        let get = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let server_url = get("CERTCTL_SERVER_URL")
            .ok_or_else(|| refuse("CERTCTL_SERVER_URL", "required (the https:// URL of certctl-server)"))?;
        let server_url = parse_server_url(&server_url).map_err(|m| refuse("CERTCTL_SERVER_URL", m))?;
        let token = match get("CERTCTL_AGENT_TOKEN") {
            None => None,
            Some(t) if t.starts_with("cce_") => Some(StartToken::Enrolment(t)),
            Some(t) if t.starts_with("cca_") => {
                let agent_id = get("CERTCTL_AGENT_ID").ok_or_else(|| {
                    refuse("CERTCTL_AGENT_ID", "required when CERTCTL_AGENT_TOKEN is an agent credential (cca_…)")
                })?;
                Some(StartToken::Credential { agent_id, credential: t })
            }
            Some(_) => {
                return Err(refuse(
                    "CERTCTL_AGENT_TOKEN",
                    "must be an enrolment token (cce_…) or an agent credential (cca_…)",
                ));
            }
        };
        let name = get("CERTCTL_AGENT_NAME").unwrap_or_else(|| hostname.to_owned());
        if name.len() > 255 || name.chars().any(char::is_control) {
            return Err(refuse("CERTCTL_AGENT_NAME", "at most 255 printable characters"));
        }
        let state_dir = PathBuf::from(get("CERTCTL_AGENT_STATE_DIR").unwrap_or_else(|| DEFAULT_STATE_DIR.to_owned()));
        if !state_dir.is_absolute() {
            return Err(refuse("CERTCTL_AGENT_STATE_DIR", "must be an absolute path"));
        }
        let ca_bundle = get("CERTCTL_SERVER_CA_BUNDLE").map(PathBuf::from);
        let duration = |var: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => parse_duration(&v).map_err(|m| refuse(var, m)),
            }
        };
        let discovery_dirs = match get("CERTCTL_DISCOVERY_DIRS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| {
                    let p = PathBuf::from(d);
                    if p.is_absolute() {
                        Ok(p)
                    } else {
                        Err(refuse("CERTCTL_DISCOVERY_DIRS", format!("'{d}' is not an absolute path")))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let log_level = get("CERTCTL_LOG_LEVEL").unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(refuse(
                "CERTCTL_LOG_LEVEL",
                "not a level (error, warn, info, debug, trace) or a tracing filter",
            ));
        }
        Ok(Config {
            server_url,
            token,
            name,
            state_dir,
            ca_bundle,
            poll_interval: duration("CERTCTL_POLL_INTERVAL", Duration::from_secs(30))?,
            heartbeat_interval: duration("CERTCTL_HEARTBEAT_INTERVAL", Duration::from_secs(60))?,
            discovery_dirs,
            discovery_interval: duration("CERTCTL_DISCOVERY_INTERVAL", Duration::from_secs(6 * 3600))?,
            log_level,
        })
    }
}

/// `https://…`, or `http://` to the loopback host only: the credential never crosses a network
/// in clear.
fn parse_server_url(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or("must be an https:// URL")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be an https:// URL with a host".into());
    }
    match scheme {
        "https" => Ok(url.to_owned()),
        "http" if matches!(host, "127.0.0.1" | "localhost" | "::1") => Ok(url.to_owned()),
        "http" => Err("http:// is allowed only for 127.0.0.1 and localhost; use https://".into()),
        _ => Err("must be an https:// URL".into()),
    }
}

/// Durations as `500ms`, `30s`, `2m`, `1h` or `1d`; zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let refused = || format!("'{text}' is not a duration such as 500ms, 30s, 2m or 1h");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(refused)?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| refused())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(refused)?;
    if millis == 0 {
        return Err(format!("'{text}' must be longer than zero"));
    }
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned(), "host1")
    }

    #[test]
    fn defaults() {
        let c = parse(&[("CERTCTL_SERVER_URL", "https://ca.example:8443/")]).unwrap();
        assert_eq!(c.server_url, "https://ca.example:8443");
        assert_eq!(c.name, "host1");
        assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!((c.poll_interval, c.heartbeat_interval), (Duration::from_secs(30), Duration::from_secs(60)));
        assert_eq!(c.discovery_interval, Duration::from_secs(21_600));
        assert!(c.discovery_dirs.is_empty() && c.token.is_none() && c.ca_bundle.is_none());
        assert_eq!(c.log_level, "info");
    }

    #[test]
    fn tokens() {
        let c = parse(&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_AGENT_TOKEN", "cce_x")]).unwrap();
        assert_eq!(c.token, Some(StartToken::Enrolment("cce_x".into())));
        let e = parse(&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_AGENT_TOKEN", "cca_x")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_AGENT_ID");
        let c = parse(&[
            ("CERTCTL_SERVER_URL", "https://a"),
            ("CERTCTL_AGENT_TOKEN", "cca_x"),
            ("CERTCTL_AGENT_ID", "agent-1"),
        ])
        .unwrap();
        assert_eq!(c.token, Some(StartToken::Credential { agent_id: "agent-1".into(), credential: "cca_x".into() }));
        assert!(!format!("{c:?}").contains("cca_x"), "the credential is not in Debug output");
        let e = parse(&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_AGENT_TOKEN", "secret")]).unwrap_err();
        assert_eq!(e.var, "CERTCTL_AGENT_TOKEN");
        assert!(!e.to_string().contains("secret"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "CERTCTL_SERVER_URL"),
            (&[("CERTCTL_SERVER_URL", "http://ca.example")], "CERTCTL_SERVER_URL"),
            (&[("CERTCTL_SERVER_URL", "ftp://a")], "CERTCTL_SERVER_URL"),
            (&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_POLL_INTERVAL", "soon")], "CERTCTL_POLL_INTERVAL"),
            (
                &[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_HEARTBEAT_INTERVAL", "0s")],
                "CERTCTL_HEARTBEAT_INTERVAL",
            ),
            (&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_DISCOVERY_DIRS", "/etc,rel")], "CERTCTL_DISCOVERY_DIRS"),
            (
                &[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_DISCOVERY_INTERVAL", "5x")],
                "CERTCTL_DISCOVERY_INTERVAL",
            ),
            (&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_AGENT_STATE_DIR", "state")], "CERTCTL_AGENT_STATE_DIR"),
            (&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_LOG_LEVEL", "loud=[")], "CERTCTL_LOG_LEVEL"),
        ];
        for (vars, var) in cases {
            let e = parse(vars).unwrap_err();
            assert_eq!(e.var, *var, "{vars:?}: {e}");
            assert!(e.to_string().starts_with(var));
        }
        for ok in ["http://127.0.0.1:8443", "http://localhost", "http://[::1]:80", "https://[2001:db8::1]:8443"] {
            assert!(parse(&[("CERTCTL_SERVER_URL", ok)]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "10", "1.5s", "-1s", "10 s", "0ms", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn discovery_dirs_split_on_commas() {
        let c =
            parse(&[("CERTCTL_SERVER_URL", "https://a"), ("CERTCTL_DISCOVERY_DIRS", "/etc/ssl, /opt/certs,")]).unwrap();
        assert_eq!(c.discovery_dirs, vec![PathBuf::from("/etc/ssl"), PathBuf::from("/opt/certs")]);
    }
}
