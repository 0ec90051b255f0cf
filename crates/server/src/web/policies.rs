//! A renewal policy's alert matrix: which days before expiry alert, at which severity, and
//! which channels each severity reaches. The matrix is two maps in the API (threshold →
//! severity, severity → channels), so the editor is a row per threshold and a row per
//! severity, saved together with one `PUT`.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use certctl_api::{Page, RenewalPolicy};

use super::Web;
use super::api_call::ApiFailure;
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond_with};
use super::session::Session;
use crate::notify::worker::default_tier;

/// Severities from the mildest, as the API spells them.
const SEVERITIES: &[&str] = &["informational", "warning", "critical"];
/// Blank threshold rows the form offers for adding thresholds.
const BLANK_ROWS: usize = 2;

/// One threshold row as the form shows it.
pub struct Threshold {
    pub days: String,
    /// The explicit severity; empty means the default for its distance to expiry.
    pub severity: String,
    /// What the default severity is, shown on the "default" option.
    pub default: String,
}

#[derive(Template)]
#[template(path = "policy_alerts.html")]
struct EditorPage {
    chrome: Chrome,
    policy: RenewalPolicy,
    rows: Vec<Threshold>,
    severities: &'static [&'static str],
    /// Every channel an alert may route to: environment-declared, managed through the API, and
    /// any already routed.
    channels: Vec<String>,
    /// Severity → the channels ticked for it.
    routes: BTreeMap<String, BTreeSet<String>>,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

impl EditorPage {
    fn routed(&self, severity: &str, channel: &str) -> bool {
        self.routes.get(severity).is_some_and(|c| c.contains(channel))
    }
}

fn default_label(days: &str) -> String {
    days.trim().parse::<i64>().map(|d| default_tier(d).to_string()).unwrap_or_else(|_| "by days left".to_owned())
}

async fn channel_names(
    web: &Web,
    session: &Session,
    routed: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<String>, WebError> {
    let managed: Page<Value> = web.get(session, "/api/v1/notification-channels?per_page=500").await?;
    let mut names: BTreeSet<String> = web.app.notify.env_channel_names().into_iter().collect();
    names.extend(managed.data.iter().filter_map(|c| c["name"].as_str().map(str::to_owned)));
    names.extend(routed.values().flatten().cloned());
    Ok(names.into_iter().collect())
}

async fn editor(
    web: &Web,
    session: &Session,
    policy: RenewalPolicy,
    mut rows: Vec<Threshold>,
    routes: BTreeMap<String, BTreeSet<String>>,
    error: Option<ApiFailure>,
    notice: Option<String>,
) -> Result<Response, WebError> {
    rows.extend((0..BLANK_ROWS).map(|_| Threshold {
        days: String::new(),
        severity: String::new(),
        default: default_label(""),
    }));
    let status = error.as_ref().map(|e| e.status);
    let page = EditorPage {
        chrome: Chrome::new(session, "renewal-policies"),
        channels: channel_names(web, session, &routes).await?,
        policy,
        rows,
        severities: SEVERITIES,
        routes,
        error: error.map(|e| e.message),
        notice,
    };
    respond_with(&page, status)
}

async fn policy(web: &Web, session: &Session, id: &str) -> Result<RenewalPolicy, WebError> {
    web.get(session, &format!("/api/v1/renewal-policies/{}", urlencode(id))).await
}

/// The editor, filled with the policy as the API has it.
pub async fn edit(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let policy = policy(&web, &session, &id).await?;
    let rows = policy
        .alert_thresholds_days
        .iter()
        .map(|d| Threshold {
            days: d.to_string(),
            severity: policy.alert_severity_map.get(&d.to_string()).map(|t| t.to_string()).unwrap_or_default(),
            default: default_tier(*d).to_string(),
        })
        .collect();
    let routes =
        policy.alert_channels.iter().map(|(tier, names)| (tier.to_string(), names.iter().cloned().collect())).collect();
    editor(&web, &session, policy, rows, routes, None, q.notice).await
}

/// The posted matrix: its rows (blank or removed ones dropped) and its routes.
fn read(fields: &Fields) -> (Vec<Threshold>, BTreeMap<String, BTreeSet<String>>) {
    let count: usize = fields.value("rows").and_then(|n| n.parse().ok()).unwrap_or(0).min(400);
    let rows = (0..count)
        .filter(|i| fields.get(&format!("remove_{i}")) != Some("on"))
        .filter_map(|i| {
            let days = fields.value(&format!("days_{i}"))?;
            Some(Threshold {
                severity: fields.value(&format!("severity_{i}")).unwrap_or_default(),
                default: default_label(&days),
                days,
            })
        })
        .collect();
    let routes = SEVERITIES
        .iter()
        .map(|s| ((*s).to_owned(), fields.all(&format!("channels_{s}")).into_iter().collect()))
        .collect();
    (rows, routes)
}

/// The matrix as the `PUT` body.
fn body(rows: &[Threshold], routes: &BTreeMap<String, BTreeSet<String>>) -> Result<Value, ApiFailure> {
    let mut thresholds = Vec::with_capacity(rows.len());
    let mut severity = BTreeMap::new();
    for row in rows {
        let days: i64 = row.days.trim().parse().map_err(|_| ApiFailure {
            status: StatusCode::BAD_REQUEST,
            message: format!("alert_thresholds_days: '{}' is not a whole number of days", row.days),
        })?;
        thresholds.push(days);
        if !row.severity.is_empty() {
            severity.insert(days.to_string(), row.severity.clone());
        }
    }
    let channels: BTreeMap<&String, Vec<&String>> =
        routes.iter().filter(|(_, c)| !c.is_empty()).map(|(s, c)| (s, c.iter().collect())).collect();
    Ok(json!({
        "alert_thresholds_days": thresholds,
        "alert_severity_map": severity,
        "alert_channels": channels,
    }))
}

/// Saves the matrix; a refusal re-renders it as posted with the API's message.
pub async fn save(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let (rows, routes) = read(&fields);
    let uri = format!("/api/v1/renewal-policies/{}", urlencode(&id));
    let outcome = match body(&rows, &routes) {
        Ok(body) => web.send(&session, Method::PUT, &uri, &body).await?,
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(_) => {
            Ok(Redirect::to(&format!("/renewal-policies/{}/alerts?notice=Saved.", urlencode(&id))).into_response())
        }
        Err(failure) => {
            let policy = policy(&web, &session, &id).await?;
            editor(&web, &session, policy, rows, routes, Some(failure), None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use certctl_api::SeverityTier;

    use super::*;

    #[test]
    fn severities_are_the_api_tiers() {
        for s in SEVERITIES {
            assert!(s.parse::<SeverityTier>().is_ok(), "{s}");
        }
    }

    #[test]
    fn blank_and_removed_rows_are_dropped_and_default_severities_stay_implicit() {
        let f = Fields::from_pairs(vec![
            ("rows", "4".into()),
            ("days_0", "30".into()),
            ("severity_0", "".into()),
            ("days_1", "7".into()),
            ("severity_1", "critical".into()),
            ("days_2", "1".into()),
            ("remove_2", "on".into()),
            ("days_3", " ".into()),
            ("channels_critical", "ops".into()),
        ]);
        let (rows, routes) = read(&f);
        let body = body(&rows, &routes).unwrap();
        assert_eq!(body["alert_thresholds_days"], json!([30, 7]));
        assert_eq!(body["alert_severity_map"], json!({"7": "critical"}));
        assert_eq!(body["alert_channels"], json!({"critical": ["ops"]}));
    }
}
