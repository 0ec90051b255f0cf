//! Email over SMTP: STARTTLS (587), implicit TLS (465) or, for local relays and tests, plain
//! SMTP (25). Each notification is a multipart message with a text and an HTML part.
//!
//! The SMTP host is resolved here and every address passes the SSRF guard; the connection dials
//! those checked addresses while TLS verifies the certificate against the host name, so a DNS
//! answer that changes between the check and the dial cannot steer it elsewhere.

use std::fmt::Write as _;
use std::net::SocketAddr;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message as Mail};
use serde_json::{Map, Value};

use certctl_api::NotificationType;

use super::{Http, Message, Notifier, SEND_TIMEOUT, guard, optional_str, required_str};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with `STARTTLS`; refused when the server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS at all: local relays and tests only; credentials are never sent this way.
    None,
}

impl TlsMode {
    fn parse(v: &str) -> Result<TlsMode, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "starttls" => Ok(TlsMode::StartTls),
            "tls" | "implicit" => Ok(TlsMode::Implicit),
            "none" => Ok(TlsMode::None),
            other => Err(format!("config.tls: '{other}' is not one of starttls, tls (implicit), none")),
        }
    }

    fn default_port(self) -> u16 {
        match self {
            TlsMode::StartTls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        }
    }
}

pub struct Email {
    host: String,
    port: u16,
    mode: TlsMode,
    credentials: Option<Credentials>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Verification settings for `host`, built once (roots are loaded from the system and the
    /// optional `ca_path`).
    tls: Option<TlsParameters>,
}

fn port(v: Option<&Value>) -> Result<Option<u16>, String> {
    let bad = || "config.port: must be a port number 1-65535".to_owned();
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad())?,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(Some(p)),
        _ => Err(bad()),
    }
}

fn mailbox(field: &str, v: &str) -> Result<Mailbox, String> {
    v.trim().parse::<Mailbox>().map_err(|e| format!("{field}: '{}' is not an email address ({e})", v.trim()))
}

/// `to`: a list of addresses, or one string of comma-separated addresses (as the environment
/// gives it).
fn recipients(v: Option<&Value>) -> Result<Vec<Mailbox>, String> {
    let items: Vec<String> = match v {
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| "config.to: must list strings".to_owned()))
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err("config.to: must be a list of email addresses".into()),
    };
    let to: Vec<Mailbox> =
        items.iter().filter(|s| !s.trim().is_empty()).map(|s| mailbox("config.to", s)).collect::<Result<_, _>>()?;
    if to.is_empty() {
        return Err("config.to: is required (at least one email address)".into());
    }
    Ok(to)
}

/// Builds the email notifier from its settings; errors name the setting as `config.<key>`.
pub fn build(obj: &Map<String, Value>) -> Result<Email, String> {
    let host = required_str("config.host", obj.get("host"))?;
    if host.contains(['/', ':', ' ']) && host.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("config.host: '{host}' is not a host name or IP address"));
    }
    let mode = match optional_str("config.tls", obj.get("tls"))? {
        Some(v) => TlsMode::parse(&v)?,
        None => TlsMode::StartTls,
    };
    let port = port(obj.get("port"))?.unwrap_or_else(|| mode.default_port());
    let username = optional_str("config.username", obj.get("username"))?;
    let password = optional_str("config.password", obj.get("password"))?;
    let credentials = match (username, password) {
        (Some(u), Some(p)) => Some(Credentials::new(u, p)),
        (None, None) => None,
        (Some(_), None) => return Err("config.password: is required when config.username is set".into()),
        (None, Some(_)) => return Err("config.username: is required when config.password is set".into()),
    };
    if credentials.is_some() && mode == TlsMode::None {
        return Err("config.password: credentials are only sent over TLS; set config.tls to starttls or tls".into());
    }
    let from = mailbox("config.from", &required_str("config.from", obj.get("from"))?)?;
    let to = recipients(obj.get("to"))?;
    let ca_path = optional_str("config.ca_path", obj.get("ca_path"))?;
    let tls = if mode == TlsMode::None {
        None
    } else {
        let mut b = TlsParameters::builder(host.clone()).certificate_store(CertificateStore::Default);
        if let Some(path) = &ca_path {
            let pem = std::fs::read(path).map_err(|e| format!("config.ca_path: cannot read {path}: {e}"))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("config.ca_path: {path} holds no PEM certificate ({e})"))?;
            b = b.add_root_certificate(cert);
        }
        Some(b.build_rustls().map_err(|e| format!("config.ca_path: {e}"))?)
    };
    Ok(Email { host, port, mode, credentials, from, to, tls })
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The subject line: the event and the certificate it is about.
fn subject(m: &Message) -> String {
    let n = &m.notification;
    if n.notification_type == NotificationType::Digest {
        return n.subject.clone();
    }
    let name = m.payload.get("certificate_name").and_then(Value::as_str);
    match name {
        Some(name) if !n.subject.contains(name) => format!("[certctl] {}: {name}: {}", n.notification_type, n.subject),
        _ => format!("[certctl] {}: {}", n.notification_type, n.subject),
    }
}

