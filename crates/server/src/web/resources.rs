//! The inventory's other resources, each a list with a create form, row actions and delete,
//! described by a table instead of a page of code each. A resource's create form maps its
//! fields onto the REST body; the API validates it and the form shows the field it blames.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use certctl_api::{Page, Role};

use super::Web;
use super::api_call::{ApiFailure, Choice};
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond_with};
use super::session::Session;
use super::typed_config::{self, Fieldset};

/// How a create-form field is entered and encoded.
pub enum Kind {
    Text,
    Email,
    /// An integer.
    Number,
    /// A boolean checkbox.
    Checkbox,
    /// One of fixed values.
    Options(&'static [&'static str]),
    /// The ID of a resource listed at this API path.
    Ref(&'static str),
    /// A JSON object (type-specific configuration).
    Json,
    /// Comma-separated integers.
    Numbers,
}

pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub hint: &'static str,
}

/// A button on each row: POSTs to `{api}/{id}{suffix}`.
pub struct Action {
    pub label: &'static str,
    pub suffix: &'static str,
    pub body: &'static str,
}

pub struct Resource {
    /// URL segment and sidebar key.
    pub path: &'static str,
    pub title: &'static str,
    pub api: &'static str,
    /// (JSON field, column header).
    pub columns: &'static [(&'static str, &'static str)],
    /// Empty when the resource is not created here.
    pub fields: &'static [Field],
    pub actions: &'static [Action],
    pub deletable: bool,
    /// The role writes need: `Operator` (admin or operator) or `Admin`.
    pub write_role: Role,
    pub empty: &'static str,
    /// A field of the create answer shown once (an API key).
    pub reveal: Option<&'static str>,
}

const fn f(name: &'static str, label: &'static str, kind: Kind, hint: &'static str) -> Field {
    Field { name, label, kind, hint }
}

const ISSUER_TYPES: &[&str] = &[
    "GenericCA",
    "ACME",
    "StepCA",
    "OpenSSL",
    "VaultPKI",
    "DigiCert",
    "Sectigo",
    "GoogleCAS",
    "AWSACMPCA",
    "Entrust",
    "GlobalSign",
    "EJBCA",
];
const TARGET_TYPES: &[&str] =
    &["NGINX", "Apache", "HAProxy", "Traefik", "Caddy", "Envoy", "Postfix", "Dovecot", "JavaKeystore", "File"];
const CHANNEL_TYPES: &[&str] = &["Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie", "Email"];

