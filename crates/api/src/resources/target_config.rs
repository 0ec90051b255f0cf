//! Typed deployment-target configurations: what each target type accepts, with its defaults.
//! The server parses a configuration when a target is saved (a bad one is a 400 naming the
//! field) and the agent parses it again from its work item, so both read one definition.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::TargetType;

/// Characters that would let a command do more than run one program.
const SHELL_METACHARACTERS: &[char] = &[';', '|', '&', '$', '`', '>', '<', '\n', '\r', '\0'];

/// Why a configuration was refused: the field (relative to the configuration object) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfigError {
    /// The offending key, e.g. `cert_path`; empty when the configuration as a whole is wrong.
    pub field: String,
    pub message: String,
}

impl TargetConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        TargetConfigError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for TargetConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

impl std::error::Error for TargetConfigError {}

/// An absolute filesystem path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AbsolutePath(String);

impl AbsolutePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AbsolutePath {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if !value.starts_with('/') || value.len() > 4096 || value.chars().any(char::is_control) {
            return Err("must be an absolute path".into());
        }
        if value.ends_with('/') {
            return Err("must name a file, not a directory".into());
        }
        Ok(AbsolutePath(value))
    }
}

/// An absolute directory path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DirectoryPath(String);

impl DirectoryPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DirectoryPath {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if !value.starts_with('/') || value.len() > 4096 || value.chars().any(char::is_control) {
            return Err("must be an absolute path".into());
        }
        Ok(DirectoryPath(value))
    }
}

/// A file name inside a configured directory: no separators, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FileName(String);

impl FileName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn of(name: &str) -> FileName {
        FileName(name.to_owned())
    }
}

impl TryFrom<String> for FileName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.is_empty()
            || value == "."
            || value == ".."
            || value.len() > 255
            || value.contains(['/', '\\'])
            || value.chars().any(char::is_control)
        {
            return Err("must be a plain file name (no directory part)".into());
        }
        Ok(FileName(value))
    }
}

/// A command as argv: one string split on whitespace, never given to a shell.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct CommandLine(Vec<String>);

impl CommandLine {
    /// The program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.0
    }

    fn of(line: &str) -> CommandLine {
        CommandLine(line.split_whitespace().map(str::to_owned).collect())
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl TryFrom<String> for CommandLine {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if let Some(c) = value.chars().find(|c| SHELL_METACHARACTERS.contains(c)) {
            return Err(format!(
                "must not contain shell metacharacters (found {c:?}); wrap a pipeline in a script and give its \
                 absolute path"
            ));
        }
        let line = CommandLine::of(&value);
        if line.0.is_empty() {
            return Err("must name a command".into());
        }
        Ok(line)
    }
}

/// A permission mode given as an octal string such as `"0640"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FileMode(u32);

impl FileMode {
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl TryFrom<String> for FileMode {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let refused = || "must be an octal mode string such as \"0640\"".to_owned();
        if !(3..=4).contains(&value.len()) || !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(refused());
        }
        let bits = u32::from_str_radix(&value, 8).map_err(|_| refused())?;
        if bits > 0o777 {
            return Err("setuid, setgid and sticky bits are not allowed".into());
        }
        Ok(FileMode(bits))
    }
}

/// A user or group: a name or a numeric ID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Principal(String);

impl Principal {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Principal {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.is_empty()
            || value.len() > 64
            || value.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':')
        {
            return Err("must be a user or group name or a numeric ID".into());
        }
        Ok(Principal(value))
    }
}

/// A TLS endpoint, `host:port` (`[::1]:443` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// The host without IPv6 brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn local_https() -> Endpoint {
        Endpoint { host: "127.0.0.1".into(), port: 443 }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let refused = || "must be host:port".to_owned();
        let (host, port) = value.rsplit_once(':').ok_or_else(refused)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| refused())?;
        if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            return Err(refused());
        }
        Ok(Endpoint { host: host.to_owned(), port })
    }
}

/// A secret value; its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::REDACTED)
    }
}

impl TryFrom<String> for Secret {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Secret(value))
    }
}

