//! `certctl`: the command-line client. Every API operation is a subcommand, built from the
//! operation table the client crate reads from the OpenAPI document.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::ArgMatches;
use serde_json::{Value, json};
use time::OffsetDateTime;

use certctl_client::operations::{self, Operation};
use certctl_client::{Client, ClientConfig, ClientError};

use certctl_cli::output::{self, Format, Layout};
use certctl_cli::{Failure, command, import, request};

/// The server's default of `CERTCTL_NOTIFICATION_MAX_ATTEMPTS`.
const DEFAULT_NOTIFICATION_MAX_ATTEMPTS: u64 = 5;
/// Rows per page while `--limit` walks cursors (the server's maximum).
const MAX_PAGE: u64 = 500;

fn main() -> ExitCode {
    let matches = match command::build().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            e.print().ok();
            return ExitCode::from(code);
        }
    };
    let format = match matches.get_one::<String>("output").map(String::as_str) {
        Some("json") => Format::Json,
        Some("yaml") => Format::Yaml,
        Some(_) => Format::Table,
        None if std::io::stdout().is_terminal() => Format::Table,
        None => Format::Json,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime");
    let (value, layout, code) = match runtime.block_on(run(&matches)) {
        Ok(Some((value, layout))) => (value, layout, 0),
        Ok(None) => return ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
        Err(Failure::Api(ClientError::Api { status, body })) => {
            let rid =
                if body.request_id.is_empty() { String::new() } else { format!(" [request {}]", body.request_id) };
            eprintln!("error: {} {}: {}{rid}", status.as_u16(), body.error, body.message);
            return ExitCode::from(1);
        }
        Err(Failure::Api(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        Err(Failure::JobFailed(job)) => {
            let err = job["last_error"].as_str().unwrap_or("no error recorded");
            eprintln!(
                "error: job {} ended {}: {err}",
                job["id"].as_str().unwrap_or("?"),
                job["status"].as_str().unwrap_or("?")
            );
            (job, Layout::Generic, 3)
        }
        Err(Failure::Import(result)) => {
            eprintln!("error: some certificates were not imported");
            (result, Layout::Generic, 1)
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(output::render(&value, format, layout).as_bytes()).ok();
    ExitCode::from(code)
}

async fn run(m: &ArgMatches) -> Result<Option<(Value, Layout)>, Failure> {
    let (name, sub) = m.subcommand().expect("a subcommand is required");
    match name {
        "version" => {
            println!("certctl {}", env!("CARGO_PKG_VERSION"));
            if let Ok(client) = client() {
                let op = operations::by_id("version").expect("the API has a version operation");
                if let Ok(v) = client.execute(op, &[], &[], None).await {
                    println!("server {}", v["version"].as_str().unwrap_or("?"));
                }
            }
            Ok(None)
        }
        "completions" => {
            let shell = *sub.get_one::<clap_complete::Shell>("shell").expect("required");
            clap_complete::generate(shell, &mut command::build(), "certctl", &mut std::io::stdout());
            Ok(None)
        }
        "status" => status(&client()?).await.map(|v| Some((v, Layout::Generic))),
        "import" => import::run(&client()?, sub).await.map(|v| Some((v, Layout::Generic))),
        resource => {
            let (action, args) = sub.subcommand().expect("an action is required");
            let op = operations::find(resource, action).expect("the command tree comes from the operation table");
            operation(&client()?, op, args).await.map(Some)
        }
    }
}

fn client() -> Result<Client, Failure> {
    Ok(Client::new(ClientConfig::from_env()?)?)
}

async fn operation(client: &Client, op: &Operation, m: &ArgMatches) -> Result<(Value, Layout), Failure> {
    let req = request::build(op, m, OffsetDateTime::now_utc())?;
    let value = match m.try_get_one::<u64>("limit").ok().flatten() {
        Some(&limit) => walk(client, op, &req, limit).await?,
        None => client.execute(op, &req.path_refs(), &req.query, req.body.as_ref()).await?,
    };
    if m.try_get_one::<bool>("wait").ok().flatten() == Some(&true) {
        let timeout = m.get_one::<String>("wait-timeout").expect("has a default");
        let timeout = request::parse_duration(timeout).map_err(|e| Failure::Usage(format!("--wait-timeout: {e}")))?;
        for job in job_ids(&value) {
            let job = wait(client, &job, timeout).await?;
            if !status_is(&job, "completed") {
                return Err(Failure::JobFailed(job));
            }
        }
    }
    let layout = if op.resource == "notifications" && op.action == "list" {
        let max = std::env::var("CERTCTL_NOTIFICATION_MAX_ATTEMPTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_NOTIFICATION_MAX_ATTEMPTS);
        Layout::Notifications { max_attempts: value.get("max_attempts").and_then(Value::as_u64).unwrap_or(max) }
    } else {
        Layout::Generic
    };
    Ok((value, layout))
}

/// Collects up to `limit` rows, following `next_cursor` from page to page.
async fn walk(client: &Client, op: &Operation, req: &request::Request, limit: u64) -> Result<Value, Failure> {
    let mut rows: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = Value::Null;
    // A `--page-size` sets the size of each page walked; otherwise pages are as large as allowed.
    let page_size =
        req.query.iter().find(|(k, _)| k == "page_size").and_then(|(_, v)| v.parse().ok()).unwrap_or(MAX_PAGE);
    loop {
        let mut query: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "cursor" | "page_size" | "page" | "per_page"))
            .cloned()
            .collect();
        query.push(("page_size".into(), (limit - rows.len() as u64).min(page_size).to_string()));
        if let Some(c) = &cursor {
            query.push(("cursor".into(), c.clone()));
        }
        let page = client.execute(op, &req.path_refs(), &query, None).await?;
        if total.is_null() {
            total = page["total"].clone();
        }
        rows.extend(page["data"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() || rows.len() as u64 >= limit {
            rows.truncate(limit as usize);
            return Ok(json!({"data": rows, "total": total, "next_cursor": cursor}));
        }
    }
}

/// The jobs an answer names: `job_id`, or the `job_id`s of a bulk renewal's list.
fn job_ids(v: &Value) -> Vec<String> {
    if let Some(id) = v.get("job_id").and_then(Value::as_str) {
        return vec![id.to_owned()];
    }
    let lists = v.as_object().into_iter().flat_map(|o| o.values()).filter_map(Value::as_array);
    lists.flatten().filter_map(|e| e.get("job_id").and_then(Value::as_str)).map(str::to_owned).collect()
}

fn status_is(job: &Value, status: &str) -> bool {
    job["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(status))
}

/// Polls a job until it completes, fails or is cancelled.
async fn wait(client: &Client, id: &str, timeout: Duration) -> Result<Value, Failure> {
    let op = operations::find("jobs", "get").expect("the API has a job lookup");
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(200);
    loop {
        let job = client.execute(op, &[("id", id)], &[], None).await?;
        if ["completed", "failed", "cancelled"].iter().any(|s| status_is(&job, s)) {
            return Ok(job);
        }
        if Instant::now() >= deadline {
            return Err(Failure::JobFailed(
                json!({"id": id, "status": "timed out", "last_error": "--wait-timeout passed", "job": job}),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Health, the API key's identity and the server version in one answer.
async fn status(client: &Client) -> Result<Value, Failure> {
    let run = |id: &str| operations::by_id(id).expect("the API has health, auth and version operations");
    let health = client.execute(run("health"), &[], &[], None).await?;
    let auth = client.execute(run("auth_check"), &[], &[], None).await?;
    let version = client.execute(run("version"), &[], &[], None).await?;
    Ok(json!({
        "health": health["status"],
        "key": auth["user"],
        "role": auth["role"],
        "version": version["version"],
        "commit": version["commit"],
    }))
}
