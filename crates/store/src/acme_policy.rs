//! The ACME server's policy state: external account binding keys, rate-limit windows shared by
//! every replica, admin "renew now" overrides of ARI windows, and the garbage collection of
//! what expires (spent nonces, abandoned orders, old rate-limit windows).

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use crate::acme::{AcmeAccount, acme_actor, acme_audit};
use crate::audit::append;
use crate::common::{Actor, must_exist, must_reference};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::Sql;
use crate::{Result, Store, StoreError, Tx, from_micros, opt_time, to_micros};

/// An EAB key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeEabKeyRecord {
    /// The key identifier clients send as the EAB JWS `kid`.
    pub id: String,
    /// The only profile whose directory accepts the key, when set.
    pub profile_id: Option<String>,
    pub note: String,
    /// The account the key bound, once used.
    pub account_id: Option<String>,
    pub used_at: Option<OffsetDateTime>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
}

/// What one garbage-collection pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcmeGcReport {
    pub nonces: u64,
    pub orders: u64,
    pub rate_windows: u64,
}

impl AcmeGcReport {
    pub fn total(&self) -> u64 {
        self.nonces + self.orders + self.rate_windows
    }
}

#[derive(Debug, FromRow, Deserialize)]
struct EabRow {
    id: String,
    profile_id: Option<String>,
    note: String,
    account_id: Option<String>,
    used_at: Option<i64>,
    created_by: String,
    created_at: i64,
}

impl Keyed for EabRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl From<EabRow> for AcmeEabKeyRecord {
    fn from(r: EabRow) -> Self {
        AcmeEabKeyRecord {
            id: r.id,
            profile_id: r.profile_id,
            note: r.note,
            account_id: r.account_id,
            used_at: opt_time(r.used_at),
            created_by: r.created_by,
            created_at: from_micros(r.created_at),
        }
    }
}

/// Binds EAB key `kid` to the account `a` being created in `tx`: `Forbidden` when the key is
/// gone, already bound an account, or restricted to another profile.
pub(crate) async fn bind_eab_key(tx: &mut Tx, kid: &str, a: &AcmeAccount, now: OffsetDateTime) -> Result<()> {
    let bound = Sql::new(
        "UPDATE acme_eab_keys SET account_id = $2, used_at = $3 WHERE id = $1 AND account_id IS NULL \
         AND (profile_id IS NULL OR profile_id = $4)",
    )
    .arg(kid)
    .arg(&a.id)
    .arg(to_micros(now))
    .arg(&a.profile_id)
    .execute(&mut tx.conn())
    .await?;
    if bound == 0 {
        return Err(StoreError::Forbidden(format!("EAB key '{kid}' is unknown or already bound an account")));
    }
    let details = json!({"account_id": a.id, "profile_id": a.profile_id});
    append(tx, &[acme_audit(&acme_actor(&a.id), "acme_eab_key_used", "acme_eab_key", kid, details)], now).await
}

const EAB_COLUMNS: &str = "SELECT id, profile_id, note, account_id, used_at, created_by, created_at FROM acme_eab_keys";