pub const RESOURCES: &[Resource] = &[
    Resource {
        path: "issuers",
        title: "Issuers",
        api: "/api/v1/issuers",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("type", "Type"),
            ("enabled", "Enabled"),
            ("config", "Configuration"),
        ],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("type", "Type", Kind::Options(ISSUER_TYPES), "GenericCA is certctl's built-in CA."),
            f(
                "config",
                "Advanced: configuration as JSON",
                Kind::Json,
                "Optional, and the only way to configure types without fields above; the fields above win. \
                 Secrets are encrypted and never shown again.",
            ),
        ],
        actions: &[],
        deletable: true,
        write_role: Role::Operator,
        empty: "No issuers yet — create the built-in CA: type GenericCA, leaf validity 90 days.",
        reveal: None,
    },
    Resource {
        path: "targets",
        title: "Deployment targets",
        api: "/api/v1/targets",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("type", "Type"),
            ("agent_id", "Agent"),
            ("enabled", "Enabled"),
            ("config", "Configuration"),
        ],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("type", "Type", Kind::Options(TARGET_TYPES), ""),
            f("agent_id", "Agent", Kind::Ref("/api/v1/agents"), "The agent that deploys to this target."),
            f(
                "config",
                "Advanced: configuration as JSON",
                Kind::Json,
                "Optional, for keys without a field above, e.g. {\"key_mode\": \"0640\"}; the fields above win.",
            ),
        ],
        actions: &[],
        deletable: true,
        write_role: Role::Operator,
        empty: "No targets yet. Enrol an agent first, then describe where it deploys.",
        reveal: None,
    },
    Resource {
        path: "agents",
        title: "Agents",
        api: "/api/v1/agents",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("hostname", "Host"),
            ("status", "Status"),
            ("version", "Version"),
            ("last_heartbeat_at", "Last heartbeat"),
        ],
        fields: &[],
        actions: &[],
        deletable: true,
        write_role: Role::Admin,
        empty: "No agents yet. Create an enrolment token (Agent tokens) and start certctl-agent with it.",
        reveal: None,
    },
    Resource {
        path: "agents-retired",
        title: "Retired agents",
        api: "/api/v1/agents/retired",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("hostname", "Host"),
            ("version", "Version"),
            ("last_heartbeat_at", "Last heartbeat"),
            ("retired_at", "Retired"),
        ],
        fields: &[],
        actions: &[],
        deletable: false,
        write_role: Role::Admin,
        empty: "No retired agents.",
        reveal: None,
    },
    Resource {
        path: "agent-tokens",
        title: "Agent enrolment tokens",
        api: "/api/v1/agent-tokens",
        columns: &[("id", "ID"), ("name", "Name"), ("group", "Group"), ("expires_at", "Expires"), ("used_at", "Used")],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("group", "Group", Kind::Text, ""),
            f("expires_in", "Expires in", Kind::Text, "e.g. 24h"),
        ],
        actions: &[],
        deletable: true,
        write_role: Role::Admin,
        empty: "No enrolment tokens.",
        reveal: Some("token"),
    },
    Resource {
        path: "jobs",
        title: "Jobs",
        api: "/api/v1/jobs",
        columns: &[
            ("id", "ID"),
            ("type", "Type"),
            ("certificate_id", "Certificate"),
            ("status", "Status"),
            ("attempts", "Attempts"),
            ("verification_status", "Verification"),
            ("last_error", "Error"),
            ("created_at", "Created"),
        ],
        fields: &[],
        actions: &[Action { label: "Cancel", suffix: "/cancel", body: "{}" }],
        deletable: false,
        write_role: Role::Operator,
        empty: "No jobs yet. Renewing a certificate creates one.",
        reveal: None,
    },
    Resource {
        path: "profiles",
        title: "Certificate profiles",
        api: "/api/v1/profiles",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("key_mode", "Key mode"),
            ("max_ttl_seconds", "Max TTL (s)"),
            ("acme_auth_mode", "ACME auth"),
            ("enabled", "Enabled"),
        ],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("description", "Description", Kind::Text, ""),
            f(
                "key_mode",
                "Key mode",
                Kind::Options(&["", "agent", "server"]),
                "Where keys are made; empty uses the server default.",
            ),
            f("max_ttl_seconds", "Max TTL (seconds)", Kind::Number, ""),
            f("acme_auth_mode", "ACME auth mode", Kind::Options(&["", "trust_authenticated", "challenge"]), ""),
            f("requires_approval", "Requires approval", Kind::Checkbox, ""),
        ],
        actions: &[],
        deletable: true,
        write_role: Role::Operator,
        empty: "No profiles yet.",
        reveal: None,
    },
    Resource {
        path: "renewal-policies",
        title: "Renewal policies",
        api: "/api/v1/renewal-policies",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("renewal_window_days", "Window (days)"),
            ("auto_renew", "Auto-renew"),
            ("max_retries", "Max retries"),
            ("alert_thresholds_days", "Alerts (days)"),
            ("alert_channels", "Channels by severity"),
        ],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("renewal_window_days", "Renewal window (days)", Kind::Number, ""),
            f("auto_renew", "Auto-renew", Kind::Checkbox, ""),
            f("max_retries", "Max retries", Kind::Number, ""),
            f("retry_interval_seconds", "Retry interval (seconds)", Kind::Number, ""),
            f("alert_thresholds_days", "Alert thresholds (days)", Kind::Numbers, "e.g. 30, 14, 7, 1"),
            f(
                "alert_channels",
                "Channels by severity (JSON)",
                Kind::Json,
                "e.g. {\"critical\": [\"ops-hook\"], \"warning\": [\"Email\"]}",
            ),
        ],
        actions: &[],
        deletable: true,
        write_role: Role::Operator,
        empty: "No renewal policies yet.",
        reveal: None,
    },
    Resource {
        path: "teams",
        title: "Teams",
        api: "/api/v1/teams",
        columns: &[("id", "ID"), ("name", "Name"), ("description", "Description")],
        fields: &[f("name", "Name", Kind::Text, ""), f("description", "Description", Kind::Text, "")],
        actions: &[],
        deletable: true,
        write_role: Role::Operator,
        empty: "No teams yet. Every certificate belongs to a team.",
        reveal: None,
    },
    Resource {
        path: "owners",
        title: "Owners",
        api: "/api/v1/owners",
        columns: &[("id", "ID"), ("name", "Name"), ("email", "Email"), ("team_id", "Team")],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("email", "Email", Kind::Email, "Told before their certificates expire."),
            f("team_id", "Team", Kind::Ref("/api/v1/teams"), ""),
        ],
        actions: &[],
        deletable: true,
        write_role: Role::Operator,
        empty: "No owners yet. Create a team first.",
        reveal: None,
    },
    Resource {
        path: "channels",
        title: "Notification channels",
        api: "/api/v1/notification-channels",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("type", "Type"),
            ("enabled", "Enabled"),
            ("config", "Configuration"),
        ],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("type", "Type", Kind::Options(CHANNEL_TYPES), ""),
            f("config", "Configuration (JSON)", Kind::Json, "e.g. {\"url\": \"https://hooks.example.com/certctl\"}"),
        ],
        actions: &[Action { label: "Send test", suffix: "/test", body: "{}" }],
        deletable: true,
        write_role: Role::Operator,
        empty: "No channels yet; alerts go to the channels configured in the environment.",
        reveal: None,
    },
    Resource {
        path: "discovery",
        title: "Discovered certificates",
        api: "/api/v1/discovered-certificates",
        columns: &[
            ("id", "ID"),
            ("common_name", "Common name"),
            ("agent_id", "Agent"),
            ("source_path", "Path"),
            ("status", "Status"),
            ("not_after", "Expires"),
        ],
        fields: &[],
        actions: &[Action { label: "Dismiss", suffix: "/dismiss", body: "{}" }],
        deletable: false,
        write_role: Role::Operator,
        empty: "Nothing discovered yet. Agents report certificates they find in CERTCTL_DISCOVERY_DIRS.",
        reveal: None,
    },
    Resource {
        path: "audit",
        title: "Audit trail",
        api: "/api/v1/audit",
        columns: &[
            ("timestamp", "Time"),
            ("actor", "Actor"),
            ("action", "Action"),
            ("resource_type", "Resource"),
            ("resource_id", "ID"),
        ],
        fields: &[],
        actions: &[],
        deletable: false,
        write_role: Role::Admin,
        empty: "No audit records match.",
        reveal: None,
    },
    Resource {
        path: "api-keys",
        title: "API keys",
        api: "/api/v1/apikeys",
        columns: &[
            ("id", "ID"),
            ("name", "Name"),
            ("role", "Role"),
            ("created_by", "Created by"),
            ("created_at", "Created"),
        ],
        fields: &[
            f("name", "Name", Kind::Text, ""),
            f("role", "Role", Kind::Options(&["viewer", "operator", "admin", "agent"]), ""),
        ],
        actions: &[],
        deletable: true,
        write_role: Role::Admin,
        empty: "No API keys.",
        reveal: Some("key"),
    },
];

