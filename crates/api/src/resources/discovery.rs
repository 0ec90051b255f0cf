//! Discovery: certificates agents find on their hosts, and their triage into the inventory.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// One certificate an agent found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiscoveredEntry {
    /// Absolute path of the file it came from.
    pub source_path: String,
    /// The certificate as PEM (the agent converts DER files).
    pub pem_data: String,
    /// `PEM` (default) or `DER`: the file's own format.
    #[serde(default)]
    pub source_format: Option<String>,
}

/// `POST /api/v1/agents/{id}/discoveries`: one filesystem scan. Certificate facts are read by
/// the server from `pem_data`, not taken from the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryReport {
    #[serde(default)]
    pub directories: Vec<String>,
    #[serde(default)]
    pub certificates: Vec<DiscoveredEntry>,
    /// Files the agent could not read, with why.
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub scan_duration_ms: i64,
}

/// One refused entry of a report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DiscoveryRejection {
    pub source_path: String,
    pub error: String,
}

/// The answer to a report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DiscoveryAccepted {
    pub received: usize,
    /// Certificates not seen before at that path on that agent.
    pub new: usize,
    /// Certificates seen before; their `last_seen_at` moved.
    pub updated: usize,
    pub rejected: Vec<DiscoveryRejection>,
}

/// A certificate found on a host.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DiscoveredCertificate {
    pub id: String,
    pub agent_id: String,
    pub source_path: String,
    pub source_format: String,
    pub fingerprint_sha256: String,
    pub common_name: String,
    pub sans: Vec<String>,
    pub serial_number: String,
    pub subject_dn: String,
    pub issuer_dn: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub key_algorithm: String,
    pub key_size: i64,
    pub is_ca: bool,
    pub pem_data: String,
    /// `Unmanaged`, `Managed` (claimed) or `Dismissed`.
    pub status: String,
    #[serde(default)]
    pub managed_certificate_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub dismissed_at: Option<OffsetDateTime>,
}

/// Filters of `GET /api/v1/discovered-certificates`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscoveredFilter {
    pub agent_id: Option<String>,
    /// `Unmanaged`, `Managed` or `Dismissed`.
    pub status: Option<String>,
}

/// `POST /api/v1/discovered-certificates/{id}/claim`: link to an existing managed certificate
/// (`managed_certificate_id`), or create one from the discovered certificate's names (`name`,
/// `owner_id`, `team_id`, `issuer_id`, and optionally `renewal_policy_id`, default `rp-default`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimDiscovered {
    #[serde(default)]
    pub managed_certificate_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub issuer_id: Option<String>,
    #[serde(default)]
    pub renewal_policy_id: Option<String>,
    #[serde(default)]
    pub certificate_profile_id: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
}

/// `GET /api/v1/discovery-summary`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DiscoverySummary {
    pub total: i64,
    pub unmanaged: i64,
    pub managed: i64,
    pub dismissed: i64,
    /// Unmanaged certificates already past notAfter.
    pub unmanaged_expired: i64,
    /// Unmanaged certificates expiring within 30 days.
    pub unmanaged_expiring_30d: i64,
}
