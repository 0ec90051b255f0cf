//! A smoke run of the API on each backend: the same calls, the same answers.

use serde_json::json;

use certctl_store::Backend;

use crate::harness::TestApp;

async fn smoke(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    app.get("/ready", "").await.expect(200, None);
    let team = app.team("Platform").await;
    let owner = app.owner("ann", &team).await;
    app.post_json("/api/v1/teams", &app.operator, &json!({"name": "Platform"})).await.expect(409, Some("conflict"));
    app.delete(&format!("/api/v1/teams/{team}"), &app.operator).await.expect(409, Some("conflict"));
    app.post_json("/api/v1/owners", &app.operator, &json!({"name": "x", "email": "x@example.com", "team_id": "nope"}))
        .await
        .expect_bad_field("team_id");
    let r = app.get(&format!("/api/v1/owners?team_id={team}"), &app.viewer).await;
    assert_eq!(r.json["data"][0]["id"], owner);
    app.get("/api/v1/teams?cursor=bogus", &app.viewer).await.expect_bad_field("cursor");
    let r = app.get("/api/v1/teams?page_size=1", &app.viewer).await;
    let cursor = r.json["next_cursor"].as_str().map(str::to_owned);
    assert!(cursor.is_none(), "one team fits one page");

    let created = app.post_json("/api/v1/apikeys", &app.admin, &json!({"name": "ci", "role": "viewer"})).await;
    created.expect(201, None);
    let key = created.json["key"].as_str().unwrap();
    app.get("/api/v1/teams", key).await.expect(200, None);
    let r = app.get("/api/v1/teams", key).await;
    let e = app.api_audit("GET", "/api/v1/teams", r.request_id()).await;
    assert_eq!(e.actor, "ci");
    let r = app.get("/api/v1/audit?action=owner_created", &app.viewer).await;
    assert_eq!(r.json["data"][0]["resource_id"], owner);
    let report = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(report.first_broken, None);
    assert!(report.checked >= 6, "{report:?}");

    app.store.close().await;
    app.get("/ready", "").await.expect(503, Some("db_unavailable"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_sqlite() {
    smoke(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_postgres() {
    smoke(Backend::Postgres).await;
}
