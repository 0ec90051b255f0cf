//! certctl persistence: one `Store` over SQLite (embedded default) or PostgreSQL.
//!
//! Every statement is written once with `$N` placeholders and runs on both backends; the few
//! places where the backends differ (connection setup, the audit chain lock, job claiming) are
//! matched on [`Backend`] inside this crate and never leak out of it. Times are stored as
//! microseconds since the Unix epoch, JSON as text, so both backends hold identical values.
//!
//! Every mutating method takes the audit entry that describes it and appends that entry in the
//! same transaction, so a change and its audit record commit or vanish together.

mod acme;
mod acme_issuer;
mod acme_policy;
mod acme_setup;
mod agent_protocol;
mod agents;
mod api_keys;
pub mod audit;
mod authorities;
mod certificates;
mod channels;
mod common;
mod deployments;
mod digest;
mod discovery;
mod issuance;
mod issuers;
mod jobs;
mod notifications;
mod organization;
pub mod paging;
mod policies;
mod profiles;
mod sql;
mod sqlite;
mod stats;
mod targets;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod web_sessions;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};
use time::OffsetDateTime;

pub use acme::{
    AccountStatus, AcmeAccount, AcmeAuthz, AcmeBindingRecord, AcmeChallenge, AcmeIdentifier, AcmeIssuance, AcmeOrder,
    AuthzStatus, ChallengeStatus, IssuedBySerial, NewAcmeOrder, OrderStatus, acme_actor,
};
pub use acme_issuer::{AcmeIssuerAccount, ExternalRevocation, RenewalWindow};
pub use acme_policy::{AcmeEabKeyRecord, AcmeGcReport};
pub use agent_protocol::{AgentIdentity, AgentWorkRow, NewAgentToken, Retirement};
pub use agents::NewAgent;
pub use api_keys::{ApiKeyRecord, NewApiKey};
pub use audit::{AuditEntry, AuditFilterParsed, ChainReport};
pub use authorities::{CaRecord, CaState, NewCa, NewRevocation, RevokedSerial, SerialStatus, StoredResponder};
pub use certificates::{CertificateFilter, CertificateListQuery, CsrInputs, ImportedCertificate, NewVersion};
pub use channels::{ChannelRecord, ChannelWrite, DEFAULT_CHANNEL, ExpiryCandidate, Routing, route_certificate_event};
pub use common::Actor;
pub use digest::DIGEST_LIST_LIMIT;
pub use discovery::{DISCOVERY_STATUSES, NewDiscovery};
pub use issuance::{
    AttemptOutcome, Completion, CompletionRequest, IssuedVersion, RenewalRequest, ScanReport, VersionSecrets,
};
pub use issuers::{IssuerChanges, NewIssuer, SealedConfig};
pub use jobs::{JobQuery, NewJob};
pub use notifications::{
    ClaimKind, Claimed, FailureOutcome, NewNotification, NotificationQuery, RetryPolicy, enqueue_notifications,
};
pub use paging::{Listing, Paging};
pub use policies::DEFAULT_RENEWAL_POLICY_ID;
pub use stats::{EXPIRING_WINDOW, InventoryCounts, NOTIFICATION_STATUSES, ONLINE_WINDOW, OPEN_JOB_STATUSES};
pub use targets::{NewTarget, TargetChanges};
pub use web_sessions::WebSession;

use sql::Conn;

/// Errors of the store. Constraint violations are domain errors, never opaque database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist.
    #[error("{resource} '{id}' not found")]
    NotFound { resource: &'static str, id: String },
    /// The change would break uniqueness or remove something still referenced.
    #[error("{0}")]
    Conflict(String),
    /// A field names another resource that does not exist.
    #[error("{field}: {message}")]
    InvalidReference { field: &'static str, message: String },
    /// The caller may not reach this row (an agent asking for another agent's job).
    #[error("{0}")]
    Forbidden(String),
    /// The addressed row is retired for good (a retired agent).
    #[error("{0}")]
    Gone(String),
    /// A caller-supplied value is unusable (for example a cursor from another query).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Stored data cannot be decoded; the database was changed outside certctl.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The embedded database failed.
    #[error("database error: {0}")]
    Engine(String),
    /// No connection became free in time, or the database is locked by another process.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A schema migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return StoreError::Conflict(format!(
                    "a record with the same unique value already exists ({})",
                    db.constraint().unwrap_or("unique constraint")
                ));
            }
            if db.is_foreign_key_violation() {
                return StoreError::Conflict(format!(
                    "the change refers to a missing record or removes a referenced one ({})",
                    db.constraint().unwrap_or("foreign key")
                ));
            }
        }
        StoreError::Database(err)
    }
}

