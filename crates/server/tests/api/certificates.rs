//! `/api/v1/certificates`: create, read, partial update, archive, references, versions,
//! deployments and target mappings.

use serde_json::{Value, json};
use time::macros::datetime;

use certctl_api::CertificateStatus;
use certctl_server::clock::Clock;
use certctl_store::{Actor, NewVersion};

use crate::fixtures::{agent, cert, cert_body, deps, ids, profile, target, with};
use crate::harness::TestApp;

fn version(cert: &str, serial: &str, not_after: time::OffsetDateTime) -> NewVersion {
    NewVersion {
        certificate_id: cert.to_owned(),
        serial_number: serial.to_owned(),
        not_before: not_after - time::Duration::days(90),
        not_after,
        fingerprint_sha256: format!("{serial:0>64}"),
        pem_chain: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
        csr_pem: None,
        key_algorithm: "ECDSA".into(),
        key_size: 256,
    }
}

#[tokio::test]
async fn certificate_lifecycle() {
    let app = TestApp::new().await;
    let d = deps(&app, "x").await;
    let prof = profile(&app, "Web").await;
    let a = agent(&app.store, "web1").await;
    let t1 = target(&app, "t1", &a).await;
    let t2 = target(&app, "t2", &a).await;
    let body = with(
        cert_body(&d, "api"),
        json!({"sans": ["api.example.com", "10.0.0.5", "ops@example.com", "spiffe://corp/api"], "environment": "prod",
               "tags": {"tier": "1"}, "certificate_profile_id": prof, "target_ids": [t2, t1, t2]}),
    );
    let r = app.post_json("/api/v1/certificates", &app.operator, &body).await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cert-"), "{id}");
    let created = r.json.clone();
    let mut mapped = vec![t1.clone(), t2.clone()];
    mapped.sort();
    assert_eq!(created["target_ids"], json!(mapped), "mappings are unique and sorted");
    assert_eq!(
        (&created["status"], &created["source"], &created["environment"], &created["certificate_profile_id"]),
        (&json!("Pending"), &json!("API"), &json!("prod"), &json!(prof))
    );
    assert_eq!((&created["common_name"], &created["tags"]), (&json!("api.example.com"), &json!({"tier": "1"})));
    assert_eq!(created["sans"].as_array().unwrap().len(), 4);
    for absent in ["expires_at", "last_renewal_at", "last_deployment_at", "revoked_at", "revocation_reason"] {
        assert!(created[absent].is_null(), "{absent}");
    }
    assert_eq!(app.get(&format!("/api/v1/certificates/{id}"), &app.viewer).await.json, created);

    // A partial update keeps what it does not name.
    app.clock.advance(time::Duration::minutes(3));
    let path = format!("/api/v1/certificates/{id}");
    let r = app.put_json(&path, &app.operator, &json!({"environment": "staging"})).await;
    r.expect(200, None);
    let mut expected = created.clone();
    expected["environment"] = json!("staging");
    expected["updated_at"] = json!("2026-03-01T10:03:00Z");
    assert_eq!(r.json, expected);
    // `target_ids` replaces the mapping set; an empty list clears it.
    let r = app.put_json(&path, &app.operator, &json!({"target_ids": [t1]})).await;
    assert_eq!(r.json["target_ids"], json!([t1]));
    assert_eq!(r.json["environment"], "staging");
    let d2 = deps(&app, "y").await;
    let update = json!({"name": "api-2", "common_name": "api2.example.com", "sans": [], "owner_id": d2.owner,
        "team_id": d2.team, "issuer_id": d2.issuer, "renewal_policy_id": d2.policy, "tags": {}, "target_ids": []});
    let r = app.put_json(&path, &app.operator, &update).await;
    r.expect(200, None);
    for field in
        ["name", "common_name", "sans", "owner_id", "team_id", "issuer_id", "renewal_policy_id", "tags", "target_ids"]
    {
        assert_eq!(r.json[field], update[field], "{field}");
    }
    assert_eq!(r.json["certificate_profile_id"], json!(prof));

    // Archiving is a soft delete.
    app.clock.advance(time::Duration::minutes(1));
    let r = app.delete(&path, &app.operator).await;
    r.expect(204, None);
    assert!(r.body.is_empty());
    let r = app.get(&path, &app.viewer).await;
    r.expect(200, None);
    assert_eq!((&r.json["status"], &r.json["updated_at"]), (&json!("Archived"), &json!("2026-03-01T10:04:00Z")));
    let r = app.get("/api/v1/certificates?status=Archived", &app.viewer).await;
    assert_eq!(ids(&r.json["data"]), std::slice::from_ref(&id));
    app.delete("/api/v1/certificates/missing", &app.operator).await.expect(404, Some("not_found"));
    app.get("/api/v1/certificates/missing", &app.viewer).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/certificates/missing", &app.operator, &json!({"environment": "x"}))
        .await
        .expect(404, Some("not_found"));
}

