//! Validated scalars and closed enums. Each scalar checks its invariant once, when it is
//! deserialized or constructed, so code holding one never re-checks it.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a scalar was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue(pub String);

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidValue {}

macro_rules! string_scalar {
    ($(#[$meta:meta])* $name:ident, $check:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidValue> {
                let value = value.into();
                $check(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_scalar!(
    /// A display name: 1–255 characters, no control characters, not blank.
    Name,
    check_name
);
string_scalar!(
    /// A client-chosen resource ID: 1–128 characters of `A-Z a-z 0-9 . _ -`.
    ResourceId,
    check_resource_id
);
string_scalar!(
    /// An email address (`local@domain`, domain a valid DNS name).
    Email,
    check_email
);
string_scalar!(
    /// A certificate subject or SAN: a DNS name (wildcard allowed in the first label), an IP
    /// address, an email address, or a URI with a scheme.
    SubjectName,
    check_subject_name
);

fn check_name(v: &str) -> Result<(), InvalidValue> {
    if v.trim().is_empty() {
        return Err(InvalidValue("must not be empty".into()));
    }
    if v.chars().count() > 255 {
        return Err(InvalidValue("must be at most 255 characters".into()));
    }
    if v.chars().any(char::is_control) {
        return Err(InvalidValue("must not contain control characters".into()));
    }
    Ok(())
}

fn check_resource_id(v: &str) -> Result<(), InvalidValue> {
    if v.is_empty() || v.len() > 128 {
        return Err(InvalidValue("must be 1 to 128 characters".into()));
    }
    if !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(InvalidValue("may contain only letters, digits, '.', '_' and '-'".into()));
    }
    Ok(())
}

/// Checks a DNS name per RFC 1035/1123 label rules; `*.` is allowed as the first label when
/// `allow_wildcard` is set.
pub fn check_dns_name(v: &str, allow_wildcard: bool) -> Result<(), InvalidValue> {
    let name = v.strip_suffix('.').unwrap_or(v);
    if name.is_empty() || name.len() > 253 {
        return Err(InvalidValue(format!("'{v}' is not a valid DNS name: length must be 1 to 253")));
    }
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" && allow_wildcard && name.contains('.') {
            continue;
        }
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(InvalidValue(format!("'{v}' is not a valid DNS name")));
        }
    }
    Ok(())
}

fn check_email(v: &str) -> Result<(), InvalidValue> {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return Err(InvalidValue(format!("'{v}' is not a valid email address")));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'@' | b'<' | b'>' | b'(' | b')' | b',' | b';' | b':' | b'\\' | b'"' | b'[' | b']')
        });
    if !local_ok || check_dns_name(domain, false).is_err() || !domain.contains('.') && domain != "localhost" {
        return Err(InvalidValue(format!("'{v}' is not a valid email address")));
    }
    Ok(())
}

fn check_subject_name(v: &str) -> Result<(), InvalidValue> {
    if v.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if v.contains('@') {
        return check_email(v);
    }
    if let Some((scheme, rest)) = v.split_once("://") {
        let scheme_ok =
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if scheme_ok && !rest.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Ok(());
        }
        return Err(InvalidValue(format!("'{v}' is not a valid URI")));
    }
    check_dns_name(v, true)
}

impl SubjectName {
    /// The kind of name this is, for building certificate extensions.
    pub fn kind(&self) -> SubjectNameKind {
        if let Ok(ip) = self.0.parse::<IpAddr>() {
            SubjectNameKind::Ip(ip)
        } else if self.0.contains("://") {
            SubjectNameKind::Uri
        } else if self.0.contains('@') {
            SubjectNameKind::Email
        } else {
            SubjectNameKind::Dns
        }
    }
}

/// The four kinds of subject alternative name certctl issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectNameKind {
    Dns,
    Ip(IpAddr),
    Email,
    Uri,
}

macro_rules! wire_enum {
    // Wire names match as `tt`, not `literal`: a `literal` fragment reaches the derives wrapped in
    // an invisible group that utoipa's serde attribute parser skips, so the schema would list the
    // variant names instead of the wire names.
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:tt $(| $alias:tt)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire $(, alias = $alias)*)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire $(| $alias)* => Ok($name::$variant),)+
                    _ => Err(InvalidValue(format!(
                        "'{s}' is not one of {}",
                        [$($wire),+].join(", ")
                    ))),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// What an API key may do.
    Role {
        /// Everything, including API keys, CA hierarchies and bulk revocation.
        Admin = "admin",
        /// Read and write inventory and lifecycle operations.
        Operator = "operator",
        /// Read only.
        Viewer = "viewer",
        /// Agent protocol calls only.
        Agent = "agent",
    }
);

wire_enum!(
    /// Lifecycle status of a managed certificate.
    CertificateStatus {
        Pending = "Pending",
        Active = "Active",
        Expiring = "Expiring",
        Expired = "Expired",
        RenewalInProgress = "RenewalInProgress",
        Failed = "Failed",
        Revoked = "Revoked",
        Archived = "Archived",
    }
);