impl StoreError {
    /// Whether the failure is the database being out of reach (worth a 503 and a retry) rather
    /// than a fault in the request or the data.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Connection tuning.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size for PostgreSQL and for SQLite readers.
    pub max_connections: u32,
    /// How long to wait for a connection or a lock before failing.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 16, acquire_timeout: Duration::from_secs(10) }
    }
}

#[derive(Clone)]
enum Db {
    /// WAL mode: a few read-only connections and one writer, so writers queue on its lock
    /// instead of failing with SQLITE_BUSY.
    Sqlite(Arc<sqlite::SqliteDb>),
    Postgres(PgPool),
}

/// The handle every part of the server shares; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
}

enum Pooled {
    Sqlite(sqlite::Guard),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(&mut *c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// An open write transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Sqlite(sqlite::SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            TxInner::Sqlite(t) => Conn::Sqlite(t.conn()),
            TxInner::Postgres(t) => Conn::Postgres(t),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit()?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite file
    /// when missing. Does not migrate.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)?.log_statements(tracing::log::LevelFilter::Trace);
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            return Ok(Store { db: Db::Postgres(pool) });
        }
        // Statements run on the calling task (see `sqlite`), so more readers than cores would
        // only sit idle; a few cover tasks that hold one across other awaits.
        let readers = options.max_connections.clamp(1, 4) as usize;
        let path = sqlite::path_of(url)?;
        let db = sqlite::SqliteDb::open(&path, readers, options.acquire_timeout)?;
        Ok(Store { db: Db::Sqlite(Arc::new(db)) })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(db) => {
                // Migrations keep sqlx's runner and bookkeeping table on a connection of their own.
                let options = SqliteConnectOptions::new()
                    .filename(db.path())
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true);
                let mut conn = options.connect().await?;
                sqlx::migrate!("migrations/sqlite").run(&mut conn).await?;
                conn.close().await?;
            }
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        let mut c = self.reader().await?;
        sql::Sql::new("SELECT CAST(1 AS BIGINT)").fetch_i64(&mut c.conn()).await?;
        Ok(())
    }

    /// Closes every connection; in-flight queries finish first.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(db) => db.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    async fn reader(&self) -> Result<Pooled> {
        Ok(match &self.db {
            Db::Sqlite(db) => Pooled::Sqlite(db.reader().await?),
            Db::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// A connection that may write one statement outside a transaction (the SQLite writer, or
    /// any PostgreSQL connection): a single-statement write costs one round trip instead of three.
    async fn writer(&self) -> Result<Pooled> {
        Ok(match &self.db {
            Db::Sqlite(db) => Pooled::Sqlite(db.writer().await?),
            Db::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a transaction never fails half-way by upgrading a read lock.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.db {
            Db::Sqlite(db) => TxInner::Sqlite(sqlite::SqliteTx::begin(db.writer().await?)?),
            Db::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner })
    }
}

/// Microseconds since the Unix epoch, the stored form of every time.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the epoch.
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn opt_time(us: Option<i64>) -> Option<OffsetDateTime> {
    us.map(from_micros)
}

/// A new, time-ordered ID with a resource prefix, e.g. `team-0193…`.
/// Writes `items` as one batch with `write` (one result per item, in order); when the batch
/// fails as a whole, writes each item alone, so an error lands on the item that caused it.
pub(crate) async fn batch_or_each<'a, I, O, F, Fut>(items: &'a [I], write: F) -> Vec<Result<O>>
where
    F: Fn(&'a [I]) -> Fut,
    Fut: Future<Output = Result<Vec<O>>>,
{
    if items.len() > 1
        && let Ok(all) = write(items).await
    {
        return all.into_iter().map(Ok).collect();
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let one = write(std::slice::from_ref(item)).await.and_then(|mut one| {
            one.pop().ok_or_else(|| StoreError::Engine("a one-item batch returned no result".into()))
        });
        results.push(one);
    }
    results
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn parse_enum<T: FromStr>(column: &str, text: &str) -> Result<T> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("{column}: unexpected value '{text}'")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own map and vector types cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
