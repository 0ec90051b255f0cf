//! Role gating of the inventory resources: viewers read everything and change nothing;
//! operators change what viewers cannot.

use serde_json::{Value, json};

use certctl_api::{JobStatus, JobType};
use certctl_store::{Actor, NewJob};

use crate::fixtures::{agent, cert, cert_body, deps, lifecycle_audit, profile, target, with};
use crate::harness::{NO_KEY, T0, TestApp};

#[tokio::test]
async fn viewers_read_but_cannot_write() {
    let app = TestApp::new().await;
    let d = deps(&app, "x").await;
    let prof = profile(&app, "Web").await;
    let ag = agent(&app.store, "web1").await;
    let t = target(&app, "t", &ag).await;
    let c = cert(&app, &with(cert_body(&d, "web"), json!({"target_ids": [t]}))).await;
    let job = NewJob { status: JobStatus::Pending, ..NewJob::new(JobType::Issuance, &c) };
    let job = app.store.create_job(&job, &Actor::system(), T0).await.unwrap().id;

    let reads = [
        "/api/v1/issuers".to_owned(),
        format!("/api/v1/issuers/{}", d.issuer),
        "/api/v1/targets".into(),
        format!("/api/v1/targets/{t}"),
        "/api/v1/agents".into(),
        "/api/v1/agents/retired".into(),
        format!("/api/v1/agents/{ag}"),
        "/api/v1/jobs".into(),
        format!("/api/v1/jobs/{job}"),
        "/api/v1/profiles".into(),
        format!("/api/v1/profiles/{prof}"),
        "/api/v1/renewal-policies".into(),
        format!("/api/v1/renewal-policies/{}", d.policy),
        "/api/v1/certificates".into(),
        format!("/api/v1/certificates/{c}"),
        format!("/api/v1/certificates/{c}/versions"),
        format!("/api/v1/certificates/{c}/deployments"),
    ];
    for path in &reads {
        app.get(path, &app.viewer).await.expect(200, None);
        app.get(path, NO_KEY).await.expect(401, Some("unauthorized"));
    }

    let before = lifecycle_audit(&app.store).await.len();
    let issuer = json!({"name": "New", "type": "ACME"});
    let target_body = json!({"name": "n", "type": "NGINX", "agent_id": ag,
                             "config": {"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}});
    let writes: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/api/v1/issuers".into(), Some(issuer)),
        ("PUT", format!("/api/v1/issuers/{}", d.issuer), Some(json!({"name": "Renamed"}))),
        ("DELETE", format!("/api/v1/issuers/{}", d.issuer), None),
        ("POST", "/api/v1/targets".into(), Some(target_body)),
        ("PUT", format!("/api/v1/targets/{t}"), Some(json!({"name": "Renamed"}))),
        ("DELETE", format!("/api/v1/targets/{t}"), None),
        ("POST", format!("/api/v1/jobs/{job}/cancel"), Some(json!({}))),
        ("POST", "/api/v1/profiles".into(), Some(json!({"name": "New"}))),
        ("PUT", format!("/api/v1/profiles/{prof}"), Some(json!({"description": "x"}))),
        ("DELETE", format!("/api/v1/profiles/{prof}"), None),
        ("POST", "/api/v1/renewal-policies".into(), Some(json!({"name": "New"}))),
        ("PUT", format!("/api/v1/renewal-policies/{}", d.policy), Some(json!({"max_retries": 1}))),
        ("DELETE", format!("/api/v1/renewal-policies/{}", d.policy), None),
        ("POST", "/api/v1/certificates".into(), Some(cert_body(&d, "new"))),
        ("PUT", format!("/api/v1/certificates/{c}"), Some(json!({"environment": "x"}))),
        ("DELETE", format!("/api/v1/certificates/{c}"), None),
        ("PUT", format!("/api/v1/certificates/{c}/targets/{t}"), Some(json!({}))),
        ("DELETE", format!("/api/v1/certificates/{c}/targets/{t}"), None),
    ];
    for (method, path, body) in &writes {
        let r = match (*method, body) {
            ("POST", Some(b)) => app.post_json(path, &app.viewer, b).await,
            ("PUT", Some(b)) => app.put_json(path, &app.viewer, b).await,
            _ => app.delete(path, &app.viewer).await,
        };
        r.expect(403, Some("forbidden"));
        assert!(r.message().contains("viewer"), "{method} {path}: {}", r.message());
    }
    assert_eq!(lifecycle_audit(&app.store).await.len(), before, "no refused write changed anything");
    assert_eq!(app.get(&format!("/api/v1/jobs/{job}"), &app.viewer).await.json["status"], "Pending");
    assert_eq!(app.get(&format!("/api/v1/certificates/{c}"), &app.viewer).await.json["status"], "Pending");

    // Operators may make the same changes.
    app.post_json(&format!("/api/v1/jobs/{job}/cancel"), &app.operator, &json!({})).await.expect(200, None);
    app.put_json(&format!("/api/v1/profiles/{prof}"), &app.operator, &json!({"description": "x"}))
        .await
        .expect(200, None);
    app.delete(&format!("/api/v1/certificates/{c}"), &app.admin).await.expect(204, None);
}
