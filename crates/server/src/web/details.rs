//! Detail pages of issuers (with their CA hierarchy), deployment targets, agents and jobs, and
//! the actions taken from them: testing an issuer, creating and retiring its CAs, retiring an
//! agent, approving or rejecting a job, downloading an issuer's CA chain. Like every page they read and write through the REST
//! API; a refused action is shown next to its form, a refused page is the error page.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use certctl_api::{Agent, DeploymentTarget, IntermediateCa, Issuer, IssuerType, Job, JobStatus, Page, Role};

use super::Web;
use super::api_call::{ApiFailure, Choice};
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond, respond_with};
use super::session::Session;

/// Key algorithms a new CA may use, as the API names them.
const ALGORITHMS: &[&str] = &["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"];
/// Rows of the job tables on the target and agent pages.
const JOB_ROWS: u32 = 50;

/// The detail pages and their actions. Their static segments (`approve`, `retire`) take
/// precedence over the resource lists' `/{path}/{id}/{verb}` row actions.
pub fn routes(router: Router<Web>) -> Router<Web> {
    router
        .route("/issuers/{id}", get(issuer))
        .route("/issuers/{id}/test", post(test_issuer))
        .route("/issuers/{id}/ca-chain.pem", get(ca_chain))
        .route("/issuers/{id}/intermediates", post(create_intermediate))
        .route("/issuers/{id}/cas/{ca}/retire", post(retire_ca))
        .route("/targets/{id}", get(target))
        .route("/agents/{id}", get(agent))
        .route("/agents/{id}/retire", post(retire_agent))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/approve", post(approve_job))
        .route("/jobs/{id}/reject", post(reject_job))
}

/// The issuer's signing CA chain (signing CA first, root last) as a PEM file download.
async fn ca_chain(State(web): State<Web>, session: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let pem = web.get_raw(&session, &format!("/api/v1/issuers/{}/ca", urlencode(&id))).await?;
    // The file name keeps only characters that need no quoting in the header.
    let name: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}-ca-chain.pem\"")),
        ],
        pem,
    )
        .into_response())
}

