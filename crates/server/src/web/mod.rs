//! The dashboard: server-rendered pages on the same origin as the API.
//!
//! Pages read and write through the REST API itself, called in process with the signed-in
//! session's key ([`crate::auth::DashboardCaller`]), so every rule the API enforces (roles,
//! validation, audit) holds in the browser too and no capability has two implementations.
//! Sessions are server-side rows behind an HTTP-only, SameSite=Strict cookie; every form
//! carries the session's CSRF token; the Content-Security-Policy allows no inline script.

mod api_call;
mod assets;
mod certificate_edit;
mod certificates;
mod charts;
mod dashboard;
mod details;
mod digest;
mod form;
mod notifications;
mod observability;
mod page;
mod resource_edit;
mod resources;
mod session;
mod typed_config;

mod acme;
mod discovery;
mod policies;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;

pub use session::SESSION_COOKIE;

/// What dashboard handlers share: the application and the REST API they call in process.
#[derive(Clone)]
pub struct Web {
    pub app: AppState,
    pub api: Router,
}

/// Scripts and styles come only from this origin, nothing may frame the pages, and forms post
/// only back to it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes; `api` is the REST router the pages call.
pub fn router(app: AppState, api: Router) -> Router {
    let web = Web { app, api };
    let router = Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/certificates", get(certificates::list).post(certificates::create))
        .route("/certificates/new", get(certificates::new_form))
        .route("/certificates/bulk", post(certificates::bulk))
        .route("/certificates/{id}", get(certificates::detail))
        .route("/certificates/{id}/renew", post(certificates::renew))
        .route("/certificates/{id}/revoke", post(certificates::revoke))
        .route("/certificates/{id}/archive", post(certificates::archive))
        .route("/certificates/{id}/export.pem", get(certificates::export_pem))
        .route("/notifications", get(notifications::list))
        .route("/notifications/{id}/requeue", post(notifications::requeue))
        .route("/notifications/{id}/read", post(notifications::mark_read))
        .route("/digest", get(digest::show))
        .route("/digest/send", post(digest::send))
        .route("/observability", get(observability::show))
        .route("/static/{file}", get(assets::serve))
        .route("/audit/export/{format}", get(resources::audit_export))
        .route("/certificates/{id}/edit", get(certificate_edit::edit_form).post(certificate_edit::save))
        .route("/certificates/{id}/export.p12", post(certificate_edit::export_pkcs12))
        .route("/certificates/{id}/deploy", post(certificate_edit::deploy))
        .route("/renewal-policies/{id}/alerts", get(policies::edit).post(policies::save))
        .route("/discovery/{id}/claim", get(discovery::claim_form).post(discovery::claim))
        .route("/acme", get(acme::show))
        .route("/acme/eab-keys", post(acme::create_key))
        .route("/acme/eab-keys/{kid}/delete", post(acme::delete_key))
        .route("/acme/bindings/{profile_id}", post(acme::bind))
        .route("/acme/issuers/{issuer_id}/renew-now", post(acme::renew_now))
        .route("/certificates/{id}/acme-renew-now", post(acme::renew_certificate_now));
    // Each resource gets its own routes, so paths the dashboard does not serve stay the API's
    // JSON 404.
    let router = resources::RESOURCES.iter().fold(router, |router, r| {
        router
            .route(&format!("/{}", r.path), get(resources::list).post(resources::create))
            .route(&format!("/{}/{{id}}/{{verb}}", r.path), post(resources::act))
    });
    let router = details::routes(router);
    let router = resource_edit::routes(router);
    router
        .with_state(web)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}
