//! The `certctl` binary run as a subprocess against a real `certctl-server` (started in process on
//! a free port, HTTPS with its bootstrap CA, SQLite in a temporary data directory).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use certctl_client::operations;

const BIN: &str = env!("CARGO_BIN_EXE_certctl");

/// The server every test talks to; it lives until the test process ends.
struct Server {
    url: String,
    key: String,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

static SERVER: LazyLock<Server> = LazyLock::new(start);

fn start() -> Server {
    let dir = tempfile::Builder::new().prefix("certctl-cli-").tempdir().unwrap();
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
    let server = Server { url: format!("https://127.0.0.1:{port}"), key, ca: dir.path().join("tls/ca.pem"), _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if server.ca.exists() && run(&server, &["status", "-o", "json"]).status.success() {
            return server;
        }
        assert!(Instant::now() < deadline, "certctl-server did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run(server: &Server, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CERTCTL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CERTCTL_SERVER_URL", &server.url)
        .env("CERTCTL_API_KEY", &server.key)
        .env("CERTCTL_SERVER_CA_BUNDLE", &server.ca)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `certctl`, expecting exit code `code`.
#[track_caller]
fn certctl_code(code: i32, args: &[&str]) -> Output {
    let out = run(&SERVER, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "certctl {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `certctl … -o json` successfully and parses its output.
#[track_caller]
fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = certctl_code(0, &all);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(args: &[&str]) -> String {
    String::from_utf8(certctl_code(0, args).stdout).unwrap()
}

/// A team, an owner and a local-CA issuer, named after `tag`.
fn deps(tag: &str) -> (String, String, String) {
    let team = json(&["teams", "create", "--name", &format!("team {tag}")]);
    let team = team["id"].as_str().unwrap().to_owned();
    let owner =
        json(&["owners", "create", "--name", tag, "--email", &format!("{tag}@example.com"), "--team-id", &team]);
    let issuer = json(&[
        "issuers",
        "create",
        "--name",
        &format!("ca {tag}"),
        "--type",
        "GenericCA",
        "--config",
        r#"{"validity_days": 30}"#,
    ]);
    (team, owner["id"].as_str().unwrap().to_owned(), issuer["id"].as_str().unwrap().to_owned())
}

fn create_cert(tag: &str, n: usize) -> Value {
    let (team, owner, issuer) = deps(tag);
    let mut last = Value::Null;
    for i in 0..n {
        last = json(&[
            "certs",
            "create",
            "--name",
            &format!("{tag}-{i}"),
            "--common-name",
            &format!("{tag}-{i}.example.com"),
            "--sans",
            &format!("{tag}-{i}.example.com,www.{tag}-{i}.example.com"),
            "--owner-id",
            &owner,
            "--team-id",
            &team,
            "--issuer-id",
            &issuer,
            "--renewal-policy-id",
            "rp-default",
        ]);
    }
    last
}

#[test]
fn status_and_version() {
    let s = json(&["status"]);
    assert_eq!(s["health"], "healthy", "{s}");
    assert_eq!(s["role"], "admin", "{s}");
    assert!(text(&["version"]).starts_with("certctl "));
}

#[test]
fn create_then_list_as_table_json_and_yaml() {
    let cert = create_cert("lst", 1);
    assert_eq!(cert["common_name"], "lst-0.example.com");
    assert_eq!(cert["sans"][1], "www.lst-0.example.com");
    let owner = cert["owner_id"].as_str().unwrap();
    let id = cert["id"].as_str().unwrap();

    let list = json(&["certs", "list", "--owner", owner]);
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["data"][0]["id"], id);

    let table = text(&["certs", "list", "--owner-id", owner, "-o", "table"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("COMMON_NAME") && header.contains("STATUS"), "{table}");
    assert!(table.contains(id) && table.contains("1 of 1"), "{table}");

    let yaml = text(&["certs", "get", id, "-o", "yaml"]);
    assert!(yaml.contains(&format!("id: {id}")) && yaml.contains("common_name: lst-0.example.com"), "{yaml}");

    // JSON is the default when stdout is not a terminal.
    let piped: Value = serde_json::from_slice(&certctl_code(0, &["certs", "get", id]).stdout).unwrap();
    assert_eq!(piped["id"], id);

    let sorted = json(&["certs", "list", "--owner", owner, "--sort", "-name"]);
    assert_eq!(sorted["data"][0]["id"], id, "{sorted}");
    let soon = json(&["certs", "list", "--owner", owner, "--expires-before", "30d"]);
    assert!(soon["data"].is_array(), "{soon}");
}

#[test]
fn limit_walks_cursor_pages() {
    let cert = create_cert("pg", 5);
    let owner = cert["owner_id"].as_str().unwrap();
    let all = json(&["certs", "list", "--owner", owner, "--limit", "10"]);
    assert_eq!(all["data"].as_array().unwrap().len(), 5, "{all}");
    let some = json(&["certs", "list", "--owner", owner, "--limit", "3"]);
    assert_eq!(some["data"].as_array().unwrap().len(), 3);
    // Pages of two: three requests, each following the previous page's cursor.
    let walked = json(&["certs", "list", "--owner", owner, "--page-size", "2", "--limit", "5"]);
    let ids: Vec<&str> = walked["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 5, "{walked}");
}

#[test]
fn api_errors_exit_1_and_usage_errors_exit_2() {
    let out = certctl_code(1, &["certs", "get", "mc-does-not-exist"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404") && err.contains("not_found") && err.contains("[request "), "{err}");

    let out = certctl_code(2, &["certs", "list", "--no-such-flag"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    let out = certctl_code(2, &["certs", "list", "--page", "many"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--page"));
    let out = certctl_code(2, &["certs", "list", "--expires-before", "soon"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expires-before"));

    let mut cmd = Command::new(BIN);
    cmd.env_remove("CERTCTL_API_KEY").env("CERTCTL_SERVER_URL", &SERVER.url).args(["teams", "list"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CERTCTL_API_KEY"));
}

#[test]
fn renew_waits_for_the_job_then_revoke_leaves_a_dead_notification() {
    let cert = create_cert("rn", 1);
    let id = cert["id"].as_str().unwrap();
    let job = json(&["certs", "renew", id, "--wait", "--wait-timeout", "60s"]);
    assert!(job["job_id"].is_string(), "{job}");
    let done = json(&["jobs", "get", job["job_id"].as_str().unwrap()]);
    assert!(done["status"].as_str().unwrap().eq_ignore_ascii_case("completed"), "{done}");
    let revoked = json(&["certs", "revoke", id, "--reason", "superseded"]);
    assert_eq!(revoked["status"], "revoked", "{revoked}");

    // The revocation notice goes to the Email channel, which this server does not configure:
    // the notification is dead at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let list = json(&["notifications", "list", "--status", "dead", "--certificate-id", id]);
        if list["total"].as_i64().unwrap_or(0) > 0 {
            break list;
        }
        assert!(Instant::now() < deadline, "no dead notification for {id}: {list}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let n = &dead["data"][0];
    assert!(n["last_error"].as_str().unwrap().contains("not configured"), "{n}");
    let table = text(&["notifications", "list", "--status", "dead", "--certificate-id", id, "-o", "table"]);
    let header = table.lines().next().unwrap();
    for col in ["ID", "CERTIFICATE", "CHANNEL", "RETRY", "LAST ERROR"] {
        assert!(header.contains(col), "{table}");
    }
    let row = table.lines().nth(1).unwrap();
    assert!(row.contains(id) && row.contains("Email") && row.contains("/5"), "{table}");

    let nid = n["id"].as_str().unwrap();
    let requeued = json(&["notifications", "requeue", nid]);
    assert_eq!(requeued["status"], "requeued", "{requeued}");
}

#[test]
fn import_reads_pem_files() {
    let (team, owner, issuer) = deps("imp");
    let dir = tempfile::tempdir().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["imported.example.com".to_owned(), "alt.example.com".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "imported.example.com");
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    std::fs::write(dir.path().join("site.pem"), pem).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a certificate").unwrap();
    let path = dir.path().display().to_string();
    let out = json(&["import", &path, "--owner-id", &owner, "--team-id", &team, "--issuer-id", &issuer]);
    assert_eq!(out["created"].as_array().unwrap().len(), 1, "{out}");
    let cert = json(&["certs", "get", out["created"][0]["id"].as_str().unwrap()]);
    assert_eq!(cert["common_name"], "imported.example.com");
    assert_eq!(cert["sans"], serde_json::json!(["imported.example.com", "alt.example.com"]));
    assert_eq!(cert["environment"], "imported");
}

#[test]
fn every_operation_has_a_subcommand_with_its_parameters() {
    for op in operations::all() {
        let out = certctl_code(0, &[op.resource.as_str(), op.action.as_str(), "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        for p in op.query_params() {
            assert!(help.contains(&format!("--{}", p.name.replace('_', "-"))), "{} lacks --{}", op.id, p.name);
        }
        for p in op.path_params() {
            assert!(help.contains(&p.name.to_uppercase()), "{} lacks <{}>", op.id, p.name);
        }
    }
}

#[test]
fn completions_are_generated() {
    let out = certctl_code(0, &["completions", "bash"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("certctl"));
}

#[test]
fn wait_exits_3_when_the_job_is_cancelled() {
    // Agent-side keys: the job waits for a CSR that never comes, until it is cancelled.
    let (team, owner, issuer) = deps("cx");
    let profile = json(&["profiles", "create", "--name", "agent keys", "--key-mode", "agent"]);
    let cert = json(&[
        "certs",
        "create",
        "--name",
        "cx",
        "--common-name",
        "cx.example.com",
        "--owner-id",
        &owner,
        "--team-id",
        &team,
        "--issuer-id",
        &issuer,
        "--renewal-policy-id",
        "rp-default",
        "--certificate-profile-id",
        profile["id"].as_str().unwrap(),
    ]);
    let id = cert["id"].as_str().unwrap();
    let waiting = Command::new(BIN)
        .env("CERTCTL_SERVER_URL", &SERVER.url)
        .env("CERTCTL_API_KEY", &SERVER.key)
        .env("CERTCTL_SERVER_CA_BUNDLE", &SERVER.ca)
        .args(["certs", "renew", id, "--wait", "--wait-timeout", "60s", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let jobs = json(&["jobs", "list", "--certificate-id", id]);
        if let Some(j) = jobs["data"].as_array().and_then(|d| d.first()) {
            break j["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no job for {id}");
        std::thread::sleep(Duration::from_millis(100));
    };
    json(&["jobs", "cancel", &job]);
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let last: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(last["status"].as_str().unwrap().eq_ignore_ascii_case("cancelled"), "{last}");
}
