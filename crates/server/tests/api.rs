//! The server's integration suite: the REST API in process over a throwaway database (SQLite,
//! and PostgreSQL for a smoke run when `CERTCTL_TEST_POSTGRES_URL` is set), the committed
//! OpenAPI document, and the real binary across a restart.

#[path = "api/access.rs"]
mod access;
#[path = "api/audit.rs"]
mod audit;
#[path = "api/backends.rs"]
mod backends;
#[path = "api/bootstrap.rs"]
mod bootstrap;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/harness.rs"]
mod harness;
#[path = "api/meta.rs"]
mod meta;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/organization.rs"]
mod organization;
#[path = "api/process.rs"]
mod process;
