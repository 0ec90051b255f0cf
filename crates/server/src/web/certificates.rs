//! The certificates pages: the filterable, cursor-paged inventory with bulk actions, the create
//! form, and one certificate's detail with its lifecycle actions.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use certctl_api::{CertificateVersion, CursorPage, DeploymentTarget, Job, ManagedCertificate, Page, PemExport};

use super::Web;
use super::api_call::{ApiFailure, Choice};
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond};
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
    notice: Option<String>,
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
    let page = ListPage {
        chrome: Chrome::new(&session, "certificates"),
        notice: query.notice.clone(),
        certificates: page.data,
        next,
        statuses: STATUSES,
        reasons: REASONS,
        issuers: web.choices(&session, "/api/v1/issuers").await?,
        owners: web.choices(&session, "/api/v1/owners").await?,
        teams: web.choices(&session, "/api/v1/teams").await?,
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
            json!({"certificate_ids": ids, "owner_id": fields.value("owner_id"), "team_id": fields.value("team_id")}),
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
            .or(result["total_updated"].as_u64())
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
        ];
        let e = self.error.as_ref()?;
        match e.field() {
            Some(f) if FIELDS.iter().any(|x| f.starts_with(x)) => None,
            _ => Some(e.message.clone()),
        }
    }
}

async fn form_page(
    web: &Web,
    session: &Session,
    values: Fields,
    error: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let page = FormPage {
        chrome: Chrome::new(session, "certificates"),
        values,
        error,
        issuers: web.choices(session, "/api/v1/issuers").await?,
        profiles: web.choices(session, "/api/v1/profiles").await?,
        owners: web.choices(session, "/api/v1/owners").await?,
        teams: web.choices(session, "/api/v1/teams").await?,
        policies: web.choices(session, "/api/v1/renewal-policies").await?,
        targets: web.choices(session, "/api/v1/targets").await?,
    };
    respond(&page)
}

pub async fn new_form(State(web): State<Web>, session: Session) -> Result<Response, WebError> {
    form_page(&web, &session, Fields::default(), None).await
}

/// Creates a certificate from the form; a refusal re-renders the form with the message next
/// to the field it names.
pub async fn create(State(web): State<Web>, session: Session, fields: Fields) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
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
    match web.send(&session, Method::POST, "/api/v1/certificates", &body).await? {
        Ok(created) => {
            let id = created["id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/certificates/{}?notice=Created.", urlencode(id))).into_response())
        }
        Err(failure) => {
            let mut r = form_page(&web, &session, fields, Some(failure.clone())).await?;
            *r.status_mut() = failure.status;
            Ok(r)
        }
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
    let id = urlencode(&id);
    let cert: ManagedCertificate = web.get(&session, &format!("/api/v1/certificates/{id}")).await?;
    let versions: Page<CertificateVersion> =
        web.get(&session, &format!("/api/v1/certificates/{id}/versions?per_page=20")).await?;
    let targets: certctl_api::CertificateDeployments =
        web.get(&session, &format!("/api/v1/certificates/{id}/deployments")).await?;
    let jobs: Page<Job> = web.get(&session, &format!("/api/v1/jobs?certificate_id={id}&per_page=20")).await?;
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
    let page = DetailPage {
        chrome: Chrome::new(&session, "certificates"),
        cert,
        timeline,
        versions: versions.data,
        targets: targets.data,
        jobs: jobs.data,
        reasons: REASONS,
        notice: q.notice,
    };
    respond(&page)
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
