//! Deployment targets, whose configuration is checked, sealed and redacted like an issuer's.

use axum::Json as Reply;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use certctl_api::{
    CreateTarget, DeploymentTarget, ErrorBody, Page, PageParams, ResourceId, TargetConfig, TargetFilter, TargetType,
    UpdateTarget,
};
use certctl_store::{NewTarget, TargetChanges, new_id};

use super::issuers::{resolve_config, seal_config};
use super::listing;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, paging};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_targets, create_target)).routes(routes!(
        get_target,
        update_target,
        delete_target
    ))
}

/// Characters that let a command run more than the command: chaining, pipes, substitution,
/// redirection and line breaks.
const SHELL_METACHARACTERS: &[char] = &[';', '|', '&', '$', '`', '>', '<', '\n', '\r', '\0'];

fn is_absolute_path(p: &str) -> bool {
    let b = p.as_bytes();
    let windows_drive = b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/');
    (p.starts_with('/') || windows_drive || p.starts_with("\\\\")) && !p.chars().any(char::is_control)
}

/// Checks what can be checked of a target configuration without its connector: every `path`
/// and `*_path` is absolute, and no `*_command` carries shell syntax the agent would run.
/// `prefix` is the field path of `config` in the request, for error messages; values are never
/// echoed, since some of them are secrets.
fn validate_config(config: &Map<String, Value>, prefix: &str) -> ApiResult<()> {
    for (key, value) in config {
        validate_value(&key.to_ascii_lowercase(), value, &format!("{prefix}.{key}"))?;
    }
    Ok(())
}

/// Checks one value under `key`; arrays are checked element by element under the same key, so
/// `hooks: [{reload_command: …}]` and `extra_paths: […]` get the same scrutiny.
fn validate_value(key: &str, value: &Value, field: &str) -> ApiResult<()> {
    match value {
        Value::Null => Ok(()),
        Value::Object(inner) => validate_config(inner, field),
        // A single command is one string; lists belong under `*_commands`.
        _ if key.ends_with("_command") => check_command(field, value),
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| validate_value(key, item, &format!("{field}[{i}]")))
        }
        _ if key == "path" || key.ends_with("_path") || key.ends_with("_paths") => check_path(field, value),
        _ if key.ends_with("_commands") => check_command(field, value),
        _ => Ok(()),
    }
}

fn check_path(field: &str, value: &Value) -> ApiResult<()> {
    if value.as_str().is_some_and(is_absolute_path) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("{field}: must be an absolute path")))
    }
}

fn check_command(field: &str, value: &Value) -> ApiResult<()> {
    let Some(command) = value.as_str() else {
        return Err(ApiError::BadRequest(format!("{field}: must be a string")));
    };
    match command.chars().find(|c| SHELL_METACHARACTERS.contains(c)) {
        None => Ok(()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "{field}: must not contain shell metacharacters (found {c:?}); wrap a pipeline in a script and give \
             its absolute path"
        ))),
    }
}

/// Checks a configuration against its type's typed form (required fields, value shapes, unknown
/// keys), so a mistake shows when the target is saved rather than at its first deployment.
fn validate_typed(target_type: TargetType, config: &Map<String, Value>, prefix: &str) -> ApiResult<()> {
    match TargetConfig::parse(target_type, config) {
        Ok(_) => Ok(()),
        Err(e) if e.field.is_empty() => Err(ApiError::BadRequest(format!("{prefix}: {}", e.message))),
        Err(e) => Err(ApiError::BadRequest(format!("{prefix}.{e}"))),
    }
}

pub(crate) fn context(id: &str) -> String {
    format!("target:{id}")
}

/// List deployment targets, optionally of one agent or type; configurations are redacted.
#[utoipa::path(get, path = "/api/v1/targets", tag = "Targets", params(PageParams, TargetFilter), responses(
    (status = 200, body = Page<DeploymentTarget>), (status = 400, body = ErrorBody)))]
async fn list_targets(
    _: Viewer,
    State(s): State<AppState>,
    Query(p): Query<PageParams>,
    Query(f): Query<TargetFilter>,
) -> ApiResult<Response> {
    let target_type = f
        .target_type
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<TargetType>().map_err(|e| ApiError::BadRequest(format!("type: {e}"))))
        .transpose()?;
    let agent_id = f.agent_id.filter(|a| !a.is_empty());
    Ok(listing(s.store.list_targets(agent_id.as_deref(), target_type, &paging(&p)?).await?))
}

/// Create a deployment target on a registered, non-retired agent.
#[utoipa::path(post, path = "/api/v1/targets", tag = "Targets", request_body = CreateTarget, responses(
    (status = 201, body = DeploymentTarget), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_target(
    Operator(p): Operator,
    State(s): State<AppState>,
    Json(req): Json<CreateTarget>,
) -> ApiResult<(StatusCode, Reply<DeploymentTarget>)> {
    // The ID is fixed before sealing because the sealed config is bound to it.
    let id = req.id.map(ResourceId::into_inner).unwrap_or_else(|| new_id("target"));
    let ctx = context(&id);
    let resolved = resolve_config(&s.secrets, &ctx, req.config.unwrap_or_default(), None)?;
    validate_config(&resolved.full, "config")?;
    validate_typed(req.target_type, &resolved.full, "config")?;
    let new = NewTarget {
        config: seal_config(&s.secrets, &ctx, resolved),
        id,
        name: req.name,
        target_type: req.target_type,
        agent_id: req.agent_id.into_inner(),
        enabled: req.enabled.unwrap_or(true),
    };
    Ok((StatusCode::CREATED, Reply(s.store.create_target(&new, &p.actor(), s.clock.now()).await?)))
}

