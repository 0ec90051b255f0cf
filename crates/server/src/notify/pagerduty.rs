//! PagerDuty Events API v2. One incident per certificate and event kind (the `dedup_key`), so a
//! repeated alert updates the open incident; a renewal resolves the certificate's expiry and
//! renewal-failure incidents.

use certctl_api::{NotificationType, SeverityTier};
use serde_json::json;

use super::{Http, Message, Notifier};

pub const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

pub struct PagerDuty {
    pub routing_key: String,
    pub url: reqwest::Url,
}

/// The incident key of a certificate's events of one kind.
pub fn dedup_key(certificate_id: &str, kind: &str) -> String {
    format!("certctl:{certificate_id}:{kind}")
}

/// Which incident an event type opens (`None`: it opens none).
fn incident_kind(t: NotificationType) -> &'static str {
    match t {
        NotificationType::ExpirationWarning => "expiry",
        NotificationType::RenewalFailure | NotificationType::RenewalSuccess => "renewal",
        NotificationType::DeploymentFailure | NotificationType::DeploymentSuccess => "deployment",
        NotificationType::Revocation => "revocation",
        NotificationType::PolicyViolation => "policy",
        NotificationType::Test => "test",
        NotificationType::Digest => "digest",
    }
}

#[async_trait::async_trait]
impl Notifier for PagerDuty {
    async fn send(&self, http: &Http, m: &Message) -> Result<(), String> {
        let n = &m.notification;
        let cert = n.certificate_id.clone().unwrap_or_else(|| n.id.clone());
        let resolving =
            matches!(n.notification_type, NotificationType::RenewalSuccess | NotificationType::DeploymentSuccess);
        if resolving {
            let kinds: &[&str] = if n.notification_type == NotificationType::RenewalSuccess {
                &["expiry", "renewal"]
            } else {
                &["deployment"]
            };
            for kind in kinds {
                let body = json!({
                    "routing_key": self.routing_key,
                    "event_action": "resolve",
                    "dedup_key": dedup_key(&cert, kind),
                });
                http.post(&self.url, serde_json::to_vec(&body).map_err(|e| e.to_string())?, &[]).await?;
            }
            return Ok(());
        }
        let severity = match n.severity {
            SeverityTier::Critical => "critical",
            SeverityTier::Warning => "warning",
            SeverityTier::Informational => "info",
        };
        let body = json!({
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key(&cert, incident_kind(n.notification_type)),
            "payload": {
                "summary": n.subject.chars().take(1024).collect::<String>(),
                "source": "certctl",
                "severity": severity,
                "component": n.certificate_id,
                "class": n.notification_type,
                "custom_details": { "message": n.message, "details": m.payload, "notification_id": n.id },
            },
        });
        http.post(&self.url, serde_json::to_vec(&body).map_err(|e| e.to_string())?, &[]).await
    }
}
