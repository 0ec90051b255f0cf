//! Generic webhook: the notification as JSON, signed with HMAC-SHA256 when a secret is set.

use aws_lc_rs::hmac;
use serde_json::json;

use super::{Http, Message, Notifier};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Certctl-Signature";

pub struct Webhook {
    pub url: reqwest::Url,
    pub secret: Option<String>,
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

#[async_trait::async_trait]
impl Notifier for Webhook {
    async fn send(&self, http: &Http, m: &Message) -> Result<(), String> {
        let n = &m.notification;
        let body = json!({
            "id": n.id,
            "type": n.notification_type,
            "severity": n.severity,
            "subject": n.subject,
            "message": n.message,
            "recipient": n.recipient,
            "certificate_id": n.certificate_id,
            "created_at": n.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "details": m.payload,
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let mut headers = Vec::new();
        if let Some(secret) = &self.secret {
            headers.push((SIGNATURE_HEADER, signature(secret, &bytes)));
        }
        http.post(&self.url, bytes, &headers).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
