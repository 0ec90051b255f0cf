//! Discovered certificates: what agents find on their hosts, upserted by (fingerprint, agent,
//! path), and their triage into the managed inventory.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{DiscoveredCertificate, DiscoverySummary};

use crate::audit::{AuditEntry, append};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Actor, Result, Store, StoreError, from_micros, new_id, opt_time, parse_json, to_micros};

/// One certificate as found, with the facts the server read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDiscovery {
    pub source_path: String,
    pub source_format: String,
    pub fingerprint_sha256: String,
    pub common_name: String,
    pub sans: Vec<String>,
    pub serial_number: String,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key_algorithm: String,
    pub key_size: i64,
    pub is_ca: bool,
    pub pem_data: String,
}

#[derive(Debug, FromRow, Deserialize)]
struct DiscoveredRow {
    id: String,
    agent_id: String,
    source_path: String,
    source_format: String,
    fingerprint_sha256: String,
    common_name: String,
    sans: String,
    serial_number: String,
    subject_dn: String,
    issuer_dn: String,
    not_before: i64,
    not_after: i64,
    key_algorithm: String,
    key_size: i64,
    is_ca: bool,
    pem_data: String,
    status: String,
    managed_certificate_id: Option<String>,
    first_seen_at: i64,
    last_seen_at: i64,
    dismissed_at: Option<i64>,
    created_at: i64,
}

impl Keyed for DiscoveredRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl DiscoveredRow {
    fn into_api(self) -> Result<DiscoveredCertificate> {
        Ok(DiscoveredCertificate {
            sans: parse_json("discovered_certificates.sans", &self.sans)?,
            id: self.id,
            agent_id: self.agent_id,
            source_path: self.source_path,
            source_format: self.source_format,
            fingerprint_sha256: self.fingerprint_sha256,
            common_name: self.common_name,
            serial_number: self.serial_number,
            subject_dn: self.subject_dn,
            issuer_dn: self.issuer_dn,
            not_before: from_micros(self.not_before),
            not_after: from_micros(self.not_after),
            key_algorithm: self.key_algorithm,
            key_size: self.key_size,
            is_ca: self.is_ca,
            pem_data: self.pem_data,
            status: self.status,
            managed_certificate_id: self.managed_certificate_id,
            first_seen_at: from_micros(self.first_seen_at),
            last_seen_at: from_micros(self.last_seen_at),
            dismissed_at: opt_time(self.dismissed_at),
        })
    }
}

const COLUMNS: &str = "SELECT id, agent_id, source_path, source_format, fingerprint_sha256, common_name, sans, \
                       serial_number, subject_dn, issuer_dn, not_before, not_after, key_algorithm, key_size, is_ca, \
                       pem_data, status, managed_certificate_id, first_seen_at, last_seen_at, dismissed_at, created_at \
                       FROM discovered_certificates";

/// The triage states.
pub const DISCOVERY_STATUSES: [&str; 3] = ["Unmanaged", "Managed", "Dismissed"];

async fn fetch(conn: &mut Conn<'_>, id: &str) -> Result<DiscoveredCertificate> {
    let mut q = Sql::new(COLUMNS);
    q.push(" WHERE id = ").push_bind(id);
    let row: Option<DiscoveredRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| StoreError::NotFound { resource: "discovered certificate", id: id.to_owned() })?.into_api()
}

impl Store {
    /// Records one scan of an agent: each certificate is inserted, or, when the agent reported
    /// the same certificate at the same path before, its `last_seen_at` moves (its triage state
    /// is kept). Returns (new, updated).
    pub async fn record_discoveries(
        &self,
        agent_id: &str,
        found: &[NewDiscovery],
        scan: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<(usize, usize)> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let (mut new, mut updated) = (0, 0);
        for d in found {
            let moved = Sql::new(
                "UPDATE discovered_certificates SET last_seen_at = $4, updated_at = $4 \
                 WHERE fingerprint_sha256 = $1 AND agent_id = $2 AND source_path = $3",
            )
            .arg(&d.fingerprint_sha256)
            .arg(agent_id)
            .arg(&d.source_path)
            .arg(ts)
            .execute(&mut tx.conn())
            .await?;
            if moved > 0 {
                updated += 1;
                continue;
            }
            Sql::new(
                "INSERT INTO discovered_certificates (id, agent_id, source_path, source_format, fingerprint_sha256, \
                 common_name, sans, serial_number, subject_dn, issuer_dn, not_before, not_after, key_algorithm, \
                 key_size, is_ca, pem_data, first_seen_at, last_seen_at, created_at, updated_at) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $17, $17)",
            )
            .arg(new_id("dcert"))
            .arg(agent_id)
            .arg(&d.source_path)
            .arg(&d.source_format)
            .arg(&d.fingerprint_sha256)
            .arg(&d.common_name)
            .arg(serde_json::to_string(&d.sans).unwrap_or_else(|_| "[]".into()))
            .arg(&d.serial_number)
            .arg(&d.subject_dn)
            .arg(&d.issuer_dn)
            .arg(to_micros(d.not_before))
            .arg(to_micros(d.not_after))
            .arg(&d.key_algorithm)
            .arg(d.key_size)
            .arg(d.is_ca)
            .arg(&d.pem_data)
            .arg(ts)
            .execute(&mut tx.conn())
            .await?;
            new += 1;
        }
        let mut details = scan;
        details["new"] = json!(new);
        details["updated"] = json!(updated);
        let actor = Actor::system();
        let entry = AuditEntry::new(actor.name, actor.kind, "discovery_scan_completed", "agent", agent_id, details);
        append(&mut tx, &[entry], now).await?;
        tx.commit().await?;
        Ok((new, updated))
    }

