//! Turns parsed arguments into an operation's path parameters, query and JSON body.

use std::time::Duration;

use clap::ArgMatches;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use certctl_client::operations::{Operation, ParamKind};

use crate::Failure;
use crate::command::{body_flag, body_id, is_time_filter, path_id, query_id};

/// One request ready to send.
pub struct Request {
    pub path: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Request {
    pub fn path_refs(&self) -> Vec<(&str, &str)> {
        self.path.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

pub fn build(op: &Operation, m: &ArgMatches, now: OffsetDateTime) -> Result<Request, Failure> {
    let mut path = Vec::new();
    for p in op.path_params() {
        let v: &String = m.get_one(&path_id(&p.name)).expect("path parameters are required");
        path.push((p.name.clone(), v.clone()));
    }
    let mut query = Vec::new();
    for p in op.query_params() {
        let id = query_id(&p.name);
        let value = match p.kind {
            ParamKind::Boolean => m.get_one::<bool>(&id).map(bool::to_string),
            ParamKind::Integer => m.get_one::<i64>(&id).map(i64::to_string),
            ParamKind::Number => m.get_one::<f64>(&id).map(f64::to_string),
            ParamKind::String => m.get_one::<String>(&id).cloned(),
        };
        if let Some(mut v) = value {
            if is_time_filter(&p.name) {
                let flag = format!("--{}", p.name.replace('_', "-"));
                v = relative_time(&v, now, p.name.starts_with("expires"))
                    .map_err(|e| Failure::Usage(format!("{flag}: {e}")))?;
            }
            query.push((p.name.clone(), v));
        }
    }
    let body = if op.body.is_some() { body(op, m)? } else { None };
    Ok(Request { path, query, body })
}

fn body(op: &Operation, m: &ArgMatches) -> Result<Option<Value>, Failure> {
    let mut object = match m.get_one::<String>("data") {
        Some(data) => {
            let text = match data.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)
                    .map_err(|e| Failure::Usage(format!("--data: cannot read {file}: {e}")))?,
                None => data.clone(),
            };
            match serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("--data: not JSON: {e}")))? {
                Value::Object(o) => Some(o),
                other => return Ok(Some(other)),
            }
        }
        None => None,
    };
    for f in &op.body_fields {
        if let Some(raw) = m.get_one::<String>(&body_id(&f.name)) {
            let flag = format!("--{}", body_flag(op, &f.name));
            let value = field_value(&f.schema, raw).map_err(|e| Failure::Usage(format!("{flag}: {e}")))?;
            object.get_or_insert_with(Map::new).insert(f.name.clone(), value);
        }
    }
    Ok(match object {
        Some(o) => Some(Value::Object(o)),
        None if op.body_required => Some(Value::Object(Map::new())),
        None => None,
    })
}

/// The JSON types a schema allows, looking through `oneOf` alternatives.
fn types_of(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match schema.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned)),
        _ => {}
    }
    for alt in schema.get("oneOf").and_then(Value::as_array).into_iter().flatten() {
        out.extend(types_of(alt));
    }
    out
}

/// A flag's text as the JSON value its schema wants: numbers and booleans parsed, arrays as JSON
/// or comma-separated, objects as JSON.
fn field_value(schema: &Value, raw: &str) -> Result<Value, String> {
    let types = types_of(schema);
    let has = |t: &str| types.iter().any(|x| x == t);
    if has("string") || types.is_empty() {
        if types.is_empty() && (raw.starts_with('{') || raw.starts_with('[')) {
            return serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"));
        }
        return Ok(Value::String(raw.to_owned()));
    }
    if has("integer") {
        return raw.parse::<i64>().map(Value::from).map_err(|_| format!("'{raw}' is not an integer"));
    }
    if has("number") {
        return raw.parse::<f64>().map(Value::from).map_err(|_| format!("'{raw}' is not a number"));
    }
    if has("boolean") {
        return raw.parse::<bool>().map(Value::from).map_err(|_| format!("'{raw}' is not true or false"));
    }
    if has("array") && !raw.trim_start().starts_with('[') {
        let item = schema.get("items").cloned().unwrap_or(Value::Null);
        return raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| field_value(&item, s))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))
}

/// `30d` → now + 30 days for expiry filters (now − 30 days for the others); RFC 3339 passes as is.
fn relative_time(v: &str, now: OffsetDateTime, future: bool) -> Result<String, String> {
    let Ok(d) = parse_duration(v) else {
        return OffsetDateTime::parse(v, &Rfc3339)
            .map(|_| v.to_owned())
            .map_err(|_| format!("'{v}' is neither RFC 3339 nor an age like 30d"));
    };
    let at = if future { now + d } else { now - d };
    at.format(&Rfc3339).map_err(|e| e.to_string())
}

/// `90s`, `5m`, `12h`, `30d`, `2w`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("'{v}' is not a duration like 30d"))?;
    let secs = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("'{v}': unit must be s, m, h, d or w")),
    };
    Ok(Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn relative_ages_become_timestamps() {
        let now = datetime!(2026-03-01 00:00:00 UTC);
        assert_eq!(relative_time("30d", now, true).unwrap(), "2026-03-31T00:00:00Z");
        assert_eq!(relative_time("1d", now, false).unwrap(), "2026-02-28T00:00:00Z");
        assert_eq!(relative_time("2026-01-01T00:00:00Z", now, true).unwrap(), "2026-01-01T00:00:00Z");
        assert!(relative_time("soon", now, true).is_err());
    }

    #[test]
    fn flag_values_follow_the_schema() {
        assert_eq!(
            field_value(&json!({"type": ["array", "null"], "items": {"type": "string"}}), "a, b").unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(field_value(&json!({"type": ["boolean", "null"]}), "true").unwrap(), json!(true));
        assert_eq!(field_value(&json!({"type": "integer"}), "5").unwrap(), json!(5));
        assert!(field_value(&json!({"type": "integer"}), "x").is_err());
        assert_eq!(field_value(&json!({"type": "object"}), "{\"a\":1}").unwrap(), json!({"a": 1}));
    }
}
