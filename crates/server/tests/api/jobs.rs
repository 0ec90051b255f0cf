//! `/api/v1/jobs`: listing with filters (newest first), inspection, cancellation, approval and
//! rejection.

use serde_json::json;

use certctl_api::{JobStatus, JobType};
use certctl_server::clock::Clock;
use certctl_store::{Actor, NewJob};

use crate::fixtures::{agent, cert, cert_body, deps, ids, lifecycle_audit, target, with};
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

/// A certificate whose profile asks for a second person, with its issuance requested: the job
/// waits in AwaitingApproval.
async fn gated_issuance(app: &TestApp, tag: &str) -> (String, String) {
    let d = deps(app, tag).await;
    let r = app
        .post_json(
            "/api/v1/profiles",
            &app.operator,
            &json!({"name": format!("gated {tag}"), "requires_approval": true}),
        )
        .await;
    r.expect(201, None);
    let body = with(cert_body(&d, tag), json!({"certificate_profile_id": r.json["id"]}));
    let id = cert(app, &body).await;
    let r = app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.operator, &json!({})).await;
    assert!(r.status.is_success(), "{}", r.message());
    let job = app.get(&format!("/api/v1/jobs?certificate_id={id}"), &app.viewer).await.json["data"][0].clone();
    assert_eq!(job["status"], "AwaitingApproval", "{job}");
    (id, job["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_approved_job_goes_to_the_issuance_runner() {
    let app = TestApp::new().await;
    let (_, job_id) = gated_issuance(&app, "approve").await;
    let approve = format!("/api/v1/jobs/{job_id}/approve");
    app.post_json(&approve, &app.viewer, &json!({})).await.expect(403, Some("forbidden"));
    app.post_json("/api/v1/jobs/job-missing/approve", &app.operator, &json!({})).await.expect(404, Some("not_found"));
    assert!(
        app.store.claim_issuance_jobs(app.clock.now(), time::Duration::minutes(5), 10).await.unwrap().is_empty(),
        "the runner leaves a job awaiting approval alone"
    );

    app.clock.advance(time::Duration::minutes(3));
    let r = app.post_json(&approve, &app.operator, &json!({})).await;
    r.expect(200, None);
    assert_eq!((&r.json["id"], &r.json["status"]), (&json!(job_id), &json!("Pending")));
    assert_eq!(r.json["scheduled_at"], "2026-03-01T10:03:00Z", "due at once");
    let entry = lifecycle_audit(&app.store).await.into_iter().find(|e| e.action == "job_approved").unwrap();
    assert_eq!((entry.actor.as_str(), entry.resource_id.as_str()), ("operator", job_id.as_str()));

    let r = app.post_json(&approve, &app.admin, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("Pending"), "the conflict names the state: {}", r.message());
    app.post_json(&format!("/api/v1/jobs/{job_id}/reject"), &app.admin, &json!({})).await.expect(409, Some("conflict"));
    let claimed = app.store.claim_issuance_jobs(app.clock.now(), time::Duration::minutes(5), 10).await.unwrap();
    assert_eq!(ids(&serde_json::to_value(&claimed).unwrap()), [job_id], "the runner claims the approved job");
}

#[tokio::test]
async fn a_rejected_job_ends_cancelled_with_its_reason_and_is_not_retried() {
    let app = TestApp::new().await;
    let (cert_id, job_id) = gated_issuance(&app, "reject").await;
    let reject = format!("/api/v1/jobs/{job_id}/reject");
    app.post_json(&reject, &app.viewer, &json!({"reason": "no"})).await.expect(403, Some("forbidden"));
    app.post_json("/api/v1/jobs/job-missing/reject", &app.operator, &json!({})).await.expect(404, Some("not_found"));
    app.post_json(&reject, &app.operator, &json!({"reason": "no", "colour": "red"})).await.expect(400, None);
    app.post_json(&reject, &app.operator, &json!({"reason": "x".repeat(1025)})).await.expect_bad_field("reason");

    let r = app.post_json(&reject, &app.operator, &json!({"reason": "not before the freeze ends"})).await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["status"], &r.json["last_error"]),
        (&json!("Cancelled"), &json!("rejected: not before the freeze ends"))
    );
    assert!(r.json["completed_at"].is_string());
    let entry = lifecycle_audit(&app.store).await.into_iter().find(|e| e.action == "job_rejected").unwrap();
    assert_eq!(entry.details["reason"], "not before the freeze ends");
    let cert = app.get(&format!("/api/v1/certificates/{cert_id}"), &app.viewer).await;
    assert_eq!(cert.json["status"], "Pending", "a never-issued certificate is no longer in progress");

    let r = app.post_json(&reject, &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("Cancelled"), "{}", r.message());
    app.clock.advance(time::Duration::days(2));
    let claimed = app.store.claim_issuance_jobs(app.clock.now(), time::Duration::minutes(5), 10).await.unwrap();
    assert!(claimed.is_empty(), "a rejected issuance is never retried: {claimed:?}");

    // Without a body the reason is simply "rejected".
    let (_, other) = gated_issuance(&app, "bare").await;
    let r = app.send_body(axum::http::Method::POST, &format!("/api/v1/jobs/{other}/reject"), &app.admin, "").await;
    r.expect(200, None);
    assert_eq!(r.json["last_error"], "rejected");
}

#[tokio::test]
async fn jobs_filter_by_target() {
    let app = TestApp::new().await;
    let d = deps(&app, "t").await;
    let c = cert(&app, &cert_body(&d, "t")).await;
    let agent_id = agent(&app.store, "tgt").await;
    let target_id = target(&app, "edge", &agent_id).await;
    let new = NewJob {
        id: Some("job-deploy".into()),
        target_id: Some(target_id.clone()),
        agent_id: Some(agent_id),
        ..NewJob::new(JobType::Deployment, &c)
    };
    app.store.create_job(&new, &Actor::system(), T0).await.unwrap();
    job(&app, "job-other", JobType::Renewal, &c, JobStatus::Pending, 1).await;
    let r = app.get(&format!("/api/v1/jobs?target_id={target_id}"), &app.viewer).await;
    r.expect(200, None);
    assert_eq!(ids(&r.json["data"]), ["job-deploy"]);
    let r = app.get("/api/v1/jobs?target_id=tgt-none", &app.viewer).await;
    assert_eq!(ids(&r.json["data"]), Vec::<String>::new());
}
