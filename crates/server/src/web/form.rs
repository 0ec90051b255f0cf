//! Posted forms: urlencoded fields, size-limited, with the CSRF check every write goes through.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use subtle::ConstantTimeEq;

use super::Web;
use super::page::WebError;
use super::session::Session;

/// Largest form body accepted; dashboard forms are small.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The fields of a posted form, in order; a name may repeat (checkbox lists).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Fields the page fills in itself (an edit form's current values).
    pub fn from_pairs(pairs: Vec<(&str, String)>) -> Fields {
        Fields(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or `None` when absent or blank.
    pub fn value(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// Every non-blank value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim().to_owned()).collect()
    }

    /// Refuses the form unless its `_csrf` field equals the session's token.
    pub fn check_csrf(&self, session: &Session) -> Result<(), WebError> {
        let presented = self.get("_csrf").unwrap_or_default();
        if presented.is_empty() || !bool::from(presented.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
            return Err(WebError::Csrf);
        }
        Ok(())
    }
}

impl FromRequest<Web> for Fields {
    type Rejection = WebError;

    async fn from_request(req: Request, web: &Web) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| WebError::Api {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the form is larger than {MAX_FORM_BYTES} bytes"),
        })?;
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Form::<Vec<(String, String)>>::from_request(req, web).await {
            Ok(axum::Form(pairs)) => Ok(Fields(pairs)),
            Err(e) => Err(WebError::Api { status: StatusCode::BAD_REQUEST, message: format!("unreadable form: {e}") }),
        }
    }
}
