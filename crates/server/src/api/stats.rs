//! Dashboard statistics: SQL aggregates over the inventory, computed per request.

use axum::Json as Reply;
use axum::extract::State;
use time::{Date, Duration, OffsetDateTime};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    CertificatesByStatus, DashboardSummary, DateCount, DaysQuery, ErrorBody, ExpirationTimeline, IssuanceRate,
    JobTrendPoint, JobTrends, StatusCount,
};

use crate::AppState;
use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;

/// The longest window of the time series.
pub const MAX_DAYS: u32 = 365;
const DEFAULT_DAYS: u32 = 30;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(certificates_by_status))
        .routes(routes!(expiration_timeline))
        .routes(routes!(job_trends))
        .routes(routes!(issuance_rate))
}

/// `days`: absent or empty means 30; otherwise an integer in 1..=365.
fn days(q: &DaysQuery) -> ApiResult<u32> {
    match q.days.as_deref().map(str::trim) {
        None | Some("") => Ok(DEFAULT_DAYS),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_DAYS).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!("days: '{v}' is not a whole number of days in 1..={MAX_DAYS}"))),
        },
    }
}

fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The UTC date of `now` shifted by `offset` days.
fn day(now: OffsetDateTime, offset: i64) -> String {
    iso_date((now.to_offset(time::UtcOffset::UTC) + Duration::days(offset)).date())
}

/// Dashboard summary.
#[utoipa::path(get, path = "/api/v1/stats/summary", tag = "Stats", responses(
    (status = 200, body = DashboardSummary), (status = 401, body = ErrorBody)))]
async fn summary(_: Viewer, State(s): State<AppState>) -> ApiResult<Reply<DashboardSummary>> {
    let now = s.clock.now();
    let c = s.store.inventory_counts(now).await?;
    Ok(Reply(DashboardSummary {
        total_certificates: c.certificates,
        expiring_certificates: c.expiring,
        expired_certificates: c.expired,
        revoked_certificates: c.revoked,
        active_agents: c.agents_online,
        offline_agents: c.agents - c.agents_online,
        total_agents: c.agents,
        pending_jobs: c.jobs_open(),
        failed_jobs: c.jobs_in("Failed"),
        complete_jobs: c.jobs_in("Completed"),
        notifications_dead: c.notifications_in("dead"),
        completed_at: now,
    }))
}

/// Certificates per status; `Active` ones are re-bucketed as `Expiring` (within 30 days) or
/// `Expired` by their expiry.
#[utoipa::path(get, path = "/api/v1/stats/certificates-by-status", tag = "Stats", responses(
    (status = 200, body = CertificatesByStatus), (status = 401, body = ErrorBody)))]
async fn certificates_by_status(_: Viewer, State(s): State<AppState>) -> ApiResult<Reply<CertificatesByStatus>> {
    let rows = s.store.certificates_by_status(s.clock.now()).await?;
    let status_counts = rows.into_iter().map(|(status, count)| StatusCount { status, count }).collect();
    Ok(Reply(CertificatesByStatus { status_counts }))
}

/// Certificates expiring on each day from today on (revoked and archived ones excluded).
#[utoipa::path(get, path = "/api/v1/stats/expiration-timeline", tag = "Stats", params(DaysQuery), responses(
    (status = 200, body = ExpirationTimeline), (status = 400, body = ErrorBody)))]
async fn expiration_timeline(
    _: Viewer,
    State(s): State<AppState>,
    Query(q): Query<DaysQuery>,
) -> ApiResult<Reply<ExpirationTimeline>> {
    let days = days(&q)?;
    let now = s.clock.now();
    let counts = s.store.expiration_timeline(now, days).await?;
    let buckets = counts.into_iter().zip(0..).map(|(count, i)| DateCount { date: day(now, i), count }).collect();
    Ok(Reply(ExpirationTimeline { buckets }))
}

/// Jobs completed and failed per day (by the day they finished), ending today.
#[utoipa::path(get, path = "/api/v1/stats/job-trends", tag = "Stats", params(DaysQuery), responses(
    (status = 200, body = JobTrends), (status = 400, body = ErrorBody)))]
async fn job_trends(_: Viewer, State(s): State<AppState>, Query(q): Query<DaysQuery>) -> ApiResult<Reply<JobTrends>> {
    let days = days(&q)?;
    let now = s.clock.now();
    let rows = s.store.job_trends(now, days).await?;
    let first = 1 - i64::from(days);
    let trends = rows
        .into_iter()
        .zip(first..)
        .map(|((completed, failed), i)| {
            let finished = completed + failed;
            let success_rate = if finished == 0 { 0.0 } else { completed as f64 * 100.0 / finished as f64 };
            JobTrendPoint { date: day(now, i), completed, failed, success_rate }
        })
        .collect();
    Ok(Reply(JobTrends { trends }))
}

/// Certificate versions issued per day, ending today.
#[utoipa::path(get, path = "/api/v1/stats/issuance-rate", tag = "Stats", params(DaysQuery), responses(
    (status = 200, body = IssuanceRate), (status = 400, body = ErrorBody)))]
async fn issuance_rate(
    _: Viewer,
    State(s): State<AppState>,
    Query(q): Query<DaysQuery>,
) -> ApiResult<Reply<IssuanceRate>> {
    let days = days(&q)?;
    let now = s.clock.now();
    let counts = s.store.issuance_rate(now, days).await?;
    let first = 1 - i64::from(days);
    let rate = counts.into_iter().zip(first..).map(|(count, i)| DateCount { date: day(now, i), count }).collect();
    Ok(Reply(IssuanceRate { rate }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_validated_and_named() {
        let q = |v: Option<&str>| DaysQuery { days: v.map(str::to_owned) };
        assert_eq!(days(&q(None)).unwrap(), 30);
        assert_eq!(days(&q(Some(""))).unwrap(), 30);
        assert_eq!(days(&q(Some("365"))).unwrap(), 365);
        for bad in ["0", "366", "-1", "x", "1.5"] {
            assert!(days(&q(Some(bad))).unwrap_err().to_string().starts_with("days:"), "{bad}");
        }
        assert_eq!(day(time::macros::datetime!(2026-03-01 23:59:59 UTC), -1), "2026-02-28");
    }
}
