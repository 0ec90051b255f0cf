//! Certificate profiles and renewal policies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{AcmeAuthMode, ExtendedKeyUsage, KeyAlgorithm, KeyMode, Name, ResourceId, SeverityTier};

/// One accepted key algorithm with its minimum size in bits (curve size for ECDSA).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyAlgorithmRule {
    pub algorithm: KeyAlgorithm,
    /// RSA 2048–8192; ECDSA 256 or 384; Ed25519 256. 0 means the algorithm's minimum, except
    /// for RSA.
    #[serde(default)]
    pub min_size: u32,
}

/// Issuance constraints shared by a set of certificates.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CertificateProfile {
    pub id: String,
    pub name: String,
    pub description: String,
    pub allowed_key_algorithms: Vec<KeyAlgorithmRule>,
    /// Longest validity in seconds; 0 means the issuer's default.
    pub max_ttl_seconds: i64,
    pub allowed_ekus: Vec<ExtendedKeyUsage>,
    pub required_san_patterns: Vec<String>,
    pub spiffe_uri_pattern: String,
    pub allow_short_lived: bool,
    pub must_staple: bool,
    pub requires_approval: bool,
    /// Overrides the server's key generation mode for this profile.
    #[serde(default)]
    pub key_mode: Option<KeyMode>,
    pub acme_auth_mode: AcmeAuthMode,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Declares a request struct with the given leading fields followed by every optional profile
/// field, so create and update share one field list without `serde(flatten)` (which cannot be
/// combined with `deny_unknown_fields`).
macro_rules! profile_request {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            #[serde(default)]
            pub description: Option<String>,
            /// Default: ECDSA ≥ 256 and RSA ≥ 2048.
            #[serde(default)]
            pub allowed_key_algorithms: Option<Vec<KeyAlgorithmRule>>,
            /// 0 (the issuer's default) up to 100 years.
            #[serde(default)]
            pub max_ttl_seconds: Option<i64>,
            /// Default `["serverAuth"]`; not empty; duplicates are collapsed.
            #[serde(default)]
            pub allowed_ekus: Option<Vec<ExtendedKeyUsage>>,
            /// DNS names, each optionally starting with a `*.` wildcard label.
            #[serde(default)]
            pub required_san_patterns: Option<Vec<String>>,
            #[serde(default)]
            pub spiffe_uri_pattern: Option<String>,
            /// When true, `max_ttl_seconds` must be between 1 and 3599.
            #[serde(default)]
            pub allow_short_lived: Option<bool>,
            #[serde(default)]
            pub must_staple: Option<bool>,
            #[serde(default)]
            pub requires_approval: Option<bool>,
            #[serde(default)]
            pub key_mode: Option<KeyMode>,
            #[serde(default)]
            pub acme_auth_mode: Option<AcmeAuthMode>,
            /// Default true.
            #[serde(default)]
            pub enabled: Option<bool>,
        }
    };
}

profile_request!(
    /// Creates a profile; absent fields take their defaults.
    CreateProfile {
        #[serde(default)]
        id: Option<ResourceId>,
        name: Name,
    }
);

profile_request!(
    /// Partial update: absent fields keep their value.
    UpdateProfile {
        #[serde(default)]
        name: Option<Name>,
    }
);

/// When and how certificates renew, and who hears about their expiry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RenewalPolicy {
    pub id: String,
    pub name: String,
    /// Days before expiry at which renewal starts.
    pub renewal_window_days: i64,
    pub auto_renew: bool,
    pub max_retries: i64,
    pub retry_interval_seconds: i64,
    pub alert_thresholds_days: Vec<i64>,
    /// Severity tier → notification channel names.
    pub alert_channels: BTreeMap<SeverityTier, Vec<String>>,
    /// Threshold in days (as a string key) → severity tier.
    pub alert_severity_map: BTreeMap<String, SeverityTier>,
    #[serde(default)]
    pub certificate_profile_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Declares a request struct with the given leading fields followed by every optional renewal
/// policy field (see `profile_request!` for why this is a macro).
macro_rules! renewal_policy_request {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// 1–365, default 30.
            #[serde(default)]
            pub renewal_window_days: Option<i64>,
            /// Default true.
            #[serde(default)]
            pub auto_renew: Option<bool>,
            /// 0–10, default 3.
            #[serde(default)]
            pub max_retries: Option<i64>,
            /// 60–86400, default 3600.
            #[serde(default)]
            pub retry_interval_seconds: Option<i64>,
            /// Each 0–365, default [30, 14, 7, 0]; stored unique and descending.
            #[serde(default)]
            pub alert_thresholds_days: Option<Vec<i64>>,
            /// Severity tier → non-empty channel names. Default `{}`.
            #[serde(default)]
            pub alert_channels: Option<BTreeMap<SeverityTier, Vec<String>>>,
            /// Threshold in days → severity tier; every key must be one of the thresholds.
            /// Default `{}`.
            #[serde(default)]
            pub alert_severity_map: Option<BTreeMap<String, SeverityTier>>,
            /// An existing certificate profile.
            #[serde(default)]
            pub certificate_profile_id: Option<ResourceId>,
        }
    };
}

renewal_policy_request!(
    /// Creates a renewal policy; absent fields take their defaults.
    CreateRenewalPolicy {
        #[serde(default)]
        id: Option<ResourceId>,
        name: Name,
    }
);

renewal_policy_request!(
    /// Partial update: absent fields keep their value.
    UpdateRenewalPolicy {
        #[serde(default)]
        name: Option<Name>,
    }
);
