//! The embedded SQLite backend: rusqlite connections driven from the calling task.
//!
//! A statement on a local SQLite file takes microseconds, far less than handing it to a worker
//! thread and waking the task again (the thread-per-connection design of async SQLite drivers
//! spends most of its time in those wake-ups and in copying every value across). So statements
//! run inline: one writer connection behind an async lock (held for a whole transaction), and a
//! few read-only connections in WAL mode, each behind its own lock. A long statement (a scan
//! of the whole inventory) occupies its runtime thread for its duration; the other runtime
//! threads keep serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, ffi};
use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::StoreError;
use crate::sql::Arg;

/// Prepared statements kept per connection; the store has a few hundred distinct statements,
/// and the hot ones stay prepared.
const STATEMENT_CACHE: usize = 256;

/// A connection, taken (`None`) once the store is closed.
type Slot = Arc<Mutex<Option<Connection>>>;

/// A connection held by one task.
pub(crate) struct Guard {
    conn: OwnedMappedMutexGuard<Option<Connection>, Connection>,
    /// A reader's share of the free-reader count, given back after the connection (fields
    /// drop in order), so whoever takes it next finds a free connection.
    _permit: Option<OwnedSemaphorePermit>,
}

impl std::ops::Deref for Guard {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// The connections of one SQLite database file.
pub(crate) struct SqliteDb {
    path: PathBuf,
    writer: Slot,
    readers: Vec<Slot>,
    /// One permit per reader not in use: a task waits for any reader, not a particular one.
    free_readers: Arc<Semaphore>,
    next_reader: AtomicUsize,
    acquire_timeout: Duration,
}

/// The file a `sqlite:` URL names (`sqlite://PATH`, `sqlite:PATH`, optional `?query` ignored).
pub(crate) fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).ok_or_else(|| {
        StoreError::Invalid { field: "database_url", message: format!("'{url}' is not a sqlite: URL") }
    })?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Invalid {
            field: "database_url",
            message: "SQLite needs a file path (an in-memory database is not shared between connections)".into(),
        });
    }
    Ok(PathBuf::from(path))
}

impl SqliteDb {
    /// Opens the writer (creating the file, in WAL mode) and then `readers` read-only
    /// connections.
    pub(crate) fn open(path: &Path, readers: usize, acquire_timeout: Duration) -> Result<SqliteDb, StoreError> {
        let writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // WAL lets readers run beside the writer; NORMAL syncs at checkpoints only, which in WAL
        // mode still never corrupts the database (a power cut may lose the last commits).
        // A multi-row statement inside a transaction keeps a statement journal (the pages it
        // changed, to undo just that statement); past 64 KiB SQLite spills it to a temporary
        // file, which a batch of inserts does on every commit. In memory it costs no writes, and
        // it is dropped when the statement ends.
        writer.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        )?;
        configure(&writer, acquire_timeout)?;
        let readers = (0..readers.max(1))
            .map(|_| {
                let reader = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&reader, acquire_timeout)?;
                Ok(Arc::new(Mutex::new(Some(reader))))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(SqliteDb {
            path: path.to_owned(),
            writer: Arc::new(Mutex::new(Some(writer))),
            free_readers: Arc::new(Semaphore::new(readers.len())),
            readers,
            next_reader: AtomicUsize::new(0),
            acquire_timeout,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A free read-only connection, waiting for the first one released when all are busy.
    pub(crate) async fn reader(&self) -> Result<Guard, StoreError> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.free_readers.clone().acquire_owned())
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        // Holding a permit means at least one reader is unlocked; start at a rotating index so
        // the connections (and their statement caches) share the load.
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(guard) = self.readers[(start + i) % n].clone().try_lock_owned() {
                return open(guard, Some(permit));
            }
        }
        Err(StoreError::Engine("a reader permit was held with every reader locked".into()))
    }

    /// The one write connection.
    pub(crate) async fn writer(&self) -> Result<Guard, StoreError> {
        let guard = tokio::time::timeout(self.acquire_timeout, self.writer.clone().lock_owned())
            .await
            .map_err(|_| self.timed_out())?;
        open(guard, None)
    }

    fn timed_out(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "no SQLite connection became free within {} s",
            self.acquire_timeout.as_secs_f32()
        ))
    }

    /// Waits for each connection to be released, then closes it; later calls fail.
    pub(crate) async fn close(&self) {
        self.free_readers.close();
        for slot in self.readers.iter().chain(std::iter::once(&self.writer)) {
            slot.lock().await.take();
        }
    }
}

