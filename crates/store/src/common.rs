//! Checks shared by the resource modules: existence, unique names and references, each
//! turned into an error that names the field or the referencing records.

use certctl_api::ActorType;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{AuditEntry, append};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError};

/// Who is making a change, for its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub kind: ActorType,
}

impl Actor {
    pub fn user(name: impl Into<String>) -> Self {
        Actor { name: name.into(), kind: ActorType::User }
    }

    pub fn system() -> Self {
        Actor { name: "system".into(), kind: ActorType::System }
    }
}

/// Whether `table` has a row with `id`.
pub(crate) async fn exists(conn: &mut Conn<'_>, table: &'static str, id: &str) -> Result<bool> {
    let mut q = Sql::default();
    q.push("SELECT COUNT(*) FROM ").push(table).push(" WHERE id = ").push_bind(id);
    Ok(q.fetch_i64(conn).await? > 0)
}

/// `NotFound` unless `table` has `id`.
pub(crate) async fn must_exist(
    conn: &mut Conn<'_>,
    table: &'static str,
    resource: &'static str,
    id: &str,
) -> Result<()> {
    if exists(conn, table, id).await? { Ok(()) } else { Err(StoreError::NotFound { resource, id: id.to_owned() }) }
}

/// `InvalidReference` naming `field` unless `table` has `id`.
pub(crate) async fn must_reference(
    conn: &mut Conn<'_>,
    table: &'static str,
    field: &'static str,
    resource: &'static str,
    id: &str,
) -> Result<()> {
    if exists(conn, table, id).await? {
        Ok(())
    } else {
        Err(StoreError::InvalidReference { field, message: format!("{resource} '{id}' does not exist") })
    }
}

/// `Conflict` when a client-chosen ID is taken.
pub(crate) async fn id_free(conn: &mut Conn<'_>, table: &'static str, resource: &'static str, id: &str) -> Result<()> {
    if exists(conn, table, id).await? {
        Err(StoreError::Conflict(format!("{resource} '{id}' already exists")))
    } else {
        Ok(())
    }
}

/// `Conflict` when another row of `table` (not `except_id`) has `name`.
pub(crate) async fn name_free(
    conn: &mut Conn<'_>,
    table: &'static str,
    resource: &'static str,
    name: &str,
    except_id: Option<&str>,
) -> Result<()> {
    let mut q = Sql::default();
    q.push("SELECT COUNT(*) FROM ").push(table).push(" WHERE name = ").push_bind(name);
    q.push(" AND id <> ").push_bind(except_id.unwrap_or(""));
    if q.fetch_i64(conn).await? > 0 {
        Err(StoreError::Conflict(format!("{resource} name '{name}' is already taken")))
    } else {
        Ok(())
    }
}

/// One kind of record that may point at a row: a `SELECT COUNT(*) … = $1` and its label
/// (plural; the trailing "s" is dropped for a count of one).
pub(crate) type Referrer = (&'static str, &'static str);

/// The singular of a plural label ("renewal policies" → "renewal policy").
fn singular(label: &str) -> String {
    if let Some(stem) = label.strip_suffix("ies") {
        format!("{stem}y")
    } else {
        label.strip_suffix('s').unwrap_or(label).to_owned()
    }
}

/// `Conflict` naming every kind of record that still references `id`.
pub(crate) async fn not_referenced(
    conn: &mut Conn<'_>,
    resource: &'static str,
    id: &str,
    referrers: &[Referrer],
) -> Result<()> {
    let mut found = Vec::new();
    for (count_sql, label) in referrers {
        let n = Sql::new(count_sql).arg(id).fetch_i64(conn).await?;
        if n == 1 {
            found.push(format!("1 {}", singular(label)));
        } else if n > 1 {
            found.push(format!("{n} {label}"));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("{resource} '{id}' is still referenced by {}", found.join(", "))))
    }
}

/// Parses an optional RFC 3339 query parameter, naming it when it is malformed.
pub fn parse_time_param(field: &'static str, value: Option<&str>) -> Result<Option<time::OffsetDateTime>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map_err(|_| StoreError::Invalid { field, message: format!("'{v}' is not an RFC 3339 time") })
        })
        .transpose()
}

/// A resource that can be deleted outright once nothing refers to it.
pub(crate) struct Deletable {
    /// Table holding the rows.
    pub table: &'static str,
    /// Name in messages, e.g. "renewal policy".
    pub resource: &'static str,
    /// Audit resource type, e.g. "renewal_policy"; the action is `<kind>_deleted`.
    pub kind: &'static str,
    /// Who may still refer to a row.
    pub referrers: &'static [Referrer],
}

impl Store {
    /// Deletes row `id` of `what` with its audit record, or says what still refers to it.
    pub(crate) async fn delete_unreferenced(
        &self,
        what: &Deletable,
        id: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), what.table, what.resource, id).await?;
        not_referenced(&mut tx.conn(), what.resource, id, what.referrers).await?;
        let mut q = Sql::default();
        q.push("DELETE FROM ").push(what.table).push(" WHERE id = ").push_bind(id);
        q.execute(&mut tx.conn()).await?;
        let entry =
            AuditEntry::new(actor.name.clone(), actor.kind, format!("{}_deleted", what.kind), what.kind, id, json!({}));
        append(&mut tx, &[entry], now).await?;
        tx.commit().await
    }
}
