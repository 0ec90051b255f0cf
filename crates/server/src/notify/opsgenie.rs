//! OpsGenie Alert API (US or EU host): one alert per certificate and event type (`alias`).

use certctl_api::SeverityTier;
use serde_json::json;

use super::{Http, Message, Notifier};

pub const US_URL: &str = "https://api.opsgenie.com/v2/alerts";
pub const EU_URL: &str = "https://api.eu.opsgenie.com/v2/alerts";

pub struct OpsGenie {
    pub api_key: String,
    pub url: reqwest::Url,
}

#[async_trait::async_trait]
impl Notifier for OpsGenie {
    async fn send(&self, http: &Http, m: &Message) -> Result<(), String> {
        let n = &m.notification;
        let priority = match n.severity {
            SeverityTier::Critical => "P1",
            SeverityTier::Warning => "P3",
            SeverityTier::Informational => "P5",
        };
        let cert = n.certificate_id.clone().unwrap_or_else(|| n.id.clone());
        let body = json!({
            // OpsGenie truncates messages at 130 characters.
            "message": n.subject.chars().take(130).collect::<String>(),
            "alias": format!("certctl:{cert}:{}", n.notification_type),
            "description": n.message,
            "priority": priority,
            "source": "certctl",
            "tags": ["certctl", n.notification_type.as_str(), n.severity.as_str()],
            "details": { "notification_id": n.id, "certificate_id": n.certificate_id },
        });
        let auth = format!("GenieKey {}", self.api_key);
        http.post(&self.url, serde_json::to_vec(&body).map_err(|e| e.to_string())?, &[("Authorization", auth)]).await
    }
}
