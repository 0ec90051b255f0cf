//! One SQL statement, written once, run on either backend.
//!
//! Statements use `$1…$N` placeholders, which SQLite and PostgreSQL both accept. Values are
//! always bound, never spliced into the text: `Sql` only appends static fragments and
//! placeholders, which is why handing its text to sqlx as `AssertSqlSafe` is sound.

use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, FromRow, PgConnection};

use crate::{StoreError, sqlite};

/// A bound value. The set is what both backends encode natively.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Bytes(Option<Vec<u8>>),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl From<Option<Vec<u8>>> for Arg {
    fn from(v: Option<Vec<u8>>) -> Self {
        Arg::Bytes(v)
    }
}

/// A statement under construction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

/// A borrowed connection of either backend.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut rusqlite::Connection),
    Postgres(&'a mut PgConnection),
}

impl Conn<'_> {
    pub(crate) fn backend(&self) -> crate::Backend {
        match self {
            Conn::Sqlite(_) => crate::Backend::Sqlite,
            Conn::Postgres(_) => crate::Backend::Postgres,
        }
    }
}

/// Rows decodable from both backends: by sqlx from PostgreSQL, by serde (column names as field
/// names, as sqlx does) from SQLite.
pub(crate) trait Row: for<'r> FromRow<'r, PgRow> + DeserializeOwned + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, PgRow> + DeserializeOwned + Send + Unpin {}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Text(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
            };
        }
        q
    }};
}

/// SQLite statements complete without ever waiting, so a task running many of them would never
/// give its thread back; spending tokio's cooperative budget makes it yield now and then, as a
/// task doing I/O does.
async fn yield_if_due() {
    tokio::task::coop::consume_budget().await;
}

impl Sql {
    /// Starts a statement from static text; add values for its `$N` with [`Sql::arg`].
    pub(crate) fn new(text: &'static str) -> Self {
        Sql { text: text.to_owned(), args: Vec::new() }
    }

    /// Adds the value for the next `$N` already written in the text.
    pub(crate) fn arg(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends static text.
    pub(crate) fn push(&mut self, text: &'static str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder and binds `value` to it.
    pub(crate) fn push_bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends placeholders for `values`, comma-separated (the inside of an `IN (…)` list).
    pub(crate) fn push_list<V: Into<Arg>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(v);
        }
        self
    }

    pub(crate) async fn fetch_all<T: Row>(self, conn: &mut Conn<'_>) -> Result<Vec<T>, StoreError> {
        let Sql { text, args } = self;
        Ok(match conn {
            Conn::Sqlite(c) => {
                yield_if_due().await;
                sqlite::query(c, &text, &args, usize::MAX)?
            }
            Conn::Postgres(c) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(text)), args).fetch_all(&mut **c).await?
            }
        })
    }

    pub(crate) async fn fetch_optional<T: Row>(self, conn: &mut Conn<'_>) -> Result<Option<T>, StoreError> {
        let Sql { text, args } = self;
        Ok(match conn {
            Conn::Sqlite(c) => {
                yield_if_due().await;
                sqlite::query(c, &text, &args, 1)?.pop()
            }
            Conn::Postgres(c) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(text)), args).fetch_optional(&mut **c).await?
            }
        })
    }

    pub(crate) async fn fetch_one<T: Row>(self, conn: &mut Conn<'_>) -> Result<T, StoreError> {
        let Sql { text, args } = self;
        Ok(match conn {
            Conn::Sqlite(c) => {
                yield_if_due().await;
                sqlite::query(c, &text, &args, 1)?.pop().ok_or(StoreError::Database(sqlx::Error::RowNotFound))?
            }
            Conn::Postgres(c) => {
                bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(text)), args).fetch_one(&mut **c).await?
            }
        })
    }

    /// Runs the statement and returns the number of rows it changed.
    pub(crate) async fn execute(self, conn: &mut Conn<'_>) -> Result<u64, StoreError> {
        let Sql { text, args } = self;
        Ok(match conn {
            Conn::Sqlite(c) => {
                yield_if_due().await;
                sqlite::execute(c, &text, &args)?
            }
            Conn::Postgres(c) => {
                bind_all!(sqlx::query(AssertSqlSafe(text)), args).execute(&mut **c).await?.rows_affected()
            }
        })
    }

    /// Runs a statement returning one integer (a count, an existence check).
    pub(crate) async fn fetch_i64(self, conn: &mut Conn<'_>) -> Result<i64, StoreError> {
        let (v,): (i64,) = self.fetch_one(conn).await?;
        Ok(v)
    }
}
