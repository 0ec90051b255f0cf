//! `/api/v1/profiles` and `/api/v1/renewal-policies`: defaults, canonical forms, bounds errors
//! that name the field, conflicts and references.

use serde_json::{Value, json};

use crate::fixtures::{cert, cert_body, deps, ids, with};
use crate::harness::TestApp;

#[tokio::test]
async fn profile_crud_and_defaults() {
    let app = TestApp::new().await;
    let r = app.post_json("/api/v1/profiles", &app.operator, &json!({"name": "Web"})).await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("prof-"), "{id}");
    let expected = json!({
        "id": id, "name": "Web", "description": "",
        "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}, {"algorithm": "RSA", "min_size": 2048}],
        "max_ttl_seconds": 0, "allowed_ekus": ["serverAuth"], "required_san_patterns": [], "spiffe_uri_pattern": "",
        "allow_short_lived": false, "must_staple": false, "requires_approval": false, "key_mode": null,
        "acme_auth_mode": "trust_authenticated", "enabled": true,
        "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:00:00Z",
    });
    assert_eq!(r.json, expected);
    assert_eq!(app.get(&format!("/api/v1/profiles/{id}"), &app.viewer).await.json, expected);

    // Given values are put in canonical form: explicit key sizes, no duplicates.
    let body = json!({
        "id": "prof-short", "name": "Short", "description": "mTLS",
        "allowed_key_algorithms": [{"algorithm": "ECDSA"}, {"algorithm": "ECDSA", "min_size": 256}, {"algorithm": "Ed25519"}],
        "max_ttl_seconds": 600, "allow_short_lived": true, "allowed_ekus": ["clientAuth", "clientAuth", "serverAuth"],
        "required_san_patterns": ["*.svc.example.com", "*.svc.example.com"], "spiffe_uri_pattern": "spiffe://x/*",
        "must_staple": true, "requires_approval": true, "key_mode": "agent", "acme_auth_mode": "challenge", "enabled": false,
    });
    let r = app.post_json("/api/v1/profiles", &app.operator, &body).await;
    r.expect(201, None);
    assert_eq!(
        r.json["allowed_key_algorithms"],
        json!([{"algorithm": "ECDSA", "min_size": 256}, {"algorithm": "Ed25519", "min_size": 256}])
    );
    assert_eq!(r.json["allowed_ekus"], json!(["clientAuth", "serverAuth"]));
    assert_eq!(r.json["required_san_patterns"], json!(["*.svc.example.com"]));
    assert_eq!(
        (&r.json["key_mode"], &r.json["acme_auth_mode"], &r.json["enabled"], &r.json["must_staple"]),
        (&json!("agent"), &json!("challenge"), &json!(false), &json!(true))
    );

    app.clock.advance(time::Duration::minutes(1));
    let r = app.put_json(&format!("/api/v1/profiles/{id}"), &app.operator, &json!({"description": "public web"})).await;
    r.expect(200, None);
    let mut after = expected.clone();
    after["description"] = json!("public web");
    after["updated_at"] = json!("2026-03-01T10:01:00Z");
    assert_eq!(r.json, after, "absent fields keep their value");
    let r = app
        .put_json(
            &format!("/api/v1/profiles/{id}"),
            &app.operator,
            &json!({"name": "Public", "max_ttl_seconds": 86400}),
        )
        .await;
    assert_eq!((&r.json["name"], &r.json["max_ttl_seconds"]), (&json!("Public"), &json!(86400)));

    let r = app.get("/api/v1/profiles", &app.viewer).await;
    assert_eq!((ids(&r.json["data"]), &r.json["total"]), (vec![id.clone(), "prof-short".into()], &json!(2)));
    app.delete("/api/v1/profiles/prof-short", &app.operator).await.expect(204, None);
    app.get("/api/v1/profiles/prof-short", &app.viewer).await.expect(404, Some("not_found"));
    app.delete("/api/v1/profiles/prof-short", &app.operator).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/profiles/prof-short", &app.operator, &json!({"name": "x"}))
        .await
        .expect(404, Some("not_found"));
}

