//! The certificate digest: certificates expiring within a window (expired ones included,
//! revoked and archived ones left out), counted by status in SQL, with the soonest of them.

use serde::Deserialize;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{DigestCertificate, DigestStatusCount, DigestSummary};

use crate::sql::Sql;
use crate::{Result, Store, from_micros, parse_enum, to_micros};

/// Certificates listed by one digest; the counts cover the whole window.
pub const DIGEST_LIST_LIMIT: i64 = 500;

#[derive(Debug, FromRow, Deserialize)]
struct StatusRow {
    status: String,
    n: i64,
}

#[derive(Debug, FromRow, Deserialize)]
struct EntryRow {
    id: String,
    name: String,
    common_name: String,
    status: String,
    expires_at: i64,
    owner_email: Option<String>,
}

impl Store {
    /// The digest of certificates expiring before `now + window_days`.
    pub async fn digest(&self, now: OffsetDateTime, window_days: i64) -> Result<DigestSummary> {
        let mut c = self.reader().await?;
        let until = to_micros(now + time::Duration::days(window_days));
        let total_certificates = Sql::new("SELECT COUNT(*) FROM managed_certificates").fetch_i64(&mut c.conn()).await?;
        let counts: Vec<StatusRow> = Sql::new(
            "SELECT status, COUNT(*) AS n FROM managed_certificates WHERE \
             expires_at IS NOT NULL AND expires_at <= $1 AND status NOT IN ('Revoked', 'Archived') \
             GROUP BY status ORDER BY status",
        )
        .arg(until)
        .fetch_all(&mut c.conn())
        .await?;
        let rows: Vec<EntryRow> = Sql::new(
            "SELECT c.id, c.name, c.common_name, c.status, c.expires_at, o.email AS owner_email \
             FROM managed_certificates c LEFT JOIN owners o ON o.id = c.owner_id \
             WHERE c.expires_at IS NOT NULL AND c.expires_at <= $1 AND c.status NOT IN ('Revoked', 'Archived') \
             ORDER BY c.expires_at, c.id LIMIT $2",
        )
        .arg(until)
        .arg(DIGEST_LIST_LIMIT)
        .fetch_all(&mut c.conn())
        .await?;
        let by_status = counts
            .into_iter()
            .map(|r| Ok(DigestStatusCount { status: parse_enum("status", &r.status)?, count: r.n }))
            .collect::<Result<Vec<_>>>()?;
        let certificates = rows
            .into_iter()
            .map(|r| {
                let expires_at = from_micros(r.expires_at);
                let remaining = expires_at - now;
                let days_left =
                    if remaining.is_negative() { -(-remaining).whole_days() - 1 } else { remaining.whole_days() };
                Ok(DigestCertificate {
                    status: parse_enum("status", &r.status)?,
                    id: r.id,
                    name: r.name,
                    common_name: r.common_name,
                    expires_at,
                    days_left,
                    owner_email: r.owner_email.unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DigestSummary {
            generated_at: now,
            window_days,
            total_certificates,
            expiring_total: by_status.iter().map(|s| s.count).sum(),
            by_status,
            certificates,
        })
    }
}
