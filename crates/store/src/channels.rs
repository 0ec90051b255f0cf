//! Notification channels managed through the API, expiry-alert candidates and event routing.
//!
//! A channel's settings are stored twice: redacted as plain JSON (what the API shows) and whole,
//! sealed by the server's secret box (what the worker delivers with). The store never sees the
//! key.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{ChannelType, SeverityTier};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, id_free, name_free};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, Tx, from_micros, new_id, parse_enum, parse_json, to_json, to_micros};

/// A stored channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRecord {
    pub id: String,
    pub name: String,
    pub channel_type: ChannelType,
    /// Settings with secrets redacted.
    pub config: Value,
    /// The full settings, sealed.
    pub sealed: Vec<u8>,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A channel to create or the new state of one to update.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelWrite {
    pub id: Option<String>,
    pub name: String,
    pub channel_type: ChannelType,
    pub config: Value,
    pub sealed: Vec<u8>,
    pub enabled: bool,
}

#[derive(Debug, FromRow, Deserialize)]
struct ChannelRow {
    id: String,
    name: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    kind: String,
    config: String,
    sealed_secret: Option<Vec<u8>>,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for ChannelRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl TryFrom<ChannelRow> for ChannelRecord {
    type Error = StoreError;
    fn try_from(r: ChannelRow) -> Result<Self> {
        Ok(ChannelRecord {
            channel_type: parse_enum("type", &r.kind)?,
            config: parse_json("config", &r.config)?,
            id: r.id,
            name: r.name,
            sealed: r.sealed_secret.unwrap_or_default(),
            enabled: r.enabled,
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
        })
    }
}

const COLUMNS: &str =
    "SELECT id, name, type, config, sealed_secret, enabled, created_at, updated_at FROM notification_channels";

async fn fetch(conn: &mut Conn<'_>, id: &str) -> Result<ChannelRecord> {
    let mut q = Sql::default();
    q.push(COLUMNS).push(" WHERE id = ").push_bind(id);
    let row: Option<ChannelRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| StoreError::NotFound { resource: "notification channel", id: id.to_owned() })?.try_into()
}

fn audit(actor: &Actor, action: &str, id: &str, details: Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "notification_channel", id, details)
}

/// A certificate whose expiry alerting the scan looks at, with its policy's alert settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiryCandidate {
    pub certificate_id: String,
    pub certificate_name: String,
    pub common_name: String,
    pub expires_at: OffsetDateTime,
    /// The newest version's ID (alerts are unique per version), empty when there is none.
    pub version_id: String,
    pub owner_email: String,
    pub thresholds_days: Vec<i64>,
    pub severity_map: BTreeMap<String, SeverityTier>,
    pub channels: BTreeMap<SeverityTier, Vec<String>>,
}

#[derive(Debug, FromRow, Deserialize)]
struct CandidateRow {
    id: String,
    name: String,
    common_name: String,
    expires_at: i64,
    version_id: Option<String>,
    owner_email: Option<String>,
    alert_thresholds_days: String,
    alert_severity_map: String,
    alert_channels: String,
}

/// Where a certificate's events go: the channels its renewal policy routes `tier` to, and the
/// owner's address.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    pub channels: Vec<String>,
    pub owner_email: String,
    pub certificate_name: String,
}

/// The channel every tier routes to when a policy names none.
pub const DEFAULT_CHANNEL: &str = "Email";

/// The channels a policy's `alert_channels` routes `tier` to, when it names that tier at all.
pub(crate) fn explicit_routes(alert_channels: &str, tier: SeverityTier) -> Result<Option<Vec<String>>> {
    let mut routes: BTreeMap<SeverityTier, Vec<String>> = parse_json("alert_channels", alert_channels)?;
    Ok(routes.remove(&tier).filter(|c| !c.is_empty()))
}

