//! `/api/v1/issuers`: CRUD, secrets sealed at rest and redacted on read, and the errors.

use axum::http::Method;
use serde_json::{Value, json};
use sqlx::Row;

use certctl_server::secrets::SecretBox;

use crate::fixtures::{Deps, OpenApp, cert, cert_body, deps, issuer};
use crate::harness::TestApp;

const TOKEN: &str = "s3cr3t-t0ken-value";
const PASSWORD: &str = "hunter2-passw0rd";

/// The issuer's stored row: the `config` column and the sealed `encrypted_config`.
async fn stored_row(app: &OpenApp, id: &str) -> (String, Vec<u8>) {
    let mut raw = app.raw().await;
    let row = sqlx::query("SELECT config, encrypted_config FROM issuers WHERE id = $1")
        .bind(id)
        .fetch_one(&mut raw)
        .await
        .expect("the issuer row exists");
    (row.get("config"), row.get("encrypted_config"))
}

/// The full configuration, decrypted as the server would.
async fn opened(app: &OpenApp, id: &str) -> Value {
    let sealed = app.store().issuer_sealed_config(id).await.unwrap().expect("a sealed config is stored");
    let plain = app.state.secrets.open(&format!("issuer:{id}"), &sealed).expect("the sealed config opens");
    serde_json::from_slice(&plain).unwrap()
}

#[tokio::test]
async fn secrets_are_sealed_redacted_and_kept() {
    let app = OpenApp::new().await;
    let config =
        json!({"url": "https://vault.example.com", "token": TOKEN, "auth": {"password": PASSWORD, "user": "ci"}});
    let r = app
        .send(
            Method::POST,
            "/api/v1/issuers",
            &app.admin,
            Some(&json!({"name": "Vault", "type": "VaultPKI", "config": config})),
        )
        .await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("iss-"), "{id}");
    assert_eq!(
        r.json["config"],
        json!({"url": "https://vault.example.com", "token": "********", "auth": {"password": "********", "user": "ci"}})
    );
    assert_eq!(
        (&r.json["type"], &r.json["enabled"], &r.json["source"]),
        (&json!("VaultPKI"), &json!(true), &json!("database"))
    );
    for body in [&r.body, &app.get(&format!("/api/v1/issuers/{id}")).await.body, &app.get("/api/v1/issuers").await.body]
    {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "a secret leaked: {text}");
    }

    let (column, sealed) = stored_row(&app, &id).await;
    assert!(!column.contains(TOKEN) && !column.contains(PASSWORD), "the config column holds a secret: {column}");
    assert!(column.contains("https://vault.example.com"), "the config column keeps the non-secret values");
    assert!(!sealed.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()), "the sealed config is not encrypted");
    assert_eq!(app.store().issuer_sealed_config(&id).await.unwrap(), Some(sealed.clone()));
    assert_eq!(opened(&app, &id).await, config, "the sealed document is the full configuration");
    assert!(app.state.secrets.open("issuer:other", &sealed).is_err(), "the sealed config is bound to its issuer");

    // Placeholders keep the stored secrets while other values change.
    let update = json!({"config": {"url": "https://vault2.example.com", "token": "********", "auth": {"password": "********", "user": "cd"}}});
    let r = app.send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&update)).await;
    r.expect(200, None);
    assert_eq!(r.json["config"]["token"], "********");
    assert_eq!(
        opened(&app, &id).await,
        json!({"url": "https://vault2.example.com", "token": TOKEN, "auth": {"password": PASSWORD, "user": "cd"}})
    );

    // A placeholder for a key that was never stored names that key, and changes nothing.
    let (_, before) = stored_row(&app, &id).await;
    let bad = json!({"config": {"url": "x", "api_key": "********"}});
    app.send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&bad))
        .await
        .expect_bad_field("config.api_key");
    let bad = json!({"config": {"auth": {"secret": "********"}}});
    app.send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&bad))
        .await
        .expect_bad_field("config.auth.secret");
    assert_eq!(stored_row(&app, &id).await.1, before);

    // Without `config` the stored one is untouched; a new secret replaces the old one.
    let r = app.send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&json!({"enabled": false}))).await;
    r.expect(200, None);
    assert_eq!(r.json["enabled"], false);
    assert_eq!(stored_row(&app, &id).await.1, before);
    let update = json!({"config": {"token": "n3w-t0ken"}});
    app.send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&update)).await.expect(200, None);
    assert_eq!(opened(&app, &id).await, json!({"token": "n3w-t0ken"}), "the config is replaced as a whole");

    // Secrets sealed under another key cannot be kept, only replaced.
    let foreign = SecretBox::from_key(&[9u8; 32]).seal(&format!("issuer:{id}"), br#"{"token": "old"}"#);
    let mut raw = app.raw().await;
    sqlx::query("UPDATE issuers SET encrypted_config = $1 WHERE id = $2")
        .bind(&foreign)
        .bind(&id)
        .execute(&mut raw)
        .await
        .unwrap();
    let keep = json!({"config": {"token": "********"}});
    let r = app.send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&keep)).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().starts_with("config:"), "{}", r.message());
    assert_eq!(stored_row(&app, &id).await.1, foreign);
    let replace = json!({"config": {"token": "fresh"}});
    app.send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&replace)).await.expect(200, None);
    assert_eq!(opened(&app, &id).await, json!({"token": "fresh"}));

    // A placeholder at creation has nothing behind it.
    let body = json!({"name": "Other", "type": "ACME", "config": {"eab_hmac": "********"}});
    app.send(Method::POST, "/api/v1/issuers", &app.admin, Some(&body)).await.expect_bad_field("config.eab_hmac");
    assert_eq!(app.get("/api/v1/issuers").await.json["total"], 1);
}

