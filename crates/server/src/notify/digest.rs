//! The certificate digest: rendering (subject, plain text, HTML table) and enqueueing one
//! `Digest` notification per email channel through the ordinary outbox, so it shares the
//! retries and dead-letter queue of every other notification.

use std::fmt::Write as _;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use certctl_api::{ChannelType, DigestSent, DigestSummary, NotificationType, SeverityTier};
use certctl_store::NewNotification;

use super::email::escape_html;
use crate::AppState;

/// The window a digest covers when none is asked for.
pub const DEFAULT_WINDOW_DAYS: i64 = 30;

/// A digest ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// An email channel the digest goes to: the name notifications address, and who it reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub channel: String,
    pub recipients: Vec<String>,
}

fn date(t: OffsetDateTime) -> String {
    t.date().to_string()
}

fn instant(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Renders `d` as a subject, a text body and an HTML body.
pub fn render(d: &DigestSummary) -> Rendered {
    let subject = format!(
        "certctl certificate digest {}: {} expiring within {} days",
        date(d.generated_at),
        d.expiring_total,
        d.window_days
    );
    let mut text = format!(
        "certctl certificate digest, {}\n\n{} of {} certificates expire within {} days (expired ones included).\n",
        instant(d.generated_at),
        d.expiring_total,
        d.total_certificates,
        d.window_days
    );
    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>certctl certificate digest</h2>\
         <p>{}: <strong>{}</strong> of {} certificates expire within {} days (expired ones included).</p>",
        escape_html(&instant(d.generated_at)),
        d.expiring_total,
        d.total_certificates,
        d.window_days
    );
    if !d.by_status.is_empty() {
        text.push_str("\nBy status:\n");
        html.push_str("<h3>By status</h3><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr><th>Status</th><th>Count</th></tr>");
        for s in &d.by_status {
            let _ = writeln!(text, "  {:<18} {}", s.status.as_str(), s.count);
            let _ = write!(
                html,
                "<tr><td>{}</td><td align=\"right\">{}</td></tr>",
                escape_html(s.status.as_str()),
                s.count
            );
        }
        html.push_str("</table>");
    }
    if !d.certificates.is_empty() {
        text.push_str("\nCertificates, soonest first:\n");
        html.push_str(
            "<h3>Certificates, soonest first</h3><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\
             <tr><th>Name</th><th>Common name</th><th>Status</th><th>Expires</th><th>Days left</th><th>Owner</th></tr>",
        );
        for c in &d.certificates {
            let _ = writeln!(
                text,
                "  {} ({}) {} expires {} ({} days) owner {}",
                c.name,
                c.common_name,
                c.status.as_str(),
                instant(c.expires_at),
                c.days_left,
                c.owner_email
            );
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td align=\"right\">{}</td><td>{}</td></tr>",
                escape_html(&c.name),
                escape_html(&c.common_name),
                escape_html(c.status.as_str()),
                escape_html(&instant(c.expires_at)),
                c.days_left,
                escape_html(&c.owner_email)
            );
        }
        html.push_str("</table>");
        if (d.certificates.len() as i64) < d.expiring_total {
            let more = d.expiring_total - d.certificates.len() as i64;
            let _ = writeln!(text, "  … and {more} more");
            let _ = write!(html, "<p>… and {more} more.</p>");
        }
    } else {
        text.push_str("\nNothing expires in this window.\n");
        html.push_str("<p>Nothing expires in this window.</p>");
    }
    html.push_str("<p style=\"color:#666\">Sent by certctl.</p></body></html>");
    Rendered { subject, text, html }
}

/// Every email channel: the environment-declared one and the enabled API-managed ones, each
/// with the addresses it reaches (`CERTCTL_DIGEST_RECIPIENTS` replaces them all when set).
pub async fn targets(s: &AppState) -> Result<Vec<Target>, certctl_store::StoreError> {
    let mut out = Vec::new();
    let override_to = &s.notify.digest_recipients;
    let pick = |own: Vec<String>| if override_to.is_empty() { own } else { override_to.clone() };
    if s.notify.is_env_channel(ChannelType::Email.as_str()) {
        out.push(Target {
            channel: ChannelType::Email.as_str().to_owned(),
            recipients: pick(s.notify.env_email_to.clone()),
        });
    }
    for c in s.store.channels_of_type(ChannelType::Email).await? {
        let own = match c.config.get("to") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(v)) => {
                v.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        out.push(Target { channel: c.name, recipients: pick(own) });
    }
    Ok(out)
}

/// The notifications of one digest, one per target. `dedup` (the scheduled run's window)
/// keeps replicas and restarts to one digest per channel per interval.
pub fn notifications(d: &DigestSummary, targets: &[Target], dedup: Option<&str>) -> Vec<NewNotification> {
    let r = render(d);
    targets
        .iter()
        .map(|t| NewNotification {
            notification_type: NotificationType::Digest,
            channel: t.channel.clone(),
            recipient: t.recipients.join(","),
            certificate_id: None,
            subject: r.subject.clone(),
            message: r.text.clone(),
            payload: json!({
                "window_days": d.window_days,
                "expiring_total": d.expiring_total,
                "text": r.text,
                "html": r.html,
            }),
            severity: SeverityTier::Informational,
            dedup_key: dedup.map(|k| format!("digest:{k}:{}", t.channel)),
        })
        .collect()
}

/// Result of enqueueing a digest.
pub fn sent(targets: &[Target], enqueued: usize) -> DigestSent {
    let mut recipients: Vec<String> = targets.iter().flat_map(|t| t.recipients.iter().cloned()).collect();
    recipients.sort();
    recipients.dedup();
    DigestSent { enqueued, recipients }
}

/// The scheduled digest: enqueued once per channel per `interval` window; skipped when no email
/// channel exists. Returns the rows written.
pub async fn scheduled(s: &AppState, interval: std::time::Duration) -> usize {
    let targets = match targets(s).await {
        Ok(t) if t.is_empty() => {
            tracing::debug!("digest skipped: no email channel");
            return 0;
        }
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "digest: cannot list email channels");
            return 0;
        }
    };
    let now = s.clock.now();
    let summary = match s.store.digest(now, DEFAULT_WINDOW_DAYS).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "digest query failed");
            return 0;
        }
    };
    let every = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1);
    let window = now.unix_timestamp().div_euclid(every);
    let rows = notifications(&summary, &targets, Some(&window.to_string()));
    match s.store.enqueue_notifications_each(&rows, now).await {
        Ok(written) => {
            let n = written.into_iter().filter(|w| *w).count();
            if n > 0 {
                tracing::info!(digests = n, "digest enqueued");
                s.notify.wake.notify_one();
            }
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot enqueue the digest");
            0
        }
    }
}
