//! The audit trail (read only; nothing can change it through the API).

use axum::Json as Reply;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{AuditEvent, AuditFilter, ErrorBody, Page, PageParams};
use certctl_store::AuditFilterParsed;

use super::listing;
use crate::AppState;
use crate::auth::Viewer;
use crate::error::ApiResult;
use crate::extract::{Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit)).routes(routes!(get_audit))
}

/// List audit events, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "Audit", params(PageParams, AuditFilter), responses(
    (status = 200, body = Page<AuditEvent>), (status = 400, body = ErrorBody)))]
async fn list_audit(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(f): Query<AuditFilter>,
) -> ApiResult<Response> {
    let filter = AuditFilterParsed::parse(&f)?;
    Ok(listing(s.store.list_audit(&filter, &paging(&p)?).await?))
}

/// Get one audit event by its ID.
#[utoipa::path(get, path = "/api/v1/audit/{id}", tag = "Audit", responses(
    (status = 200, body = AuditEvent), (status = 404, body = ErrorBody)))]
async fn get_audit(_: Viewer, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<AuditEvent>> {
    Ok(Reply(s.store.audit_event(&id).await?))
}
