//! The append-only, hash-chained audit trail.
//!
//! Each record stores the hash of the record before it and its own hash over its content and
//! that link. Writers take the chain lock (a transaction-scoped advisory lock on PostgreSQL, the
//! single write lock on SQLite), read the head, and insert with `seq = head + 1`, so replicas
//! extend one chain and `verify_chain` can report the first broken link.

use aws_lc_rs::digest;
use serde::Deserialize;
use serde_json::Value;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{ActorType, AuditEvent, AuditFilter};

use crate::paging::{self, KeyKind, Keyed, Listing, Order, Paging, SortKey, SortValue};
use crate::sql::Sql;
use crate::{Backend, Result, Store, StoreError, Tx, from_micros, new_id, parse_enum, parse_json, to_micros};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Advisory lock key that serializes chain writers on PostgreSQL ("certctl" in ASCII).
const CHAIN_LOCK_KEY: i64 = 0x6365_7274_6374_6c00;

/// Rows per INSERT. On PostgreSQL a batch of API-call records is one statement, so it costs one
/// round trip. SQLite runs in-process with no round trip to save: one row per statement keeps
/// a single prepared statement in the cache instead of one per batch size.
fn audit_rows_per_statement(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 600,
        Backend::Sqlite => 1,
    }
}

/// What to record; the store adds id, time, sequence and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub actor: String,
    pub actor_type: ActorType,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// Already redacted details.
    pub details: Value,
}

impl AuditEntry {
    pub fn new(
        actor: impl Into<String>,
        actor_type: ActorType,
        action: impl Into<String>,
        resource_type: impl Into<String>,
        resource_id: impl Into<String>,
        details: Value,
    ) -> Self {
        AuditEntry {
            actor: actor.into(),
            actor_type,
            action: action.into(),
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
            details,
        }
    }
}

/// Outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records checked.
    pub checked: u64,
    /// The first record whose link or hash does not match, with the reason.
    pub first_broken: Option<(i64, String)>,
    /// The last verified record's sequence number and hash.
    pub head: Option<(i64, String)>,
}

#[derive(Debug, FromRow, Deserialize)]
struct AuditRow {
    seq: i64,
    id: String,
    ts: i64,
    actor: String,
    actor_type: String,
    action: String,
    resource_type: String,
    resource_id: String,
    details: String,
    prev_hash: String,
    hash: String,
}

impl Keyed for AuditRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.seq)
    }
}

