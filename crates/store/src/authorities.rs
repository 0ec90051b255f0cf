//! Certificate authorities of local-CA issuers, their revocations and OCSP responder keys.
//!
//! Keys arrive sealed: the server encrypts them before they reach the store, so the database
//! never holds a CA key in the clear.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, must_exist, must_reference};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, from_micros, opt_time, parse_json, to_json, to_micros};

/// Lifecycle of a CA: an active CA issues; a retiring one only signs its CRL and OCSP
/// responses; a retired one does nothing new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaState {
    Active,
    Retiring,
    Retired,
}

impl CaState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaState::Active => "active",
            CaState::Retiring => "retiring",
            CaState::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "active" => Ok(CaState::Active),
            "retiring" => Ok(CaState::Retiring),
            "retired" => Ok(CaState::Retired),
            other => Err(StoreError::Corrupt(format!("certificate_authorities.state: unexpected value '{other}'"))),
        }
    }
}

/// A stored CA.
#[derive(Debug, Clone, PartialEq)]
pub struct CaRecord {
    pub id: String,
    pub issuer_id: String,
    pub parent_ca_id: Option<String>,
    pub name: String,
    pub state: CaState,
    /// `generated`, `imported` or `intermediate`.
    pub source: String,
    pub cert_pem: String,
    /// The CA's ancestors, nearest first; empty for a root.
    pub chain_pem: String,
    pub sealed_key: Vec<u8>,
    pub subject: String,
    pub serial_number: String,
    pub key_algorithm: String,
    pub path_len: Option<i64>,
    pub name_constraints: serde_json::Value,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub revocation_generation: i64,
    pub crl_number: i64,
    pub responder: Option<StoredResponder>,
    pub retired_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The delegated OCSP responder certificate of a CA and its sealed key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponder {
    pub cert_pem: String,
    pub sealed_key: Vec<u8>,
    pub not_after: OffsetDateTime,
}

/// A CA to record. The caller picks the ID because the sealed key is bound to it.
#[derive(Debug, Clone)]
pub struct NewCa {
    pub id: String,
    pub issuer_id: String,
    pub parent_ca_id: Option<String>,
    pub name: String,
    pub source: String,
    pub cert_pem: String,
    pub chain_pem: String,
    pub sealed_key: Vec<u8>,
    pub subject: String,
    pub serial_number: String,
    pub key_algorithm: String,
    pub path_len: Option<i64>,
    pub name_constraints: serde_json::Value,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// A revocation as CRLs and OCSP need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSerial {
    pub serial_number: String,
    pub revoked_at: OffsetDateTime,
    pub reason: String,
}

/// What the database knows about one serial of one CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialStatus {
    /// The CA never issued it (as far as certctl knows).
    Unknown,
    Good,
    Revoked {
        revoked_at: OffsetDateTime,
        reason: String,
    },
}

/// A revocation to record.
#[derive(Debug, Clone)]
pub struct NewRevocation {
    pub certificate_id: String,
    pub issuer_id: String,
    pub ca_id: String,
    pub serial_number: String,
    pub reason: String,
}

