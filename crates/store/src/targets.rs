//! Deployment targets: where an agent installs certificates, with an encrypted configuration
//! handled like an issuer's.

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{DeploymentTarget, Name, TargetType};

use crate::agents::must_be_live_agent;
use crate::audit::{AuditEntry, append};
use crate::common::{Actor, Deletable, id_free};
use crate::issuers::{SealedConfig, push_config_guard, push_config_update};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, from_micros, opt_time, parse_enum, parse_json, to_json, to_micros};

/// A target to create; the caller has chosen the ID, because the sealed config is bound to it.
#[derive(Debug, Clone)]
pub struct NewTarget {
    pub id: String,
    pub name: Name,
    pub target_type: TargetType,
    pub agent_id: String,
    pub config: SealedConfig,
    pub enabled: bool,
}

/// Changes to a target; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct TargetChanges {
    pub name: Option<Name>,
    pub agent_id: Option<String>,
    pub config: Option<SealedConfig>,
    pub enabled: Option<bool>,
}

#[derive(Debug, FromRow, Deserialize)]
struct TargetRow {
    id: String,
    name: String,
    target_type: String,
    agent_id: String,
    config: String,
    enabled: bool,
    test_status: String,
    last_tested_at: Option<i64>,
    retired_at: Option<i64>,
    retired_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for TargetRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl TargetRow {
    fn into_target(self) -> Result<DeploymentTarget> {
        Ok(DeploymentTarget {
            target_type: parse_enum("deployment_targets.type", &self.target_type)?,
            config: parse_json("deployment_targets.config", &self.config)?,
            id: self.id,
            name: self.name,
            agent_id: self.agent_id,
            enabled: self.enabled,
            test_status: self.test_status,
            last_tested_at: opt_time(self.last_tested_at),
            retired_at: opt_time(self.retired_at),
            retired_reason: self.retired_reason,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

const COLUMNS: &str = "SELECT id, name, type AS target_type, agent_id, config, enabled, test_status, last_tested_at, \
                       retired_at, retired_reason, created_at, updated_at FROM deployment_targets";

/// Jobs that still need their target.
const ACTIVE_JOBS: &str = "SELECT COUNT(*) FROM jobs WHERE target_id = $1 \
                           AND status IN ('Pending', 'AwaitingCSR', 'AwaitingApproval', 'Running')";

fn audit(actor: &Actor, action: &str, id: &str, details: Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "target", id, details)
}

async fn fetch(conn: &mut Conn<'_>, id: &str) -> Result<DeploymentTarget> {
    let mut q = Sql::new(COLUMNS);
    q.push(" WHERE id = ").push_bind(id);
    let row: Option<TargetRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| StoreError::NotFound { resource: "target", id: id.to_owned() })?.into_target()
}

/// `Conflict` when another target (not `except_id`) of `agent_id` is called `name`.
async fn name_free_on_agent(conn: &mut Conn<'_>, agent_id: &str, name: &str, except_id: &str) -> Result<()> {
    let n = Sql::new("SELECT COUNT(*) FROM deployment_targets WHERE agent_id = $1 AND name = $2 AND id <> $3")
        .arg(agent_id)
        .arg(name)
        .arg(except_id)
        .fetch_i64(conn)
        .await?;
    if n > 0 {
        Err(StoreError::Conflict(format!("agent '{agent_id}' already has a target named '{name}'")))
    } else {
        Ok(())
    }
}

impl Store {
    pub async fn list_targets(
        &self,
        agent_id: Option<&str>,
        target_type: Option<TargetType>,
        paging: &Paging,
    ) -> Result<Listing<DeploymentTarget>> {
        let mut c = self.reader().await?;
        let rows: Listing<TargetRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM deployment_targets",
            |q| {
                q.push(" WHERE 1=1");
                if let Some(a) = agent_id {
                    q.push(" AND agent_id = ").push_bind(a);
                }
                if let Some(t) = target_type {
                    q.push(" AND type = ").push_bind(t.as_str());
                }
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(TargetRow::into_target)
    }

    pub async fn target(&self, id: &str) -> Result<DeploymentTarget> {
        let mut c = self.reader().await?;
        fetch(&mut c.conn(), id).await
    }

    /// The sealed full configuration of a target; `None` when none is stored.
    pub async fn target_sealed_config(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let mut c = self.reader().await?;
        let row: Option<(Option<Vec<u8>>,)> = Sql::new("SELECT encrypted_config FROM deployment_targets WHERE id = $1")
            .arg(id)
            .fetch_optional(&mut c.conn())
            .await?;
        row.map(|(sealed,)| sealed).ok_or_else(|| StoreError::NotFound { resource: "target", id: id.to_owned() })
    }

    pub async fn create_target(&self, new: &NewTarget, actor: &Actor, now: OffsetDateTime) -> Result<DeploymentTarget> {
        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "deployment_targets", "target", &new.id).await?;
        must_be_live_agent(&mut tx.conn(), "agent_id", &new.agent_id).await?;
        name_free_on_agent(&mut tx.conn(), &new.agent_id, new.name.as_str(), &new.id).await?;
        Sql::new(
            "INSERT INTO deployment_targets (id, name, type, agent_id, config, encrypted_config, enabled, \
             test_status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'untested', $8, $8)",
        )
        .arg(&new.id)
        .arg(new.name.as_str())
        .arg(new.target_type.as_str())
        .arg(&new.agent_id)
        .arg(to_json(&new.config.redacted))
        .arg(new.config.sealed.clone())
        .arg(new.enabled)
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({
            "name": new.name,
            "type": new.target_type,
            "agent_id": new.agent_id,
            "enabled": new.enabled,
            "config_keys": new.config.keys(),
        });
        append(&mut tx, &[audit(actor, "target_created", &new.id, details)], now).await?;
        let target = fetch(&mut tx.conn(), &new.id).await?;
        tx.commit().await?;
        Ok(target)
    }

    pub async fn update_target(
        &self,
        id: &str,
        changes: &TargetChanges,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentTarget> {
        let mut tx = self.begin().await?;
        let current = fetch(&mut tx.conn(), id).await?;
        if let Some(agent_id) = &changes.agent_id
            && *agent_id != current.agent_id
        {
            must_be_live_agent(&mut tx.conn(), "agent_id", agent_id).await?;
        }
        if changes.name.is_some() || changes.agent_id.is_some() {
            let agent_id = changes.agent_id.as_deref().unwrap_or(&current.agent_id);
            let name = changes.name.as_ref().map_or(current.name.as_str(), Name::as_str);
            name_free_on_agent(&mut tx.conn(), agent_id, name, id).await?;
        }
        let mut q = Sql::new("UPDATE deployment_targets SET updated_at = $1").arg(to_micros(now));
        if let Some(name) = &changes.name {
            q.push(", name = ").push_bind(name.as_str());
        }
        if let Some(agent_id) = &changes.agent_id {
            q.push(", agent_id = ").push_bind(agent_id.as_str());
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
                "target '{id}' configuration changed while this update was prepared; retry it"
            )));
        }
        let details = json!({
            "name": changes.name,
            "agent_id": changes.agent_id,
            "enabled": changes.enabled,
            "config_keys": changes.config.as_ref().map(SealedConfig::keys),
        });
        append(&mut tx, &[audit(actor, "target_updated", id, details)], now).await?;
        let target = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(target)
    }

    /// Deletes a target no certificate is mapped to and no unfinished job needs.
    pub async fn delete_target(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        const TARGET: Deletable = Deletable {
            table: "deployment_targets",
            resource: "target",
            kind: "target",
            referrers: &[
                ("SELECT COUNT(*) FROM certificate_target_mappings WHERE target_id = $1", "certificates"),
                (ACTIVE_JOBS, "unfinished jobs"),
            ],
        };
        self.delete_unreferenced(&TARGET, id, actor, now).await
    }
}
