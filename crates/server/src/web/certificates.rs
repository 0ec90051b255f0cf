//! The certificates pages: the filterable, cursor-paged inventory with bulk actions, the create
//! form, and one certificate's detail with its lifecycle actions.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use certctl_api::{CertificateVersion, CursorPage, DeploymentTarget, Job, ManagedCertificate, Page, PemExport};

use super::Web;
use super::api_call::{ApiFailure, Choice};
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond, respond_with};
use super::session::Session;

/// Statuses the list can be filtered by.
const STATUSES: &[&str] =
    &["Pending", "Active", "Expiring", "Expired", "RenewalInProgress", "Failed", "Revoked", "Archived"];
/// RFC 5280 reasons the revoke forms offer.
const REASONS: &[&str] =
    &["unspecified", "keyCompromise", "caCompromise", "affiliationChanged", "superseded", "cessationOfOperation"];
/// Rows per page of the inventory.
const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    issuer_id: Option<String>,
    #[serde(default)]
    owner_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

impl ListQuery {
    /// The filter and sort part of a query string (no cursor), for the API and for links.
    fn filters(&self) -> String {
        let mut q = String::new();
        for (k, v) in [
            ("status", &self.status),
            ("issuer_id", &self.issuer_id),
            ("owner_id", &self.owner_id),
            ("team_id", &self.team_id),
            ("environment", &self.environment),
            ("source", &self.source),
            ("sort", &self.sort),
        ] {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                q.push_str(&format!("&{k}={}", urlencode(v)));
            }
        }
        q
    }

    fn is(&self, field: &str, value: &str) -> bool {
        let current = match field {
            "status" => &self.status,
            "issuer_id" => &self.issuer_id,
            "owner_id" => &self.owner_id,
            "team_id" => &self.team_id,
            _ => &None,
        };
        current.as_deref() == Some(value)
    }

    fn text(&self, field: &str) -> &str {
        match field {
            "environment" => self.environment.as_deref().unwrap_or_default(),
            "source" => self.source.as_deref().unwrap_or_default(),
            _ => "",
        }
    }

    /// The link that sorts by `key`, flipping the direction when it already sorts by it.
    fn sort_link(&self, key: &str) -> String {
        let next = if self.sort.as_deref() == Some(key) { format!("-{key}") } else { key.to_owned() };
        let mut q = self.clone_filters();
        q.sort = Some(next);
        format!("/certificates?{}", q.filters().trim_start_matches('&'))
    }

    fn clone_filters(&self) -> ListQuery {
        ListQuery {
            status: self.status.clone(),
            issuer_id: self.issuer_id.clone(),
            owner_id: self.owner_id.clone(),
            team_id: self.team_id.clone(),
            environment: self.environment.clone(),
            source: self.source.clone(),
            sort: self.sort.clone(),
            cursor: None,
            notice: None,
        }
    }
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct ListPage {
    chrome: Chrome,
    query: ListQuery,
    certificates: Vec<ManagedCertificate>,
    next: Option<String>,
    statuses: &'static [&'static str],
    reasons: &'static [&'static str],
    issuers: Vec<Choice>,
    owners: Vec<Choice>,
    teams: Vec<Choice>,
    names: Names,
    notice: Option<String>,
}

impl ListPage {
    /// The inventory filtered to one issuer, owner or team.
    fn filter_link(&self, field: &str, id: &str) -> String {
        format!("/certificates?{field}={}", urlencode(id))
    }
}

/// Most issuers, owners or teams a list page reads to show their names; rows referring to
/// others show the ID. These tables stay small next to the certificates.
const MAX_NAMED: usize = 1000;

/// The names of the issuers, owners and teams rows refer to, read once per page rather than
/// once per row.
struct Names {
    issuers: HashMap<String, String>,
    owners: HashMap<String, String>,
    teams: HashMap<String, String>,
}