pub(super) fn resource(path: &str) -> Result<&'static Resource, WebError> {
    RESOURCES
        .iter()
        .find(|r| r.path == path)
        .ok_or_else(|| WebError::Api { status: StatusCode::NOT_FOUND, message: format!("no page '/{path}'") })
}

/// The resource a request is for: the first segment of its path (each resource has its own
/// routes, so this is always one of [`RESOURCES`]).
fn section(uri: &Uri) -> &str {
    uri.path().trim_start_matches('/').split('/').next().unwrap_or_default()
}

pub(super) fn may_write(session: &Session, r: &Resource) -> bool {
    match r.write_role {
        Role::Admin => session.principal.role == Role::Admin,
        _ => session.can_write(),
    }
}

/// A cell as text: strings as they are, other values as compact JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub struct Row {
    pub id: String,
    pub cells: Vec<String>,
}

/// A field as the form shows it.
pub struct FormField {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    /// `text`, `email`, `number`, `checkbox`, `select` or `textarea`.
    pub input: &'static str,
    pub value: String,
    pub checked: bool,
    pub options: Vec<Choice>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "resources.html")]
struct ListPage {
    chrome: Chrome,
    title: &'static str,
    path: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Row>,
    actions: &'static [Action],
    deletable: bool,
    writable: bool,
    form: Vec<FormField>,
    error: Option<String>,
    empty: &'static str,
    notice: Option<String>,
    /// A secret shown once after it was created.
    revealed: Option<String>,
    page: u32,
    next: Option<String>,
    prev: Option<String>,
    exports: bool,
    /// The ID column links to the record's detail page.
    linked: bool,
    /// Per-type configuration fields, shown before the raw JSON field.
    typed: Vec<Fieldset>,
}

