//! Notification delivery: one [`Notifier`] trait, one file per channel, the worker that drains
//! the outbox and the retry sweep (PRODUCT.md §4), and the expiry-alert scan.
//!
//! Channels come from two places: named channels managed through the API (settings sealed in
//! the database) and channels declared by environment variables, named after their type
//! (`Webhook`, `Slack`, `Teams`, `PagerDuty`, `OpsGenie`, `Email`). A notification names its
//! channel; a name that resolves to nothing sends the row to `dead`, never to `sent`.

pub mod digest;
pub mod email;
pub(crate) mod guard;
mod opsgenie;
mod pagerduty;
mod slack;
mod teams;
mod webhook;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};

use certctl_api::{ChannelType, Notification};
use certctl_store::{ChannelRecord, RetryPolicy};

use crate::config::Config;
use crate::secrets::SecretBox;

pub use guard::refused as refused_address;

/// Every outbound request gives up after this long; a hang counts as a failed attempt.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What a channel delivers: the stored notification and its structured payload.
#[derive(Debug, Clone)]
pub struct Message {
    pub notification: Notification,
    pub payload: Value,
}

/// One delivery channel.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers `m`; `Err` carries the reason, stored as the row's `last_error`.
    async fn send(&self, http: &Http, m: &Message) -> Result<(), String>;
}

/// The outbound HTTP client with the SSRF guard.
pub struct Http {
    client: reqwest::Client,
    allow_loopback: bool,
}

impl Http {
    fn new(allow_loopback: bool) -> anyhow::Result<Http> {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            // A redirect could lead the request past the guard to an internal address.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(guard::GuardedResolver { allow_loopback }))
            .user_agent(concat!("certctl-notifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the notification HTTP client")?;
        Ok(Http { client, allow_loopback })
    }

    /// POSTs `body` as JSON with `headers`; any 2xx is a delivery.
    pub async fn post(&self, url: &reqwest::Url, body: Vec<u8>, headers: &[(&str, String)]) -> Result<(), String> {
        guard::check_literal(url, self.allow_loopback)?;
        let mut req = self.client.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.body(body).send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        Err(format!("HTTP {status} from {}: {snippet}", url.host_str().unwrap_or_default()))
    }
}

/// An error with its causes, without the URL (which may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() { "timed out".to_owned() } else { "request failed".to_owned() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Parses the URL of setting `field`: http(s) with a host.
fn parse_url(field: &str, v: Option<&Value>) -> Result<reqwest::Url, String> {
    let raw = v.and_then(Value::as_str).ok_or_else(|| format!("{field}: is required (an http(s) URL)"))?;
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{field}: not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field}: must be an http:// or https:// URL with a host"));
    }
    Ok(url)
}

fn required_str(field: &str, v: Option<&Value>) -> Result<String, String> {
    match v.and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("{field}: is required")),
    }
}

fn optional_str(field: &str, v: Option<&Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{field}: must be a string")),
    }
}