#[tokio::test]
async fn profile_errors_name_the_field() {
    let owned = TestApp::new().await;
    let app = &owned;
    let post = |extra: Value| {
        let body = with(json!({"name": "P"}), extra);
        async move { app.post_json("/api/v1/profiles", &app.operator, &body).await }
    };
    let cases = [
        (json!({"allowed_key_algorithms": []}), "allowed_key_algorithms"),
        (json!({"allowed_key_algorithms": [{"algorithm": "RSA", "min_size": 1024}]}), "allowed_key_algorithms"),
        (json!({"allowed_key_algorithms": [{"algorithm": "RSA", "min_size": 16384}]}), "allowed_key_algorithms"),
        (json!({"allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 521}]}), "allowed_key_algorithms"),
        (json!({"allowed_key_algorithms": [{"algorithm": "DSA"}]}), "allowed_key_algorithms[0].algorithm"),
        (
            json!({"allowed_key_algorithms": [{"algorithm": "RSA", "min_size": -1}]}),
            "allowed_key_algorithms[0].min_size",
        ),
        (json!({"max_ttl_seconds": -1}), "max_ttl_seconds"),
        (json!({"max_ttl_seconds": 100_i64 * 366 * 86_400 + 1}), "max_ttl_seconds"),
        (json!({"allow_short_lived": true}), "max_ttl_seconds"),
        (json!({"allow_short_lived": true, "max_ttl_seconds": 3600}), "max_ttl_seconds"),
        (json!({"allowed_ekus": []}), "allowed_ekus"),
        (json!({"allowed_ekus": ["anyUsage"]}), "allowed_ekus[0]"),
        (json!({"required_san_patterns": ["ok.example.com", "bad..example.com"]}), "required_san_patterns"),
        (json!({"key_mode": "hsm"}), "key_mode"),
        (json!({"acme_auth_mode": "none"}), "acme_auth_mode"),
        (json!({"name": ""}), "name"),
    ];
    for (extra, field) in cases {
        let r = post(extra.clone()).await;
        assert_eq!(r.status, 400, "{extra}: {}", r.json);
        r.expect_bad_field(field);
    }
    let r = post(json!({"required_san_patterns": ["ok.example.com", "bad..example.com"]})).await;
    assert!(r.message().contains("[1]"), "the message names the element: {}", r.message());
    post(json!({"allow_short_lived": true, "max_ttl_seconds": 3599})).await.expect(201, None);
    let r = post(json!({"name": "Q", "tls": true})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("tls"), "{}", r.message());

    // The update is validated as a whole.
    let id = crate::fixtures::profile(app, "Base").await;
    let path = &format!("/api/v1/profiles/{id}");
    let put = |body: Value| async move { app.put_json(path, &app.operator, &body).await };
    put(json!({"allow_short_lived": true})).await.expect_bad_field("max_ttl_seconds");
    put(json!({"allowed_ekus": []})).await.expect_bad_field("allowed_ekus");
    put(json!({"name": "P"})).await.expect(409, Some("conflict"));
    put(json!({"name": "Base", "allow_short_lived": true, "max_ttl_seconds": 60})).await.expect(200, None);
    put(json!({"max_ttl_seconds": 7200})).await.expect_bad_field("max_ttl_seconds");

    let r = post(json!({"name": "P"})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("'P'"), "{}", r.message());
    post(json!({"name": "New", "id": id})).await.expect(409, Some("conflict"));
    assert_eq!(app.get("/api/v1/profiles", &app.viewer).await.json["total"], 2);
}

#[tokio::test]
async fn referenced_profiles_and_policies_stay() {
    let app = TestApp::new().await;
    let profile = crate::fixtures::profile(&app, "Web").await;
    let spare = crate::fixtures::profile(&app, "Spare").await;
    let r = app
        .post_json(
            "/api/v1/renewal-policies",
            &app.operator,
            &json!({"name": "Bound", "certificate_profile_id": spare}),
        )
        .await;
    r.expect(201, None);
    assert_eq!(r.json["certificate_profile_id"], spare);
    let d = deps(&app, "x").await;
    cert(&app, &with(cert_body(&d, "web"), json!({"certificate_profile_id": profile}))).await;

    let r = app.delete(&format!("/api/v1/profiles/{profile}"), &app.operator).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("1 certificate"), "{}", r.message());
    let r = app.delete(&format!("/api/v1/profiles/{spare}"), &app.operator).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("1 renewal policy"), "{}", r.message());
    let r = app.delete(&format!("/api/v1/renewal-policies/{}", d.policy), &app.operator).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("1 certificate"), "{}", r.message());
    app.delete("/api/v1/renewal-policies/rp-bound", &app.operator).await.expect(204, None);
    app.delete(&format!("/api/v1/profiles/{spare}"), &app.operator).await.expect(204, None);
    app.get(&format!("/api/v1/profiles/{profile}"), &app.viewer).await.expect(200, None);
    app.get(&format!("/api/v1/renewal-policies/{}", d.policy), &app.viewer).await.expect(200, None);
}

