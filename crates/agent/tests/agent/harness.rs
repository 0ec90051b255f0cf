//! The shared certctl-server, a blocking API client over it, the agent run as a subprocess
//! (killed on drop, its stderr kept for failure messages), and the bounded waits the tests use.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const AGENT_BIN: &str = env!("CARGO_BIN_EXE_certctl-agent");

/// How long any one wait on the server or the agent may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// The server every test talks to; it lives until the test process ends.
pub struct Server {
    pub url: String,
    pub key: String,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

pub static SERVER: LazyLock<Server> = LazyLock::new(start);

/// One runtime for the blocking API calls of every test thread.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime")
});

static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    let pem = std::fs::read(&SERVER.ca).expect("the server's CA is readable");
    let certs = reqwest::Certificate::from_pem_bundle(&pem).expect("the server's CA parses");
    reqwest::Client::builder().tls_certs_only(certs).timeout(Duration::from_secs(20)).build().expect("an HTTP client")
});

fn start() -> Server {
    let dir = tempfile::Builder::new().prefix("certctl-agent-server-").tempdir().expect("a temp dir");
    let port = free_port();
    let key = certctl_server::auth::generate_key();
    let mut raw = certctl_server::config::RawSettings::default();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("database_url", format!("sqlite://{}/certctl.db", dir.path().display()));
    raw.set("listen", format!("127.0.0.1:{port}"));
    raw.set("bootstrap_api_key", key.clone());
    raw.set("keygen_mode", "agent");
    raw.set("job_process_interval", "1s");
    raw.set("log", "warn");
    let config = raw.into_config().expect("a valid server configuration");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        if let Err(e) = rt.block_on(certctl_server::run(config)) {
            eprintln!("certctl-server stopped: {e:#}");
        }
    });
    let server = Server { url: format!("https://127.0.0.1:{port}"), key, ca: dir.path().join("tls/ca.pem"), _dir: dir };
    let deadline = Instant::now() + WAIT;
    while !server.ca.exists() {
        assert!(Instant::now() < deadline, "certctl-server did not write its CA");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// A port free on the loopback interface at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("an address").port()
}

