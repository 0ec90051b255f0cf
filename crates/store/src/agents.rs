//! Agents: the hosts that run certctl-agent. Their credential hash is stored but never read
//! back into an [`Agent`].

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{Agent, AgentStatus};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, id_free, name_free};
use crate::paging::{self, KeyKind, Keyed, Listing, Order, Paging, SortKey, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, from_micros, new_id, opt_time, parse_enum, to_micros};

/// An agent to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// Chosen by the store when `None`.
    pub id: Option<String>,
    pub name: String,
    pub hostname: String,
    pub os: String,
    pub architecture: String,
    pub ip_address: String,
    pub version: String,
    /// `Online` also records a heartbeat at creation time.
    pub status: AgentStatus,
    /// Lower-case hex SHA-256 of the agent's credential, when it has one.
    pub credential_hash: Option<String>,
}

impl Default for NewAgent {
    fn default() -> Self {
        NewAgent {
            id: None,
            name: String::new(),
            hostname: String::new(),
            os: String::new(),
            architecture: String::new(),
            ip_address: String::new(),
            version: String::new(),
            status: AgentStatus::Offline,
            credential_hash: None,
        }
    }
}

#[derive(Debug, FromRow, Deserialize)]
struct AgentRow {
    id: String,
    name: String,
    hostname: String,
    status: String,
    last_heartbeat_at: Option<i64>,
    registered_at: i64,
    os: String,
    architecture: String,
    ip_address: String,
    version: String,
    retired_at: Option<i64>,
    retired_reason: Option<String>,
}

/// Agents are listed in registration order.
const REGISTERED: SortKey = SortKey { name: "registeredAt", expr: "registered_at", kind: KeyKind::Int };

impl Keyed for AgentRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.registered_at)
    }
}

impl AgentRow {
    fn into_agent(self) -> Result<Agent> {
        Ok(Agent {
            status: parse_enum("agents.status", &self.status)?,
            id: self.id,
            name: self.name,
            hostname: self.hostname,
            last_heartbeat_at: opt_time(self.last_heartbeat_at),
            registered_at: from_micros(self.registered_at),
            os: self.os,
            architecture: self.architecture,
            ip_address: self.ip_address,
            version: self.version,
            retired_at: opt_time(self.retired_at),
            retired_reason: self.retired_reason,
        })
    }
}

// `credential_hash` is deliberately absent.
const COLUMNS: &str = "SELECT id, name, hostname, status, last_heartbeat_at, registered_at, os, architecture, \
                       ip_address, version, retired_at, retired_reason FROM agents";

pub(crate) async fn fetch(conn: &mut Conn<'_>, id: &str) -> Result<Agent> {
    let mut q = Sql::new(COLUMNS);
    q.push(" WHERE id = ").push_bind(id);
    let row: Option<AgentRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| StoreError::NotFound { resource: "agent", id: id.to_owned() })?.into_agent()
}

/// `InvalidReference` naming `field` unless `agent_id` is an agent that is not retired.
pub(crate) async fn must_be_live_agent(conn: &mut Conn<'_>, field: &'static str, agent_id: &str) -> Result<()> {
    let row: Option<(Option<i64>,)> =
        Sql::new("SELECT retired_at FROM agents WHERE id = $1").arg(agent_id).fetch_optional(conn).await?;
    match row {
        None => Err(StoreError::InvalidReference { field, message: format!("agent '{agent_id}' does not exist") }),
        Some((Some(_),)) => {
            Err(StoreError::InvalidReference { field, message: format!("agent '{agent_id}' is retired") })
        }
        Some((None,)) => Ok(()),
    }
}

impl Store {
    /// Agents, without retired ones unless `include_retired`.
    pub async fn list_agents(
        &self,
        status: Option<AgentStatus>,
        include_retired: bool,
        paging: &Paging,
    ) -> Result<Listing<Agent>> {
        let mut c = self.reader().await?;
        let rows: Listing<AgentRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM agents",
            |q| {
                q.push(" WHERE 1=1");
                if !include_retired {
                    q.push(" AND retired_at IS NULL");
                }
                if let Some(s) = status {
                    q.push(" AND status = ").push_bind(s.as_str());
                }
            },
            Order { key: REGISTERED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(AgentRow::into_agent)
    }

    /// Retired agents only.
    pub async fn list_retired_agents(&self, paging: &Paging) -> Result<Listing<Agent>> {
        let mut c = self.reader().await?;
        let rows: Listing<AgentRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM agents",
            |q| {
                q.push(" WHERE retired_at IS NOT NULL");
            },
            Order { key: REGISTERED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(AgentRow::into_agent)
    }

    pub async fn agent(&self, id: &str) -> Result<Agent> {
        let mut c = self.reader().await?;
        fetch(&mut c.conn(), id).await
    }

    pub async fn create_agent(&self, new: &NewAgent, actor: &Actor, now: OffsetDateTime) -> Result<Agent> {
        let id = new.id.clone().unwrap_or_else(|| new_id("agent"));
        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "agents", "agent", &id).await?;
        name_free(&mut tx.conn(), "agents", "agent", &new.name, None).await?;
        let ts = to_micros(now);
        let heartbeat = (new.status == AgentStatus::Online).then_some(ts);
        Sql::new(
            "INSERT INTO agents (id, name, hostname, status, last_heartbeat_at, registered_at, os, architecture, \
             ip_address, version, credential_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .arg(&id)
        .arg(&new.name)
        .arg(&new.hostname)
        .arg(new.status.as_str())
        .arg(heartbeat)
        .arg(ts)
        .arg(&new.os)
        .arg(&new.architecture)
        .arg(&new.ip_address)
        .arg(&new.version)
        .arg(new.credential_hash.clone())
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"name": new.name, "hostname": new.hostname, "status": new.status});
        let entry = AuditEntry::new(actor.name.clone(), actor.kind, "agent_registered", "agent", &id, details);
        append(&mut tx, &[entry], now).await?;
        let agent = fetch(&mut tx.conn(), &id).await?;
        tx.commit().await?;
        Ok(agent)
    }
}
