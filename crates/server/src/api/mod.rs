//! The REST API under `/api/v1`: one module per resource, each owning its routes, and the
//! OpenAPI document generated from them.

pub mod access;
pub mod agent_protocol;
pub mod agents;
pub mod audit;
pub mod authorities;
pub mod certificates;
pub mod channels;
pub mod deployments;
pub mod digest;
pub mod discovery;
pub mod issuers;
pub mod jobs;
pub mod lifecycle;
pub mod meta;
pub mod metrics;
pub mod notifications;
pub mod organization;
pub mod profiles;
pub mod stats;
pub mod targets;

use axum::Json as AxumJson;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use certctl_api::{CursorPage, Page};
use certctl_store::Listing;

use crate::AppState;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "certctl API",
        description = "Certificate lifecycle management: inventory, issuance, renewal, deployment, revocation, audit. \
                       Every /api/v1 operation except version, auth/info and openapi.json takes `Authorization: Bearer <api key>`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearerAuth" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("certctl API key")).build(),
            ),
        );
    }
}

/// The routes that need an API key.
fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(meta::protected_router())
        .merge(organization::router())
        .merge(issuers::router())
        .merge(targets::router())
        .merge(agents::router())
        .merge(agent_protocol::router())
        .merge(profiles::router())
        .merge(certificates::router())
        .merge(jobs::router())
        .merge(access::router())
        .merge(audit::router())
        .merge(lifecycle::router())
        .merge(deployments::router())
        .merge(discovery::router())
        .merge(authorities::router())
        .merge(stats::router())
        .merge(notifications::router())
        .merge(channels::router())
        .merge(digest::router())
        .merge(crate::acme::admin::router())
}

/// Every route, with authentication on the protected ones.
pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(meta::public_router())
        .merge(authorities::pki_router())
        .merge(agent_protocol::enrolment_router())
        .merge(protected().route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::authenticate)))
        .merge(metrics::router().route_layer(axum::middleware::from_fn_with_state(state, metrics::scrape_auth)))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
}

/// The OpenAPI document of the whole API, as served and committed.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(meta::public_router())
        .merge(authorities::pki_router())
        .merge(agent_protocol::enrolment_router())
        .merge(protected())
        .merge(metrics::router())
        .into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// Renders a store listing as the page or cursor envelope.
pub fn listing<T: Serialize>(listing: Listing<T>) -> Response {
    match listing {
        Listing::Page { data, total, page, per_page } => AxumJson(Page { data, total, page, per_page }).into_response(),
        Listing::Cursor { data, next_cursor, page_size } => {
            AxumJson(CursorPage { data, next_cursor, page_size }).into_response()
        }
    }
}
