//! Real ACME clients against a real certctl-server over TLS: certbot and lego register, issue,
//! renew and revoke, on SQLite and (certbot) on PostgreSQL; every certificate chains to the
//! issuing CA (`openssl verify`) and shows in the inventory. A missing client skips the test
//! with a reason, except in CI, where it fails. The challenge types with a DNS server of their
//! own are in `acme_peers_challenges.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use certctl_store::Backend;
use certctl_store::testing::TestDb;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::live::LiveServer;

/// A certctl-server on a free port with its own data directory.
pub struct Server {
    pub url: String,
    pub key: String,
    /// The bootstrap CA that signed the server's TLS certificate.
    pub ca: PathBuf,
    pub dir: TempDir,
    pub http: reqwest::Client,
    /// The PostgreSQL database, dropped with the server; `None` on SQLite.
    _db: Option<TestDb>,
}

/// Where a test server keeps its data and how it validates challenges.
pub struct Setup {
    pub backend: Backend,
    /// The port http-01 validation dials.
    pub http01_port: u16,
    /// The port tls-alpn-01 validation dials.
    pub tlsalpn01_port: u16,
    /// The DNS server validation asks (`CERTCTL_ACME_DNS_RESOLVER`); the system's when `None`.
    pub dns_resolver: Option<SocketAddr>,
}

impl Setup {
    pub fn new(http01_port: u16) -> Setup {
        Setup { backend: Backend::Sqlite, http01_port, tlsalpn01_port: free_port(), dns_resolver: None }
    }
}

pub use crate::live::free_port;

/// Whether `binary` runs; when not, skips (prints why) or, in CI, fails.
pub fn peer(binary: &str) -> bool {
    // How each peer prints its version; uacme and ualpn print it and exit non-zero, so for
    // them starting at all is the proof.
    let (arg, any_status) = match binary {
        "openssl" => ("version", false),
        "pebble-challtestsrv" => ("-h", false),
        "uacme" | "ualpn" => ("-V", true),
        _ => ("--version", false),
    };
    let why = match std::process::Command::new(binary).arg(arg).output() {
        Ok(o) if o.status.success() || any_status => return true,
        Ok(o) => format!("`{binary} {arg}` exited with {}", o.status),
        Err(e) => format!("`{binary}` cannot be run: {e}"),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the ACME peer tests need {binary} in CI: {why}");
    }
    eprintln!("skipping an ACME peer test: {why}");
    false
}

impl Server {
    /// Starts a server on SQLite; http-01 validation dials `http01_port` on loopback.
    pub async fn start(http01_port: u16) -> Server {
        Server::launch(Setup::new(http01_port)).await.expect("SQLite is always available")
    }

    /// Starts a server whose default ACME profile is `acme-default` (trust_authenticated) and
    /// binds it, plus `acme-challenge` (challenge mode), to a fresh local-CA issuer. `None`
    /// when the backend is not available to tests (PostgreSQL unconfigured outside CI).
    pub async fn launch(setup: Setup) -> Option<Server> {
        let db = match setup.backend {
            Backend::Postgres => Some(TestDb::postgres().await?),
            Backend::Sqlite => None,
        };
        let mut settings = vec![
            ("acme_default_profile_id", "acme-default".to_owned()),
            ("acme_http01_port", setup.http01_port.to_string()),
            ("acme_tlsalpn01_port", setup.tlsalpn01_port.to_string()),
            ("allow_loopback_targets", "true".to_owned()),
            // Certificates then name a plain-HTTP OCSP responder that openssl can ask.
            ("pki_http_listen", format!("127.0.0.1:{}", free_port())),
        ];
        if let Some(resolver) = setup.dns_resolver {
            settings.push(("acme_dns_resolver", resolver.to_string()));
        }
        if let Some(db) = &db {
            settings.push(("database_url", db.url().to_owned()));
            settings.push(("database_max_connections", "4".to_owned()));
        }
        let LiveServer { url, key, ca, dir, http } = LiveServer::start(&settings).await;
        let server = Server { url, key, ca, dir, http, _db: db };
        server.bind_profiles().await;
        Some(server)
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn created(&self, path: &str, body: Value) -> String {
        let (status, json) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {json}");
        json["id"].as_str().unwrap().to_owned()
    }

    async fn bind_profiles(&self) {
        let team = self.created("/api/v1/teams", json!({"name": "acme peers"})).await;
        let owner =
            self.created("/api/v1/owners", json!({"name": "peer", "email": "peer@example.com", "team_id": team})).await;
        let issuer = self
            .created(
                "/api/v1/issuers",
                json!({"name": "acme peers CA", "type": "GenericCA", "config": {"validity_days": 30}}),
            )
            .await;
        for (id, mode) in [("acme-default", "trust_authenticated"), ("acme-challenge", "challenge")] {
            self.created("/api/v1/profiles", json!({"id": id, "name": id, "acme_auth_mode": mode})).await;
            let body = json!({"issuer_id": issuer, "owner_id": owner, "team_id": team});
            let (status, json) =
                self.call(reqwest::Method::PUT, &format!("/api/v1/acme/profiles/{id}"), Some(body)).await;
            assert_eq!(status, 200, "{json}");
        }
    }

    /// Managed certificates issued over ACME.
    pub async fn acme_certificates(&self) -> Vec<Value> {
        let (status, json) =
            self.call(reqwest::Method::GET, "/api/v1/certificates?source=ACME&per_page=100", None).await;
        assert_eq!(status, 200, "{json}");
        json["data"].as_array().unwrap().clone()
    }
}

/// Runs a peer by argv (never a shell) with a timeout; the child dies with the test. Output
/// goes through files so a peer that hangs still shows what it was doing.
pub async fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .kill_on_drop(true)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{program} cannot start: {e}"));
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait()).await;
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    match status {
        Ok(status) => Output { status: status.unwrap(), stdout: read(&out_path), stderr: read(&err_path) },
        Err(_) => panic!(
            "{program} {args:?} timed out:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&read(&out_path)),
            String::from_utf8_lossy(&read(&err_path))
        ),
    }
}

