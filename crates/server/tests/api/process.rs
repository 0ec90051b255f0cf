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
        Server::start_with(data_dir, run, &[])
    }

    fn start_with(data_dir: &Path, run: u32, env: &[(&str, String)]) -> Server {
        let port = free_port();
        let log = data_dir.join(format!("server-{run}.log"));
        let out = File::create(&log).unwrap();
        let child = command(data_dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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

/// Runs `openssl` with `args`; `None` (after saying why) when it is not installed outside CI.
fn openssl(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("openssl").args(args).output() {
        Ok(out) => Some(out),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("openssl is required in CI: {e}"),
        Err(e) => {
            eprintln!("skipping: openssl is not available ({e})");
            None
        }
    }
}

/// The binary end to end: its scheduler issues a server-key certificate, and its plain-HTTP
/// PKI listener answers `openssl ocsp` and serves a CRL that `openssl verify -crl_check` uses,
/// before and after a revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_issues_and_answers_ocsp_and_crl_over_plain_http() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if openssl(&["version"]).is_none() {
        return;
    }
    let dir = tempfile::Builder::new().prefix("certctl-pki-").tempdir().unwrap();
    let data = dir.path();
    let pki_port = free_port();
    let mut server = Server::start_with(
        data,
        1,
        &[("CERTCTL_PKI_HTTP_LISTEN", format!("127.0.0.1:{pki_port}")), ("CERTCTL_KEYGEN_MODE", "server".into())],
    );
    let client = server.client(data).await;
    let key = std::fs::read_to_string(data.join("admin-api-key")).unwrap().trim().to_owned();
    let post = |path: &str, body: Value| call(&client, reqwest::Method::POST, server.url(path), &key, Some(body));
    let (_, team) = post("/api/v1/teams", json!({"name": "pki"})).await;
    let (_, owner) =
        post("/api/v1/owners", json!({"name": "ops", "email": "ops@example.com", "team_id": team["id"]})).await;
    let (status, issuer) = post("/api/v1/issuers", json!({"name": "local", "type": "GenericCA", "config": {}})).await;
    assert_eq!(status, 201, "{issuer}");
    let issuer_id = issuer["id"].as_str().unwrap().to_owned();
    let (status, cert) = post(
        "/api/v1/certificates",
        json!({"name": "web", "common_name": "www.example.com", "sans": ["www.example.com"], "owner_id": owner["id"],
               "team_id": team["id"], "issuer_id": issuer_id, "renewal_policy_id": "rp-default"}),
    )
    .await;
    assert_eq!(status, 201, "{cert}");
    let cert_id = cert["id"].as_str().unwrap().to_owned();
    let (status, renewal) = post(&format!("/api/v1/certificates/{cert_id}/renew"), json!({})).await;
    assert_eq!(status, 202, "{renewal}");

    // The binary's own job processor completes the issuance.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, got) =
            call(&client, reqwest::Method::GET, server.url(&format!("/api/v1/certificates/{cert_id}")), &key, None)
                .await;
        if got["status"] == "Active" {
            break;
        }
        assert!(Instant::now() < deadline, "certificate never became Active: {got}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, pem) = call(
        &client,
        reqwest::Method::GET,
        server.url(&format!("/api/v1/certificates/{cert_id}/export/pem")),
        &key,
        None,
    )
    .await;
    let ca_pem = client
        .get(server.url(&format!("/api/v1/issuers/{issuer_id}/ca")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let leaf = data.join("leaf.pem");
    let ca = data.join("ca.pem");
    std::fs::write(&leaf, pem["cert_pem"].as_str().unwrap()).unwrap();
    std::fs::write(&ca, &ca_pem).unwrap();
    let (leaf, ca) = (leaf.to_str().unwrap(), ca.to_str().unwrap());
    let ocsp_url = format!("http://127.0.0.1:{pki_port}/.well-known/pki/ocsp/{issuer_id}");
    let ask = || openssl(&["ocsp", "-issuer", ca, "-cert", leaf, "-url", &ocsp_url, "-CAfile", ca]).unwrap();
    let out = ask();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Response verify OK") && text.contains(": good"), "openssl ocsp: {text}");

    let plain = reqwest::Client::new();
    let crl_url = format!("http://127.0.0.1:{pki_port}/.well-known/pki/crl/{issuer_id}");
    let fetch_crl = |name: &'static str| {
        let plain = plain.clone();
        let crl_url = crl_url.clone();
        let path = data.join(name);
        async move {
            let r = plain.get(&crl_url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/pkix-crl");
            std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
            path
        }
    };
    let crl = fetch_crl("before.crl").await;
    let crl_pem = data.join("before.crl.pem");
    let converted =
        openssl(&["crl", "-inform", "DER", "-in", crl.to_str().unwrap(), "-out", crl_pem.to_str().unwrap()]);
    assert!(converted.unwrap().status.success());
    let verify = |crl_pem: &Path| {
        openssl(&["verify", "-crl_check", "-CRLfile", crl_pem.to_str().unwrap(), "-CAfile", ca, leaf]).unwrap()
    };
    assert!(verify(&crl_pem).status.success(), "an unrevoked leaf verifies against the CRL");

    let (status, revoked) =
        post(&format!("/api/v1/certificates/{cert_id}/revoke"), json!({"reason": "keyCompromise"})).await;
    assert_eq!(status, 200, "{revoked}");
    let out = ask();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains(": revoked") && text.contains("Reason: keyCompromise"), "openssl ocsp: {text}");
    let crl = fetch_crl("after.crl").await;
    let crl_pem = data.join("after.crl.pem");
    let converted =
        openssl(&["crl", "-inform", "DER", "-in", crl.to_str().unwrap(), "-out", crl_pem.to_str().unwrap()]);
    assert!(converted.unwrap().status.success());
    let out = verify(&crl_pem);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("certificate revoked"), "openssl verify -crl_check: {text}");
    let status = server.stop().await;
    assert!(status.success(), "{status}:\n{}", server.log());
}
