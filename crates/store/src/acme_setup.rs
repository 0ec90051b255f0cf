//! The ACME server's configuration and replay protection: which profiles serve ACME, the
//! shared nonce key, and spent nonces.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use crate::acme::{AcmeBindingRecord, acme_audit};
use crate::audit::append;
use crate::common::{Actor, must_reference};
use crate::sql::Sql;
use crate::{Result, Store, from_micros, to_micros};

#[derive(FromRow, Deserialize)]
struct BindingRow {
    profile_id: String,
    issuer_id: String,
    owner_id: String,
    team_id: String,
    renewal_policy_id: String,
    external_account_required: bool,
    created_at: i64,
    updated_at: i64,
}

/// Nonces per INSERT: two parameters each, well under SQLite's bound-parameter limit.
const NONCE_ROWS_PER_STATEMENT: usize = 256;

impl From<BindingRow> for AcmeBindingRecord {
    fn from(r: BindingRow) -> Self {
        AcmeBindingRecord {
            profile_id: r.profile_id,
            issuer_id: r.issuer_id,
            owner_id: r.owner_id,
            team_id: r.team_id,
            renewal_policy_id: r.renewal_policy_id,
            external_account_required: r.external_account_required,
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
        }
    }
}

const BINDING_COLUMNS: &str = "SELECT profile_id, issuer_id, owner_id, team_id, renewal_policy_id, \
     external_account_required, created_at, updated_at FROM acme_bindings";

impl Store {
    /// Binds a profile to ACME (or rebinds it), checking every reference.
    pub async fn put_acme_binding(
        &self,
        b: &AcmeBindingRecord,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<AcmeBindingRecord> {
        let mut tx = self.begin().await?;
        let mut c = tx.conn();
        crate::common::must_exist(&mut c, "certificate_profiles", "profile", &b.profile_id).await?;
        must_reference(&mut c, "issuers", "issuer_id", "issuer", &b.issuer_id).await?;
        must_reference(&mut c, "owners", "owner_id", "owner", &b.owner_id).await?;
        must_reference(&mut c, "teams", "team_id", "team", &b.team_id).await?;
        must_reference(&mut c, "renewal_policies", "renewal_policy_id", "renewal policy", &b.renewal_policy_id).await?;
        let ts = to_micros(now);
        Sql::new(
            "INSERT INTO acme_bindings (profile_id, issuer_id, owner_id, team_id, renewal_policy_id, created_at, \
             updated_at, external_account_required) VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
             ON CONFLICT (profile_id) DO UPDATE SET issuer_id = $2, owner_id = $3, team_id = $4, \
             renewal_policy_id = $5, updated_at = $6, external_account_required = $7",
        )
        .arg(&b.profile_id)
        .arg(&b.issuer_id)
        .arg(&b.owner_id)
        .arg(&b.team_id)
        .arg(&b.renewal_policy_id)
        .arg(ts)
        .arg(b.external_account_required)
        .execute(&mut c)
        .await?;
        let details = json!({
            "issuer_id": b.issuer_id, "owner_id": b.owner_id, "team_id": b.team_id,
            "renewal_policy_id": b.renewal_policy_id, "external_account_required": b.external_account_required,
        });
        append(&mut tx, &[acme_audit(actor, "acme_binding_set", "profile", &b.profile_id, details)], now).await?;
        let mut q = Sql::new(BINDING_COLUMNS);
        q.push(" WHERE profile_id = ").push_bind(b.profile_id.as_str());
        let row: BindingRow = q.fetch_one(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// The ACME binding of a profile, if it serves ACME.
    pub async fn acme_binding(&self, profile_id: &str) -> Result<Option<AcmeBindingRecord>> {
        let mut c = self.reader().await?;
        let mut q = Sql::new(BINDING_COLUMNS);
        q.push(" WHERE profile_id = ").push_bind(profile_id);
        Ok(q.fetch_optional::<BindingRow>(&mut c.conn()).await?.map(Into::into))
    }

    /// Every ACME binding, by profile.
    pub async fn list_acme_bindings(&self) -> Result<Vec<AcmeBindingRecord>> {
        let mut c = self.reader().await?;
        let mut q = Sql::new(BINDING_COLUMNS);
        q.push(" ORDER BY profile_id LIMIT 1000");
        Ok(q.fetch_all::<BindingRow>(&mut c.conn()).await?.into_iter().map(Into::into).collect())
    }

    /// Records a spent nonce; false when it was spent before. With `purge`, records whose
    /// nonce has expired are deleted in the same transaction.
    pub async fn spend_acme_nonce(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
        purge: bool,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let spent = self.spend_acme_nonces(&[(nonce.to_owned(), expires_at)], purge, now).await?;
        Ok(spent[0])
    }

    /// Records a batch of spent nonces in one transaction (group commit): for each, whether
    /// this call spent it, false when it was spent before or earlier in the same batch.
    pub async fn spend_acme_nonces(
        &self,
        nonces: &[(String, OffsetDateTime)],
        purge: bool,
        now: OffsetDateTime,
    ) -> Result<Vec<bool>> {
        let mut tx = self.begin().await?;
        let mut fresh = std::collections::HashSet::with_capacity(nonces.len());
        for chunk in nonces.chunks(NONCE_ROWS_PER_STATEMENT) {
            let mut q = Sql::new("INSERT INTO acme_spent_nonces (nonce, expires_at) VALUES ");
            for (i, (nonce, expires_at)) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" });
                q.push_bind(nonce.as_str()).push(", ").push_bind(to_micros(*expires_at)).push(")");
            }
            q.push(" ON CONFLICT DO NOTHING RETURNING nonce");
            let inserted: Vec<(String,)> = q.fetch_all(&mut tx.conn()).await?;
            fresh.extend(inserted.into_iter().map(|(n,)| n));
        }
        if purge {
            Sql::new("DELETE FROM acme_spent_nonces WHERE expires_at < $1")
                .arg(to_micros(now))
                .execute(&mut tx.conn())
                .await?;
        }
        tx.commit().await?;
        // A nonce inserted by this batch belongs to its first occurrence only: a replay within
        // the batch is as spent as one from an earlier batch.
        Ok(nonces.iter().map(|(n, _)| fresh.remove(n)).collect())
    }

    /// The sealed nonce key: `candidate` when this call creates it, else the one stored first.
    pub async fn acme_nonce_key(&self, candidate: &[u8]) -> Result<Vec<u8>> {
        let mut tx = self.begin().await?;
        Sql::new("INSERT INTO acme_nonce_key (id, sealed_key) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .arg(candidate.to_vec())
            .execute(&mut tx.conn())
            .await?;
        let (key,): (Vec<u8>,) =
            Sql::new("SELECT sealed_key FROM acme_nonce_key WHERE id = 1").fetch_one(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok(key)
    }
}