#[derive(Debug, FromRow, Deserialize)]
struct CaRow {
    id: String,
    issuer_id: String,
    parent_ca_id: Option<String>,
    name: String,
    state: String,
    source: String,
    cert_pem: String,
    chain_pem: String,
    sealed_key: Vec<u8>,
    subject: String,
    serial_number: String,
    key_algorithm: String,
    path_len: Option<i64>,
    name_constraints: String,
    not_before: i64,
    not_after: i64,
    revocation_generation: i64,
    crl_number: i64,
    responder_cert_pem: Option<String>,
    responder_sealed_key: Option<Vec<u8>>,
    responder_not_after: Option<i64>,
    retired_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl CaRow {
    fn into_record(self) -> Result<CaRecord> {
        let responder = match (self.responder_cert_pem, self.responder_sealed_key, self.responder_not_after) {
            (Some(cert_pem), Some(sealed_key), Some(not_after)) => {
                Some(StoredResponder { cert_pem, sealed_key, not_after: from_micros(not_after) })
            }
            _ => None,
        };
        Ok(CaRecord {
            state: CaState::parse(&self.state)?,
            name_constraints: parse_json("certificate_authorities.name_constraints", &self.name_constraints)?,
            id: self.id,
            issuer_id: self.issuer_id,
            parent_ca_id: self.parent_ca_id,
            name: self.name,
            source: self.source,
            cert_pem: self.cert_pem,
            chain_pem: self.chain_pem,
            sealed_key: self.sealed_key,
            subject: self.subject,
            serial_number: self.serial_number,
            key_algorithm: self.key_algorithm,
            path_len: self.path_len,
            not_before: from_micros(self.not_before),
            not_after: from_micros(self.not_after),
            revocation_generation: self.revocation_generation,
            crl_number: self.crl_number,
            responder,
            retired_at: opt_time(self.retired_at),
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

const CA_COLUMNS: &str = "SELECT id, issuer_id, parent_ca_id, name, state, source, cert_pem, chain_pem, sealed_key, \
     subject, serial_number, key_algorithm, path_len, name_constraints, not_before, not_after, \
     revocation_generation, crl_number, responder_cert_pem, responder_sealed_key, responder_not_after, retired_at, \
     created_at, updated_at FROM certificate_authorities";

async fn fetch_ca(conn: &mut Conn<'_>, id: &str) -> Result<CaRecord> {
    let mut q = Sql::new(CA_COLUMNS);
    q.push(" WHERE id = ").push_bind(id);
    let row: Option<CaRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| StoreError::NotFound { resource: "certificate authority", id: id.to_owned() })?.into_record()
}

fn ca_audit(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "certificate_authority", id, details)
}

impl Store {
    pub async fn create_ca(&self, new: &NewCa, actor: &Actor, now: OffsetDateTime) -> Result<CaRecord> {
        let mut tx = self.begin().await?;
        must_reference(&mut tx.conn(), "issuers", "issuer_id", "issuer", &new.issuer_id).await?;
        if let Some(parent) = &new.parent_ca_id {
            let parent = fetch_ca(&mut tx.conn(), parent).await?;
            if parent.state != CaState::Active {
                return Err(StoreError::Conflict(format!(
                    "parent CA '{}' is {} and cannot sign new CAs",
                    parent.id,
                    parent.state.as_str()
                )));
            }
        }
        let ts = to_micros(now);
        Sql::new(
            "INSERT INTO certificate_authorities (id, issuer_id, parent_ca_id, name, state, source, cert_pem, chain_pem, \
             sealed_key, subject, serial_number, key_algorithm, path_len, name_constraints, not_before, not_after, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $16)",
        )
        .arg(&new.id)
        .arg(&new.issuer_id)
        .arg(new.parent_ca_id.clone())
        .arg(&new.name)
        .arg(&new.source)
        .arg(&new.cert_pem)
        .arg(&new.chain_pem)
        .arg(new.sealed_key.clone())
        .arg(&new.subject)
        .arg(&new.serial_number)
        .arg(&new.key_algorithm)
        .arg(new.path_len)
        .arg(to_json(&new.name_constraints))
        .arg(to_micros(new.not_before))
        .arg(to_micros(new.not_after))
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        let details = json!({
            "issuer_id": new.issuer_id,
            "parent_ca_id": new.parent_ca_id,
            "subject": new.subject,
            "serial_number": new.serial_number,
            "source": new.source,
        });
        append(&mut tx, &[ca_audit(actor, "ca_created", &new.id, details)], now).await?;
        let record = fetch_ca(&mut tx.conn(), &new.id).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub async fn ca(&self, id: &str) -> Result<CaRecord> {
        let mut c = self.reader().await?;
        fetch_ca(&mut c.conn(), id).await
    }

    /// Every CA of an issuer, oldest first.
    pub async fn issuer_cas(&self, issuer_id: &str) -> Result<Vec<CaRecord>> {
        let mut c = self.reader().await?;
        must_exist(&mut c.conn(), "issuers", "issuer", issuer_id).await?;
        let mut q = Sql::new(CA_COLUMNS);
        q.push(" WHERE issuer_id = ").push_bind(issuer_id).push(" ORDER BY created_at, id");
        let rows: Vec<CaRow> = q.fetch_all(&mut c.conn()).await?;
        rows.into_iter().map(CaRow::into_record).collect()
    }

    /// Every CA with its revocation generation, for cache invalidation across replicas.
    pub async fn ca_generations(&self) -> Result<Vec<(String, i64)>> {
        let mut c = self.reader().await?;
        Sql::new("SELECT id, revocation_generation FROM certificate_authorities").fetch_all(&mut c.conn()).await
    }

    /// Moves a CA along active → retiring → retired. Retiring needs no precondition; retiring
    /// for good needs every child CA retired first, so nothing below it is left issuing.
    pub async fn set_ca_state(&self, id: &str, to: CaState, actor: &Actor, now: OffsetDateTime) -> Result<CaRecord> {
        let mut tx = self.begin().await?;
        let ca = fetch_ca(&mut tx.conn(), id).await?;
        let allowed =
            matches!((ca.state, to), (CaState::Active, CaState::Retiring) | (CaState::Retiring, CaState::Retired));
        if !allowed {
            return Err(StoreError::Conflict(format!(
                "certificate authority '{id}' is {} and cannot become {}",
                ca.state.as_str(),
                to.as_str()
            )));
        }
        if to == CaState::Retired {
            let live =
                Sql::new("SELECT COUNT(*) FROM certificate_authorities WHERE parent_ca_id = $1 AND state <> 'retired'")
                    .arg(id)
                    .fetch_i64(&mut tx.conn())
                    .await?;
            if live > 0 {
                return Err(StoreError::Conflict(format!(
                    "certificate authority '{id}' still has {live} child CA(s) that are not retired; retire them first"
                )));
            }
        }
        let ts = to_micros(now);
        Sql::new(
            "UPDATE certificate_authorities SET state = $2, updated_at = $3, \
             retired_at = CASE WHEN $2 = 'retired' THEN $3 ELSE retired_at END WHERE id = $1 AND state = $4",
        )
        .arg(id)
        .arg(to.as_str())
        .arg(ts)
        .arg(ca.state.as_str())
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"from": ca.state.as_str(), "to": to.as_str()});
        append(&mut tx, &[ca_audit(actor, "ca_state_changed", id, details)], now).await?;
        let record = fetch_ca(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Takes the next CRL number of a CA; numbers only grow, whichever replica asks.
    pub async fn next_crl_number(&self, ca_id: &str) -> Result<i64> {
        let mut tx = self.begin().await?;
        let changed = Sql::new("UPDATE certificate_authorities SET crl_number = crl_number + 1 WHERE id = $1")
            .arg(ca_id)
            .execute(&mut tx.conn())
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound { resource: "certificate authority", id: ca_id.to_owned() });
        }
        let n = Sql::new("SELECT crl_number FROM certificate_authorities WHERE id = $1")
            .arg(ca_id)
            .fetch_i64(&mut tx.conn())
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Stores a new delegated OCSP responder for a CA, replacing the previous one.
    pub async fn set_ocsp_responder(
        &self,
        ca_id: &str,
        responder: &StoredResponder,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let changed = Sql::new(
            "UPDATE certificate_authorities SET responder_cert_pem = $2, responder_sealed_key = $3, \
             responder_not_after = $4, updated_at = $5 WHERE id = $1",
        )
        .arg(ca_id)
        .arg(&responder.cert_pem)
        .arg(responder.sealed_key.clone())
        .arg(to_micros(responder.not_after))
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        if changed == 0 {
            return Err(StoreError::NotFound { resource: "certificate authority", id: ca_id.to_owned() });
        }
        let details = json!({"not_after": responder.not_after.unix_timestamp()});
        append(&mut tx, &[ca_audit(&Actor::system(), "ocsp_responder_rotated", ca_id, details)], now).await?;
        tx.commit().await
    }

    /// Every revocation under a CA, oldest first.
    pub async fn ca_revocations(&self, ca_id: &str) -> Result<Vec<RevokedSerial>> {
        let mut c = self.reader().await?;
        let rows: Vec<(String, i64, String)> = Sql::new(
            "SELECT serial_number, revoked_at, reason FROM certificate_revocations WHERE ca_id = $1 \
             ORDER BY revoked_at, serial_number",
        )
        .arg(ca_id)
        .fetch_all(&mut c.conn())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(serial_number, at, reason)| RevokedSerial { serial_number, revoked_at: from_micros(at), reason })
            .collect())
    }

    /// The status of one serial under one CA, for OCSP.
    pub async fn serial_status(&self, ca_id: &str, serial: &str) -> Result<SerialStatus> {
        let mut c = self.reader().await?;
        let revoked: Option<(i64, String)> =
            Sql::new("SELECT revoked_at, reason FROM certificate_revocations WHERE ca_id = $1 AND serial_number = $2")
                .arg(ca_id)
                .arg(serial)
                .fetch_optional(&mut c.conn())
                .await?;
        if let Some((at, reason)) = revoked {
            return Ok(SerialStatus::Revoked { revoked_at: from_micros(at), reason });
        }
        let issued = Sql::new(
            "SELECT COUNT(*) FROM (SELECT 1 FROM certificate_versions WHERE issuer_ca_id = $1 AND serial_number = $2 \
             LIMIT 1) AS v",
        )
        .arg(ca_id)
        .arg(serial)
        .fetch_i64(&mut c.conn())
        .await?;
        Ok(if issued > 0 { SerialStatus::Good } else { SerialStatus::Unknown })
    }

    /// Serials a CA issued, newest first, up to `limit`: the set OCSP responses are pre-signed for.
    pub async fn ca_issued_serials(&self, ca_id: &str, now: OffsetDateTime, limit: i64) -> Result<Vec<String>> {
        let mut c = self.reader().await?;
        let rows: Vec<(String,)> = Sql::new(
            "SELECT serial_number FROM certificate_versions WHERE issuer_ca_id = $1 AND not_after > $2 \
             ORDER BY created_at DESC LIMIT $3",
        )
        .arg(ca_id)
        .arg(to_micros(now))
        .arg(limit)
        .fetch_all(&mut c.conn())
        .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Revokes the current version of a certificate: records the revocation, marks the
    /// certificate Revoked, cancels its open jobs and bumps the CA's revocation generation so
    /// every replica refreshes its CRL and OCSP answers. Revoking twice is a `Conflict`.
    pub async fn revoke_certificate(
        &self,
        rev: &NewRevocation,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<RevokedSerial> {
        let mut tx = self.begin().await?;
        let status: Option<(String,)> = Sql::new("SELECT status FROM managed_certificates WHERE id = $1")
            .arg(&rev.certificate_id)
            .fetch_optional(&mut tx.conn())
            .await?;
        let Some((status,)) = status else {
            return Err(StoreError::NotFound { resource: "certificate", id: rev.certificate_id.clone() });
        };
        if status == "Revoked" || status == "Archived" {
            return Err(StoreError::Conflict(format!(
                "certificate '{}' is {status} and cannot be revoked",
                rev.certificate_id
            )));
        }
        let already = Sql::new("SELECT COUNT(*) FROM certificate_revocations WHERE ca_id = $1 AND serial_number = $2")
            .arg(&rev.ca_id)
            .arg(&rev.serial_number)
            .fetch_i64(&mut tx.conn())
            .await?;
        if already > 0 {
            return Err(StoreError::Conflict(format!("serial {} is already revoked", rev.serial_number)));
        }
        let ts = to_micros(now);
        Sql::new(
            "INSERT INTO certificate_revocations (id, certificate_id, issuer_id, ca_id, serial_number, reason, revoked_by, \
             revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .arg(crate::new_id("rev"))
        .arg(&rev.certificate_id)
        .arg(&rev.issuer_id)
        .arg(&rev.ca_id)
        .arg(&rev.serial_number)
        .arg(&rev.reason)
        .arg(&actor.name)
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        Sql::new(
            "UPDATE managed_certificates SET status = 'Revoked', revoked_at = $2, revocation_reason = $3, updated_at = $2 \
             WHERE id = $1",
        )
        .arg(&rev.certificate_id)
        .arg(ts)
        .arg(&rev.reason)
        .execute(&mut tx.conn())
        .await?;
        crate::issuance::cancel_open_jobs(&mut tx, &rev.certificate_id, "certificate revoked", now).await?;
        Sql::new("UPDATE certificate_authorities SET revocation_generation = revocation_generation + 1 WHERE id = $1")
            .arg(&rev.ca_id)
            .execute(&mut tx.conn())
            .await?;
        let details = json!({
            "serial_number": rev.serial_number,
            "reason": rev.reason,
            "issuer_id": rev.issuer_id,
            "ca_id": rev.ca_id,
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
        // The revocation alert commits (or vanishes) with the revocation itself.
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
        Ok(RevokedSerial {
            serial_number: rev.serial_number.clone(),
            revoked_at: from_micros(ts),
            reason: rev.reason.clone(),
        })
    }
}
