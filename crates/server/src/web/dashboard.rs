//! The home page: headline counts, charts, what expires soon, recent jobs, and the first-run
//! guide while the inventory is empty.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use time::format_description::well_known::Rfc3339;

use certctl_api::{
    CertificatesByStatus, CursorPage, DashboardSummary, ExpirationTimeline, IssuanceRate, Job, JobTrends,
    ManagedCertificate, Page,
};

use super::Web;
use super::charts::{self, Bar};
use super::page::{Chrome, WebError, respond};
use super::session::Session;

/// One step of the first-run guide.
pub struct Step {
    pub title: &'static str,
    pub done: bool,
    pub href: &'static str,
    pub hint: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    summary: DashboardSummary,
    /// Shown instead of the charts while there is no certificate.
    guide: Option<Vec<Step>>,
    status_chart: String,
    timeline_chart: String,
    jobs_chart: String,
    issuance_chart: String,
    expiring: Vec<ManagedCertificate>,
    jobs: Vec<Job>,
}

/// `2026-03-01` → `03-01`: short axis labels.
fn short_date(date: &str) -> String {
    date.get(5..).unwrap_or(date).to_owned()
}

pub async fn show(State(web): State<Web>, session: Session) -> Result<Response, WebError> {
    let summary: DashboardSummary = web.get(&session, "/api/v1/stats/summary").await?;
    let guide = if summary.total_certificates == 0 { Some(first_run(&web, &session).await?) } else { None };
    let by_status: CertificatesByStatus = web.get(&session, "/api/v1/stats/certificates-by-status").await?;
    let timeline: ExpirationTimeline = web.get(&session, "/api/v1/stats/expiration-timeline?days=90").await?;
    let trends: JobTrends = web.get(&session, "/api/v1/stats/job-trends?days=30").await?;
    let issuance: IssuanceRate = web.get(&session, "/api/v1/stats/issuance-rate?days=30").await?;
    let soon = (web.app.clock.now() + time::Duration::days(30)).format(&Rfc3339).unwrap_or_default();
    let expiring: CursorPage<ManagedCertificate> = web
        .get(&session, &format!("/api/v1/certificates?page_size=10&sort=expiresAt&expires_before={}", urlencode(&soon)))
        .await?;
    let jobs: Page<Job> = web.get(&session, "/api/v1/jobs?per_page=10").await?;

    let status_bars: Vec<Bar> =
        by_status.status_counts.iter().map(|s| Bar { label: s.status.clone(), value: s.count }).collect();
    let timeline_bars: Vec<Bar> =
        timeline.buckets.iter().map(|b| Bar { label: short_date(&b.date), value: b.count }).collect();
    let labels: Vec<String> = trends.trends.iter().map(|t| short_date(&t.date)).collect();
    let completed: Vec<i64> = trends.trends.iter().map(|t| t.completed).collect();
    let failed: Vec<i64> = trends.trends.iter().map(|t| t.failed).collect();
    let issuance_bars: Vec<Bar> =
        issuance.rate.iter().map(|d| Bar { label: short_date(&d.date), value: d.count }).collect();
    let page = DashboardPage {
        chrome: Chrome::new(&session, "dashboard"),
        summary,
        guide,
        status_chart: charts::bars("Certificates by status", &status_bars, "status"),
        timeline_chart: charts::bars("Certificates expiring per day, next 90 days", &timeline_bars, "timeline"),
        jobs_chart: charts::stacked("Jobs completed and failed per day, last 30 days", &labels, &completed, &failed),
        issuance_chart: charts::bars("Certificates issued per day, last 30 days", &issuance_bars, "issuance"),
        expiring: expiring.data,
        jobs: jobs.data,
    };
    respond(&page)
}

/// The first-run guide: each step is done once the inventory has what it creates.
async fn first_run(web: &Web, session: &Session) -> Result<Vec<Step>, WebError> {
    let total =
        |path: &'static str| async move { web.get::<Page<serde_json::Value>>(session, path).await.map(|p| p.total) };
    let issuers = total("/api/v1/issuers?per_page=1").await?;
    let teams = total("/api/v1/teams?per_page=1").await?;
    let owners = total("/api/v1/owners?per_page=1").await?;
    Ok(vec![
        Step {
            title: "Create the local CA issuer",
            done: issuers > 0,
            href: "/issuers",
            hint: "A GenericCA issuer is certctl's built-in certificate authority.",
        },
        Step {
            title: "Create a team and an owner",
            done: teams > 0 && owners > 0,
            href: "/teams",
            hint: "Every certificate belongs to a team and has an owner who is told before it expires.",
        },
        Step {
            title: "Create your first certificate",
            done: false,
            href: "/certificates/new",
            hint: "Name it, pick the issuer, owner and team.",
        },
        Step {
            title: "Issue it",
            done: false,
            href: "/certificates",
            hint: "Open the certificate and press Renew now; an agent or the server makes the key.",
        },
    ])
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(urlencode("2026-03-01T10:00:00+00:00"), "2026-03-01T10%3A00%3A00%2B00%3A00");
        assert_eq!(urlencode("a b&c"), "a%20b%26c");
    }

    #[test]
    fn axis_dates_drop_the_year() {
        assert_eq!(short_date("2026-03-01"), "03-01");
        assert_eq!(short_date("x"), "x");
    }
}