#[tokio::test]
async fn renewal_policy_crud_and_defaults() {
    let app = TestApp::new().await;
    let r = app.post_json("/api/v1/renewal-policies", &app.operator, &json!({"name": "Web Servers"})).await;
    r.expect(201, None);
    let expected = json!({
        "id": "rp-web-servers", "name": "Web Servers", "renewal_window_days": 30, "auto_renew": true,
        "max_retries": 3, "retry_interval_seconds": 3600, "alert_thresholds_days": [30, 14, 7, 0],
        "alert_channels": {}, "alert_severity_map": {}, "certificate_profile_id": null,
        "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:00:00Z",
    });
    assert_eq!(r.json, expected);
    assert_eq!(app.get("/api/v1/renewal-policies/rp-web-servers", &app.viewer).await.json, expected);
    // A taken slug gets a suffix; a chosen ID is kept.
    let r = app.post_json("/api/v1/renewal-policies", &app.operator, &json!({"name": "web servers!"})).await;
    assert_eq!(r.json["id"], "rp-web-servers-2");
    let body = json!({
        "id": "rp-custom", "name": "Custom", "renewal_window_days": 365, "auto_renew": false, "max_retries": 0,
        "retry_interval_seconds": 60, "alert_thresholds_days": [7, 30, 7, 0],
        "alert_channels": {"critical": [" Slack ", "Email", "Slack"]}, "alert_severity_map": {"07": "warning", "0": "critical"},
    });
    let r = app.post_json("/api/v1/renewal-policies", &app.operator, &body).await;
    r.expect(201, None);
    assert_eq!(r.json["id"], "rp-custom");
    assert_eq!(r.json["alert_thresholds_days"], json!([30, 7, 0]), "thresholds are unique and descending");
    assert_eq!(r.json["alert_channels"], json!({"critical": ["Slack", "Email"]}));
    assert_eq!(r.json["alert_severity_map"], json!({"0": "critical", "7": "warning"}));
    assert_eq!((&r.json["auto_renew"], &r.json["max_retries"]), (&json!(false), &json!(0)));

    app.clock.advance(time::Duration::hours(1));
    let r = app.put_json("/api/v1/renewal-policies/rp-web-servers", &app.operator, &json!({"max_retries": 5})).await;
    r.expect(200, None);
    let mut after = expected.clone();
    after["max_retries"] = json!(5);
    after["updated_at"] = json!("2026-03-01T11:00:00Z");
    assert_eq!(r.json, after);
    let r = app.get("/api/v1/renewal-policies", &app.viewer).await;
    // Created at the same time, so listed by ID.
    assert_eq!(ids(&r.json["data"]), ["rp-custom", "rp-web-servers", "rp-web-servers-2"]);
    app.delete("/api/v1/renewal-policies/rp-custom", &app.operator).await.expect(204, None);
    app.get("/api/v1/renewal-policies/rp-custom", &app.viewer).await.expect(404, Some("not_found"));
    app.delete("/api/v1/renewal-policies/rp-custom", &app.operator).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/renewal-policies/rp-custom", &app.operator, &json!({})).await.expect(404, Some("not_found"));
}