/// Options every file-based target type accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonOptions {
    /// Runs before the staged files are renamed into place.
    #[serde(default)]
    pub validate_command: Option<CommandLine>,
    /// Runs after the files are in place.
    #[serde(default)]
    pub reload_command: Option<CommandLine>,
    #[serde(default = "default_command_timeout")]
    pub command_timeout_seconds: u32,
    #[serde(default)]
    pub verify_endpoint: Option<Endpoint>,
    /// SNI for the check; default: the certificate's CN, else its first DNS SAN.
    #[serde(default)]
    pub verify_server_name: Option<String>,
    #[serde(default)]
    pub verify: Option<bool>,
    #[serde(default = "default_verify_attempts")]
    pub verify_attempts: u32,
    /// First pause between attempts; it doubles, up to 8 s.
    #[serde(default = "default_verify_backoff")]
    pub verify_backoff_ms: u64,
    /// Backups kept per file.
    #[serde(default = "default_backup_retention")]
    pub backup_retention: u32,
}

fn default_command_timeout() -> u32 {
    30
}
fn default_verify_attempts() -> u32 {
    5
}
fn default_verify_backoff() -> u64 {
    500
}
fn default_backup_retention() -> u32 {
    3
}

/// Owner, group and mode wanted for one file; absent values keep the existing file's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePermissions {
    #[serde(default)]
    pub mode: Option<FileMode>,
    #[serde(default)]
    pub owner: Option<Principal>,
    #[serde(default)]
    pub group: Option<Principal>,
}

/// Certificate, key and optional chain files (NGINX, Apache, Postfix, Dovecot).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertKeyFiles {
    pub cert_path: AbsolutePath,
    pub key_path: AbsolutePath,
    /// Absent: the certificate file holds the leaf followed by the chain.
    #[serde(default)]
    pub chain_path: Option<AbsolutePath>,
}

/// HAProxy: leaf, chain and key in one file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombinedPem {
    pub pem_path: AbsolutePath,
}

/// A directory with a certificate (leaf + chain) and a key file (Traefik).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFiles {
    pub cert_dir: DirectoryPath,
    #[serde(default = "cert_pem")]
    pub cert_file: FileName,
    #[serde(default = "key_pem")]
    pub key_file: FileName,
}

fn cert_pem() -> FileName {
    FileName::of("cert.pem")
}
fn key_pem() -> FileName {
    FileName::of("key.pem")
}

/// How certificates reach Caddy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaddyMode {
    /// Files Caddy reads from `cert_dir`.
    #[default]
    File,
    /// Loaded through the admin API.
    Api,
}

/// Caddy, by files or by its admin API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaddyConfig {
    #[serde(default)]
    pub mode: CaddyMode,
    /// Required in file mode.
    #[serde(default)]
    pub cert_dir: Option<DirectoryPath>,
    #[serde(default = "cert_pem")]
    pub cert_file: FileName,
    #[serde(default = "key_pem")]
    pub key_file: FileName,
    #[serde(default = "default_admin_api")]
    pub admin_api: String,
}

fn default_admin_api() -> String {
    "http://127.0.0.1:2019".into()
}

/// Envoy: files in a directory, optionally with an SDS document naming them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvoyConfig {
    pub cert_dir: DirectoryPath,
    #[serde(default = "cert_pem")]
    pub cert_filename: FileName,
    #[serde(default = "key_pem")]
    pub key_filename: FileName,
    #[serde(default)]
    pub chain_filename: Option<FileName>,
    /// Also write `sds.yaml` naming the files.
    #[serde(default)]
    pub sds_config: bool,
}

/// The keystore formats written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum KeystoreType {
    #[default]
    #[serde(rename = "PKCS12")]
    Pkcs12,
}

/// A Java keystore (PKCS#12) holding the key and chain under one alias.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreConfig {
    pub keystore_path: AbsolutePath,
    pub keystore_password: Secret,
    #[serde(default = "default_alias")]
    pub alias: String,
    #[serde(default)]
    pub keystore_type: KeystoreType,
}

fn default_alias() -> String {
    "certctl".into()
}

/// Plain files: certificate, key, and optionally the chain and a full chain.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlainFiles {
    pub cert_path: AbsolutePath,
    pub key_path: AbsolutePath,
    #[serde(default)]
    pub chain_path: Option<AbsolutePath>,
    #[serde(default)]
    pub fullchain_path: Option<AbsolutePath>,
}

/// The type-specific part of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    Nginx(CertKeyFiles),
    Apache(CertKeyFiles),
    HaProxy(CombinedPem),
    Traefik(DirectoryFiles),
    Caddy(CaddyConfig),
    Envoy(EnvoyConfig),
    Postfix(CertKeyFiles),
    Dovecot(CertKeyFiles),
    JavaKeystore(KeystoreConfig),
    File(PlainFiles),
}