/// Builds the notifier of a channel from its full settings; errors name the setting as
/// `config.<key>`.
pub fn build_notifier(kind: ChannelType, config: &Value) -> Result<Arc<dyn Notifier>, String> {
    let obj = config.as_object().ok_or_else(|| "config: must be a JSON object".to_owned())?;
    let known: &[&str] = match kind {
        ChannelType::Webhook => &["url", "secret"],
        ChannelType::Slack | ChannelType::Teams => &["url"],
        ChannelType::PagerDuty => &["routing_key", "url"],
        ChannelType::OpsGenie => &["api_key", "region", "url"],
        ChannelType::Email => &["host", "port", "tls", "username", "password", "from", "to", "ca_path"],
    };
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("config.{k}: unknown setting for a {kind} channel (known: {})", known.join(", ")));
    }
    Ok(match kind {
        ChannelType::Webhook => Arc::new(webhook::Webhook {
            url: parse_url("config.url", obj.get("url"))?,
            secret: optional_str("config.secret", obj.get("secret"))?,
        }),
        ChannelType::Slack => Arc::new(slack::Slack { url: parse_url("config.url", obj.get("url"))? }),
        ChannelType::Teams => Arc::new(teams::Teams { url: parse_url("config.url", obj.get("url"))? }),
        ChannelType::PagerDuty => Arc::new(pagerduty::PagerDuty {
            routing_key: required_str("config.routing_key", obj.get("routing_key"))?,
            url: match obj.get("url") {
                None | Some(Value::Null) => reqwest::Url::parse(pagerduty::EVENTS_URL).map_err(|e| e.to_string())?,
                v => parse_url("config.url", v)?,
            },
        }),
        ChannelType::OpsGenie => {
            let region = optional_str("config.region", obj.get("region"))?.unwrap_or_else(|| "us".into());
            let default = match region.as_str() {
                "us" => opsgenie::US_URL,
                "eu" => opsgenie::EU_URL,
                other => return Err(format!("config.region: '{other}' is not one of us, eu")),
            };
            Arc::new(opsgenie::OpsGenie {
                api_key: required_str("config.api_key", obj.get("api_key"))?,
                url: match obj.get("url") {
                    None | Some(Value::Null) => reqwest::Url::parse(default).map_err(|e| e.to_string())?,
                    v => parse_url("config.url", v)?,
                },
            })
        }
        ChannelType::Email => Arc::new(email::build(obj)?),
    })
}

/// The settings as shown through the API: secrets, and webhook URLs that embed a token
/// (Slack, Teams), read `********`.
pub fn redacted(kind: ChannelType, config: &Value) -> Value {
    let Some(obj) = config.as_object() else { return Value::Object(Map::new()) };
    let mut out = crate::secrets::redact(obj);
    if matches!(kind, ChannelType::Slack | ChannelType::Teams) && out.contains_key("url") {
        out.insert("url".into(), Value::String(certctl_api::REDACTED.to_owned()));
    }
    Value::Object(out)
}

/// The sealing context of a channel's settings.
pub fn seal_context(id: &str) -> String {
    format!("notification_channel:{id}")
}

/// Delivery state shared by the API and the scheduler.
pub struct Notifications {
    pub http: Http,
    /// Channels declared by environment, by name.
    env: BTreeMap<String, Arc<dyn Notifier>>,
    pub retry: RetryPolicy,
    /// Digest recipients from `CERTCTL_DIGEST_RECIPIENTS`; when empty each email channel's
    /// own recipients get the digest.
    pub digest_recipients: Vec<String>,
    /// The recipients of the environment-declared `Email` channel (`CERTCTL_SMTP_TO`).
    pub env_email_to: Vec<String>,
    /// Wakes the delivery loop when rows are enqueued.
    pub wake: tokio::sync::Notify,
}