#[track_caller]
pub fn succeeded(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl verify` of a leaf against the chain the server returned, and the leaf's SANs.
#[track_caller]
pub fn verify_chain(leaf: &Path, chain: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(chain)
        .arg(leaf)
        .output()
        .expect("openssl runs");
    succeeded("openssl verify", &out);
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(leaf)
        .output()
        .expect("openssl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_issues_renews_and_revokes() {
    certbot_flow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_issues_renews_and_revokes_on_postgres() {
    certbot_flow(Backend::Postgres).await;
}

async fn certbot_flow(backend: Backend) {
    if !peer("certbot") || !peer("openssl") {
        return;
    }
    let Some(server) = Server::launch(Setup { backend, ..Setup::new(free_port()) }).await else { return };
    let work = server.dir.path().join("certbot");
    let (config, workdir, logs) = (work.join("config"), work.join("work"), work.join("logs"));
    let dirs = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for (flag, p) in [("--config-dir", &config), ("--work-dir", &workdir), ("--logs-dir", &logs)] {
            v.push(flag.into());
            v.push(p.display().to_string());
        }
        v.push("--non-interactive".into());
        v
    };
    let directory = format!("{}/acme/directory", server.url);
    let port = free_port().to_string();
    let env = [("REQUESTS_CA_BUNDLE", server.ca.as_path())];
    let args = dirs(&[
        "certonly",
        "--server",
        &directory,
        "--standalone",
        "--http-01-port",
        &port,
        "-d",
        "certbot.example.test",
        "-d",
        "www.certbot.example.test",
        "--agree-tos",
        "--register-unsafely-without-email",
    ]);
    let out = run("certbot", &args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    succeeded("certbot certonly", &out);
    let live = config.join("live/certbot.example.test");
    let sans = verify_chain(&live.join("cert.pem"), &live.join("chain.pem"));
    assert!(sans.contains("DNS:certbot.example.test") && sans.contains("DNS:www.certbot.example.test"), "{sans}");
    assert_eq!(server.acme_certificates().await.len(), 1);

    let args = dirs(&["renew", "--force-renewal", "--no-random-sleep-on-renew"]);
    let out = run("certbot", &args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    succeeded("certbot renew", &out);
    verify_chain(&live.join("cert.pem"), &live.join("chain.pem"));
    let certs = server.acme_certificates().await;
    assert_eq!(certs.len(), 2, "the renewal is a second ACME certificate");

    let cert_path = live.join("cert.pem").display().to_string();
    let args = dirs(&[
        "revoke",
        "--server",
        &directory,
        "--cert-path",
        &cert_path,
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    ]);
    let out = run("certbot", &args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    succeeded("certbot revoke", &out);
    let certs = server.acme_certificates().await;
    let revoked: Vec<&Value> = certs.iter().filter(|c| c["status"] == "Revoked").collect();
    assert_eq!(revoked.len(), 1, "{certs:?}");
    assert_eq!(revoked[0]["revocation_reason"], "keyCompromise");
    let status = ocsp_status(&live.join("cert.pem"), &live.join("chain.pem")).await;
    assert!(status.contains(": revoked") && status.contains("Reason: keyCompromise"), "{status}");
}

/// The certificate's serial number, as `openssl x509 -serial` prints it.
#[track_caller]
pub fn serial(leaf: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(leaf)
        .output()
        .expect("openssl runs");
    succeeded("openssl x509 -serial", &out);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the certificate's own OCSP responder (its AIA URL) says of it, verified by openssl;
/// asked a few times because pre-signed answers refresh within a second of a revocation.
pub async fn ocsp_status(leaf: &Path, issuer: &Path) -> String {
    let openssl =
        |args: &[&std::ffi::OsStr]| std::process::Command::new("openssl").args(args).output().expect("openssl runs");
    let uri = openssl(&["x509".as_ref(), "-noout".as_ref(), "-ocsp_uri".as_ref(), "-in".as_ref(), leaf.as_os_str()]);
    let uri = String::from_utf8_lossy(&uri.stdout).trim().to_owned();
    assert!(uri.starts_with("http://"), "the certificate names an OCSP responder: {uri:?}");
    let mut text = String::new();
    for _ in 0..20 {
        let out = openssl(&[
            "ocsp".as_ref(),
            "-issuer".as_ref(),
            issuer.as_os_str(),
            "-cert".as_ref(),
            leaf.as_os_str(),
            "-url".as_ref(),
            uri.as_ref(),
            "-CAfile".as_ref(),
            issuer.as_os_str(),
        ]);
        text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if text.contains(": revoked") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(text.contains("Response verify OK"), "{text}");
    text
}

async fn lego(key_type: &str) {
    if !peer("lego") || !peer("openssl") {
        return;
    }
    let server = Server::start(free_port()).await;
    let path = server.dir.path().join(format!("lego-{key_type}"));
    let path_s = path.display().to_string();
    let directory = format!("{}/acme/directory", server.url);
    let port = format!("127.0.0.1:{}", free_port());
    let env = [("LEGO_CA_CERTIFICATES", server.ca.as_path())];
    let domain = format!("lego-{key_type}.example.test");
    let base = [
        "--server",
        directory.as_str(),
        "--accept-tos",
        "--email",
        "ops@example.com",
        "--domains",
        domain.as_str(),
        "--path",
        path_s.as_str(),
        "--key-type",
        key_type,
        "--http",
        "--http.port",
        port.as_str(),
    ];
    let out = run("lego", &[&base[..], &["run"]].concat(), &env).await;
    succeeded("lego run", &out);
    let certs = path.join("certificates");
    let leaf = certs.join(format!("{domain}.crt"));
    let issuer = certs.join(format!("{domain}.issuer.crt"));
    let sans = verify_chain(&leaf, &issuer);
    assert!(sans.contains(&format!("DNS:{domain}")), "{sans}");
    // lego makes its account key of the same type: ES384 accounts for ec384.
    let account_key = std::fs::read_to_string(
        path.join("accounts")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("ops@example.com/keys/ops@example.com.key"),
    )
    .unwrap();
    assert!(account_key.contains("EC PRIVATE KEY"), "{account_key}");

    let out = run("lego", &[&base[..], &["renew", "--days", "3650", "--no-random-sleep"]].concat(), &env).await;
    succeeded("lego renew", &out);
    verify_chain(&leaf, &issuer);
    assert_eq!(server.acme_certificates().await.len(), 2);

    let out = run("lego", &[&base[..], &["revoke"]].concat(), &env).await;
    succeeded("lego revoke", &out);
    let certs = server.acme_certificates().await;
    assert_eq!(certs.iter().filter(|c| c["status"] == "Revoked").count(), 1, "{certs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_ec256_issues_renews_and_revokes() {
    lego("ec256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_ec384_issues_renews_and_revokes() {
    lego("ec384").await;
}

/// Challenge mode: lego answers http-01 on loopback for `localhost` (an internal CA issues for
/// single-label names), which the validator dials because the test server allows loopback
/// targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_http01_challenge() {
    if !peer("lego") || !peer("openssl") {
        return;
    }
    let http01 = free_port();
    let server = Server::start(http01).await;
    let path = server.dir.path().join("lego-http01");
    let path_s = path.display().to_string();
    let directory = format!("{}/acme/profile/acme-challenge/directory", server.url);
    let listen = format!("127.0.0.1:{http01}");
    let env = [("LEGO_CA_CERTIFICATES", server.ca.as_path())];
    let args = [
        "--server",
        directory.as_str(),
        "--accept-tos",
        "--email",
        "ops@example.com",
        "--domains",
        "localhost",
        "--path",
        path_s.as_str(),
        "--http",
        "--http.port",
        listen.as_str(),
        "run",
    ];
    let out = run("lego", &args, &env).await;
    succeeded("lego run (http-01)", &out);
    let certs = path.join("certificates");
    let sans = verify_chain(&certs.join("localhost.crt"), &certs.join("localhost.issuer.crt"));
    assert!(sans.contains("DNS:localhost"), "{sans}");
    let certs = server.acme_certificates().await;
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["certificate_profile_id"], "acme-challenge");
}

/// Challenge mode with certbot's standalone http-01 responder for `localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_standalone_http01_challenge() {
    if !peer("certbot") || !peer("openssl") {
        return;
    }
    let http01 = free_port();
    let server = Server::start(http01).await;
    let work = server.dir.path().join("certbot-http01");
    let directory = format!("{}/acme/profile/acme-challenge/directory", server.url);
    let port = http01.to_string();
    let (config, workdir, logs) = (work.join("config"), work.join("work"), work.join("logs"));
    let (config_s, work_s, logs_s) =
        (config.display().to_string(), workdir.display().to_string(), logs.display().to_string());
    let args = [
        "certonly",
        "--server",
        &directory,
        "--standalone",
        "--http-01-port",
        &port,
        "--http-01-address",
        "127.0.0.1",
        "-d",
        "localhost",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--non-interactive",
        "--config-dir",
        &config_s,
        "--work-dir",
        &work_s,
        "--logs-dir",
        &logs_s,
    ];
    let out = run("certbot", &args, &[("REQUESTS_CA_BUNDLE", server.ca.as_path())]).await;
    succeeded("certbot certonly (http-01)", &out);
    let live = config.join("live/localhost");
    let sans = verify_chain(&live.join("cert.pem"), &live.join("chain.pem"));
    assert!(sans.contains("DNS:localhost"), "{sans}");
    assert_eq!(server.acme_certificates().await.len(), 1);
}

/// External account binding with lego: a profile that requires it refuses lego without a key
/// and registers it with `--eab --kid --hmac`; the key then names the account it bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_external_account_binding() {
    if !peer("lego") || !peer("openssl") {
        return;
    }
    let server = Server::start(free_port()).await;
    let (status, list) = server.call(reqwest::Method::GET, "/api/v1/acme/profiles", None).await;
    assert_eq!(status, 200, "{list}");
    let b = list.as_array().unwrap().iter().find(|b| b["profile_id"] == "acme-default").unwrap().clone();
    let body = json!({"issuer_id": b["issuer_id"], "owner_id": b["owner_id"], "team_id": b["team_id"],
        "external_account_required": true});
    let (status, json) = server.call(reqwest::Method::PUT, "/api/v1/acme/profiles/acme-default", Some(body)).await;
    assert_eq!(status, 200, "{json}");
    let (status, key) =
        server.call(reqwest::Method::POST, "/api/v1/acme/eab-keys", Some(json!({"note": "lego"}))).await;
    assert_eq!(status, 201, "{key}");
    let (kid, hmac) = (key["kid"].as_str().unwrap(), key["hmac_key"].as_str().unwrap());

    let path = server.dir.path().join("lego-eab");
    let path_s = path.display().to_string();
    let directory = format!("{}/acme/directory", server.url);
    let port = format!("127.0.0.1:{}", free_port());
    let env = [("LEGO_CA_CERTIFICATES", server.ca.as_path())];
    let domain = "lego-eab.example.test";
    let base = [
        "--server",
        directory.as_str(),
        "--accept-tos",
        "--email",
        "ops@example.com",
        "--domains",
        domain,
        "--path",
        path_s.as_str(),
        "--http",
        "--http.port",
        port.as_str(),
    ];
    let out = run("lego", &[&base[..], &["run"]].concat(), &env).await;
    assert!(!out.status.success(), "lego registered without an EAB key");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // lego reads meta.externalAccountRequired from the directory and stops before registering.
    assert!(said.to_ascii_lowercase().contains("external account binding"), "{said}");

    let out = run("lego", &[&base[..], &["--eab", "--kid", kid, "--hmac", hmac, "run"]].concat(), &env).await;
    succeeded("lego run --eab", &out);
    let certs = path.join("certificates");
    verify_chain(&certs.join(format!("{domain}.crt")), &certs.join(format!("{domain}.issuer.crt")));
    let (status, key) = server.call(reqwest::Method::GET, &format!("/api/v1/acme/eab-keys/{kid}"), None).await;
    assert_eq!(status, 200, "{key}");
    assert!(key["account_id"].as_str().is_some_and(|a| a.starts_with("acct-")), "{key}");
}
