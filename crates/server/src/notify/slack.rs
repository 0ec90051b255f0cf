//! Slack incoming webhook: `{"text": "*subject*\nmessage"}`.

use serde_json::json;

use super::{Http, Message, Notifier};

pub struct Slack {
    pub url: reqwest::Url,
}

#[async_trait::async_trait]
impl Notifier for Slack {
    async fn send(&self, http: &Http, m: &Message) -> Result<(), String> {
        let n = &m.notification;
        let body = json!({ "text": format!("*{}*\n{}", n.subject, n.message), "username": "certctl" });
        http.post(&self.url, serde_json::to_vec(&body).map_err(|e| e.to_string())?, &[]).await
    }
}
