//! The audit trail through the API: every authenticated call is recorded, lifecycle changes
//! name the key that made them, and the trail can be read but not changed.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use certctl_api::ActorType;
use certctl_store::AuditFilterParsed;

use crate::harness::{NO_KEY, T0, TestApp, sha256_hex};

#[tokio::test]
async fn authenticated_calls_are_audited() {
    let app = TestApp::new().await;
    let body = json!({"name": "Platform"}).to_string();
    let post = app.send_body(Method::POST, "/api/v1/teams", &app.operator, body.clone()).await;
    post.expect(201, None);
    let e = app.api_audit("POST", "/api/v1/teams", post.request_id()).await;
    assert_eq!((e.actor.as_str(), e.actor_type, e.resource_type.as_str()), ("operator", ActorType::User, "api"));
    assert_eq!(e.details["status"], 201);
    assert_eq!(e.details["method"], "POST");
    assert_eq!(e.details["body_sha256"], sha256_hex(body.as_bytes()));
    assert!(e.details["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{}", e.details);
    assert_eq!(e.timestamp, T0);

    let id = post.json["id"].as_str().unwrap();
    let get = app.get(&format!("/api/v1/teams/{id}?x=1"), &app.viewer).await;
    let e = app.api_audit("GET", &format!("/api/v1/teams/{id}"), get.request_id()).await;
    assert_eq!((e.actor.as_str(), &e.details["status"]), ("viewer", &json!(200)));
    assert_eq!(e.details["body_sha256"], Value::Null, "no body, no hash");
    assert_eq!(e.details["query"], "x=1");

    // Refused calls are recorded with their status too.
    let put = app.put_json(&format!("/api/v1/teams/{id}"), &app.viewer, &json!({"name": "x"})).await;
    put.expect(403, None);
    let e = app.api_audit("PUT", &format!("/api/v1/teams/{id}"), put.request_id()).await;
    assert_eq!((e.actor.as_str(), &e.details["status"]), ("viewer", &json!(403)));
    let del = app.delete("/api/v1/teams/missing", &app.admin).await;
    let e = app.api_audit("DELETE", "/api/v1/teams/missing", del.request_id()).await;
    assert_eq!((e.actor.as_str(), &e.details["status"]), ("admin", &json!(404)));
    let bad = app.send_body(Method::POST, "/api/v1/owners", &app.operator, "{").await;
    let e = app.api_audit("POST", "/api/v1/owners", bad.request_id()).await;
    assert_eq!(e.details["status"], 400);
    assert_eq!(e.details["body_sha256"], sha256_hex(b"{"));

    let report = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(report.first_broken, None);
}

#[tokio::test]
async fn unauthenticated_calls_are_not_audited() {
    let app = TestApp::new().await;
    let rejected = app.get("/api/v1/teams", NO_KEY).await;
    rejected.expect(401, None);
    let rejected_bad_key = app.get("/api/v1/teams", "cck_wrong").await;
    rejected_bad_key.expect(401, None);
    let public = app.get("/api/v1/version", NO_KEY).await;
    // Records are written in order, so once a later call's record is there, earlier ones are too.
    let later = app.get("/api/v1/teams", &app.viewer).await;
    app.api_audit("GET", "/api/v1/teams", later.request_id()).await;
    let all = app
        .store
        .list_audit(&AuditFilterParsed::default(), &certctl_store::Paging::Page { page: 1, per_page: 500 })
        .await
        .unwrap();
    for r in [&rejected, &rejected_bad_key, &public] {
        assert!(
            !all.data().iter().any(|e| e.details["request_id"] == r.request_id()),
            "unauthenticated call {} was recorded",
            r.request_id()
        );
    }
}

#[tokio::test]
async fn lifecycle_changes_name_the_key() {
    let app = TestApp::new().await;
    let team = app.team("One").await;
    let owner = app.owner("ann", &team).await;
    let r = app.get("/api/v1/audit?action=team_created", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(r.json["total"], 1);
    let e = &r.json["data"][0];
    assert_eq!((&e["actor"], &e["actor_type"], &e["resource_id"]), (&json!("operator"), &json!("User"), &json!(team)));
    let r = app.get(&format!("/api/v1/audit?resource_type=owner&resource_id={owner}"), &app.viewer).await;
    assert_eq!(r.json["total"], 1);
    assert_eq!(r.json["data"][0]["action"], "owner_created");
}

#[tokio::test]
async fn audit_is_listed_newest_first_and_read_only() {
    let app = TestApp::new().await;
    app.team("One").await;
    app.clock.advance(time::Duration::minutes(5));
    app.team("Two").await;
    // Let the API-call records land so the list is stable.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let last = app.get("/api/v1/auth/check", &app.viewer).await;
    app.api_audit("GET", "/api/v1/auth/check", last.request_id()).await;

    let r = app.get("/api/v1/audit?per_page=500", &app.viewer).await;
    r.expect(200, None);
    let events = r.json["data"].as_array().unwrap();
    assert_eq!(r.json["total"].as_u64(), Some(events.len() as u64));
    let stamps: Vec<&str> = events.iter().map(|e| e["timestamp"].as_str().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest first: {stamps:?}");
    for pair in events.windows(2) {
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"], "the listed chain links up");
    }

    let r = app.get("/api/v1/audit?actor=operator&action=team_created", &app.viewer).await;
    assert_eq!(r.json["total"], 2);
    assert_eq!(r.json["data"][0]["details"]["name"], "Two");
    let five = (T0 + time::Duration::minutes(5)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let r = app.get(&format!("/api/v1/audit?action=team_created&from={five}"), &app.viewer).await;
    assert_eq!(r.json["total"], 1, "{}", r.json);
    let r = app.get(&format!("/api/v1/audit?action=team_created&to={five}"), &app.viewer).await;
    assert_eq!(r.json["total"], 1, "{}", r.json);
    app.get("/api/v1/audit?from=yesterday", &app.viewer).await.expect_bad_field("from");
    app.get("/api/v1/audit?to=2026-13-01T00:00:00Z", &app.viewer).await.expect_bad_field("to");

    let id = events[0]["id"].as_str().unwrap();
    let one = app.get(&format!("/api/v1/audit/{id}"), &app.viewer).await;
    one.expect(200, None);
    assert_eq!(&one.json, &events[0]);
    app.get("/api/v1/audit/audit-missing", &app.viewer).await.expect(404, Some("not_found"));
    app.get("/api/v1/audit", "").await.expect(401, Some("unauthorized"));

    for r in [
        app.put_json(&format!("/api/v1/audit/{id}"), &app.admin, &json!({})).await,
        app.delete(&format!("/api/v1/audit/{id}"), &app.admin).await,
        app.post_json("/api/v1/audit", &app.admin, &json!({})).await,
    ] {
        assert_eq!(r.status, 405, "the trail cannot be changed through the API");
    }
    app.get(&format!("/api/v1/audit/{id}"), &app.viewer).await.expect(200, None);
}