impl Names {
    fn of<'a>(map: &'a HashMap<String, String>, id: &'a str) -> &'a str {
        map.get(id).map(String::as_str).unwrap_or(id)
    }

    fn issuer<'a>(&'a self, id: &'a str) -> &'a str {
        Names::of(&self.issuers, id)
    }

    fn owner<'a>(&'a self, id: &'a str) -> &'a str {
        Names::of(&self.owners, id)
    }

    fn team<'a>(&'a self, id: &'a str) -> &'a str {
        Names::of(&self.teams, id)
    }
}

/// (ID, name) pairs as select options.
fn as_choices(named: &[(String, String)]) -> Vec<Choice> {
    named.iter().map(|(id, name)| Choice { id: id.clone(), label: format!("{name} ({id})") }).collect()
}

pub async fn list(
    State(web): State<Web>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let mut uri = format!("/api/v1/certificates?page_size={PAGE_SIZE}{}", query.filters());
    if let Some(cursor) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
        uri.push_str(&format!("&cursor={}", urlencode(cursor)));
    }
    let page: CursorPage<ManagedCertificate> = web.get(&session, &uri).await?;
    let next = page.next_cursor.map(|c| format!("/certificates?cursor={}{}", urlencode(&c), query.filters()));
    let issuers = web.named(&session, "/api/v1/issuers", MAX_NAMED).await?;
    let owners = web.named(&session, "/api/v1/owners", MAX_NAMED).await?;
    let teams = web.named(&session, "/api/v1/teams", MAX_NAMED).await?;
    let page = ListPage {
        chrome: Chrome::new(&session, "certificates"),
        notice: query.notice.clone(),
        certificates: page.data,
        next,
        statuses: STATUSES,
        reasons: REASONS,
        issuers: as_choices(&issuers),
        owners: as_choices(&owners),
        teams: as_choices(&teams),
        names: Names {
            issuers: issuers.into_iter().collect(),
            owners: owners.into_iter().collect(),
            teams: teams.into_iter().collect(),
        },
        query,
    };
    respond(&page)
}

/// Bulk renew, revoke or reassign of the ticked certificates.
pub async fn bulk(State(web): State<Web>, session: Session, fields: Fields) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let ids = fields.all("ids");
    if ids.is_empty() {
        return Ok(Redirect::to("/certificates?notice=Tick+at+least+one+certificate+first.").into_response());
    }
    let (uri, body) = match fields.get("action").unwrap_or_default() {
        "renew" => ("/api/v1/certificates/bulk-renew", json!({"certificate_ids": ids})),
        "revoke" => (
            "/api/v1/certificates/bulk-revoke",
            json!({"certificate_ids": ids, "reason": fields.value("reason").unwrap_or_else(|| "unspecified".into())}),
        ),
        "reassign" => (
            "/api/v1/certificates/bulk-reassign",
            json!({
                "certificate_ids": ids,
                "owner_id": fields.value("owner_id").unwrap_or_default(),
                "team_id": fields.value("team_id"),
            }),
        ),
        other => {
            return Err(WebError::Api {
                status: axum::http::StatusCode::BAD_REQUEST,
                message: format!("action: unknown bulk action '{other}'"),
            });
        }
    };
    let result = web.send(&session, Method::POST, uri, &body).await??;
    let notice = format!(
        "{} of {} certificates done; {} skipped, {} failed.",
        result["total_enqueued"]
            .as_u64()
            .or(result["total_revoked"].as_u64())
            .or(result["total_reassigned"].as_u64())
            .unwrap_or(0),
        result["total_matched"].as_u64().unwrap_or(ids.len() as u64),
        result["total_skipped"].as_u64().unwrap_or(0),
        result["total_failed"].as_u64().unwrap_or(0),
    );
    Ok(Redirect::to(&format!("/certificates?notice={}", urlencode(&notice))).into_response())
}

