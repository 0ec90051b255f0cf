//! `/api/v1/jobs`: listing with filters (newest first), inspection and cancellation.

use serde_json::json;

use certctl_api::{JobStatus, JobType};
use certctl_store::{Actor, NewJob};

use crate::fixtures::{agent, cert, cert_body, deps, ids};
use crate::harness::{T0, TestApp};

/// Creates job `id` at `T0 + secs`.
async fn job(app: &TestApp, id: &str, job_type: JobType, cert: &str, status: JobStatus, secs: i64) {
    let new = NewJob { id: Some(id.to_owned()), status, ..NewJob::new(job_type, cert) };
    app.store.create_job(&new, &Actor::system(), T0 + time::Duration::seconds(secs)).await.unwrap();
}

#[tokio::test]
async fn jobs_are_listed_filtered_and_cancelled() {
    let owned = TestApp::new().await;
    let app = &owned;
    let d = deps(app, "x").await;
    let a = cert(app, &cert_body(&d, "a")).await;
    let b = cert(app, &cert_body(&d, "b")).await;
    let agent_id = agent(&app.store, "web1").await;
    job(app, "job-1", JobType::Validation, &a, JobStatus::Pending, 1).await;
    job(app, "job-2", JobType::Renewal, &a, JobStatus::Running, 2).await;
    job(app, "job-3", JobType::Deployment, &a, JobStatus::Completed, 3).await;
    let new =
        NewJob { id: Some("job-4".into()), agent_id: Some(agent_id.clone()), ..NewJob::new(JobType::Renewal, &b) };
    app.store.create_job(&new, &Actor::system(), T0 + time::Duration::seconds(4)).await.unwrap();

    let listed = |q: String| async move {
        let r = app.get(&format!("/api/v1/jobs{q}"), &app.viewer).await;
        r.expect(200, None);
        ids(&r.json["data"])
    };
    assert_eq!(listed(String::new()).await, ["job-4", "job-3", "job-2", "job-1"], "newest first");
    assert_eq!(listed("?status=Pending".into()).await, ["job-4", "job-1"]);
    assert_eq!(listed("?type=Renewal".into()).await, ["job-4", "job-2"]);
    assert_eq!(listed(format!("?certificate_id={a}")).await, ["job-3", "job-2", "job-1"]);
    assert_eq!(listed(format!("?certificate_id={b}&status=Pending&type=Renewal")).await, ["job-4"]);
    assert_eq!(listed(format!("?agent_id={agent_id}")).await, ["job-4"]);
    assert_eq!(listed("?certificate_id=missing".into()).await, Vec::<String>::new());
    assert_eq!(listed("?status=&type=".into()).await.len(), 4, "empty filters are no filters");
    assert_eq!(listed("?page_size=3".into()).await, ["job-4", "job-3", "job-2"]);
    let r = app.get("/api/v1/jobs?per_page=2&page=2", &app.viewer).await;
    assert_eq!((&r.json["total"], ids(&r.json["data"])), (&json!(4), vec!["job-2".to_owned(), "job-1".into()]));
    app.get("/api/v1/jobs?status=Bogus", &app.viewer).await.expect_bad_field("status");
    app.get("/api/v1/jobs?status=pending", &app.viewer).await.expect_bad_field("status");
    app.get("/api/v1/jobs?type=Bogus", &app.viewer).await.expect_bad_field("type");

    let r = app.get("/api/v1/jobs/job-1", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["type"], &r.json["status"], &r.json["certificate_id"], &r.json["attempts"], &r.json["max_attempts"]),
        (&json!("Validation"), &json!("Pending"), &json!(a), &json!(0), &json!(3))
    );
    assert!(r.json["completed_at"].is_null());
    app.get("/api/v1/jobs/job-missing", &app.viewer).await.expect(404, Some("not_found"));

    app.clock.advance(time::Duration::minutes(2));
    let r = app.post_json("/api/v1/jobs/job-1/cancel", &app.operator, &json!({})).await;
    r.expect(200, None);
    assert_eq!((&r.json["id"], &r.json["status"]), (&json!("job-1"), &json!("Cancelled")));
    assert_eq!(r.json["completed_at"], "2026-03-01T10:02:00Z");
    assert_eq!(app.get("/api/v1/jobs/job-1", &app.viewer).await.json, r.json);
    let r = app.post_json("/api/v1/jobs/job-1/cancel", &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("Cancelled"), "{}", r.message());
    let r = app.post_json("/api/v1/jobs/job-3/cancel", &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("Completed"), "{}", r.message());
    app.post_json("/api/v1/jobs/job-missing/cancel", &app.operator, &json!({})).await.expect(404, Some("not_found"));
    app.post_json("/api/v1/jobs/job-2/cancel", &app.viewer, &json!({})).await.expect(403, Some("forbidden"));
    let r = app.post_json("/api/v1/jobs/job-2/cancel", &app.admin, &json!({})).await;
    r.expect(200, None);
    assert_eq!(r.json["status"], "Cancelled", "a running job can be cancelled");
    assert_eq!(listed("?status=Cancelled".into()).await, ["job-2", "job-1"]);
    assert_eq!(listed("?status=Running".into()).await, Vec::<String>::new());
}
