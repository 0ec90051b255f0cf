//! The delivery worker, the retry sweep and the expiry-alert scan.
//!
//! Both delivery paths claim leased batches, so replicas sharing a database never deliver one
//! row twice; every outcome goes through [`record_outcome`], the single place counters hook in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use certctl_api::{ChannelType, NotificationType, SeverityTier};
use certctl_store::{ClaimKind, Claimed, DEFAULT_CHANNEL, ExpiryCandidate, FailureOutcome, NewNotification};

use super::{Message, Notifier, SEND_TIMEOUT, stored_notifier};
use crate::AppState;

/// Rows claimed per batch.
const BATCH: u32 = 64;

/// Sends in flight at once within a batch: enough to hide each receiver's round trip, few
/// enough not to flood one receiver.
const CONCURRENCY: usize = 16;

/// Batches one run handles before yielding to the next tick.
const MAX_BATCHES: usize = 50;

/// Certificates one expiry scan looks at.
const SCAN_LIMIT: u32 = 10_000;

/// Alerts written per transaction by the expiry scan.
const ENQUEUE_CHUNK: usize = 500;

/// What happened to one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Failed; the sweep retries it.
    Failed,
    /// Out of attempts, or no such channel.
    DeadLettered,
}

/// Metrics hook: every delivery outcome, by channel type (`unknown` when the channel does not
/// resolve), passes through here.
pub fn record_outcome(s: &AppState, channel_type: &str, outcome: Outcome) {
    tracing::debug!(channel_type, ?outcome, "notification outcome");
    match outcome {
        Outcome::Sent => s.metrics.notification_sent(channel_type),
        Outcome::Failed => s.metrics.notification_failed(channel_type),
        Outcome::DeadLettered => s.metrics.notification_dead_lettered(channel_type),
    }
}

/// Metrics hook: an expiry alert enqueued (or suppressed as a duplicate) for a threshold.
pub fn record_expiry_alert(s: &AppState, channel: &str, threshold_days: i64, enqueued: bool) {
    tracing::debug!(channel, threshold_days, enqueued, "expiry alert");
    let threshold = u32::try_from(threshold_days).unwrap_or(0);
    s.metrics.expiry_alert(threshold, if enqueued { "success" } else { "deduped" });
}

/// A resolved channel: its notifier and its type (for the metrics label).
struct Resolved {
    notifier: Arc<dyn Notifier>,
    kind: &'static str,
}

