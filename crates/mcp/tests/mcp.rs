//! `certctl-mcp` against real peers: the parity of the CLI's commands and the MCP tools with the
//! OpenAPI operations, and the Python MCP SDK driving the binary over stdio against a running
//! `certctl-server`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use certctl_client::operations::{self, Operation};
use certctl_client::{Client, ClientConfig};

const BIN: &str = env!("CARGO_BIN_EXE_certctl-mcp");

/// The tools `certctl-mcp` lists, read over stdio with plain JSON-RPC.
fn listed_tools() -> Vec<Value> {
    let mut child = Command::new(BIN)
        .env("CERTCTL_API_KEY", "unused")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "parity", "version": "1"}}}));
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let init: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "certctl", "{init}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let list: Value = serde_json::from_str(&line).unwrap();
    child.kill().ok();
    child.wait().ok();
    list["result"]["tools"].as_array().cloned().unwrap_or_else(|| panic!("no tools: {list}"))
}

/// An operation's inputs: its parameters and its body's top-level properties.
fn inputs(op: &Operation) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = op.params.iter().map(|p| p.name.clone()).collect();
    out.extend(op.body_fields.iter().map(|f| f.name.clone()));
    if op.body.is_some() && op.body_fields.is_empty() {
        out.insert("body".into());
    }
    out
}

#[test]
fn cli_and_mcp_cover_every_operation_with_its_parameters() {
    let doc: Value = serde_json::from_str(operations::OPENAPI_JSON).unwrap();
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .count()
        })
        .sum();
    assert_eq!(operations::all().len(), documented, "every documented operation is in the table");

    let tools = listed_tools();
    assert_eq!(tools.len(), documented, "one MCP tool per operation");
    let cli = certctl_cli::command::build();
    for op in operations::all() {
        // MCP: the tool exists and its input properties are the operation's inputs.
        let tool = tools
            .iter()
            .find(|t| t["name"] == op.tool_name().as_str())
            .unwrap_or_else(|| panic!("no MCP tool for {}", op.id));
        let props: BTreeSet<String> = tool["inputSchema"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.strip_prefix("body_").filter(|k| op.param(k).is_some() || *k == "body").unwrap_or(k).to_owned())
            .collect();
        assert_eq!(props, inputs(op), "MCP tool {} vs operation {}", op.tool_name(), op.id);
        let ann = &tool["annotations"];
        assert_eq!(ann["readOnlyHint"], op.read_only(), "{}", op.id);
        assert_eq!(ann["destructiveHint"], op.destructive(), "{}", op.id);
        assert_eq!(ann["idempotentHint"], op.idempotent(), "{}", op.id);
        assert!(tool["description"].as_str().is_some_and(|d| !d.is_empty()), "{}", op.id);

        // CLI: the subcommand exists and its arguments are the operation's inputs.
        let cmd = cli
            .find_subcommand(&op.resource)
            .and_then(|r| r.find_subcommand(&op.action))
            .unwrap_or_else(|| panic!("no CLI command for {}", op.id));
        let args: BTreeSet<String> = cmd
            .get_arguments()
            .filter_map(|a| {
                let id = a.get_id().as_str();
                id.split_once(':').map(|(_, name)| name.to_owned())
            })
            .collect();
        let mut expected = inputs(op);
        if op.body.is_some() && op.body_fields.is_empty() {
            expected.remove("body");
            assert!(cmd.get_arguments().any(|a| a.get_id() == "data"), "{} takes --data", op.id);
        }
        assert_eq!(args, expected, "CLI certctl {} {} vs operation {}", op.resource, op.action, op.id);
    }
}

