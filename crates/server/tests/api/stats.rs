//! `/api/v1/stats/*`: the dashboard figures over a known inventory, on both backends.

use serde_json::{Value, json};
use time::Duration;

use certctl_api::{JobStatus, JobType};
use certctl_store::{Actor, Backend, NewAgent, NewJob};

use crate::fixtures::{agent, cert, cert_body, deps};
use crate::harness::{NO_KEY, T0, TestApp};

/// What [`seed`] created.
pub struct Seeded {
    pub certs: Vec<String>,
}

/// A known inventory at `T0` (2026-03-01 10:00 UTC):
/// - certificates: active (expires in 90 d), expiring (10 d), active but past expiry (−1 d),
///   marked expired, revoked (60 d), archived, pending without expiry → 6 counted (archived
///   excluded), 1 expiring, 2 expired, 1 revoked, 2 active;
/// - agents: one online (heartbeat at T0), one offline;
/// - jobs: pending, awaiting CSR, running (3 open); completed at T0 and at T0 − 1 d; failed at T0;
/// - notifications: 2 dead, 3 pending, 1 sent;
/// - versions: 2 at T0, 1 at T0 − 2 d.
pub async fn seed(app: &TestApp) -> Seeded {
    let d = deps(app, "stats").await;
    let mut certs = Vec::new();
    for name in ["active", "expiring", "past", "expired", "revoked", "archived", "pending"] {
        certs.push(cert(app, &cert_body(&d, name)).await);
    }
    let states: [(&str, Option<Duration>); 6] = [
        ("Active", Some(Duration::days(90))),
        ("Active", Some(Duration::days(10))),
        ("Active", Some(Duration::days(-1))),
        ("Expired", Some(Duration::days(-5))),
        ("Revoked", Some(Duration::days(60))),
        ("Archived", Some(Duration::days(20))),
    ];
    for (id, (status, expiry)) in certs.iter().zip(states) {
        app.store.set_test_certificate_state(id, status, expiry.map(|e| T0 + e)).await.unwrap();
    }

    agent(&app.store, "online").await;
    let offline = NewAgent {
        id: Some("agent-offline".into()),
        name: "offline".into(),
        status: certctl_api::AgentStatus::Offline,
        ..NewAgent::default()
    };
    app.store.create_agent(&offline, &Actor::system(), T0).await.unwrap();

    let jobs = [
        ("j-pending", JobStatus::Pending),
        ("j-csr", JobStatus::AwaitingCsr),
        ("j-running", JobStatus::Running),
        ("j-done-today", JobStatus::Pending),
        ("j-done-yesterday", JobStatus::Pending),
        ("j-failed", JobStatus::Pending),
    ];
    for (i, (id, status)) in jobs.iter().enumerate() {
        let new = NewJob { id: Some((*id).to_owned()), status: *status, ..NewJob::new(JobType::Validation, &certs[i]) };
        app.store.create_job(&new, &Actor::system(), T0 - Duration::days(3)).await.unwrap();
    }
    app.store.set_test_job_finished("j-done-today", "Completed", T0).await.unwrap();
    app.store.set_test_job_finished("j-done-yesterday", "Completed", T0 - Duration::days(1)).await.unwrap();
    app.store.set_test_job_finished("j-failed", "Failed", T0 - Duration::minutes(1)).await.unwrap();

    app.store.insert_test_notifications("dead", 2, T0).await.unwrap();
    app.store.insert_test_notifications("pending", 3, T0).await.unwrap();
    app.store.insert_test_notifications("sent", 1, T0).await.unwrap();

    app.store.insert_test_version(&certs[0], T0).await.unwrap();
    app.store.insert_test_version(&certs[1], T0 - Duration::hours(1)).await.unwrap();
    app.store.insert_test_version(&certs[2], T0 - Duration::days(2)).await.unwrap();
    Seeded { certs }
}

fn dates_and(list: &Value, field: &str) -> Vec<(String, Value)> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|p| (p["date"].as_str().expect("a date").to_owned(), p[field].clone()))
        .collect()
}

