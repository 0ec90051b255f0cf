//! The table of REST operations, read from the committed OpenAPI document (`openapi.json`, which
//! the server generates from the `api` types) when the crate compiles. The CLI and the MCP server
//! build their commands and tools from this table, so neither can drift from the API.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// The OpenAPI document the table comes from.
pub const OPENAPI_JSON: &str = include_str!("../../../openapi.json");

/// HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
}

/// The JSON type of a parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    String,
    Integer,
    Number,
    Boolean,
}

/// One path or query parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: ParamIn,
    pub kind: ParamKind,
    pub description: String,
    pub required: bool,
    /// Allowed values, when the schema is an enum.
    pub values: Vec<String>,
    /// `format` of the schema (`date-time`, `int32`, …).
    pub format: Option<String>,
}

/// A top-level property of a JSON request body.
#[derive(Debug, Clone)]
pub struct BodyField {
    pub name: String,
    pub description: String,
    pub required: bool,
    /// The property's schema with references inlined.
    pub schema: Value,
}

/// One REST operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// OpenAPI `operationId`.
    pub id: String,
    /// CLI resource (`certs`, `notifications`, …).
    pub resource: String,
    /// CLI action (`list`, `renew`, …).
    pub action: String,
    pub method: HttpMethod,
    /// Path template with `{name}` placeholders.
    pub path: String,
    pub summary: String,
    pub description: String,
    pub params: Vec<Param>,
    /// The JSON request body schema with references inlined, when the operation takes one.
    pub body: Option<Value>,
    pub body_required: bool,
    /// The body's top-level properties (empty when the body is not an object).
    pub body_fields: Vec<BodyField>,
    /// Whether a success answer is JSON (otherwise text or binary).
    pub json_response: bool,
}

impl Operation {
    /// Reads only: `GET`.
    pub fn read_only(&self) -> bool {
        self.method == HttpMethod::Get
    }

    /// Deletes or archives something: `DELETE`.
    pub fn destructive(&self) -> bool {
        self.method == HttpMethod::Delete
    }

    /// Repeating the call has no further effect: `GET`, `PUT`, `DELETE`.
    pub fn idempotent(&self) -> bool {
        matches!(self.method, HttpMethod::Get | HttpMethod::Put | HttpMethod::Delete)
    }

    /// Whether the operation lists with keyset cursors (`cursor` and `page_size` parameters).
    pub fn paginated(&self) -> bool {
        self.param("cursor").is_some() && self.param("page_size").is_some()
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn path_params(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.location == ParamIn::Path)
    }

    pub fn query_params(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.location == ParamIn::Query)
    }

    /// The MCP tool name: `certctl_<resource>_<action>` with underscores.
    pub fn tool_name(&self) -> String {
        format!("certctl_{}_{}", self.resource, self.action).replace('-', "_")
    }

    /// Summary, then description when it adds something.
    pub fn help(&self) -> String {
        match (self.summary.is_empty(), self.description.is_empty()) {
            (false, false) => format!("{}\n\n{}", self.summary, self.description),
            (false, true) => self.summary.clone(),
            (true, false) => self.description.clone(),
            (true, true) => format!("{} {}", self.method.as_str(), self.path),
        }
    }
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

static OPERATIONS: LazyLock<Vec<Operation>> =
    LazyLock::new(|| parse(OPENAPI_JSON).expect("the committed openapi.json describes every operation"));

/// Every operation of the API, in document order.
pub fn all() -> &'static [Operation] {
    &OPERATIONS
}

/// The operation for a CLI resource and action.
pub fn find(resource: &str, action: &str) -> Option<&'static Operation> {
    all().iter().find(|o| o.resource == resource && o.action == action)
}

/// The operation with an `operationId`.
pub fn by_id(id: &str) -> Option<&'static Operation> {
    all().iter().find(|o| o.id == id)
}

/// Resource names for path segments whose CLI name is shorter or differs.
const RESOURCE_ALIASES: &[(&str, &str)] = &[("certificates", "certs")];

