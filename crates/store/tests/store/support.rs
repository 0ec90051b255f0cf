//! Helpers shared by the store tests: fixed times, request builders, audit inspection and a raw
//! connection that bypasses the store (as an attacker with database access would).

use certctl_api::{AuditEvent, CreateOwner, CreateTeam, Email, Name, ResourceId};
use certctl_store::testing::TestDb;
use certctl_store::{Actor, AuditFilterParsed, Backend, Listing, Paging, Store};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqliteConnection};
use time::OffsetDateTime;
use time::macros::datetime;

/// The time every test starts at; microsecond precision, like the stored form.
pub const T0: OffsetDateTime = datetime!(2026-03-01 10:00:00.123456 UTC);

/// `T0` plus `secs` seconds.
pub fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

pub fn alice() -> Actor {
    Actor::user("alice")
}

pub fn name(v: &str) -> Name {
    Name::parse(v).expect("test name is valid")
}

pub fn rid(v: &str) -> ResourceId {
    ResourceId::parse(v).expect("test id is valid")
}

pub fn team_req(team_name: &str) -> CreateTeam {
    CreateTeam { id: None, name: name(team_name), description: None }
}

pub fn owner_req(owner_name: &str, team_id: &str) -> CreateOwner {
    CreateOwner {
        id: None,
        name: name(owner_name),
        email: Email::parse(format!("{}@example.com", owner_name.to_lowercase())).expect("test email is valid"),
        team_id: rid(team_id),
    }
}

/// Number of audit records.
pub async fn audit_count(store: &Store) -> i64 {
    match store.list_audit(&AuditFilterParsed::default(), &Paging::Page { page: 1, per_page: 1 }).await.unwrap() {
        Listing::Page { total, .. } => total,
        other => panic!("page mode returned {other:?}"),
    }
}

/// The newest audit records, newest first.
pub async fn newest_audit(store: &Store, n: u32) -> Vec<AuditEvent> {
    store
        .list_audit(&AuditFilterParsed::default(), &Paging::Page { page: 1, per_page: n })
        .await
        .unwrap()
        .data()
        .to_vec()
}

/// Asserts that exactly one audit record was added since `*count` and that it describes
/// `action` on `resource_id` by `actor`; advances `*count`.
pub async fn expect_one_audit(store: &Store, count: &mut i64, action: &str, resource_id: &str, actor: &Actor) {
    let now = audit_count(store).await;
    assert_eq!(now, *count + 1, "{action} on {resource_id} must write exactly one audit record");
    let newest = newest_audit(store, 1).await.remove(0);
    assert_eq!(newest.action, action);
    assert_eq!(newest.resource_id, resource_id, "{action}");
    assert_eq!(newest.actor, actor.name, "{action}");
    assert_eq!(newest.actor_type, actor.kind, "{action}");
    *count = now;
}

/// A connection of its own to a test database, for statements the store never runs.
pub enum Raw {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Raw {
    pub async fn connect(db: &TestDb) -> Raw {
        match db.backend() {
            Backend::Sqlite => Raw::Sqlite(SqliteConnection::connect(db.url()).await.unwrap()),
            Backend::Postgres => Raw::Postgres(PgConnection::connect(db.url()).await.unwrap()),
        }
    }

    /// Runs one statement, returning rows affected or the database's error.
    pub async fn exec(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        Ok(match self {
            Raw::Sqlite(c) => c.execute(sql).await?.rows_affected(),
            Raw::Postgres(c) => c.execute(sql).await?.rows_affected(),
        })
    }

    /// Runs a statement that must succeed.
    pub async fn must(&mut self, sql: &str) -> u64 {
        self.exec(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn close(self) {
        match self {
            Raw::Sqlite(c) => c.close().await.unwrap(),
            Raw::Postgres(c) => c.close().await.unwrap(),
        }
    }
}
