//! Throwaway databases for tests: a SQLite file in a temporary directory, or a database of its
//! own on the PostgreSQL server named by `CERTCTL_TEST_POSTGRES_URL`.
//!
//! Each [`TestDb`] is independent, so tests run in parallel without sharing rows. A PostgreSQL
//! database is dropped by [`TestDb::cleanup`] or, when a test panics first, on drop.

use std::path::Path;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::{Backend, Store, StoreOptions};

/// The variable naming the PostgreSQL server tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "CERTCTL_TEST_POSTGRES_URL";

/// A fresh, empty database for one test.
pub struct TestDb {
    backend: Backend,
    url: String,
    /// Keeps the SQLite file's directory alive; removed on drop.
    dir: Option<tempfile::TempDir>,
    /// The admin URL and name of the PostgreSQL database to drop, until it is dropped.
    postgres: Option<(String, String)>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("backend", &self.backend).field("url", &self.url).finish()
    }
}

impl TestDb {
    /// A new database on `backend`, or `None` when PostgreSQL is not configured for tests (the
    /// caller skips). On CI (`CI=true`) a missing server is a failure, never a silent skip.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite()),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A SQLite database file in a new temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::Builder::new()
            .prefix("certctl-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        TestDb { backend: Backend::Sqlite, url, dir: Some(dir), postgres: None }
    }

    /// A new database `certctl_t_<random>` on the server in `CERTCTL_TEST_POSTGRES_URL`.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
                    panic!(
                        "{POSTGRES_URL_VAR} is unset but CI=true: PostgreSQL tests must run on CI; \
                         set it to a server where the user may CREATE DATABASE, \
                         e.g. postgres://postgres@127.0.0.1:5432/postgres"
                    );
                }
                eprintln!("skipping postgres: {POSTGRES_URL_VAR} unset");
                return None;
            }
        };
        let name = format!("certctl_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}: cannot connect to {admin_url}: {e}"));
        // The name is generated from hex digits only, so splicing it is safe.
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        // Durability across a server crash is not under test; waiting for every commit to
        // reach the disk would only make the suites slow.
        admin
            .execute(AssertSqlSafe(format!("ALTER DATABASE {name} SET synchronous_commit = off")))
            .await
            .unwrap_or_else(|e| panic!("cannot configure test database {name}: {e}"));
        admin.close().await.ok();
        let url = database_url(&admin_url, &name);
        Some(TestDb { backend: Backend::Postgres, url, dir: None, postgres: Some((admin_url, name)) })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL to open this database with (`sqlite://…/t.db` or `postgres://…/certctl_t_…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The temporary directory holding a SQLite database; `None` on PostgreSQL.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// A connected, migrated store over this database. Pools are kept small because many
    /// tests run at once against one PostgreSQL server.
    pub async fn store(&self) -> Store {
        let options = StoreOptions { max_connections: 4, ..StoreOptions::default() };
        let store = Store::connect(&self.url, &options)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to test database {}: {e}", self.url));
        store.migrate().await.unwrap_or_else(|e| panic!("cannot migrate test database {}: {e}", self.url));
        store
    }

    /// Drops the PostgreSQL database now (SQLite files go with the directory on drop).
    pub async fn cleanup(mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            drop_database(&admin_url, &name).await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else { return };
        // Drop may run inside a runtime (or during a panic), where blocking on a future is not
        // allowed; a thread with its own small runtime works in every context.
        let dropped =
            std::thread::spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(drop_database(&admin_url, &name)),
                Err(e) => eprintln!("cannot drop test database {name}: no runtime: {e}"),
            })
            .join();
        if dropped.is_err() {
            eprintln!("dropping a test database panicked");
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    let result = async {
        let mut admin = PgConnection::connect(admin_url).await?;
        // FORCE ends connections a test left open (pools, raw connections).
        admin.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await?;
        admin.close().await
    }
    .await;
    if let Err(e) = result {
        eprintln!("cannot drop test database {name}: {e}");
    }
}

/// `admin_url` with its database path replaced by `/name`, keeping credentials and parameters.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_the_path() {
        assert_eq!(database_url("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(database_url("postgres://h", "x"), "postgres://h/x");
        assert_eq!(database_url("postgres://h/db?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
    }
}
