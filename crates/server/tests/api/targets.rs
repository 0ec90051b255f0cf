//! `/api/v1/targets`: CRUD on registered agents, configuration checks, secrets and conflicts.

use certctl_api::JobType;
use certctl_store::{Actor, NewJob};
use serde_json::{Value, json};

use crate::fixtures::{agent, cert, cert_body, deps, ids, target, with};
use crate::harness::{T0, TestApp};

#[tokio::test]
async fn target_crud() {
    let app = TestApp::new().await;
    let a1 = agent(&app.store, "web1").await;
    let a2 = agent(&app.store, "web2").await;
    let config = json!({
        "keystore_path": "/etc/tomcat/site.p12",
        "keystore_password": "pfx-s3cret",
        "reload_command": "systemctl reload tomcat",
    });
    let body = json!({"name": "nginx", "type": "JavaKeystore", "agent_id": a1, "config": config});
    let r = app.post_json("/api/v1/targets", &app.operator, &body).await;
    r.expect(201, None);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("target-"), "{id}");
    assert_eq!(r.json["config"]["keystore_password"], "********");
    assert_eq!(r.json["config"]["keystore_path"], "/etc/tomcat/site.p12");
    assert_eq!(
        (&r.json["agent_id"], &r.json["type"], &r.json["enabled"]),
        (&json!(a1), &json!("JavaKeystore"), &json!(true))
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("pfx-s3cret"));
    let created = r.json.clone();
    assert_eq!(app.get(&format!("/api/v1/targets/{id}"), &app.viewer).await.json, created);

    let files = json!({"cert_path": "/srv/a.pem", "key_path": "/srv/a.key"});
    let body = json!({"id": "target-file", "name": "files", "type": "File", "agent_id": a2, "enabled": false,
                      "config": files});
    let r = app.post_json("/api/v1/targets", &app.operator, &body).await;
    r.expect(201, None);
    assert_eq!((&r.json["config"], &r.json["enabled"]), (&files, &json!(false)));

    let list = |q: String| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/targets{q}"), &app.viewer).await;
            r.expect(200, None);
            ids(&r.json["data"])
        }
    };
    assert_eq!(list(String::new()).await, [id.clone(), "target-file".into()]);
    assert_eq!(list("?type=File".into()).await, ["target-file"]);
    assert_eq!(list(format!("?agent_id={a1}")).await, std::slice::from_ref(&id));
    assert_eq!(list("?agent_id=agent-web2&type=NGINX".into()).await, Vec::<String>::new());
    assert_eq!(list("?type=".into()).await.len(), 2, "an empty filter is no filter");
    app.get("/api/v1/targets?type=Bogus", &app.viewer).await.expect_bad_field("type");

    app.clock.advance(time::Duration::seconds(30));
    let update = json!({"name": "nginx-edge", "agent_id": a2, "enabled": false,
        "config": {"keystore_path": "/srv/ssl/site.p12", "keystore_password": "********"}});
    let r = app.put_json(&format!("/api/v1/targets/{id}"), &app.operator, &update).await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["name"], &r.json["agent_id"], &r.json["enabled"]),
        (&json!("nginx-edge"), &json!(a2), &json!(false))
    );
    assert_eq!(r.json["config"], json!({"keystore_path": "/srv/ssl/site.p12", "keystore_password": "********"}));
    assert_eq!(r.json["updated_at"], "2026-03-01T10:00:30Z");
    let r = app.put_json(&format!("/api/v1/targets/{id}"), &app.operator, &json!({"enabled": true})).await;
    assert_eq!((&r.json["enabled"], &r.json["name"]), (&json!(true), &json!("nginx-edge")));

    app.delete(&format!("/api/v1/targets/{id}"), &app.operator).await.expect(204, None);
    app.get(&format!("/api/v1/targets/{id}"), &app.viewer).await.expect(404, Some("not_found"));
    assert_eq!(list(String::new()).await, ["target-file"]);
}