#[tokio::test]
async fn renewal_policy_errors_name_the_field() {
    let owned = TestApp::new().await;
    let app = &owned;
    let post = |extra: Value| {
        let body = with(json!({"name": "P"}), extra);
        async move { app.post_json("/api/v1/renewal-policies", &app.operator, &body).await }
    };
    let cases = [
        (json!({"renewal_window_days": 0}), "renewal_window_days"),
        (json!({"renewal_window_days": 366}), "renewal_window_days"),
        (json!({"max_retries": -1}), "max_retries"),
        (json!({"max_retries": 11}), "max_retries"),
        (json!({"retry_interval_seconds": 59}), "retry_interval_seconds"),
        (json!({"retry_interval_seconds": 86_401}), "retry_interval_seconds"),
        (json!({"alert_thresholds_days": [30, 366]}), "alert_thresholds_days"),
        (json!({"alert_thresholds_days": [-1]}), "alert_thresholds_days"),
        (json!({"alert_severity_map": {"15": "warning"}}), "alert_severity_map"),
        (json!({"alert_severity_map": {"x": "warning"}}), "alert_severity_map"),
        (json!({"alert_severity_map": {"7": "loud"}}), "alert_severity_map.7"),
        (json!({"alert_channels": {"warning": ["Email", " "]}}), "alert_channels"),
        (json!({"certificate_profile_id": "prof-missing"}), "certificate_profile_id"),
        (json!({"auto_renew": "yes"}), "auto_renew"),
    ];
    for (extra, field) in cases {
        let r = post(extra.clone()).await;
        assert_eq!(r.status, 400, "{extra}: {}", r.json);
        r.expect_bad_field(field);
    }
    let r = post(json!({"alert_channels": {"urgent": ["Email"]}})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().starts_with("alert_channels") && r.message().contains("urgent"), "{}", r.message());
    post(json!({"renewal_window_days": 1, "max_retries": 10, "retry_interval_seconds": 86_400}))
        .await
        .expect(201, None);

    let r = post(json!({})).await;
    r.expect(409, Some("conflict"));
    post(json!({"name": "Q", "id": "rp-p"})).await.expect(409, Some("conflict"));
    let id = crate::fixtures::policy(app, "Other").await;
    let path = &format!("/api/v1/renewal-policies/{id}");
    let put = |body: Value| async move { app.put_json(path, &app.operator, &body).await };
    put(json!({"name": "P"})).await.expect(409, Some("conflict"));
    put(json!({"alert_severity_map": {"7": "critical"}})).await.expect(200, None);
    // Dropping the threshold a severity key names leaves the policy inconsistent.
    put(json!({"alert_thresholds_days": [30]})).await.expect_bad_field("alert_severity_map");
    put(json!({"renewal_window_days": 0})).await.expect_bad_field("renewal_window_days");
    put(json!({"certificate_profile_id": "prof-missing"})).await.expect_bad_field("certificate_profile_id");
    let r = app.get(&format!("/api/v1/renewal-policies/{id}"), &app.viewer).await;
    assert_eq!(
        (&r.json["alert_thresholds_days"], &r.json["renewal_window_days"]),
        (&json!([30, 14, 7, 0]), &json!(30))
    );
    assert_eq!(app.get("/api/v1/renewal-policies", &app.viewer).await.json["total"], 2);
}
