//! Renders answers as a table, JSON or YAML.

use serde_json::{Map, Value};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// How a table is laid out for a particular listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Generic,
    /// Notifications: id, certificate, channel, status, `Retry n/max`, last error.
    Notifications {
        max_attempts: u64,
    },
}

/// Columns tried first, in this order, when a listing is shown as a table.
const PREFERRED: &[&str] = &[
    "id",
    "name",
    "common_name",
    "type",
    "status",
    "environment",
    "expires_at",
    "not_after",
    "owner_id",
    "team_id",
    "certificate_id",
    "actor",
    "action",
    "created_at",
];
const MAX_COLUMNS: usize = 7;
const MAX_CELL: usize = 48;

pub fn render(value: &Value, format: Format, layout: Layout) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        Format::Yaml => serde_norway::to_string(value).unwrap_or_default(),
        Format::Table => table(value, layout),
    }
}

fn table(value: &Value, layout: Layout) -> String {
    match value {
        Value::Null => "OK\n".to_owned(),
        Value::String(s) if s.ends_with('\n') => s.clone(),
        Value::String(s) => format!("{s}\n"),
        Value::Array(rows) => rows_table(rows, layout),
        Value::Object(o) => match o.get("data").and_then(Value::as_array) {
            Some(rows) => {
                let mut out = rows_table(rows, layout);
                let total = o.get("total").and_then(Value::as_i64);
                if let Some(total) = total {
                    out.push_str(&format!("{} of {total}", rows.len()));
                    if let Some(c) = o.get("next_cursor").and_then(Value::as_str) {
                        out.push_str(&format!(" (next cursor {c})"));
                    }
                    out.push('\n');
                }
                out
            }
            None => object_table(o),
        },
        other => format!("{other}\n"),
    }
}

fn object_table(o: &Map<String, Value>) -> String {
    let rows: Vec<Vec<String>> = o.iter().map(|(k, v)| vec![k.clone(), cell(v, 100)]).collect();
    grid(&["FIELD".to_owned(), "VALUE".to_owned()], &rows)
}

fn rows_table(rows: &[Value], layout: Layout) -> String {
    if rows.is_empty() {
        return "(none)\n".to_owned();
    }
    if let Layout::Notifications { max_attempts } = layout {
        let headers = ["ID", "CERTIFICATE", "CHANNEL", "STATUS", "RETRY", "LAST ERROR"].map(str::to_owned);
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let max = r.get("max_attempts").and_then(Value::as_u64).unwrap_or(max_attempts);
                let n = r.get("retry_count").and_then(Value::as_u64).unwrap_or(0);
                vec![
                    cell(&r["id"], MAX_CELL),
                    cell(&r["certificate_id"], MAX_CELL),
                    cell(&r["channel"], MAX_CELL),
                    cell(&r["status"], MAX_CELL),
                    format!("Retry {n}/{max}"),
                    cell(&r["last_error"], 60),
                ]
            })
            .collect();
        return grid(&headers, &body);
    }
    let first = rows[0].as_object().cloned().unwrap_or_default();
    let scalar = |k: &str| first.get(k).is_some_and(|v| !v.is_object() && !v.is_array());
    let mut columns: Vec<String> = PREFERRED.iter().filter(|k| scalar(k)).map(|k| (*k).to_owned()).collect();
    for k in first.keys() {
        if columns.len() >= MAX_COLUMNS {
            break;
        }
        if scalar(k) && !columns.contains(k) {
            columns.push(k.clone());
        }
    }
    columns.truncate(MAX_COLUMNS);
    if columns.is_empty() {
        return rows.iter().map(|r| format!("{}\n", cell(r, 200))).collect();
    }
    let headers: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r.get(c).unwrap_or(&Value::Null), MAX_CELL)).collect())
        .collect();
    grid(&headers, &body)
}

/// A value as one table cell, cut to `max` characters.
fn cell(v: &Value, max: usize) -> String {
    let s = match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.replace('\n', " "),
        other => other.to_string(),
    };
    if s.chars().count() > max { s.chars().take(max - 1).collect::<String>() + "…" } else { s }
}

fn grid(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notifications_show_retries_and_cut_errors() {
        let page = json!({"data": [{"id": "n1", "certificate_id": "mc-1", "channel": "ops", "status": "dead",
            "retry_count": 5, "last_error": "x".repeat(100)}], "total": 1});
        let out = render(&page, Format::Table, Layout::Notifications { max_attempts: 5 });
        assert!(out.contains("Retry 5/5"), "{out}");
        assert!(out.contains('…') && !out.contains(&"x".repeat(100)), "{out}");
        assert!(render(&page, Format::Json, Layout::Generic).contains(&"x".repeat(100)));
    }

    #[test]
    fn listings_pick_scalar_columns() {
        let out = render(&json!([{"id": "t1", "name": "Ops", "tags": {"a": 1}}]), Format::Table, Layout::Generic);
        assert_eq!(out, "ID  NAME\nt1  Ops\n");
    }
}