fn open(guard: OwnedMutexGuard<Option<Connection>>, permit: Option<OwnedSemaphorePermit>) -> Result<Guard, StoreError> {
    let conn = OwnedMutexGuard::try_map(guard, Option::as_mut)
        .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
    Ok(Guard { conn, _permit: permit })
}

fn configure(conn: &Connection, busy: Duration) -> Result<(), StoreError> {
    // Another process (the CLI beside a running server) may hold the write lock briefly.
    conn.busy_timeout(busy)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// A write transaction on the writer connection; rolled back when dropped uncommitted.
pub(crate) struct SqliteTx {
    guard: Guard,
    open: bool,
}

impl SqliteTx {
    /// `BEGIN IMMEDIATE` takes the write lock at once, so the transaction never fails half-way
    /// by upgrading a read lock.
    pub(crate) fn begin(guard: Guard) -> Result<SqliteTx, StoreError> {
        guard.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx { guard, open: true })
    }

    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.guard
    }

    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.guard.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open
            && !self.guard.is_autocommit()
            && let Err(e) = self.guard.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "rolling back a SQLite transaction failed");
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(e, _) = &err {
            match e.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    return StoreError::Conflict(
                        "a record with the same unique value already exists (unique constraint)".into(),
                    );
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    return StoreError::Conflict(
                        "the change refers to a missing record or removes a referenced one (foreign key)".into(),
                    );
                }
                _ => {}
            }
            if matches!(e.code, ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked) {
                return StoreError::Unavailable(err.to_string());
            }
        }
        StoreError::Engine(err.to_string())
    }
}

/// Prepares (from the connection's cache) and binds a statement. `$N` placeholders are named
/// parameters to SQLite, numbered by first appearance, so each is bound by the number in its
/// name: `$2` may appear before `$1`, or twice.
fn bound<'c>(conn: &'c Connection, text: &str, args: &[Arg]) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut stmt = conn.prepare_cached(text)?;
    for index in 1..=stmt.parameter_count() {
        let number = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| StoreError::Engine(format!("parameter {index} of a statement is not $N")))?;
        let arg = args
            .get(number - 1)
            .ok_or_else(|| StoreError::Engine(format!("statement uses ${number} but binds {} values", args.len())))?;
        match arg {
            Arg::Text(v) => stmt.raw_bind_parameter(index, v.as_deref())?,
            Arg::Int(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::Bool(v) => stmt.raw_bind_parameter(index, i64::from(*v))?,
            Arg::Bytes(v) => stmt.raw_bind_parameter(index, v.as_deref())?,
        }
    }
    Ok(stmt)
}

/// Runs a query and decodes up to `limit` rows.
pub(crate) fn query<T: DeserializeOwned>(
    conn: &Connection,
    text: &str,
    args: &[Arg],
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = bound(conn, text, args)?;
    // Looked up once per statement instead of once per column of every row.
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next()? else { break };
        out.push(T::deserialize(RowDe { row, names: &names }).map_err(|e| StoreError::Corrupt(e.0))?);
    }
    Ok(out)
}

/// Runs a statement and returns the number of rows it changed.
pub(crate) fn execute(conn: &Connection, text: &str, args: &[Arg]) -> Result<u64, StoreError> {
    let mut stmt = bound(conn, text, args)?;
    Ok(stmt.raw_execute()? as u64)
}

/// A decoding failure; becomes [`StoreError::Corrupt`].
#[derive(Debug)]
struct DeError(String);

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        DeError(msg.to_string())
    }
}

/// One result row: a struct reads its fields by column name, a tuple by position.
struct RowDe<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    names: &'a [String],
}

impl<'de> de::Deserializer<'de> for RowDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(Columns { row: self.row, names: self.names, next: 0 })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(Columns { row: self.row, names: self.names, next: 0 })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct enum identifier ignored_any
    }
}

struct Columns<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    names: &'a [String],
    next: usize,
}

impl Columns<'_, '_> {
    fn value(&mut self) -> Result<ValueDe<'_>, DeError> {
        let index = self.next;
        self.next += 1;
        let value = self.row.get_ref(index).map_err(|e| DeError(e.to_string()))?;
        let column = self.names.get(index).map_or("?", String::as_str);
        Ok(ValueDe { value, column })
    }
}

impl<'de> MapAccess<'de> for Columns<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(name) = self.names.get(self.next) else { return Ok(None) };
        seed.deserialize(name.as_str().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        seed.deserialize(self.value()?)
    }
}

impl<'de> SeqAccess<'de> for Columns<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        if self.next >= self.names.len() {
            return Ok(None);
        }
        seed.deserialize(self.value()?).map(Some)
    }
}

