//! Health, readiness, version, authentication info and check, the served OpenAPI document.

use axum::http::{Method, header};
use serde_json::json;

use crate::harness::{NO_KEY, TestApp};

#[tokio::test]
async fn health_is_public_and_carries_security_headers() {
    let app = TestApp::new().await;
    let r = app.get("/health", NO_KEY).await;
    r.expect(200, None);
    assert_eq!(r.json, json!({"status": "healthy"}));
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");
    assert!(r.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}

#[tokio::test]
async fn ready_reflects_the_database() {
    let app = TestApp::new().await;
    let r = app.get("/ready", NO_KEY).await;
    r.expect(200, None);
    assert_eq!(r.json, json!({"status": "ready", "db": "reachable"}));

    app.store.close().await;
    let r = app.get("/ready", NO_KEY).await;
    r.expect(503, Some("db_unavailable"));
    assert_eq!(r.json["request_id"], r.request_id());
    // The cause stays in the log; the client gets no internals.
    assert!(!r.message().contains("pool"), "{}", r.message());
}

#[tokio::test]
async fn version_is_public() {
    let app = TestApp::new().await;
    let r = app.get("/api/v1/version", NO_KEY).await;
    r.expect(200, None);
    assert_eq!(r.json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.json["rust_version"], env!("CARGO_PKG_RUST_VERSION"));
}

#[tokio::test]
async fn auth_info_is_public() {
    let app = TestApp::new().await;
    let r = app.get("/api/v1/auth/info", NO_KEY).await;
    r.expect(200, None);
    assert_eq!(r.json, json!({"auth_type": "api-key", "required": true}));
}

#[tokio::test]
async fn auth_check_names_the_key_and_role() {
    let app = TestApp::new().await;
    for (key, name, admin) in
        [(&app.admin, "admin", true), (&app.operator, "operator", false), (&app.viewer, "viewer", false)]
    {
        let r = app.get("/api/v1/auth/check", key).await;
        r.expect(200, None);
        assert_eq!(r.json, json!({"status": "authenticated", "user": name, "role": name, "admin": admin}));
    }
}

#[tokio::test]
async fn missing_or_bad_keys_are_401() {
    let app = TestApp::new().await;
    let bad = [
        None,
        Some("Bearer cck_not-a-real-key".to_owned()),
        Some(format!("Basic {}", app.admin)),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {}x", app.admin)),
    ];
    for (path, method) in
        [("/api/v1/auth/check", Method::GET), ("/api/v1/teams", Method::GET), ("/api/v1/teams", Method::POST)]
    {
        for auth in &bad {
            let mut req = TestApp::request(method.clone(), path, NO_KEY);
            if let Some(v) = auth {
                req = req.header(header::AUTHORIZATION, v);
            }
            let r = app.send(req.body(axum::body::Body::from("{\"name\":\"x\"}")).unwrap()).await;
            r.expect(401, Some("unauthorized"));
            assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"certctl\"", "{method} {path} {auth:?}");
        }
    }
    let r = app.get("/api/v1/teams", NO_KEY).await;
    assert!(r.message().contains("Authorization"), "{}", r.message());
    // A bearer token is accepted whatever the scheme's case.
    let req = TestApp::request(Method::GET, "/api/v1/auth/check", NO_KEY)
        .header(header::AUTHORIZATION, format!("bearer {}", app.viewer))
        .body(axum::body::Body::empty())
        .unwrap();
    app.send(req).await.expect(200, None);
    let teams = app.store.list_teams(&certctl_store::Paging::Page { page: 1, per_page: 10 }).await.unwrap();
    assert!(teams.data().is_empty(), "no unauthenticated write got through");
}

#[tokio::test]
async fn openapi_json_is_public_and_is_the_generated_document() {
    let app = TestApp::new().await;
    let r = app.get("/api/v1/openapi.json", NO_KEY).await;
    r.expect(200, None);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    let expected = certctl_server::api::openapi().to_pretty_json().unwrap();
    assert_eq!(String::from_utf8_lossy(&r.body), expected);
    assert_eq!(r.json["info"]["version"], env!("CARGO_PKG_VERSION"));
    for path in [
        "/health",
        "/ready",
        "/api/v1/teams",
        "/api/v1/teams/{id}",
        "/api/v1/owners/{id}",
        "/api/v1/apikeys",
        "/api/v1/audit/{id}",
    ] {
        assert!(r.json["paths"].get(path).is_some(), "{path} is documented");
    }
    assert_eq!(r.json["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
}

/// Every operation in the OpenAPI document is routed with the documented method (neither the
/// JSON 404 fallback nor a 405), so the document cannot describe endpoints that do not exist.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::new().await;
    let doc = serde_json::to_value(certctl_server::api::openapi()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "no-such-id" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            // An empty JSON object: enough to reach the handler, never enough to change anything.
            let r = app.send_body(m, &concrete, &app.viewer, "{}").await;
            let fallback = r.status == 404 && r.message() == "no such endpoint";
            assert!(!fallback && r.status != 405, "{method} {path} is documented but not routed ({})", r.status);
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations documented");
}