/// A parsed configuration of a target type the agent deploys to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub common: CommonOptions,
    /// Permissions by file role (`cert`, `key`, `chain`, `pem`, …).
    pub permissions: BTreeMap<String, FilePermissions>,
    pub kind: TargetKind,
}

/// The keys of [`CommonOptions`].
const COMMON_KEYS: &[&str] = &[
    "validate_command",
    "reload_command",
    "command_timeout_seconds",
    "verify_endpoint",
    "verify_server_name",
    "verify",
    "verify_attempts",
    "verify_backoff_ms",
    "backup_retention",
];

/// The file roles of a type, which name its `<role>_mode`, `<role>_owner` and `<role>_group` keys.
fn file_roles(target_type: TargetType) -> &'static [&'static str] {
    match target_type {
        TargetType::Nginx | TargetType::Apache | TargetType::Postfix | TargetType::Dovecot => &["cert", "key", "chain"],
        TargetType::HaProxy => &["pem"],
        TargetType::Traefik | TargetType::Caddy => &["cert", "key"],
        TargetType::Envoy => &["cert", "key", "chain", "sds"],
        TargetType::JavaKeystore => &["keystore"],
        TargetType::File => &["cert", "key", "chain", "fullchain"],
        _ => &[],
    }
}

impl TargetConfig {
    /// Parses `config` for `target_type`. `Ok(None)`: the type has no typed configuration
    /// (it is deployed by something other than certctl-agent).
    pub fn parse(
        target_type: TargetType,
        config: &Map<String, Value>,
    ) -> Result<Option<TargetConfig>, TargetConfigError> {
        let roles = file_roles(target_type);
        if roles.is_empty() {
            return Ok(None);
        }
        let mut common = Map::new();
        let mut permissions: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut specific = Map::new();
        for (key, value) in config {
            if COMMON_KEYS.contains(&key.as_str()) {
                common.insert(key.clone(), value.clone());
                continue;
            }
            let permission = key
                .rsplit_once('_')
                .filter(|(role, what)| roles.contains(role) && matches!(*what, "mode" | "owner" | "group"));
            match permission {
                Some((role, what)) => {
                    permissions.entry(role.to_owned()).or_default().insert(what.to_owned(), value.clone());
                }
                None => {
                    specific.insert(key.clone(), value.clone());
                }
            }
        }
        let common: CommonOptions = from_map(common, "")?;
        let permissions = permissions
            .into_iter()
            .map(|(role, map)| Ok((role.clone(), from_map(map, &format!("{role}_"))?)))
            .collect::<Result<BTreeMap<_, _>, TargetConfigError>>()?;
        let kind = match target_type {
            TargetType::Nginx => TargetKind::Nginx(from_map(specific, "")?),
            TargetType::Apache => TargetKind::Apache(from_map(specific, "")?),
            TargetType::HaProxy => TargetKind::HaProxy(from_map(specific, "")?),
            TargetType::Traefik => TargetKind::Traefik(from_map(specific, "")?),
            TargetType::Caddy => TargetKind::Caddy(from_map(specific, "")?),
            TargetType::Envoy => TargetKind::Envoy(from_map(specific, "")?),
            TargetType::Postfix => TargetKind::Postfix(from_map(specific, "")?),
            TargetType::Dovecot => TargetKind::Dovecot(from_map(specific, "")?),
            TargetType::JavaKeystore => TargetKind::JavaKeystore(from_map(specific, "")?),
            TargetType::File => TargetKind::File(from_map(specific, "")?),
            _ => return Ok(None),
        };
        let parsed = TargetConfig { common, permissions, kind };
        parsed.check()?;
        Ok(Some(parsed))
    }