impl ListPage {
    /// Where a row's detail page lives: retired agents keep the agent page.
    fn detail_path(&self) -> &'static str {
        if self.path == "agents-retired" { "agents" } else { self.path }
    }

    /// Links on each row to the resource's own pages: (label, path after the row's ID).
    fn row_links(&self) -> &'static [(&'static str, &'static str)] {
        match self.path {
            "renewal-policies" if self.writable => &[("Edit", "/edit"), ("Edit alerts", "/alerts")],
            "renewal-policies" => &[("Edit alerts", "/alerts")],
            "discovery" if self.writable => &[("Claim", "/claim")],
            p if self.writable && super::resource_edit::editable(p) => &[("Edit", "/edit")],
            _ => &[],
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

impl ListQuery {
    /// The audit filters as a query string suffix.
    fn filters(&self) -> String {
        let mut out = String::new();
        for (k, v) in [("actor", &self.actor), ("action", &self.action)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                out.push_str(&format!("&{k}={}", urlencode(v)));
            }
        }
        out
    }
}

const PER_PAGE: u32 = 50;

pub(super) async fn form(
    web: &Web,
    session: &Session,
    r: &Resource,
    values: &Fields,
    failure: Option<&ApiFailure>,
) -> Result<Vec<FormField>, WebError> {
    let mut out = Vec::with_capacity(r.fields.len());
    for field in r.fields {
        let (input, options) = match &field.kind {
            Kind::Text | Kind::Numbers => ("text", Vec::new()),
            Kind::Email => ("email", Vec::new()),
            Kind::Number => ("number", Vec::new()),
            Kind::Checkbox => ("checkbox", Vec::new()),
            Kind::Json => ("textarea", Vec::new()),
            Kind::Options(values) => {
                ("select", values.iter().map(|v| Choice { id: (*v).to_owned(), label: (*v).to_owned() }).collect())
            }
            Kind::Ref(api) => ("select", web.choices(session, api).await?),
        };
        let error = failure.filter(|f| f.field().is_some_and(|b| b.split('.').next() == Some(field.name)));
        out.push(FormField {
            name: field.name,
            label: field.label,
            hint: field.hint,
            input,
            value: values.get(field.name).unwrap_or_default().to_owned(),
            checked: values.get(field.name) == Some("on"),
            options,
            error: error.map(|f| f.message.clone()),
        });
    }
    Ok(out)
}

