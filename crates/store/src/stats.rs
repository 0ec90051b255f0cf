//! Aggregates for the dashboard statistics and the metrics snapshot.
//!
//! Every figure is a SQL aggregate answered from an index (migration 0004 adds the ones the
//! counts need); no rows are loaded into memory. Archived certificates are out of the
//! inventory's figures (they are still listed by status), retired agents out of the agents'.

use time::{Duration, OffsetDateTime};

use crate::sql::Sql;
use crate::{Result, Store, to_micros};

/// How far ahead a certificate counts as expiring soon.
pub const EXPIRING_WINDOW: Duration = Duration::days(30);
/// How recent an agent's heartbeat must be for the agent to count as online.
pub const ONLINE_WINDOW: Duration = Duration::minutes(5);

const DAY_MICROS: i64 = 86_400_000_000;

/// Job statuses that are still to run or running.
pub const OPEN_JOB_STATUSES: [&str; 4] = ["Pending", "AwaitingCSR", "AwaitingApproval", "Running"];
/// Notification statuses, in the order the metrics report them.
pub const NOTIFICATION_STATUSES: [&str; 5] = ["pending", "sent", "failed", "dead", "read"];

/// The inventory counts behind the dashboard summary and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryCounts {
    /// Certificates that are not archived.
    pub certificates: i64,
    pub revoked: i64,
    /// Not revoked, and marked expired or past their expiry.
    pub expired: i64,
    /// Not revoked or expired, and expiring within [`EXPIRING_WINDOW`].
    pub expiring: i64,
    /// Agents that are not retired.
    pub agents: i64,
    /// Of those, the ones with a heartbeat within [`ONLINE_WINDOW`].
    pub agents_online: i64,
    /// Job counts by stored status (every status present, zeros included).
    pub jobs: Vec<(String, i64)>,
    /// Notification counts by status ([`NOTIFICATION_STATUSES`], zeros included).
    pub notifications: Vec<(String, i64)>,
}

impl InventoryCounts {
    /// Certificates neither revoked, expired nor expiring soon.
    pub fn active(&self) -> i64 {
        (self.certificates - self.expiring - self.expired - self.revoked).max(0)
    }

    /// Jobs still to run or running.
    pub fn jobs_open(&self) -> i64 {
        self.jobs.iter().filter(|(s, _)| OPEN_JOB_STATUSES.contains(&s.as_str())).map(|(_, n)| n).sum()
    }

    /// Jobs in one status.
    pub fn jobs_in(&self, status: &str) -> i64 {
        self.jobs.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n)
    }

    /// Notifications in one status.
    pub fn notifications_in(&self, status: &str) -> i64 {
        self.notifications.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n)
    }
}

/// The first microsecond of the UTC day of `t`.
fn day_start(t: OffsetDateTime) -> i64 {
    to_micros(t).div_euclid(DAY_MICROS) * DAY_MICROS
}

/// Spreads `(day index, count)` rows over `days` zero-filled buckets.
fn buckets(rows: Vec<(i64, i64)>, days: u32) -> Vec<i64> {
    let mut out = vec![0; days as usize];
    for (day, n) in rows {
        if let Some(slot) = usize::try_from(day).ok().and_then(|d| out.get_mut(d)) {
            *slot += n;
        }
    }
    out
}