#[tokio::test]
async fn certificate_errors_name_the_field() {
    let owned = TestApp::new().await;
    let app = &owned;
    let d = deps(app, "x").await;
    let post = |extra: Value| {
        let body = with(cert_body(&d, "web"), extra);
        async move { app.post_json("/api/v1/certificates", &app.operator, &body).await }
    };
    let references = ["owner_id", "team_id", "issuer_id", "renewal_policy_id", "certificate_profile_id"];
    for field in references {
        let r = post(json!({ field: "missing-ref" })).await;
        r.expect_bad_field(field);
        assert!(r.message().contains("missing-ref"), "{}", r.message());
    }
    let a = agent(&app.store, "web1").await;
    let t = target(app, "t", &a).await;
    post(json!({"target_ids": [t, "target-missing"]})).await.expect_bad_field("target_ids");
    post(json!({"common_name": "bad..example.com"})).await.expect_bad_field("common_name");
    post(json!({"common_name": ""})).await.expect_bad_field("common_name");
    post(json!({"sans": ["ok.example.com", "bad name.example.com"]})).await.expect_bad_field("sans[1]");
    post(json!({"sans": "ok.example.com"})).await.expect_bad_field("sans");
    post(json!({"name": ""})).await.expect_bad_field("name");
    post(json!({"owner_id": "has space"})).await.expect_bad_field("owner_id");
    post(json!({"tags": {"tier": 1}})).await.expect_bad_field("tags.tier");
    post(json!({"target_ids": ["a/b"]})).await.expect_bad_field("target_ids[0]");
    let mut missing = cert_body(&d, "web");
    missing.as_object_mut().unwrap().remove("issuer_id");
    let r = app.post_json("/api/v1/certificates", &app.operator, &missing).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("`issuer_id`"), "{}", r.message());
    let r = post(json!({"status": "Active"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("status"), "the status is not the client's to set: {}", r.message());
    assert_eq!(app.get("/api/v1/certificates", &app.viewer).await.json["total"], 0, "nothing refused was created");

    let id = cert(app, &cert_body(&d, "web")).await;
    let r = post(json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("web"), "{}", r.message());
    post(json!({"name": "other", "id": id})).await.expect(409, Some("conflict"));
    let other = cert(app, &cert_body(&d, "other")).await;

    let path = &format!("/api/v1/certificates/{other}");
    let before = app.get(path, &app.viewer).await.json;
    app.clock.advance(time::Duration::minutes(1));
    let put = |body: Value| async move { app.put_json(path, &app.operator, &body).await };
    put(json!({"name": "web"})).await.expect(409, Some("conflict"));
    for field in references {
        put(json!({ field: "missing-ref" })).await.expect_bad_field(field);
    }
    put(json!({"target_ids": ["target-missing"]})).await.expect_bad_field("target_ids");
    put(json!({"common_name": "-bad.example.com"})).await.expect_bad_field("common_name");
    put(json!({"sans": ["a.example.com", "b.example.com", "*"]})).await.expect_bad_field("sans[2]");
    put(json!({"status": "Active"})).await.expect(400, Some("bad_request"));
    assert_eq!(app.get(path, &app.viewer).await.json, before, "refused updates change nothing");
}

#[tokio::test]
async fn versions_are_listed_newest_first() {
    let app = TestApp::new().await;
    let d = deps(&app, "x").await;
    let id = cert(&app, &cert_body(&d, "web")).await;
    let path = format!("/api/v1/certificates/{id}/versions");
    let r = app.get(&path, &app.viewer).await;
    r.expect(200, None);
    assert_eq!((&r.json["data"], &r.json["total"]), (&json!([]), &json!(0)));

    let first = datetime!(2026-06-01 00:00:00 UTC);
    let v1 = app
        .store
        .add_version(&version(&id, "01", first), CertificateStatus::Active, &Actor::system(), app.clock.now())
        .await;
    let v1 = v1.unwrap();
    app.clock.advance(time::Duration::days(60));
    let second = datetime!(2026-08-01 00:00:00 UTC);
    let v2 = app
        .store
        .add_version(&version(&id, "02", second), CertificateStatus::Active, &Actor::system(), app.clock.now())
        .await;
    let v2 = v2.unwrap();

    let r = app.get(&path, &app.viewer).await;
    r.expect(200, None);
    assert_eq!(ids(&r.json["data"]), [v2.id.clone(), v1.id.clone()]);
    assert_eq!(r.json["total"], 2);
    let newest = &r.json["data"][0];
    assert_eq!((&newest["serial_number"], &newest["not_after"]), (&json!("02"), &json!("2026-08-01T00:00:00Z")));
    assert_eq!(
        (&newest["certificate_id"], &newest["key_algorithm"], &newest["key_size"]),
        (&json!(id), &json!("ECDSA"), &json!(256))
    );
    let r = app.get(&format!("{path}?page_size=1"), &app.viewer).await;
    assert_eq!(ids(&r.json["data"]), std::slice::from_ref(&v2.id));
    let cursor = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r = app.get(&format!("{path}?page_size=1&cursor={cursor}"), &app.viewer).await;
    assert_eq!(ids(&r.json["data"]), [v1.id]);
    assert!(r.json["next_cursor"].is_null());

    let cert = app.get(&format!("/api/v1/certificates/{id}"), &app.viewer).await;
    assert_eq!((&cert.json["status"], &cert.json["expires_at"]), (&json!("Active"), &json!("2026-08-01T00:00:00Z")));
    app.get("/api/v1/certificates/missing/versions", &app.viewer).await.expect(404, Some("not_found"));
    app.get(&format!("{path}?per_page=0"), &app.viewer).await.expect_bad_field("per_page");
}

#[tokio::test]
async fn deployments_and_target_mappings() {
    let app = TestApp::new().await;
    let d = deps(&app, "x").await;
    let id = cert(&app, &cert_body(&d, "web")).await;
    let a = agent(&app.store, "web1").await;
    let t1 = target(&app, "t1", &a).await;
    let t2 = target(&app, "t2", &a).await;
    let deployments = format!("/api/v1/certificates/{id}/deployments");
    let r = app.get(&deployments, &app.viewer).await;
    r.expect(200, None);
    assert_eq!(r.json, json!({"data": [], "total": 0}));

    let map = |t: &str| format!("/api/v1/certificates/{id}/targets/{t}");
    let r = app.put_json(&map(&t2), &app.operator, &json!({})).await;
    r.expect(204, None);
    assert!(r.body.is_empty());
    app.put_json(&map(&t2), &app.operator, &json!({})).await.expect(204, None);
    app.put_json(&map(&t1), &app.operator, &json!({})).await.expect(204, None);
    let r = app.get(&deployments, &app.viewer).await;
    let mut both = vec![t1.clone(), t2.clone()];
    both.sort();
    assert_eq!((ids(&r.json["data"]), &r.json["total"]), (both.clone(), &json!(2)));
    assert_eq!(r.json["data"][0], app.get(&format!("/api/v1/targets/{}", both[0]), &app.viewer).await.json);
    assert_eq!(app.get(&format!("/api/v1/certificates/{id}"), &app.viewer).await.json["target_ids"], json!(both));

    app.delete(&map(&t2), &app.operator).await.expect(204, None);
    let r = app.delete(&map(&t2), &app.operator).await;
    r.expect(404, Some("not_found"));
    assert!(r.message().contains(&t2), "{}", r.message());
    assert_eq!(ids(&app.get(&deployments, &app.viewer).await.json["data"]), std::slice::from_ref(&t1));

    app.put_json(&map("target-missing"), &app.operator, &json!({})).await.expect(404, Some("not_found"));
    app.delete(&map("target-missing"), &app.operator).await.expect(404, Some("not_found"));
    app.put_json(&format!("/api/v1/certificates/missing/targets/{t1}"), &app.operator, &json!({}))
        .await
        .expect(404, Some("not_found"));
    app.delete(&format!("/api/v1/certificates/missing/targets/{t1}"), &app.operator)
        .await
        .expect(404, Some("not_found"));
    app.get("/api/v1/certificates/missing/deployments", &app.viewer).await.expect(404, Some("not_found"));
    app.put_json(&map(&t2), &app.viewer, &json!({})).await.expect(403, Some("forbidden"));
    app.delete(&map(&t1), &app.viewer).await.expect(403, Some("forbidden"));
    assert_eq!(app.get(&deployments, &app.viewer).await.json["total"], 1);
}