/// One API answer: status and body.
pub struct Reply {
    pub status: u16,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// Calls the API with the admin key. Transport errors while the server is starting are retried.
pub fn call(method: reqwest::Method, path: &str, body: Option<&Value>) -> Reply {
    let url = format!("{}{path}", SERVER.url);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut req = HTTP.request(method.clone(), &url).bearer_auth(&SERVER.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let sent = RUNTIME.block_on(async move {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>(Reply { status, text: resp.text().await? })
        });
        match sent {
            Ok(r) => return r,
            Err(e) if e.is_connect() && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
}

/// Calls the API, which must answer `status`; returns the JSON body.
#[track_caller]
pub fn expect(status: u16, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
    let r = call(method.clone(), path, body);
    assert_eq!(r.status, status, "{method} {path} {body:?}: {}", r.text);
    r.json()
}

#[track_caller]
pub fn get(path: &str) -> Value {
    expect(200, reqwest::Method::GET, path, None)
}

#[track_caller]
pub fn post(status: u16, path: &str, body: Value) -> Value {
    expect(status, reqwest::Method::POST, path, Some(&body))
}

/// A team, an owner, a local-CA issuer and a one-time enrolment token, named after `tag`.
pub struct Fixture {
    pub tag: String,
    pub team: String,
    pub owner: String,
    pub issuer: String,
}

impl Fixture {
    pub fn new(tag: &str) -> Fixture {
        let team = post(201, "/api/v1/teams", json!({"name": format!("team {tag}")}));
        let team = team["id"].as_str().expect("a team id").to_owned();
        let owner = post(
            201,
            "/api/v1/owners",
            json!({"name": format!("owner {tag}"), "email": format!("{tag}@example.com"), "team_id": team}),
        );
        let issuer = post(
            201,
            "/api/v1/issuers",
            json!({"name": format!("ca {tag}"), "type": "GenericCA", "config": {"validity_days": 30}}),
        );
        Fixture {
            tag: tag.to_owned(),
            team,
            owner: owner["id"].as_str().expect("an owner id").to_owned(),
            issuer: issuer["id"].as_str().expect("an issuer id").to_owned(),
        }
    }

    /// A fresh one-time enrolment token.
    pub fn token(&self) -> String {
        let t = post(201, "/api/v1/agent-tokens", json!({"name": self.tag, "expires_in": "1h"}));
        t["token"].as_str().expect("a token").to_owned()
    }

    /// A target of `agent_id`; returns its ID.
    pub fn target(&self, name: &str, target_type: &str, agent_id: &str, config: Value) -> String {
        let body = json!({"name": name, "type": target_type, "agent_id": agent_id, "config": config});
        post(201, "/api/v1/targets", body)["id"].as_str().expect("a target id").to_owned()
    }

    /// A certificate for `cn` under this fixture's CA, mapped to `targets`; returns its ID.
    pub fn certificate(&self, name: &str, cn: &str, targets: &[&str]) -> String {
        let body = json!({"name": name, "common_name": cn, "sans": [cn], "owner_id": self.owner,
                          "team_id": self.team, "issuer_id": self.issuer, "renewal_policy_id": "rp-default",
                          "target_ids": targets});
        post(201, "/api/v1/certificates", body)["id"].as_str().expect("a certificate id").to_owned()
    }

    /// The fixture's CA chain, PEM.
    pub fn ca_pem(&self) -> String {
        let r = call(reqwest::Method::GET, &format!("/api/v1/issuers/{}/ca", self.issuer), None);
        assert_eq!(r.status, 200, "issuer CA: {}", r.text);
        r.text
    }
}

/// The agent, run as a subprocess; killed on drop.
pub struct Agent {
    pub name: String,
    pub state: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Agent {
    /// Starts the agent named `name` with `token` and a fresh state dir; `env` adds or overrides
    /// variables.
    pub fn start(name: &str, token: &str, env: &[(&str, &str)]) -> Agent {
        let dir = tempfile::Builder::new().prefix("certctl-agent-").tempdir().expect("a temp dir");
        let state = dir.path().join("state");
        let mut agent = Agent { name: name.to_owned(), state, child: None, log: PathBuf::new(), dir };
        agent.spawn(token, env);
        agent
    }

    /// Starts the agent process (again) on the same state dir, with a new stderr log.
    pub fn spawn(&mut self, token: &str, env: &[(&str, &str)]) {
        self.stop_now();
        let n = std::fs::read_dir(self.dir.path()).map(|d| d.count()).unwrap_or(0);
        self.log = self.dir.path().join(format!("stderr-{n}.log"));
        let stderr = File::create(&self.log).expect("the agent's log file");
        let mut cmd = Command::new(AGENT_BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("CERTCTL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("CERTCTL_SERVER_URL", &SERVER.url)
            .env("CERTCTL_SERVER_CA_BUNDLE", &SERVER.ca)
            .env("CERTCTL_AGENT_TOKEN", token)
            .env("CERTCTL_AGENT_NAME", &self.name)
            .env("CERTCTL_AGENT_STATE_DIR", &self.state)
            .env("CERTCTL_POLL_INTERVAL", "300ms")
            .env("CERTCTL_HEARTBEAT_INTERVAL", "1s")
            .env("CERTCTL_LOG_LEVEL", "debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().expect("certctl-agent starts");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running agent").id()
    }

    /// What the current agent process wrote to stderr so far (its last 6,000 characters).
    pub fn stderr(&self) -> String {
        let all = std::fs::read_to_string(&self.log).unwrap_or_default();
        let cut = all.char_indices().rev().nth(6000).map_or(0, |(i, _)| i);
        all[cut..].to_owned()
    }

    /// The whole stderr of the current agent process.
    pub fn full_stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for the agent process to exit by itself.
    #[track_caller]
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("a running agent");
        loop {
            if let Some(status) = child.try_wait().expect("the agent's status") {
                return status;
            }
            if Instant::now() > deadline {
                panic!("certctl-agent {} did not exit within {within:?}; stderr:\n{}", self.name, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the agent process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The enrolled agent's ID, waiting (bounded) for its enrolment to show in the API.
    #[track_caller]
    pub fn wait_enrolled(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let agents = get("/api/v1/agents?per_page=500");
            if let Some(a) = agents["data"].as_array().into_iter().flatten().find(|a| a["name"] == self.name.as_str()) {
                return a["id"].as_str().expect("an agent id").to_owned();
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("certctl-agent {} exited with {status} before enrolling; stderr:\n{}", self.name, self.stderr());
            }
            assert!(Instant::now() < deadline, "certctl-agent {} did not enrol; stderr:\n{}", self.name, self.stderr());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (bounded) for job `id` to end; returns the job.
    #[track_caller]
    pub fn wait_job(&self, id: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let job = get(&format!("/api/v1/jobs/{id}"));
            if matches!(job["status"].as_str(), Some("Completed" | "Failed" | "Cancelled")) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not finish within {WAIT:?}: {job}\ncertctl-agent {} stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for job `id`, which must end `status`.
    #[track_caller]
    pub fn job_ends(&self, id: &str, status: &str) -> Value {
        let job = self.wait_job(id);
        assert_eq!(job["status"], status, "job {id}: {job}\ncertctl-agent {} stderr:\n{}", self.name, self.stderr());
        job
    }

    /// Renews `cert` (the agent makes the key and sends the CSR) and waits for the issuance and
    /// for the one deployment it fans out to the mapped target; returns the deployment job.
    #[track_caller]
    pub fn renew_and_deploy(&self, cert: &str) -> Value {
        let before = deployment_jobs(cert);
        let accepted = post(202, &format!("/api/v1/certificates/{cert}/renew"), json!({}));
        let issuance = accepted["job_id"].as_str().expect("a renewal job id").to_owned();
        self.job_ends(&issuance, "Completed");
        let deadline = Instant::now() + WAIT;
        let id = loop {
            if let Some(new) = deployment_jobs(cert).into_iter().find(|j| !before.contains(j)) {
                break new;
            }
            assert!(
                Instant::now() < deadline,
                "no deployment job followed the issuance of {cert}\ncertctl-agent {} stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        self.wait_job(&id)
    }

    /// Queues a deployment of `cert`'s current version to its targets and waits for the one job.
    #[track_caller]
    pub fn deploy(&self, cert: &str) -> Value {
        let r = post(202, &format!("/api/v1/certificates/{cert}/deploy"), json!({}));
        let jobs = r["jobs"].as_array().expect("the queued jobs");
        assert_eq!(jobs.len(), 1, "{r}");
        self.wait_job(jobs[0]["id"].as_str().expect("a job id"))
    }

    /// Sends SIGTERM to the agent process.
    pub fn terminate(&self) {
        signal("-TERM", self.pid());
    }

    fn stop_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The IDs of `cert`'s deployment jobs.
pub fn deployment_jobs(cert: &str) -> Vec<String> {
    let jobs = get(&format!("/api/v1/jobs?certificate_id={cert}&type=Deployment&per_page=500"));
    jobs["data"].as_array().into_iter().flatten().filter_map(|j| j["id"].as_str().map(str::to_owned)).collect()
}

/// The newest version of `cert`.
pub fn current_version(cert: &str) -> Value {
    let v = get(&format!("/api/v1/certificates/{cert}/versions?per_page=1"));
    v["data"][0].clone()
}

/// Sends `sig` (as `kill` spells it) to `pid` through /bin/kill, by argv.
pub fn signal(sig: &str, pid: u32) {
    let _ = Command::new("/bin/kill").args([sig, &pid.to_string()]).status();
}

/// The permission bits of `path`.
#[track_caller]
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// The DER of the first certificate in a PEM text.
#[track_caller]
pub fn first_cert_der(pem: &str) -> Vec<u8> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM certificate");
    p.contents
}

/// Whether a required peer binary is missing: prints the reason and returns true (skip)
/// locally; panics in CI (`CI=true`), where a peer test never silently stops running.
pub fn missing_peer(program: &str, version_arg: &str) -> bool {
    let why = match Command::new(program).arg(version_arg).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => return false,
        Ok(s) => format!("`{program} {version_arg}` exited with {s}"),
        Err(e) => format!("`{program}` cannot be run: {e}"),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the agent's peer tests need {program} in CI: {why}");
    }
    eprintln!("skipping a {program} peer test: {why}");
    true
}
