//! The dashboard's way into the REST API: in-process calls made as the signed-in key.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;

use super::Web;
use super::page::WebError;
use super::session::Session;
use crate::auth::DashboardCaller;

/// Largest REST answer a page reads (a full page of 500 certificates fits easily).
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// An option of a select: the resource's ID and what the user reads.
pub struct Choice {
    pub id: String,
    pub label: String,
}

/// A file the API answered with, as it named and typed it.
pub struct Download {
    pub content_type: Option<HeaderValue>,
    pub disposition: Option<HeaderValue>,
    pub bytes: Vec<u8>,
}

/// A refused write: the API's status and its message, which names the field at fault.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub message: String,
}

impl ApiFailure {
    /// The form field the message blames (`"owner_id: unknown owner"` → `owner_id`), if any.
    pub fn field(&self) -> Option<&str> {
        let (head, _) = self.message.split_once(':')?;
        let head = head.trim();
        let plain = !head.is_empty() && head.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b));
        plain.then_some(head)
    }
}

impl From<ApiFailure> for WebError {
    fn from(f: ApiFailure) -> Self {
        WebError::Api { status: f.status, message: f.message }
    }
}

impl Web {
    /// Calls the REST API as the session's key; returns the status and the body.
    async fn call(
        &self,
        session: &Session,
        method: Method,
        uri: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>), WebError> {
        let (status, _, body) = self.exchange(session, method, uri, body).await?;
        Ok((status, body))
    }

    /// Calls the REST API as the session's key; returns the status, the headers and the body.
    async fn exchange(
        &self,
        session: &Session,
        method: Method,
        uri: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), WebError> {
        let mut req = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).map_err(|e| WebError::Render(e.to_string()))?)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).map_err(|e| WebError::Render(format!("bad internal request {uri}: {e}")))?;
        req.extensions_mut().insert(DashboardCaller(session.principal.clone()));
        let response = match self.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| WebError::Render(format!("reading {uri}: {e}")))?;
        Ok((parts.status, parts.headers, bytes.to_vec()))
    }

    /// Sends a write the API answers with a file; a refusal comes back as [`ApiFailure`].
    pub async fn download(
        &self,
        session: &Session,
        method: Method,
        uri: &str,
        body: &Value,
    ) -> Result<Result<Download, ApiFailure>, WebError> {
        let (status, headers, bytes) = self.exchange(session, method, uri, Some(body)).await?;
        if !status.is_success() {
            return Ok(Err(failure(status, &bytes)));
        }
        Ok(Ok(Download {
            content_type: headers.get(header::CONTENT_TYPE).cloned(),
            disposition: headers.get(header::CONTENT_DISPOSITION).cloned(),
            bytes,
        }))
    }

    /// GETs `uri` and decodes the answer; a refusal becomes the error page.
    pub async fn get<T: DeserializeOwned>(&self, session: &Session, uri: &str) -> Result<T, WebError> {
        let (status, body) = self.call(session, Method::GET, uri, None).await?;
        if !status.is_success() {
            return Err(failure(status, &body).into());
        }
        serde_json::from_slice(&body).map_err(|e| WebError::Render(format!("decoding {uri}: {e}")))
    }

    /// GETs `uri` as raw bytes (exports).
    pub async fn get_raw(&self, session: &Session, uri: &str) -> Result<Vec<u8>, WebError> {
        let (status, body) = self.call(session, Method::GET, uri, None).await?;
        if !status.is_success() {
            return Err(failure(status, &body).into());
        }
        Ok(body)
    }

    /// Up to 500 resources of a list endpoint as select options (`name (id)`, else the ID).
    pub async fn choices(&self, session: &Session, path: &str) -> Result<Vec<Choice>, WebError> {
        let page: certctl_api::Page<Value> = self.get(session, &format!("{path}?per_page=500")).await?;
        Ok(page
            .data
            .into_iter()
            .filter_map(|v| {
                let id = v["id"].as_str()?.to_owned();
                let label = v["name"].as_str().map(|n| format!("{n} ({id})")).unwrap_or_else(|| id.clone());
                Some(Choice { id, label })
            })
            .collect())
    }

    /// Up to `cap` resources of a list endpoint as (ID, name) pairs, read 500 a page; a
    /// resource without a name is named by its ID.
    pub async fn named(&self, session: &Session, path: &str, cap: usize) -> Result<Vec<(String, String)>, WebError> {
        let mut out = Vec::new();
        for page in 1.. {
            let p: certctl_api::Page<Value> = self.get(session, &format!("{path}?per_page=500&page={page}")).await?;
            let done = p.data.len() < 500;
            out.extend(p.data.into_iter().filter_map(|v| {
                let id = v["id"].as_str()?.to_owned();
                let name = v["name"].as_str().map(str::to_owned).unwrap_or_else(|| id.clone());
                Some((id, name))
            }));
            if done || out.len() >= cap {
                break;
            }
        }
        out.truncate(cap);
        Ok(out)
    }

    /// The `name` of the resource at `uri`, or `None` when it cannot be read (deleted, or not
    /// visible to this key): the page then shows the ID.
    pub async fn name_of(&self, session: &Session, uri: &str) -> Option<String> {
        let (status, body) = self.call(session, Method::GET, uri, None).await.ok()?;
        if !status.is_success() {
            return None;
        }
        serde_json::from_slice::<Value>(&body).ok()?["name"].as_str().map(str::to_owned)
    }

    /// Sends a write; a refusal comes back as [`ApiFailure`] so the form can show it.
    pub async fn send(
        &self,
        session: &Session,
        method: Method,
        uri: &str,
        body: &Value,
    ) -> Result<Result<Value, ApiFailure>, WebError> {
        let (status, bytes) = self.call(session, method, uri, Some(body)).await?;
        if !status.is_success() {
            return Ok(Err(failure(status, &bytes)));
        }
        Ok(Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }
}

fn failure(status: StatusCode, body: &[u8]) -> ApiFailure {
    let message = serde_json::from_slice::<certctl_api::ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(500).collect());
    ApiFailure { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blamed_field_is_the_message_prefix() {
        let f = |m: &str| ApiFailure { status: StatusCode::BAD_REQUEST, message: m.into() };
        assert_eq!(f("owner_id: unknown owner 'o-x'").field(), Some("owner_id"));
        assert_eq!(f("config.cert_path: required").field(), Some("config.cert_path"));
        assert_eq!(f("the certificate is revoked: nothing to renew").field(), None);
        assert_eq!(f("no colon here").field(), None);
    }
}