#[derive(Template)]
#[template(path = "certificate_form.html")]
struct FormPage {
    chrome: Chrome,
    /// Where the form posts, its heading and its button.
    purpose: Purpose,
    values: Fields,
    /// The API's refusal and the field it names, shown next to that field.
    error: Option<ApiFailure>,
    issuers: Vec<Choice>,
    profiles: Vec<Choice>,
    owners: Vec<Choice>,
    teams: Vec<Choice>,
    policies: Vec<Choice>,
    targets: Vec<Choice>,
}

impl FormPage {
    fn value(&self, name: &str) -> String {
        self.values.get(name).unwrap_or_default().to_owned()
    }

    fn selected(&self, name: &str, id: &str) -> bool {
        self.values.all(name).iter().any(|v| v == id)
    }

    /// The error message when it blames `field`.
    fn error_for(&self, field: &str) -> Option<String> {
        let e = self.error.as_ref()?;
        (e.field() == Some(field)).then(|| e.message.clone())
    }

    /// The select fields: name, label and options.
    fn selects(&self) -> [(&'static str, &'static str, &[Choice]); 5] {
        [
            ("issuer_id", "Issuer", &self.issuers),
            ("certificate_profile_id", "Profile", &self.profiles),
            ("owner_id", "Owner", &self.owners),
            ("team_id", "Team", &self.teams),
            ("renewal_policy_id", "Renewal policy", &self.policies),
        ]
    }

    /// The error message when it blames no field of the form.
    fn general_error(&self) -> Option<String> {
        const FIELDS: &[&str] = &[
            "name",
            "common_name",
            "sans",
            "environment",
            "owner_id",
            "team_id",
            "issuer_id",
            "renewal_policy_id",
            "certificate_profile_id",
            "target_ids",
            "tags",
        ];
        let e = self.error.as_ref()?;
        match e.field() {
            Some(f) if FIELDS.iter().any(|x| f.starts_with(x)) => None,
            _ => Some(e.message.clone()),
        }
    }
}

/// What the certificate form does: create a certificate, or edit one.
pub enum Purpose {
    Create,
    Edit { id: String, name: String },
}

impl Purpose {
    fn action(&self) -> String {
        match self {
            Purpose::Create => "/certificates".to_owned(),
            Purpose::Edit { id, .. } => format!("/certificates/{}/edit", urlencode(id)),
        }
    }

    fn heading(&self) -> String {
        match self {
            Purpose::Create => "New certificate".to_owned(),
            Purpose::Edit { name, .. } => format!("Edit {name}"),
        }
    }

    fn submit(&self) -> &'static str {
        match self {
            Purpose::Create => "Create",
            Purpose::Edit { .. } => "Save",
        }
    }
}

pub async fn form_page(
    web: &Web,
    session: &Session,
    purpose: Purpose,
    values: Fields,
    error: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let status = error.as_ref().map(|e| e.status);
    let page = FormPage {
        chrome: Chrome::new(session, "certificates"),
        purpose,
        values,
        error,
        issuers: web.choices(session, "/api/v1/issuers").await?,
        profiles: web.choices(session, "/api/v1/profiles").await?,
        owners: web.choices(session, "/api/v1/owners").await?,
        teams: web.choices(session, "/api/v1/teams").await?,
        policies: web.choices(session, "/api/v1/renewal-policies").await?,
        targets: web.choices(session, "/api/v1/targets").await?,
    };
    respond_with(&page, status)
}

pub async fn new_form(State(web): State<Web>, session: Session) -> Result<Response, WebError> {
    form_page(&web, &session, Purpose::Create, Fields::default(), None).await
}

