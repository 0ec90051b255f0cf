//! The ACME server's administration: which profiles are served over ACME and how, the external
//! account binding keys (the HMAC key shown once, when it is made), and "renew now" for the
//! ACME certificates of an issuer or of one certificate. Writes are the API's: admin keys only.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use certctl_api::{AcmeBinding, AcmeEabKey, CreatedAcmeEabKey, Page, Role};

use super::Web;
use super::api_call::{ApiFailure, Choice};
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond_with};
use super::session::Session;

/// A certificate profile and how it is served over ACME, if it is.
pub struct ProfileRow {
    pub id: String,
    pub name: String,
    pub binding: Option<AcmeBinding>,
}

impl ProfileRow {
    /// The bound value of `field`, for pre-selecting the form.
    fn bound(&self, field: &str) -> &str {
        let Some(b) = &self.binding else { return "" };
        match field {
            "issuer_id" => &b.issuer_id,
            "owner_id" => &b.owner_id,
            "team_id" => &b.team_id,
            "renewal_policy_id" => &b.renewal_policy_id,
            _ => "",
        }
    }
}

/// A refused write and the form it came from (`eab` or a profile ID).
pub struct Refusal {
    pub form: String,
    pub failure: ApiFailure,
}

#[derive(Template)]
#[template(path = "acme.html")]
struct AcmePage {
    chrome: Chrome,
    is_admin: bool,
    profiles: Vec<ProfileRow>,
    /// Local-CA issuers: the only ones ACME issues through.
    issuers: Vec<Choice>,
    owners: Vec<Choice>,
    teams: Vec<Choice>,
    policies: Vec<Choice>,
    /// Listed for admins only; the API shows them to no one else.
    eab_keys: Vec<AcmeEabKey>,
    /// A key just created: its HMAC key is in this response only.
    revealed: Option<CreatedAcmeEabKey>,
    refusal: Option<Refusal>,
    notice: Option<String>,
}

impl AcmePage {
    /// The binding form's selects: field, label, options.
    fn selects(&self) -> [(&'static str, &'static str, &[Choice]); 4] {
        [
            ("issuer_id", "Issuer (local CA)", &self.issuers),
            ("owner_id", "Owner", &self.owners),
            ("team_id", "Team", &self.teams),
            ("renewal_policy_id", "Renewal policy (rp-acme when empty)", &self.policies),
        ]
    }

