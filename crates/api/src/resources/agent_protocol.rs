//! The agent protocol: enrolment tokens, enrolment, heartbeats, work, job reports, certificate
//! fetch and retirement.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{Agent, CertificateVersion, JobStatus, JobType, KeyAlgorithmRule, TargetType};

/// `POST /api/v1/agent-tokens`: a one-time enrolment token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentToken {
    /// What the token is for, e.g. the host it is meant for.
    #[serde(default)]
    pub name: Option<String>,
    /// A free-form group label recorded with the enrolment.
    #[serde(default)]
    pub group: Option<String>,
    /// How long the token stays usable: `30m`, `24h`, `7d`; default `24h`, at most `30d`.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// An enrolment token. The token itself is shown once, in the creation response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AgentToken {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub group: Option<String>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When an agent enrolled with it; a used token cannot enrol again.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    /// The agent that enrolled with it.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The token in clear: only in the response that creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `POST /api/v1/agents/enroll`, authenticated by an enrolment token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnrollAgent {
    /// Unique agent name; the hostname is usual.
    pub name: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub ip_address: String,
    #[serde(default)]
    pub version: String,
}

/// The enrolled agent and its credential, shown this once and stored only as a hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EnrolledAgent {
    pub agent: Agent,
    pub credential: String,
}

/// `POST /api/v1/agents/{id}/heartbeat`: the host's current facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentHeartbeat {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub ip_address: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct HeartbeatRecorded {
    /// Always `heartbeat_recorded`.
    pub status: String,
}

/// One piece of work for an agent: a CSR to make (`AwaitingCSR` Issuance or Renewal jobs,
/// offered at every poll until the CSR arrives) or a deployment (claimed by this poll).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct WorkItem {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub status: JobStatus,
    pub certificate_id: String,
    /// For CSR work: the names the CSR must carry.
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub sans: Vec<String>,
    /// For CSR work: the key algorithms the certificate's profile accepts (empty: any; the
    /// agent then uses ECDSA P-256).
    #[serde(default)]
    pub allowed_key_algorithms: Vec<KeyAlgorithmRule>,
    #[serde(default)]
    pub target_id: Option<String>,
    #[serde(default)]
    pub target_type: Option<TargetType>,
    /// For deployments: the target's configuration with its secrets, for this agent only.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub target_config: Option<Value>,
    pub attempts: i64,
}

/// `GET /api/v1/agents/{id}/work`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AgentWork {
    pub jobs: Vec<WorkItem>,
    pub count: usize,
}

/// What the agent saw when it checked the served certificate over TLS.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerificationReport {
    /// `success`, `failed` or `skipped`.
    pub status: String,
    /// Lower-case hex SHA-256 of the leaf the endpoint served.
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// `POST /api/v1/agents/{id}/jobs/{job_id}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobStatusReport {
    /// `Running` (still working: extends the claim), `Completed` or `Failed`.
    pub status: JobStatus,
    /// Why the job failed.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub verification: Option<VerificationReport>,
}

/// `GET /api/v1/agents/{id}/certificates/{cert_id}`: the current version to deploy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AgentCertificate {
    /// Leaf then chain, PEM (the Go certctl's field).
    pub certificate_pem: String,
    pub version: CertificateVersion,
}

/// `DELETE /api/v1/agents/{id}` parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetireAgentParams {
    /// Retire even with live targets or open jobs: the targets are retired and the jobs
    /// cancelled with the agent.
    pub force: Option<bool>,
    /// Why; required with `force`.
    pub reason: Option<String>,
}

/// What still depends on an agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AgentDependencyCounts {
    /// Live deployment targets on the agent.
    pub targets: i64,
    /// Managed certificates mapped to those targets.
    pub certificates: i64,
    /// Open jobs (pending, running, waiting) of the agent.
    pub jobs: i64,
}

/// The outcome of a retirement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AgentRetired {
    #[serde(with = "time::serde::rfc3339")]
    pub retired_at: OffsetDateTime,
    pub already_retired: bool,
    /// Whether targets and jobs were retired and cancelled with it.
    pub cascade: bool,
    pub counts: AgentDependencyCounts,
}

/// The 409 answer when dependencies block a retirement without `force`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AgentRetirementBlocked {
    /// `blocked_by_dependencies`.
    pub error: String,
    pub message: String,
    pub request_id: String,
    pub counts: AgentDependencyCounts,
}
