//! Notification channels managed through the API. Settings are validated by building the
//! channel's notifier, sealed whole in the database, and shown redacted.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    ChannelType, CreateNotificationChannel, ErrorBody, NotificationChannel, NotificationType, Page, PageParams,
    SeverityTier, StatusResponse, UpdateNotificationChannel,
};
use certctl_store::{ChannelRecord, ChannelWrite, NewNotification};

use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};
use crate::notify::{build_notifier, redacted, seal_context};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(test_channel))
}

fn view(c: ChannelRecord) -> NotificationChannel {
    NotificationChannel {
        id: c.id,
        name: c.name,
        channel_type: c.channel_type,
        config: c.config,
        enabled: c.enabled,
        source: "api".into(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// Rejects names that belong to the environment-declared channels.
fn check_name(name: &str) -> ApiResult<()> {
    if name.parse::<ChannelType>().is_ok() {
        return Err(ApiError::BadRequest(format!(
            "name: '{name}' is reserved for the channel declared by environment variables"
        )));
    }
    Ok(())
}

fn sealed_write(
    s: &AppState,
    id: &str,
    name: String,
    kind: ChannelType,
    config: &Value,
    enabled: bool,
) -> ApiResult<ChannelWrite> {
    build_notifier(kind, config).map_err(ApiError::BadRequest)?;
    let plain = serde_json::to_vec(config).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ChannelWrite {
        id: Some(id.to_owned()),
        name,
        channel_type: kind,
        config: redacted(kind, config),
        sealed: s.secrets.seal(&seal_context(id), &plain),
        enabled,
    })
}

/// List the channels managed through the API.
#[utoipa::path(get, path = "/api/v1/notification-channels", tag = "Notifications", params(PageParams),
    responses((status = 200, body = Page<NotificationChannel>), (status = 400, body = ErrorBody)))]
async fn list_channels(_: Viewer, State(s): State<AppState>, Query(p): Query<PageParams>) -> ApiResult<Response> {
    Ok(listing(s.store.list_channels(&paging(&p)?).await?.try_map(|c| Ok::<_, ApiError>(view(c)))?))
}

/// Create a channel; secret settings are encrypted at rest and never returned.
#[utoipa::path(post, path = "/api/v1/notification-channels", tag = "Notifications",
    request_body = CreateNotificationChannel, responses(
    (status = 201, body = NotificationChannel), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_channel(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateNotificationChannel>,
) -> ApiResult<(StatusCode, Reply<NotificationChannel>)> {
    check_name(req.name.as_str())?;
    let id = match req.id {
        Some(id)
            if id.is_empty()
                || id.len() > 128
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            return Err(ApiError::BadRequest("id: must be 1–128 letters, digits, '-', '_' or '.'".into()));
        }
        Some(id) => id,
        None => certctl_store::new_id("nc"),
    };
    let w = sealed_write(&s, &id, req.name.to_string(), req.channel_type, &req.config, req.enabled.unwrap_or(true))?;
    let created = s.store.create_channel(&w, &p.actor(), s.clock.now()).await?;
    Ok((StatusCode::CREATED, Reply(view(created))))
}

/// Get a channel (secrets redacted).
#[utoipa::path(get, path = "/api/v1/notification-channels/{id}", tag = "Notifications", responses(
    (status = 200, body = NotificationChannel), (status = 404, body = ErrorBody)))]
async fn get_channel(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<NotificationChannel>> {
    Ok(Reply(view(s.store.channel(&id).await?)))
}

/// Update a channel; secret settings sent as `********` keep their stored value.
#[utoipa::path(put, path = "/api/v1/notification-channels/{id}", tag = "Notifications",
    request_body = UpdateNotificationChannel, responses(
    (status = 200, body = NotificationChannel), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_channel(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateNotificationChannel>,
) -> ApiResult<Reply<NotificationChannel>> {
    let current = s.store.channel(&id).await?;
    let plain = s.secrets.open(&seal_context(&id), &current.sealed).map_err(|e| ApiError::Internal(e.to_string()))?;
    let stored: Value = serde_json::from_slice(&plain).map_err(|e| ApiError::Internal(e.to_string()))?;
    let config = match &req.config {
        None => stored,
        Some(Value::Object(incoming)) => {
            let empty = serde_json::Map::new();
            let merged = crate::secrets::merge_redacted(incoming, stored.as_object().unwrap_or(&empty), "")
                .map_err(ApiError::BadRequest)?;
            Value::Object(merged)
        }
        Some(_) => return Err(ApiError::BadRequest("config: must be a JSON object".into())),
    };
    let name = req.name.map(|n| n.to_string()).unwrap_or(current.name);
    check_name(&name)?;
    let w = sealed_write(&s, &id, name, current.channel_type, &config, req.enabled.unwrap_or(current.enabled))?;
    Ok(Reply(view(s.store.update_channel(&id, &w, &p.actor(), s.clock.now()).await?)))
}

/// Delete a channel. Notifications still addressed to it go to the dead-letter queue.
#[utoipa::path(delete, path = "/api/v1/notification-channels/{id}", tag = "Notifications", responses(
    (status = 204), (status = 404, body = ErrorBody)))]
async fn delete_channel(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_channel(&id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enqueue a `Test` notification on the channel; it travels the same queue, retries and
/// dead-letter path as any other.
#[utoipa::path(post, path = "/api/v1/notification-channels/{id}/test", tag = "Notifications", responses(
    (status = 202, body = StatusResponse), (status = 404, body = ErrorBody)))]
async fn test_channel(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Reply<StatusResponse>)> {
    let c = s.store.channel(&id).await?;
    let item = NewNotification {
        notification_type: NotificationType::Test,
        channel: c.name.clone(),
        recipient: String::new(),
        certificate_id: None,
        subject: format!("certctl test notification for channel {}", c.name),
        message: format!("This is a test notification from certctl, requested by {}.", p.name),
        payload: json!({ "channel_id": c.id, "requested_by": p.name }),
        severity: SeverityTier::Informational,
        dedup_key: None,
    };
    s.store.enqueue_notifications(&[item], s.clock.now()).await?;
    s.notify.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Reply(StatusResponse { status: "enqueued".into() })))
}
