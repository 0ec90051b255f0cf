//! Fixtures of the inventory tests: the records a certificate needs, created in one call;
//! agents, which no endpoint creates, made through the store; and [`OpenApp`], an
//! application whose state (secret box) and database the test can reach directly.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection};

use certctl_api::{AgentStatus, AuditEvent};
use certctl_server::AppState;
use certctl_store::{Actor, AuditFilterParsed, NewAgent, Paging, Store};

use crate::harness::{Reply, T0, TestApp};

/// What every certificate refers to.
pub struct Deps {
    pub team: String,
    pub owner: String,
    pub issuer: String,
    pub policy: String,
}

/// Creates `201` or panics with the body; returns the new record's ID.
#[track_caller]
fn created(r: &Reply) -> String {
    r.expect(201, None);
    r.json["id"].as_str().expect("a created record has an id").to_owned()
}

pub async fn issuer(app: &TestApp, name: &str) -> String {
    let body = json!({"name": name, "type": "GenericCA", "config": {"validity_days": 90}});
    created(&app.post_json("/api/v1/issuers", &app.operator, &body).await)
}

pub async fn policy(app: &TestApp, name: &str) -> String {
    created(&app.post_json("/api/v1/renewal-policies", &app.operator, &json!({"name": name})).await)
}

pub async fn profile(app: &TestApp, name: &str) -> String {
    created(&app.post_json("/api/v1/profiles", &app.operator, &json!({"name": name})).await)
}

/// A team, an owner in it, an issuer and a renewal policy, all named after `tag`.
pub async fn deps(app: &TestApp, tag: &str) -> Deps {
    let team = app.team(&format!("team {tag}")).await;
    let owner = app.owner(&format!("owner-{tag}"), &team).await;
    let issuer = issuer(app, &format!("issuer {tag}")).await;
    let policy = policy(app, &format!("policy {tag}")).await;
    Deps { team, owner, issuer, policy }
}

/// A registered agent `agent-<name>` (agents register through their own protocol, not this
/// API).
pub async fn agent(store: &Store, name: &str) -> String {
    let new = NewAgent {
        id: Some(format!("agent-{name}")),
        name: name.to_owned(),
        hostname: format!("{name}.example.com"),
        os: "linux".into(),
        architecture: "amd64".into(),
        ip_address: "10.0.0.1".into(),
        version: "1.0.0".into(),
        status: AgentStatus::Online,
        ..NewAgent::default()
    };
    store.create_agent(&new, &Actor::system(), T0).await.expect("agent is created").id
}

pub async fn target(app: &TestApp, name: &str, agent_id: &str) -> String {
    let body = json!({"name": name, "type": "NGINX", "agent_id": agent_id,
                      "config": {"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}});
    created(&app.post_json("/api/v1/targets", &app.operator, &body).await)
}

/// The body of a minimal certificate creation.
pub fn cert_body(d: &Deps, name: &str) -> Value {
    json!({
        "name": name,
        "common_name": format!("{name}.example.com"),
        "owner_id": d.owner,
        "team_id": d.team,
        "issuer_id": d.issuer,
        "renewal_policy_id": d.policy,
    })
}

/// `base` with the fields of `extra` set.
pub fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

pub async fn cert(app: &TestApp, body: &Value) -> String {
    created(&app.post_json("/api/v1/certificates", &app.operator, body).await)
}

/// Every lifecycle (non-API-call) audit record, newest first.
pub async fn lifecycle_audit(store: &Store) -> Vec<AuditEvent> {
    let all = store
        .list_audit(&AuditFilterParsed::default(), &Paging::Page { page: 1, per_page: 500 })
        .await
        .expect("the audit trail lists");
    all.data().iter().filter(|e| e.resource_type != "api").cloned().collect()
}

/// The IDs of the keys in an array of JSON objects.
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array().expect("an array").iter().map(|v| v["id"].as_str().expect("an id").to_owned()).collect()
}

/// An application over SQLite whose state and database are open to the test: the secret box to
/// open sealed configurations, and a raw connection for what the store never does (retiring an
/// agent) or never shows (the stored row).
pub struct OpenApp {
    app: TestApp,
    pub state: AppState,
    pub admin: String,
    pub viewer: String,
}

impl OpenApp {
    pub async fn new() -> OpenApp {
        let app = TestApp::new().await;
        OpenApp { state: app.state.clone(), admin: app.admin.clone(), viewer: app.viewer.clone(), app }
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub async fn send(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Reply {
        let mut req =
            Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {key}"));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.app.send(req.body(body).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &self.viewer, None).await
    }

    /// A raw connection to the application's database.
    pub async fn raw(&self) -> SqliteConnection {
        SqliteConnection::connect(self.app.db_url()).await.expect("the test database opens")
    }
}
