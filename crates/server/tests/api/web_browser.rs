//! The dashboard in a real browser: headless Chromium (Debian `chromium`) driven by
//! playwright-core from `crates/server/tests/browser/dashboard.test.mjs` with `node --test`,
//! against a running server seeded with demo data. Without node, Chromium or the npm package
//! the test skips with the reason, except in CI, where it fails.
//!
//! `CERTCTL_UPDATE_SCREENSHOTS=1` writes the screenshots to `docs/screenshots/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::live::{LiveServer, free_port};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Whether everything the browser test needs is here; when not, skips (prints why) or, in CI,
/// fails.
fn browser_available() -> bool {
    let why = if std::process::Command::new("node").arg("--version").output().is_err() {
        "node is not installed".to_owned()
    } else if !Path::new(&chromium()).exists() {
        format!("{} does not exist (Debian package chromium)", chromium())
    } else if !browser_dir().join("node_modules/playwright-core").exists() {
        format!("run `npm ci --prefix {}` first", browser_dir().display())
    } else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the browser test needs its tools in CI: {why}");
    }
    eprintln!("skipping the browser test: {why}");
    false
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A webhook receiver that answers 500 until told to hang, then holds every request open, so
/// a requeued notification stays in flight (neither sent nor dead) while the browser looks.
async fn webhook_receiver(hang: Arc<AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let hang = hang.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = conn.read(&mut buf).await;
                if hang.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                } else {
                    let _ =
                        conn.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nboom").await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_flows_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let hang = Arc::new(AtomicBool::new(false));
    let hook = webhook_receiver(hang.clone()).await;
    let server = LiveServer::start(&[
        ("allow_loopback_targets", "true".into()),
        ("notification_max_attempts", "1".into()),
        ("pki_http_listen", format!("127.0.0.1:{}", free_port())),
    ])
    .await;

    // Demo data: an organisation, an issuer, issued certificates, and dead-letter notifications.
    let team = server.created("/api/v1/teams", json!({"name": "Platform"})).await;
    let owner =
        server.created("/api/v1/owners", json!({"name": "alice", "email": "alice@example.com", "team_id": team})).await;
    let issuer = server
        .created("/api/v1/issuers", json!({"name": "Local CA", "type": "GenericCA", "config": {"validity_days": 30}}))
        .await;
    let policy = server.created("/api/v1/renewal-policies", json!({"name": "default 30d"})).await;
    let profile = server.created("/api/v1/profiles", json!({"name": "server-keys", "key_mode": "server"})).await;
    for name in ["shop", "api", "intranet"] {
        let id = server
            .created(
                "/api/v1/certificates",
                json!({"name": name, "common_name": format!("{name}.example.com"), "owner_id": owner,
                       "team_id": team, "issuer_id": issuer, "renewal_policy_id": policy,
                       "certificate_profile_id": profile}),
            )
            .await;
        let (status, body) =
            server.call(reqwest::Method::POST, &format!("/api/v1/certificates/{id}/renew"), Some(json!({}))).await;
        assert_eq!(status, 202, "{body}");
    }
    let channel = server
        .created(
            "/api/v1/notification-channels",
            json!({"name": "ops-hook", "type": "Webhook", "config": {"url": format!("http://127.0.0.1:{hook}/hook")}}),
        )
        .await;
    for _ in 0..3 {
        let (status, body) =
            server.call(reqwest::Method::POST, &format!("/api/v1/notification-channels/{channel}/test"), None).await;
        assert_eq!(status, 202, "{body}");
    }
    // With one attempt allowed, each failed delivery goes straight to the dead-letter queue.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, dead) = server.call(reqwest::Method::GET, "/api/v1/notifications?status=dead", None).await;
        if dead["total"].as_i64() == Some(3) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "notifications did not reach the dead-letter queue: {dead}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    hang.store(true, Ordering::SeqCst);

    let shots = if std::env::var("CERTCTL_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        server.dir.path().join("screenshots")
    };
    std::fs::create_dir_all(&shots).unwrap();
    let deps = json!({"team": team, "owner": owner, "issuer": issuer, "policy": policy});
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("node")
            .args(["--test", "--test-reporter=spec", "dashboard.test.mjs"])
            .current_dir(browser_dir())
            .env("CERTCTL_URL", &server.url)
            .env("CERTCTL_KEY", &server.key)
            .env("CERTCTL_DEPS", deps.to_string())
            .env("CERTCTL_SHOTS", &shots)
            .env("CHROMIUM", chromium())
            .env("NODE_EXTRA_CA_CERTS", &server.ca)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser test finishes within 3 minutes")
    .expect("node runs");
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser flows failed:\n{report}");
    for shot in ["dashboard.png", "certificates.png", "notifications.png"] {
        let bytes = std::fs::read(shots.join(shot)).unwrap_or_default();
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is a PNG screenshot");
    }
}
