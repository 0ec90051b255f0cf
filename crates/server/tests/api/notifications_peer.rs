//! Local peers for the notification tests: an HTTP receiver that records every request and
//! answers from a script (status codes, or a hang), and an application built with
//! notification settings.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

use certctl_server::clock::{Clock, ManualClock};
use certctl_server::config::RawSettings;
use certctl_server::{AppState, bootstrap, build_state, open_store};
use certctl_store::Backend;
use certctl_store::testing::TestDb;

use crate::harness::T0;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never answers (the sender's timeout must fire).
    Hang,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct ReceiverState {
    script: VecDeque<Answer>,
    seen: Vec<Recorded>,
}

/// A local HTTP receiver on 127.0.0.1; answers 200 once its script is used up.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

async fn record(State(st): State<Arc<Mutex<ReceiverState>>>, req: Request<Body>) -> StatusCode {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let answer = {
        let mut g = st.lock().unwrap();
        g.seen.push(Recorded { path: parts.uri.path().to_owned(), headers: parts.headers, body });
        g.script.pop_front().unwrap_or(Answer::Status(200))
    };
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = Router::new().fallback(record).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues answers for the next requests.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn seen(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().seen.clone()
    }
}

/// The application with notification settings, a manual clock and an admin key.
pub struct NotifyApp {
    pub router: Router,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub admin: String,
    _data_dir: TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub json: Value,
}

impl NotifyApp {
    /// An application over `db` with `settings` (TOML keys) on top of short retry settings.
    pub async fn on(db: &TestDb, settings: &[(&str, String)]) -> NotifyApp {
        let data_dir = tempfile::Builder::new().prefix("certctl-notify-").tempdir().unwrap();
        let admin = certctl_server::auth::generate_key();
        let mut raw = RawSettings::default();
        raw.set("data_dir", data_dir.path().display().to_string());
        raw.set("database_url", db.url());
        raw.set("database_max_connections", "4");
        raw.set("bootstrap_api_key", admin.clone());
        raw.set("notification_retry_base", "1s");
        raw.set("notification_retry_interval", "1s");
        raw.set("notification_retry_cap", "4s");
        raw.set("notification_max_attempts", "4");
        raw.set("allow_loopback_targets", "true");
        for (k, v) in settings {
            raw.set(k, v.clone());
        }
        let config = raw.into_config().unwrap();
        let store = open_store(&config).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        bootstrap::ensure_admin_key(&store, &config, clock.now()).await.unwrap();
        let (state, _writer) = build_state(store, config, clock.clone()).unwrap();
        let router = certctl_server::router(state.clone());
        NotifyApp { router, state, clock, admin, _data_dir: data_dir }
    }

    pub async fn sqlite(settings: &[(&str, String)]) -> (NotifyApp, TestDb) {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        (NotifyApp::on(&db, settings).await, db)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut b =
            Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {}", self.admin));
        let body = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self.router.clone().oneshot(b.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        Reply { status, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(time::Duration::seconds(secs));
    }
}
