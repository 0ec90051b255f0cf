//! The observability page: the JSON metrics snapshot and the Prometheus text a scraper reads.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use super::Web;
use super::page::{Chrome, WebError, respond};
use super::session::Session;

#[derive(Template)]
#[template(path = "observability.html")]
struct ObservabilityPage {
    chrome: Chrome,
    /// (group, name, value) of every figure of `GET /api/v1/metrics`.
    figures: Vec<(String, String, String)>,
    prometheus: String,
}

pub async fn show(State(web): State<Web>, session: Session) -> Result<Response, WebError> {
    let metrics: Value = web.get(&session, "/api/v1/metrics").await?;
    let mut figures = Vec::new();
    if let Value::Object(groups) = &metrics {
        for (group, values) in groups {
            if let Value::Object(values) = values {
                for (name, value) in values {
                    let shown = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
                    figures.push((group.clone(), name.clone(), shown));
                }
            }
        }
    }
    let text = web.get_raw(&session, "/api/v1/metrics/prometheus").await?;
    let page = ObservabilityPage {
        chrome: Chrome::new(&session, "observability"),
        figures,
        prometheus: String::from_utf8_lossy(&text).into_owned(),
    };
    respond(&page)
}