/// One column value, decoded into what the field asks for.
struct ValueDe<'a> {
    value: ValueRef<'a>,
    column: &'a str,
}

impl ValueDe<'_> {
    fn mismatch(&self, wanted: &str) -> DeError {
        DeError(format!("{}: expected {wanted}, found {:?}", self.column, self.value.data_type()))
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Null => visitor.visit_none(),
            ValueRef::Integer(i) => visitor.visit_i64(i),
            ValueRef::Real(f) => visitor.visit_f64(f),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => visitor.visit_str(s),
                Err(_) => Err(self.mismatch("UTF-8 text")),
            },
            ValueRef::Blob(b) => visitor.visit_bytes(b),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Integer(i) => visitor.visit_bool(i != 0),
            _ => Err(self.mismatch("a boolean (integer)")),
        }
    }

    /// `Vec<u8>` asks for a sequence; a blob answers it byte by byte.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Blob(b) => visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied())),
            _ => Err(self.mismatch("a blob")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Sample {
        id: String,
        n: i64,
        flag: bool,
        note: Option<String>,
        data: Option<Vec<u8>>,
        #[serde(rename = "type")]
        kind: String,
    }

    fn db() -> (tempfile::TempDir, SqliteDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("t.db"), 2, Duration::from_secs(1)).unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn rows_decode_by_name_and_placeholders_bind_by_number() {
        let (_dir, db) = db();
        let w = db.writer().await.unwrap();
        w.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, flag INTEGER, note TEXT, data BLOB, type TEXT)",
        )
        .unwrap();
        let args = [
            Arg::Text(Some("b".into())),
            Arg::Int(Some(7)),
            Arg::Bool(true),
            Arg::Text(None),
            Arg::Bytes(Some(vec![0, 255])),
        ];
        // $5 before $1 and $2 used twice: bound by number, not by position.
        let changed =
            execute(&w, "INSERT INTO t (data, id, n, flag, note, type) VALUES ($5, $1, $2 + $2, $3, $4, 'x')", &args)
                .unwrap();
        assert_eq!(changed, 1);
        drop(w);
        let r = db.reader().await.unwrap();
        let rows: Vec<Sample> = query(&r, "SELECT * FROM t WHERE id = $1", &args[..1], usize::MAX).unwrap();
        assert_eq!(
            rows,
            vec![Sample { id: "b".into(), n: 14, flag: true, note: None, data: Some(vec![0, 255]), kind: "x".into() }]
        );
        let counted: Vec<(i64, String)> = query(&r, "SELECT COUNT(*), MAX(id) FROM t", &[], usize::MAX).unwrap();
        assert_eq!(counted, vec![(1, "b".to_owned())]);
    }

    #[tokio::test]
    async fn constraint_failures_are_conflicts_and_dropped_transactions_roll_back() {
        let (_dir, db) = db();
        let w = db.writer().await.unwrap();
        w.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY)").unwrap();
        let mut tx = SqliteTx::begin(w).unwrap();
        execute(tx.conn(), "INSERT INTO t (id) VALUES ($1)", &[Arg::Text(Some("a".into()))]).unwrap();
        let dup = execute(tx.conn(), "INSERT INTO t (id) VALUES ($1)", &[Arg::Text(Some("a".into()))]);
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        drop(tx);
        let r = db.reader().await.unwrap();
        let rows: Vec<(i64,)> = query(&r, "SELECT COUNT(*) FROM t", &[], usize::MAX).unwrap();
        assert_eq!(rows, vec![(0,)], "the dropped transaction left a row behind");
    }

    #[tokio::test]
    async fn a_reader_waits_for_whichever_reader_is_released_first() {
        let (_dir, db) = db();
        let first = db.reader().await.unwrap();
        let second = db.reader().await.unwrap();
        let db = Arc::new(db);
        let waiting = tokio::spawn({
            let db = db.clone();
            async move { db.reader().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "both readers are held");
        drop(second);
        waiting.await.unwrap().unwrap();
        drop(first);
        db.close().await;
        assert!(matches!(db.reader().await, Err(StoreError::Unavailable(_))));
        assert!(matches!(db.writer().await, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_text_column_read_as_an_integer_is_reported_as_corrupt() {
        let (_dir, db) = db();
        let r = db.reader().await.unwrap();
        let bad = query::<(i64,)>(&r, "SELECT 'x' AS n", &[], usize::MAX);
        assert!(matches!(&bad, Err(StoreError::Corrupt(m)) if m.contains("expected i64")), "{bad:?}");
    }
}