async fn stats_figures(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    seed(&app).await;

    let r = app.get("/api/v1/stats/summary", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(
        r.json,
        json!({
            "total_certificates": 6, "expiring_certificates": 1, "expired_certificates": 2, "revoked_certificates": 1,
            "active_agents": 1, "offline_agents": 1, "total_agents": 2,
            "pending_jobs": 3, "failed_jobs": 1, "complete_jobs": 2, "notifications_dead": 2,
            "completed_at": "2026-03-01T10:00:00Z",
        })
    );

    let r = app.get("/api/v1/stats/certificates-by-status", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(
        r.json,
        json!({"status_counts": [
            {"status": "Pending", "count": 1}, {"status": "Active", "count": 1}, {"status": "Expiring", "count": 1},
            {"status": "Expired", "count": 2}, {"status": "Revoked", "count": 1}, {"status": "Archived", "count": 1},
        ]})
    );

    let r = app.get("/api/v1/stats/expiration-timeline?days=15", &app.viewer).await;
    r.expect(200, None);
    let buckets = dates_and(&r.json["buckets"], "count");
    assert_eq!(buckets.len(), 15);
    assert_eq!(buckets[0].0, "2026-03-01");
    assert_eq!(buckets[14].0, "2026-03-15");
    let nonzero: Vec<_> = buckets.iter().filter(|(_, n)| n != &json!(0)).cloned().collect();
    assert_eq!(nonzero, vec![("2026-03-11".to_owned(), json!(1))], "only the one expiring in 10 days");
    let r = app.get("/api/v1/stats/expiration-timeline?days=120", &app.viewer).await;
    let nonzero: Vec<_> = dates_and(&r.json["buckets"], "count").into_iter().filter(|(_, n)| n != &json!(0)).collect();
    assert_eq!(
        nonzero,
        vec![("2026-03-11".to_owned(), json!(1)), ("2026-05-30".to_owned(), json!(1))],
        "revoked and archived certificates never show as expiring"
    );
    let r = app.get("/api/v1/stats/expiration-timeline", &app.viewer).await;
    assert_eq!(r.json["buckets"].as_array().unwrap().len(), 30, "30 days by default");

    let r = app.get("/api/v1/stats/job-trends?days=7", &app.viewer).await;
    r.expect(200, None);
    let trends = r.json["trends"].as_array().unwrap();
    assert_eq!(trends.len(), 7);
    assert_eq!(trends[0]["date"], "2026-02-23");
    assert_eq!(trends[5], json!({"date": "2026-02-28", "completed": 1, "failed": 0, "success_rate": 100.0}));
    assert_eq!(trends[6], json!({"date": "2026-03-01", "completed": 1, "failed": 1, "success_rate": 50.0}));
    assert_eq!(trends[4], json!({"date": "2026-02-27", "completed": 0, "failed": 0, "success_rate": 0.0}));

    let r = app.get("/api/v1/stats/issuance-rate?days=3", &app.viewer).await;
    r.expect(200, None);
    assert_eq!(
        r.json,
        json!({"rate": [
            {"date": "2026-02-27", "count": 1}, {"date": "2026-02-28", "count": 0}, {"date": "2026-03-01", "count": 2},
        ]})
    );

    for path in ["expiration-timeline", "job-trends", "issuance-rate"] {
        for bad in ["0", "366", "abc", "-3", "2.5"] {
            app.get(&format!("/api/v1/stats/{path}?days={bad}"), &app.viewer).await.expect_bad_field("days");
        }
        let r = app.get(&format!("/api/v1/stats/{path}?days=365"), &app.viewer).await;
        r.expect(200, None);
    }

    // Six minutes without a heartbeat: the agent is no longer online.
    app.clock.advance(Duration::minutes(6));
    let r = app.get("/api/v1/stats/summary", &app.viewer).await;
    assert_eq!((&r.json["active_agents"], &r.json["offline_agents"]), (&json!(0), &json!(2)));

    for path in ["summary", "certificates-by-status", "expiration-timeline", "job-trends", "issuance-rate"] {
        app.get(&format!("/api/v1/stats/{path}"), NO_KEY).await.expect(401, Some("unauthorized"));
        app.get(&format!("/api/v1/stats/{path}"), "cck_not-a-key").await.expect(401, Some("unauthorized"));
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_sql_aggregates_sqlite() {
    stats_figures(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_sql_aggregates_postgres() {
    stats_figures(Backend::Postgres).await;
}
