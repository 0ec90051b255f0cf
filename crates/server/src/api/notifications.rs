//! The notification outbox: list (the dead-letter queue is `?status=dead`), get, mark read and
//! requeue.

use axum::Json as Reply;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{ErrorBody, Notification, NotificationFilter, Page, PageParams, StatusResponse};
use certctl_store::NotificationQuery;

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(get_notification))
        .routes(routes!(mark_read))
        .routes(routes!(requeue))
}

fn parse<T: std::str::FromStr<Err = certctl_api::InvalidValue>>(
    field: &str,
    v: &Option<String>,
) -> ApiResult<Option<T>> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<T>().map_err(|e| ApiError::BadRequest(format!("{field}: {}", e.0))))
        .transpose()
}

/// List notifications, newest first; `status=dead` is the dead-letter queue.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "Notifications", params(PageParams, NotificationFilter),
    responses((status = 200, body = Page<Notification>), (status = 400, body = ErrorBody)))]
async fn list_notifications(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(f): Query<NotificationFilter>,
) -> ApiResult<Response> {
    let query = NotificationQuery {
        status: parse("status", &f.status)?,
        notification_type: parse("type", &f.notification_type)?,
        channel: f.channel.filter(|c| !c.is_empty()),
        certificate_id: f.certificate_id.filter(|c| !c.is_empty()),
    };
    Ok(listing(s.store.list_notifications(&query, &paging(&p)?).await?))
}

/// Get a notification.
#[utoipa::path(get, path = "/api/v1/notifications/{id}", tag = "Notifications", responses(
    (status = 200, body = Notification), (status = 404, body = ErrorBody)))]
async fn get_notification(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<Notification>> {
    Ok(Reply(s.store.notification(&id).await?))
}

/// Mark a delivered (or dead) notification as read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "Notifications", responses(
    (status = 200, body = StatusResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mark_read(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<StatusResponse>> {
    s.store.mark_notification_read(&id, &p.actor(), s.clock.now()).await?;
    Ok(Reply(StatusResponse { status: "marked_as_read".into() }))
}

/// Requeue a dead or failed notification: `pending` again with a fresh retry budget.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/requeue", tag = "Notifications", responses(
    (status = 200, body = StatusResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn requeue(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<StatusResponse>> {
    s.store.requeue_notification(&id, &p.actor(), s.clock.now()).await?;
    s.notify.wake.notify_one();
    Ok(Reply(StatusResponse { status: "requeued".into() }))
}