    pub async fn list_discovered(
        &self,
        agent_id: Option<&str>,
        status: Option<&str>,
        paging: &Paging,
    ) -> Result<Listing<DiscoveredCertificate>> {
        let mut c = self.reader().await?;
        let rows: Listing<DiscoveredRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM discovered_certificates",
            |q| {
                q.push(" WHERE 1=1");
                if let Some(a) = agent_id {
                    q.push(" AND agent_id = ").push_bind(a);
                }
                if let Some(s) = status {
                    q.push(" AND status = ").push_bind(s);
                }
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(DiscoveredRow::into_api)
    }

    pub async fn discovered(&self, id: &str) -> Result<DiscoveredCertificate> {
        let mut c = self.reader().await?;
        fetch(&mut c.conn(), id).await
    }

    /// Links a discovered certificate to a managed one. Only an `Unmanaged` or `Dismissed` row
    /// can be claimed; claiming it again is a `Conflict`.
    pub async fn claim_discovered(
        &self,
        id: &str,
        managed_certificate_id: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DiscoveredCertificate> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let current = fetch(&mut tx.conn(), id).await?;
        crate::common::must_reference(
            &mut tx.conn(),
            "managed_certificates",
            "managed_certificate_id",
            "certificate",
            managed_certificate_id,
        )
        .await?;
        let n = Sql::new(
            "UPDATE discovered_certificates SET status = 'Managed', managed_certificate_id = $2, dismissed_at = NULL, \
             updated_at = $3 WHERE id = $1 AND status <> 'Managed'",
        )
        .arg(id)
        .arg(managed_certificate_id)
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "discovered certificate '{id}' is already claimed by '{}'",
                current.managed_certificate_id.unwrap_or_default()
            )));
        }
        let details =
            json!({"managed_certificate_id": managed_certificate_id, "fingerprint": current.fingerprint_sha256});
        let entry = AuditEntry::new(
            actor.name.clone(),
            actor.kind,
            "discovery_cert_claimed",
            "discovered_certificate",
            id,
            details,
        );
        append(&mut tx, &[entry], now).await?;
        let row = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Dismisses an unmanaged discovered certificate; a claimed one is a `Conflict`.
    pub async fn dismiss_discovered(
        &self,
        id: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DiscoveredCertificate> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let current = fetch(&mut tx.conn(), id).await?;
        if current.status == "Managed" {
            return Err(StoreError::Conflict(format!(
                "discovered certificate '{id}' is claimed and cannot be dismissed"
            )));
        }
        Sql::new(
            "UPDATE discovered_certificates SET status = 'Dismissed', dismissed_at = COALESCE(dismissed_at, $2), \
             updated_at = $2 WHERE id = $1",
        )
        .arg(id)
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"fingerprint": current.fingerprint_sha256});
        let entry = AuditEntry::new(
            actor.name.clone(),
            actor.kind,
            "discovery_cert_dismissed",
            "discovered_certificate",
            id,
            details,
        );
        append(&mut tx, &[entry], now).await?;
        let row = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn discovery_summary(&self, now: OffsetDateTime) -> Result<DiscoverySummary> {
        let mut c = self.reader().await?;
        let ts = to_micros(now);
        let soon = to_micros(now + time::Duration::days(30));
        let (total, unmanaged, managed, dismissed, expired, expiring): (i64, i64, i64, i64, i64, i64) = Sql::new(
            "SELECT COUNT(*), \
             COALESCE(SUM(CASE WHEN status = 'Unmanaged' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'Managed' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'Dismissed' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'Unmanaged' AND not_after <= $1 THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'Unmanaged' AND not_after > $1 AND not_after <= $2 THEN 1 ELSE 0 END), 0) \
             FROM discovered_certificates",
        )
        .arg(ts)
        .arg(soon)
        .fetch_one(&mut c.conn())
        .await?;
        Ok(DiscoverySummary {
            total,
            unmanaged,
            managed,
            dismissed,
            unmanaged_expired: expired,
            unmanaged_expiring_30d: expiring,
        })
    }
}
