//! Issuers: certificate authority connectors with an encrypted configuration.
//!
//! The store never sees a secret in clear: callers hand it the redacted copy of a configuration,
//! which reads return, and the sealed full document, which only [`Store::issuer_sealed_config`]
//! gives back.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{Issuer, IssuerType, Name};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, Deletable, id_free, must_exist, name_free};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, from_micros, opt_time, parse_enum, parse_json, to_json, to_micros};

/// A connector configuration as stored: the copy with secrets replaced by `********` that reads
/// return, and the full document sealed by the server's key.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedConfig {
    pub redacted: Map<String, Value>,
    pub sealed: Vec<u8>,
    /// The sealed document whose secrets were merged into this one. The update is refused when
    /// the stored document has changed since, so a concurrent change of a secret is not undone.
    pub merged_from: Option<Vec<u8>>,
}

impl SealedConfig {
    /// The top-level keys, which audit records list instead of values.
    pub(crate) fn keys(&self) -> Vec<&str> {
        self.redacted.keys().map(String::as_str).collect()
    }
}

/// An issuer to create; the caller has chosen the ID, because the sealed config is bound to it.
#[derive(Debug, Clone)]
pub struct NewIssuer {
    pub id: String,
    pub name: Name,
    pub issuer_type: IssuerType,
    pub config: SealedConfig,
    pub enabled: bool,
}

/// Changes to an issuer; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct IssuerChanges {
    pub name: Option<Name>,
    pub config: Option<SealedConfig>,
    pub enabled: Option<bool>,
}

