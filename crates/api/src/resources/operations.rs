//! Jobs and the audit trail.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{ActorType, JobStatus, JobType};

/// A unit of lifecycle work: issuance, renewal, deployment or validation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Job {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub certificate_id: String,
    #[serde(default)]
    pub target_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    pub status: JobStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// `pending`, `success`, `failed` or `skipped`.
    pub verification_status: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub verification_error: Option<String>,
    #[serde(default)]
    pub verification_fingerprint: Option<String>,
}

/// Filters of `GET /api/v1/jobs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    pub status: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub job_type: Option<String>,
    pub certificate_id: Option<String>,
    pub agent_id: Option<String>,
    /// Jobs of one deployment target (its deployment history).
    pub target_id: Option<String>,
}

/// Body of `POST /api/v1/jobs/{id}/reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectJob {
    /// Why; recorded as the job's last error and in the audit trail.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One append-only audit record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AuditEvent {
    pub id: String,
    pub actor: String,
    pub actor_type: ActorType,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// Redacted details; for API calls: method, path, status, latency_ms, body_sha256.
    #[schema(value_type = Object)]
    pub details: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Hex SHA-256 of the previous record (the chain link).
    pub prev_hash: String,
    /// Hex SHA-256 over this record's content and `prev_hash`.
    pub hash: String,
}

/// Filters of `GET /api/v1/audit`. Times are RFC 3339.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Events at or after this time.
    pub from: Option<String>,
    /// Events before this time.
    pub to: Option<String>,
}
