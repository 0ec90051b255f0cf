//! The in-process test application: the real router and state over a throwaway database, a
//! manual clock, and one key per role; requests go through `tower::ServiceExt::oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;

use certctl_api::{AuditEvent, Role};
use certctl_server::auth::{generate_key, hash_key};
use certctl_server::clock::{Clock, ManualClock};
use certctl_server::config::RawSettings;
use certctl_server::{AppState, bootstrap, build_state, open_store};
use certctl_store::testing::TestDb;
use certctl_store::{Actor, AuditFilterParsed, Backend, NewApiKey, Paging, Store};

/// Where the manual clock starts.
pub const T0: OffsetDateTime = datetime!(2026-03-01 10:00:00 UTC);

/// Pass as the key to send no `Authorization` header.
pub const NO_KEY: &str = "";

pub struct TestApp {
    pub router: Router,
    /// The application's state, for what a test reaches past the API (the secret box).
    pub state: AppState,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    /// Keys in clear, one per role; their key names are `admin`, `operator` and `viewer`.
    pub admin: String,
    pub operator: String,
    pub viewer: String,
    /// Keeps the data directory (encryption key, TLS files) alive.
    _data_dir: TempDir,
    db: Option<TestDb>,
}

/// A response, its body parsed as JSON when it is JSON (`Value::Null` otherwise).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Reply {
    pub fn request_id(&self) -> &str {
        self.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The `message` of an error body.
    pub fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or_default()
    }

    /// Asserts the status and, for errors, the error code; returns self for more checks.
    #[track_caller]
    pub fn expect(&self, status: u16, error: Option<&str>) -> &Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", String::from_utf8_lossy(&self.body));
        if let Some(code) = error {
            assert_eq!(self.json["error"], code, "body: {}", self.json);
        }
        self
    }

    /// Asserts a 400 whose message starts with `field:` (the field it blames).
    #[track_caller]
    pub fn expect_bad_field(&self, field: &str) {
        self.expect(400, Some("bad_request"));
        assert!(self.message().starts_with(&format!("{field}:")), "message should name {field}: {}", self.message());
    }
}

impl TestApp {
    /// An application over a SQLite database.
    pub async fn new() -> TestApp {
        TestApp::on(Backend::Sqlite).await.expect("SQLite is always available")
    }

    /// An application over `backend`, or `None` when that backend is not available for tests.
    pub async fn on(backend: Backend) -> Option<TestApp> {
        TestApp::on_with(backend, &[]).await
    }

    /// An application over `backend` with extra settings (`name`, `value`) on top of the test
    /// defaults.
    pub async fn on_with(backend: Backend, settings: &[(&str, &str)]) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        let data_dir = tempfile::Builder::new().prefix("certctl-api-").tempdir().unwrap();
        let admin = generate_key();
        let mut raw = RawSettings::default();
        raw.set("data_dir", data_dir.path().display().to_string());
        raw.set("database_url", db.url());
        raw.set("database_max_connections", "4");
        raw.set("bootstrap_api_key", admin.clone());
        for (name, value) in settings {
            raw.set(name, *value);
        }
        let config = raw.into_config().unwrap();
        let store = open_store(&config).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        bootstrap::ensure_admin_key(&store, &config, clock.now()).await.unwrap();
        let operator = add_key(&store, "operator", Role::Operator).await;
        let viewer = add_key(&store, "viewer", Role::Viewer).await;
        let (state, _writer) = build_state(store.clone(), config, clock.clone()).unwrap();
        let router = certctl_server::router(state.clone());
        Some(TestApp { router, state, store, clock, admin, operator, viewer, _data_dir: data_dir, db: Some(db) })
    }

    /// The database URL, for raw connections that do what the store never does.
    pub fn db_url(&self) -> &str {
        self.db.as_ref().map(TestDb::url).expect("the database lives as long as the app")
    }

    /// Closes the store and drops the database now rather than on drop.
    pub async fn finish(mut self) {
        self.store.close().await;
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }

    /// Sends a request and checks what every response must carry: an `X-Request-ID`, repeated
    /// in the body of every JSON error.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let sent_id = req.headers().get("x-request-id").cloned();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let reply = Reply { status, headers, body, json };
        let id = reply.request_id().to_owned();
        assert!(!id.is_empty(), "{status} response without X-Request-ID");
        if let Some(sent) = sent_id.as_ref().and_then(|v| v.to_str().ok())
            && is_sane_request_id(sent)
        {
            assert_eq!(id, sent, "a client's X-Request-ID is echoed");
        }
        if (status.is_client_error() || status.is_server_error())
            && let Some(rid) = reply.json.get("request_id")
        {
            assert_eq!(rid, &Value::String(id), "error body request_id matches the header");
        }
        reply
    }

    pub fn request(method: Method, path: &str, key: &str) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(path);
        if !key.is_empty() {
            b = b.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        b
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.send(Self::request(Method::GET, path, key).body(Body::empty()).unwrap()).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.send(Self::request(Method::DELETE, path, key).body(Body::empty()).unwrap()).await
    }

    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send_body(Method::POST, path, key, body.to_string()).await
    }

    pub async fn put_json(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send_body(Method::PUT, path, key, body.to_string()).await
    }

    /// Sends `body` verbatim as `application/json`.
    pub async fn send_body(&self, method: Method, path: &str, key: &str, body: impl Into<Body>) -> Reply {
        let req = Self::request(method, path, key).header(header::CONTENT_TYPE, "application/json");
        self.send(req.body(body.into()).unwrap()).await
    }

    /// Creates a team through the API and returns its ID.
    pub async fn team(&self, name: &str) -> String {
        let r = self.post_json("/api/v1/teams", &self.operator, &serde_json::json!({ "name": name })).await;
        r.expect(201, None);
        r.json["id"].as_str().unwrap().to_owned()
    }

    /// Creates an owner through the API and returns its ID.
    pub async fn owner(&self, name: &str, team_id: &str) -> String {
        let body = serde_json::json!({ "name": name, "email": format!("{name}@example.com"), "team_id": team_id });
        let r = self.post_json("/api/v1/owners", &self.operator, &body).await;
        r.expect(201, None);
        r.json["id"].as_str().unwrap().to_owned()
    }

    /// Waits (up to 2 s; the audit writer is asynchronous) for an audit record matching
    /// `filter` and `pred`.
    pub async fn wait_for_audit(&self, filter: AuditFilterParsed, pred: impl Fn(&AuditEvent) -> bool) -> AuditEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let page = self.store.list_audit(&filter, &Paging::Page { page: 1, per_page: 500 }).await.unwrap();
            if let Some(e) = page.data().iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "no audit record matching {filter:?} within 2 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The API-call record of `method path` with request ID `request_id`.
    pub async fn api_audit(&self, method: &str, path: &str, request_id: &str) -> AuditEvent {
        let filter = AuditFilterParsed {
            action: Some(format!("api_{}", method.to_ascii_lowercase())),
            resource_id: Some(path.to_owned()),
            ..AuditFilterParsed::default()
        };
        self.wait_for_audit(filter, |e| e.details["request_id"] == request_id).await
    }
}

async fn add_key(store: &Store, name: &str, role: Role) -> String {
    let key = generate_key();
    let new = NewApiKey { name: name.into(), role, key_hash: hash_key(&key), created_by: "tests".into() };
    store.create_api_key(&new, &Actor::system(), T0).await.unwrap();
    key
}

/// What the server accepts as a client request ID (anything else is replaced).
fn is_sane_request_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Hex SHA-256, as the audit records body hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}