wire_enum!(
    /// Issuer connector type. `GenericCA` is the built-in local CA.
    IssuerType {
        Acme = "ACME",
        GenericCa = "GenericCA" | "local" | "local_ca",
        StepCa = "StepCA",
        OpenSsl = "OpenSSL",
        VaultPki = "VaultPKI",
        DigiCert = "DigiCert",
        Sectigo = "Sectigo",
        GoogleCas = "GoogleCAS",
        AwsAcmPca = "AWSACMPCA",
        Entrust = "Entrust",
        GlobalSign = "GlobalSign",
        Ejbca = "EJBCA",
    }
);

wire_enum!(
    /// Deployment target type.
    TargetType {
        Nginx = "NGINX",
        Apache = "Apache",
        HaProxy = "HAProxy",
        Traefik = "Traefik",
        Caddy = "Caddy",
        Envoy = "Envoy",
        Postfix = "Postfix",
        Dovecot = "Dovecot",
        Iis = "IIS",
        F5 = "F5",
        Ssh = "SSH",
        WinCertStore = "WinCertStore",
        JavaKeystore = "JavaKeystore",
        KubernetesSecrets = "KubernetesSecrets",
        AwsAcm = "AWSACM",
        AzureKeyVault = "AzureKeyVault",
        File = "File",
    }
);

wire_enum!(
    /// Agent liveness.
    AgentStatus {
        Online = "Online",
        Offline = "Offline",
        Degraded = "Degraded",
    }
);

wire_enum!(
    /// Kind of job.
    JobType {
        Issuance = "Issuance",
        Renewal = "Renewal",
        Deployment = "Deployment",
        Validation = "Validation",
    }
);

wire_enum!(
    /// Job state.
    JobStatus {
        Pending = "Pending",
        AwaitingCsr = "AwaitingCSR",
        AwaitingApproval = "AwaitingApproval",
        Running = "Running",
        Completed = "Completed",
        Failed = "Failed",
        Cancelled = "Cancelled",
    }
);

impl JobStatus {
    /// Whether the job has reached an end state.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }
}

wire_enum!(
    /// Who caused an audit event.
    ActorType {
        User = "User",
        System = "System",
        Agent = "Agent",
    }
);

wire_enum!(
    /// Key algorithm family.
    KeyAlgorithm {
        Rsa = "RSA",
        Ecdsa = "ECDSA",
        Ed25519 = "Ed25519",
    }
);

wire_enum!(
    /// Extended key usage names.
    ExtendedKeyUsage {
        ServerAuth = "serverAuth",
        ClientAuth = "clientAuth",
        CodeSigning = "codeSigning",
        EmailProtection = "emailProtection",
        TimeStamping = "timeStamping",
    }
);

wire_enum!(
    /// How the ACME server authorizes identifiers for a profile.
    AcmeAuthMode {
        TrustAuthenticated = "trust_authenticated",
        Challenge = "challenge",
    }
);

wire_enum!(
    /// Where the private key of a certificate is generated.
    KeyMode {
        /// On the host, by certctl-agent; only the CSR reaches the server.
        Agent = "agent",
        /// On the server, encrypted at rest.
        Server = "server",
    }
);

wire_enum!(
    /// Severity tier of an expiry alert.
    SeverityTier {
        Informational = "informational",
        Warning = "warning",
        Critical = "critical",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_names() {
        for ok in [
            "example.com",
            "*.example.com",
            "a-b.c_d.example",
            "10.0.0.1",
            "::1",
            "ops@example.com",
            "spiffe://trust/ns/x",
        ] {
            assert!(SubjectName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a.com", "a..com", "*", "a.*.com", "exa mple.com", "@example.com", "x@", "a@b@"] {
            assert!(SubjectName::parse(bad).is_err(), "{bad}");
        }
        assert!(SubjectName::parse("a".repeat(64) + ".com").is_err());
    }

    #[test]
    fn ids_and_names() {
        assert!(ResourceId::parse("mc-api_prod.1").is_ok());
        assert!(ResourceId::parse("a/b").is_err());
        assert!(ResourceId::parse("").is_err());
        assert!(Name::parse("  ").is_err());
        assert!(Name::parse("x\u{7}").is_err());
        assert!(Email::parse("a@b").is_err());
        assert!(Email::parse("alice@example.com").is_ok());
    }

    #[test]
    fn enums_round_trip_and_alias() {
        let t: IssuerType = serde_json::from_str("\"local\"").unwrap();
        assert_eq!(t, IssuerType::GenericCa);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"GenericCA\"");
        assert_eq!("AwaitingCSR".parse::<JobStatus>().unwrap(), JobStatus::AwaitingCsr);
        assert!("nope".parse::<Role>().unwrap_err().0.contains("admin, operator"));
    }
}
