//! Edit forms for the inventory's resources: the create form's fields, filled in with the
//! record's current values and saved with `PUT`. A refusal re-renders the form with the API's
//! message next to the field it names; secrets come back redacted from the API and the
//! placeholder it answers is merged back on save, so an untouched secret stays as it was.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::Web;
use super::api_call::ApiFailure;
use super::dashboard::urlencode;
use super::form::Fields;
use super::page::{Chrome, WebError, respond_with};
use super::resources::{FormField, Kind, Resource, body, form, may_write, resource};
use super::session::Session;

#[derive(Template)]
#[template(path = "resource_edit.html")]
struct EditPage {
    chrome: Chrome,
    title: &'static str,
    path: &'static str,
    id: String,
    form: Vec<FormField>,
    error: Option<String>,
    writable: bool,
}

/// Resources the API updates with `PUT {api}/{id}`.
pub fn editable(path: &str) -> bool {
    matches!(path, "issuers" | "targets" | "profiles" | "renewal-policies" | "teams" | "owners" | "channels")
}

/// The edit routes of every editable resource.
pub fn routes(router: axum::Router<Web>) -> axum::Router<Web> {
    super::resources::RESOURCES.iter().filter(|r| editable(r.path)).fold(router, |router, r| {
        router.route(&format!("/{}/{{id}}/edit", r.path), axum::routing::get(edit_form).post(save))
    })
}

/// The form's values from the record as the API shows it.
fn current_values(r: &Resource, record: &Value) -> Fields {
    let pairs = r
        .fields
        .iter()
        .map(|f| {
            let v = &record[f.name];
            let text = match (&f.kind, v) {
                (Kind::Checkbox, Value::Bool(true)) => "on".to_owned(),
                (_, Value::Null | Value::Bool(false)) => String::new(),
                (_, Value::String(s)) => s.clone(),
                (Kind::Numbers, Value::Array(items)) => {
                    items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                }
                (Kind::Json, o @ Value::Object(_)) => serde_json::to_string_pretty(o).unwrap_or_default(),
                (_, other) => other.to_string(),
            };
            (f.name, text)
        })
        .collect();
    Fields::from_pairs(pairs)
}

fn editable_resource(uri: &Uri) -> Result<&'static Resource, WebError> {
    let path = uri.path().trim_start_matches('/').split('/').next().unwrap_or_default();
    let r = resource(path)?;
    if !editable(r.path) || r.fields.is_empty() {
        return Err(WebError::Api {
            status: StatusCode::NOT_FOUND,
            message: format!("{} are not edited here", r.title),
        });
    }
    Ok(r)
}

async fn render(
    web: &Web,
    session: &Session,
    r: &'static Resource,
    id: &str,
    values: &Fields,
    failure: Option<&ApiFailure>,
) -> Result<Response, WebError> {
    let page = EditPage {
        chrome: Chrome::new(session, r.path),
        title: r.title,
        path: r.path,
        id: id.to_owned(),
        form: form(web, session, r, values, failure).await?,
        // A refusal that names none of the form's fields is shown above it.
        error: failure
            .filter(|f| f.field().is_none_or(|b| !r.fields.iter().any(|x| b.split('.').next() == Some(x.name))))
            .map(|f| f.message.clone()),
        writable: may_write(session, r),
    };
    respond_with(&page, failure.map(|f| f.status))
}

pub async fn edit_form(
    State(web): State<Web>,
    session: Session,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let r = editable_resource(&uri)?;
    let record: Value = web.get(&session, &format!("{}/{}", r.api, urlencode(&id))).await?;
    render(&web, &session, r, &id, &current_values(r, &record), None).await
}

pub async fn save(
    State(web): State<Web>,
    session: Session,
    uri: Uri,
    Path(id): Path<String>,
    fields: Fields,
) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    let r = editable_resource(&uri)?;
    let outcome = match body(r, &fields) {
        Ok(mut body) => {
            // A record's type is fixed once created; the form shows it without sending it.
            if let Some(o) = body.as_object_mut() {
                o.remove("type");
            }
            web.send(&session, Method::PUT, &format!("{}/{}", r.api, urlencode(&id)), &body).await?
        }
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(_) => {
            Ok(Redirect::to(&format!("/{}?notice={}", r.path, urlencode(&format!("Saved {id}.")))).into_response())
        }
        Err(failure) => render(&web, &session, r, &id, &fields, Some(&failure)).await,
    }
}