    /// Checks that span fields or bound numbers.
    fn check(&self) -> Result<(), TargetConfigError> {
        let c = &self.common;
        if !(1..=3600).contains(&c.command_timeout_seconds) {
            return Err(TargetConfigError::new("command_timeout_seconds", "must be between 1 and 3600"));
        }
        if !(1..=20).contains(&c.verify_attempts) {
            return Err(TargetConfigError::new("verify_attempts", "must be between 1 and 20"));
        }
        if c.verify_backoff_ms > 60_000 {
            return Err(TargetConfigError::new("verify_backoff_ms", "must be at most 60000"));
        }
        if c.backup_retention > 100 {
            return Err(TargetConfigError::new("backup_retention", "must be at most 100"));
        }
        if let Some(name) = &c.verify_server_name
            && (name.is_empty() || name.len() > 253 || name.chars().any(|ch| ch.is_whitespace() || ch.is_control()))
        {
            return Err(TargetConfigError::new("verify_server_name", "must be a host name or an IP address"));
        }
        if c.verify == Some(true) && self.verify_endpoint().is_none() {
            return Err(TargetConfigError::new("verify", "needs verify_endpoint for this target type"));
        }
        if let TargetKind::Caddy(caddy) = &self.kind {
            match caddy.mode {
                CaddyMode::File if caddy.cert_dir.is_none() => {
                    return Err(TargetConfigError::new("cert_dir", "required in file mode"));
                }
                CaddyMode::Api
                    if !(caddy.admin_api.starts_with("http://") || caddy.admin_api.starts_with("https://"))
                        || caddy.admin_api.chars().any(|ch| ch.is_whitespace() || ch.is_control()) =>
                {
                    return Err(TargetConfigError::new("admin_api", "must be an http:// or https:// URL"));
                }
                _ => {}
            }
        }
        if let TargetKind::JavaKeystore(ks) = &self.kind
            && (ks.alias.is_empty() || ks.alias.len() > 128 || ks.alias.chars().any(char::is_control))
        {
            return Err(TargetConfigError::new("alias", "must be 1 to 128 printable characters"));
        }
        Ok(())
    }

    /// The permissions asked for a file role (empty when none were given).
    pub fn permissions(&self, role: &str) -> FilePermissions {
        self.permissions.get(role).cloned().unwrap_or_default()
    }

    /// The validate command: the configured one, else the type's default.
    pub fn validate_command(&self) -> Option<CommandLine> {
        self.common.validate_command.clone().or_else(|| {
            let default = match self.kind {
                TargetKind::Nginx(_) => "nginx -t",
                TargetKind::Apache(_) => "apachectl configtest",
                TargetKind::Postfix(_) => "postfix check",
                TargetKind::Dovecot(_) => "doveconf -n",
                _ => return None,
            };
            Some(CommandLine::of(default))
        })
    }

    /// The reload command: the configured one, else the type's default.
    pub fn reload_command(&self) -> Option<CommandLine> {
        self.common.reload_command.clone().or_else(|| {
            let default = match self.kind {
                TargetKind::Nginx(_) => "nginx -s reload",
                TargetKind::Apache(_) => "apachectl -k graceful",
                TargetKind::HaProxy(_) => "systemctl reload haproxy",
                TargetKind::Postfix(_) => "postfix reload",
                TargetKind::Dovecot(_) => "doveadm reload",
                _ => return None,
            };
            Some(CommandLine::of(default))
        })
    }

    /// Where the served certificate is checked after a deployment, if anywhere: the configured
    /// endpoint, else the type's default, unless `verify` is false.
    pub fn verify_endpoint(&self) -> Option<Endpoint> {
        if self.common.verify == Some(false) {
            return None;
        }
        self.common.verify_endpoint.clone().or_else(|| match self.kind {
            TargetKind::Nginx(_) | TargetKind::Apache(_) | TargetKind::HaProxy(_) => Some(Endpoint::local_https()),
            _ => None,
        })
    }
}

/// Deserializes one group of keys, naming the offending key (with `prefix` for permission keys
/// such as `key_mode`) in the error. Values are never echoed: some are secrets.
fn from_map<T: DeserializeOwned>(map: Map<String, Value>, prefix: &str) -> Result<T, TargetConfigError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(name) = quoted_after(&inner, "unknown field `") {
            return TargetConfigError::new(format!("{prefix}{name}"), "unknown field");
        }
        if let Some(name) = quoted_after(&inner, "missing field `") {
            return TargetConfigError::new(format!("{prefix}{name}"), "required");
        }
        let field = if path == "." { String::new() } else { format!("{prefix}{path}") };
        // Type errors quote the offending value; keep only what was expected.
        let message = match inner.split_once(", expected ") {
            Some((_, expected)) => format!("expected {expected}"),
            None => inner,
        };
        TargetConfigError::new(field, message)
    })
}

fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(marker)?;
    rest.split_once('`').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(t: TargetType, v: Value) -> Result<TargetConfig, String> {
        TargetConfig::parse(t, v.as_object().unwrap()).map(Option::unwrap).map_err(|e| e.to_string())
    }

    #[test]
    fn nginx_defaults_and_permissions() {
        let c = parse(
            TargetType::Nginx,
            json!({"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key", "key_mode": "0640", "cert_owner": "www-data"}),
        )
        .unwrap();
        assert_eq!(c.validate_command().unwrap().argv(), ["nginx", "-t"]);
        assert_eq!(c.reload_command().unwrap().to_string(), "nginx -s reload");
        assert_eq!(c.verify_endpoint().unwrap().to_string(), "127.0.0.1:443");
        assert_eq!(c.permissions("key").mode.unwrap().bits(), 0o640);
        assert_eq!(c.permissions("cert").owner.unwrap().as_str(), "www-data");
        assert_eq!(c.common.backup_retention, 3);
        assert_eq!(c.common.verify_attempts, 5);
        let off = parse(TargetType::Nginx, json!({"cert_path": "/a", "key_path": "/b", "verify": false})).unwrap();
        assert!(off.verify_endpoint().is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(TargetType::Nginx, json!({"key_path": "/k"})).unwrap_err();
        assert_eq!(e, "cert_path: required");
        let e = parse(TargetType::Nginx, json!({"cert_path": "rel", "key_path": "/k"})).unwrap_err();
        assert_eq!(e, "cert_path: must be an absolute path");
        let e = parse(TargetType::Nginx, json!({"cert_path": "/c", "key_path": "/k", "colour": 1})).unwrap_err();
        assert_eq!(e, "colour: unknown field");
        let e = parse(TargetType::HaProxy, json!({"pem_path": "/p", "key_mode": "0600"})).unwrap_err();
        assert_eq!(e, "key_mode: unknown field");
        let e = parse(TargetType::HaProxy, json!({"pem_path": "/p", "pem_mode": "rw"})).unwrap_err();
        assert!(e.starts_with("pem_mode: must be an octal mode"), "{e}");
        let e = parse(TargetType::File, json!({"cert_path": "/c", "key_path": 5})).unwrap_err();
        assert!(e.starts_with("key_path: expected"), "{e}");
        let e = parse(TargetType::File, json!({"cert_path": "/c", "key_path": "/k", "reload_command": "a; b"}))
            .unwrap_err();
        assert!(e.starts_with("reload_command: must not contain shell metacharacters"), "{e}");
        let e = parse(TargetType::File, json!({"cert_path": "/c", "key_path": "/k", "verify": true})).unwrap_err();
        assert_eq!(e, "verify: needs verify_endpoint for this target type");
        let e = parse(TargetType::File, json!({"cert_path": "/c", "key_path": "/k", "verify_endpoint": "nope"}))
            .unwrap_err();
        assert_eq!(e, "verify_endpoint: must be host:port");
        let e = parse(TargetType::Caddy, json!({})).unwrap_err();
        assert_eq!(e, "cert_dir: required in file mode");
        let e = parse(TargetType::Traefik, json!({"cert_dir": "/d", "cert_file": "../x"})).unwrap_err();
        assert!(e.starts_with("cert_file:"), "{e}");
    }

    #[test]
    fn secrets_are_not_echoed() {
        let e = parse(TargetType::JavaKeystore, json!({"keystore_path": "/k.p12", "keystore_password": 12345}))
            .unwrap_err();
        assert!(e.starts_with("keystore_password:") && !e.contains("12345"), "{e}");
        let c = parse(TargetType::JavaKeystore, json!({"keystore_path": "/k.p12", "keystore_password": "hunter2"}))
            .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let TargetKind::JavaKeystore(ks) = &c.kind else { panic!() };
        assert_eq!((ks.alias.as_str(), ks.keystore_password.expose()), ("certctl", "hunter2"));
    }

    #[test]
    fn other_types_and_endpoints() {
        assert!(TargetConfig::parse(TargetType::F5, &Map::new()).unwrap().is_none());
        let c = parse(TargetType::Caddy, json!({"mode": "api"})).unwrap();
        let TargetKind::Caddy(caddy) = &c.kind else { panic!() };
        assert_eq!(caddy.admin_api, "http://127.0.0.1:2019");
        let c =
            parse(TargetType::Envoy, json!({"cert_dir": "/e", "verify_endpoint": "[::1]:8443", "sds_config": true}))
                .unwrap();
        let ep = c.verify_endpoint().unwrap();
        assert_eq!((ep.host(), ep.port(), ep.to_string().as_str()), ("::1", 8443, "[::1]:8443"));
        assert!(c.validate_command().is_none() && c.reload_command().is_none());
    }
}