/// The form's fields as the REST body of a create or an update. The required references are
/// always sent, blank or not, so the API names the one missing; blank optional fields are left
/// out, so an update keeps them; `target_ids` and `tags` are always sent, since they replace
/// the whole set.
pub fn body(fields: &Fields) -> Result<Value, ApiFailure> {
    let sans: Vec<String> = fields
        .get("sans")
        .unwrap_or_default()
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut body = json!({
        "name": fields.value("name").unwrap_or_default(),
        "common_name": fields.value("common_name").unwrap_or_default(),
        "owner_id": fields.value("owner_id").unwrap_or_default(),
        "team_id": fields.value("team_id").unwrap_or_default(),
        "issuer_id": fields.value("issuer_id").unwrap_or_default(),
        "renewal_policy_id": fields.value("renewal_policy_id").unwrap_or_default(),
        "target_ids": fields.all("target_ids"),
        "tags": tags(fields.get("tags").unwrap_or_default())?,
    });
    if !sans.is_empty() {
        body["sans"] = json!(sans);
    }
    if let Some(env) = fields.value("environment") {
        body["environment"] = json!(env);
    }
    if let Some(profile) = fields.value("certificate_profile_id") {
        body["certificate_profile_id"] = json!(profile);
    }
    Ok(body)
}

/// `key=value` pairs separated by commas or lines, as a JSON object.
fn tags(text: &str) -> Result<Value, ApiFailure> {
    let mut out = serde_json::Map::new();
    for pair in text.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(ApiFailure {
                status: StatusCode::BAD_REQUEST,
                message: format!("tags: '{pair}' is not key=value"),
            });
        };
        out.insert(k.trim().to_owned(), json!(v.trim()));
    }
    Ok(Value::Object(out))
}

/// Tags as the form shows them.
pub fn tags_text(tags: &std::collections::BTreeMap<String, String>) -> String {
    tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// Creates a certificate from the form; a refusal re-renders the form with the message next
/// to the field it names.
pub async fn create(State(web): State<Web>, session: Session, fields: Fields) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let outcome = match body(&fields) {
        Ok(body) => web.send(&session, Method::POST, "/api/v1/certificates", &body).await?,
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(created) => {
            let id = created["id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/certificates/{}?notice=Created.", urlencode(id))).into_response())
        }
        Err(failure) => form_page(&web, &session, Purpose::Create, fields, Some(failure)).await,
    }
}