/// The text and HTML bodies. A digest carries its own rendering in the payload.
fn bodies(m: &Message) -> (String, String) {
    let n = &m.notification;
    if let (Some(text), Some(html)) =
        (m.payload.get("text").and_then(Value::as_str), m.payload.get("html").and_then(Value::as_str))
    {
        return (text.to_owned(), html.to_owned());
    }
    let mut text = format!("{}\n\n{}\n\nSeverity: {}\n", n.subject, n.message, n.severity);
    let mut rows = String::new();
    if let Some(details) = m.payload.as_object() {
        for (k, v) in details {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(text, "{k}: {v}");
            let _ = write!(rows, "<tr><th align=\"left\">{}</th><td>{}</td></tr>", escape_html(k), escape_html(&v));
        }
    }
    let html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><p>{}</p>\
         <p>Severity: <strong>{}</strong></p><table cellpadding=\"4\">{rows}</table>\
         <p style=\"color:#666\">Sent by certctl.</p></body></html>",
        escape_html(&n.subject),
        escape_html(&n.message),
        escape_html(n.severity.as_str()),
    );
    (text, html)
}

impl Email {
    /// Who receives `m`: the channel's list, or for a digest addressed to a list of its own
    /// (`CERTCTL_DIGEST_RECIPIENTS`), that list.
    fn recipients(&self, m: &Message) -> Vec<Mailbox> {
        let n = &m.notification;
        if n.notification_type == NotificationType::Digest && !n.recipient.trim().is_empty() {
            let listed: Vec<Mailbox> = n.recipient.split(',').filter_map(|s| s.trim().parse().ok()).collect();
            if !listed.is_empty() {
                return listed;
            }
        }
        self.to.clone()
    }

