//! The notification outbox and its delivery state machine (PRODUCT.md §4).
//!
//! Producers write rows with [`enqueue_notifications`] inside the transaction of the change that
//! causes them, so a crash never loses an alert nor sends one for a change that rolled back. A
//! worker claims rows with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, SQLite: the single
//! writer), delivers them, and records the outcome; every outcome update is conditional on the
//! lease it claimed, so a worker whose lease lapsed can never overwrite another's result.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{Notification, NotificationStatus, NotificationType, SeverityTier};

use crate::audit::{AuditEntry, append};
use crate::common::Actor;
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Backend, Result, Store, StoreError, Tx, from_micros, new_id, opt_time, parse_enum, to_json, to_micros};

/// A notification to write to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub notification_type: NotificationType,
    /// Name of the channel that delivers it.
    pub channel: String,
    pub recipient: String,
    pub certificate_id: Option<String>,
    pub subject: String,
    pub message: String,
    /// Structured details the channels render (certificate name, days left, …).
    pub payload: Value,
    pub severity: SeverityTier,
    /// When set, a second row with the same key is silently not written (one alert per
    /// certificate, event, threshold, version and channel, across restarts and replicas).
    pub dedup_key: Option<String>,
}

/// The backoff ladder of `CERTCTL_NOTIFICATION_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The wait after a failure when `retry_count` attempts had already failed before it:
    /// `min(base × 2^retry_count, cap)`.
    pub fn backoff(&self, retry_count: i64) -> Duration {
        let exp = u32::try_from(retry_count.clamp(0, 62)).unwrap_or(62);
        let factor = 1u64.checked_shl(exp).unwrap_or(u64::MAX);
        let base_ms = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX);
        let wait = Duration::from_millis(base_ms.saturating_mul(factor));
        wait.min(self.cap)
    }
}

/// Which rows a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// Rows waiting for their first attempt (and requeued ones).
    Pending,
    /// `failed` rows whose `next_retry_at` has come (the retry sweep).
    DueRetries,
}

/// A claimed row: the worker owns it until `lease` (pass it back with the outcome).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub notification: Notification,
    pub payload: Value,
    pub lease: i64,
}

/// What a failed attempt did to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Still `failed`; the sweep retries at this time.
    Retry { retry_count: i64, next_retry_at: OffsetDateTime },
    /// Out of attempts: `dead`.
    Dead { retry_count: i64 },
    /// The lease lapsed and another worker owns the row; nothing was changed.
    LeaseLost,
}

/// Filters of a notification list, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationQuery {
    pub status: Option<NotificationStatus>,
    pub notification_type: Option<NotificationType>,
    pub channel: Option<String>,
    pub certificate_id: Option<String>,
}