impl Store {
    /// The counts of the dashboard summary and the metrics, as of `now`.
    pub async fn inventory_counts(&self, now: OffsetDateTime) -> Result<InventoryCounts> {
        let mut c = self.reader().await?;
        let now_us = to_micros(now);
        // Each sub-query is a range over one index: the status index for per-status counts, the
        // (expires_at, status) index for expiry, the heartbeat index for agents.
        let (certificates, revoked, expired, expiring, agents, agents_online): (i64, i64, i64, i64, i64, i64) =
            Sql::new(
                "SELECT \
                   (SELECT COUNT(*) FROM managed_certificates) \
                     - (SELECT COUNT(*) FROM managed_certificates WHERE status = 'Archived'), \
                   (SELECT COUNT(*) FROM managed_certificates WHERE status = 'Revoked'), \
                   (SELECT COUNT(*) FROM managed_certificates WHERE status = 'Expired') \
                     + (SELECT COUNT(*) FROM managed_certificates WHERE expires_at <= $1 \
                          AND status NOT IN ('Expired', 'Revoked', 'Archived')), \
                   (SELECT COUNT(*) FROM managed_certificates WHERE expires_at > $1 AND expires_at < $2 \
                          AND status NOT IN ('Expired', 'Revoked', 'Archived')), \
                   (SELECT COUNT(*) FROM agents WHERE retired_at IS NULL), \
                   (SELECT COUNT(*) FROM agents WHERE retired_at IS NULL AND last_heartbeat_at >= $3)",
            )
            .arg(now_us)
            .arg(to_micros(now + EXPIRING_WINDOW))
            .arg(to_micros(now - ONLINE_WINDOW))
            .fetch_one(&mut c.conn())
            .await?;
        let mut jobs: Vec<(String, i64)> = certctl_api::JobStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect();
        let rows: Vec<(String, i64)> =
            Sql::new("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetch_all(&mut c.conn()).await?;
        for (status, n) in rows {
            match jobs.iter_mut().find(|(s, _)| *s == status) {
                Some(slot) => slot.1 = n,
                None => jobs.push((status, n)),
            }
        }
        let mut notifications: Vec<(String, i64)> =
            NOTIFICATION_STATUSES.iter().map(|s| ((*s).to_owned(), 0)).collect();
        let rows: Vec<(String, i64)> =
            Sql::new("SELECT status, COUNT(*) FROM notifications GROUP BY status").fetch_all(&mut c.conn()).await?;
        for (status, n) in rows {
            match notifications.iter_mut().find(|(s, _)| *s == status) {
                Some(slot) => slot.1 = n,
                None => notifications.push((status, n)),
            }
        }
        Ok(InventoryCounts { certificates, revoked, expired, expiring, agents, agents_online, jobs, notifications })
    }

    /// Certificates per status, with `Active` ones re-bucketed by expiry (`Expired` when past,
    /// `Expiring` within [`EXPIRING_WINDOW`]); statuses with no certificate are left out.
    pub async fn certificates_by_status(&self, now: OffsetDateTime) -> Result<Vec<(String, i64)>> {
        let mut c = self.reader().await?;
        let rows: Vec<(String, i64)> = Sql::new(
            "SELECT CASE WHEN status = 'Active' AND expires_at IS NOT NULL AND expires_at <= $1 THEN 'Expired' \
                         WHEN status = 'Active' AND expires_at IS NOT NULL AND expires_at < $2 THEN 'Expiring' \
                         ELSE status END AS bucket, \
                    COUNT(*) \
             FROM managed_certificates GROUP BY bucket",
        )
        .arg(to_micros(now))
        .arg(to_micros(now + EXPIRING_WINDOW))
        .fetch_all(&mut c.conn())
        .await?;
        let order = |s: &str| certctl_api::CertificateStatus::ALL.iter().position(|k| k.as_str() == s);
        let mut rows: Vec<(String, i64)> = rows.into_iter().filter(|(_, n)| *n > 0).collect();
        rows.sort_by(|a, b| (order(&a.0), &a.0).cmp(&(order(&b.0), &b.0)));
        Ok(rows)
    }

    /// Certificates expiring on each of the `days` UTC days starting today, counting those
    /// that expire after `now` and are neither revoked nor archived.
    pub async fn expiration_timeline(&self, now: OffsetDateTime, days: u32) -> Result<Vec<i64>> {
        let start = day_start(now);
        let end = start + i64::from(days) * DAY_MICROS;
        let mut c = self.reader().await?;
        let rows: Vec<(i64, i64)> = Sql::new(
            "SELECT (expires_at - $1) / $2 AS d, COUNT(*) FROM managed_certificates \
             WHERE expires_at > $3 AND expires_at < $4 AND status NOT IN ('Revoked', 'Archived') \
             GROUP BY d",
        )
        .arg(start)
        .arg(DAY_MICROS)
        .arg(to_micros(now))
        .arg(end)
        .fetch_all(&mut c.conn())
        .await?;
        Ok(buckets(rows, days))
    }

    /// Jobs completed and failed on each of the `days` UTC days ending today, by the day they
    /// finished.
    pub async fn job_trends(&self, now: OffsetDateTime, days: u32) -> Result<Vec<(i64, i64)>> {
        let end = day_start(now) + DAY_MICROS;
        let start = end - i64::from(days) * DAY_MICROS;
        let mut c = self.reader().await?;
        let rows: Vec<(i64, String, i64)> = Sql::new(
            "SELECT (completed_at - $1) / $2 AS d, status, COUNT(*) FROM jobs \
             WHERE completed_at >= $1 AND completed_at < $3 AND status IN ('Completed', 'Failed') \
             GROUP BY d, status",
        )
        .arg(start)
        .arg(DAY_MICROS)
        .arg(end)
        .fetch_all(&mut c.conn())
        .await?;
        let (completed, failed): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, s, _)| s == "Completed");
        let completed = buckets(completed.into_iter().map(|(d, _, n)| (d, n)).collect(), days);
        let failed = buckets(failed.into_iter().map(|(d, _, n)| (d, n)).collect(), days);
        Ok(completed.into_iter().zip(failed).collect())
    }

    /// Certificate versions issued on each of the `days` UTC days ending today.
    pub async fn issuance_rate(&self, now: OffsetDateTime, days: u32) -> Result<Vec<i64>> {
        let end = day_start(now) + DAY_MICROS;
        let start = end - i64::from(days) * DAY_MICROS;
        let mut c = self.reader().await?;
        let rows: Vec<(i64, i64)> = Sql::new(
            "SELECT (created_at - $1) / $2 AS d, COUNT(*) FROM certificate_versions \
             WHERE created_at >= $1 AND created_at < $3 GROUP BY d",
        )
        .arg(start)
        .arg(DAY_MICROS)
        .arg(end)
        .fetch_all(&mut c.conn())
        .await?;
        Ok(buckets(rows, days))
    }

    /// Test support: inserts `count` notification rows in `status` with plain SQL, as the
    /// outbox would have written them.
    #[cfg(feature = "testing")]
    pub async fn insert_test_notifications(&self, status: &str, count: usize, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        for _ in 0..count {
            Sql::new(
                "INSERT INTO notifications (id, type, channel, recipient, subject, status, created_at, updated_at) \
                 VALUES ($1, 'ExpirationWarning', 'Email', 'ops@example.com', 'test', $2, $3, $3)",
            )
            .arg(crate::new_id("notif"))
            .arg(status)
            .arg(to_micros(now))
            .execute(&mut tx.conn())
            .await?;
        }
        tx.commit().await
    }

    /// Test support: sets a certificate's status and expiry directly.
    #[cfg(feature = "testing")]
    pub async fn set_test_certificate_state(
        &self,
        id: &str,
        status: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        Sql::new("UPDATE managed_certificates SET status = $1, expires_at = $2 WHERE id = $3")
            .arg(status)
            .arg(expires_at.map(to_micros))
            .arg(id)
            .execute(&mut tx.conn())
            .await?;
        tx.commit().await
    }

    /// Test support: ends a job in `status` at `completed_at` directly.
    #[cfg(feature = "testing")]
    pub async fn set_test_job_finished(&self, id: &str, status: &str, completed_at: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        Sql::new("UPDATE jobs SET status = $1, completed_at = $2 WHERE id = $3")
            .arg(status)
            .arg(to_micros(completed_at))
            .arg(id)
            .execute(&mut tx.conn())
            .await?;
        tx.commit().await
    }

    /// Test support: records a placeholder version of a certificate created at `created_at`.
    #[cfg(feature = "testing")]
    pub async fn insert_test_version(&self, certificate_id: &str, created_at: OffsetDateTime) -> Result<()> {
        let id = crate::new_id("ver");
        let mut tx = self.begin().await?;
        Sql::new(
            "INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before, not_after, \
             fingerprint_sha256, pem_chain, created_at) VALUES ($1, $2, $3, $4, $4, $3, '', $4)",
        )
        .arg(id.clone())
        .arg(certificate_id)
        .arg(id)
        .arg(to_micros(created_at))
        .execute(&mut tx.conn())
        .await?;
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_utc_midnight_and_buckets_drop_outliers() {
        let t = time::macros::datetime!(2026-03-01 10:00:00 UTC);
        assert_eq!(day_start(t), to_micros(time::macros::datetime!(2026-03-01 00:00:00 UTC)));
        assert_eq!(buckets(vec![(0, 2), (2, 1), (3, 9), (-1, 4)], 3), vec![2, 0, 1]);
    }
}
