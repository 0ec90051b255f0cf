//! API keys: stored as SHA-256 hashes, looked up by hash.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{ApiKey, Role};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, must_exist, name_free};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::Sql;
use crate::{Result, Store, from_micros, new_id, parse_enum, to_micros};

/// A key to store: its hash, never the key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    /// Lower-case hex SHA-256 of the key.
    pub key_hash: String,
    pub created_by: String,
}

/// A stored key with its hash, for authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub key: ApiKey,
    pub key_hash: String,
}

#[derive(Debug, FromRow, Deserialize)]
struct ApiKeyRow {
    id: String,
    name: String,
    role: String,
    key_hash: String,
    created_by: String,
    created_at: i64,
}

impl Keyed for ApiKeyRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl ApiKeyRow {
    fn into_record(self) -> Result<ApiKeyRecord> {
        Ok(ApiKeyRecord {
            key: ApiKey {
                role: parse_enum("api_keys.role", &self.role)?,
                id: self.id,
                name: self.name,
                created_by: self.created_by,
                created_at: from_micros(self.created_at),
            },
            key_hash: self.key_hash,
        })
    }
}

const COLUMNS: &str = "SELECT id, name, role, key_hash, created_by, created_at FROM api_keys";

impl Store {
    pub async fn list_api_keys(&self, paging: &Paging) -> Result<Listing<ApiKey>> {
        let mut c = self.reader().await?;
        let rows: Listing<ApiKeyRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM api_keys",
            |q| {
                q.push(" WHERE 1=1");
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(|r| r.into_record().map(|r| r.key))
    }

    /// The key whose hash is `key_hash`, if any.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let mut c = self.reader().await?;
        let row: Option<ApiKeyRow> =
            Sql::new("SELECT id, name, role, key_hash, created_by, created_at FROM api_keys WHERE key_hash = $1")
                .arg(key_hash)
                .fetch_optional(&mut c.conn())
                .await?;
        row.map(ApiKeyRow::into_record).transpose()
    }

    pub async fn count_api_keys(&self) -> Result<i64> {
        let mut c = self.reader().await?;
        Sql::new("SELECT COUNT(*) FROM api_keys").fetch_i64(&mut c.conn()).await
    }

    pub async fn create_api_key(&self, new: &NewApiKey, actor: &Actor, now: OffsetDateTime) -> Result<ApiKey> {
        let id = new_id("key");
        let mut tx = self.begin().await?;
        name_free(&mut tx.conn(), "api_keys", "API key", &new.name, None).await?;
        Sql::new(
            "INSERT INTO api_keys (id, name, role, key_hash, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .arg(&id)
        .arg(new.name.as_str())
        .arg(new.role.as_str())
        .arg(new.key_hash.as_str())
        .arg(new.created_by.as_str())
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let entry = AuditEntry::new(
            actor.name.clone(),
            actor.kind,
            "api_key_created",
            "api_key",
            &id,
            json!({"name": new.name, "role": new.role}),
        );
        append(&mut tx, &[entry], now).await?;
        let row: ApiKeyRow =
            Sql::new("SELECT id, name, role, key_hash, created_by, created_at FROM api_keys WHERE id = $1")
                .arg(&id)
                .fetch_one(&mut tx.conn())
                .await?;
        tx.commit().await?;
        Ok(row.into_record()?.key)
    }

    /// Deletes a key and returns its hash so caches can drop it.
    pub async fn delete_api_key(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<String> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "api_keys", "API key", id).await?;
        let (hash, name, role): (String, String, String) =
            Sql::new("SELECT key_hash, name, role FROM api_keys WHERE id = $1")
                .arg(id)
                .fetch_one(&mut tx.conn())
                .await?;
        if role == Role::Admin.as_str() {
            let admins =
                Sql::new("SELECT COUNT(*) FROM api_keys WHERE role = 'admin'").fetch_i64(&mut tx.conn()).await?;
            if admins <= 1 {
                return Err(crate::StoreError::Conflict(format!(
                    "API key '{name}' is the last admin key; create another admin key before deleting it"
                )));
            }
        }
        Sql::new("DELETE FROM api_keys WHERE id = $1").arg(id).execute(&mut tx.conn()).await?;
        let entry =
            AuditEntry::new(actor.name.clone(), actor.kind, "api_key_deleted", "api_key", id, json!({"name": name}));
        append(&mut tx, &[entry], now).await?;
        tx.commit().await?;
        Ok(hash)
    }
}
