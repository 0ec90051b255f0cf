//! `/api/v1/metrics`, `/api/v1/metrics/prometheus` and `/metrics`: the figures of a known
//! inventory, the process counters, who may scrape, and `promtool check metrics` on a real
//! scrape.

use std::time::Duration as StdDuration;

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::json;
use time::Duration;
use tower::ServiceExt;

use certctl_server::config::RawSettings;
use certctl_store::Backend;

use crate::harness::{NO_KEY, T0, TestApp};
use crate::stats::seed;

/// The value of the sample line `series` (name with labels) in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[track_caller]
fn assert_sample(text: &str, series: &str, value: f64) {
    assert_eq!(sample(text, series), Some(value), "{series} in:\n{text}");
}

/// Runs `promtool check metrics` on `text`; `None` when promtool is missing outside CI.
fn promtool(text: &str) -> Option<(bool, String)> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
                panic!("promtool is required on CI (apt-get install prometheus): {e}");
            }
            eprintln!("skipping promtool check: promtool not runnable ({e}); apt-get install -y prometheus");
            return None;
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), said))
}

async fn metrics_figures(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let seeded = seed(&app).await;
    app.clock.advance(Duration::seconds(90));

    let r = app.get("/api/v1/metrics", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(
        r.json,
        json!({
            "gauge": {
                "certificate_total": 6, "certificate_active": 2, "certificate_expiring_soon": 1,
                "certificate_expired": 2, "certificate_revoked": 1, "agent_total": 2, "agent_online": 1,
                "job_pending": 3,
            },
            "counter": {"job_completed_total": 2, "job_failed_total": 1, "notifications_dead_total": 2},
            "uptime": {"uptime_seconds": 90, "server_started": "2026-03-01T10:00:00Z", "measured_at": "2026-03-01T10:01:30Z"},
        })
    );

    // Process counters, recorded the way the notification worker, issuance, deployment, OCSP
    // and ACME code call them.
    let m = &app.state.metrics;
    m.notification_sent("Email");
    m.notification_sent("Email");
    m.notification_sent("Webhook");
    m.notification_failed("Slack");
    m.notification_dead_lettered("Slack");
    m.expiry_alert(30, "success");
    m.expiry_alert(7, "failure");
    m.issuance("GenericCA", "success", StdDuration::from_millis(20));
    m.issuance("ACME", "failure", StdDuration::from_secs(3));
    m.deployment("success");
    m.ocsp_request("good");
    m.ocsp_request("good");
    m.acme_request("new_order", "success");
    app.get(&format!("/api/v1/certificates/{}", seeded.certs[0]), &app.viewer).await.expect(200, None);
    app.get("/api/v1/certificates/does-not-exist", &app.viewer).await.expect(404, None);
    app.get("/no/such/path", &app.viewer).await.expect(404, None);

    let r = app.get("/api/v1/metrics/prometheus", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for (series, value) in [
        ("certctl_certificate_total", 6.0),
        ("certctl_certificate_active", 2.0),
        ("certctl_certificate_expiring_soon", 1.0),
        ("certctl_certificate_expired", 2.0),
        ("certctl_certificate_revoked", 1.0),
        ("certctl_agent_total", 2.0),
        ("certctl_agent_online", 1.0),
        ("certctl_job_pending", 3.0),
        ("certctl_job_completed_total", 2.0),
        ("certctl_job_failed_total", 1.0),
        ("certctl_notification_dead_total", 2.0),
        ("certctl_certificates", 6.0),
        ("certctl_agents", 2.0),
        ("certctl_jobs{status=\"Completed\"}", 2.0),
        ("certctl_jobs{status=\"Running\"}", 1.0),
        ("certctl_jobs{status=\"Cancelled\"}", 0.0),
        ("certctl_notifications{status=\"dead\"}", 2.0),
        ("certctl_notifications{status=\"pending\"}", 3.0),
        ("certctl_notifications{status=\"read\"}", 0.0),
        ("certctl_notifications_sent_total{channel_type=\"Email\"}", 2.0),
        ("certctl_notifications_sent_total{channel_type=\"Webhook\"}", 1.0),
        ("certctl_notifications_failed_total{channel_type=\"Slack\"}", 1.0),
        ("certctl_notifications_dead_lettered_total{channel_type=\"Slack\"}", 1.0),
        ("certctl_expiry_alerts_total{threshold_days=\"30\",result=\"success\"}", 1.0),
        ("certctl_expiry_alerts_total{threshold_days=\"7\",result=\"failure\"}", 1.0),
        ("certctl_issuance_total{issuer_type=\"GenericCA\",outcome=\"success\"}", 1.0),
        ("certctl_issuance_total{issuer_type=\"ACME\",outcome=\"failure\"}", 1.0),
        ("certctl_issuance_duration_seconds_count{issuer_type=\"GenericCA\"}", 1.0),
        ("certctl_issuance_duration_seconds_bucket{issuer_type=\"GenericCA\",le=\"0.01\"}", 0.0),
        ("certctl_issuance_duration_seconds_bucket{issuer_type=\"GenericCA\",le=\"0.025\"}", 1.0),
        ("certctl_issuance_duration_seconds_bucket{issuer_type=\"ACME\",le=\"2.5\"}", 0.0),
        ("certctl_issuance_duration_seconds_bucket{issuer_type=\"ACME\",le=\"5\"}", 1.0),
        ("certctl_issuance_duration_seconds_sum{issuer_type=\"ACME\"}", 3.0),
        ("certctl_deployments_total{outcome=\"success\"}", 1.0),
        ("certctl_ocsp_requests_total{outcome=\"good\"}", 2.0),
        ("certctl_acme_requests_total{endpoint=\"new_order\",outcome=\"success\"}", 1.0),
        ("certctl_http_requests_total{method=\"GET\",route=\"/api/v1/certificates/{id}\",status=\"200\"}", 1.0),
        ("certctl_http_requests_total{method=\"GET\",route=\"/api/v1/certificates/{id}\",status=\"404\"}", 1.0),
        ("certctl_http_requests_total{method=\"GET\",route=\"/api/v1/metrics\",status=\"200\"}", 1.0),
        ("certctl_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}", 1.0),
    ] {
        assert_sample(&text, series, value);
    }
    assert!(sample(&text, "certctl_uptime_seconds").is_some(), "{text}");
    assert!(!text.contains(&seeded.certs[0]) && !text.contains("does-not-exist"), "raw paths never become labels");
    assert!(text.contains("# TYPE certctl_certificate_total counter\n"), "{text}");
    assert!(text.contains("# TYPE certctl_certificate_active gauge\n"), "{text}");
    assert!(text.contains("# TYPE certctl_issuance_duration_seconds histogram\n"), "{text}");
    if let Some((ok, said)) = promtool(&text) {
        assert!(ok && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
    }

    // /metrics is the same exposition; OpenMetrics on request.
    let r = app.get("/metrics", &app.viewer).await;
    r.expect(200, None);
    assert_sample(std::str::from_utf8(&r.body).unwrap(), "certctl_certificate_total", 6.0);
    let req = TestApp::request(axum::http::Method::GET, "/metrics", &app.viewer)
        .header(header::ACCEPT, "application/openmetrics-text; version=1.0.0")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(std::str::from_utf8(&r.body).unwrap().ends_with("# EOF\n"));

    // The database snapshot is reused within its TTL, then recomputed.
    app.store.insert_test_notifications("dead", 1, T0).await.unwrap();
    let r = app.get("/api/v1/metrics", &app.viewer).await;
    assert_eq!(r.json["counter"]["notifications_dead_total"], 2, "cached snapshot");
    app.state.metrics.set_snapshot_ttl(StdDuration::ZERO);
    let r = app.get("/api/v1/metrics", &app.viewer).await;
    assert_eq!(r.json["counter"]["notifications_dead_total"], 3, "fresh snapshot");
    let r = app.get("/metrics", &app.viewer).await;
    assert_sample(std::str::from_utf8(&r.body).unwrap(), "certctl_notification_dead_total", 3.0);

    // Any valid key may scrape; no key or a bad key may not.
    for path in ["/api/v1/metrics", "/api/v1/metrics/prometheus", "/metrics"] {
        app.get(path, NO_KEY).await.expect(401, Some("unauthorized"));
        app.get(path, "cck_not-a-key").await.expect(401, Some("unauthorized"));
        for key in [&app.viewer, &app.operator, &app.admin] {
            app.get(path, key).await.expect(200, None);
        }
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_the_inventory_and_counters_sqlite() {
    metrics_figures(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_the_inventory_and_counters_postgres() {
    metrics_figures(Backend::Postgres).await;
}

#[tokio::test]
async fn public_metrics_need_no_key_and_a_bad_setting_is_named() {
    let app = TestApp::new().await;
    let mut config = (*app.state.config).clone();
    config.metrics_public = true;
    let state = app.state.with_config(config);
    let router = certctl_server::router(state);
    for path in ["/api/v1/metrics", "/api/v1/metrics/prometheus", "/metrics"] {
        let r = router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(r.status(), 200, "{path} is open when CERTCTL_METRICS_PUBLIC=true");
    }
    let r = router.clone().oneshot(Request::get("/api/v1/stats/summary").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), 401, "only the metrics are public");
    app.finish().await;

    let mut raw = RawSettings::default();
    raw.set("metrics_public", "maybe");
    let err = raw.into_config().unwrap_err().to_string();
    assert!(err.contains("CERTCTL_METRICS_PUBLIC"), "{err}");
}