/// Resolves a channel name: an API-managed channel first, then an environment-declared one.
async fn resolve(s: &AppState, name: &str) -> Result<Option<Resolved>, String> {
    match s.store.channel_by_name(name).await {
        Ok(Some(c)) if c.enabled => {
            return stored_notifier(&s.secrets, &c)
                .map(|notifier| Some(Resolved { notifier, kind: c.channel_type.as_str() }))
                .map_err(|e| format!("channel '{name}': {e}"));
        }
        Ok(Some(_)) => return Ok(None),
        Ok(None) => {}
        Err(e) => return Err(e.to_string()),
    }
    let Ok(kind) = name.parse::<ChannelType>() else { return Ok(None) };
    if let Some(notifier) = s.notify.env_channel(name) {
        return Ok(Some(Resolved { notifier, kind: kind.as_str() }));
    }
    // A type name with no environment-declared channel (policies route to `Email` by default)
    // reaches the oldest enabled API-managed channel of that type.
    match s.store.channels_of_type(kind).await {
        Ok(list) => match list.first() {
            Some(c) => stored_notifier(&s.secrets, c)
                .map(|notifier| Some(Resolved { notifier, kind: kind.as_str() }))
                .map_err(|e| format!("channel '{}': {e}", c.name)),
            None => Ok(None),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Claims and delivers rows of `kind` until none is left (or the run's batch budget is spent).
/// Returns how many rows were handled.
pub async fn deliver(s: &AppState, kind: ClaimKind) -> usize {
    // The slowest batch: every send in every wave of `CONCURRENCY` times out.
    let waves = BATCH.div_ceil(u32::try_from(CONCURRENCY).unwrap_or(1));
    let lease = (SEND_TIMEOUT + Duration::from_secs(2)) * waves + Duration::from_secs(60);
    let mut handled = 0;
    for round in 0..MAX_BATCHES {
        let now = s.clock.now();
        // A read first, so an idle tick never takes the write lock; after a full batch the
        // claim itself answers whether more is due.
        if round == 0 {
            match s.store.has_claimable_notifications(kind, now).await {
                Ok(true) => {}
                Ok(false) => return handled,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for due notifications");
                    return handled;
                }
            }
        }
        let batch = match s.store.claim_notifications(kind, now, lease, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim notifications");
                return handled;
            }
        };
        let full = batch.len() == BATCH as usize;
        handled += batch.len();
        deliver_batch(s, batch).await;
        if !full {
            return handled;
        }
    }
    // The budget ran out with rows still due: the delivery loop runs again at once instead of
    // waiting for its next tick.
    if kind == ClaimKind::Pending {
        s.notify.wake.notify_one();
    }
    handled
}

/// Delivers one claimed batch: each channel resolved once, sends run concurrently, and the
/// deliveries recorded in one statement per lease.
async fn deliver_batch(s: &AppState, batch: Vec<Claimed>) {
    let mut channels: HashMap<String, Result<Option<Resolved>, String>> = HashMap::new();
    for c in &batch {
        if !channels.contains_key(&c.notification.channel) {
            let r = resolve(s, &c.notification.channel).await;
            channels.insert(c.notification.channel.clone(), r);
        }
    }
    let mut sends = Vec::new();
    for c in batch {
        match channels.get(&c.notification.channel) {
            Some(Ok(Some(r))) => sends.push(Attempt { claimed: c, notifier: Arc::clone(&r.notifier), kind: r.kind }),
            Some(Ok(None)) | None => undeliverable(s, &c).await,
            // A channel whose settings cannot be opened fails like a send, so fixing it in
            // time still delivers.
            Some(Err(why)) => fail(s, &c, "unknown", why).await,
        }
    }
    let outcomes: Vec<(Attempt, Result<(), String>)> =
        futures::stream::iter(sends).map(|a| attempt(s, a)).buffer_unordered(CONCURRENCY).collect().await;
    let mut delivered: BTreeMap<i64, Vec<(String, &'static str)>> = BTreeMap::new();
    for (a, sent) in outcomes {
        match sent {
            Ok(()) => delivered.entry(a.claimed.lease).or_default().push((a.claimed.notification.id, a.kind)),
            Err(why) => fail(s, &a.claimed, a.kind, &why).await,
        }
    }
    for (lease, rows) in delivered {
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        match s.store.record_notifications_sent(&ids, lease, s.clock.now()).await {
            Ok(recorded) => {
                let recorded: HashSet<&str> = recorded.iter().map(String::as_str).collect();
                for (id, kind) in &rows {
                    if recorded.contains(id.as_str()) {
                        record_outcome(s, kind, Outcome::Sent);
                    } else {
                        tracing::warn!(notification = %id, "delivered after its lease lapsed");
                    }
                }
            }
            Err(e) => tracing::warn!(rows = ids.len(), error = %e, "delivered but cannot record it"),
        }
    }
}

/// One send to make: the row, its channel's notifier and the channel type (metrics label).
struct Attempt {
    claimed: Claimed,
    notifier: Arc<dyn Notifier>,
    kind: &'static str,
}

/// Sends one row, bounded by the send timeout (a hang counts as a failed attempt).
async fn attempt(s: &AppState, a: Attempt) -> (Attempt, Result<(), String>) {
    let message = Message { notification: a.claimed.notification.clone(), payload: a.claimed.payload.clone() };
    let sent = tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(2), a.notifier.send(&s.notify.http, &message))
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
    (a, sent)
}

/// A row whose channel resolves to nothing goes to `dead`, never to `sent`.
async fn undeliverable(s: &AppState, c: &Claimed) {
    let id = &c.notification.id;
    let channel = &c.notification.channel;
    let why = format!("channel '{channel}' is not configured");
    match s.store.record_notification_undeliverable(id, c.lease, &why, s.clock.now()).await {
        Ok(true) => record_outcome(s, "unknown", Outcome::DeadLettered),
        Ok(false) => {}
        Err(e) => tracing::warn!(notification = %id, error = %e, "cannot record an undeliverable notification"),
    }
    tracing::warn!(notification = %id, channel = %channel, "notification dead: channel not configured");
}

async fn fail(s: &AppState, c: &Claimed, kind: &str, why: &str) {
    let id = &c.notification.id;
    match s.store.record_notification_failure(id, c.lease, why, &s.notify.retry, s.clock.now()).await {
        Ok(FailureOutcome::Retry { retry_count, next_retry_at }) => {
            record_outcome(s, kind, Outcome::Failed);
            tracing::info!(notification = %id, retry_count, %next_retry_at, error = why, "notification failed; will retry");
        }
        Ok(FailureOutcome::Dead { retry_count }) => {
            record_outcome(s, kind, Outcome::DeadLettered);
            tracing::warn!(notification = %id, retry_count, error = why, "notification dead after its last attempt");
        }
        Ok(FailureOutcome::LeaseLost) => {}
        Err(e) => tracing::warn!(notification = %id, error = %e, "cannot record a failed notification"),
    }
}

/// The default tier of each default threshold.
pub fn default_tier(threshold: i64) -> SeverityTier {
    match threshold {
        t if t <= 0 => SeverityTier::Critical,
        t if t <= 14 => SeverityTier::Warning,
        _ => SeverityTier::Informational,
    }
}

/// The threshold an alert fires for: the tightest one `days_left` has crossed.
pub fn tightest_crossed(thresholds: &[i64], days_left: i64) -> Option<i64> {
    thresholds.iter().copied().filter(|t| days_left <= *t).min()
}

/// The alert's wording: "expires in N days" or, once past, "expired N days ago".
pub fn expiry_phrase(remaining: time::Duration) -> String {
    if remaining.is_negative() {
        match (-remaining).whole_days() {
            0 => "expired today".to_owned(),
            1 => "expired 1 day ago".to_owned(),
            n => format!("expired {n} days ago"),
        }
    } else {
        match remaining.whole_days() {
            0 => "expires today".to_owned(),
            1 => "expires in 1 day".to_owned(),
            n => format!("expires in {n} days"),
        }
    }
}

fn expiry_alerts(c: &ExpiryCandidate, now: time::OffsetDateTime) -> Vec<NewNotification> {
    let remaining = c.expires_at - now;
    let days_left = if remaining.is_negative() { -(-remaining).whole_days() - 1 } else { remaining.whole_days() };
    let thresholds = if c.thresholds_days.is_empty() { vec![30, 14, 7, 0] } else { c.thresholds_days.clone() };
    let Some(threshold) = tightest_crossed(&thresholds, days_left) else { return Vec::new() };
    let tier = c.severity_map.get(&threshold.to_string()).copied().unwrap_or_else(|| default_tier(threshold));
    let channels = c.channels.get(&tier).cloned().unwrap_or_else(|| vec![DEFAULT_CHANNEL.to_owned()]);
    let phrase = expiry_phrase(remaining);
    let expires = c.expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let subject = format!("Certificate {} {phrase}", c.certificate_name);
    let message = format!(
        "Certificate {} ({}) {phrase} (not after {expires}). Alert threshold: {threshold} days, severity {tier}.",
        c.certificate_name, c.common_name
    );
    let version = if c.version_id.is_empty() { "none" } else { c.version_id.as_str() };
    channels
        .into_iter()
        .map(|channel| NewNotification {
            notification_type: NotificationType::ExpirationWarning,
            dedup_key: Some(format!("expiry:{}:{threshold}:{version}:{channel}", c.certificate_id)),
            channel,
            recipient: c.owner_email.clone(),
            certificate_id: Some(c.certificate_id.clone()),
            subject: subject.clone(),
            message: message.clone(),
            payload: json!({
                "certificate_name": c.certificate_name,
                "common_name": c.common_name,
                "expires_at": expires,
                "threshold_days": threshold,
                "days_left": days_left,
                "version_id": c.version_id,
            }),
            severity: tier,
        })
        .collect()
}

/// Enqueues the expiry alerts due now; the unique `dedup_key` keeps each (certificate, event,
/// threshold, version, channel) to one row across runs and replicas. Returns rows written.
pub async fn scan_expiry(s: &AppState) -> usize {
    let now = s.clock.now();
    let horizon = match s.store.max_alert_threshold().await {
        Ok(max) => max.max(30) + 1,
        Err(e) => {
            tracing::warn!(error = %e, "expiry scan: cannot read thresholds");
            return 0;
        }
    };
    let candidates = match s.store.expiry_candidates(now, horizon, SCAN_LIMIT).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "expiry scan failed");
            return 0;
        }
    };
    let alerts: Vec<NewNotification> = candidates.iter().flat_map(|c| expiry_alerts(c, now)).collect();
    let mut written = 0;
    // One transaction per chunk: a large scan costs a few commits, not one per alert, and one
    // bad chunk does not hold back the rest.
    for chunk in alerts.chunks(ENQUEUE_CHUNK) {
        match s.store.enqueue_notifications_each(chunk, now).await {
            Ok(outcomes) => {
                for (alert, enqueued) in chunk.iter().zip(outcomes) {
                    let threshold = alert.payload["threshold_days"].as_i64().unwrap_or_default();
                    record_expiry_alert(s, &alert.channel, threshold, enqueued);
                    written += usize::from(enqueued);
                }
            }
            Err(e) => {
                for alert in chunk {
                    let threshold = alert.payload["threshold_days"].as_i64().unwrap_or_default();
                    s.metrics.expiry_alert(u32::try_from(threshold).unwrap_or(0), "failure");
                }
                tracing::warn!(alerts = chunk.len(), error = %e, "cannot enqueue expiry alerts");
            }
        }
    }
    if written > 0 {
        tracing::info!(alerts = written, "expiry alerts enqueued");
        s.notify.wake.notify_one();
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tightest_threshold_fires() {
        let t = [30, 14, 7, 0];
        assert_eq!(tightest_crossed(&t, 31), None);
        assert_eq!(tightest_crossed(&t, 30), Some(30));
        assert_eq!(tightest_crossed(&t, 5), Some(7));
        assert_eq!(tightest_crossed(&t, 0), Some(0));
        assert_eq!(tightest_crossed(&t, -4), Some(0));
    }

    #[test]
    fn wording_never_says_minus() {
        assert_eq!(expiry_phrase(time::Duration::days(5) + time::Duration::hours(3)), "expires in 5 days");
        assert_eq!(expiry_phrase(time::Duration::hours(-3)), "expired today");
        assert_eq!(expiry_phrase(time::Duration::days(-4) - time::Duration::hours(1)), "expired 4 days ago");
        assert_eq!(expiry_phrase(time::Duration::days(-1)), "expired 1 day ago");
    }
}
