//! Sign-in with an API key, the session cookie, and the [`Session`] extractor every page takes.

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use certctl_api::{ActorType, Role};
use certctl_store::AuditEntry;

use super::Web;
use super::form::Fields;
use super::page::{LoginPage, WebError, render};
use crate::auth::{self, Principal};

/// The session cookie: a random value whose hash names the stored session.
pub const SESSION_COOKIE: &str = "certctl_session";
/// The sign-in form's CSRF cookie (double submit: the form echoes it), set before any session
/// exists.
const LOGIN_CSRF_COOKIE: &str = "certctl_login_csrf";
/// A session lasts this long from sign-in, then the browser must sign in again.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// A signed-in browser: the key it acts as and the token its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf_token: String,
    id_hash: String,
}

impl Session {
    /// Whether the key may change things (operator or admin); pages hide write controls
    /// otherwise, and the API refuses them anyway.
    pub fn can_write(&self) -> bool {
        matches!(self.principal.role, Role::Admin | Role::Operator)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: Duration) -> HeaderValue {
    // The dashboard is served over HTTPS only, so the cookie is always Secure.
    let text = format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}", max_age.as_secs());
    HeaderValue::from_str(&text).expect("cookie names and values are URL-safe base64")
}

fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", Duration::ZERO)
}

impl FromRequestParts<Web> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
            return Err(Redirect::to("/login").into_response());
        };
        let id_hash = auth::hash_key(value);
        let now = web.app.clock.now();
        match web.app.store.web_session(&id_hash, now).await {
            Ok(Some(s)) => Ok(Session {
                principal: Principal { key_id: s.key_id, name: s.key_name, role: s.role, agent_id: None },
                csrf_token: s.csrf_token,
                id_hash,
            }),
            Ok(None) => {
                let mut r = Redirect::to("/login?expired=1").into_response();
                r.headers_mut().append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
                Err(r)
            }
            Err(e) => Err(WebError::from(crate::error::ApiError::from(e)).into_response()),
        }
    }
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    expired: Option<String>,
}

/// The sign-in page; it sets a fresh CSRF cookie that its form echoes.
pub async fn login_page(
    State(web): State<Web>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Result<Response, WebError> {
    let notice = q.expired.map(|_| "Your session has expired. Sign in again.".to_owned());
    login_form(&web, notice, None, StatusCode::OK)
}

fn login_form(
    _web: &Web,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let csrf_token = auth::generate_secret("");
    let page = LoginPage { csrf_token: csrf_token.clone(), notice, error, version: env!("CARGO_PKG_VERSION") };
    let mut r = (status, render(&page)?).into_response();
    r.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf_token, Duration::from_secs(3600)));
    Ok(r)
}

/// Signs in with an API key: a new server-side session and its cookie.
pub async fn login(State(web): State<Web>, headers: HeaderMap, fields: Fields) -> Result<Response, WebError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let presented = fields.get("_csrf").unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(WebError::Csrf);
    }
    let key = fields.get("api_key").unwrap_or_default().trim().to_owned();
    let principal = match web.app.auth.resolve(&key).await {
        Ok(p) if p.role != Role::Agent => p,
        outcome => {
            let why = if outcome.is_ok() { "agent credentials cannot sign in" } else { "invalid API key" };
            let entry = AuditEntry::new(
                "anonymous",
                ActorType::User,
                "dashboard_sign_in_failed",
                "session",
                "-",
                json!({"reason": why}),
            );
            web.app.audit_log.record(entry).await;
            return login_form(&web, None, Some(format!("Sign-in failed: {why}.")), StatusCode::UNAUTHORIZED);
        }
    };
    let value = auth::generate_secret("");
    let csrf_token = auth::generate_secret("");
    let now = web.app.clock.now();
    let expires = now + SESSION_TTL;
    web.app
        .store
        .create_web_session(&auth::hash_key(&value), &principal.key_id, &csrf_token, now, expires)
        .await
        .map_err(|e| WebError::from(crate::error::ApiError::from(e)))?;
    let entry = AuditEntry::new(
        principal.name.clone(),
        principal.actor().kind,
        "dashboard_sign_in",
        "api_key",
        principal.key_id.clone(),
        json!({"role": principal.role}),
    );
    web.app.audit_log.record(entry).await;
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &value, SESSION_TTL));
    r.headers_mut().append(header::SET_COOKIE, clear_cookie(LOGIN_CSRF_COOKIE));
    Ok(r)
}

/// Signs out: the session row goes, and the cookie with it.
pub async fn logout(State(web): State<Web>, session: Session, fields: Fields) -> Result<Response, WebError> {
    fields.check_csrf(&session)?;
    web.app
        .store
        .delete_web_session(&session.id_hash)
        .await
        .map_err(|e| WebError::from(crate::error::ApiError::from(e)))?;
    let entry = AuditEntry::new(
        session.principal.name.clone(),
        session.principal.actor().kind,
        "dashboard_sign_out",
        "api_key",
        session.principal.key_id.clone(),
        json!({}),
    );
    web.app.audit_log.record(entry).await;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    Ok(r)
}