async fn render_list(
    web: &Web,
    session: &Session,
    r: &'static Resource,
    query: &ListQuery,
    values: &Fields,
    failure: Option<&ApiFailure>,
    revealed: Option<String>,
) -> Result<Response, WebError> {
    let page_no = query.page.unwrap_or(1).max(1);
    let filters = query.filters();
    let uri = format!("{}?per_page={PER_PAGE}&page={page_no}{filters}", r.api);
    let page: Page<Value> = web.get(session, &uri).await?;
    let rows = page
        .data
        .iter()
        .map(|v| Row {
            id: v["id"].as_str().map(str::to_owned).unwrap_or_else(|| cell(&v["id"])),
            cells: r.columns.iter().map(|(k, _)| cell(&v[*k])).collect(),
        })
        .collect();
    let writable = may_write(session, r);
    // A refused `config.<key>` that the chosen type's fieldset shows is blamed there.
    let typed = typed_config::for_resource(r.path);
    let chosen = values.get("type").unwrap_or_default();
    let blamed = failure.and_then(|f| {
        let key = f.field()?.strip_prefix("config.")?.split('[').next()?;
        let (_, message) = f.message.split_once(':')?;
        typed.filter(|t| t.shows(chosen, key)).map(|_| (key, message.trim()))
    });
    let form_failure = if blamed.is_some() { None } else { failure };
    let more = i64::from(page_no) * i64::from(PER_PAGE) < page.total;
    let list = ListPage {
        chrome: Chrome::new(session, r.path),
        title: r.title,
        path: r.path,
        headers: r.columns.iter().map(|(_, h)| *h).collect(),
        rows,
        actions: r.actions,
        deletable: r.deletable,
        writable,
        form: if writable { form(web, session, r, values, form_failure).await? } else { Vec::new() },
        error: failure
            .filter(|f| f.field().is_none_or(|b| !r.fields.iter().any(|x| b.split('.').next() == Some(x.name))))
            .map(|f| f.message.clone()),
        empty: r.empty,
        notice: query.notice.clone(),
        revealed,
        page: page_no,
        next: more.then(|| format!("/{}?page={}{filters}", r.path, page_no + 1)),
        prev: (page_no > 1).then(|| format!("/{}?page={}{filters}", r.path, page_no - 1)),
        exports: r.path == "audit",
        linked: super::details::has_detail(r.path) || r.path == "agents-retired",
        typed: match typed {
            Some(t) if writable => t.fieldsets(values, blamed),
            _ => Vec::new(),
        },
    };
    respond_with(&list, failure.map(|f| f.status))
}

pub async fn list(
    State(web): State<Web>,
    session: Session,
    uri: Uri,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let r = resource(section(&uri))?;
    render_list(&web, &session, r, &query, &Fields::default(), None, None).await
}

/// The create form's fields as the REST body.
pub(super) fn body(r: &Resource, fields: &Fields) -> Result<Value, ApiFailure> {
    let bad = |name: &str, why: &str| ApiFailure { status: StatusCode::BAD_REQUEST, message: format!("{name}: {why}") };
    let mut body = Map::new();
    for field in r.fields {
        let raw = fields.value(field.name);
        let value = match (&field.kind, raw) {
            (Kind::Checkbox, raw) => json!(raw.as_deref() == Some("on")),
            (_, None) => continue,
            (Kind::Number, Some(v)) => json!(v.parse::<i64>().map_err(|_| bad(field.name, "must be a whole number"))?),
            (Kind::Numbers, Some(v)) => {
                let parsed: Result<Vec<i64>, _> = v.split(',').map(|p| p.trim().parse::<i64>()).collect();
                json!(parsed.map_err(|_| bad(field.name, "must be comma-separated whole numbers"))?)
            }
            (Kind::Json, Some(v)) => match serde_json::from_str::<Value>(&v) {
                Ok(o @ Value::Object(_)) => o,
                _ => return Err(bad(field.name, "must be a JSON object")),
            },
            (_, Some(v)) => json!(v),
        };
        body.insert(field.name.to_owned(), value);
    }
    if let Some(typed) = typed_config::for_resource(r.path) {
        let raw = match body.remove("config") {
            Some(Value::Object(raw)) => Some(raw),
            _ => None,
        };
        let chosen = fields.get("type").unwrap_or_default();
        body.insert("config".to_owned(), typed.config(chosen, raw, fields)?);
    }
    Ok(Value::Object(body))
}

