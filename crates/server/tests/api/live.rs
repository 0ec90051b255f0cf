//! A real certctl-server for tests that drive it with outside programs (a browser, a CLI): the
//! library's `run` on a runtime thread of its own, listening on a free loopback port over TLS,
//! with a fresh data directory and a SQLite database there unless the settings name another.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

pub struct LiveServer {
    pub url: String,
    /// The bootstrap admin key.
    pub key: String,
    /// The bootstrap CA that signed the server's TLS certificate.
    pub ca: PathBuf,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl LiveServer {
    /// Starts a server with `settings` (names as in the configuration file) on top of the
    /// defaults, and waits until it answers `/health`.
    pub async fn start(settings: &[(&str, String)]) -> LiveServer {
        let dir = tempfile::Builder::new().prefix("certctl-live-").tempdir().unwrap();
        let port = free_port();
        let key = certctl_server::auth::generate_key();
        let mut raw = certctl_server::config::RawSettings::default();
        raw.set("data_dir", dir.path().display().to_string());
        raw.set("database_url", format!("sqlite://{}/certctl.db", dir.path().display()));
        raw.set("listen", format!("127.0.0.1:{port}"));
        raw.set("bootstrap_api_key", key.clone());
        raw.set("log", "warn");
        for (name, value) in settings {
            raw.set(name, value.clone());
        }
        let config = raw.into_config().unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            if let Err(e) = rt.block_on(certctl_server::run(config)) {
                eprintln!("certctl-server stopped: {e:#}");
            }
        });
        let ca = dir.path().join("tls/ca.pem");
        let url = format!("https://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let http = loop {
            if let Ok(pem) = std::fs::read(&ca) {
                let cert = reqwest::Certificate::from_pem(&pem).unwrap();
                let http = reqwest::Client::builder().add_root_certificate(cert).build().unwrap();
                if http.get(format!("{url}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
                    break http;
                }
            }
            assert!(std::time::Instant::now() < deadline, "certctl-server did not come up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        LiveServer { url, key, ca, dir, http }
    }

    /// Calls the REST API with the admin key; returns the status and the JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body` and returns the created resource's `id`; panics unless it is a 201.
    pub async fn created(&self, path: &str, body: Value) -> String {
        let (status, json) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {json}");
        json["id"].as_str().unwrap().to_owned()
    }
}