/// Words that name the resource itself inside an operation id, dropped from the action
/// (`list_certificates` under `certs` is `list`).
const RESOURCE_WORDS: &[(&str, &[&str])] = &[
    ("certs", &["certificate", "certificates"]),
    ("apikeys", &["key", "keys", "apikey", "apikeys"]),
    ("notification-channels", &["channel", "channels"]),
    ("renewal-policies", &["renewal", "policy", "policies"]),
    ("notifications", &["notification", "notifications"]),
];

/// Actions spelled as the issue and the Go CLI spell them, by operation id.
const ACTION_ALIASES: &[(&str, &str)] = &[
    ("list_versions", "versions"),
    ("list_deployments", "deployments"),
    ("metrics_json", "get"),
    ("prometheus", "prometheus"),
    ("ca_certificate", "ca"),
    ("get_crl", "crl"),
    ("ocsp_post", "ocsp"),
    ("issuer_ca_chain", "ca-chain"),
    ("summary", "summary"),
    ("mark_read", "read"),
    ("openapi_json", "openapi"),
];

/// Parses an OpenAPI 3.1 document into the operation table.
pub fn parse(doc: &str) -> Result<Vec<Operation>, String> {
    let doc: Value = serde_json::from_str(doc).map_err(|e| format!("openapi.json: {e}"))?;
    let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).cloned().unwrap_or_default();
    let paths = doc.get("paths").and_then(Value::as_object).ok_or("openapi.json has no paths")?;
    let mut ops = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (method, op) in item {
            let method = match method.as_str() {
                "get" => HttpMethod::Get,
                "post" => HttpMethod::Post,
                "put" => HttpMethod::Put,
                "patch" => HttpMethod::Patch,
                "delete" => HttpMethod::Delete,
                _ => continue,
            };
            ops.push(operation(path, method, op, &schemas)?);
        }
    }
    let mut seen = BTreeMap::new();
    for op in &ops {
        if let Some(other) = seen.insert((op.resource.clone(), op.action.clone()), op.id.clone()) {
            return Err(format!("operations {other} and {} both map to {} {}", op.id, op.resource, op.action));
        }
    }
    Ok(ops)
}

fn operation(path: &str, method: HttpMethod, op: &Value, schemas: &Map<String, Value>) -> Result<Operation, String> {
    let id = op.get("operationId").and_then(Value::as_str).ok_or(format!("{path}: no operationId"))?.to_owned();
    let resource = resource_of(path);
    let action = action_of(&id, &resource);
    let mut params = Vec::new();
    for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        let p = resolve(p, schemas, 0);
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => ParamIn::Path,
            Some("query") => ParamIn::Query,
            _ => continue,
        };
        let schema = p.get("schema").cloned().unwrap_or(Value::Null);
        params.push(Param {
            name: str_of(&p, "name"),
            location,
            kind: kind_of(&schema),
            description: str_of(&p, "description"),
            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
            values: enum_of(&schema),
            format: schema.get("format").and_then(Value::as_str).map(str::to_owned),
        });
    }
    // Path parameters in the order they appear in the path, so positional arguments read naturally.
    params.sort_by_key(|p| match p.location {
        ParamIn::Path => path.find(&format!("{{{}}}", p.name)).unwrap_or(0),
        ParamIn::Query => usize::MAX,
    });
    let request = op.get("requestBody");
    let body = request.and_then(|b| b.pointer("/content/application~1json/schema")).map(|s| resolve(s, schemas, 0));
    let body_required = request.and_then(|b| b.get("required")).and_then(Value::as_bool).unwrap_or(false);
    let body_fields = body.as_ref().map(fields_of).unwrap_or_default();
    let json_response = op.get("responses").and_then(Value::as_object).is_some_and(|rs| {
        rs.iter()
            .filter(|(code, _)| code.starts_with('2'))
            .any(|(_, r)| r.pointer("/content/application~1json").is_some())
    });
    Ok(Operation {
        id,
        resource,
        action,
        method,
        path: path.to_owned(),
        summary: str_of(op, "summary"),
        description: str_of(op, "description"),
        params,
        body,
        body_required,
        body_fields,
        json_response,
    })
}

