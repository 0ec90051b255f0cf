//! The directory (RFC 8555 §7.1.1) and new-nonce (§7.2).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::problem::AcmeResult;
use super::request::Directory;
use super::resource;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryDoc {
    new_nonce: String,
    new_account: String,
    new_order: String,
    revoke_cert: String,
    key_change: String,
    renewal_info: String,
    meta: Meta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    external_account_required: bool,
    /// The ACME profiles extension: the certctl profile this directory issues under.
    profiles: std::collections::BTreeMap<String, String>,
}

pub async fn directory(dir: Directory) -> AcmeResult<Response> {
    let description = if dir.profile.description.is_empty() {
        format!("certctl profile {}", dir.profile.name)
    } else {
        dir.profile.description.clone()
    };
    let doc = DirectoryDoc {
        new_nonce: dir.url("new-nonce"),
        new_account: dir.url("new-account"),
        new_order: dir.url("new-order"),
        revoke_cert: dir.url("revoke-cert"),
        key_change: dir.url("key-change"),
        renewal_info: dir.url("renewal-info"),
        meta: Meta {
            external_account_required: dir.binding.external_account_required,
            profiles: [(dir.profile.id.clone(), description)].into(),
        },
    };
    Ok(resource(StatusCode::OK, None, &doc))
}

fn no_store(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `HEAD new-nonce`: 200 with a nonce (added by the ACME header layer).
pub async fn new_nonce_head(_dir: Directory) -> Response {
    no_store(StatusCode::OK)
}

/// `GET new-nonce`: 204 with a nonce.
pub async fn new_nonce_get(_dir: Directory) -> Response {
    no_store(StatusCode::NO_CONTENT)
}
