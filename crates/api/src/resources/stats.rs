//! Dashboard statistics and the JSON metrics snapshot.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// `GET /api/v1/stats/summary`: the dashboard's headline counts. Archived certificates and
/// retired agents are not counted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DashboardSummary {
    pub total_certificates: i64,
    /// Expiring within 30 days (not revoked or expired).
    pub expiring_certificates: i64,
    /// Marked expired or past their expiry (not revoked).
    pub expired_certificates: i64,
    pub revoked_certificates: i64,
    /// Agents with a heartbeat within the last 5 minutes.
    pub active_agents: i64,
    pub offline_agents: i64,
    pub total_agents: i64,
    /// Jobs pending, awaiting a CSR or approval, or running.
    pub pending_jobs: i64,
    pub failed_jobs: i64,
    pub complete_jobs: i64,
    /// Notifications in the dead-letter queue.
    pub notifications_dead: i64,
    /// When the figures were computed.
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
}

/// One status and how many certificates have it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

/// `GET /api/v1/stats/certificates-by-status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CertificatesByStatus {
    pub status_counts: Vec<StatusCount>,
}

/// A count on one UTC day (`YYYY-MM-DD`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DateCount {
    #[schema(format = Date, example = "2026-03-01")]
    pub date: String,
    pub count: i64,
}

/// `GET /api/v1/stats/expiration-timeline`: certificates expiring per day from today on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ExpirationTimeline {
    pub buckets: Vec<DateCount>,
}

/// Jobs finished on one UTC day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct JobTrendPoint {
    #[schema(format = Date, example = "2026-03-01")]
    pub date: String,
    pub completed: i64,
    pub failed: i64,
    /// Completed out of finished, 0–100; 0 on a day with none.
    pub success_rate: f64,
}

/// `GET /api/v1/stats/job-trends`: per day, ending today.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct JobTrends {
    pub trends: Vec<JobTrendPoint>,
}

/// `GET /api/v1/stats/issuance-rate`: certificate versions issued per day, ending today.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct IssuanceRate {
    pub rate: Vec<DateCount>,
}

/// The `days` window of the time-series statistics.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// Number of days, 1–365 (default 30).
    #[param(minimum = 1, maximum = 365, default = 30)]
    pub days: Option<String>,
}

/// Database snapshot values of `GET /api/v1/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MetricsGauges {
    pub certificate_total: i64,
    /// total − expiring soon − expired − revoked.
    pub certificate_active: i64,
    pub certificate_expiring_soon: i64,
    pub certificate_expired: i64,
    pub certificate_revoked: i64,
    pub agent_total: i64,
    pub agent_online: i64,
    pub job_pending: i64,
}

/// The compatibility "counter" block of `GET /api/v1/metrics` (database counts).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MetricsCounters {
    pub job_completed_total: i64,
    pub job_failed_total: i64,
    pub notifications_dead_total: i64,
}

/// Process uptime.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MetricsUptime {
    pub uptime_seconds: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub server_started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub measured_at: OffsetDateTime,
}

/// `GET /api/v1/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MetricsResponse {
    pub gauge: MetricsGauges,
    pub counter: MetricsCounters,
    pub uptime: MetricsUptime,
}