#[tokio::test]
async fn target_input_errors_name_the_field() {
    let owned = TestApp::new().await;
    let app = &owned;
    let a1 = agent(&app.store, "web1").await;
    let base = json!({"name": "t", "type": "NGINX", "agent_id": a1,
                      "config": {"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}});
    let post = |extra: Value| {
        let body = with(base.clone(), extra);
        async move { app.post_json("/api/v1/targets", &app.operator, &body).await }
    };
    let r = post(json!({"agent_id": "agent-missing"})).await;
    r.expect_bad_field("agent_id");
    assert!(r.message().contains("agent-missing"), "{}", r.message());
    post(json!({"agent_id": "bad id"})).await.expect_bad_field("agent_id");
    post(json!({"type": "Bogus"})).await.expect_bad_field("type");
    post(json!({"name": ""})).await.expect_bad_field("name");
    post(json!({"config": {"cert_path": "ssl/site.pem"}})).await.expect_bad_field("config.cert_path");
    post(json!({"config": {"tls": {"key_path": "site.key"}}})).await.expect_bad_field("config.tls.key_path");
    post(json!({"config": {"path": 5}})).await.expect_bad_field("config.path");
    for bad in ["systemctl reload nginx; rm -rf /", "a | b", "a && b", "echo $(id)", "a > b"] {
        let r = post(json!({"config": {"reload_command": bad}})).await;
        r.expect_bad_field("config.reload_command");
        assert!(!r.message().contains(bad), "the value is not echoed: {}", r.message());
    }
    post(json!({"config": {"password": "********"}})).await.expect_bad_field("config.password");
    let r = app.post_json("/api/v1/targets", &app.operator, &json!({"name": "t", "type": "NGINX"})).await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("`agent_id`"), "{}", r.message());

    let id = target(app, "t", &a1).await;
    let path = &format!("/api/v1/targets/{id}");
    let put = |body: Value| async move { app.put_json(path, &app.operator, &body).await };
    put(json!({"config": {"cert_path": "relative.pem"}})).await.expect_bad_field("config.cert_path");
    put(json!({"config": {"reload_command": "nginx -s reload;"}})).await.expect_bad_field("config.reload_command");
    put(json!({"agent_id": "agent-missing"})).await.expect_bad_field("agent_id");
    put(json!({"config": {"key": "********"}})).await.expect_bad_field("config.key");
    let r = app.get("/api/v1/targets", &app.viewer).await;
    assert_eq!(r.json["total"], 1);
    assert_eq!(
        r.json["data"][0]["config"],
        json!({"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}),
        "refused updates change nothing"
    );

    app.get("/api/v1/targets/missing", &app.viewer).await.expect(404, Some("not_found"));
    app.put_json("/api/v1/targets/missing", &app.operator, &json!({"name": "x"})).await.expect(404, Some("not_found"));
    app.delete("/api/v1/targets/missing", &app.operator).await.expect(404, Some("not_found"));
}

#[tokio::test]
async fn typed_configs_are_checked_for_their_type() {
    let owned = TestApp::new().await;
    let app = &owned;
    let a1 = agent(&app.store, "web1").await;
    let post = |target_type: &str, config: Value| {
        let body = json!({"name": "t", "type": target_type, "agent_id": a1, "config": config});
        async move { app.post_json("/api/v1/targets", &app.operator, &body).await }
    };
    post("NGINX", json!({"key_path": "/etc/ssl/a.key"})).await.expect_bad_field("config.cert_path");
    post("NGINX", json!({})).await.expect_bad_field("config.cert_path");
    let r = post("HAProxy", json!({"pem_path": "/etc/haproxy/site.pem", "cert_path": "/x.pem"})).await;
    r.expect_bad_field("config.cert_path");
    assert!(r.message().contains("unknown field"), "{}", r.message());
    post("File", json!({"cert_path": "/a", "key_path": "/b", "key_mode": "rw-------"}))
        .await
        .expect_bad_field("config.key_mode");
    post("Traefik", json!({"cert_dir": "/etc/traefik/certs", "cert_file": "../escape.pem"}))
        .await
        .expect_bad_field("config.cert_file");
    post("Caddy", json!({"mode": "file"})).await.expect_bad_field("config.cert_dir");
    post("Envoy", json!({"cert_dir": "/etc/envoy", "verify_endpoint": "no-port"}))
        .await
        .expect_bad_field("config.verify_endpoint");
    let r = post("JavaKeystore", json!({"keystore_path": "/k.p12", "keystore_password": 12345})).await;
    r.expect_bad_field("config.keystore_password");
    assert!(!r.message().contains("12345"), "the value is not echoed: {}", r.message());
    post("File", json!({"cert_path": "/a", "key_path": "/b", "verify": true})).await.expect_bad_field("config.verify");
    // Types the agent does not deploy to keep the generic checks only.
    post("F5", json!({"host": "f5.example", "partition": "Common"})).await.expect(201, None);

    // An update is checked against the stored target's type.
    let id = target(app, "edge", &a1).await;
    let path = format!("/api/v1/targets/{id}");
    let put = |config: Value| {
        let path = path.clone();
        async move { app.put_json(&path, &app.operator, &json!({"config": config})).await }
    };
    put(json!({"cert_path": "/etc/ssl/b.pem"})).await.expect_bad_field("config.key_path");
    put(json!({"cert_path": "/b.pem", "key_path": "/b.key", "pem_path": "/c.pem"}))
        .await
        .expect_bad_field("config.pem_path");
    let r = put(
        json!({"cert_path": "/b.pem", "key_path": "/b.key", "key_mode": "0640", "verify_endpoint": "127.0.0.1:8443"}),
    )
    .await;
    r.expect(200, None);
    assert_eq!(r.json["config"]["key_mode"], "0640");
}

#[tokio::test]
async fn target_conflicts() {
    let app = TestApp::new().await;
    let a1 = agent(&app.store, "web1").await;
    let a2 = agent(&app.store, "web2").await;
    let t1 = target(&app, "nginx", &a1).await;
    let body = json!({"name": "nginx", "type": "Apache", "agent_id": a1,
                      "config": {"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}});
    let r = app.post_json("/api/v1/targets", &app.operator, &body).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("nginx"), "{}", r.message());
    // Names are unique per agent only.
    let t2 = target(&app, "nginx", &a2).await;
    app.put_json(&format!("/api/v1/targets/{t2}"), &app.operator, &json!({"agent_id": a1}))
        .await
        .expect(409, Some("conflict"));
    let t3 = target(&app, "apache", &a1).await;
    app.put_json(&format!("/api/v1/targets/{t3}"), &app.operator, &json!({"name": "nginx"}))
        .await
        .expect(409, Some("conflict"));
    let body = json!({"id": t1, "name": "other", "type": "NGINX", "agent_id": a2,
                      "config": {"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}});
    app.post_json("/api/v1/targets", &app.operator, &body).await.expect(409, Some("conflict"));

    // A mapped target, or one an unfinished job needs, stays.
    let d = deps(&app, "x").await;
    cert(&app, &with(cert_body(&d, "web"), json!({"target_ids": [t1]}))).await;
    let r = app.delete(&format!("/api/v1/targets/{t1}"), &app.operator).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("1 certificate"), "{}", r.message());
    let c2 = cert(&app, &cert_body(&d, "api")).await;
    let job = NewJob { target_id: Some(t2.clone()), ..NewJob::new(JobType::Deployment, &c2) };
    let job = app.store.create_job(&job, &Actor::system(), T0).await.unwrap();
    let r = app.delete(&format!("/api/v1/targets/{t2}"), &app.operator).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("1 unfinished job"), "{}", r.message());
    app.post_json(&format!("/api/v1/jobs/{}/cancel", job.id), &app.operator, &json!({})).await.expect(200, None);
    assert_eq!(app.get(&format!("/api/v1/jobs/{}", job.id), &app.viewer).await.json["status"], "Cancelled");
    app.delete(&format!("/api/v1/targets/{t2}"), &app.operator).await.expect(204, None);
    assert_eq!(app.get("/api/v1/targets", &app.viewer).await.json["total"], 2);
}