impl Store {
    /// Stores a new EAB key (sealed by the caller) and audits its creation, never the key.
    pub async fn create_acme_eab_key(
        &self,
        key: &AcmeEabKeyRecord,
        sealed_key: &[u8],
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<AcmeEabKeyRecord> {
        let mut tx = self.begin().await?;
        if let Some(profile_id) = &key.profile_id {
            must_reference(&mut tx.conn(), "certificate_profiles", "profile_id", "profile", profile_id).await?;
        }
        Sql::new(
            "INSERT INTO acme_eab_keys (id, profile_id, sealed_key, note, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .arg(&key.id)
        .arg(key.profile_id.clone())
        .arg(sealed_key.to_vec())
        .arg(&key.note)
        .arg(&key.created_by)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"profile_id": key.profile_id, "note": key.note});
        append(&mut tx, &[acme_audit(actor, "acme_eab_key_created", "acme_eab_key", &key.id, details)], now).await?;
        let mut q = Sql::new(EAB_COLUMNS);
        q.push(" WHERE id = ").push_bind(key.id.as_str());
        let row: EabRow = q.fetch_one(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// EAB keys, oldest first, paged in the database.
    pub async fn list_acme_eab_keys(&self, paging: &Paging) -> Result<Listing<AcmeEabKeyRecord>> {
        let mut c = self.reader().await?;
        let rows: Listing<EabRow> = paging::list(
            &mut c.conn(),
            EAB_COLUMNS,
            "SELECT COUNT(*) FROM acme_eab_keys",
            |q| {
                q.push(" WHERE 1=1");
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(|r| Ok::<_, StoreError>(r.into()))
    }

    /// One EAB key with its sealed HMAC key.
    pub async fn acme_eab_key(&self, id: &str) -> Result<Option<(AcmeEabKeyRecord, Vec<u8>)>> {
        let mut c = self.reader().await?;
        let sealed: Option<(Vec<u8>,)> = Sql::new("SELECT sealed_key FROM acme_eab_keys WHERE id = $1")
            .arg(id)
            .fetch_optional(&mut c.conn())
            .await?;
        let Some((sealed,)) = sealed else { return Ok(None) };
        let mut q = Sql::new(EAB_COLUMNS);
        q.push(" WHERE id = ").push_bind(id);
        let row: Option<EabRow> = q.fetch_optional(&mut c.conn()).await?;
        Ok(row.map(|r| (r.into(), sealed)))
    }

    /// Deletes an EAB key: it binds no further account (accounts it bound stay).
    pub async fn delete_acme_eab_key(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "acme_eab_keys", "EAB key", id).await?;
        Sql::new("DELETE FROM acme_eab_keys WHERE id = $1").arg(id).execute(&mut tx.conn()).await?;
        append(&mut tx, &[acme_audit(actor, "acme_eab_key_deleted", "acme_eab_key", id, json!({}))], now).await?;
        tx.commit().await
    }

    /// Counts one event in `bucket`'s window starting at `window_start` and returns the
    /// window's count, this event included: one upsert, atomic across replicas.
    pub async fn acme_rate_hit(
        &self,
        bucket: &str,
        window_start: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let (hits,): (i64,) = Sql::new(
            "INSERT INTO acme_rate_limits (bucket, window_start, hits, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = acme_rate_limits.hits + 1 RETURNING hits",
        )
        .arg(bucket)
        .arg(to_micros(window_start))
        .arg(to_micros(expires_at))
        .fetch_one(&mut tx.conn())
        .await?;
        tx.commit().await?;
        Ok(hits)
    }

    /// Sets the ARI window of one certificate (`Some(id)`) or of every certificate an issuer
    /// issued (`issuer_id`) to `[start, end]`; returns how many certificates it covers.
    pub async fn acme_renew_now(
        &self,
        certificate_id: Option<&str>,
        issuer_id: Option<&str>,
        start: OffsetDateTime,
        end: OffsetDateTime,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let (kind, id, filter) = match (certificate_id, issuer_id) {
            (Some(id), _) => {
                must_exist(&mut tx.conn(), "managed_certificates", "certificate", id).await?;
                ("certificate", id, "id")
            }
            (None, Some(id)) => {
                must_exist(&mut tx.conn(), "issuers", "issuer", id).await?;
                ("issuer", id, "issuer_id")
            }
            (None, None) => {
                return Err(StoreError::Invalid {
                    field: "certificate_id",
                    message: "name a certificate or an issuer".into(),
                });
            }
        };
        // The WHERE before ON CONFLICT keeps SQLite's parser from reading ON as a join.
        let sql = if filter == "id" {
            "INSERT INTO acme_renewal_overrides (certificate_id, window_start, window_end, created_by, created_at) \
             SELECT id, $2, $3, $4, $5 FROM managed_certificates WHERE id = $1 \
             ON CONFLICT (certificate_id) DO UPDATE SET window_start = $2, window_end = $3, created_by = $4, \
             created_at = $5"
        } else {
            "INSERT INTO acme_renewal_overrides (certificate_id, window_start, window_end, created_by, created_at) \
             SELECT id, $2, $3, $4, $5 FROM managed_certificates WHERE issuer_id = $1 \
             ON CONFLICT (certificate_id) DO UPDATE SET window_start = $2, window_end = $3, created_by = $4, \
             created_at = $5"
        };
        let changed = Sql::new(sql)
            .arg(id)
            .arg(to_micros(start))
            .arg(to_micros(end))
            .arg(&actor.name)
            .arg(to_micros(now))
            .execute(&mut tx.conn())
            .await?;
        let details = json!({
            "certificates": changed, "window_start": start.unix_timestamp(), "window_end": end.unix_timestamp(),
        });
        append(&mut tx, &[acme_audit(actor, "acme_renew_now", kind, id, details)], now).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// The admin-set ARI window of a certificate, if any.
    pub async fn acme_renewal_override(
        &self,
        certificate_id: &str,
    ) -> Result<Option<(OffsetDateTime, OffsetDateTime)>> {
        let mut c = self.reader().await?;
        let row: Option<(i64, i64)> =
            Sql::new("SELECT window_start, window_end FROM acme_renewal_overrides WHERE certificate_id = $1")
                .arg(certificate_id)
                .fetch_optional(&mut c.conn())
                .await?;
        Ok(row.map(|(s, e)| (from_micros(s), from_micros(e))))
    }

    /// The newest PEM chain of a certificate with the CA that issued it.
    pub async fn acme_certificate_download(&self, certificate_id: &str) -> Result<Option<(String, Option<String>)>> {
        let mut c = self.reader().await?;
        let row: Option<(String, Option<String>)> = Sql::new(
            "SELECT pem_chain, issuer_ca_id FROM certificate_versions WHERE certificate_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .arg(certificate_id)
        .fetch_optional(&mut c.conn())
        .await?;
        Ok(row)
    }

    /// One bounded garbage-collection pass: at most `batch` rows of each kind. Spent nonces
    /// past expiry, orders that never became valid and expired before `order_cutoff` (their
    /// authorizations and challenges cascade), and rate-limit windows past expiry.
    pub async fn acme_gc(&self, now: OffsetDateTime, order_cutoff: OffsetDateTime, batch: i64) -> Result<AcmeGcReport> {
        let mut tx = self.begin().await?;
        let nonces = Sql::new(
            "DELETE FROM acme_spent_nonces WHERE nonce IN \
             (SELECT nonce FROM acme_spent_nonces WHERE expires_at < $1 LIMIT $2)",
        )
        .arg(to_micros(now))
        .arg(batch)
        .execute(&mut tx.conn())
        .await?;
        let orders = Sql::new(
            "DELETE FROM acme_orders WHERE id IN (SELECT id FROM acme_orders WHERE status IN \
             ('pending', 'ready', 'invalid') AND expires_at < $1 LIMIT $2)",
        )
        .arg(to_micros(order_cutoff))
        .arg(batch)
        .execute(&mut tx.conn())
        .await?;
        let rate_windows = Sql::new(
            "DELETE FROM acme_rate_limits WHERE (bucket, window_start) IN \
             (SELECT bucket, window_start FROM acme_rate_limits WHERE expires_at < $1 LIMIT $2)",
        )
        .arg(to_micros(now))
        .arg(batch)
        .execute(&mut tx.conn())
        .await?;
        tx.commit().await?;
        Ok(AcmeGcReport { nonces, orders, rate_windows })
    }
}
