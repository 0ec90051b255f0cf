//! Notifications (the outbox and its dead-letter queue), notification channels and the digest.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::scalars::wire_enum;
use crate::{CertificateStatus, InvalidValue, Name, SeverityTier};

wire_enum!(
    /// What a notification reports.
    NotificationType {
        ExpirationWarning = "ExpirationWarning",
        RenewalSuccess = "RenewalSuccess",
        RenewalFailure = "RenewalFailure",
        DeploymentSuccess = "DeploymentSuccess",
        DeploymentFailure = "DeploymentFailure",
        PolicyViolation = "PolicyViolation",
        Revocation = "Revocation",
        /// Sent by `POST /api/v1/notification-channels/{id}/test`.
        Test = "Test",
        /// The certificate digest: what expires soon, by status.
        Digest = "Digest",
    }
);

wire_enum!(
    /// Where a notification is in its delivery.
    NotificationStatus {
        /// Waiting for its first delivery attempt.
        Pending = "pending",
        /// Delivered.
        Sent = "sent",
        /// An attempt failed; `next_retry_at` says when the retry sweep tries again.
        Failed = "failed",
        /// Out of attempts, or its channel is not configured; only a requeue revives it.
        Dead = "dead",
        /// Delivered and acknowledged by an operator.
        Read = "read",
    }
);

wire_enum!(
    /// The kind of a notification channel.
    ChannelType {
        Email = "Email",
        Webhook = "Webhook",
        Slack = "Slack",
        Teams = "Teams",
        PagerDuty = "PagerDuty",
        OpsGenie = "OpsGenie",
    }
);

/// One notification of the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Notification {
    pub id: String,
    #[serde(rename = "type")]
    pub notification_type: NotificationType,
    /// Name of the channel that delivers it.
    pub channel: String,
    pub recipient: String,
    #[serde(default)]
    pub certificate_id: Option<String>,
    pub subject: String,
    pub message: String,
    pub severity: SeverityTier,
    pub status: NotificationStatus,
    /// Failed attempts so far; on a `sent` row, the attempts that failed before it was delivered.
    pub retry_count: i64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_retry_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Filters of `GET /api/v1/notifications`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationFilter {
    /// `pending`, `sent`, `failed`, `dead` (the dead-letter queue) or `read`.
    pub status: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub notification_type: Option<String>,
    pub channel: Option<String>,
    pub certificate_id: Option<String>,
}

/// A named notification channel. Secret settings never leave the server: they read `"********"`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct NotificationChannel {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    /// Type-specific settings, secrets redacted.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    /// `api` for channels managed through the API, `env` for those declared by environment.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Body of `POST /api/v1/notification-channels`.
///
/// `config` by type: Webhook `{url, secret?}`; Slack and Teams `{url}`; PagerDuty
/// `{routing_key, url?}`; OpsGenie `{api_key, region?: "us"|"eu", url?}`; Email `{host, port?,
/// tls?: "starttls" (default, port 587) | "tls" (implicit TLS, port 465; alias "implicit") |
/// "none" (port 25), username?, password?, from, to: [..], ca_path?}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNotificationChannel {
    #[serde(default)]
    pub id: Option<String>,
    pub name: Name,
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `PUT /api/v1/notification-channels/{id}`; absent fields keep their value, and a
/// secret setting sent as `"********"` (or left out of a new `config`) keeps its stored value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNotificationChannel {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// How many certificates in the digest window have one status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DigestStatusCount {
    pub status: CertificateStatus,
    pub count: i64,
}

/// One certificate of the digest.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DigestCertificate {
    pub id: String,
    pub name: String,
    pub common_name: String,
    pub status: CertificateStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whole days until expiry; negative once expired.
    pub days_left: i64,
    pub owner_email: String,
}

/// The certificates expiring within `window_days` (expired ones included; revoked and archived
/// ones left out), counted by status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DigestSummary {
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub window_days: i64,
    /// Every managed certificate, whatever its expiry.
    pub total_certificates: i64,
    /// Certificates in the window (the sum of `by_status`).
    pub expiring_total: i64,
    pub by_status: Vec<DigestStatusCount>,
    /// The soonest-expiring certificates of the window (at most 500).
    pub certificates: Vec<DigestCertificate>,
}

/// Query of `GET /api/v1/digest/preview`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestPreviewParams {
    /// `html` (default), `text` or `json`.
    pub format: Option<String>,
    /// Window in days, 1–365 (default 30).
    pub days: Option<String>,
}

/// Query of `POST /api/v1/digest/send`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestSendParams {
    /// Window in days, 1–365 (default 30).
    pub days: Option<String>,
}

/// What the digest reports, rendered (`format=json` of the preview).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DigestPreview {
    pub subject: String,
    pub recipients: Vec<String>,
    pub text: String,
    pub html: String,
    pub summary: DigestSummary,
}

/// Result of `POST /api/v1/digest/send`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DigestSent {
    /// Digest notifications enqueued, one per email channel.
    pub enqueued: usize,
    pub recipients: Vec<String>,
}
