//! The real `certctl-server` binary: start, serve HTTPS, stop on SIGTERM with exit status 0,
//! start again on the same data directory with nothing lost; then `audit verify`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_certctl-server");

/// A running server, killed if a test ends without stopping it.
struct Server {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// The binary with a clean configuration: only what the test sets.
fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CERTCTL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CERTCTL_DATA_DIR", data_dir).env("CERTCTL_LOG", "warn");
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    fn start(data_dir: &Path, run: u32) -> Server {
        let port = free_port();
        let log = data_dir.join(format!("server-{run}.log"));
        let out = File::create(&log).unwrap();
        let child = command(data_dir)
            .env("CERTCTL_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Server { child: Some(child), port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/health` answers over HTTPS, trusting only the bootstrap CA.
    async fn client(&mut self, data_dir: &Path) -> reqwest::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("certctl-server exited early ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "certctl-server did not become healthy:\n{}", self.log());
            if let Ok(pem) = std::fs::read(data_dir.join("tls/ca.pem")) {
                let ca = reqwest::Certificate::from_pem(&pem).unwrap();
                let client =
                    reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(5)).build().unwrap();
                if let Ok(r) = client.get(self.url("/health")).send().await
                    && r.status() == 200
                {
                    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "healthy"}));
                    return client;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to end.
    async fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                panic!("certctl-server ignored SIGTERM:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn audit_verify(data_dir: &Path) -> (bool, String) {
    let out = command(data_dir).args(["audit", "verify"]).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restarts_without_losing_data() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::Builder::new().prefix("certctl-proc-").tempdir().unwrap();
    let data = dir.path();

    let mut first = Server::start(data, 1);
    let client = first.client(data).await;
    let key = std::fs::read_to_string(data.join("admin-api-key")).unwrap().trim().to_owned();
    assert!(first.log().contains("Generated admin API key"), "{}", first.log());
    let (status, team) =
        call(&client, reqwest::Method::POST, first.url("/api/v1/teams"), &key, Some(json!({"name": "Survivor"}))).await;
    assert_eq!(status, 201, "{team}");
    let team_id = team["id"].as_str().unwrap().to_owned();
    let status = first.stop().await;
    assert!(status.success(), "SIGTERM must end the server with status 0, got {status}:\n{}", first.log());

    let mut second = Server::start(data, 2);
    let client = second.client(data).await;
    assert!(!second.log().contains("Generated admin API key"), "a second start must not make another key");
    assert_eq!(std::fs::read_to_string(data.join("admin-api-key")).unwrap().trim(), key);
    let (status, check) = call(&client, reqwest::Method::GET, second.url("/api/v1/auth/check"), &key, None).await;
    assert_eq!((status, &check["role"]), (200, &json!("admin")), "{check}");
    let (status, got) =
        call(&client, reqwest::Method::GET, second.url(&format!("/api/v1/teams/{team_id}")), &key, None).await;
    assert_eq!((status, &got), (200, &team));
    // The queued API-call record of the first run was written before it stopped.
    let (_, audit) = call(
        &client,
        reqwest::Method::GET,
        second.url("/api/v1/audit?action=api_post&resource_id=/api/v1/teams"),
        &key,
        None,
    )
    .await;
    assert_eq!(audit["total"], 1, "{audit}");
    assert_eq!(audit["data"][0]["details"]["status"], 201);
    let status = second.stop().await;
    assert!(status.success(), "{status}:\n{}", second.log());

    let (ok, out) = audit_verify(data);
    assert!(ok && out.contains("intact"), "audit verify: {out}");

    // An altered record makes `audit verify` fail and name it.
    let url = format!("sqlite://{}", data.join("certctl.db").display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut db, "DROP TRIGGER audit_events_no_update").await.unwrap();
    sqlx::Executor::execute(&mut db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2").await.unwrap();
    sqlx::Connection::close(db).await.unwrap();
    let (ok, out) = audit_verify(data);
    assert!(!ok && out.contains("BROKEN at record 2"), "audit verify: {out}");
}
