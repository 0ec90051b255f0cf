//! What certctl keeps as an ACME *client*: its sealed account at each ACME issuer's CA, the
//! renewal windows those CAs suggest (RFC 9773), and revocations done at such a CA (which have
//! no local CA to record them under).

use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{AuditEntry, append};
use crate::common::Actor;
use crate::sql::Sql;
use crate::{Result, Store, StoreError, from_micros, to_micros};

/// The sealed account of an ACME issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeIssuerAccount {
    pub issuer_id: String,
    /// The directory the account belongs to; a different configured directory needs a new one.
    pub directory_url: String,
    pub account_url: String,
    pub sealed_credentials: Vec<u8>,
}

/// A renewal window an ACME CA suggests for one issued version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalWindow {
    pub certificate_id: String,
    pub serial_number: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// The moment chosen inside the window; the renewal scan starts a renewal after it.
    pub renew_at: OffsetDateTime,
    pub checked_at: OffsetDateTime,
}

/// A revocation done at an external ACME CA.
#[derive(Debug, Clone)]
pub struct ExternalRevocation {
    pub certificate_id: String,
    pub issuer_id: String,
    pub serial_number: String,
    pub reason: String,
}

impl Store {
    pub async fn acme_issuer_account(&self, issuer_id: &str) -> Result<Option<AcmeIssuerAccount>> {
        let mut c = self.reader().await?;
        let row: Option<(String, String, Vec<u8>)> = Sql::new(
            "SELECT directory_url, account_url, sealed_credentials FROM acme_issuer_accounts WHERE issuer_id = $1",
        )
        .arg(issuer_id)
        .fetch_optional(&mut c.conn())
        .await?;
        Ok(row.map(|(directory_url, account_url, sealed_credentials)| AcmeIssuerAccount {
            issuer_id: issuer_id.to_owned(),
            directory_url,
            account_url,
            sealed_credentials,
        }))
    }

    /// Stores (or replaces) an issuer's account.
    pub async fn put_acme_issuer_account(
        &self,
        account: &AcmeIssuerAccount,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        Sql::new(
            "INSERT INTO acme_issuer_accounts (issuer_id, directory_url, account_url, sealed_credentials, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (issuer_id) DO UPDATE SET directory_url = excluded.directory_url, \
             account_url = excluded.account_url, sealed_credentials = excluded.sealed_credentials, \
             created_at = excluded.created_at",
        )
        .arg(&account.issuer_id)
        .arg(&account.directory_url)
        .arg(&account.account_url)
        .arg(account.sealed_credentials.clone())
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let entry = AuditEntry::new(
            actor.name.clone(),
            actor.kind,
            "acme_issuer_account_created",
            "issuer",
            &account.issuer_id,
            json!({"directory_url": account.directory_url, "account_url": account.account_url}),
        );
        append(&mut tx, &[entry], now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the suggested renewal window of a certificate's current version.
    pub async fn put_renewal_window(&self, w: &RenewalWindow) -> Result<()> {
        let mut c = self.writer().await?;
        Sql::new(
            "INSERT INTO acme_renewal_windows (certificate_id, serial_number, window_start, window_end, renew_at, \
             checked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (certificate_id) DO UPDATE SET \
             serial_number = excluded.serial_number, window_start = excluded.window_start, \
             window_end = excluded.window_end, renew_at = excluded.renew_at, checked_at = excluded.checked_at",
        )
        .arg(&w.certificate_id)
        .arg(&w.serial_number)
        .arg(to_micros(w.start))
        .arg(to_micros(w.end))
        .arg(to_micros(w.renew_at))
        .arg(to_micros(w.checked_at))
        .execute(&mut c.conn())
        .await?;
        Ok(())
    }

    /// Forgets a certificate's suggested renewal window.
    pub async fn clear_renewal_window(&self, certificate_id: &str) -> Result<()> {
        let mut c = self.writer().await?;
        Sql::new("DELETE FROM acme_renewal_windows WHERE certificate_id = $1")
            .arg(certificate_id)
            .execute(&mut c.conn())
            .await?;
        Ok(())
    }

    pub async fn renewal_window(&self, certificate_id: &str) -> Result<Option<RenewalWindow>> {
        let mut c = self.reader().await?;
        let row: Option<(String, i64, i64, i64, i64)> = Sql::new(
            "SELECT serial_number, window_start, window_end, renew_at, checked_at FROM acme_renewal_windows \
             WHERE certificate_id = $1",
        )
        .arg(certificate_id)
        .fetch_optional(&mut c.conn())
        .await?;
        Ok(row.map(|(serial_number, start, end, renew_at, checked_at)| RenewalWindow {
            certificate_id: certificate_id.to_owned(),
            serial_number,
            start: from_micros(start),
            end: from_micros(end),
            renew_at: from_micros(renew_at),
            checked_at: from_micros(checked_at),
        }))
    }

    /// Marks a certificate revoked after its ACME CA revoked it: status, open jobs cancelled,
    /// audit record and revocation alert, in one transaction.
    pub async fn record_external_revocation(
        &self,
        rev: &ExternalRevocation,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime> {
        let mut tx = self.begin().await?;
        let ts = to_micros(now);
        let changed = Sql::new(
            "UPDATE managed_certificates SET status = 'Revoked', revoked_at = $2, revocation_reason = $3, updated_at = $2 \
             WHERE id = $1 AND status NOT IN ('Revoked', 'Archived')",
        )
        .arg(&rev.certificate_id)
        .arg(ts)
        .arg(&rev.reason)
        .execute(&mut tx.conn())
        .await?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!(
                "certificate '{}' is already revoked or archived",
                rev.certificate_id
            )));
        }
        crate::issuance::cancel_open_jobs(&mut tx, &rev.certificate_id, "certificate revoked", now).await?;
        let details = json!({
            "serial_number": rev.serial_number,
            "reason": rev.reason,
            "issuer_id": rev.issuer_id,
            "revoked_at_issuer": true,
        });
        let entry = AuditEntry::new(
            actor.name.clone(),
            actor.kind,
            "certificate_revoked",
            "certificate",
            &rev.certificate_id,
            details,
        );
        append(&mut tx, &[entry], now).await?;
        let routing =
            crate::channels::route_certificate_event(&mut tx, &rev.certificate_id, certctl_api::SeverityTier::Critical)
                .await?;
        if let Some(routing) = routing {
            let items: Vec<crate::NewNotification> = routing
                .channels
                .iter()
                .map(|channel| crate::NewNotification {
                    notification_type: certctl_api::NotificationType::Revocation,
                    channel: channel.clone(),
                    recipient: routing.owner_email.clone(),
                    certificate_id: Some(rev.certificate_id.clone()),
                    subject: format!("Certificate {} revoked", routing.certificate_name),
                    message: format!(
                        "Certificate {} (serial {}) was revoked by {}. Reason: {}.",
                        routing.certificate_name, rev.serial_number, actor.name, rev.reason
                    ),
                    payload: json!({ "serial_number": rev.serial_number, "reason": rev.reason }),
                    severity: certctl_api::SeverityTier::Critical,
                    dedup_key: Some(format!("revocation:{}:{}:{channel}", rev.certificate_id, rev.serial_number)),
                })
                .collect();
            crate::notifications::enqueue_notifications(&mut tx, &items, now).await?;
        }
        tx.commit().await?;
        Ok(from_micros(ts))
    }
}