/// A moment in the certificate's life, for the timeline.
pub struct Event {
    pub what: &'static str,
    pub at: String,
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct DetailPage {
    chrome: Chrome,
    cert: ManagedCertificate,
    timeline: Vec<Event>,
    versions: Vec<CertificateVersion>,
    targets: Vec<DeploymentTarget>,
    jobs: Vec<Job>,
    reasons: &'static [&'static str],
    notice: Option<String>,
    /// The current version's private key is held by the server (it generated it), so an
    /// admin may export it.
    server_key: bool,
    is_admin: bool,
    /// Why the last PKCS#12 export was refused.
    export_error: Option<String>,
    /// Names of the issuer, owner, team and renewal policy, each the ID when unreadable.
    issuer_name: String,
    owner_name: String,
    team_name: String,
    policy_name: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

fn when(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub async fn detail(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    detail_page(&web, &session, &id, q.notice, None).await
}

/// One certificate's page; `export_error` is a refused PKCS#12 export, shown at its form with
/// the API's status.
pub async fn detail_page(
    web: &Web,
    session: &Session,
    id: &str,
    notice: Option<String>,
    export_error: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let id = urlencode(id);
    let cert: ManagedCertificate = web.get(session, &format!("/api/v1/certificates/{id}")).await?;
    let versions: Page<CertificateVersion> =
        web.get(session, &format!("/api/v1/certificates/{id}/versions?per_page=20")).await?;
    let targets: certctl_api::CertificateDeployments =
        web.get(session, &format!("/api/v1/certificates/{id}/deployments")).await?;
    let jobs: Page<Job> = web.get(session, &format!("/api/v1/jobs?certificate_id={id}&per_page=20")).await?;
    let mut timeline = vec![Event { what: "Requested", at: when(cert.created_at) }];
    if let Some(v) = versions.data.last() {
        timeline.push(Event { what: "First issued", at: when(v.created_at) });
    }
    if let Some(t) = cert.last_renewal_at {
        timeline.push(Event { what: "Last renewed", at: when(t) });
    }
    if let Some(t) = cert.last_deployment_at {
        timeline.push(Event { what: "Last deployed", at: when(t) });
    }
    if let Some(t) = cert.expires_at {
        timeline.push(Event { what: "Expires", at: when(t) });
    }
    if let Some(t) = cert.revoked_at {
        timeline.push(Event { what: "Revoked", at: when(t) });
    }
    // A server-generated key is issued without a CSR; agent, ACME, EST and SCEP issuance
    // always come with one.
    let server_key = versions.data.first().is_some_and(|v| v.csr_pem.is_none());
    let status = export_error.as_ref().map(|e| e.status);
    let name = async |kind: &str, ref_id: &str| {
        web.name_of(session, &format!("/api/v1/{kind}/{}", urlencode(ref_id)))
            .await
            .unwrap_or_else(|| ref_id.to_owned())
    };
    let issuer_name = name("issuers", &cert.issuer_id).await;
    let owner_name = name("owners", &cert.owner_id).await;
    let team_name = name("teams", &cert.team_id).await;
    let policy_name = name("renewal-policies", &cert.renewal_policy_id).await;
    let page = DetailPage {
        chrome: Chrome::new(session, "certificates"),
        cert,
        timeline,
        versions: versions.data,
        targets: targets.data,
        jobs: jobs.data,
        reasons: REASONS,
        notice,
        server_key,
        is_admin: session.principal.role == certctl_api::Role::Admin,
        export_error: export_error.map(|e| e.message),
        issuer_name,
        owner_name,
        team_name,
        policy_name,
    };
    respond_with(&page, status)
}

pub async fn renew(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let id = urlencode(&id);
    let body = json!({"force": fields.get("force") == Some("on")});
    web.send(&session, Method::POST, &format!("/api/v1/certificates/{id}/renew"), &body).await??;
    Ok(Redirect::to(&format!("/certificates/{id}?notice=Renewal+queued.")).into_response())
}

/// Archives the certificate (the API's DELETE): it stays in the inventory, no longer renewed,
/// deployed or alerted on.
pub async fn archive(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let id = urlencode(&id);
    web.send(&session, Method::DELETE, &format!("/api/v1/certificates/{id}"), &Value::Null).await??;
    Ok(Redirect::to(&format!("/certificates/{id}?notice=Archived.")).into_response())
}

pub async fn revoke(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let id = urlencode(&id);
    let body = json!({"reason": fields.value("reason").unwrap_or_else(|| "unspecified".into())});
    web.send(&session, Method::POST, &format!("/api/v1/certificates/{id}/revoke"), &body).await??;
    Ok(Redirect::to(&format!("/certificates/{id}?notice=Revoked.")).into_response())
}

/// The current certificate and its chain as a PEM download.
pub async fn export_pem(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = urlencode(&id);
    let pem: PemExport = web.get(&session, &format!("/api/v1/certificates/{id}/export/pem")).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{id}.pem\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pem.full_pem,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_without_a_loaded_name_shows_its_id() {
        let names = Names {
            issuers: HashMap::from([("iss-1".to_owned(), "Local CA".to_owned())]),
            owners: HashMap::new(),
            teams: HashMap::new(),
        };
        assert_eq!(names.issuer("iss-1"), "Local CA");
        assert_eq!(names.issuer("iss-2"), "iss-2");
        assert_eq!(names.owner("o-1"), "o-1");
    }

    #[test]
    fn tags_are_key_value_pairs() {
        assert_eq!(tags("a=1, b = x\nc=").unwrap(), json!({"a": "1", "b": "x", "c": ""}));
        assert_eq!(tags(" ").unwrap(), json!({}));
        assert_eq!(tags("a=1, oops").unwrap_err().field(), Some("tags"));
        assert_eq!(tags("=1").unwrap_err().field(), Some("tags"));
    }
}