/// A running server, in this process, on a free port.
struct Server {
    url: String,
    key: String,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Server {
    let dir = tempfile::Builder::new().prefix("certctl-mcp-").tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = certctl_server::auth::generate_key();
    let mut raw = certctl_server::config::RawSettings::default();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("database_url", format!("sqlite://{}/certctl.db", dir.path().display()));
    raw.set("listen", format!("127.0.0.1:{port}"));
    raw.set("bootstrap_api_key", key.clone());
    raw.set("keygen_mode", "server");
    raw.set("job_process_interval", "1s");
    raw.set("log", "warn");
    let config = raw.into_config().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        if let Err(e) = rt.block_on(certctl_server::run(config)) {
            eprintln!("certctl-server stopped: {e:#}");
        }
    });
    Server { url: format!("https://127.0.0.1:{port}"), key, ca: dir.path().join("tls/ca.pem"), _dir: dir }
}

async fn client(server: &Server) -> Client {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.ca.exists() {
        assert!(Instant::now() < deadline, "certctl-server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = Client::new(ClientConfig {
        base_url: server.url.clone(),
        api_key: server.key.clone(),
        ca_bundle_pem: Some(std::fs::read(&server.ca).unwrap()),
        timeout: Duration::from_secs(30),
    })
    .unwrap();
    while client.version().await.is_err() {
        assert!(Instant::now() < deadline, "certctl-server did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
}

async fn call(
    client: &Client,
    resource: &str,
    action: &str,
    path: &[(&str, &str)],
    query: &[(&str, &str)],
    body: Option<Value>,
) -> Value {
    let op = operations::find(resource, action).unwrap();
    let query: Vec<(String, String)> = query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    client.execute(op, path, &query, body.as_ref()).await.unwrap_or_else(|e| panic!("{resource} {action}: {e}"))
}

/// Issues and revokes a certificate; the revocation notice to the unconfigured Email channel is
/// dead at once. Returns that notification's id.
async fn dead_notification(client: &Client) -> String {
    let team = call(client, "teams", "create", &[], &[], Some(json!({"name": "mcp"}))).await;
    let owner = call(
        client,
        "owners",
        "create",
        &[],
        &[],
        Some(json!({"name": "o", "email": "o@example.com", "team_id": team["id"]})),
    )
    .await;
    let issuer =
        call(client, "issuers", "create", &[], &[], Some(json!({"name": "ca", "type": "GenericCA", "config": {}})))
            .await;
    let cert = call(
        client,
        "certs",
        "create",
        &[],
        &[],
        Some(json!({
        "name": "mcp", "common_name": "mcp.example.com", "owner_id": owner["id"], "team_id": team["id"],
        "issuer_id": issuer["id"], "renewal_policy_id": "rp-default"})),
    )
    .await;
    let id = cert["id"].as_str().unwrap().to_owned();
    let renewal = call(client, "certs", "renew", &[("id", &id)], &[], None).await;
    let job_id = renewal["job_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = call(client, "jobs", "get", &[("id", &job_id)], &[], None).await;
        if job["status"].as_str().unwrap().eq_ignore_ascii_case("completed") {
            break;
        }
        assert!(Instant::now() < deadline, "renewal did not complete: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    call(client, "certs", "revoke", &[("id", &id)], &[], Some(json!({"reason": "superseded"}))).await;
    loop {
        let dead =
            call(client, "notifications", "list", &[], &[("status", "dead"), ("certificate_id", &id)], None).await;
        if let Some(n) = dead["data"].as_array().and_then(|d| d.first()) {
            return n["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no dead notification: {dead}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn python_has_mcp() -> Result<(), String> {
    match Command::new("python3").args(["-c", "import mcp"]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("python3 cannot import mcp: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Err(format!("python3 is not runnable: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_mcp_client_drives_the_server() {
    if let Err(why) = python_has_mcp() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why} (CI installs it: pip install mcp)");
        }
        eprintln!("skipping the Python MCP client test: {why}");
        return;
    }
    let server = start();
    let client = client(&server).await;
    let dead = dead_notification(&client).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(BIN)
        .arg(operations::all().len().to_string())
        .arg(&dead)
        .env("CERTCTL_SERVER_URL", &server.url)
        .env("CERTCTL_API_KEY", &server.key)
        .env("CERTCTL_SERVER_CA_BUNDLE", &server.ca)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python MCP client failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python mcp client: ok"));
}