/// `/api/v1/certificates/{id}/renew` → `certs`; paths outside `/api/v1` (health, PKI) and the
/// server's own endpoints (`version`, `auth`, `openapi.json`) go under `server` and `pki`.
fn resource_of(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        let first = rest.split('/').next().unwrap_or_default();
        if matches!(first, "version" | "auth" | "openapi.json") {
            return "server".into();
        }
        return RESOURCE_ALIASES.iter().find(|(from, _)| *from == first).map_or(first, |(_, to)| to).to_owned();
    }
    if path.starts_with("/.well-known/pki/") {
        return "pki".into();
    }
    "server".into()
}

/// `list_certificates` under `certs` → `list`; `bulk_revoke` → `bulk-revoke`.
fn action_of(id: &str, resource: &str) -> String {
    if let Some((_, action)) = ACTION_ALIASES.iter().find(|(from, _)| *from == id) {
        return (*action).to_owned();
    }
    let singular = resource.trim_end_matches('s');
    let words = RESOURCE_WORDS.iter().find(|(r, _)| *r == resource).map(|(_, w)| *w).unwrap_or(&[]);
    let kept: Vec<&str> = id
        .split('_')
        .filter(|w| !(words.contains(w) || *w == resource || *w == singular || (resource == "audit" && *w == "audit")))
        .collect();
    if kept.is_empty() { "get".to_owned() } else { kept.join("-") }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn kind_of(schema: &Value) -> ParamKind {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"integer") {
        ParamKind::Integer
    } else if types.contains(&"number") {
        ParamKind::Number
    } else if types.contains(&"boolean") {
        ParamKind::Boolean
    } else {
        ParamKind::String
    }
}

fn enum_of(schema: &Value) -> Vec<String> {
    let direct = schema.get("enum").and_then(Value::as_array);
    let nested = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|alts| alts.iter().find_map(|a| a.get("enum").and_then(Value::as_array)));
    direct.or(nested).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// The top-level properties of an object schema, looking through a nullable `oneOf`.
fn fields_of(schema: &Value) -> Vec<BodyField> {
    let object = match schema.get("oneOf").and_then(Value::as_array) {
        Some(alts) => alts.iter().find(|a| a.get("properties").is_some()).unwrap_or(schema),
        None => schema,
    };
    let required: Vec<&str> =
        object.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    object
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, s)| BodyField {
            name: name.clone(),
            description: str_of(s, "description"),
            required: required.contains(&name.as_str()),
            schema: s.clone(),
        })
        .collect()
}

/// Inlines `$ref`s to `#/components/schemas/…`; deep or recursive references stop at a plain
/// object so schemas stay finite.
fn resolve(v: &Value, schemas: &Map<String, Value>, depth: usize) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                let name = r.trim_start_matches("#/components/schemas/");
                return match schemas.get(name) {
                    Some(target) if depth < 8 => resolve(target, schemas, depth + 1),
                    _ => serde_json::json!({"type": "object"}),
                };
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve(v, schemas, depth))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, schemas, depth)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_paths_and_operation_ids() {
        let list = by_id("list_certificates").unwrap();
        assert_eq!((list.resource.as_str(), list.action.as_str()), ("certs", "list"));
        assert!(list.paginated() && list.read_only() && list.idempotent());
        let renew = by_id("renew").unwrap();
        assert_eq!((renew.resource.as_str(), renew.action.as_str()), ("certs", "renew"));
        assert!(!renew.idempotent());
        assert_eq!(renew.path_params().next().unwrap().name, "id");
        let requeue = by_id("requeue").unwrap();
        assert_eq!((requeue.resource.as_str(), requeue.action.as_str()), ("notifications", "requeue"));
        assert_eq!(by_id("list_renewal_policies").unwrap().action, "list");
        assert_eq!(by_id("archive_certificate").unwrap().tool_name(), "certctl_certs_archive");
        assert!(by_id("archive_certificate").unwrap().destructive());
    }

    #[test]
    fn bodies_are_inlined() {
        let create = find("certs", "create").unwrap();
        let names: Vec<&str> = create.body_fields.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"common_name") && names.contains(&"owner_id"));
        assert!(create.body_fields.iter().find(|f| f.name == "name").unwrap().required);
        assert!(!serde_json::to_string(create.body.as_ref().unwrap()).unwrap().contains("$ref"));
    }
}