impl AuditRow {
    fn into_api(self) -> Result<AuditEvent> {
        Ok(AuditEvent {
            actor_type: parse_enum("audit_events.actor_type", &self.actor_type)?,
            details: parse_json("audit_events.details", &self.details)?,
            timestamp: from_micros(self.ts),
            id: self.id,
            actor: self.actor,
            action: self.action,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }

    fn computed_hash(&self) -> String {
        record_hash(
            self.seq,
            &self.id,
            self.ts,
            [&self.actor, &self.actor_type, &self.action, &self.resource_type, &self.resource_id, &self.details],
            &self.prev_hash,
        )
    }
}

/// SHA-256 over the length-prefixed fields of a record and its link, hex encoded.
fn record_hash(seq: i64, id: &str, ts: i64, fields: [&str; 6], prev_hash: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&ts.to_be_bytes());
    for field in std::iter::once(id).chain(fields).chain(std::iter::once(prev_hash)) {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    hex::encode(ctx.finish())
}

/// Appends `entries` to the chain inside `tx`, all stamped `now`.
pub async fn append(tx: &mut Tx, entries: &[AuditEntry], now: OffsetDateTime) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if tx.backend() == Backend::Postgres {
        Sql::new("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .arg(CHAIN_LOCK_KEY)
            .fetch_i64(&mut tx.conn())
            .await?;
    }
    let head: Option<(i64, String)> =
        Sql::new("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut tx.conn()).await?;
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    // Records are stamped with the time they join the chain, so timestamps never decrease
    // along it.
    let ts = to_micros(now);
    for chunk in entries.chunks(audit_rows_per_statement(tx.backend())) {
        let mut q = Sql::new(
            "INSERT INTO audit_events (seq, id, ts, actor, actor_type, action, resource_type, resource_id, details, prev_hash, hash) VALUES ",
        );
        for (i, e) in chunk.iter().enumerate() {
            seq += 1;
            let id = new_id("audit");
            let details = crate::to_json(&e.details);
            let hash = record_hash(
                seq,
                &id,
                ts,
                [&e.actor, e.actor_type.as_str(), &e.action, &e.resource_type, &e.resource_id, &details],
                &prev,
            );
            if i > 0 {
                q.push(", ");
            }
            q.push("(").push_bind(seq).push(", ").push_bind(id).push(", ").push_bind(ts);
            q.push(", ").push_bind(e.actor.as_str()).push(", ").push_bind(e.actor_type.as_str());
            q.push(", ").push_bind(e.action.as_str()).push(", ").push_bind(e.resource_type.as_str());
            q.push(", ").push_bind(e.resource_id.as_str()).push(", ").push_bind(details);
            q.push(", ").push_bind(prev.as_str()).push(", ").push_bind(hash.as_str()).push(")");
            prev = hash;
        }
        q.execute(&mut tx.conn()).await?;
    }
    Ok(())
}

const SEQ: SortKey = SortKey { name: "seq", expr: "seq", kind: KeyKind::Int };

impl Store {
    /// Appends entries in a transaction of their own (API call records).
    pub async fn record_audit(&self, entries: &[AuditEntry], now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        append(&mut tx, entries, now).await?;
        tx.commit().await
    }

    /// Newest first.
    pub async fn list_audit(&self, filter: &AuditFilterParsed, paging: &Paging) -> Result<Listing<AuditEvent>> {
        let mut c = self.reader().await?;
        let apply = |q: &mut Sql| {
            q.push(" WHERE 1=1");
            if let Some(v) = &filter.actor {
                q.push(" AND actor = ").push_bind(v);
            }
            if let Some(v) = &filter.action {
                q.push(" AND action = ").push_bind(v);
            }
            if let Some(v) = &filter.resource_type {
                q.push(" AND resource_type = ").push_bind(v);
            }
            if let Some(v) = &filter.resource_id {
                q.push(" AND resource_id = ").push_bind(v);
            }
            if let Some(v) = filter.from {
                q.push(" AND ts >= ").push_bind(to_micros(v));
            }
            if let Some(v) = filter.to {
                q.push(" AND ts < ").push_bind(to_micros(v));
            }
        };
        let rows: Listing<AuditRow> = paging::list(
            &mut c.conn(),
            "SELECT seq, id, ts, actor, actor_type, action, resource_type, resource_id, details, prev_hash, hash FROM audit_events",
            "SELECT COUNT(*) FROM audit_events",
            apply,
            Order { key: SEQ, desc: true },
            paging,
        )
        .await?;
        rows.try_map(AuditRow::into_api)
    }

    pub async fn audit_event(&self, id: &str) -> Result<AuditEvent> {
        let mut c = self.reader().await?;
        let row: Option<AuditRow> = Sql::new(
            "SELECT seq, id, ts, actor, actor_type, action, resource_type, resource_id, details, prev_hash, hash FROM audit_events WHERE id = $1",
        )
        .arg(id)
        .fetch_optional(&mut c.conn())
        .await?;
        row.ok_or_else(|| StoreError::NotFound { resource: "audit event", id: id.to_owned() })?.into_api()
    }

    /// Walks the whole chain in batches and reports the first record whose link, hash or
    /// sequence number is wrong.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport> {
        let mut c = self.reader().await?;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut expected_seq = 1i64;
        let mut checked = 0u64;
        loop {
            let rows: Vec<AuditRow> = Sql::new(
                "SELECT seq, id, ts, actor, actor_type, action, resource_type, resource_id, details, prev_hash, hash FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT 5000",
            )
            .arg(expected_seq)
            .fetch_all(&mut c.conn())
            .await?;
            if rows.is_empty() {
                let head = (checked > 0).then(|| (expected_seq - 1, prev_hash));
                return Ok(ChainReport { checked, first_broken: None, head });
            }
            for row in rows {
                let broken = if row.seq != expected_seq {
                    Some(format!("expected record {expected_seq}, found {} (records missing)", row.seq))
                } else if row.prev_hash != prev_hash {
                    Some("prev_hash does not match the previous record's hash".to_owned())
                } else if row.computed_hash() != row.hash {
                    Some("content does not match its hash (record altered)".to_owned())
                } else {
                    None
                };
                if let Some(reason) = broken {
                    let head = (checked > 0).then(|| (expected_seq - 1, prev_hash));
                    return Ok(ChainReport { checked, first_broken: Some((row.seq, reason)), head });
                }
                checked += 1;
                expected_seq += 1;
                prev_hash = row.hash;
            }
        }
    }
}

/// Audit filters with their times parsed.
#[derive(Debug, Clone, Default)]
pub struct AuditFilterParsed {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl AuditFilterParsed {
    /// Parses the wire filter; a bad time is an error naming its parameter.
    pub fn parse(f: &AuditFilter) -> Result<Self> {
        Ok(AuditFilterParsed {
            actor: f.actor.clone(),
            action: f.action.clone(),
            resource_type: f.resource_type.clone(),
            resource_id: f.resource_id.clone(),
            from: crate::common::parse_time_param("from", f.from.as_deref())?,
            to: crate::common::parse_time_param("to", f.to.as_deref())?,
        })
    }
}
