//! Email channels against a real SMTP server (aiosmtpd) on SQLite and PostgreSQL: STARTTLS and
//! implicit TLS with AUTH, the message's headers and both MIME parts, the password kept secret
//! (redacted on read, kept by a `********` update), a wrong password retried and then
//! recorded, the SSRF guard, settings validation, and the environment-declared `Email` channel
//! that policies route to by default.

use axum::http::Method;
use serde_json::{Value, json};

use certctl_api::{NotificationType, SeverityTier};
use certctl_server::clock::Clock;
use certctl_server::notify::worker;
use certctl_store::testing::TestDb;
use certctl_store::{Backend, ClaimKind, NewNotification};

use crate::email_peer::{SMTP_PASSWORD, SMTP_USER, SmtpSink, available};
use crate::notifications_peer::NotifyApp;

fn channel(sink: &SmtpSink, mode: &str, password: &str) -> Value {
    json!({ "name": "ops-mail", "type": "Email", "config": {
        "host": "localhost", "port": sink.port, "tls": mode, "username": SMTP_USER, "password": password,
        "from": "certctl@example.com", "to": ["ops@example.com", "sec@example.com"],
        "ca_path": sink.ca_path.display().to_string(),
    }})
}

async fn notifications(app: &NotifyApp) -> Vec<Value> {
    let r = app.call(Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["data"].as_array().unwrap().clone()
}

/// Asserts a message the sink received: envelope, headers, both parts, AUTH and TLS.
fn assert_mail(m: &Value, subject_part: &str) {
    assert_eq!(m["mail_from"], "certctl@example.com", "{m}");
    assert_eq!(m["rcpt_tos"], json!(["ops@example.com", "sec@example.com"]), "{m}");
    assert_eq!(m["login"], SMTP_USER, "AUTH was used: {m}");
    assert_eq!(m["tls"], true, "the session was encrypted: {m}");
    let data = m["data"].as_str().unwrap();
    assert!(data.contains("From: certctl@example.com"), "{data}");
    assert!(data.contains("To: ops@example.com, sec@example.com"), "{data}");
    let subject = data.lines().find(|l| l.starts_with("Subject: ")).unwrap_or_default();
    assert!(subject.contains(subject_part), "{subject}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("Content-Type: text/plain"), "{data}");
    assert!(data.contains("Content-Type: text/html"), "{data}");
}

async fn delivers_over(backend: Backend, mode: &str) {
    if !available() {
        return;
    }
    let Some(db) = TestDb::new(backend).await else { return };
    let sink = SmtpSink::start(mode);
    let app = NotifyApp::on(&db, &[]).await;
    let r = app.call(Method::POST, "/api/v1/notification-channels", Some(channel(&sink, mode, SMTP_PASSWORD))).await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["config"]["password"], "********");
    let id = r.json["id"].as_str().unwrap().to_owned();
    for path in [format!("/api/v1/notification-channels/{id}"), "/api/v1/notification-channels".to_owned()] {
        let got = app.call(Method::GET, &path, None).await;
        assert!(!got.json.to_string().contains(SMTP_PASSWORD), "the password never comes back: {}", got.json);
    }

    let r = app.call(Method::POST, &format!("/api/v1/notification-channels/{id}/test"), None).await;
    assert_eq!(r.status, 202, "{}", r.json);
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let n = &notifications(&app).await[0];
    assert_eq!(n["status"], "sent", "{n}");
    let mail = sink.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert_mail(&mail[0], "[certctl] Test");

    // `********` keeps the stored password: the renamed channel still authenticates.
    let mut update = channel(&sink, mode, "********");
    update.as_object_mut().unwrap().remove("type");
    update["name"] = json!("ops-mail-2");
    let r = app.call(Method::PUT, &format!("/api/v1/notification-channels/{id}"), Some(update)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["config"]["password"], "********");
    let r = app.call(Method::POST, &format!("/api/v1/notification-channels/{id}/test"), None).await;
    assert_eq!(r.status, 202);
    worker::deliver(&app.state, ClaimKind::Pending).await;
    assert!(notifications(&app).await.iter().all(|n| n["status"] == "sent"));
    let mail = sink.wait_for(2).await;
    assert_eq!(mail.len(), 2);
    db.cleanup().await;
}

#[tokio::test]
async fn starttls_sqlite() {
    delivers_over(Backend::Sqlite, "starttls").await;
}

#[tokio::test]
async fn starttls_postgres() {
    delivers_over(Backend::Postgres, "starttls").await;
}

#[tokio::test]
async fn implicit_tls_sqlite() {
    delivers_over(Backend::Sqlite, "tls").await;
}

#[tokio::test]
async fn implicit_tls_postgres() {
    delivers_over(Backend::Postgres, "tls").await;
}

async fn wrong_password_is_retried_then_recorded(backend: Backend) {
    if !available() {
        return;
    }
    let Some(db) = TestDb::new(backend).await else { return };
    let sink = SmtpSink::start("starttls");
    let app = NotifyApp::on(&db, &[]).await;
    let r = app.call(Method::POST, "/api/v1/notification-channels", Some(channel(&sink, "starttls", "wrong"))).await;
    assert_eq!(r.status, 201, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    app.call(Method::POST, &format!("/api/v1/notification-channels/{id}/test"), None).await;
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let n = &notifications(&app).await[0];
    assert_eq!((n["status"].as_str(), n["retry_count"].as_i64()), (Some("failed"), Some(1)), "{n}");
    let error = n["last_error"].as_str().unwrap();
    assert!(error.contains("authentication failed") && error.contains("535"), "{error}");
    assert!(!error.contains("wrong"), "the password is not in the error: {error}");
    // base 1 s, cap 4 s, 4 attempts: the sweep retries, and the row ends dead with the error.
    for wait in [1, 2, 4] {
        app.advance(wait);
        assert_eq!(worker::deliver(&app.state, ClaimKind::DueRetries).await, 1);
    }
    let n = &notifications(&app).await[0];
    assert_eq!((n["status"].as_str(), n["retry_count"].as_i64()), (Some("dead"), Some(4)), "{n}");
    assert!(n["last_error"].as_str().unwrap().contains("535"), "{n}");
    assert!(sink.messages().is_empty());
    db.cleanup().await;
}

#[tokio::test]
async fn wrong_password_sqlite() {
    wrong_password_is_retried_then_recorded(Backend::Sqlite).await;
}

#[tokio::test]
async fn wrong_password_postgres() {
    wrong_password_is_retried_then_recorded(Backend::Postgres).await;
}

#[tokio::test]
async fn env_channel_receives_default_routing_and_the_guard_holds() {
    if !available() {
        return;
    }
    let sink = SmtpSink::start("tls");
    let env = |allow: &str| {
        vec![
            ("smtp_host", "localhost".to_owned()),
            ("smtp_port", sink.port.to_string()),
            ("smtp_tls", "implicit".to_owned()),
            ("smtp_username", SMTP_USER.to_owned()),
            ("smtp_password", SMTP_PASSWORD.to_owned()),
            ("smtp_from", "certctl@example.com".to_owned()),
            ("smtp_to", "ops@example.com, sec@example.com".to_owned()),
            ("smtp_ca_path", sink.ca_path.display().to_string()),
            ("allow_loopback_targets", allow.to_owned()),
        ]
    };
    let alert = NewNotification {
        notification_type: NotificationType::ExpirationWarning,
        // Where a policy without alert routing sends every tier.
        channel: certctl_store::DEFAULT_CHANNEL.to_owned(),
        recipient: "alice@example.com".into(),
        certificate_id: None,
        subject: "Certificate web expires in 5 days".into(),
        message: "Certificate web (web.example.com) expires in 5 days.".into(),
        payload: json!({ "certificate_name": "web", "days_left": 5 }),
        severity: SeverityTier::Warning,
        dedup_key: None,
    };
    for (allow, delivered) in [("false", false), ("true", true)] {
        let (app, db) = NotifyApp::sqlite(&env(allow)).await;
        app.state.store.enqueue_notifications(std::slice::from_ref(&alert), app.clock.now()).await.unwrap();
        worker::deliver(&app.state, ClaimKind::Pending).await;
        let n = &notifications(&app).await[0];
        if delivered {
            assert_eq!(n["status"], "sent", "{n}");
            let mail = sink.wait_for(1).await;
            assert_mail(&mail[0], "[certctl] ExpirationWarning: Certificate web expires in 5 days");
            let data = mail[0]["data"].as_str().unwrap();
            assert!(data.contains("days_left"), "details are in the body: {data}");
        } else {
            assert_eq!(n["status"], "failed", "{n}");
            assert!(n["last_error"].as_str().unwrap().contains("loopback"), "{n}");
            assert!(sink.messages().is_empty());
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn bad_email_settings_name_the_field() {
    let (app, db) = NotifyApp::sqlite(&[]).await;
    let ok = json!({ "host": "smtp.example.com", "from": "certctl@example.com", "to": ["ops@example.com"] });
    let cases = [
        ("host", json!(""), "config.host"),
        ("tls", json!("ssl"), "config.tls"),
        ("port", json!(70000), "config.port"),
        ("from", json!("not an address"), "config.from"),
        ("to", json!([]), "config.to"),
        ("ca_path", json!("/nonexistent/ca.pem"), "config.ca_path"),
    ];
    for (key, value, field) in cases {
        let mut config = ok.clone();
        config[key] = value;
        let body = json!({ "name": "m", "type": "Email", "config": config });
        let r = app.call(Method::POST, "/api/v1/notification-channels", Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
        assert!(r.json["message"].as_str().unwrap().starts_with(&format!("{field}:")), "{body}: {}", r.json);
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/notification-channels",
            Some(json!({ "name": "m", "type": "Email", "config": ok })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["config"]["to"], json!(["ops@example.com"]));
    db.cleanup().await;
}

#[tokio::test]
async fn bad_smtp_env_stops_start_up_naming_the_variable() {
    use certctl_server::config::RawSettings;
    use certctl_server::notify::Notifications;
    let cases = [
        (vec![("smtp_host", "smtp.example.com"), ("smtp_from", "a@example.com")], "CERTCTL_SMTP_TO"),
        (vec![("smtp_host", "smtp.example.com"), ("smtp_to", "a@example.com")], "CERTCTL_SMTP_FROM"),
        (
            vec![("smtp_host", "h"), ("smtp_from", "a@example.com"), ("smtp_to", "b@example.com"), ("smtp_tls", "ssl")],
            "CERTCTL_SMTP_TLS",
        ),
        (
            vec![("smtp_host", "h"), ("smtp_from", "a@example.com"), ("smtp_to", "b@example.com"), ("smtp_port", "x")],
            "CERTCTL_SMTP_PORT",
        ),
    ];
    for (settings, var) in cases {
        let mut raw = RawSettings::default();
        for (k, v) in &settings {
            raw.set(k, *v);
        }
        let config = raw.into_config().unwrap();
        let e = Notifications::from_config(&config).err().unwrap().to_string();
        assert!(e.starts_with(&format!("{var}: ")), "{settings:?}: {e}");
    }
}