#[derive(Debug, FromRow, Deserialize)]
struct IssuerRow {
    id: String,
    name: String,
    issuer_type: String,
    config: String,
    enabled: bool,
    test_status: String,
    last_tested_at: Option<i64>,
    source: String,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for IssuerRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl IssuerRow {
    fn into_issuer(self) -> Result<Issuer> {
        Ok(Issuer {
            issuer_type: parse_enum("issuers.type", &self.issuer_type)?,
            config: parse_json("issuers.config", &self.config)?,
            id: self.id,
            name: self.name,
            enabled: self.enabled,
            test_status: self.test_status,
            last_tested_at: opt_time(self.last_tested_at),
            source: self.source,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

const COLUMNS: &str = "SELECT id, name, type AS issuer_type, config, enabled, test_status, last_tested_at, source, \
                       created_at, updated_at FROM issuers";

fn audit(actor: &Actor, action: &str, id: &str, details: Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "issuer", id, details)
}

async fn fetch(conn: &mut Conn<'_>, id: &str) -> Result<Issuer> {
    let mut q = Sql::new(COLUMNS);
    q.push(" WHERE id = ").push_bind(id);
    let row: Option<IssuerRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| StoreError::NotFound { resource: "issuer", id: id.to_owned() })?.into_issuer()
}

/// Appends `, config = …, encrypted_config = …` to an UPDATE's SET list.
pub(crate) fn push_config_update(q: &mut Sql, config: &SealedConfig) {
    q.push(", config = ").push_bind(to_json(&config.redacted));
    q.push(", encrypted_config = ").push_bind(config.sealed.clone());
}

/// Appends the optimistic-concurrency condition of a merged config to an UPDATE's WHERE.
pub(crate) fn push_config_guard(q: &mut Sql, config: Option<&SealedConfig>) {
    if let Some(previous) = config.and_then(|c| c.merged_from.clone()) {
        q.push(" AND encrypted_config = ").push_bind(previous);
    }
}

impl Store {
    pub async fn list_issuers(&self, paging: &Paging) -> Result<Listing<Issuer>> {
        let mut c = self.reader().await?;
        let rows: Listing<IssuerRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM issuers",
            |q| {
                q.push(" WHERE 1=1");
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(IssuerRow::into_issuer)
    }

    pub async fn issuer(&self, id: &str) -> Result<Issuer> {
        let mut c = self.reader().await?;
        fetch(&mut c.conn(), id).await
    }

    /// The sealed full configuration of an issuer; `None` when none is stored.
    pub async fn issuer_sealed_config(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let mut c = self.reader().await?;
        let row: Option<(Option<Vec<u8>>,)> = Sql::new("SELECT encrypted_config FROM issuers WHERE id = $1")
            .arg(id)
            .fetch_optional(&mut c.conn())
            .await?;
        row.map(|(sealed,)| sealed).ok_or_else(|| StoreError::NotFound { resource: "issuer", id: id.to_owned() })
    }

    pub async fn create_issuer(&self, new: &NewIssuer, actor: &Actor, now: OffsetDateTime) -> Result<Issuer> {
        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "issuers", "issuer", &new.id).await?;
        name_free(&mut tx.conn(), "issuers", "issuer", new.name.as_str(), None).await?;
        Sql::new(
            "INSERT INTO issuers (id, name, type, config, encrypted_config, enabled, test_status, source, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'untested', 'database', $7, $7)",
        )
        .arg(&new.id)
        .arg(new.name.as_str())
        .arg(new.issuer_type.as_str())
        .arg(to_json(&new.config.redacted))
        .arg(new.config.sealed.clone())
        .arg(new.enabled)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({
            "name": new.name,
            "type": new.issuer_type,
            "enabled": new.enabled,
            "config_keys": new.config.keys(),
        });
        append(&mut tx, &[audit(actor, "issuer_created", &new.id, details)], now).await?;
        let issuer = fetch(&mut tx.conn(), &new.id).await?;
        tx.commit().await?;
        Ok(issuer)
    }

    pub async fn update_issuer(
        &self,
        id: &str,
        changes: &IssuerChanges,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Issuer> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "issuers", "issuer", id).await?;
        if let Some(name) = &changes.name {
            name_free(&mut tx.conn(), "issuers", "issuer", name.as_str(), Some(id)).await?;
        }
        let mut q = Sql::new("UPDATE issuers SET updated_at = $1").arg(to_micros(now));
        if let Some(name) = &changes.name {
            q.push(", name = ").push_bind(name.as_str());
        }
        if let Some(enabled) = changes.enabled {
            q.push(", enabled = ").push_bind(enabled);
        }
        if let Some(config) = &changes.config {
            push_config_update(&mut q, config);
        }
        q.push(" WHERE id = ").push_bind(id);
        push_config_guard(&mut q, changes.config.as_ref());
        if q.execute(&mut tx.conn()).await? == 0 {
            return Err(StoreError::Conflict(format!(
                "issuer '{id}' configuration changed while this update was prepared; retry it"
            )));
        }
        let details = json!({
            "name": changes.name,
            "enabled": changes.enabled,
            "config_keys": changes.config.as_ref().map(SealedConfig::keys),
        });
        append(&mut tx, &[audit(actor, "issuer_updated", id, details)], now).await?;
        let issuer = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(issuer)
    }

    pub async fn delete_issuer(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        const ISSUER: Deletable = Deletable {
            table: "issuers",
            resource: "issuer",
            kind: "issuer",
            referrers: &[("SELECT COUNT(*) FROM managed_certificates WHERE issuer_id = $1", "certificates")],
        };
        self.delete_unreferenced(&ISSUER, id, actor, now).await
    }

    /// Records the outcome of a connection test (`success` or `failed`) and when it ran.
    pub async fn record_issuer_test(&self, id: &str, passed: bool, now: OffsetDateTime) -> Result<Issuer> {
        let mut tx = self.begin().await?;
        let changed = Sql::new("UPDATE issuers SET test_status = $2, last_tested_at = $3 WHERE id = $1")
            .arg(id)
            .arg(if passed { "success" } else { "failed" })
            .arg(to_micros(now))
            .execute(&mut tx.conn())
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound { resource: "issuer", id: id.to_owned() });
        }
        let issuer = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(issuer)
    }
}