/// Resolves inside `tx` the channels a certificate's events of severity `tier` route to (the
/// policy's `alert_channels[tier]`, or [`DEFAULT_CHANNEL`] when the policy has no entry), and
/// the owner's email as recipient. `None` when the certificate does not exist.
pub async fn route_certificate_event(tx: &mut Tx, certificate_id: &str, tier: SeverityTier) -> Result<Option<Routing>> {
    let row: Option<(String, Option<String>, String)> = Sql::new(
        "SELECT c.name, o.email, p.alert_channels FROM managed_certificates c \
         LEFT JOIN owners o ON o.id = c.owner_id \
         JOIN renewal_policies p ON p.id = c.renewal_policy_id WHERE c.id = $1",
    )
    .arg(certificate_id)
    .fetch_optional(&mut tx.conn())
    .await?;
    let Some((name, email, channels)) = row else { return Ok(None) };
    let routes: BTreeMap<SeverityTier, Vec<String>> = parse_json("alert_channels", &channels)?;
    let channels = routes.get(&tier).cloned().unwrap_or_else(|| vec![DEFAULT_CHANNEL.to_owned()]);
    Ok(Some(Routing { channels, owner_email: email.unwrap_or_default(), certificate_name: name }))
}

impl Store {
    pub async fn list_channels(&self, paging: &Paging) -> Result<Listing<ChannelRecord>> {
        let mut c = self.reader().await?;
        let rows: Listing<ChannelRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM notification_channels",
            |q| {
                q.push(" WHERE 1=1");
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(ChannelRecord::try_from)
    }

    pub async fn channel(&self, id: &str) -> Result<ChannelRecord> {
        let mut c = self.reader().await?;
        fetch(&mut c.conn(), id).await
    }

    /// The enabled channel called `name`, if any.
    pub async fn channel_by_name(&self, name: &str) -> Result<Option<ChannelRecord>> {
        let mut c = self.reader().await?;
        let mut q = Sql::default();
        q.push(COLUMNS).push(" WHERE name = ").push_bind(name);
        let row: Option<ChannelRow> = q.fetch_optional(&mut c.conn()).await?;
        row.map(ChannelRecord::try_from).transpose()
    }

    /// The enabled channels of type `kind`, oldest first.
    pub async fn channels_of_type(&self, kind: ChannelType) -> Result<Vec<ChannelRecord>> {
        let mut c = self.reader().await?;
        let mut q = Sql::default();
        q.push(COLUMNS).push(" WHERE type = ").push_bind(kind.as_str()).push(" ORDER BY created_at, id");
        let rows: Vec<ChannelRow> = q.fetch_all(&mut c.conn()).await?;
        let all: Vec<ChannelRecord> = rows.into_iter().map(ChannelRecord::try_from).collect::<Result<_>>()?;
        Ok(all.into_iter().filter(|c| c.enabled).collect())
    }

    /// Which of `names` name no stored channel.
    pub async fn missing_channels(&self, names: &[String]) -> Result<Vec<String>> {
        let mut c = self.reader().await?;
        let mut missing = Vec::new();
        for name in names {
            let n = Sql::new("SELECT COUNT(*) FROM notification_channels WHERE name = $1")
                .arg(name)
                .fetch_i64(&mut c.conn())
                .await?;
            if n == 0 {
                missing.push(name.clone());
            }
        }
        Ok(missing)
    }

    pub async fn create_channel(&self, w: &ChannelWrite, actor: &Actor, now: OffsetDateTime) -> Result<ChannelRecord> {
        let id = w.id.clone().unwrap_or_else(|| new_id("nc"));
        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "notification_channels", "notification channel", &id).await?;
        name_free(&mut tx.conn(), "notification_channels", "notification channel", &w.name, None).await?;
        Sql::new(
            "INSERT INTO notification_channels (id, name, type, config, sealed_secret, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .arg(&id)
        .arg(&w.name)
        .arg(w.channel_type.as_str())
        .arg(to_json(&w.config))
        .arg(w.sealed.clone())
        .arg(w.enabled)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({ "name": w.name, "type": w.channel_type, "config": w.config, "enabled": w.enabled });
        append(&mut tx, &[audit(actor, "notification_channel_created", &id, details)], now).await?;
        tx.commit().await?;
        self.channel(&id).await
    }

    /// Replaces a channel's name, settings and enabled flag (the type never changes).
    pub async fn update_channel(
        &self,
        id: &str,
        w: &ChannelWrite,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ChannelRecord> {
        let mut tx = self.begin().await?;
        let before = fetch(&mut tx.conn(), id).await?;
        name_free(&mut tx.conn(), "notification_channels", "notification channel", &w.name, Some(id)).await?;
        Sql::new(
            "UPDATE notification_channels SET name = $2, config = $3, sealed_secret = $4, enabled = $5, \
             updated_at = $6 WHERE id = $1",
        )
        .arg(id)
        .arg(&w.name)
        .arg(to_json(&w.config))
        .arg(w.sealed.clone())
        .arg(w.enabled)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({ "name": w.name, "previous_name": before.name, "config": w.config, "enabled": w.enabled });
        append(&mut tx, &[audit(actor, "notification_channel_updated", id, details)], now).await?;
        tx.commit().await?;
        self.channel(id).await
    }

    /// Deletes a channel. Notifications addressed to it stay; the worker sends them to `dead`
    /// naming the missing channel.
    pub async fn delete_channel(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        let before = fetch(&mut tx.conn(), id).await?;
        Sql::new("DELETE FROM notification_channels WHERE id = $1").arg(id).execute(&mut tx.conn()).await?;
        append(&mut tx, &[audit(actor, "notification_channel_deleted", id, json!({ "name": before.name }))], now)
            .await?;
        tx.commit().await
    }

    /// Certificates expiring before `now + horizon_days` (expired ones included) that are still
    /// alerted on, with their policy's alert settings; selected in SQL through the expiry index,
    /// at most `limit`, soonest first.
    pub async fn expiry_candidates(
        &self,
        now: OffsetDateTime,
        horizon_days: i64,
        limit: u32,
    ) -> Result<Vec<ExpiryCandidate>> {
        let mut c = self.reader().await?;
        let until = to_micros(now + time::Duration::days(horizon_days));
        let rows: Vec<CandidateRow> = Sql::new(
            "SELECT c.id, c.name, c.common_name, c.expires_at, \
             (SELECT v.id FROM certificate_versions v WHERE v.certificate_id = c.id \
              ORDER BY v.created_at DESC, v.id DESC LIMIT 1) AS version_id, \
             o.email AS owner_email, p.alert_thresholds_days, p.alert_severity_map, p.alert_channels \
             FROM managed_certificates c \
             JOIN renewal_policies p ON p.id = c.renewal_policy_id \
             LEFT JOIN owners o ON o.id = c.owner_id \
             WHERE c.expires_at IS NOT NULL AND c.expires_at <= $1 \
             AND c.status NOT IN ('Revoked', 'Archived') \
             ORDER BY c.expires_at, c.id LIMIT $2",
        )
        .arg(until)
        .arg(i64::from(limit))
        .fetch_all(&mut c.conn())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ExpiryCandidate {
                    thresholds_days: parse_json("alert_thresholds_days", &r.alert_thresholds_days)?,
                    severity_map: parse_json("alert_severity_map", &r.alert_severity_map)?,
                    channels: parse_json("alert_channels", &r.alert_channels)?,
                    certificate_id: r.id,
                    certificate_name: r.name,
                    common_name: r.common_name,
                    expires_at: from_micros(r.expires_at),
                    version_id: r.version_id.unwrap_or_default(),
                    owner_email: r.owner_email.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The largest alert threshold of any renewal policy (how far ahead the expiry scan looks).
    pub async fn max_alert_threshold(&self) -> Result<i64> {
        let mut c = self.reader().await?;
        let rows: Vec<(String,)> =
            Sql::new("SELECT DISTINCT alert_thresholds_days FROM renewal_policies").fetch_all(&mut c.conn()).await?;
        let mut max = 0;
        for (text,) in rows {
            let days: Vec<i64> = parse_json("alert_thresholds_days", &text)?;
            max = days.into_iter().fold(max, i64::max);
        }
        Ok(max)
    }

    /// The distinct owner email addresses (digest recipients by default).
    pub async fn owner_emails(&self) -> Result<Vec<String>> {
        let mut c = self.reader().await?;
        let rows: Vec<(String,)> = Sql::new("SELECT DISTINCT email FROM owners WHERE email <> '' ORDER BY email")
            .fetch_all(&mut c.conn())
            .await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }
}
