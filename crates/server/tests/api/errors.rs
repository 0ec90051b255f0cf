//! Behaviour shared by every endpoint: request IDs, unknown routes, body limits and JSON
//! decoding errors.

use axum::body::Body;
use axum::http::{Method, header};
use serde_json::json;

use crate::harness::{NO_KEY, TestApp};

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = TestApp::new().await;
    for (path, key) in
        [("/api/v1/nope", NO_KEY), ("/api/v1/nope", app.admin.as_str()), ("/nope", NO_KEY), ("/api/v2/teams", NO_KEY)]
    {
        let r = app.get(path, key).await;
        r.expect(404, Some("not_found"));
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/json", "{path}");
        assert_eq!(r.json["request_id"], r.request_id());
    }
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed() {
    let app = TestApp::new().await;
    let a = app.get("/health", NO_KEY).await;
    let b = app.get("/health", NO_KEY).await;
    assert_ne!(a.request_id(), b.request_id(), "each request gets its own ID");
    assert!(uuid::Uuid::parse_str(a.request_id()).is_ok(), "{}", a.request_id());

    let req = |path: &str, id: &str| {
        TestApp::request(Method::GET, path, &app.viewer).header("x-request-id", id).body(Body::empty()).unwrap()
    };
    let r = app.send(req("/api/v1/teams/missing", "client-req_1.2:3")).await;
    r.expect(404, Some("not_found"));
    assert_eq!(r.request_id(), "client-req_1.2:3");
    assert_eq!(r.json["request_id"], "client-req_1.2:3");
    let r = app.send(req("/health", "client-req-2")).await;
    assert_eq!(r.request_id(), "client-req-2");

    // IDs that could forge log lines or bloat them are replaced.
    for bad in ["has space", &"x".repeat(129), "semi;colon"] {
        let r = app.send(req("/health", bad)).await;
        assert_ne!(r.request_id(), bad);
        assert!(uuid::Uuid::parse_str(r.request_id()).is_ok(), "{}", r.request_id());
    }
}

#[tokio::test]
async fn body_over_one_mib_is_413() {
    let app = TestApp::new().await;
    let big = format!("{{\"name\": \"x\", \"description\": \"{}\"}}", "a".repeat(1024 * 1024));
    let r = app.send_body(Method::POST, "/api/v1/teams", &app.operator, big).await;
    r.expect(413, Some("payload_too_large"));
    // Just under the limit is accepted.
    let fits = format!("{{\"name\": \"x\", \"description\": \"{}\"}}", "a".repeat(1024 * 1024 - 64));
    let r = app.send_body(Method::POST, "/api/v1/teams", &app.operator, fits).await;
    r.expect(201, None);
    let r = app.send_body(Method::PUT, "/api/v1/owners/x", &app.operator, vec![b' '; 1024 * 1024 + 1]).await;
    r.expect(413, Some("payload_too_large"));
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let app = TestApp::new().await;
    for body in ["not json", "{\"name\": \"a\"} trailing", "\"a string\""] {
        let r = app.send_body(Method::POST, "/api/v1/teams", &app.operator, body).await;
        r.expect(400, Some("bad_request"));
        assert!(r.message().starts_with("invalid JSON body"), "{body}: {}", r.message());
    }
    // A document cut off inside a value blames that value.
    app.send_body(Method::POST, "/api/v1/teams", &app.operator, "{\"name\":").await.expect_bad_field("name");
    let r = app.send_body(Method::POST, "/api/v1/teams", &app.operator, "").await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("empty"), "{}", r.message());

    let req = TestApp::request(Method::POST, "/api/v1/teams", &app.operator)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(json!({"name": "x"}).to_string()))
        .unwrap();
    app.send(req).await.expect(415, Some("unsupported_media_type"));
    // application/json with parameters and +json types are JSON.
    let req = TestApp::request(Method::POST, "/api/v1/teams", &app.operator)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(json!({"name": "x"}).to_string()))
        .unwrap();
    app.send(req).await.expect(201, None);
}

#[tokio::test]
async fn wrong_method_is_405() {
    let app = TestApp::new().await;
    let r = app.send_body(Method::PATCH, "/api/v1/teams", &app.operator, "{}").await;
    assert_eq!(r.status, 405);
    let r = app.delete("/api/v1/teams", &app.admin).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn wrong_method_has_a_json_body() {
    let app = TestApp::new().await;
    let r = app.delete("/api/v1/teams", &app.admin).await;
    r.expect(405, Some("method_not_allowed"));
}
