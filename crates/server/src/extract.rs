//! Request extractors whose failures are `ApiError`s naming the offending field.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use certctl_api::{DEFAULT_PER_PAGE, MAX_PER_PAGE, PageParams};
use certctl_store::Paging;

use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. Wrong types, unknown or missing fields are 400s whose message starts with the
/// field path, e.g. `sans[1]: 'a..b' is not a valid DNS name`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default();
            let mime = ct.split(';').next().unwrap_or_default().trim();
            if !(mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Content-Type must be application/json, not '{ct}'"
                )));
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY_BYTES))?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON document, reporting the path of the failing field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("request body is empty; a JSON object is required".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = strip_position(&inner.to_string());
        if path == "." || path.is_empty() {
            ApiError::BadRequest(format!("invalid JSON body: {msg}"))
        } else {
            ApiError::BadRequest(format!("{path}: {msg}"))
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {}", strip_position(&e.to_string()))))?;
    Ok(value)
}

/// Drops serde_json's " at line 1 column 7" suffix, which means nothing to an API user.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Query parameters; a malformed one is a 400 naming it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(format!("invalid query parameters: {}", e.body_text())))
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::BadRequest(e.body_text()))
    }
}

/// Turns the paging parameters into a store request: keyset mode when `cursor` or `page_size`
/// is present, page numbers otherwise.
pub fn paging(p: &PageParams) -> Result<Paging, ApiError> {
    let check = |name: &str, v: Option<u32>| -> Result<u32, ApiError> {
        match v {
            None => Ok(DEFAULT_PER_PAGE),
            Some(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::BadRequest(format!("{name}: {n} is outside 1..={MAX_PER_PAGE}"))),
        }
    };
    if p.cursor.is_some() || p.page_size.is_some() {
        if p.page.is_some() {
            return Err(ApiError::BadRequest("page: cannot be combined with cursor/page_size".into()));
        }
        let cursor = p.cursor.clone().filter(|c| !c.is_empty());
        return Ok(Paging::Cursor { cursor, size: check("page_size", p.page_size)? });
    }
    let page = match p.page {
        None => 1,
        Some(0) => return Err(ApiError::BadRequest("page: must be at least 1".into())),
        Some(n) => n,
    };
    Ok(Paging::Page { page, per_page: check("per_page", p.per_page)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use certctl_api::CreateTeam;

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<CreateTeam>(br#"{"name": 5}"#).err().unwrap();
        assert!(e.to_string().starts_with("name: invalid type"), "{e}");
        let e = parse_json::<CreateTeam>(br#"{"name": "a", "colour": 1}"#).err().unwrap();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let e = parse_json::<CreateTeam>(br#"{}"#).err().unwrap();
        assert!(e.to_string().contains("missing field `name`"), "{e}");
        let e = parse_json::<CreateTeam>(br#"{"name": "a"} x"#).err().unwrap();
        assert!(e.to_string().starts_with("invalid JSON body"), "{e}");
        let e = parse_json::<CreateTeam>(br#"{"name": "", "id": "a b"}"#).err().unwrap();
        assert!(e.to_string().starts_with("name: must not be empty"), "{e}");
    }

    #[test]
    fn paging_modes() {
        let p = PageParams { page_size: Some(10), ..Default::default() };
        assert_eq!(paging(&p).unwrap(), Paging::Cursor { cursor: None, size: 10 });
        let p = PageParams { per_page: Some(501), ..Default::default() };
        assert!(paging(&p).unwrap_err().to_string().starts_with("per_page:"));
        assert_eq!(paging(&PageParams::default()).unwrap(), Paging::Page { page: 1, per_page: 50 });
    }
}
