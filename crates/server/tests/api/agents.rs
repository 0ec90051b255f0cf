//! `/api/v1/agents`: listing (live, retired, by status), inspection and retirement;
//! registration is enrolment, through the agent protocol.

use axum::http::Method;
use serde_json::json;

use certctl_api::AgentStatus;
use certctl_store::{Actor, NewAgent};

use crate::fixtures::{OpenApp, ids};
use crate::harness::T0;

async fn register(app: &OpenApp, name: &str, status: AgentStatus, secs: i64) -> String {
    let new = NewAgent {
        id: Some(format!("agent-{name}")),
        name: name.to_owned(),
        hostname: format!("{name}.example.com"),
        status,
        credential_hash: Some(format!("{:0>64}", secs)),
        ..NewAgent::default()
    };
    app.store().create_agent(&new, &Actor::system(), T0 + time::Duration::seconds(secs)).await.unwrap().id
}

#[tokio::test]
async fn agents_are_listed_and_retired_ones_hidden() {
    let owned = OpenApp::new().await;
    let app = &owned;
    let online = register(app, "a-online", AgentStatus::Online, 0).await;
    let offline = register(app, "b-offline", AgentStatus::Offline, 1).await;
    let retired = register(app, "c-retired", AgentStatus::Offline, 2).await;
    let mut raw = app.raw().await;
    sqlx::query("UPDATE agents SET retired_at = $1, retired_reason = 'decommissioned' WHERE id = $2")
        .bind(certctl_store::to_micros(T0 + time::Duration::hours(1)))
        .bind(&retired)
        .execute(&mut raw)
        .await
        .unwrap();

    let r = app.get("/api/v1/agents").await;
    r.expect(200, None);
    assert_eq!(ids(&r.json["data"]), [online.clone(), offline.clone()], "registration order, retired hidden");
    assert_eq!((&r.json["total"], &r.json["page"], &r.json["per_page"]), (&json!(2), &json!(1), &json!(50)));
    let first = &r.json["data"][0];
    assert_eq!((&first["status"], &first["hostname"]), (&json!("Online"), &json!("a-online.example.com")));
    assert_eq!(first["last_heartbeat_at"], "2026-03-01T10:00:00Z", "an online registration is a heartbeat");
    assert!(r.json["data"][1]["last_heartbeat_at"].is_null());
    assert!(!String::from_utf8_lossy(&r.body).contains(&format!("{:0>64}", 0)), "the credential hash is never shown");

    let listed = |q: &'static str| async move {
        let r = app.get(&format!("/api/v1/agents{q}")).await;
        r.expect(200, None);
        ids(&r.json["data"])
    };
    assert_eq!(listed("?include_retired=true").await, [online.clone(), offline.clone(), retired.clone()]);
    assert_eq!(listed("?include_retired=false").await, [online.clone(), offline.clone()]);
    assert_eq!(listed("?status=Online").await, std::slice::from_ref(&online));
    assert_eq!(listed("?status=Offline").await, std::slice::from_ref(&offline));
    assert_eq!(listed("?status=Offline&include_retired=true").await, [offline.clone(), retired.clone()]);
    assert_eq!(listed("?status=Degraded").await, Vec::<String>::new());
    assert_eq!(listed("?status=").await.len(), 2);
    assert_eq!(listed("/retired").await, std::slice::from_ref(&retired));
    assert_eq!(listed("?page_size=1").await, std::slice::from_ref(&online));
    app.get("/api/v1/agents?status=Bogus").await.expect_bad_field("status");
    app.get("/api/v1/agents?status=online").await.expect_bad_field("status");
    let r = app.get("/api/v1/agents?include_retired=maybe").await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().contains("include_retired"), "{}", r.message());
    app.get("/api/v1/agents/retired?per_page=0").await.expect_bad_field("per_page");

    let r = app.get(&format!("/api/v1/agents/{retired}")).await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["retired_at"], &r.json["retired_reason"]),
        (&json!("2026-03-01T11:00:00Z"), &json!("decommissioned"))
    );
    assert_eq!(r.json["registered_at"], "2026-03-01T10:00:02Z");
    app.get(&format!("/api/v1/agents/{online}")).await.expect(200, None);
    app.get("/api/v1/agents/agent-missing").await.expect(404, Some("not_found"));

    // A retired agent takes no new targets.
    let body = json!({"name": "t", "type": "NGINX", "agent_id": retired,
                      "config": {"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}});
    let r = app.send(Method::POST, "/api/v1/targets", &app.admin, Some(&body)).await;
    r.expect_bad_field("agent_id");
    assert!(r.message().contains("retired"), "{}", r.message());

    // Registration belongs to the agent protocol.
    let body = json!({"name": "x", "hostname": "x"});
    assert_eq!(app.send(Method::POST, "/api/v1/agents", &app.admin, Some(&body)).await.status, 405);
    // Retirement is `DELETE` (its preflight and cascade are in agent_protocol.rs); an agent
    // with nothing depending on it retires at once.
    let r = app.send(Method::DELETE, &format!("/api/v1/agents/{online}"), &app.admin, None).await;
    r.expect(200, None);
    assert_eq!((&r.json["cascade"], &r.json["counts"]["targets"]), (&json!(false), &json!(0)));
    assert!(!app.get(&format!("/api/v1/agents/{online}")).await.json["retired_at"].is_null());
}
