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
    /// New accounts must carry an external account binding (an EAB key from
    /// `/api/v1/acme/eab-keys`); the directory advertises it in `meta.externalAccountRequired`.
    pub external_account_required: bool,
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
    /// Require an external account binding on new-account (default false).
    #[serde(default)]
    pub external_account_required: bool,
}

/// An external account binding key (RFC 8555 §7.3.4), as listed: never the HMAC key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AcmeEabKey {
    /// The key identifier a client sends as the EAB `kid`.
    pub kid: String,
    /// The only profile whose directory accepts this key; any profile when absent.
    pub profile_id: Option<String>,
    pub note: String,
    /// The ACME account the key bound; a key binds one account, once.
    pub account_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Creates an EAB key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAcmeEabKey {
    /// Restrict the key to this profile's ACME directory.
    #[serde(default)]
    pub profile_id: Option<ResourceId>,
    /// Free text: who the key is for.
    #[serde(default)]
    pub note: Option<String>,
}

/// A new EAB key: the only response that shows the HMAC key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CreatedAcmeEabKey {
    pub kid: String,
    /// The HMAC key, unpadded base64url (what certbot's `--eab-hmac-key` and lego's `--hmac` take).
    pub hmac_key: String,
    pub profile_id: Option<String>,
    pub note: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The outcome of "renew now": the ARI window the covered certificates now answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AcmeRenewNow {
    /// How many certificates now answer this window.
    pub certificates: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
}