#[derive(Debug, FromRow, Deserialize)]
struct NotificationRow {
    id: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    kind: String,
    channel: String,
    recipient: String,
    certificate_id: Option<String>,
    subject: String,
    message: String,
    payload: String,
    severity: String,
    status: String,
    retry_count: i64,
    next_retry_at: Option<i64>,
    last_error: Option<String>,
    lease_until: Option<i64>,
    sent_at: Option<i64>,
    read_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for NotificationRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl NotificationRow {
    fn into_notification(self) -> Result<Notification> {
        Ok(Notification {
            notification_type: parse_enum("type", &self.kind)?,
            status: parse_enum("status", &self.status)?,
            severity: parse_enum("severity", &self.severity)?,
            id: self.id,
            channel: self.channel,
            recipient: self.recipient,
            certificate_id: self.certificate_id,
            subject: self.subject,
            message: self.message,
            retry_count: self.retry_count,
            next_retry_at: opt_time(self.next_retry_at),
            last_error: self.last_error,
            sent_at: opt_time(self.sent_at),
            read_at: opt_time(self.read_at),
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }

    fn into_claimed(self) -> Result<Claimed> {
        let payload = serde_json::from_str(&self.payload).unwrap_or(Value::Null);
        let lease = self.lease_until.unwrap_or_default();
        Ok(Claimed { notification: self.into_notification()?, payload, lease })
    }
}

const COLUMNS: &str = "SELECT id, type, channel, recipient, certificate_id, subject, message, payload, severity, \
     status, retry_count, next_retry_at, last_error, lease_until, sent_at, read_at, created_at, updated_at \
     FROM notifications";

const RETURNING: &str = " RETURNING id, type, channel, recipient, certificate_id, subject, message, payload, \
     severity, status, retry_count, next_retry_at, last_error, lease_until, sent_at, read_at, created_at, updated_at";

/// Writes `items` to the outbox inside `tx`; rows whose `dedup_key` already exists are skipped.
/// Returns how many rows were written.
pub async fn enqueue_notifications(tx: &mut Tx, items: &[NewNotification], now: OffsetDateTime) -> Result<usize> {
    Ok(enqueue_each(tx, items, now).await?.into_iter().filter(|w| *w).count())
}

/// Like [`enqueue_notifications`], answering for each item whether it was written (false: its
/// `dedup_key` already existed).
pub async fn enqueue_each(tx: &mut Tx, items: &[NewNotification], now: OffsetDateTime) -> Result<Vec<bool>> {
    let mut written = Vec::with_capacity(items.len());
    for n in items {
        let q = Sql::new(
            "INSERT INTO notifications (id, type, channel, recipient, certificate_id, subject, message, payload, \
             severity, status, retry_count, dedup_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $11, $11) \
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .arg(new_id("notif"))
        .arg(n.notification_type.as_str())
        .arg(&n.channel)
        .arg(&n.recipient)
        .arg(n.certificate_id.clone())
        .arg(&n.subject)
        .arg(&n.message)
        .arg(to_json(&n.payload))
        .arg(n.severity.as_str())
        .arg(n.dedup_key.clone())
        .arg(to_micros(now));
        written.push(q.execute(&mut tx.conn()).await? > 0);
    }
    Ok(written)
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound { resource: "notification", id: id.to_owned() }
}

async fn fetch(conn: &mut Conn<'_>, id: &str) -> Result<Notification> {
    let mut q = Sql::default();
    q.push(COLUMNS).push(" WHERE id = ").push_bind(id);
    let row: Option<NotificationRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| not_found(id))?.into_notification()
}

fn audit(actor: &Actor, action: &str, id: &str, details: Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "notification", id, details)
}

impl Store {
    /// Writes `items` in a transaction of their own (for producers with no change of their own
    /// to commit, such as a channel test or the digest).
    pub async fn enqueue_notifications(&self, items: &[NewNotification], now: OffsetDateTime) -> Result<usize> {
        let mut tx = self.begin().await?;
        let n = enqueue_notifications(&mut tx, items, now).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Writes `items` in one transaction, answering for each whether it was written (false: a
    /// duplicate of an existing `dedup_key`).
    pub async fn enqueue_notifications_each(
        &self,
        items: &[NewNotification],
        now: OffsetDateTime,
    ) -> Result<Vec<bool>> {
        let mut tx = self.begin().await?;
        let written = enqueue_each(&mut tx, items, now).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Claims up to `limit` rows of `kind` whose lease is free, leasing them until `now + lease`.
    /// Across replicas on one PostgreSQL every row goes to exactly one claimer.
    pub async fn claim_notifications(
        &self,
        kind: ClaimKind,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Claimed>> {
        let now_us = to_micros(now);
        let lease_until = now_us.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2));
        let mut tx = self.begin().await?;
        let mut q = Sql::default();
        q.push("UPDATE notifications SET lease_until = ").push_bind(lease_until);
        q.push(" WHERE id IN (SELECT id FROM notifications WHERE ");
        match kind {
            ClaimKind::Pending => {
                q.push("status = 'pending'");
            }
            ClaimKind::DueRetries => {
                q.push("status = 'failed' AND next_retry_at IS NOT NULL AND next_retry_at <= ").push_bind(now_us);
            }
        }
        q.push(" AND (lease_until IS NULL OR lease_until <= ").push_bind(now_us).push(")");
        match kind {
            ClaimKind::Pending => q.push(" ORDER BY created_at, id"),
            ClaimKind::DueRetries => q.push(" ORDER BY next_retry_at, id"),
        };
        q.push(" LIMIT ").push_bind(i64::from(limit));
        if tx.backend() == Backend::Postgres {
            q.push(" FOR UPDATE SKIP LOCKED");
        }
        q.push(")").push(RETURNING);
        let rows: Vec<NotificationRow> = q.fetch_all(&mut tx.conn()).await?;
        tx.commit().await?;
        let mut claimed = rows.into_iter().map(NotificationRow::into_claimed).collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|c| c.notification.created_at);
        Ok(claimed)
    }

    /// Records a delivery: `sent`, `sent_at` set, `retry_count` kept (delivered on attempt
    /// `retry_count + 1`). False when the lease was lost.
    pub async fn record_notification_sent(&self, id: &str, lease: i64, now: OffsetDateTime) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = Sql::new(
            "UPDATE notifications SET status = 'sent', sent_at = $3, next_retry_at = NULL, lease_until = NULL, \
             updated_at = $3 WHERE id = $1 AND lease_until = $2 AND status IN ('pending', 'failed')",
        )
        .arg(id)
        .arg(lease)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Records the deliveries of one claimed batch in one statement (every row of a claim shares
    /// its lease). Returns the ids recorded; an id missing from the answer lost its lease.
    pub async fn record_notifications_sent(
        &self,
        ids: &[String],
        lease: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now_us = to_micros(now);
        let mut tx = self.begin().await?;
        let mut q = Sql::default();
        q.push("UPDATE notifications SET status = 'sent', sent_at = ").push_bind(now_us);
        q.push(", next_retry_at = NULL, lease_until = NULL, updated_at = ").push_bind(now_us);
        q.push(" WHERE lease_until = ").push_bind(lease);
        q.push(" AND status IN ('pending', 'failed') AND id IN (").push_list(ids.iter().cloned()).push(")");
        q.push(" RETURNING id");
        let rows: Vec<(String,)> = q.fetch_all(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Records a failed attempt: `retry_count + 1`, then `dead` with `next_retry_at` cleared when
    /// the attempts reach `policy.max_attempts`, else `failed` with `next_retry_at = now +
    /// min(base × 2^(attempts before this one), cap)` (the first failure included).
    pub async fn record_notification_failure(
        &self,
        id: &str,
        lease: i64,
        error: &str,
        policy: &RetryPolicy,
        now: OffsetDateTime,
    ) -> Result<FailureOutcome> {
        let mut tx = self.begin().await?;
        let current: Option<(i64,)> = Sql::new(
            "SELECT retry_count FROM notifications WHERE id = $1 AND lease_until = $2 \
             AND status IN ('pending', 'failed')",
        )
        .arg(id)
        .arg(lease)
        .fetch_optional(&mut tx.conn())
        .await?;
        let Some((before,)) = current else {
            return Ok(FailureOutcome::LeaseLost);
        };
        let after = before + 1;
        let error = truncate(error, 2000);
        let outcome = if after >= i64::from(policy.max_attempts) {
            Sql::new(
                "UPDATE notifications SET status = 'dead', retry_count = $2, next_retry_at = NULL, last_error = $3, \
                 lease_until = NULL, updated_at = $4 WHERE id = $1",
            )
            .arg(id)
            .arg(after)
            .arg(error)
            .arg(to_micros(now))
            .execute(&mut tx.conn())
            .await?;
            FailureOutcome::Dead { retry_count: after }
        } else {
            let wait = time::Duration::try_from(policy.backoff(before)).unwrap_or(time::Duration::DAY);
            let next = now + wait;
            Sql::new(
                "UPDATE notifications SET status = 'failed', retry_count = $2, next_retry_at = $3, last_error = $4, \
                 lease_until = NULL, updated_at = $5 WHERE id = $1",
            )
            .arg(id)
            .arg(after)
            .arg(to_micros(next))
            .arg(error)
            .arg(to_micros(now))
            .execute(&mut tx.conn())
            .await?;
            FailureOutcome::Retry { retry_count: after, next_retry_at: next }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Sends a row straight to `dead` (its channel is not configured), naming why.
    pub async fn record_notification_undeliverable(
        &self,
        id: &str,
        lease: i64,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = Sql::new(
            "UPDATE notifications SET status = 'dead', next_retry_at = NULL, last_error = $3, lease_until = NULL, \
             updated_at = $4 WHERE id = $1 AND lease_until = $2 AND status IN ('pending', 'failed')",
        )
        .arg(id)
        .arg(lease)
        .arg(truncate(error, 2000))
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The operator's escape hatch: a `dead` or `failed` row goes back to `pending` with a fresh
    /// budget. Conflict from any other state; audited.
    pub async fn requeue_notification(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<Notification> {
        let mut tx = self.begin().await?;
        let before = fetch(&mut tx.conn(), id).await?;
        if !matches!(before.status, NotificationStatus::Dead | NotificationStatus::Failed) {
            return Err(StoreError::Conflict(format!(
                "notification '{id}' is {}; only dead or failed notifications can be requeued",
                before.status
            )));
        }
        let n = Sql::new(
            "UPDATE notifications SET status = 'pending', retry_count = 0, next_retry_at = NULL, last_error = NULL, \
             lease_until = NULL, updated_at = $2 WHERE id = $1 AND status IN ('dead', 'failed')",
        )
        .arg(id)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        if n != 1 {
            return Err(StoreError::Conflict(format!("notification '{id}' changed while being requeued")));
        }
        let details = json!({
            "previous_status": before.status,
            "retry_count": before.retry_count,
            "last_error": before.last_error,
            "channel": before.channel,
        });
        append(&mut tx, &[audit(actor, "notification_requeued", id, details)], now).await?;
        tx.commit().await?;
        self.notification(id).await
    }

    /// Marks a delivered (or dead) notification as read. Rows still in delivery (`pending`,
    /// `failed`) cannot be: that would silently drop them.
    pub async fn mark_notification_read(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<Notification> {
        let mut tx = self.begin().await?;
        let before = fetch(&mut tx.conn(), id).await?;
        match before.status {
            NotificationStatus::Read => return Ok(before),
            NotificationStatus::Sent | NotificationStatus::Dead => {}
            NotificationStatus::Pending | NotificationStatus::Failed => {
                return Err(StoreError::Conflict(format!(
                    "notification '{id}' is {} and still being delivered",
                    before.status
                )));
            }
        }
        Sql::new(
            "UPDATE notifications SET status = 'read', read_at = $2, next_retry_at = NULL, updated_at = $2 \
             WHERE id = $1",
        )
        .arg(id)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({ "previous_status": before.status });
        append(&mut tx, &[audit(actor, "notification_read", id, details)], now).await?;
        tx.commit().await?;
        self.notification(id).await
    }

    pub async fn notification(&self, id: &str) -> Result<Notification> {
        let mut c = self.reader().await?;
        fetch(&mut c.conn(), id).await
    }

    /// Newest first; totals are real counts of the filtered set.
    pub async fn list_notifications(
        &self,
        query: &NotificationQuery,
        paging: &Paging,
    ) -> Result<Listing<Notification>> {
        let mut c = self.reader().await?;
        let rows: Listing<NotificationRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM notifications",
            |q| {
                q.push(" WHERE 1=1");
                if let Some(s) = query.status {
                    q.push(" AND status = ").push_bind(s.as_str());
                }
                if let Some(t) = query.notification_type {
                    q.push(" AND type = ").push_bind(t.as_str());
                }
                if let Some(ch) = &query.channel {
                    q.push(" AND channel = ").push_bind(ch);
                }
                if let Some(cert) = &query.certificate_id {
                    q.push(" AND certificate_id = ").push_bind(cert);
                }
            },
            Order { key: CREATED, desc: true },
            paging,
        )
        .await?;
        rows.try_map(NotificationRow::into_notification)
    }

    /// Whether any row of `kind` is claimable at `now`; a read, so idle polling never takes the
    /// write lock.
    pub async fn has_claimable_notifications(&self, kind: ClaimKind, now: OffsetDateTime) -> Result<bool> {
        let mut c = self.reader().await?;
        let now_us = to_micros(now);
        let q = match kind {
            ClaimKind::Pending => Sql::new(
                "SELECT COUNT(*) FROM (SELECT id FROM notifications WHERE status = 'pending' \
                 AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1) AS due",
            ),
            ClaimKind::DueRetries => Sql::new(
                "SELECT COUNT(*) FROM (SELECT id FROM notifications WHERE status = 'failed' \
                 AND next_retry_at IS NOT NULL AND next_retry_at <= $1 \
                 AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1) AS due",
            ),
        };
        Ok(q.arg(now_us).fetch_i64(&mut c.conn()).await? > 0)
    }

    /// Count of notifications in `status` (the dead-letter depth for `dead`).
    pub async fn count_notifications(&self, status: NotificationStatus) -> Result<i64> {
        let mut c = self.reader().await?;
        Sql::new("SELECT COUNT(*) FROM notifications WHERE status = $1")
            .arg(status.as_str())
            .fetch_i64(&mut c.conn())
            .await
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy { base: Duration::from_secs(60), cap: Duration::from_secs(3600), max_attempts: 5 };
        let waits: Vec<u64> = (0..8).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(p.backoff(1000), Duration::from_secs(3600));
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
