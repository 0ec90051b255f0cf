//! The certificate digest: a preview in HTML, text or JSON, and a send that enqueues one
//! `Digest` notification per email channel.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{DigestPreview, DigestPreviewParams, DigestSendParams, DigestSent, ErrorBody};

use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::notify::digest::{self, DEFAULT_WINDOW_DAYS};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview)).routes(routes!(send))
}

/// `days`: absent or empty means 30; otherwise a whole number in 1..=365.
fn window(days: Option<&str>) -> ApiResult<i64> {
    match days.map(str::trim) {
        None | Some("") => Ok(DEFAULT_WINDOW_DAYS),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=365).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!("days: '{v}' is not a whole number of days in 1..=365"))),
        },
    }
}

fn not_configured() -> ApiError {
    ApiError::NotConfigured(
        "no email channel is configured: set CERTCTL_SMTP_HOST (and CERTCTL_SMTP_FROM, CERTCTL_SMTP_TO) or create \
         an Email notification channel"
            .into(),
    )
}

/// Preview the digest: certificates expiring within `days` (default 30), counted by status.
#[utoipa::path(get, path = "/api/v1/digest/preview", tag = "Notifications", params(DigestPreviewParams), responses(
    (status = 200, description = "The digest as HTML (`format=html`, default, `text/html`), plain text \
        (`format=text`, `text/plain`) or JSON (`format=json`, this body)", body = DigestPreview),
    (status = 400, body = ErrorBody)))]
async fn preview(_: Viewer, State(s): State<AppState>, Query(q): Query<DigestPreviewParams>) -> ApiResult<Response> {
    let days = window(q.days.as_deref())?;
    let format = q.format.as_deref().map(str::trim).unwrap_or("html");
    if !matches!(format, "html" | "text" | "json") {
        return Err(ApiError::BadRequest(format!("format: '{format}' is not one of html, text, json")));
    }
    let summary = s.store.digest(s.clock.now(), days).await?;
    let rendered = digest::render(&summary);
    Ok(match format {
        "html" => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], rendered.html).into_response(),
        "text" => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], rendered.text).into_response(),
        _ => {
            let targets = digest::targets(&s).await?;
            let recipients = digest::sent(&targets, 0).recipients;
            Reply(DigestPreview {
                subject: rendered.subject,
                recipients,
                text: rendered.text,
                html: rendered.html,
                summary,
            })
            .into_response()
        }
    })
}

/// Send the digest now: one `Digest` notification per email channel, delivered through the
/// outbox with its retries. 503 `not_configured` when there is no email channel.
#[utoipa::path(post, path = "/api/v1/digest/send", tag = "Notifications", params(DigestSendParams), responses(
    (status = 202, body = DigestSent), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn send(
    _: Operator,
    State(s): State<AppState>,
    Query(q): Query<DigestSendParams>,
) -> ApiResult<(StatusCode, Reply<DigestSent>)> {
    let days = window(q.days.as_deref())?;
    let targets = digest::targets(&s).await?;
    if targets.is_empty() {
        return Err(not_configured());
    }
    let now = s.clock.now();
    let summary = s.store.digest(now, days).await?;
    let rows = digest::notifications(&summary, &targets, None);
    s.store.enqueue_notifications(&rows, now).await?;
    s.notify.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Reply(digest::sent(&targets, rows.len()))))
}
