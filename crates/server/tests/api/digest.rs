//! The certificate digest over the API on SQLite and PostgreSQL: the preview in HTML, text and
//! JSON, bad parameters, 503 `not_configured` without an email channel, and a send that goes
//! through the outbox to a real SMTP server.

use axum::http::Method;
use serde_json::json;

use certctl_api::CertificateStatus;
use certctl_server::notify::worker;
use certctl_store::testing::TestDb;
use certctl_store::{Backend, ClaimKind, ImportedCertificate};

use crate::email_peer::{SMTP_PASSWORD, SMTP_USER, SmtpSink, available};
use crate::harness::T0;
use crate::notifications_peer::{NotifyApp, Reply};

fn created(r: Reply) -> String {
    assert_eq!(r.status, 201, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

/// Three certificates in the default 30-day window (one expired) and one beyond it.
async fn inventory(app: &NotifyApp) {
    let team = created(app.call(Method::POST, "/api/v1/teams", Some(json!({ "name": "web" }))).await);
    let owner = json!({ "name": "alice", "email": "alice@example.com", "team_id": team });
    let owner = created(app.call(Method::POST, "/api/v1/owners", Some(owner)).await);
    let issuer = json!({ "name": "ca", "type": "GenericCA", "config": { "validity_days": 90 } });
    let issuer = created(app.call(Method::POST, "/api/v1/issuers", Some(issuer)).await);
    let policy = created(app.call(Method::POST, "/api/v1/renewal-policies", Some(json!({ "name": "p" }))).await);
    let cert = |name: &str, status: CertificateStatus, days: i64| ImportedCertificate {
        id: format!("mc-{name}"),
        name: name.to_owned(),
        common_name: format!("{name}.example.com"),
        sans: vec![],
        environment: "prod".into(),
        owner_id: owner.clone(),
        team_id: team.clone(),
        issuer_id: issuer.clone(),
        renewal_policy_id: policy.clone(),
        certificate_profile_id: None,
        status,
        expires_at: Some(T0 + time::Duration::days(days) + time::Duration::hours(1)),
        tags: Default::default(),
        source: "Import".into(),
        created_at: T0,
    };
    let certs = [
        cert("api", CertificateStatus::Expiring, 3),
        cert("<shop>", CertificateStatus::Active, 20),
        cert("old", CertificateStatus::Expired, -2),
        cert("far", CertificateStatus::Active, 200),
    ];
    app.state.store.import_certificates(&certs, &certctl_store::Actor::system(), T0).await.unwrap();
}

async fn preview_and_503(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let app = NotifyApp::on(&db, &[]).await;
    inventory(&app).await;

    let r = app.call(Method::GET, "/api/v1/digest/preview?format=json", None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let s = &r.json["summary"];
    assert_eq!((s["window_days"].as_i64(), s["expiring_total"].as_i64()), (Some(30), Some(3)), "{s}");
    assert_eq!(s["total_certificates"], 4);
    let names: Vec<&str> = s["certificates"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["old", "api", "<shop>"]);
    assert!(s["by_status"].as_array().unwrap().contains(&json!({ "status": "Active", "count": 1 })), "{s}");
    assert!(r.json["subject"].as_str().unwrap().contains("3 expiring within 30 days"), "{}", r.json);
    assert_eq!(r.json["recipients"], json!([]));
    let r = app.call(Method::GET, "/api/v1/digest/preview?format=json&days=7", None).await;
    assert_eq!(r.json["summary"]["expiring_total"], 2);

    let html = raw(&app, "/api/v1/digest/preview").await;
    assert_eq!(html.0, "text/html; charset=utf-8");
    assert!(html.1.contains("<table") && html.1.contains("&lt;shop&gt;") && !html.1.contains("<shop>"), "{}", html.1);
    let text = raw(&app, "/api/v1/digest/preview?format=text").await;
    assert_eq!(text.0, "text/plain; charset=utf-8");
    assert!(text.1.contains("api (api.example.com) Expiring"), "{}", text.1);
    assert!(!text.1.contains("far.example.com"));

    for (query, field) in [("format=pdf", "format"), ("days=0", "days"), ("days=x", "days")] {
        let r = app.call(Method::GET, &format!("/api/v1/digest/preview?{query}"), None).await;
        assert_eq!(r.status, 400, "{query}: {}", r.json);
        assert!(r.json["message"].as_str().unwrap().starts_with(&format!("{field}:")), "{}", r.json);
    }

    let r = app.call(Method::POST, "/api/v1/digest/send", None).await;
    assert_eq!(r.status, 503, "{}", r.json);
    assert_eq!(r.json["error"], "not_configured");
    assert!(r.json["message"].as_str().unwrap().contains("CERTCTL_SMTP_HOST"), "{}", r.json);
    let r = app.call(Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(r.json["total"], 0, "nothing was enqueued");
    db.cleanup().await;
}

/// The content type and body of a non-JSON answer.
async fn raw(app: &NotifyApp, path: &str) -> (String, String) {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;
    let req = Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", app.admin))
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (ct, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn digest_preview_and_not_configured_sqlite() {
    preview_and_503(Backend::Sqlite).await;
}

#[tokio::test]
async fn digest_preview_and_not_configured_postgres() {
    preview_and_503(Backend::Postgres).await;
}

async fn send_reaches_every_email_channel(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let sink = available().then(|| SmtpSink::start("starttls"));
    let app = NotifyApp::on(&db, &[]).await;
    inventory(&app).await;
    let (host, port, ca) = match &sink {
        Some(s) => ("localhost".to_owned(), s.port, s.ca_path.display().to_string()),
        None => ("smtp.invalid".to_owned(), 587, String::new()),
    };
    let mut config = json!({ "host": host, "port": port, "tls": "starttls", "username": SMTP_USER,
        "password": SMTP_PASSWORD, "from": "certctl@example.com", "to": ["ops@example.com", "sec@example.com"] });
    if !ca.is_empty() {
        config["ca_path"] = json!(ca);
    }
    let body = json!({ "name": "ops-mail", "type": "Email", "config": config });
    created(app.call(Method::POST, "/api/v1/notification-channels", Some(body)).await);
    // Channels of other types get no digest.
    let hook = json!({ "name": "hook", "type": "Webhook", "config": { "url": "http://127.0.0.1:9/x" } });
    created(app.call(Method::POST, "/api/v1/notification-channels", Some(hook)).await);

    let r = app.call(Method::POST, "/api/v1/digest/send", None).await;
    assert_eq!(r.status, 202, "{}", r.json);
    assert_eq!(r.json, json!({ "enqueued": 1, "recipients": ["ops@example.com", "sec@example.com"] }));
    let r = app.call(Method::GET, "/api/v1/notifications?type=Digest", None).await;
    assert_eq!(r.json["total"], 1, "{}", r.json);
    assert_eq!(r.json["data"][0]["channel"], "ops-mail");

    // The scheduled run enqueues once per channel per interval, however often it runs.
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(certctl_server::notify::digest::scheduled(&app.state, day).await, 1);
    assert_eq!(certctl_server::notify::digest::scheduled(&app.state, day).await, 0);
    app.advance(86_400);
    assert_eq!(certctl_server::notify::digest::scheduled(&app.state, day).await, 1);
    let r = app.call(Method::GET, "/api/v1/notifications?type=Digest", None).await;
    assert_eq!(r.json["total"], 3, "{}", r.json);

    if let Some(sink) = sink {
        worker::deliver(&app.state, ClaimKind::Pending).await;
        let r = app.call(Method::GET, "/api/v1/notifications?type=Digest", None).await;
        assert!(r.json["data"].as_array().unwrap().iter().all(|n| n["status"] == "sent"), "{}", r.json);
        let mail = sink.wait_for(3).await;
        assert_eq!(mail.len(), 3);
        assert_eq!(mail[0]["rcpt_tos"], json!(["ops@example.com", "sec@example.com"]));
        let data = mail[0]["data"].as_str().unwrap();
        assert!(data.contains("Subject: certctl certificate digest"), "{data}");
        assert!(data.contains("Content-Type: text/plain") && data.contains("Content-Type: text/html"), "{data}");
    }
    db.cleanup().await;
}

#[tokio::test]
async fn digest_send_sqlite() {
    send_reaches_every_email_channel(Backend::Sqlite).await;
}

#[tokio::test]
async fn digest_send_postgres() {
    send_reaches_every_email_channel(Backend::Postgres).await;
}

#[tokio::test]
async fn digest_send_needs_an_operator() {
    let app = crate::harness::TestApp::new().await;
    app.post_json("/api/v1/digest/send", &app.viewer, &json!({})).await.expect(403, Some("forbidden"));
    app.post_json("/api/v1/digest/send", &app.operator, &json!({})).await.expect(503, Some("not_configured"));
    app.get("/api/v1/digest/preview?format=json", &app.viewer).await.expect(200, None);
    app.finish().await;
}
