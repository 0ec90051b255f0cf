//! Claiming a discovered certificate: link it to a managed certificate, or file it as a new
//! one under an owner, team and issuer the form offers.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use certctl_api::DiscoveredCertificate;

use super::Web;
use super::api_call::{ApiFailure, Choice};
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond_with};
use super::session::Session;

/// The fields the form sends; the API names them in its refusals.
const FIELDS: &[&str] = &[
    "managed_certificate_id",
    "name",
    "owner_id",
    "team_id",
    "issuer_id",
    "renewal_policy_id",
    "certificate_profile_id",
    "environment",
];

#[derive(Template)]
#[template(path = "discovery_claim.html")]
struct ClaimPage {
    chrome: Chrome,
    found: DiscoveredCertificate,
    values: Fields,
    error: Option<ApiFailure>,
    owners: Vec<Choice>,
    teams: Vec<Choice>,
    issuers: Vec<Choice>,
    policies: Vec<Choice>,
    profiles: Vec<Choice>,
}

impl ClaimPage {
    fn value(&self, name: &str) -> String {
        self.values.get(name).unwrap_or_default().to_owned()
    }

    fn error_for(&self, field: &str) -> Option<String> {
        let e = self.error.as_ref()?;
        (e.field() == Some(field)).then(|| e.message.clone())
    }

    /// The refusal when it names no field of the form.
    fn general_error(&self) -> Option<String> {
        let e = self.error.as_ref()?;
        match e.field() {
            Some(f) if FIELDS.contains(&f) => None,
            _ => Some(e.message.clone()),
        }
    }

    /// The reference selects: name, label, options, and whether a new certificate needs it.
    fn selects(&self) -> [(&'static str, &'static str, &[Choice], bool); 5] {
        [
            ("owner_id", "Owner", &self.owners, true),
            ("team_id", "Team", &self.teams, true),
            ("issuer_id", "Issuer", &self.issuers, true),
            ("renewal_policy_id", "Renewal policy (default when empty)", &self.policies, false),
            ("certificate_profile_id", "Profile", &self.profiles, false),
        ]
    }
}

async fn page(
    web: &Web,
    session: &Session,
    id: &str,
    values: Option<Fields>,
    error: Option<ApiFailure>,
) -> Result<Response, WebError> {
    let found: DiscoveredCertificate =
        web.get(session, &format!("/api/v1/discovered-certificates/{}", urlencode(id))).await?;
    // A new managed certificate is named after what was found unless the user says otherwise.
    let values =
        values.unwrap_or_else(|| Fields::from_pairs(vec![("name", found.common_name.replace('*', "wildcard"))]));
    let status = error.as_ref().map(|e| e.status);
    let page = ClaimPage {
        chrome: Chrome::new(session, "discovery"),
        found,
        values,
        error,
        owners: web.choices(session, "/api/v1/owners").await?,
        teams: web.choices(session, "/api/v1/teams").await?,
        issuers: web.choices(session, "/api/v1/issuers").await?,
        policies: web.choices(session, "/api/v1/renewal-policies").await?,
        profiles: web.choices(session, "/api/v1/profiles").await?,
    };
    respond_with(&page, status)
}

pub async fn claim_form(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    page(&web, &session, &id, None, None).await
}

/// Claims the certificate; a refusal re-renders the form with the message at its field.
pub async fn claim(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let body: serde_json::Map<String, serde_json::Value> =
        FIELDS.iter().filter_map(|f| fields.value(f).map(|v| ((*f).to_owned(), json!(v)))).collect();
    let uri = format!("/api/v1/discovered-certificates/{}/claim", urlencode(&id));
    match web.send(&session, Method::POST, &uri, &serde_json::Value::Object(body)).await? {
        Ok(claimed) => {
            let managed = claimed["managed_certificate_id"].as_str().unwrap_or_default();
            let notice = format!("Claimed {id} as {managed}.");
            Ok(Redirect::to(&format!("/discovery?notice={}", urlencode(&notice))).into_response())
        }
        Err(failure) => page(&web, &session, &id, Some(fields), Some(failure)).await,
    }
}
