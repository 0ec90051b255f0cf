//! Administration of the ACME server: which certctl profiles serve ACME, and what their
//! certificates are issued by and filed under.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::ResourceId;

/// A certctl profile served over ACME at `/acme/profile/{profile_id}/directory`: the issuer
/// that signs its certificates and the owner, team and renewal policy they are filed under in
/// the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AcmeBinding {
    pub profile_id: String,
    pub issuer_id: String,
    pub owner_id: String,
    pub team_id: String,
    pub renewal_policy_id: String,
    /// The profile's ACME directory URL.
    pub directory_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Serves a profile over ACME, or changes what it is bound to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAcmeBinding {
    /// A local-CA (`GenericCA`) issuer.
    pub issuer_id: ResourceId,
    pub owner_id: ResourceId,
    pub team_id: ResourceId,
    /// A policy that does not auto-renew: ACME clients renew their own certificates. Its
    /// renewal window drives ARI's suggested windows. Default: `rp-acme`, created on first use.
    #[serde(default)]
    pub renewal_policy_id: Option<ResourceId>,
}
