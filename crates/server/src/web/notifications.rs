//! The notifications page: the "All" and "Dead letter" tabs, filters, and Requeue and Mark
//! read per row.
//!
//! Each tab is its own server-rendered page (`?status=dead` for the dead-letter queue), so the
//! rows shown always belong to the selected tab: there is no client-side state to go stale.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use certctl_api::{CursorPage, Notification, NotificationStatus};

use super::Web;
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond};
use super::session::Session;

/// Characters of `last_error` shown in the row; the rest is in the tooltip.
const ERROR_PREVIEW: usize = 60;
const PAGE_SIZE: u32 = 50;
const TYPES: &[&str] = &[
    "ExpirationWarning",
    "RenewalSuccess",
    "RenewalFailure",
    "DeploymentSuccess",
    "DeploymentFailure",
    "PolicyViolation",
    "Revocation",
    "Digest",
    "Test",
];

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// `dead` selects the dead-letter tab; anything else is "All".
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "type")]
    notification_type: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

impl ListQuery {
    fn dead(&self) -> bool {
        self.status.as_deref() == Some("dead")
    }

    /// Tab and filters as a query string (no cursor).
    fn filters(&self) -> String {
        let mut q = String::new();
        if self.dead() {
            q.push_str("&status=dead");
        }
        for (k, v) in [("type", &self.notification_type), ("channel", &self.channel)] {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                q.push_str(&format!("&{k}={}", urlencode(v)));
            }
        }
        q
    }

    fn type_is(&self, t: &str) -> bool {
        self.notification_type.as_deref() == Some(t)
    }

    fn channel_text(&self) -> &str {
        self.channel.as_deref().unwrap_or_default()
    }
}

/// One row as the page shows it.
pub struct Row {
    pub n: Notification,
    pub dead: bool,
    /// `Retry {n}/{max}` for dead rows.
    pub retries: String,
    pub error_preview: String,
    pub error_full: String,
    /// Requeue is offered for dead and failed rows, which the API accepts.
    pub requeueable: bool,
    /// Mark read is offered for sent and dead rows, which the API accepts.
    pub readable: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct ListPage {
    chrome: Chrome,
    query: ListQuery,
    rows: Vec<Row>,
    next: Option<String>,
    types: &'static [&'static str],
    notice: Option<String>,
    /// The tab's own URL, where a requeue returns.
    back: String,
}

/// The first `max` characters of `text`, with an ellipsis when cut.
pub fn preview(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() { format!("{head}…") } else { head }
}

pub async fn list(
    State(web): State<Web>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let mut uri = format!("/api/v1/notifications?page_size={PAGE_SIZE}{}", query.filters());
    if let Some(cursor) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
        uri.push_str(&format!("&cursor={}", urlencode(cursor)));
    }
    let page: CursorPage<Notification> = web.get(&session, &uri).await?;
    let max = web.app.config.notification_max_attempts;
    let rows = page
        .data
        .into_iter()
        .map(|n| {
            let dead = n.status == NotificationStatus::Dead;
            let full = n.last_error.clone().unwrap_or_default();
            Row {
                dead,
                retries: format!("Retry {}/{}", n.retry_count, max),
                error_preview: preview(&full, ERROR_PREVIEW),
                error_full: full,
                requeueable: matches!(n.status, NotificationStatus::Dead | NotificationStatus::Failed),
                readable: matches!(n.status, NotificationStatus::Sent | NotificationStatus::Dead),
                n,
            }
        })
        .collect();
    let next = page.next_cursor.map(|c| format!("/notifications?cursor={}{}", urlencode(&c), query.filters()));
    let back = format!("/notifications?{}", query.filters().trim_start_matches('&'));
    let page = ListPage {
        chrome: Chrome::new(&session, "notifications"),
        notice: query.notice.clone(),
        rows,
        next,
        types: TYPES,
        back,
        query,
    };
    respond(&page)
}

/// Requeues one notification through the API, then shows the tab it was requeued from.
pub async fn requeue(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    row_action(&web, &session, &id, "requeue", &fields, &format!("Requeued {id}.")).await
}

/// Marks one notification read through the API, then shows the tab it was marked on.
pub async fn mark_read(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    row_action(&web, &session, &id, "read", &fields, &format!("Marked {id} read.")).await
}

async fn row_action(
    web: &Web,
    session: &Session,
    id: &str,
    verb: &str,
    fields: &Fields,
    notice: &str,
) -> Result<Response, WebError> {
    fields.check_csrf(session)?;
    web.send(session, Method::POST, &format!("/api/v1/notifications/{}/{verb}", urlencode(id)), &json!({})).await??;
    let back = fields.get("back").filter(|b| b.starts_with("/notifications")).unwrap_or("/notifications");
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(Redirect::to(&format!("{back}{sep}notice={}", urlencode(notice))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_cut_long_text_on_character_boundaries() {
        assert_eq!(preview("short", 10), "short");
        assert_eq!(preview("ééééé", 3), "ééé…");
        assert_eq!(preview("", 3), "");
    }
}