    fn compose(&self, m: &Message) -> Result<(Mail, lettre::address::Envelope), String> {
        let (text, html) = bodies(m);
        let mut b = Mail::builder().from(self.from.clone()).subject(subject(m));
        let to = self.recipients(m);
        for r in &to {
            b = b.to(r.clone());
        }
        let mail = b
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            )
            .map_err(|e| format!("cannot build the message: {e}"))?;
        let rcpt: Vec<Address> = to.into_iter().map(|m| m.email).collect();
        let envelope = lettre::address::Envelope::new(Some(self.from.email.clone()), rcpt)
            .map_err(|e| format!("cannot build the envelope: {e}"))?;
        Ok((mail, envelope))
    }

    /// The addresses of the SMTP host, each checked by the SSRF guard.
    async fn addresses(&self, allow_loopback: bool) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot resolve SMTP host {}: {e}", self.host))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("SMTP host {} resolves to no address", self.host));
        }
        if !allow_loopback {
            for a in &addrs {
                if let Some(why) = guard::refused(a.ip()) {
                    return Err(format!(
                        "refusing to connect to SMTP host {}: it resolves to {} ({why} address)",
                        self.host,
                        a.ip()
                    ));
                }
            }
        }
        Ok(addrs)
    }

    async fn deliver(&self, allow_loopback: bool, m: &Message) -> Result<(), String> {
        let (mail, envelope) = self.compose(m)?;
        let addrs = self.addresses(allow_loopback).await?;
        // EHLO with this machine's host name (an address literal when it has none): relays
        // that insist on a fully-qualified HELO name accept it.
        let hello = ClientId::default();
        let smtp = |e: lettre::transport::smtp::Error| format!("SMTP {}:{}: {e}", self.host, self.port);
        let implicit = if self.mode == TlsMode::Implicit { self.tls.clone() } else { None };
        let mut conn =
            AsyncSmtpConnection::connect_tokio1(addrs.as_slice(), Some(SEND_TIMEOUT), &hello, implicit, None)
                .await
                .map_err(smtp)?;
        if self.mode == TlsMode::StartTls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(format!("SMTP {}:{}: the server does not offer STARTTLS", self.host, self.port));
            }
            let params = self.tls.clone().ok_or("no TLS settings")?;
            conn.starttls(params, &hello).await.map_err(smtp)?;
        }
        if let Some(creds) = &self.credentials
            && let Err(e) = conn.auth(&[Mechanism::Plain, Mechanism::Login], creds).await
        {
            conn.abort().await;
            return Err(format!("SMTP {}:{}: authentication failed: {e}", self.host, self.port));
        }
        if let Err(e) = conn.send(&envelope, &mail.formatted()).await {
            conn.abort().await;
            return Err(smtp(e));
        }
        // The message is accepted; a failed QUIT does not make it undelivered.
        let _ = conn.quit().await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Notifier for Email {
    async fn send(&self, http: &Http, m: &Message) -> Result<(), String> {
        tokio::time::timeout(SEND_TIMEOUT, self.deliver(http.allow_loopback, m))
            .await
            .unwrap_or_else(|_| Err(format!("SMTP {}:{}: timed out", self.host, self.port)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(v: Value) -> Result<Email, String> {
        build(v.as_object().unwrap())
    }

    #[test]
    fn port_follows_the_tls_mode() {
        let base = json!({"host": "smtp.example.com", "from": "certctl@example.com", "to": ["ops@example.com"]});
        let mut v = base.clone();
        assert_eq!(settings(v.clone()).unwrap().port, 587);
        v["tls"] = json!("implicit");
        assert_eq!(settings(v.clone()).unwrap().port, 465);
        v["tls"] = json!("none");
        assert_eq!(settings(v.clone()).unwrap().port, 25);
        v["port"] = json!("2525");
        assert_eq!(settings(v).unwrap().port, 2525);
        let mut v = base;
        v["to"] = json!("a@example.com, b@example.com");
        assert_eq!(settings(v).unwrap().to.len(), 2);
    }

    #[test]
    fn bad_settings_name_the_field() {
        let ok = json!({"host": "smtp.example.com", "from": "certctl@example.com", "to": ["ops@example.com"]});
        for (key, value, field) in [
            ("tls", json!("ssl"), "config.tls"),
            ("port", json!(0), "config.port"),
            ("port", json!("x"), "config.port"),
            ("from", json!("nope"), "config.from"),
            ("to", json!([]), "config.to"),
            ("to", json!(["ok@example.com", "bad"]), "config.to"),
            ("ca_path", json!("/nonexistent/ca.pem"), "config.ca_path"),
            ("username", json!("u"), "config.password"),
        ] {
            let mut v = ok.clone();
            v[key] = value;
            let e = settings(v).err().unwrap_or_default();
            assert!(e.starts_with(field), "{key}: {e}");
        }
        let plain = json!({"host": "relay", "tls": "none", "username": "u", "password": "p",
            "from": "a@example.com", "to": "b@example.com"});
        assert!(settings(plain).err().unwrap().starts_with("config.password"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape_html("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