#[tokio::test]
async fn issuer_crud() {
    let app = TestApp::new().await;
    let body =
        json!({"id": "iss-local", "name": "Local", "type": "local", "config": {"validity_days": 90}, "enabled": false});
    let r = app.post_json("/api/v1/issuers", &app.operator, &body).await;
    r.expect(201, None);
    let created = r.json.clone();
    assert_eq!(created["id"], "iss-local");
    assert_eq!(created["type"], "GenericCA", "`local` is an alias of GenericCA");
    assert_eq!((&created["enabled"], &created["test_status"]), (&json!(false), &json!("untested")));
    assert_eq!(created["config"], json!({"validity_days": 90}));
    assert_eq!(created["created_at"], "2026-03-01T10:00:00Z");
    assert!(created["last_tested_at"].is_null());
    app.clock.advance(time::Duration::seconds(1));
    let r = app.post_json("/api/v1/issuers", &app.operator, &json!({"name": "Bare", "type": "local_ca"})).await;
    r.expect(201, None);
    assert_eq!(
        (&r.json["type"], &r.json["config"], &r.json["enabled"]),
        (&json!("GenericCA"), &json!({}), &json!(true))
    );
    let bare = r.json["id"].as_str().unwrap().to_owned();

    assert_eq!(app.get("/api/v1/issuers/iss-local", &app.viewer).await.json, created);
    let r = app.get("/api/v1/issuers?per_page=1&page=2", &app.viewer).await;
    r.expect(200, None);
    assert_eq!((&r.json["total"], &r.json["data"][0]["id"]), (&json!(2), &json!(bare)));

    app.clock.advance(time::Duration::seconds(59));
    let r =
        app.put_json("/api/v1/issuers/iss-local", &app.operator, &json!({"name": "Local CA", "enabled": true})).await;
    r.expect(200, None);
    assert_eq!((&r.json["name"], &r.json["enabled"]), (&json!("Local CA"), &json!(true)));
    assert_eq!(r.json["config"], json!({"validity_days": 90}), "an absent config is kept");
    assert_eq!(
        (&r.json["created_at"], &r.json["updated_at"]),
        (&json!("2026-03-01T10:00:00Z"), &json!("2026-03-01T10:01:00Z"))
    );

    app.delete(&format!("/api/v1/issuers/{bare}"), &app.operator).await.expect(204, None);
    app.get(&format!("/api/v1/issuers/{bare}"), &app.viewer).await.expect(404, Some("not_found"));
    app.delete(&format!("/api/v1/issuers/{bare}"), &app.operator).await.expect(404, Some("not_found"));
    assert_eq!(app.get("/api/v1/issuers", &app.viewer).await.json["total"], 1);
}

