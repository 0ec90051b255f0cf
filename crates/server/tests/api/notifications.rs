//! Notifications end to end against real local receivers: webhook payload and HMAC, the whole
//! retry ladder to `dead` and back with requeue, a hanging receiver, unconfigured channels, the
//! SSRF guard, Slack/Teams/PagerDuty/OpsGenie payloads, bad channel input, and two servers on
//! one PostgreSQL delivering every row exactly once.

use std::collections::HashMap;

use axum::http::Method;
use serde_json::{Value, json};

use certctl_api::{NotificationStatus, NotificationType, SeverityTier};
use certctl_server::clock::Clock;
use certctl_server::notify::worker;
use certctl_store::testing::TestDb;
use certctl_store::{Backend, ClaimKind, NewNotification};

use crate::notifications_peer::{Answer, NotifyApp, Receiver};

fn item(channel: &str, kind: NotificationType, cert: Option<&str>) -> NewNotification {
    NewNotification {
        notification_type: kind,
        channel: channel.to_owned(),
        recipient: "ops@example.com".into(),
        certificate_id: cert.map(str::to_owned),
        subject: "Certificate web expires in 5 days".into(),
        message: "Certificate web (web.example.com) expires in 5 days.".into(),
        payload: json!({ "days_left": 5 }),
        severity: SeverityTier::Warning,
        dedup_key: None,
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref()))
}

/// A certificate (with its team, owner, issuer and policy) created through the API.
async fn certificate(app: &NotifyApp) -> String {
    let id = |r: crate::notifications_peer::Reply| {
        assert_eq!(r.status, 201, "{}", r.json);
        r.json["id"].as_str().unwrap().to_owned()
    };
    let team = id(app.call(Method::POST, "/api/v1/teams", Some(json!({ "name": "web" }))).await);
    let owner = json!({ "name": "alice", "email": "alice@example.com", "team_id": team });
    let owner = id(app.call(Method::POST, "/api/v1/owners", Some(owner)).await);
    let issuer = json!({ "name": "ca", "type": "GenericCA", "config": { "validity_days": 90 } });
    let issuer = id(app.call(Method::POST, "/api/v1/issuers", Some(issuer)).await);
    let policy = id(app.call(Method::POST, "/api/v1/renewal-policies", Some(json!({ "name": "p" }))).await);
    let body = json!({ "name": "web", "common_name": "web.example.com", "owner_id": owner, "team_id": team,
        "issuer_id": issuer, "renewal_policy_id": policy });
    id(app.call(Method::POST, "/api/v1/certificates", Some(body)).await)
}

async fn only_notification(app: &NotifyApp) -> Value {
    let r = app.call(Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["total"], 1, "{}", r.json);
    r.json["data"][0].clone()
}

