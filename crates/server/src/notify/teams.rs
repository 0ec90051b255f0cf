//! Microsoft Teams through a Workflows webhook: a message carrying one Adaptive Card.

use certctl_api::SeverityTier;
use serde_json::json;

use super::{Http, Message, Notifier};

pub struct Teams {
    pub url: reqwest::Url,
}

#[async_trait::async_trait]
impl Notifier for Teams {
    async fn send(&self, http: &Http, m: &Message) -> Result<(), String> {
        let n = &m.notification;
        let color = match n.severity {
            SeverityTier::Critical => "Attention",
            SeverityTier::Warning => "Warning",
            SeverityTier::Informational => "Default",
        };
        let mut facts = vec![
            json!({ "title": "Type", "value": n.notification_type }),
            json!({ "title": "Severity", "value": n.severity }),
        ];
        if let Some(cert) = &n.certificate_id {
            facts.push(json!({ "title": "Certificate", "value": cert }));
        }
        let body = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "size": "Medium", "weight": "Bolder", "color": color, "text": n.subject, "wrap": true },
                        { "type": "TextBlock", "text": n.message, "wrap": true },
                        { "type": "FactSet", "facts": facts }
                    ]
                }
            }]
        });
        http.post(&self.url, serde_json::to_vec(&body).map_err(|e| e.to_string())?, &[]).await
    }
}
