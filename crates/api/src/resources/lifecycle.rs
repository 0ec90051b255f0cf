//! Issuance, renewal, revocation, export and CA hierarchy operations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::Job;

/// Body of `POST /certificates/{id}/renew` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// Replace an issuance already in progress.
    #[serde(default)]
    pub force: bool,
}

/// Answer of a renewal request: the job that carries it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewalAccepted {
    /// Always `renewal_triggered`.
    pub status: String,
    pub job_id: String,
    pub job: Job,
}

/// Body of `POST /certificates/{id}/revoke`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// RFC 5280 reason name (`keyCompromise`, `superseded`, …); default `unspecified`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Answer of a revocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevocationResult {
    /// Always `revoked`.
    pub status: String,
    pub certificate_id: String,
    pub serial_number: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

/// Selection of certificates for a bulk operation; at least one criterion is required, and
/// criteria combine with AND.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSelection {
    #[serde(default)]
    pub certificate_ids: Option<Vec<String>>,
    #[serde(default)]
    pub profile_id: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub issuer_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
}

/// Body of `POST /certificates/bulk-revoke`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRevokeRequest {
    pub reason: String,
    #[serde(default)]
    pub certificate_ids: Option<Vec<String>>,
    #[serde(default)]
    pub profile_id: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub issuer_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
}

/// One certificate a bulk operation could not handle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct BulkItemError {
    pub certificate_id: String,
    pub error: String,
}

/// Answer of a bulk revocation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BulkRevokeResult {
    pub total_matched: usize,
    pub total_revoked: usize,
    pub total_skipped: usize,
    pub total_failed: usize,
    pub errors: Vec<BulkItemError>,
}

/// A job a bulk renewal created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EnqueuedJob {
    pub certificate_id: String,
    pub job_id: String,
}

/// Answer of a bulk renewal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BulkRenewResult {
    pub total_matched: usize,
    pub total_enqueued: usize,
    pub total_skipped: usize,
    pub total_failed: usize,
    pub enqueued_jobs: Vec<EnqueuedJob>,
    pub errors: Vec<BulkItemError>,
}

/// The current certificate of a managed certificate, as PEM.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PemExport {
    pub cert_pem: String,
    pub chain_pem: String,
    pub full_pem: String,
}

/// Body of `POST /certificates/{id}/export/pkcs12`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pkcs12Request {
    /// Protects the file; required, since consumers disagree on what an empty password means.
    #[serde(default)]
    pub password: String,
    /// Include the private key (server-generated keys and admin keys only).
    #[serde(default)]
    pub include_key: bool,
}

/// Body of `POST /agents/{id}/csr`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrSubmission {
    pub certificate_id: String,
    pub csr_pem: String,
}

/// Answer of a CSR submission: the issued certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CsrIssued {
    pub certificate_id: String,
    /// The issuance job the CSR completed; absent when none was waiting.
    #[serde(default)]
    pub job_id: Option<String>,
    pub version_id: String,
    pub serial_number: String,
    pub cert_pem: String,
    pub chain_pem: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// Name constraints of a CA (RFC 5280 §4.2.1.10).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NameConstraints {
    #[serde(default)]
    pub permitted_dns: Vec<String>,
    #[serde(default)]
    pub excluded_dns: Vec<String>,
    /// CIDR blocks, e.g. `10.0.0.0/8`.
    #[serde(default)]
    pub permitted_ip: Vec<String>,
    #[serde(default)]
    pub excluded_ip: Vec<String>,
    #[serde(default)]
    pub permitted_email: Vec<String>,
    #[serde(default)]
    pub excluded_email: Vec<String>,
}

/// Body of `POST /issuers/{id}/intermediates`: a child CA signed by `parent_ca_id` (default:
/// the issuer's root, created when missing).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntermediate {
    pub name: String,
    #[serde(default)]
    pub parent_ca_id: Option<String>,
    /// Subject common name; defaults to `name`.
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    /// `ECDSA-P256` (default), `ECDSA-P384`, `RSA-2048`, `RSA-3072`, `RSA-4096`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Default 1825 (five years), capped by the parent's validity.
    #[serde(default)]
    pub ttl_days: Option<i64>,
    #[serde(default)]
    pub path_len_constraint: Option<u8>,
    #[serde(default)]
    pub name_constraints: Option<NameConstraints>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A CA of a local-CA issuer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntermediateCa {
    pub id: String,
    pub issuer_id: String,
    #[serde(default)]
    pub parent_ca_id: Option<String>,
    pub name: String,
    /// `active`, `retiring` or `retired`.
    pub state: String,
    /// `generated`, `imported` or `intermediate`.
    pub source: String,
    pub subject: String,
    pub serial_number: String,
    pub key_algorithm: String,
    #[serde(default)]
    pub path_len_constraint: Option<i64>,
    pub name_constraints: NameConstraints,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub cert_pem: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Body of `POST /intermediates/{id}/retire`: without `confirm` an active CA becomes
/// `retiring`; with it a retiring CA becomes `retired`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireCa {
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// Body of `POST /certificates/{id}/deploy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Deploy to this mapped target only; every mapped live target when absent.
    #[serde(default)]
    pub target_id: Option<String>,
}

/// Answer of `POST /certificates/{id}/deploy`: one Deployment job per target, for the
/// target's agent to claim.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentTriggered {
    /// `deployment_triggered`.
    pub status: String,
    pub jobs: Vec<Job>,
}

/// Body of `POST /certificates/bulk-reassign`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkReassignRequest {
    pub certificate_ids: Vec<String>,
    pub owner_id: String,
    /// Also move the certificates to this team.
    #[serde(default)]
    pub team_id: Option<String>,
}

/// Answer of a bulk reassignment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BulkReassignResult {
    pub total_matched: usize,
    pub total_reassigned: usize,
    pub total_skipped: usize,
    pub total_failed: usize,
    pub errors: Vec<BulkItemError>,
}
