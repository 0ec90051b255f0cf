//! `/api/v1/apikeys`: admin only; the key is shown once and works at once.

use serde_json::json;

use crate::harness::{T0, TestApp};

#[tokio::test]
async fn admin_manages_keys() {
    let app = TestApp::new().await;
    let r = app.get("/api/v1/apikeys", &app.admin).await;
    r.expect(200, None);
    assert_eq!(r.json["total"], 3);
    let names: Vec<&str> = r.json["data"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "operator", "viewer"]);
    for k in r.json["data"].as_array().unwrap() {
        assert!(k.get("key").is_none() && k.get("key_hash").is_none(), "a listed key exposes a secret: {k}");
    }
    assert!(!String::from_utf8_lossy(&r.body).contains(&app.admin[4..]), "the admin key leaked into the list");

    let r = app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "ci", "role": "operator"})).await;
    r.expect(201, None);
    let key = r.json["key"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("cck_") && key.len() >= 40, "{key}");
    assert_eq!((&r.json["name"], &r.json["role"]), (&json!("ci"), &json!("operator")));
    assert_eq!(r.json["created_at"], T0.format(&time::format_description::well_known::Rfc3339).unwrap());

    let check = app.get("/api/v1/auth/check", &key).await;
    check.expect(200, None);
    assert_eq!((&check.json["user"], &check.json["role"]), (&json!("ci"), &json!("operator")));
    app.post_json("/api/v1/teams", &key, &json!({"name": "by ci"})).await.expect(201, None);
    let listed = app.get("/api/v1/apikeys", &app.admin).await;
    let ci = listed.json["data"].as_array().unwrap().iter().find(|k| k["name"] == "ci").cloned().unwrap();
    assert_eq!(ci["created_by"], "admin", "the creating key is recorded");
    assert!(!String::from_utf8_lossy(&listed.body).contains(&key[4..]), "a created key is never listed");

    app.delete(&format!("/api/v1/apikeys/{id}"), &app.admin).await.expect(204, None);
    app.get("/api/v1/auth/check", &key).await.expect(401, Some("unauthorized"));
    app.delete(&format!("/api/v1/apikeys/{id}"), &app.admin).await.expect(404, Some("not_found"));
}

#[tokio::test]
async fn only_admins_manage_keys() {
    let app = TestApp::new().await;
    let admin_key_id = app.get("/api/v1/apikeys", &app.admin).await.json["data"][0]["id"].as_str().unwrap().to_owned();
    for key in [&app.operator, &app.viewer] {
        let attempts = [
            app.get("/api/v1/apikeys", key).await,
            app.post_json("/api/v1/apikeys", key, &json!({"name": "mine", "role": "admin"})).await,
            app.delete(&format!("/api/v1/apikeys/{admin_key_id}"), key).await,
        ];
        for r in &attempts {
            r.expect(403, Some("forbidden"));
            assert!(r.message().contains("admin key"), "{}", r.message());
        }
    }
    let r = app.get("/api/v1/apikeys", &app.admin).await;
    assert_eq!(r.json["total"], 3, "no key was created or deleted");
    app.get("/api/v1/auth/check", &app.admin).await.expect(200, None);
}

#[tokio::test]
async fn key_input_errors() {
    let app = TestApp::new().await;
    app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "x", "role": "root"})).await.expect_bad_field("role");
    app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "", "role": "viewer"})).await.expect_bad_field("name");
    let r = app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "x"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("`role`"), "{}", r.message());
    let r = app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "x", "role": "viewer", "key": "mine"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("`key`"), "a caller cannot choose the key: {}", r.message());
    let r = app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "viewer", "role": "viewer"})).await;
    r.expect(409, Some("conflict"));
    app.delete("/api/v1/apikeys/missing", &app.admin).await.expect(404, Some("not_found"));
    assert_eq!(app.get("/api/v1/apikeys", &app.admin).await.json["total"], 3);
}

#[tokio::test]
async fn admins_cannot_lock_themselves_out() {
    let app = TestApp::new().await;
    let keys = app.get("/api/v1/apikeys", &app.admin).await;
    let admin_id = keys.json["data"].as_array().unwrap().iter().find(|k| k["name"] == "admin").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A key cannot delete itself.
    let r = app.delete(&format!("/api/v1/apikeys/{admin_id}"), &app.admin).await;
    r.expect(409, Some("conflict"));
    assert!(r.json["message"].as_str().unwrap().contains("cannot delete itself"));
    // Another admin may delete it; the survivor is then the last admin and cannot delete itself.
    let second = app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "second", "role": "admin"})).await;
    let second_key = second.json["key"].as_str().unwrap().to_owned();
    let second_id = second.json["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v1/apikeys/{admin_id}"), &second_key).await.expect(204, None);
    let r = app.delete(&format!("/api/v1/apikeys/{second_id}"), &app.admin).await;
    assert_eq!(r.status, 401, "the deleted key no longer authenticates");
    let r = app.delete(&format!("/api/v1/apikeys/{second_id}"), &second_key).await;
    r.expect(409, Some("conflict"));
}
