//! Dashboard sessions: a random cookie value whose SHA-256 is the row's key, bound to the API
//! key that signed in. A session ends at its expiry, at sign-out, or when its key is deleted.

use serde::Deserialize;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::Role;

use crate::sql::Sql;
use crate::{Result, Store, from_micros, parse_enum, to_micros};

/// A live session with the key it acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub key_id: String,
    pub key_name: String,
    pub role: Role,
    /// The token every form of this session must echo back.
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, FromRow, Deserialize)]
struct SessionRow {
    key_id: String,
    name: String,
    role: String,
    csrf_token: String,
    expires_at: i64,
}

impl Store {
    /// Stores a new session under the hash of its cookie value.
    pub async fn create_web_session(
        &self,
        id_hash: &str,
        key_id: &str,
        csrf_token: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let mut c = self.writer().await?;
        Sql::new(
            "INSERT INTO web_sessions (id_hash, key_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(id_hash)
        .arg(key_id)
        .arg(csrf_token)
        .arg(to_micros(now))
        .arg(to_micros(expires_at))
        .execute(&mut c.conn())
        .await?;
        Ok(())
    }

    /// The unexpired session stored under `id_hash`, with its key's current name and role.
    pub async fn web_session(&self, id_hash: &str, now: OffsetDateTime) -> Result<Option<WebSession>> {
        let mut c = self.reader().await?;
        let row: Option<SessionRow> = Sql::new(
            "SELECT s.key_id, k.name, k.role, s.csrf_token, s.expires_at FROM web_sessions s \
             JOIN api_keys k ON k.id = s.key_id WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .arg(id_hash)
        .arg(to_micros(now))
        .fetch_optional(&mut c.conn())
        .await?;
        row.map(|r| {
            Ok(WebSession {
                role: parse_enum("api_keys.role", &r.role)?,
                key_id: r.key_id,
                key_name: r.name,
                csrf_token: r.csrf_token,
                expires_at: from_micros(r.expires_at),
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out); ending an unknown session is not an error.
    pub async fn delete_web_session(&self, id_hash: &str) -> Result<()> {
        let mut c = self.writer().await?;
        Sql::new("DELETE FROM web_sessions WHERE id_hash = $1").arg(id_hash).execute(&mut c.conn()).await?;
        Ok(())
    }

    /// Removes expired sessions, at most `limit` per call; returns how many went.
    pub async fn prune_web_sessions(&self, now: OffsetDateTime, limit: i64) -> Result<u64> {
        let mut c = self.writer().await?;
        Sql::new(
            "DELETE FROM web_sessions WHERE id_hash IN \
             (SELECT id_hash FROM web_sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
        )
        .arg(to_micros(now))
        .arg(limit)
        .execute(&mut c.conn())
        .await
    }
}