async fn get(app: &NotifyApp, id: &str) -> Value {
    let r = app.call(Method::GET, &format!("/api/v1/notifications/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

#[tokio::test]
async fn webhook_channel_delivers_signed_json_and_redacts_its_secret() {
    let rx = Receiver::start().await;
    let (app, db) = NotifyApp::sqlite(&[]).await;
    let body =
        json!({ "name": "ops-hook", "type": "Webhook", "config": { "url": rx.url("/hook"), "secret": "s3cret" } });
    let r = app.call(Method::POST, "/api/v1/notification-channels", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["config"]["secret"], "********");
    assert_eq!(r.json["config"]["url"], rx.url("/hook"));
    let id = r.json["id"].as_str().unwrap().to_owned();
    let raw = app.call(Method::GET, &format!("/api/v1/notification-channels/{id}"), None).await;
    assert!(!raw.json.to_string().contains("s3cret"), "the secret never comes back: {}", raw.json);

    let r = app.call(Method::POST, &format!("/api/v1/notification-channels/{id}/test"), None).await;
    assert_eq!(r.status, 202, "{}", r.json);
    let pending = only_notification(&app).await;
    assert_eq!((pending["status"].as_str(), pending["type"].as_str()), (Some("pending"), Some("Test")));
    assert_eq!(worker::deliver(&app.state, ClaimKind::Pending).await, 1);

    let seen = rx.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.path, "/hook");
    let sig = req.headers.get("x-certctl-signature").and_then(|v| v.to_str().ok()).unwrap();
    assert_eq!(sig, hmac_hex("s3cret", &req.body), "signature is the HMAC-SHA256 of the exact body");
    let payload = req.json();
    assert_eq!(payload["type"], "Test");
    assert_eq!(payload["id"], pending["id"]);
    assert!(payload["subject"].as_str().unwrap().contains("ops-hook"));
    let sent = get(&app, pending["id"].as_str().unwrap()).await;
    assert_eq!((sent["status"].as_str(), sent["retry_count"].as_i64()), (Some("sent"), Some(0)));
    assert!(sent["sent_at"].is_string());

    // Updating with the placeholder keeps the stored secret.
    let upd = json!({ "config": { "url": rx.url("/hook2"), "secret": "********" } });
    let r = app.call(Method::PUT, &format!("/api/v1/notification-channels/{id}"), Some(upd)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    app.call(Method::POST, &format!("/api/v1/notification-channels/{id}/test"), None).await;
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let second = rx.seen().pop().unwrap();
    assert_eq!(second.path, "/hook2");
    assert_eq!(second.headers["x-certctl-signature"].to_str().unwrap(), hmac_hex("s3cret", &second.body));

    // Marking read, then the read row cannot be requeued.
    let nid = sent["id"].as_str().unwrap();
    assert_eq!(app.call(Method::POST, &format!("/api/v1/notifications/{nid}/read"), None).await.status, 200);
    assert_eq!(get(&app, nid).await["status"], "read");
    assert_eq!(app.call(Method::POST, &format!("/api/v1/notifications/{nid}/requeue"), None).await.status, 409);
    db.cleanup().await;
}

#[tokio::test]
async fn bad_channel_input_names_the_field() {
    let (app, db) = NotifyApp::sqlite(&[]).await;
    let cases = [
        (json!({ "name": "a", "type": "Webhook", "config": { "url": "ftp://x" } }), "config.url"),
        (json!({ "name": "a", "type": "Webhook", "config": {} }), "config.url"),
        (json!({ "name": "a", "type": "Webhook", "config": { "url": "http://x", "bogus": 1 } }), "config.bogus"),
        (json!({ "name": "a", "type": "PagerDuty", "config": {} }), "config.routing_key"),
        (json!({ "name": "a", "type": "OpsGenie", "config": { "api_key": "k", "region": "mars" } }), "config.region"),
        (json!({ "name": "Webhook", "type": "Webhook", "config": { "url": "http://x" } }), "name"),
    ];
    for (body, field) in cases {
        let r = app.call(Method::POST, "/api/v1/notification-channels", Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
        assert!(r.json["message"].as_str().unwrap().starts_with(&format!("{field}:")), "{body}: {}", r.json);
    }
    let r = app
        .call(Method::POST, "/api/v1/notification-channels", Some(json!({ "name": "a", "type": "Fax", "config": {} })))
        .await;
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(r.json["message"].as_str().unwrap().contains("type"), "{}", r.json);
    for path in ["/api/v1/notifications/notif-nope", "/api/v1/notification-channels/nc-nope"] {
        assert_eq!(app.call(Method::GET, path, None).await.status, 404);
    }
    assert_eq!(app.call(Method::POST, "/api/v1/notifications/notif-nope/requeue", None).await.status, 404);
    let r = app.call(Method::GET, "/api/v1/notifications?status=lost", None).await;
    assert_eq!(r.status, 400);
    assert!(r.json["message"].as_str().unwrap().starts_with("status:"));
    db.cleanup().await;
}

#[tokio::test]
async fn failing_receiver_walks_the_ladder_to_dead_and_back() {
    let rx = Receiver::start().await;
    let (app, db) = NotifyApp::sqlite(&[("webhook_url", rx.url("/ladder"))]).await;
    rx.script([Answer::Status(500), Answer::Status(502), Answer::Status(503), Answer::Status(500)]);
    app.state
        .store
        .enqueue_notifications(&[item("Webhook", NotificationType::RenewalFailure, None)], app.clock.now())
        .await
        .unwrap();
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let id = only_notification(&app).await["id"].as_str().unwrap().to_owned();

    // base 1 s, cap 4 s, 4 attempts: waits 1, 2, 4, then dead.
    let mut now = app.clock.now();
    for (attempt, wait) in [(1, 1), (2, 2), (3, 4)] {
        let n = get(&app, &id).await;
        assert_eq!(n["status"], "failed", "{n}");
        assert_eq!(n["retry_count"], attempt);
        let next = time::OffsetDateTime::parse(
            n["next_retry_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(next - now, time::Duration::seconds(wait), "attempt {attempt}: base × 2^(attempt-1)");
        assert!(n["last_error"].as_str().unwrap().contains("HTTP 5"), "{n}");
        // Not due a moment early.
        assert_eq!(worker::deliver(&app.state, ClaimKind::DueRetries).await, 0);
        app.advance(wait);
        now = app.clock.now();
        assert_eq!(worker::deliver(&app.state, ClaimKind::DueRetries).await, 1);
    }
    let dead = get(&app, &id).await;
    assert_eq!((dead["status"].as_str(), dead["retry_count"].as_i64()), (Some("dead"), Some(4)), "{dead}");
    assert!(dead["next_retry_at"].is_null());
    assert_eq!(rx.seen().len(), 4);
    let dlq = app.call(Method::GET, "/api/v1/notifications?status=dead", None).await;
    assert_eq!(dlq.json["total"], 1);
    app.advance(3600);
    assert_eq!(worker::deliver(&app.state, ClaimKind::DueRetries).await, 0, "dead rows are never swept");

    let r = app.call(Method::POST, &format!("/api/v1/notifications/{id}/requeue"), None).await;
    assert_eq!((r.status.as_u16(), r.json["status"].as_str()), (200, Some("requeued")));
    let again = get(&app, &id).await;
    assert_eq!((again["status"].as_str(), again["retry_count"].as_i64()), (Some("pending"), Some(0)));
    assert!(again["last_error"].is_null() && again["next_retry_at"].is_null());
    worker::deliver(&app.state, ClaimKind::Pending).await;
    assert_eq!(get(&app, &id).await["status"], "sent");
    assert_eq!(rx.seen().len(), 5);
    assert_eq!(app.call(Method::POST, &format!("/api/v1/notifications/{id}/requeue"), None).await.status, 409);
    db.cleanup().await;
}

#[tokio::test]
async fn hanging_receiver_is_a_failed_attempt() {
    let rx = Receiver::start().await;
    rx.script([Answer::Hang]);
    let (app, db) = NotifyApp::sqlite(&[("webhook_url", rx.url("/slow"))]).await;
    app.state
        .store
        .enqueue_notifications(&[item("Webhook", NotificationType::Test, None)], app.clock.now())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    worker::deliver(&app.state, ClaimKind::Pending).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let n = only_notification(&app).await;
    assert_eq!((n["status"].as_str(), n["retry_count"].as_i64()), (Some("failed"), Some(1)), "{n}");
    assert!(n["last_error"].as_str().unwrap().contains("timed out"), "{n}");
    db.cleanup().await;
}

#[tokio::test]
async fn unconfigured_channel_is_dead_not_sent() {
    let (app, db) = NotifyApp::sqlite(&[]).await;
    app.state
        .store
        .enqueue_notifications(&[item("Email", NotificationType::Revocation, None)], app.clock.now())
        .await
        .unwrap();
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let n = only_notification(&app).await;
    assert_eq!(n["status"], "dead");
    assert!(n["last_error"].as_str().unwrap().contains("'Email' is not configured"), "{n}");
    assert!(n["sent_at"].is_null());
    db.cleanup().await;
}

#[tokio::test]
async fn loopback_targets_are_refused_unless_allowed() {
    let rx = Receiver::start().await;
    for host in [rx.url("/x"), format!("http://localhost:{}/x", rx.addr.port())] {
        let (app, db) =
            NotifyApp::sqlite(&[("allow_loopback_targets", "false".into()), ("webhook_url", host.clone())]).await;
        app.state
            .store
            .enqueue_notifications(&[item("Webhook", NotificationType::Test, None)], app.clock.now())
            .await
            .unwrap();
        worker::deliver(&app.state, ClaimKind::Pending).await;
        let n = only_notification(&app).await;
        assert_eq!(n["status"], "failed", "{host}: {n}");
        assert!(n["last_error"].as_str().unwrap().contains("refusing"), "{host}: {n}");
        db.cleanup().await;
    }
    assert!(rx.seen().is_empty(), "nothing reached the loopback receiver");
}

#[tokio::test]
async fn provider_payloads_slack_teams_pagerduty_opsgenie() {
    let rx = Receiver::start().await;
    let (app, db) = NotifyApp::sqlite(&[
        ("slack_webhook_url", rx.url("/slack")),
        ("teams_webhook_url", rx.url("/teams")),
        ("pagerduty_routing_key", "pd-key".into()),
        ("pagerduty_url", rx.url("/pd")),
        ("opsgenie_api_key", "og-key".into()),
        ("opsgenie_region", "eu".into()),
        ("opsgenie_url", rx.url("/og")),
    ])
    .await;
    let now = app.clock.now();
    let cert = certificate(&app).await;
    let items = [
        item("Slack", NotificationType::ExpirationWarning, None),
        item("Teams", NotificationType::ExpirationWarning, None),
        item("PagerDuty", NotificationType::ExpirationWarning, Some(&cert)),
        item("PagerDuty", NotificationType::ExpirationWarning, Some(&cert)),
        item("OpsGenie", NotificationType::ExpirationWarning, Some(&cert)),
    ];
    app.state.store.enqueue_notifications(&items, now).await.unwrap();
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let mut by_path: HashMap<String, Vec<Value>> = HashMap::new();
    let mut og_auth = None;
    for r in rx.seen() {
        if r.path == "/og" {
            og_auth = r.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
        }
        by_path.entry(r.path.clone()).or_default().push(r.json());
    }
    let slack = &by_path["/slack"][0];
    assert!(slack["text"].as_str().unwrap().starts_with("*Certificate web expires in 5 days*\n"), "{slack}");
    let teams = &by_path["/teams"][0];
    assert_eq!(teams["type"], "message");
    assert_eq!(teams["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
    let pd = &by_path["/pd"];
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[0]["routing_key"], "pd-key");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["payload"]["severity"], "warning");
    assert_eq!(pd[0]["dedup_key"], pd[1]["dedup_key"], "one incident per certificate and event");
    let og = &by_path["/og"][0];
    assert_eq!(og_auth.as_deref(), Some("GenieKey og-key"));
    assert_eq!(og["priority"], "P3");
    assert_eq!(og["message"], "Certificate web expires in 5 days");
    // A renewal resolves the expiry incident under the same dedup key.
    let renewed = item("PagerDuty", NotificationType::RenewalSuccess, Some(&cert));
    app.state.store.enqueue_notifications(&[renewed], now).await.unwrap();
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let resolves: Vec<Value> = rx.seen().into_iter().filter(|r| r.path == "/pd").map(|r| r.json()).skip(2).collect();
    assert!(resolves.iter().all(|r| r["event_action"] == "resolve"), "{resolves:?}");
    assert!(resolves.iter().any(|r| r["dedup_key"] == pd[0]["dedup_key"]), "resolves the open incident: {resolves:?}");
    assert!(app.call(Method::GET, "/api/v1/notifications?status=sent", None).await.json["total"] == 6);
    db.cleanup().await;
}

#[tokio::test]
async fn two_servers_on_one_postgres_deliver_each_notification_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        eprintln!("skipped: CERTCTL_TEST_POSTGRES_URL is not set");
        return;
    };
    let rx = Receiver::start().await;
    let settings = [("webhook_url", rx.url("/both"))];
    let a = NotifyApp::on(&db, &settings).await;
    let b = NotifyApp::on(&db, &settings).await;
    let now = a.clock.now();
    let items: Vec<NewNotification> = (0..40).map(|_| item("Webhook", NotificationType::Test, None)).collect();
    a.state.store.enqueue_notifications(&items, now).await.unwrap();
    // Every first attempt fails, so all forty rows sit in the sweep together.
    rx.script((0..40).map(|_| Answer::Status(500)));
    worker::deliver(&a.state, ClaimKind::Pending).await;
    assert_eq!(rx.seen().len(), 40);
    a.advance(1);
    b.advance(1);
    let (na, nb) = tokio::join!(
        worker::deliver(&a.state, ClaimKind::DueRetries),
        worker::deliver(&b.state, ClaimKind::DueRetries)
    );
    assert_eq!(na + nb, 40, "a={na} b={nb}");
    let retries: Vec<String> =
        rx.seen().into_iter().skip(40).map(|r| r.json()["id"].as_str().unwrap().to_owned()).collect();
    let unique: std::collections::HashSet<&String> = retries.iter().collect();
    assert_eq!((retries.len(), unique.len()), (40, 40), "each notification reached the receiver exactly once");
    let sent = a.call(Method::GET, "/api/v1/notifications?status=sent", None).await;
    assert_eq!(sent.json["total"], 40);
    drop((a, b));
    db.cleanup().await;
}

#[test]
fn status_names_match_the_contract() {
    let names: Vec<&str> = NotificationStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["pending", "sent", "failed", "dead", "read"]);
}

#[tokio::test]
async fn policy_routing_to_a_missing_channel_is_422_and_expiry_alerts_fire_once_per_threshold() {
    let rx = Receiver::start().await;
    let (app, db) = NotifyApp::sqlite(&[("webhook_url", rx.url("/expiry"))]).await;
    let cert = certificate(&app).await;
    let policy = app.call(Method::GET, "/api/v1/renewal-policies", None).await.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "p")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/renewal-policies/{policy}");
    let r = app.call(Method::PUT, &path, Some(json!({ "alert_channels": { "warning": ["pager-room"] } }))).await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert!(r.json["message"].as_str().unwrap().contains("'pager-room'"), "{}", r.json);
    let hook = json!({ "name": "pager-room", "type": "Webhook", "config": { "url": rx.url("/room") } });
    assert_eq!(app.call(Method::POST, "/api/v1/notification-channels", Some(hook)).await.status, 201);
    let r =
        app.call(Method::PUT, &path, Some(json!({ "alert_channels": { "warning": ["pager-room", "Webhook"] } }))).await;
    assert_eq!(r.status, 200, "{}", r.json);

    // The certificate expires in 5 days and 1 hour: only the 7-day threshold fires (not 30 or 14).
    let expires = app.clock.now() + time::Duration::days(5) + time::Duration::hours(1);
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(db.url()).await.unwrap();
    sqlx::query("UPDATE managed_certificates SET expires_at = $1, status = 'Active' WHERE id = $2")
        .bind(certctl_store::to_micros(expires))
        .bind(&cert)
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(worker::scan_expiry(&app.state).await, 2, "one alert per routed channel");
    assert_eq!(worker::scan_expiry(&app.state).await, 0, "a second scan adds nothing");
    let list = app
        .call(Method::GET, &format!("/api/v1/notifications?certificate_id={cert}&type=ExpirationWarning"), None)
        .await;
    assert_eq!(list.json["total"], 2);
    for n in list.json["data"].as_array().unwrap() {
        assert_eq!(n["severity"], "warning");
        assert!(n["subject"].as_str().unwrap().ends_with("expires in 5 days"), "{n}");
    }
    worker::deliver(&app.state, ClaimKind::Pending).await;
    let paths: Vec<String> = rx.seen().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 2);
    assert!(paths.contains(&"/room".to_owned()) && paths.contains(&"/expiry".to_owned()), "{paths:?}");

    // Two days after expiry the 0-day threshold fires, critical, routed to the default channel.
    app.advance(7 * 86_400);
    assert_eq!(worker::scan_expiry(&app.state).await, 1);
    let crit = app.call(Method::GET, "/api/v1/notifications?channel=Email", None).await;
    assert_eq!(crit.json["total"], 1);
    let n = &crit.json["data"][0];
    assert_eq!(n["severity"], "critical");
    let subject = n["subject"].as_str().unwrap();
    assert!(subject.ends_with("expired 1 day ago"), "{subject}");
    assert!(!n["message"].as_str().unwrap().contains("in -"), "{n}");
    db.cleanup().await;
}