impl Notifications {
    /// Builds the environment-declared channels; a bad setting is an error naming its variable.
    pub fn from_config(config: &Config) -> anyhow::Result<Notifications> {
        let env = &config.notification_env;
        let get = |k: &str| env.get(k).map(|v| Value::String(v.clone()));
        let mut channels: BTreeMap<String, Arc<dyn Notifier>> = BTreeMap::new();
        // `settings` pairs each setting with the variable that sets it, so an error names the
        // variable to fix.
        let mut declare = |kind: ChannelType, settings: &[(&str, &str)]| -> anyhow::Result<()> {
            let obj: Map<String, Value> =
                settings.iter().filter_map(|(k, var)| get(var).map(|v| ((*k).to_owned(), v))).collect();
            let notifier = build_notifier(kind, &Value::Object(obj)).map_err(|e| {
                let var = settings
                    .iter()
                    .find(|(k, _)| e.starts_with(&format!("config.{k}:")))
                    .map_or(settings[0].1, |(_, var)| var);
                let message = e.split_once(": ").map_or(e.as_str(), |(_, m)| m);
                anyhow::anyhow!("{var}: {message}")
            })?;
            channels.insert(kind.as_str().to_owned(), notifier);
            Ok(())
        };
        if env.contains_key("CERTCTL_WEBHOOK_URL") {
            declare(ChannelType::Webhook, &[("url", "CERTCTL_WEBHOOK_URL"), ("secret", "CERTCTL_WEBHOOK_SECRET")])?;
        }
        if env.contains_key("CERTCTL_SLACK_WEBHOOK_URL") {
            declare(ChannelType::Slack, &[("url", "CERTCTL_SLACK_WEBHOOK_URL")])?;
        }
        if env.contains_key("CERTCTL_TEAMS_WEBHOOK_URL") {
            declare(ChannelType::Teams, &[("url", "CERTCTL_TEAMS_WEBHOOK_URL")])?;
        }
        if env.contains_key("CERTCTL_PAGERDUTY_ROUTING_KEY") {
            declare(
                ChannelType::PagerDuty,
                &[("routing_key", "CERTCTL_PAGERDUTY_ROUTING_KEY"), ("url", "CERTCTL_PAGERDUTY_URL")],
            )?;
        }
        if env.contains_key("CERTCTL_OPSGENIE_API_KEY") {
            declare(
                ChannelType::OpsGenie,
                &[
                    ("api_key", "CERTCTL_OPSGENIE_API_KEY"),
                    ("region", "CERTCTL_OPSGENIE_REGION"),
                    ("url", "CERTCTL_OPSGENIE_URL"),
                ],
            )?;
        }
        if env.contains_key("CERTCTL_SMTP_HOST") {
            // `CERTCTL_SMTP_FROM_ADDRESS` is the Go certctl's name for the sender.
            let from = if !env.contains_key("CERTCTL_SMTP_FROM") && env.contains_key("CERTCTL_SMTP_FROM_ADDRESS") {
                "CERTCTL_SMTP_FROM_ADDRESS"
            } else {
                "CERTCTL_SMTP_FROM"
            };
            declare(
                ChannelType::Email,
                &[
                    ("host", "CERTCTL_SMTP_HOST"),
                    ("port", "CERTCTL_SMTP_PORT"),
                    ("tls", "CERTCTL_SMTP_TLS"),
                    ("username", "CERTCTL_SMTP_USERNAME"),
                    ("password", "CERTCTL_SMTP_PASSWORD"),
                    ("from", from),
                    ("to", "CERTCTL_SMTP_TO"),
                    ("ca_path", "CERTCTL_SMTP_CA_PATH"),
                ],
            )?;
        }
        let list = |var: &str| -> Vec<String> {
            env.get(var)
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let digest_recipients = list("CERTCTL_DIGEST_RECIPIENTS");
        let env_email_to =
            if channels.contains_key(ChannelType::Email.as_str()) { list("CERTCTL_SMTP_TO") } else { Vec::new() };
        Ok(Notifications {
            http: Http::new(config.allow_loopback_targets)?,
            env: channels,
            retry: RetryPolicy {
                base: config.notification_retry_base,
                cap: config.notification_retry_cap,
                max_attempts: config.notification_max_attempts,
            },
            digest_recipients,
            env_email_to,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Names of the channels declared by environment.
    pub fn env_channel_names(&self) -> Vec<String> {
        self.env.keys().cloned().collect()
    }

    /// Whether `name` is an environment-declared channel.
    pub fn is_env_channel(&self, name: &str) -> bool {
        self.env.contains_key(name)
    }

    pub(crate) fn env_channel(&self, name: &str) -> Option<Arc<dyn Notifier>> {
        self.env.get(name).cloned()
    }
}

/// Opens a stored channel's sealed settings and builds its notifier.
pub fn stored_notifier(secrets: &SecretBox, c: &ChannelRecord) -> Result<Arc<dyn Notifier>, String> {
    let plain = secrets.open(&seal_context(&c.id), &c.sealed).map_err(|e| format!("cannot open settings: {e}"))?;
    let config: Value = serde_json::from_slice(&plain).map_err(|e| format!("stored settings are corrupt: {e}"))?;
    build_notifier(c.channel_type, &config)
}