/// Get a deployment target; its configuration is redacted.
#[utoipa::path(get, path = "/api/v1/targets/{id}", tag = "Targets",
    params(("id" = String, Path, description = "Target ID")),
    responses((status = 200, body = DeploymentTarget), (status = 404, body = ErrorBody)))]
async fn get_target(
    _: Viewer,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Reply<DeploymentTarget>> {
    Ok(Reply(s.store.target(&id).await?))
}

/// Update a deployment target; absent fields keep their value, and `********` in the
/// configuration keeps the stored secret.
#[utoipa::path(put, path = "/api/v1/targets/{id}", tag = "Targets",
    params(("id" = String, Path, description = "Target ID")),
    request_body = UpdateTarget, responses(
    (status = 200, body = DeploymentTarget), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_target(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateTarget>,
) -> ApiResult<Reply<DeploymentTarget>> {
    let config = match req.config {
        Some(incoming) => {
            let ctx = context(&id);
            let target_type = s.store.target(&id).await?.target_type;
            let stored = s.store.target_sealed_config(&id).await?;
            let resolved = resolve_config(&s.secrets, &ctx, incoming, stored)?;
            validate_config(&resolved.full, "config")?;
            validate_typed(target_type, &resolved.full, "config")?;
            Some(seal_config(&s.secrets, &ctx, resolved))
        }
        None => None,
    };
    let changes = TargetChanges {
        name: req.name,
        agent_id: req.agent_id.map(ResourceId::into_inner),
        config,
        enabled: req.enabled,
    };
    Ok(Reply(s.store.update_target(&id, &changes, &p.actor(), s.clock.now()).await?))
}

/// Delete a deployment target that no certificate is mapped to and no unfinished job needs.
#[utoipa::path(delete, path = "/api/v1/targets/{id}", tag = "Targets",
    params(("id" = String, Path, description = "Target ID")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_target(
    Operator(p): Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_target(&id, &p.actor(), s.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<(), String> {
        validate_config(v.as_object().unwrap(), "config").map_err(|e| e.to_string())
    }

    #[test]
    fn paths_must_be_absolute() {
        assert!(check(json!({"cert_path": "/etc/ssl/a.pem", "path": "C:\\certs\\a.pfx", "port": 443})).is_ok());
        assert!(check(json!({"share_path": "\\\\srv\\certs", "chain_path": null, "key_path": "D:/k.pem"})).is_ok());
        assert_eq!(check(json!({"cert_path": "ssl/a.pem"})).unwrap_err(), "config.cert_path: must be an absolute path");
        assert!(check(json!({"PATH": "relative"})).unwrap_err().starts_with("config.PATH:"));
        assert!(check(json!({"key_path": 5})).unwrap_err().starts_with("config.key_path:"));
        assert!(check(json!({"key_path": ""})).is_err());
        assert!(check(json!({"key_path": "/a\nb"})).is_err());
        assert!(check(json!({"tls": {"key_path": "k.pem"}})).unwrap_err().starts_with("config.tls.key_path:"));
        // Only `path` itself and `*_path` are paths.
        assert!(check(json!({"url_pathname": "x", "paths": "y"})).is_ok());
    }

    #[test]
    fn commands_carry_no_shell_syntax() {
        assert!(check(json!({"reload_command": "systemctl reload nginx", "validate_command": "nginx -t"})).is_ok());
        for bad in ["nginx -t; rm -rf /", "a | b", "a && b", "echo $HOME", "echo `id`", "a > b", "a < b", "a\nb"] {
            let err = check(json!({"reload_command": bad})).unwrap_err();
            assert!(err.starts_with("config.reload_command: must not contain shell metacharacters"), "{bad}: {err}");
            assert!(!err.contains(bad), "the value is not echoed");
        }
        assert_eq!(check(json!({"reload_command": ["a"]})).unwrap_err(), "config.reload_command: must be a string");
    }

    fn typed(t: TargetType, v: Value) -> Result<(), String> {
        validate_typed(t, v.as_object().unwrap(), "config").map_err(|e| e.to_string())
    }

    #[test]
    fn typed_configs_name_the_field() {
        assert!(typed(TargetType::Nginx, json!({"cert_path": "/c.pem", "key_path": "/k.pem"})).is_ok());
        assert_eq!(typed(TargetType::Nginx, json!({"key_path": "/k.pem"})).unwrap_err(), "config.cert_path: required");
        assert_eq!(
            typed(TargetType::HaProxy, json!({"pem_path": "/p.pem", "certpath": "/x"})).unwrap_err(),
            "config.certpath: unknown field"
        );
        assert!(
            typed(TargetType::File, json!({"cert_path": "/c", "key_path": "/k", "key_mode": "777x"}))
                .unwrap_err()
                .starts_with("config.key_mode: ")
        );
        // Types without a typed form keep the generic checks only.
        assert!(typed(TargetType::F5, json!({"anything": 1})).is_ok());
    }

    #[test]
    fn arrays_are_checked_like_their_key() {
        let ok = json!({"hooks": [{"reload_command": "/usr/sbin/nginx -s reload", "cert_path": "/etc/x.pem"}]});
        assert!(validate_config(ok.as_object().unwrap(), "config").is_ok());
        let bad = json!({"hooks": [{"reload_command": "nginx -s reload"}, {"reload_command": "a; rm -rf /"}]});
        let e = validate_config(bad.as_object().unwrap(), "config").unwrap_err().to_string();
        assert!(e.starts_with("config.hooks[1].reload_command:"), "{e}");
        let bad = json!({"extra_paths": ["/a", "relative"]});
        let e = validate_config(bad.as_object().unwrap(), "config").unwrap_err().to_string();
        assert!(e.starts_with("config.extra_paths[1]:"), "{e}");
    }
}
