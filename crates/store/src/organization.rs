//! Teams and owners.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{CreateOwner, CreateTeam, Owner, Team, UpdateOwner, UpdateTeam};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, Deletable, id_free, must_exist, must_reference, name_free};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::Sql;
use crate::{Result, Store, StoreError, from_micros, new_id, to_micros};

#[derive(Debug, FromRow, Deserialize)]
struct TeamRow {
    id: String,
    name: String,
    description: String,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for TeamRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl From<TeamRow> for Team {
    fn from(r: TeamRow) -> Self {
        Team {
            id: r.id,
            name: r.name,
            description: r.description,
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
        }
    }
}

const TEAM_COLUMNS: &str = "SELECT id, name, description, created_at, updated_at FROM teams";

#[derive(Debug, FromRow, Deserialize)]
struct OwnerRow {
    id: String,
    name: String,
    email: String,
    team_id: String,
    created_at: i64,
    updated_at: i64,
}

impl Keyed for OwnerRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl From<OwnerRow> for Owner {
    fn from(r: OwnerRow) -> Self {
        Owner {
            id: r.id,
            name: r.name,
            email: r.email,
            team_id: r.team_id,
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
        }
    }
}

const OWNER_COLUMNS: &str = "SELECT id, name, email, team_id, created_at, updated_at FROM owners";

fn audit(actor: &Actor, action: &str, kind: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, kind, id, details)
}

impl Store {
    pub async fn list_teams(&self, paging: &Paging) -> Result<Listing<Team>> {
        let mut c = self.reader().await?;
        let rows: Listing<TeamRow> = paging::list(
            &mut c.conn(),
            TEAM_COLUMNS,
            "SELECT COUNT(*) FROM teams",
            |q| {
                q.push(" WHERE 1=1");
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(|r| Ok(Team::from(r)))
    }

    pub async fn team(&self, id: &str) -> Result<Team> {
        let mut c = self.reader().await?;
        let row: Option<TeamRow> =
            Sql::new("SELECT id, name, description, created_at, updated_at FROM teams WHERE id = $1")
                .arg(id)
                .fetch_optional(&mut c.conn())
                .await?;
        row.map(Team::from).ok_or_else(|| StoreError::NotFound { resource: "team", id: id.to_owned() })
    }

    pub async fn create_team(&self, req: &CreateTeam, actor: &Actor, now: OffsetDateTime) -> Result<Team> {
        let id = req.id.as_ref().map(|i| i.to_string()).unwrap_or_else(|| new_id("team"));
        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "teams", "team", &id).await?;
        name_free(&mut tx.conn(), "teams", "team", req.name.as_str(), None).await?;
        let ts = to_micros(now);
        Sql::new("INSERT INTO teams (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .arg(&id)
            .arg(req.name.as_str())
            .arg(req.description.clone().unwrap_or_default())
            .arg(ts)
            .execute(&mut tx.conn())
            .await?;
        let details = json!({"name": req.name, "description": req.description});
        append(&mut tx, &[audit(actor, "team_created", "team", &id, details)], now).await?;
        tx.commit().await?;
        self.team(&id).await
    }

    pub async fn update_team(&self, id: &str, req: &UpdateTeam, actor: &Actor, now: OffsetDateTime) -> Result<Team> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "teams", "team", id).await?;
        if let Some(name) = &req.name {
            name_free(&mut tx.conn(), "teams", "team", name.as_str(), Some(id)).await?;
        }
        Sql::new(
            "UPDATE teams SET name = COALESCE($2, name), description = COALESCE($3, description), updated_at = $4 WHERE id = $1",
        )
        .arg(id)
        .arg(req.name.as_ref().map(|n| n.to_string()))
        .arg(req.description.clone())
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"name": req.name, "description": req.description});
        append(&mut tx, &[audit(actor, "team_updated", "team", id, details)], now).await?;
        tx.commit().await?;
        self.team(id).await
    }

    pub async fn delete_team(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        const TEAM: Deletable = Deletable {
            table: "teams",
            resource: "team",
            kind: "team",
            referrers: &[
                ("SELECT COUNT(*) FROM owners WHERE team_id = $1", "owners"),
                ("SELECT COUNT(*) FROM managed_certificates WHERE team_id = $1", "certificates"),
            ],
        };
        self.delete_unreferenced(&TEAM, id, actor, now).await
    }

    pub async fn list_owners(&self, team_id: Option<&str>, paging: &Paging) -> Result<Listing<Owner>> {
        let mut c = self.reader().await?;
        let rows: Listing<OwnerRow> = paging::list(
            &mut c.conn(),
            OWNER_COLUMNS,
            "SELECT COUNT(*) FROM owners",
            |q| {
                q.push(" WHERE 1=1");
                if let Some(t) = team_id {
                    q.push(" AND team_id = ").push_bind(t);
                }
            },
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(|r| Ok(Owner::from(r)))
    }

    pub async fn owner(&self, id: &str) -> Result<Owner> {
        let mut c = self.reader().await?;
        let row: Option<OwnerRow> =
            Sql::new("SELECT id, name, email, team_id, created_at, updated_at FROM owners WHERE id = $1")
                .arg(id)
                .fetch_optional(&mut c.conn())
                .await?;
        row.map(Owner::from).ok_or_else(|| StoreError::NotFound { resource: "owner", id: id.to_owned() })
    }

    pub async fn create_owner(&self, req: &CreateOwner, actor: &Actor, now: OffsetDateTime) -> Result<Owner> {
        let id = req.id.as_ref().map(|i| i.to_string()).unwrap_or_else(|| new_id("owner"));
        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "owners", "owner", &id).await?;
        must_reference(&mut tx.conn(), "teams", "team_id", "team", req.team_id.as_str()).await?;
        Sql::new(
            "INSERT INTO owners (id, name, email, team_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .arg(&id)
        .arg(req.name.as_str())
        .arg(req.email.as_str())
        .arg(req.team_id.as_str())
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"name": req.name, "team_id": req.team_id});
        append(&mut tx, &[audit(actor, "owner_created", "owner", &id, details)], now).await?;
        tx.commit().await?;
        self.owner(&id).await
    }

    pub async fn update_owner(&self, id: &str, req: &UpdateOwner, actor: &Actor, now: OffsetDateTime) -> Result<Owner> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "owners", "owner", id).await?;
        if let Some(team) = &req.team_id {
            must_reference(&mut tx.conn(), "teams", "team_id", "team", team.as_str()).await?;
        }
        Sql::new(
            "UPDATE owners SET name = COALESCE($2, name), email = COALESCE($3, email), team_id = COALESCE($4, team_id), updated_at = $5 WHERE id = $1",
        )
        .arg(id)
        .arg(req.name.as_ref().map(|v| v.to_string()))
        .arg(req.email.as_ref().map(|v| v.to_string()))
        .arg(req.team_id.as_ref().map(|v| v.to_string()))
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"name": req.name, "team_id": req.team_id, "email_changed": req.email.is_some()});
        append(&mut tx, &[audit(actor, "owner_updated", "owner", id, details)], now).await?;
        tx.commit().await?;
        self.owner(id).await
    }

    pub async fn delete_owner(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        const OWNER: Deletable = Deletable {
            table: "owners",
            resource: "owner",
            kind: "owner",
            referrers: &[("SELECT COUNT(*) FROM managed_certificates WHERE owner_id = $1", "certificates")],
        };
        self.delete_unreferenced(&OWNER, id, actor, now).await
    }
}
