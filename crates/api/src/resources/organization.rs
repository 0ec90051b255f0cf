//! Teams and owners.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{Email, Name, ResourceId};

/// A team groups owners and certificates.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    /// Optional client-chosen ID; generated when absent.
    #[serde(default)]
    pub id: Option<ResourceId>,
    pub name: Name,
    #[serde(default)]
    pub description: Option<String>,
}

/// Partial update: absent fields keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A person or group responsible for certificates; alerts go to the owner's email.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Owner {
    pub id: String,
    pub name: String,
    pub email: String,
    pub team_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOwner {
    #[serde(default)]
    pub id: Option<ResourceId>,
    pub name: Name,
    pub email: Email,
    pub team_id: ResourceId,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOwner {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub team_id: Option<ResourceId>,
}

/// Filters of `GET /api/v1/owners`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnerFilter {
    pub team_id: Option<String>,
}
