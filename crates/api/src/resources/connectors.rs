//! Issuers, deployment targets and agents: the things certctl connects to.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{AgentStatus, IssuerType, Name, ResourceId, TargetType};

/// The placeholder that replaces secret values in every config returned by the API. Sending it
/// back in an update keeps the stored secret.
pub const REDACTED: &str = "********";

/// A certificate authority connector.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Issuer {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub issuer_type: IssuerType,
    /// Type-specific configuration with secret values replaced by `********`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    /// `untested`, `success` or `failed`.
    pub test_status: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_tested_at: Option<OffsetDateTime>,
    /// `database` for issuers created through the API.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Answer of `POST /api/v1/issuers/{id}/test` when the issuer can issue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct IssuerTestResult {
    /// `ok`.
    pub status: String,
    /// What was checked, for a person to read.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIssuer {
    #[serde(default)]
    pub id: Option<ResourceId>,
    pub name: Name,
    #[serde(rename = "type")]
    pub issuer_type: IssuerType,
    /// Type-specific configuration object; secrets in it are encrypted at rest.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIssuer {
    #[serde(default)]
    pub name: Option<Name>,
    /// Replaces the configuration; values equal to `********` keep the stored secret.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A place an agent deploys certificates to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DeploymentTarget {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub target_type: TargetType,
    pub agent_id: String,
    /// Type-specific configuration with secret values replaced by `********`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    pub test_status: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_tested_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub retired_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTarget {
    #[serde(default)]
    pub id: Option<ResourceId>,
    pub name: Name,
    #[serde(rename = "type")]
    pub target_type: TargetType,
    pub agent_id: ResourceId,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTarget {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub agent_id: Option<ResourceId>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Filters of `GET /api/v1/targets`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TargetFilter {
    pub agent_id: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub target_type: Option<String>,
}

/// A host running certctl-agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub status: AgentStatus,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_heartbeat_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    pub os: String,
    pub architecture: String,
    pub ip_address: String,
    pub version: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub retired_reason: Option<String>,
}

/// Filters of `GET /api/v1/agents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentFilter {
    /// `Online`, `Offline` or `Degraded`.
    pub status: Option<String>,
    /// Include retired agents too.
    pub include_retired: Option<bool>,
}