/// The list pages whose ID column links to a detail page here.
pub fn has_detail(path: &str) -> bool {
    matches!(path, "issuers" | "targets" | "agents" | "jobs")
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

/// The result of an action shown on the page it was taken from.
pub struct Outcome {
    pub ok: bool,
    pub message: String,
}

/// A time as the pages show it.
fn when(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn when_opt(t: Option<OffsetDateTime>) -> String {
    t.map(when).unwrap_or_default()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn is_admin(session: &Session) -> bool {
    session.principal.role == Role::Admin
}

/// A refusal the page cannot show next to a form (no right to act, no such record) becomes the
/// error page; any other is the form's to show.
fn form_failure(f: ApiFailure) -> Result<ApiFailure, WebError> {
    if matches!(f.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND) { Err(f.into()) } else { Ok(f) }
}

/// `uri` as a GET; `None` when the key may not read it (CA hierarchies are admin-only).
async fn get_if_allowed<T: serde::de::DeserializeOwned>(
    web: &Web,
    session: &Session,
    uri: &str,
) -> Result<Option<T>, WebError> {
    match web.get(session, uri).await {
        Ok(v) => Ok(Some(v)),
        Err(WebError::Api { status: StatusCode::FORBIDDEN, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A job as the job tables show it.
pub struct JobRow {
    pub id: String,
    pub job_type: String,
    pub status: String,
    pub certificate_id: String,
    pub target_id: String,
    pub attempts: String,
    pub verification: String,
    pub error: String,
    pub created: String,
}

impl From<Job> for JobRow {
    fn from(j: Job) -> Self {
        JobRow {
            job_type: j.job_type.to_string(),
            status: j.status.to_string(),
            attempts: format!("{}/{}", j.attempts, j.max_attempts),
            verification: j.verification_status,
            error: j.last_error.unwrap_or_default(),
            created: when(j.created_at),
            target_id: j.target_id.unwrap_or_default(),
            certificate_id: j.certificate_id,
            id: j.id,
        }
    }
}

async fn jobs(web: &Web, session: &Session, filter: &str, id: &str) -> Result<Vec<JobRow>, WebError> {
    let page: Page<Job> =
        web.get(session, &format!("/api/v1/jobs?{filter}={}&per_page={JOB_ROWS}", urlencode(id))).await?;
    Ok(page.data.into_iter().map(JobRow::from).collect())
}

// Issuers and their CA hierarchy.

/// The answer of `GET /issuers/{id}/intermediates`.
#[derive(Deserialize)]
struct CaList {
    data: Vec<IntermediateCa>,
}

/// One CA in the hierarchy tree, in pre-order.
pub struct CaNode {
    pub ca: IntermediateCa,
    pub not_after: String,
    pub constraints: String,
    pub has_children: bool,
    /// The `</ul></li>` pairs closing the levels this node ends.
    pub closing: String,
}

/// What the create-CA form was filled with.
#[derive(Default)]
pub struct CaForm {
    pub name: String,
    pub parent_ca_id: String,
    pub common_name: String,
    pub organization: String,
    pub algorithm: String,
    pub ttl_days: String,
    pub path_len_constraint: String,
    pub permitted_dns: String,
    pub excluded_dns: String,
    pub permitted_ip: String,
    pub excluded_ip: String,
}

impl CaForm {
    fn from_fields(f: &Fields) -> CaForm {
        let v = |n: &str| f.value(n).unwrap_or_default();
        CaForm {
            name: v("name"),
            parent_ca_id: v("parent_ca_id"),
            common_name: v("common_name"),
            organization: v("organization"),
            algorithm: v("algorithm"),
            ttl_days: v("ttl_days"),
            path_len_constraint: v("path_len_constraint"),
            permitted_dns: v("permitted_dns"),
            excluded_dns: v("excluded_dns"),
            permitted_ip: v("permitted_ip"),
            excluded_ip: v("excluded_ip"),
        }
    }

    /// The REST body of `POST /issuers/{id}/intermediates`.
    fn body(&self) -> Result<Value, ApiFailure> {
        let bad =
            |name: &str, why: &str| ApiFailure { status: StatusCode::BAD_REQUEST, message: format!("{name}: {why}") };
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name));
        for (k, v) in [
            ("parent_ca_id", &self.parent_ca_id),
            ("common_name", &self.common_name),
            ("organization", &self.organization),
            ("algorithm", &self.algorithm),
        ] {
            if !v.is_empty() {
                body.insert(k.into(), json!(v));
            }
        }
        if !self.ttl_days.is_empty() {
            let days = self.ttl_days.parse::<i64>().map_err(|_| bad("ttl_days", "must be a whole number"))?;
            body.insert("ttl_days".into(), json!(days));
        }
        if !self.path_len_constraint.is_empty() {
            let n =
                self.path_len_constraint.parse::<u8>().map_err(|_| bad("path_len_constraint", "must be 0 to 255"))?;
            body.insert("path_len_constraint".into(), json!(n));
        }
        let list = |v: &str| -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        let mut nc = Map::new();
        for (k, v) in [
            ("permitted_dns", &self.permitted_dns),
            ("excluded_dns", &self.excluded_dns),
            ("permitted_ip", &self.permitted_ip),
            ("excluded_ip", &self.excluded_ip),
        ] {
            if !list(v).is_empty() {
                nc.insert(k.into(), json!(list(v)));
            }
        }
        if !nc.is_empty() {
            body.insert("name_constraints".into(), Value::Object(nc));
        }
        Ok(Value::Object(body))
    }
}

#[derive(Template)]
#[template(path = "detail_issuer.html")]
struct IssuerPage {
    chrome: Chrome,
    issuer: Issuer,
    fields: Vec<(&'static str, String)>,
    config: String,
    local_ca: bool,
    /// `None` when this key may not see the hierarchy.
    tree: Option<Vec<CaNode>>,
    parents: Vec<Choice>,
    admin: bool,
    notice: Option<String>,
    test: Option<Outcome>,
    ca_error: Option<String>,
    form: CaForm,
    algorithms: &'static [&'static str],
}

/// Orders CAs parent before child and marks where each level of the tree closes. A CA whose
/// parent is not listed is shown as a root.
fn tree(cas: Vec<IntermediateCa>) -> Vec<CaNode> {
    fn walk(
        parent: Option<&str>,
        depth: usize,
        cas: &[IntermediateCa],
        known: &dyn Fn(&str) -> bool,
        out: &mut Vec<(usize, IntermediateCa)>,
    ) {
        for ca in cas {
            let is_child = match (parent, ca.parent_ca_id.as_deref()) {
                (None, None) => true,
                (None, Some(p)) => !known(p),
                (Some(want), Some(p)) => want == p,
                (Some(_), None) => false,
            };
            // A self-reference would recurse forever; such a CA is a root at most.
            if is_child && ca.parent_ca_id.as_deref() != Some(ca.id.as_str()) {
                out.push((depth, ca.clone()));
                walk(Some(&ca.id), depth + 1, cas, known, out);
            }
        }
    }
    let ids: Vec<String> = cas.iter().map(|c| c.id.clone()).collect();
    let known = |id: &str| ids.iter().any(|i| i == id);
    let mut ordered = Vec::with_capacity(cas.len());
    walk(None, 0, &cas, &known, &mut ordered);
    let depths: Vec<usize> = ordered.iter().map(|(d, _)| *d).collect();
    ordered
        .into_iter()
        .enumerate()
        .map(|(i, (depth, ca))| {
            let next = depths.get(i + 1).copied().unwrap_or(0);
            let has_children = next > depth;
            let closes = if has_children { 0 } else { depth.saturating_sub(next) };
            let nc = &ca.name_constraints;
            let mut parts = Vec::new();
            for (label, v) in [
                ("permitted DNS", &nc.permitted_dns),
                ("excluded DNS", &nc.excluded_dns),
                ("permitted IP", &nc.permitted_ip),
                ("excluded IP", &nc.excluded_ip),
                ("permitted email", &nc.permitted_email),
                ("excluded email", &nc.excluded_email),
            ] {
                if !v.is_empty() {
                    parts.push(format!("{label}: {}", v.join(", ")));
                }
            }
            CaNode {
                not_after: when(ca.not_after),
                constraints: parts.join("; "),
                has_children,
                closing: "</ul></li>".repeat(closes),
                ca,
            }
        })
        .collect()
}

/// What an issuer page shows besides the issuer: the outcome of what was just done there.
#[derive(Default)]
struct IssuerExtras {
    notice: Option<String>,
    test: Option<Outcome>,
    ca_error: Option<String>,
    form: CaForm,
    status: Option<StatusCode>,
}

async fn render_issuer(web: &Web, session: &Session, id: &str, extras: IssuerExtras) -> Result<Response, WebError> {
    let IssuerExtras { notice, test, ca_error, form, status } = extras;
    let enc = urlencode(id);
    let issuer: Issuer = web.get(session, &format!("/api/v1/issuers/{enc}")).await?;
    let local_ca = issuer.issuer_type == IssuerType::GenericCa;
    let cas: Option<CaList> = if local_ca {
        get_if_allowed(web, session, &format!("/api/v1/issuers/{enc}/intermediates")).await?
    } else {
        None
    };
    let parents = cas
        .as_ref()
        .map(|p| {
            p.data
                .iter()
                .filter(|c| c.state == "active")
                .map(|c| Choice { id: c.id.clone(), label: format!("{} ({})", c.name, c.id) })
                .collect()
        })
        .unwrap_or_default();
    let fields = vec![
        ("ID", issuer.id.clone()),
        ("Type", issuer.issuer_type.to_string()),
        ("Enabled", issuer.enabled.to_string()),
        ("Source", issuer.source.clone()),
        ("Last test", format!("{} {}", issuer.test_status, when_opt(issuer.last_tested_at))),
        ("Created", when(issuer.created_at)),
        ("Updated", when(issuer.updated_at)),
    ];
    let page = IssuerPage {
        chrome: Chrome::new(session, "issuers"),
        config: pretty(&issuer.config),
        fields,
        local_ca,
        tree: cas.map(|p| tree(p.data)),
        parents,
        admin: is_admin(session),
        notice,
        test,
        ca_error,
        form,
        algorithms: ALGORITHMS,
        issuer,
    };
    respond_with(&page, status)
}

pub async fn issuer(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    render_issuer(&web, &session, &id, IssuerExtras { notice: q.notice, ..IssuerExtras::default() }).await
}

/// Runs the issuer's connection test and shows what it found.
pub async fn test_issuer(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let uri = format!("/api/v1/issuers/{}/test", urlencode(&id));
    let (outcome, status) = match web.send(&session, Method::POST, &uri, &json!({})).await? {
        Ok(v) => (Outcome { ok: true, message: v["message"].as_str().unwrap_or("ok").to_owned() }, None),
        Err(f) => {
            let f = form_failure(f)?;
            (Outcome { ok: false, message: f.message }, Some(f.status))
        }
    };
    render_issuer(&web, &session, &id, IssuerExtras { test: Some(outcome), status, ..IssuerExtras::default() }).await
}

pub async fn create_intermediate(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let form = CaForm::from_fields(&fields);
    let outcome = match form.body() {
        Ok(body) => {
            let uri = format!("/api/v1/issuers/{}/intermediates", urlencode(&id));
            web.send(&session, Method::POST, &uri, &body).await?
        }
        Err(f) => Err(f),
    };
    match outcome {
        Ok(created) => {
            let notice = format!("Created CA {}.", created["id"].as_str().unwrap_or_default());
            Ok(Redirect::to(&format!("/issuers/{}?notice={}", urlencode(&id), urlencode(&notice))).into_response())
        }
        Err(f) => {
            let f = form_failure(f)?;
            let extras =
                IssuerExtras { ca_error: Some(f.message), form, status: Some(f.status), ..IssuerExtras::default() };
            render_issuer(&web, &session, &id, extras).await
        }
    }
}

/// Retires a CA: active → retiring, or with `confirm` retiring → retired.
pub async fn retire_ca(
    State(web): State<Web>,
    session: Session,
    Path((id, ca)): Path<(String, String)>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let body = json!({"confirm": fields.get("confirm") == Some("on")});
    let uri = format!("/api/v1/intermediates/{}/retire", urlencode(&ca));
    match web.send(&session, Method::POST, &uri, &body).await? {
        Ok(v) => {
            let notice = format!("CA {ca} is {}.", v["state"].as_str().unwrap_or("changed"));
            Ok(Redirect::to(&format!("/issuers/{}?notice={}", urlencode(&id), urlencode(&notice))).into_response())
        }
        Err(f) => {
            let f = form_failure(f)?;
            let extras = IssuerExtras { ca_error: Some(f.message), status: Some(f.status), ..IssuerExtras::default() };
            render_issuer(&web, &session, &id, extras).await
        }
    }
}

// Targets.

#[derive(Template)]
#[template(path = "detail_target.html")]
struct TargetPage {
    chrome: Chrome,
    target: DeploymentTarget,
    fields: Vec<(&'static str, String)>,
    config: String,
    jobs: Vec<JobRow>,
}

pub async fn target(State(web): State<Web>, session: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let target: DeploymentTarget = web.get(&session, &format!("/api/v1/targets/{}", urlencode(&id))).await?;
    let fields = vec![
        ("ID", target.id.clone()),
        ("Type", target.target_type.to_string()),
        ("Enabled", target.enabled.to_string()),
        ("Last test", format!("{} {}", target.test_status, when_opt(target.last_tested_at))),
        ("Retired", format!("{} {}", when_opt(target.retired_at), target.retired_reason.clone().unwrap_or_default())),
        ("Created", when(target.created_at)),
        ("Updated", when(target.updated_at)),
    ];
    let page = TargetPage {
        chrome: Chrome::new(&session, "targets"),
        config: pretty(&target.config),
        fields,
        jobs: jobs(&web, &session, "target_id", &target.id).await?,
        target,
    };
    respond(&page)
}

// Agents.

#[derive(Template)]
#[template(path = "detail_agent.html")]
struct AgentPage {
    chrome: Chrome,
    agent: Agent,
    /// `online`, `offline`, `degraded` or `retired`.
    state: String,
    fields: Vec<(&'static str, String)>,
    targets: Vec<DeploymentTarget>,
    jobs: Vec<JobRow>,
    admin: bool,
    notice: Option<String>,
    error: Option<String>,
    force: bool,
    reason: String,
}

async fn render_agent(
    web: &Web,
    session: &Session,
    id: &str,
    notice: Option<String>,
    failure: Option<(ApiFailure, bool, String)>,
) -> Result<Response, WebError> {
    let enc = urlencode(id);
    let agent: Agent = web.get(session, &format!("/api/v1/agents/{enc}")).await?;
    let targets: Page<DeploymentTarget> =
        web.get(session, &format!("/api/v1/targets?agent_id={enc}&per_page=500")).await?;
    let state = if agent.retired_at.is_some() { "retired".to_owned() } else { agent.status.to_string().to_lowercase() };
    let fields = vec![
        ("ID", agent.id.clone()),
        ("Hostname", agent.hostname.clone()),
        ("OS", agent.os.clone()),
        ("Architecture", agent.architecture.clone()),
        ("Version", agent.version.clone()),
        ("IP address", agent.ip_address.clone()),
        ("Last heartbeat", when_opt(agent.last_heartbeat_at)),
        ("Registered", when(agent.registered_at)),
        ("Retired", format!("{} {}", when_opt(agent.retired_at), agent.retired_reason.clone().unwrap_or_default())),
    ];
    let (status, error, force, reason) = match failure {
        Some((f, force, reason)) => (Some(f.status), Some(f.message), force, reason),
        None => (None, None, false, String::new()),
    };
    let page = AgentPage {
        chrome: Chrome::new(session, "agents"),
        state,
        fields,
        targets: targets.data,
        jobs: jobs(web, session, "agent_id", &agent.id).await?,
        agent,
        admin: is_admin(session),
        notice,
        error,
        force,
        reason,
    };
    respond_with(&page, status)
}

pub async fn agent(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    render_agent(&web, &session, &id, q.notice, None).await
}

/// Retires the agent; with `force` (and a reason) its targets and open jobs go with it.
pub async fn retire_agent(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let force = fields.get("force") == Some("on");
    let reason = fields.value("reason").unwrap_or_default();
    let mut uri = format!("/api/v1/agents/{}?force={force}", urlencode(&id));
    if !reason.is_empty() {
        uri.push_str(&format!("&reason={}", urlencode(&reason)));
    }
    match web.send(&session, Method::DELETE, &uri, &Value::Null).await? {
        Ok(_) => Ok(Redirect::to(&format!("/agents/{}?notice=Retired.", urlencode(&id))).into_response()),
        Err(f) => {
            let f = form_failure(f)?;
            render_agent(&web, &session, &id, None, Some((f, force, reason))).await
        }
    }
}

// Jobs.

#[derive(Template)]
#[template(path = "detail_job.html")]
struct JobPage {
    chrome: Chrome,
    job: Job,
    fields: Vec<(&'static str, String)>,
    open: bool,
    awaiting_approval: bool,
    notice: Option<String>,
    error: Option<String>,
}

async fn render_job(
    web: &Web,
    session: &Session,
    id: &str,
    notice: Option<String>,
    failure: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let job: Job = web.get(session, &format!("/api/v1/jobs/{}", urlencode(id))).await?;
    let fields = vec![
        ("ID", job.id.clone()),
        ("Type", job.job_type.to_string()),
        ("Status", job.status.to_string()),
        ("Attempts", format!("{} of {}", job.attempts, job.max_attempts)),
        ("Last error", job.last_error.clone().unwrap_or_default()),
        ("Scheduled", when(job.scheduled_at)),
        ("Started", when_opt(job.started_at)),
        ("Completed", when_opt(job.completed_at)),
        ("Created", when(job.created_at)),
        ("Verification", job.verification_status.clone()),
        ("Verified", when_opt(job.verified_at)),
        ("Verification error", job.verification_error.clone().unwrap_or_default()),
        ("Verified fingerprint", job.verification_fingerprint.clone().unwrap_or_default()),
    ];
    let status = failure.as_ref().map(|f| f.status);
    let page = JobPage {
        chrome: Chrome::new(session, "jobs"),
        fields,
        open: !job.status.is_terminal(),
        awaiting_approval: job.status == JobStatus::AwaitingApproval,
        notice,
        error: failure.map(|f| f.message),
        job,
    };
    respond_with(&page, status)
}

pub async fn job(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    render_job(&web, &session, &id, q.notice, None).await
}

async fn job_action(web: &Web, session: &Session, id: &str, verb: &str, body: Value) -> Result<Response, WebError> {
    let uri = format!("/api/v1/jobs/{}/{verb}", urlencode(id));
    match web.send(session, Method::POST, &uri, &body).await? {
        Ok(v) => {
            let notice = format!("Job {}.", v["status"].as_str().unwrap_or("changed"));
            Ok(Redirect::to(&format!("/jobs/{}?notice={}", urlencode(id), urlencode(&notice))).into_response())
        }
        Err(f) => render_job(web, session, id, None, Some(form_failure(f)?)).await,
    }
}

pub async fn approve_job(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    job_action(&web, &session, &id, "approve", json!({})).await
}

pub async fn reject_job(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let body = match fields.value("reason") {
        Some(reason) => json!({ "reason": reason }),
        None => json!({}),
    };
    job_action(&web, &session, &id, "reject", body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use certctl_api::NameConstraints;

    fn ca(id: &str, parent: Option<&str>) -> IntermediateCa {
        IntermediateCa {
            id: id.into(),
            issuer_id: "iss".into(),
            parent_ca_id: parent.map(str::to_owned),
            name: id.into(),
            state: "active".into(),
            source: "generated".into(),
            subject: format!("CN={id}"),
            serial_number: "01".into(),
            key_algorithm: "ECDSA-P256".into(),
            path_len_constraint: None,
            name_constraints: NameConstraints::default(),
            not_before: OffsetDateTime::UNIX_EPOCH,
            not_after: OffsetDateTime::UNIX_EPOCH,
            cert_pem: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_tree_puts_children_under_their_parent_and_closes_every_level() {
        // Listed oldest first, with a grandchild created before its uncle.
        let nodes = tree(vec![ca("root", None), ca("a", Some("root")), ca("a1", Some("a")), ca("b", Some("root"))]);
        let order: Vec<&str> = nodes.iter().map(|n| n.ca.id.as_str()).collect();
        assert_eq!(order, ["root", "a", "a1", "b"]);
        let shape: Vec<(bool, &str)> = nodes.iter().map(|n| (n.has_children, n.closing.as_str())).collect();
        assert_eq!(shape, [(true, ""), (true, ""), (false, "</ul></li>"), (false, "</ul></li>")]);
        // Every opened level is closed: one `<ul>` per parent, one `</ul>` per level ended.
        let opened = nodes.iter().filter(|n| n.has_children).count();
        let closed: usize = nodes.iter().map(|n| n.closing.matches("</ul>").count()).sum();
        assert_eq!(opened, closed);
    }

    #[test]
    fn a_ca_whose_parent_is_unknown_is_a_root() {
        let nodes = tree(vec![ca("orphan", Some("gone")), ca("root", None)]);
        assert_eq!(nodes.len(), 2);
        assert!(nodes.iter().all(|n| !n.has_children && n.closing.is_empty()));
    }

    #[test]
    fn the_ca_form_becomes_the_api_body() {
        let form = CaForm {
            name: "Issuing".into(),
            ttl_days: "365".into(),
            path_len_constraint: "0".into(),
            permitted_dns: "example.com, .example.org".into(),
            ..CaForm::default()
        };
        assert_eq!(
            form.body().unwrap(),
            json!({"name": "Issuing", "ttl_days": 365, "path_len_constraint": 0,
                   "name_constraints": {"permitted_dns": ["example.com", ".example.org"]}})
        );
        let bad = CaForm { ttl_days: "soon".into(), ..CaForm::default() };
        assert!(bad.body().unwrap_err().message.starts_with("ttl_days:"));
    }
}
