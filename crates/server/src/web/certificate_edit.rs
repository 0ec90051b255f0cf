//! Changing one certificate: the edit form, pre-filled from the API and saved with `PUT`, the
//! PKCS#12 export, passed through as the API's download, and deploying it now.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use certctl_api::{DeploymentTriggered, ManagedCertificate};

use super::Web;
use super::certificates::{Purpose, body, detail_page, form_page, tags_text};
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::WebError;
use super::session::Session;

/// The edit form, filled with the certificate as the API has it.
pub async fn edit_form(State(web): State<Web>, session: Session, Path(id): Path<String>) -> Result<Response, WebError> {
    let cert: ManagedCertificate = web.get(&session, &format!("/api/v1/certificates/{}", urlencode(&id))).await?;
    let mut values = vec![
        ("name", cert.name.clone()),
        ("common_name", cert.common_name.clone()),
        ("sans", cert.sans.join(", ")),
        ("environment", cert.environment.clone()),
        ("tags", tags_text(&cert.tags)),
        ("issuer_id", cert.issuer_id.clone()),
        ("owner_id", cert.owner_id.clone()),
        ("team_id", cert.team_id.clone()),
        ("renewal_policy_id", cert.renewal_policy_id.clone()),
        ("certificate_profile_id", cert.certificate_profile_id.clone().unwrap_or_default()),
    ];
    values.extend(cert.target_ids.iter().map(|t| ("target_ids", t.clone())));
    let purpose = Purpose::Edit { id: cert.id, name: cert.name };
    form_page(&web, &session, purpose, Fields::from_pairs(values), None).await
}

/// Saves the edit form; a refusal re-renders it with the message next to the field it names.
pub async fn save(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let uri = format!("/api/v1/certificates/{}", urlencode(&id));
    let outcome = match body(&fields) {
        Ok(body) => web.send(&session, Method::PUT, &uri, &body).await?,
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/certificates/{}?notice=Saved.", urlencode(&id))).into_response()),
        Err(failure) => {
            let name = fields.value("name").unwrap_or_else(|| id.clone());
            form_page(&web, &session, Purpose::Edit { id, name }, fields, Some(failure)).await
        }
    }
}

/// The current certificate (and, for admins, its server-held key) as a PKCS#12 download with
/// the file name the API gives it; a refusal is shown at the export form.
pub async fn export_pkcs12(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let body = json!({
        // Sent as typed: a password is never trimmed.
        "password": fields.get("password").unwrap_or_default(),
        "include_key": fields.get("include_key") == Some("on"),
    });
    let uri = format!("/api/v1/certificates/{}/export/pkcs12", urlencode(&id));
    match web.download(&session, Method::POST, &uri, &body).await? {
        Ok(file) => {
            let fallback = format!("attachment; filename=\"{}.p12\"", urlencode(&id));
            let disposition = file
                .disposition
                .or_else(|| HeaderValue::from_str(&fallback).ok())
                .unwrap_or(HeaderValue::from_static("attachment"));
            let content_type = file.content_type.unwrap_or(HeaderValue::from_static("application/x-pkcs12"));
            Ok(([(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, disposition)], file.bytes)
                .into_response())
        }
        Err(failure) => detail_page(&web, &session, &id, None, Some(failure)).await,
    }
}

/// Deploys the current version to every mapped target, or the one chosen; what happened (the
/// jobs queued, or why none were) is shown on the certificate's page.
pub async fn deploy(
    State(web): State<Web>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let id = urlencode(&id);
    let body = match fields.value("target_id") {
        Some(target) => json!({ "target_id": target }),
        None => json!({}),
    };
    let notice = match web.send(&session, Method::POST, &format!("/api/v1/certificates/{id}/deploy"), &body).await? {
        Ok(answer) => {
            let triggered: DeploymentTriggered =
                serde_json::from_value(answer).map_err(|e| WebError::Render(e.to_string()))?;
            format!("Deployment queued: {} job(s).", triggered.jobs.len())
        }
        Err(failure) => format!("Not deployed: {}", failure.message),
    };
    Ok(Redirect::to(&format!("/certificates/{id}?notice={}", urlencode(&notice))).into_response())
}