pub async fn create(State(web): State<Web>, session: Session, uri: Uri, fields: Fields) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let r = resource(section(&uri))?;
    if r.fields.is_empty() {
        return Err(WebError::Api {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{} are not created here", r.title),
        });
    }
    let outcome = match body(r, &fields) {
        Ok(body) => web.send(&session, Method::POST, r.api, &body).await?,
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(created) => match r.reveal {
            // The secret is shown in this response only, never put in a URL.
            Some(field) => {
                let secret = created[field].as_str().unwrap_or_default().to_owned();
                render_list(&web, &session, r, &ListQuery::default(), &Fields::default(), None, Some(secret)).await
            }
            None => Ok(Redirect::to(&format!("/{}?notice=Created.", r.path)).into_response()),
        },
        Err(failure) => render_list(&web, &session, r, &ListQuery::default(), &fields, Some(&failure), None).await,
    }
}

/// A row action or delete, then back to the list with what happened.
pub async fn act(
    State(web): State<Web>,
    session: Session,
    uri: Uri,
    Path((id, verb)): Path<(String, String)>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let r = resource(section(&uri))?;
    let id_enc = urlencode(&id);
    let outcome = if verb == "delete" && r.deletable {
        web.send(&session, Method::DELETE, &format!("{}/{id_enc}", r.api), &Value::Null).await?
    } else if let Some(a) = r.actions.iter().find(|a| a.suffix.trim_start_matches('/') == verb) {
        let body: Value = serde_json::from_str(a.body).unwrap_or(json!({}));
        web.send(&session, Method::POST, &format!("{}/{id_enc}{}", r.api, a.suffix), &body).await?
    } else {
        return Err(WebError::Api {
            status: StatusCode::NOT_FOUND,
            message: format!("no action '{verb}' on {}", r.title),
        });
    };
    outcome?;
    let notice = if verb == "delete" { format!("Deleted {id}.") } else { format!("{verb}: done for {id}.") };
    Ok(Redirect::to(&format!("/{}?notice={}", r.path, urlencode(&notice))).into_response())
}

/// The audit trail as CSV or JSON (up to 10,000 newest records matching the filters).
pub async fn audit_export(
    State(web): State<Web>,
    session: Session,
    Path(format): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let filters = query.filters();
    let mut rows = Vec::new();
    for page in 1..=20u32 {
        let p: Page<Value> = web.get(&session, &format!("/api/v1/audit?per_page=500&page={page}{filters}")).await?;
        let done = p.data.len() < 500;
        rows.extend(p.data);
        if done {
            break;
        }
    }
    let (mime, name, body) = match format.as_str() {
        "audit.json" => ("application/json", "audit.json", serde_json::to_string_pretty(&rows).unwrap_or_default()),
        "audit.csv" => {
            let cols = ["id", "timestamp", "actor", "actor_type", "action", "resource_type", "resource_id", "details"];
            let mut out = cols.join(",") + "\n";
            for r in &rows {
                let line: Vec<String> = cols.iter().map(|c| csv_field(&cell(&r[*c]))).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            ("text/csv; charset=utf-8", "audit.csv", out)
        }
        _ => {
            return Err(WebError::Api {
                status: StatusCode::NOT_FOUND,
                message: "exports are audit.csv and audit.json".into(),
            });
        }
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, mime.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response())
}

/// A CSV field, quoted when it needs to be; a leading formula character is neutralised so a
/// spreadsheet never evaluates audit text.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) { format!("'{v}") } else { v.to_owned() };
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn every_resource_has_a_unique_path_and_columns() {
        let mut paths: Vec<&str> = RESOURCES.iter().map(|r| r.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), RESOURCES.len());
        assert!(RESOURCES.iter().all(|r| !r.columns.is_empty() && r.api.starts_with("/api/v1/")));
    }
}
