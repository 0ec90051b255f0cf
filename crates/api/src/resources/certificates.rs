//! Managed certificates, their versions and their target mappings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{CertificateStatus, Name, ResourceId, SubjectName};

/// A certificate certctl keeps alive.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ManagedCertificate {
    pub id: String,
    pub name: String,
    pub common_name: String,
    pub sans: Vec<String>,
    pub environment: String,
    pub owner_id: String,
    pub team_id: String,
    pub issuer_id: String,
    /// Deployment targets this certificate is mapped to.
    pub target_ids: Vec<String>,
    pub renewal_policy_id: String,
    #[serde(default)]
    pub certificate_profile_id: Option<String>,
    pub status: CertificateStatus,
    /// Expiry of the current version; absent until the first issuance.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub tags: BTreeMap<String, String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_renewal_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_deployment_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub revocation_reason: Option<String>,
    /// How the certificate entered certctl: `API`, `ACME`, `EST`, `SCEP`, `Agent`, `Import`.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCertificate {
    #[serde(default)]
    pub id: Option<ResourceId>,
    pub name: Name,
    pub common_name: SubjectName,
    #[serde(default)]
    pub sans: Option<Vec<SubjectName>>,
    #[serde(default)]
    pub environment: Option<String>,
    pub owner_id: ResourceId,
    pub team_id: ResourceId,
    pub issuer_id: ResourceId,
    pub renewal_policy_id: ResourceId,
    #[serde(default)]
    pub certificate_profile_id: Option<ResourceId>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// Deployment targets to map the certificate to.
    #[serde(default)]
    pub target_ids: Option<Vec<ResourceId>>,
}

/// Partial update: absent fields keep their value. `target_ids`, when present, replaces the
/// whole mapping set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCertificate {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub common_name: Option<SubjectName>,
    #[serde(default)]
    pub sans: Option<Vec<SubjectName>>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub owner_id: Option<ResourceId>,
    #[serde(default)]
    pub team_id: Option<ResourceId>,
    #[serde(default)]
    pub issuer_id: Option<ResourceId>,
    #[serde(default)]
    pub renewal_policy_id: Option<ResourceId>,
    #[serde(default)]
    pub certificate_profile_id: Option<ResourceId>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub target_ids: Option<Vec<ResourceId>>,
}

/// Filters, sorting and sparse fields of `GET /api/v1/certificates`. Timestamps are RFC 3339.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CertificateQuery {
    /// Lifecycle status, e.g. `Active`.
    pub status: Option<String>,
    pub environment: Option<String>,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub issuer_id: Option<String>,
    pub profile_id: Option<String>,
    /// Certificates mapped to a target of this agent.
    pub agent_id: Option<String>,
    /// `API`, `ACME`, `EST`, `SCEP`, `Agent` or `Import`.
    pub source: Option<String>,
    pub expires_before: Option<String>,
    pub expires_after: Option<String>,
    pub created_after: Option<String>,
    pub updated_after: Option<String>,
    /// One of `createdAt`, `updatedAt`, `notAfter`/`expiresAt`, `name`, `commonName`, `status`,
    /// `environment`; prefix `-` for descending.
    pub sort: Option<String>,
    /// Descending order (same as a `-` prefix on `sort`).
    pub sort_desc: Option<bool>,
    /// Comma-separated JSON field names to return, e.g. `id,common_name,status`.
    pub fields: Option<String>,
}

/// One issued certificate of a managed certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CertificateVersion {
    pub id: String,
    pub certificate_id: String,
    /// Lower-case hex, no separators.
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Lower-case hex SHA-256 of the leaf DER.
    pub fingerprint_sha256: String,
    /// Leaf then chain, PEM.
    pub pem_chain: String,
    /// The CSR the certificate was issued from, when it came from one.
    #[serde(default)]
    pub csr_pem: Option<String>,
    pub key_algorithm: String,
    pub key_size: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/certificates/{id}/deployments`: the targets the certificate is mapped to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateDeployments {
    pub data: Vec<crate::DeploymentTarget>,
    pub total: i64,
}
