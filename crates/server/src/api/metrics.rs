//! Metrics: the JSON snapshot of `/api/v1/metrics` and the Prometheus exposition of
//! `/api/v1/metrics/prometheus` and `/metrics`.
//!
//! Any valid API key may read them (a viewer key is enough for a scraper), or no key at all
//! when `CERTCTL_METRICS_PUBLIC=true`.

use axum::Json as Reply;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{ErrorBody, MetricsCounters, MetricsGauges, MetricsResponse, MetricsUptime};

use crate::AppState;
use crate::error::ApiResult;
use crate::metrics::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics_json)).routes(routes!(prometheus)).routes(routes!(scrape))
}

/// Lets scrapes through without a key when metrics are public; otherwise any valid key.
pub async fn scrape_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.config.metrics_public {
        return next.run(req).await;
    }
    crate::auth::authenticate(State(state), req, next).await
}

/// Metrics snapshot: database gauges and counters, and uptime.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "Metrics", responses(
    (status = 200, body = MetricsResponse), (status = 401, body = ErrorBody)))]
async fn metrics_json(State(s): State<AppState>) -> ApiResult<Reply<MetricsResponse>> {
    let measured_at = s.clock.now();
    let snap = s.metrics.snapshot(&s.store, measured_at).await?;
    let c = &snap.counts;
    Ok(Reply(MetricsResponse {
        gauge: MetricsGauges {
            certificate_total: c.certificates,
            certificate_active: c.active(),
            certificate_expiring_soon: c.expiring,
            certificate_expired: c.expired,
            certificate_revoked: c.revoked,
            agent_total: c.agents,
            agent_online: c.agents_online,
            job_pending: c.jobs_open(),
        },
        counter: MetricsCounters {
            job_completed_total: c.jobs_in("Completed"),
            job_failed_total: c.jobs_in("Failed"),
            notifications_dead_total: c.notifications_in("dead"),
        },
        uptime: MetricsUptime {
            uptime_seconds: (measured_at - s.started_at).whole_seconds().max(0),
            server_started: s.started_at,
            measured_at,
        },
    }))
}

async fn exposition(s: &AppState, headers: &HeaderMap) -> ApiResult<Response> {
    s.metrics.snapshot(&s.store, s.clock.now()).await?;
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    Ok(if openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], s.metrics.encode_openmetrics()).into_response()
    } else {
        ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], s.metrics.encode_prometheus()).into_response()
    })
}

/// Prometheus exposition (text format 0.0.4; OpenMetrics when the `Accept` header asks for it).
#[utoipa::path(get, path = "/api/v1/metrics/prometheus", tag = "Metrics", responses(
    (status = 200, content_type = "text/plain", body = String, description = "Prometheus text format 0.0.4"),
    (status = 401, body = ErrorBody)))]
async fn prometheus(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    exposition(&s, &headers).await
}

/// The same exposition at the path scrapers look for by default.
#[utoipa::path(get, path = "/metrics", tag = "Metrics", responses(
    (status = 200, content_type = "text/plain", body = String, description = "Prometheus text format 0.0.4"),
    (status = 401, body = ErrorBody)))]
async fn scrape(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    exposition(&s, &headers).await
}
