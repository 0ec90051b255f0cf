//! The digest page: the preview of the certificate digest as the recipients will read it, and
//! "Send digest now" for operators.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use certctl_api::{DigestPreview, DigestSent};

use super::Web;
use super::api_call::ApiFailure;
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond_with};
use super::session::Session;

#[derive(Debug, Default, Deserialize)]
pub struct DigestQuery {
    #[serde(default)]
    days: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "digest.html")]
struct DigestPage {
    chrome: Chrome,
    days: String,
    /// The plain-text rendering: the page shows it as text, so no mail markup reaches the page.
    preview: DigestPreview,
    notice: Option<String>,
    error: Option<String>,
}

/// The window as the API's query suffix; the API validates it.
fn days_query(days: &str) -> String {
    if days.is_empty() { String::new() } else { format!("days={}", urlencode(days)) }
}

async fn render(
    web: &Web,
    session: &Session,
    days: String,
    notice: Option<String>,
    failure: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let preview: DigestPreview =
        web.get(session, &format!("/api/v1/digest/preview?format=json&{}", days_query(&days))).await?;
    let status = failure.as_ref().map(|f| f.status);
    let page =
        DigestPage { chrome: Chrome::new(session, "digest"), days, preview, notice, error: failure.map(|f| f.message) };
    respond_with(&page, status)
}

pub async fn show(
    State(web): State<Web>,
    session: Session,
    Query(q): Query<DigestQuery>,
) -> Result<Response, WebError> {
    let days = q.days.unwrap_or_default().trim().to_owned();
    render(&web, &session, days, q.notice, None).await
}

/// Sends the digest through the API; a refusal (no email channel) is shown on the page.
pub async fn send(State(web): State<Web>, session: Session, fields: Fields) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let days = fields.value("days").unwrap_or_default();
    let uri = format!("/api/v1/digest/send?{}", days_query(&days));
    match web.send(&session, Method::POST, &uri, &json!({})).await? {
        Ok(sent) => {
            let sent: DigestSent = serde_json::from_value(sent).map_err(|e| WebError::Render(e.to_string()))?;
            let notice = format!("Digest queued for {} recipient(s): {}.", sent.enqueued, sent.recipients.join(", "));
            let back = format!("/digest?{}&notice={}", days_query(&days), urlencode(&notice));
            Ok(Redirect::to(&back).into_response())
        }
        Err(failure) => render(&web, &session, days, None, Some(failure)).await,
    }
}