#[tokio::test]
async fn issuer_errors() {
    let owned = TestApp::new().await;
    let app = &owned;
    let id = issuer(app, "One").await;
    let other = issuer(app, "Two").await;
    let post = |body: Value| async move { app.post_json("/api/v1/issuers", &app.operator, &body).await };

    post(json!({"name": "X", "type": "Bogus"})).await.expect_bad_field("type");
    post(json!({"name": "X", "type": 5})).await.expect_bad_field("type");
    post(json!({"name": "", "type": "ACME"})).await.expect_bad_field("name");
    post(json!({"name": "X", "type": "ACME", "config": "url=x"})).await.expect_bad_field("config");
    post(json!({"name": "X", "type": "ACME", "id": "a b"})).await.expect_bad_field("id");
    let r = post(json!({"name": "X"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("`type`"), "{}", r.message());
    let r = post(json!({"name": "X", "type": "ACME", "secret": "x"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("secret"), "{}", r.message());

    // StepCA has no typed configuration yet, so only the name can be in the way.
    let r = post(json!({"name": "One", "type": "StepCA"})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("One"), "{}", r.message());
    post(json!({"id": id, "name": "Three", "type": "StepCA"})).await.expect(409, Some("conflict"));
    app.put_json(&format!("/api/v1/issuers/{other}"), &app.operator, &json!({"name": "One"}))
        .await
        .expect(409, Some("conflict"));
    app.put_json(&format!("/api/v1/issuers/{other}"), &app.operator, &json!({"name": "Two", "enabled": true}))
        .await
        .expect(200, None);
    app.put_json(&format!("/api/v1/issuers/{id}"), &app.operator, &json!({"type": "ACME"}))
        .await
        .expect(400, Some("bad_request"));

    app.get("/api/v1/issuers/missing", &app.viewer).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/issuers/missing", &app.operator, &json!({"name": "x"})).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/issuers/missing", &app.operator, &json!({"config": {"token": "********"}}))
        .await
        .expect(404, Some("not_found"));
    app.delete("/api/v1/issuers/missing", &app.operator).await.expect(404, Some("not_found"));

    let d = deps(app, "x").await;
    cert(app, &cert_body(&Deps { issuer: id.clone(), ..d }, "web")).await;
    let r = app.delete(&format!("/api/v1/issuers/{id}"), &app.operator).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("1 certificate"), "the message names what refers to it: {}", r.message());
    app.get(&format!("/api/v1/issuers/{id}"), &app.viewer).await.expect(200, None);
    assert_eq!(app.get("/api/v1/issuers", &app.viewer).await.json["total"], 3);
}

#[tokio::test]
async fn values_under_a_secret_key_are_secret() {
    let app = OpenApp::new().await;
    let config = json!({"credentials": {"client_id": "ci", "client_value": TOKEN}, "private_key": {"pem": PASSWORD}});
    let r = app
        .send(
            Method::POST,
            "/api/v1/issuers",
            &app.admin,
            Some(&json!({"name": "GCP", "type": "GoogleCAS", "config": config})),
        )
        .await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let (column, _) = stored_row(&app, &id).await;
    for text in [String::from_utf8_lossy(&r.body).into_owned(), column] {
        assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "a value under a secret key is shown: {text}");
    }
    // What a client reads back, sent back unchanged, keeps the secrets.
    let read = app.get(&format!("/api/v1/issuers/{id}")).await.json;
    let r = app
        .send(Method::PUT, &format!("/api/v1/issuers/{id}"), &app.admin, Some(&json!({"config": read["config"]})))
        .await;
    r.expect(200, None);
    assert_eq!(opened(&app, &id).await, config);
}

#[tokio::test]
async fn a_local_ca_issuer_tests_ok_until_its_ca_expires() {
    let app = TestApp::new().await;
    let body = json!({"name": "short", "type": "GenericCA", "config": {"validity_days": 1, "ca_validity_days": 2}});
    let r = app.post_json("/api/v1/issuers", &app.operator, &body).await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let test = format!("/api/v1/issuers/{id}/test");
    app.post_json(&test, &app.viewer, &json!({})).await.expect(403, Some("forbidden"));
    app.post_json("/api/v1/issuers/iss-missing/test", &app.operator, &json!({})).await.expect(404, Some("not_found"));

    let r = app.post_json(&test, &app.operator, &json!({})).await;
    r.expect(200, None);
    assert_eq!(r.json["status"], "ok");
    let message = r.json["message"].as_str().unwrap();
    assert!(message.starts_with("signing CA 'ca-") && message.contains("valid until"), "{message}");
    let issuer = app.get(&format!("/api/v1/issuers/{id}"), &app.viewer).await;
    assert_eq!(
        (&issuer.json["test_status"], &issuer.json["last_tested_at"]),
        (&json!("success"), &json!("2026-03-01T10:00:00Z"))
    );

    app.clock.advance(time::Duration::days(3));
    let r = app.post_json(&test, &app.admin, &json!({})).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("cannot issue") && r.message().contains("expired"), "{}", r.message());
    let issuer = app.get(&format!("/api/v1/issuers/{id}"), &app.viewer).await;
    assert_eq!(issuer.json["test_status"], "failed");
}