    /// The refusal of form `form`, when the last write was one.
    fn refused(&self, form: &str) -> Option<String> {
        self.refusal.as_ref().filter(|r| r.form == form).map(|r| r.failure.message.clone())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

async fn render(
    web: &Web,
    session: &Session,
    revealed: Option<CreatedAcmeEabKey>,
    refusal: Option<Refusal>,
    notice: Option<String>,
) -> Result<Response, WebError> {
    let is_admin = session.principal.role == Role::Admin;
    let bindings: Vec<AcmeBinding> = web.get(session, "/api/v1/acme/profiles").await?;
    let profiles = web
        .choices(session, "/api/v1/profiles")
        .await?
        .into_iter()
        .map(|c| ProfileRow {
            binding: bindings.iter().find(|b| b.profile_id == c.id).cloned(),
            id: c.id,
            name: c.label,
        })
        .collect();
    let issuers: Page<Value> = web.get(session, "/api/v1/issuers?per_page=500").await?;
    let issuers = issuers
        .data
        .iter()
        .filter(|i| i["type"] == "GenericCA")
        .filter_map(|i| {
            let id = i["id"].as_str()?.to_owned();
            Some(Choice { label: format!("{} ({id})", i["name"].as_str().unwrap_or_default()), id })
        })
        .collect();
    let eab_keys = if is_admin {
        web.get::<Page<AcmeEabKey>>(session, "/api/v1/acme/eab-keys?per_page=500").await?.data
    } else {
        Vec::new()
    };
    let status = refusal.as_ref().map(|r| r.failure.status);
    let page = AcmePage {
        chrome: Chrome::new(session, "acme"),
        is_admin,
        profiles,
        issuers,
        owners: web.choices(session, "/api/v1/owners").await?,
        teams: web.choices(session, "/api/v1/teams").await?,
        policies: web.choices(session, "/api/v1/renewal-policies").await?,
        eab_keys,
        revealed,
        refusal,
        notice,
    };
    respond_with(&page, status)
}

pub async fn show(
    State(web): State<Web>,
    session: Session,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    render(&web, &session, None, None, q.notice).await
}

fn back(notice: &str) -> Response {
    Redirect::to(&format!("/acme?notice={}", urlencode(notice))).into_response()
}

/// Creates an EAB key and shows its HMAC key in this response only, never in a URL.
pub async fn create_key(State(web): State<Web>, session: Session, fields: Fields) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let mut body = json!({});
    if let Some(note) = fields.value("note") {
        body["note"] = json!(note);
    }
    if let Some(profile) = fields.value("profile_id") {
        body["profile_id"] = json!(profile);
    }
    match web.send(&session, Method::POST, "/api/v1/acme/eab-keys", &body).await? {
        Ok(created) => {
            let created: CreatedAcmeEabKey = serde_json::from_value(created)
                .map_err(|e| WebError::Render(format!("decoding the created EAB key: {e}")))?;
            render(&web, &session, Some(created), None, None).await
        }
        Err(failure) => render(&web, &session, None, Some(Refusal { form: "eab".into(), failure }), None).await,
    }
}

pub async fn delete_key(
    State(web): State<Web>,
    session: Session,
    Path(kid): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let uri = format!("/api/v1/acme/eab-keys/{}", urlencode(&kid));
    web.send(&session, Method::DELETE, &uri, &Value::Null).await??;
    Ok(back(&format!("Deleted EAB key {kid}.")))
}

/// Serves a profile over ACME, or changes its binding; a refusal is shown at that profile.
pub async fn bind(
    State(web): State<Web>,
    session: Session,
    Path(profile_id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let mut body = json!({
        "issuer_id": fields.value("issuer_id").unwrap_or_default(),
        "owner_id": fields.value("owner_id").unwrap_or_default(),
        "team_id": fields.value("team_id").unwrap_or_default(),
        "external_account_required": fields.get("external_account_required") == Some("on"),
    });
    if let Some(policy) = fields.value("renewal_policy_id") {
        body["renewal_policy_id"] = json!(policy);
    }
    let uri = format!("/api/v1/acme/profiles/{}", urlencode(&profile_id));
    match web.send(&session, Method::PUT, &uri, &body).await? {
        Ok(_) => Ok(back(&format!("Profile {profile_id} is served over ACME."))),
        Err(failure) => render(&web, &session, None, Some(Refusal { form: profile_id, failure }), None).await,
    }
}

/// Opens the ARI renewal window of every ACME certificate of an issuer now.
pub async fn renew_now(
    State(web): State<Web>,
    session: Session,
    Path(issuer_id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let uri = format!("/api/v1/acme/issuers/{}/renew-now", urlencode(&issuer_id));
    let done = web.send(&session, Method::POST, &uri, &json!({})).await??;
    let count = done["certificates"].as_u64().unwrap_or(0);
    Ok(back(&format!("{count} certificates of {issuer_id} now ask ACME clients to renew within the hour.")))
}

/// Opens the ARI renewal window of one ACME certificate now, from its detail page.
pub async fn renew_certificate_now(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let id = urlencode(&id);
    web.send(&session, Method::POST, &format!("/api/v1/acme/certificates/{id}/renew-now"), &json!({})).await??;
    let notice = "ACME clients polling renewal-info are asked to renew it within the hour.";
    Ok(Redirect::to(&format!("/certificates/{id}?notice={}", urlencode(notice))).into_response())
}