#[tokio::test]
async fn issuer_types_certctl_cannot_issue_through_fail_the_test() {
    let app = TestApp::new().await;
    let body = json!({"name": "vault", "type": "VaultPKI", "config": {"url": "https://vault.example.com"}});
    let r = app.post_json("/api/v1/issuers", &app.operator, &body).await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap();
    let r = app.post_json(&format!("/api/v1/issuers/{id}/test"), &app.operator, &json!({})).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("certctl cannot issue through type VaultPKI yet"), "{}", r.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acme_issuer_tests_its_directory() {
    let ca_server = crate::acme_peers::Server::start(crate::live::free_port()).await;
    let app = TestApp::on_with(certctl_store::Backend::Sqlite, &[("allow_loopback_targets", "true")]).await.unwrap();
    let bundle = std::fs::read_to_string(&ca_server.ca).unwrap();
    let acme = |name: &str, directory: String| {
        let body = json!({"name": name, "type": "ACME",
                          "config": {"directory_url": directory, "ca_bundle_pem": bundle}});
        let app = &app;
        async move {
            let r = app.post_json("/api/v1/issuers", &app.operator, &body).await;
            r.expect(201, None);
            let id = r.json["id"].as_str().unwrap().to_owned();
            app.post_json(&format!("/api/v1/issuers/{id}/test"), &app.operator, &json!({})).await
        }
    };
    let r = acme("upstream", format!("{}/acme/directory", ca_server.url)).await;
    r.expect(200, None);
    assert!(r.json["message"].as_str().unwrap().contains("/acme/directory answers"), "{}", r.json);

    // Something that answers JSON but is no ACME directory.
    let r = acme("not acme", format!("{}/health", ca_server.url)).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("not an ACME directory"), "{}", r.message());
    // Nothing listening.
    let r = acme("gone", format!("https://127.0.0.1:{}/dir", crate::live::free_port())).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("fetching the directory failed"), "{}", r.message());
    app.finish().await;
}
