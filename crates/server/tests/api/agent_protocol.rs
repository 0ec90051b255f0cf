//! The agent protocol through the API, on SQLite and PostgreSQL: enrolment with a one-time
//! token, the agent credential and what it may reach, heartbeats and offline marking, a CSR job
//! completed with an openssl CSR, deployment work with the target's secrets, job reports with
//! verification, and retirement with its preflight, cascade and 410.

use serde_json::{Value, json};
use time::Duration;

use certctl_server::clock::Clock;
use certctl_server::scheduler::drain_jobs;
use certctl_store::Backend;

use crate::fixtures::deps;
use crate::harness::{NO_KEY, T0, TestApp};
use crate::pki_peer::{Openssl, cert_for, job_of, renew};

async fn token(app: &TestApp, body: Value) -> Value {
    let r = app.post_json("/api/v1/agent-tokens", &app.admin, &body).await;
    r.expect(201, None);
    r.json.clone()
}

async fn enroll(app: &TestApp, token: &str, name: &str) -> crate::harness::Reply {
    let body = json!({"name": name, "hostname": format!("{name}.example.com"), "os": "linux",
                      "architecture": "amd64", "ip_address": "10.1.2.3", "version": "0.1.0"});
    app.post_json("/api/v1/agents/enroll", token, &body).await
}

/// Enrols `name` with a fresh token; returns (agent id, credential).
async fn enrolled(app: &TestApp, name: &str) -> (String, String) {
    let t = token(app, json!({"name": name})).await;
    let r = enroll(app, t["token"].as_str().unwrap(), name).await;
    r.expect(201, None);
    (r.json["agent"]["id"].as_str().unwrap().to_owned(), r.json["credential"].as_str().unwrap().to_owned())
}

async fn enrolment(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };

    // Tokens: admin only, shown once, bounded lifetime.
    app.post_json("/api/v1/agent-tokens", &app.operator, &json!({})).await.expect(403, Some("forbidden"));
    app.post_json("/api/v1/agent-tokens", &app.admin, &json!({"expires_in": "31d"}))
        .await
        .expect_bad_field("expires_in");
    app.post_json("/api/v1/agent-tokens", &app.admin, &json!({"expires_in": "soon"}))
        .await
        .expect_bad_field("expires_in");
    app.post_json("/api/v1/agent-tokens", &app.admin, &json!({"colour": "red"})).await.expect(400, Some("bad_request"));
    let t = token(&app, json!({"name": "web01 install", "group": "edge", "expires_in": "1h"})).await;
    let secret = t["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cce_") && secret.len() > 40, "{secret}");
    assert_eq!((&t["name"], &t["group"]), (&json!("web01 install"), &json!("edge")));
    assert_eq!(t["expires_at"], "2026-03-01T11:00:00Z");
    let listed = app.get("/api/v1/agent-tokens", &app.admin).await;
    listed.expect(200, None);
    assert_eq!(listed.json["data"][0]["id"], t["id"]);
    assert!(!String::from_utf8_lossy(&listed.body).contains(&secret), "the token is never listed");
    assert!(listed.json["data"][0].get("token").is_none());

    // Enrolment: the token is single-use; a wrong or expired one is 401.
    enroll(&app, "cce_not-a-token", "web01").await.expect(401, Some("unauthorized"));
    enroll(&app, &app.admin, "web01").await.expect(401, Some("unauthorized"));
    enroll(&app, NO_KEY, "web01").await.expect(401, Some("unauthorized"));
    let r = enroll(&app, &secret, "web01").await;
    r.expect(201, None);
    let agent_id = r.json["agent"]["id"].as_str().unwrap().to_owned();
    let credential = r.json["credential"].as_str().unwrap().to_owned();
    assert!(credential.starts_with("cca_"), "{credential}");
    assert_eq!(
        (&r.json["agent"]["status"], &r.json["agent"]["hostname"]),
        (&json!("Online"), &json!("web01.example.com"))
    );
    enroll(&app, &secret, "web02").await.expect(401, Some("unauthorized"));
    let used = app.get("/api/v1/agent-tokens", &app.admin).await;
    assert_eq!(
        (&used.json["data"][0]["agent_id"], &used.json["data"][0]["used_at"]),
        (&json!(agent_id), &json!("2026-03-01T10:00:00Z"))
    );
    let late = token(&app, json!({"expires_in": "10m"})).await;
    app.clock.advance(Duration::minutes(11));
    enroll(&app, late["token"].as_str().unwrap(), "web03").await.expect(401, Some("unauthorized"));
    let dup = token(&app, json!({})).await;
    enroll(&app, dup["token"].as_str().unwrap(), "web01").await.expect(409, Some("conflict"));
    // The refused enrolment did not spend the token.
    enroll(&app, dup["token"].as_str().unwrap(), "web04").await.expect(201, None);
    let bad = token(&app, json!({})).await;
    enroll(&app, bad["token"].as_str().unwrap(), "").await.expect_bad_field("name");

    // The credential authenticates as this agent only.
    let r = app.get("/api/v1/auth/check", &credential).await;
    r.expect(200, None);
    assert_eq!(r.json["role"], "agent");
    app.get("/api/v1/certificates", &credential).await.expect(403, Some("forbidden"));
    app.get("/api/v1/agents", &credential).await.expect(403, Some("forbidden"));
    app.post_json("/api/v1/agent-tokens", &credential, &json!({})).await.expect(403, Some("forbidden"));
    let hb = json!({"version": "0.2.0", "hostname": "web01.internal", "os": "linux", "architecture": "arm64",
                    "ip_address": "10.9.9.9"});
    let r = app.post_json(&format!("/api/v1/agents/{agent_id}/heartbeat"), &credential, &hb).await;
    r.expect(200, None);
    assert_eq!(r.json["status"], "heartbeat_recorded");
    let a = app.get(&format!("/api/v1/agents/{agent_id}"), &app.viewer).await;
    assert_eq!((&a.json["version"], &a.json["architecture"]), (&json!("0.2.0"), &json!("arm64")));
    assert_eq!(a.json["last_heartbeat_at"], "2026-03-01T10:11:00Z");
    let other = a.json["id"].as_str().map(|_| "agent-someone-else").unwrap();
    app.post_json(&format!("/api/v1/agents/{other}/heartbeat"), &credential, &hb).await.expect(403, Some("forbidden"));
    app.get(&format!("/api/v1/agents/{other}/work"), &credential).await.expect(403, Some("forbidden"));
    app.post_json(&format!("/api/v1/agents/{agent_id}/heartbeat"), &app.admin, &hb)
        .await
        .expect(403, Some("forbidden"));
    let long = json!({"hostname": "h".repeat(300)});
    app.post_json(&format!("/api/v1/agents/{agent_id}/heartbeat"), &credential, &long)
        .await
        .expect_bad_field("hostname");

    // Silent agents go offline; the next heartbeat brings them back.
    app.clock.advance(Duration::minutes(6));
    let now = app.clock.now();
    let gone = app.store.mark_silent_agents_offline(now - certctl_store::ONLINE_WINDOW, now).await.unwrap();
    assert!(gone.contains(&agent_id), "{gone:?}");
    assert_eq!(app.get(&format!("/api/v1/agents/{agent_id}"), &app.viewer).await.json["status"], "Offline");
    app.post_json(&format!("/api/v1/agents/{agent_id}/heartbeat"), &credential, &hb).await.expect(200, None);
    assert_eq!(app.get(&format!("/api/v1/agents/{agent_id}"), &app.viewer).await.json["status"], "Online");

    // Retirement: a blocking target needs force and a reason; then every call is 410.
    let target = app
        .post_json(
            "/api/v1/targets",
            &app.operator,
            &json!({"name": "edge", "type": "NGINX", "agent_id": agent_id, "config": {"cert_path": "/etc/ssl/a.pem", "key_path": "/etc/ssl/a.key"}}),
        )
        .await;
    target.expect(201, None);
    let target_id = target.json["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v1/agents/{agent_id}"), &app.operator).await.expect(403, Some("forbidden"));
    let r = app.delete(&format!("/api/v1/agents/{agent_id}"), &app.admin).await;
    r.expect(409, Some("blocked_by_dependencies"));
    assert_eq!(r.json["counts"], json!({"targets": 1, "certificates": 0, "jobs": 0}));
    app.delete(&format!("/api/v1/agents/{agent_id}?force=true"), &app.admin).await.expect_bad_field("reason");
    let r = app.delete(&format!("/api/v1/agents/{agent_id}?force=true&reason=host%20decommissioned"), &app.admin).await;
    r.expect(200, None);
    assert_eq!((&r.json["cascade"], &r.json["already_retired"]), (&json!(true), &json!(false)));
    let t = app.get(&format!("/api/v1/targets/{target_id}"), &app.viewer).await;
    assert!(!t.json["retired_at"].is_null(), "the target retired with its agent: {}", t.json);
    let a = app.get(&format!("/api/v1/agents/{agent_id}"), &app.viewer).await;
    assert_eq!(a.json["retired_reason"], "host decommissioned");
    app.post_json(&format!("/api/v1/agents/{agent_id}/heartbeat"), &credential, &hb).await.expect(410, Some("gone"));
    app.get(&format!("/api/v1/agents/{agent_id}/work"), &credential).await.expect(410, Some("gone"));
    app.get("/api/v1/auth/check", &credential).await.expect(410, Some("gone"));
    app.delete(&format!("/api/v1/agents/{agent_id}"), &app.admin).await.expect(204, None);
    app.delete("/api/v1/agents/agent-missing", &app.admin).await.expect(404, Some("not_found"));

    let audit = app.get("/api/v1/audit?action=agent_enrolled", &app.viewer).await;
    assert_eq!(audit.json["data"].as_array().unwrap().len(), 2, "web01 and web04");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_credentials_heartbeats_and_retirement_sqlite() {
    enrolment(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_credentials_heartbeats_and_retirement_postgres() {
    enrolment(Backend::Postgres).await;
}

const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

async fn work_flow(backend: Backend) {
    let Some(ssl) = Openssl::new() else { return };
    let Some(app) = TestApp::on(backend).await else { return };
    let d = deps(&app, "agent").await;
    let (agent_id, credential) = enrolled(&app, "web01").await;
    let (other_id, other_credential) = enrolled(&app, "web02").await;
    let config = json!({"keystore_path": "/etc/ssl/web.p12", "keystore_password": "s3cret-token",
                        "reload_command": "systemctl reload tomcat"});
    let target = app
        .post_json(
            "/api/v1/targets",
            &app.operator,
            &json!({"name": "edge", "type": "JavaKeystore", "agent_id": agent_id, "config": config}),
        )
        .await;
    target.expect(201, None);
    let target_id = target.json["id"].as_str().unwrap().to_owned();
    let id = cert_for(&app, &d, None, "web", "web.example.com").await;
    app.put_json(&format!("/api/v1/certificates/{id}/targets/{target_id}"), &app.operator, &json!({}))
        .await
        .expect(204, None);
    let work_path = format!("/api/v1/agents/{agent_id}/work");
    let r = app.get(&work_path, &credential).await;
    r.expect(200, None);
    assert_eq!(r.json, json!({"jobs": [], "count": 0}));

    // A renewal in agent-key mode waits for this agent's CSR, and is offered at every poll.
    let job = renew(&app, &id).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    drain_jobs(&app.state).await;
    for _ in 0..2 {
        let r = app.get(&work_path, &credential).await;
        r.expect(200, None);
        assert_eq!(r.json["count"], 1, "{}", r.json);
        let item = &r.json["jobs"][0];
        assert_eq!(
            (&item["id"], &item["status"], &item["type"]),
            (&json!(job_id), &json!("AwaitingCSR"), &json!("Issuance"))
        );
        assert_eq!((&item["common_name"], &item["certificate_id"]), (&json!("web.example.com"), &json!(id)));
    }
    assert_eq!(app.get(&format!("/api/v1/agents/{other_id}/work"), &other_credential).await.json["count"], 0);

    // Only this agent may answer with a CSR for itself.
    ssl.ok(&[
        "req",
        "-new",
        "-nodes",
        "-keyout",
        "web.key",
        "-out",
        "web.csr",
        "-subj",
        "/CN=web.example.com",
        "-addext",
        "subjectAltName=DNS:web.example.com",
        P256[0],
        P256[1],
        P256[2],
        P256[3],
    ]);
    let csr_pem = ssl.read_text("web.csr");
    let body = json!({"certificate_id": id, "csr_pem": csr_pem});
    app.post_json(&format!("/api/v1/agents/{agent_id}/csr"), &other_credential, &body)
        .await
        .expect(403, Some("forbidden"));
    let r = app.post_json(&format!("/api/v1/agents/{agent_id}/csr"), &credential, &body).await;
    r.expect(201, None);
    assert_eq!(job_of(&app, &job_id).await["status"], "Completed");

    // The issuance fanned out a deployment to the mapped target: claimed by the next poll, with
    // the target's secrets in clear for this agent, and never handed out twice.
    let r = app.get(&work_path, &credential).await;
    r.expect(200, None);
    assert_eq!(r.json["count"], 1, "{}", r.json);
    let item = r.json["jobs"][0].clone();
    let deploy_id = item["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&item["type"], &item["status"], &item["attempts"]),
        (&json!("Deployment"), &json!("Running"), &json!(1))
    );
    assert_eq!((&item["target_id"], &item["target_type"]), (&json!(target_id), &json!("JavaKeystore")));
    assert_eq!(item["target_config"]["keystore_password"], "s3cret-token", "the agent gets the secret");
    assert!(item["common_name"].is_null());
    let redacted = app.get(&format!("/api/v1/targets/{target_id}"), &app.admin).await;
    assert_eq!(redacted.json["config"]["keystore_password"], "********", "nobody else does");
    assert_eq!(app.get(&work_path, &credential).await.json["count"], 0, "a claimed deployment is not handed out again");

    // The certificate to deploy; another agent may not fetch it.
    let cert_path = format!("/api/v1/agents/{agent_id}/certificates/{id}");
    let c = app.get(&cert_path, &credential).await;
    c.expect(200, None);
    assert!(c.json["certificate_pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let fingerprint = c.json["version"]["fingerprint_sha256"].as_str().unwrap().to_owned();
    app.get(&format!("/api/v1/agents/{other_id}/certificates/{id}"), &other_credential)
        .await
        .expect(403, Some("forbidden"));

    // Reports: only the owner, only on a Running job, with verification kept on the job.
    let report_path = format!("/api/v1/agents/{agent_id}/jobs/{deploy_id}/status");
    let other_report = format!("/api/v1/agents/{other_id}/jobs/{deploy_id}/status");
    app.post_json(&other_report, &other_credential, &json!({"status": "Completed"}))
        .await
        .expect(403, Some("forbidden"));
    app.post_json(&report_path, &credential, &json!({"status": "Pending"})).await.expect_bad_field("status");
    let bad_fp = json!({"status": "Completed", "verification": {"status": "success", "fingerprint": "abc"}});
    app.post_json(&report_path, &credential, &bad_fp).await.expect_bad_field("verification.fingerprint");
    app.post_json(&report_path, &credential, &json!({"status": "Running"})).await.expect(200, None);
    let done = json!({"status": "Completed", "verification": {"status": "success", "fingerprint": fingerprint}});
    let r = app.post_json(&report_path, &credential, &done).await;
    r.expect(200, None);
    assert_eq!((&r.json["status"], &r.json["verification_status"]), (&json!("Completed"), &json!("success")));
    assert_eq!(r.json["verification_fingerprint"], json!(fingerprint));
    app.post_json(&report_path, &credential, &json!({"status": "Failed", "error": "late"}))
        .await
        .expect(409, Some("conflict"));
    let c = app.get(&format!("/api/v1/certificates/{id}"), &app.viewer).await;
    assert!(!c.json["last_deployment_at"].is_null(), "{}", c.json);

    // A failed deployment alerts through the outbox (the warning tier; the default channel
    // here), in the transaction that records it; a success stays quiet under a policy that
    // routes nothing informational.
    let r = app.post_json(&format!("/api/v1/certificates/{id}/deploy"), &app.operator, &json!({})).await;
    r.expect(202, None);
    let w = app.get(&work_path, &credential).await;
    let failing = w.json["jobs"][0]["id"].as_str().unwrap().to_owned();
    let failed = json!({"status": "Failed", "error": "nginx -t: unknown directive \"ssl_certificat\""});
    let r = app.post_json(&format!("/api/v1/agents/{agent_id}/jobs/{failing}/status"), &credential, &failed).await;
    r.expect(200, None);
    assert_eq!((&r.json["status"], &r.json["last_error"]), (&json!("Failed"), &failed["error"]));
    let n = app.get(&format!("/api/v1/notifications?type=DeploymentFailure&certificate_id={id}"), &app.viewer).await;
    n.expect(200, None);
    assert_eq!(n.json["data"].as_array().unwrap().len(), 1, "{}", n.json);
    assert!(n.json["data"][0]["message"].as_str().unwrap().contains("unknown directive"), "{}", n.json);
    let quiet =
        app.get(&format!("/api/v1/notifications?type=DeploymentSuccess&certificate_id={id}"), &app.viewer).await;
    assert_eq!(quiet.json["data"].as_array().unwrap().len(), 0, "{}", quiet.json);

    // A claim the agent never reports on returns to the queue when it lapses, a bounded number of
    // times, then fails.
    let again = renew(&app, &id).await;
    drain_jobs(&app.state).await;
    ssl.ok(&[
        "req",
        "-new",
        "-nodes",
        "-keyout",
        "web2.key",
        "-out",
        "web2.csr",
        "-subj",
        "/CN=web.example.com",
        "-addext",
        "subjectAltName=DNS:web.example.com",
        P256[0],
        P256[1],
        P256[2],
        P256[3],
    ]);
    let body = json!({"certificate_id": id, "csr_pem": ssl.read_text("web2.csr")});
    app.post_json(&format!("/api/v1/agents/{agent_id}/csr"), &credential, &body).await.expect(201, None);
    assert_eq!(job_of(&app, again["id"].as_str().unwrap()).await["status"], "Completed");
    let first = app.get(&work_path, &credential).await;
    let lapsing = first.json["jobs"][0]["id"].as_str().unwrap().to_owned();
    for attempt in 2..=3 {
        app.clock.advance(Duration::minutes(11));
        let r = app.get(&work_path, &credential).await;
        assert_eq!((&r.json["jobs"][0]["id"], &r.json["jobs"][0]["attempts"]), (&json!(lapsing), &json!(attempt)));
    }
    app.clock.advance(Duration::minutes(11));
    assert_eq!(app.get(&work_path, &credential).await.json["count"], 0);
    let j = job_of(&app, &lapsing).await;
    assert_eq!(j["status"], "Failed");
    assert!(j["last_error"].as_str().unwrap().contains("did not report"), "{j}");
    assert!(app.clock.now() > T0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_work_csr_deployment_and_reports_sqlite() {
    work_flow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_work_csr_deployment_and_reports_postgres() {
    work_flow(Backend::Postgres).await;
}

async fn deploy_and_reassign(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let d = deps(&app, "deploy").await;
    let (agent_id, credential) = enrolled(&app, "web05").await;
    let prof = crate::pki_peer::server_profile(&app, "server keys").await;
    let id = cert_for(&app, &d, Some(&prof), "api", "api.example.com").await;
    let deploy = format!("/api/v1/certificates/{id}/deploy");

    // Nothing issued yet, then nothing mapped: refused with the reason.
    let r = app.post_json(&deploy, &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("not been issued"), "{}", r.message());
    assert_eq!(crate::pki_peer::issue(&app, &id).await["status"], "Completed");
    let r = app.post_json(&deploy, &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("no live target"), "{}", r.message());

    let mut targets = Vec::new();
    for name in ["edge-a", "edge-b"] {
        let body = json!({"name": name, "type": "NGINX", "agent_id": agent_id,
                          "config": {"cert_path": format!("/etc/ssl/{name}.pem"), "key_path": "/etc/ssl/k.pem"}});
        let t = app.post_json("/api/v1/targets", &app.operator, &body).await;
        t.expect(201, None);
        let t = t.json["id"].as_str().unwrap().to_owned();
        app.put_json(&format!("/api/v1/certificates/{id}/targets/{t}"), &app.operator, &json!({}))
            .await
            .expect(204, None);
        targets.push(t);
    }
    app.post_json(&deploy, &app.viewer, &json!({})).await.expect(403, Some("forbidden"));
    app.post_json(&deploy, &app.operator, &json!({"target_id": "tgt-elsewhere"})).await.expect_bad_field("target_id");
    app.post_json(&deploy, &app.operator, &json!({"target": "x"})).await.expect(400, Some("bad_request"));
    app.post_json("/api/v1/certificates/mc-missing/deploy", &app.operator, &json!({}))
        .await
        .expect(404, Some("not_found"));
    let r = app.post_json(&deploy, &app.operator, &json!({"target_id": targets[1]})).await;
    r.expect(202, None);
    assert_eq!((&r.json["status"], r.json["jobs"].as_array().unwrap().len()), (&json!("deployment_triggered"), 1));
    assert_eq!(
        (&r.json["jobs"][0]["target_id"], &r.json["jobs"][0]["agent_id"]),
        (&json!(targets[1]), &json!(agent_id))
    );
    // An empty body deploys to every mapped target.
    let r = app.send_body(axum::http::Method::POST, &deploy, &app.operator, "").await;
    r.expect(202, None);
    assert_eq!(r.json["jobs"].as_array().unwrap().len(), 2);
    // The issuance already fanned out one job per target; with the three above the agent has five.
    let w = app.get(&format!("/api/v1/agents/{agent_id}/work"), &credential).await;
    assert_eq!(w.json["count"], 3, "the issuance ran before any mapping, so only the three deploys: {}", w.json);

    // Bulk reassignment: per-item results, skips, and a refused unknown owner.
    let team2 = app.team("Other team").await;
    let bob = app.owner("bob", &team2).await;
    let other = cert_for(&app, &d, None, "other", "other.example.com").await;
    let body = json!({"certificate_ids": [id, other, "mc-missing", id], "owner_id": bob, "team_id": team2});
    app.post_json("/api/v1/certificates/bulk-reassign", &app.viewer, &body).await.expect(403, Some("forbidden"));
    let r = app.post_json("/api/v1/certificates/bulk-reassign", &app.operator, &body).await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["total_matched"], &r.json["total_reassigned"], &r.json["total_skipped"], &r.json["total_failed"]),
        (&json!(2), &json!(2), &json!(0), &json!(1))
    );
    assert_eq!(r.json["errors"][0]["certificate_id"], "mc-missing");
    let c = app.get(&format!("/api/v1/certificates/{other}"), &app.viewer).await;
    assert_eq!((&c.json["owner_id"], &c.json["team_id"]), (&json!(bob), &json!(team2)));
    let r = app.post_json("/api/v1/certificates/bulk-reassign", &app.operator, &body).await;
    assert_eq!((&r.json["total_reassigned"], &r.json["total_skipped"]), (&json!(0), &json!(2)));
    let bad = json!({"certificate_ids": [id], "owner_id": "o-nobody"});
    app.post_json("/api/v1/certificates/bulk-reassign", &app.operator, &bad).await.expect_bad_field("owner_id");
    let none = json!({"certificate_ids": [], "owner_id": bob});
    app.post_json("/api/v1/certificates/bulk-reassign", &app.operator, &none).await.expect_bad_field("certificate_ids");
    let audit = app.get("/api/v1/audit?action=certificate_reassigned", &app.viewer).await;
    assert_eq!(audit.json["data"].as_array().unwrap().len(), 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_mapped_targets_and_bulk_reassign_sqlite() {
    deploy_and_reassign(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_mapped_targets_and_bulk_reassign_postgres() {
    deploy_and_reassign(Backend::Postgres).await;
}

async fn discovery(backend: Backend) {
    let Some(ssl) = Openssl::new() else { return };
    let Some(app) = TestApp::on(backend).await else { return };
    // openssl dates its certificates from the real clock; the summary counts from the app's.
    app.clock.advance(time::OffsetDateTime::now_utc() - app.clock.now());
    let d = deps(&app, "disc").await;
    let (agent_id, credential) = enrolled(&app, "web07").await;
    let (other_id, other_credential) = enrolled(&app, "web08").await;
    // Two certificates made by openssl, as a host would have them: one leaf, one CA.
    ssl.ok(&[
        "req",
        "-x509",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.pem",
        "-days",
        "20",
        "-subj",
        "/CN=legacy.example.com",
        "-addext",
        "subjectAltName=DNS:legacy.example.com,IP:10.0.0.7",
    ]);
    ssl.ok(&[
        "req",
        "-x509",
        "-nodes",
        "-newkey",
        "rsa:2048",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=Old Corp CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ]);
    let leaf = ssl.read_text("leaf.pem");
    let ca = ssl.read_text("ca.pem");
    let fingerprint = ssl.ok(&["x509", "-in", "leaf.pem", "-noout", "-fingerprint", "-sha256"]);
    let fingerprint = fingerprint.trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();

    let path = format!("/api/v1/agents/{agent_id}/discoveries");
    let report = json!({"directories": ["/etc/ssl"], "certificates": [
        {"source_path": "/etc/ssl/legacy.pem", "pem_data": leaf},
        {"source_path": "/etc/ssl/ca.crt", "pem_data": ca, "source_format": "DER"},
        {"source_path": "/etc/ssl/broken.pem", "pem_data": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}
    ], "errors": ["/etc/ssl/store.p12: PKCS#12 with a password, skipped"], "scan_duration_ms": 12});
    app.post_json(&format!("/api/v1/agents/{other_id}/discoveries"), &credential, &report)
        .await
        .expect(403, Some("forbidden"));
    app.post_json(&path, &app.admin, &report).await.expect(403, Some("forbidden"));
    let relative = json!({"certificates": [{"source_path": "etc/x.pem", "pem_data": leaf}]});
    app.post_json(&path, &credential, &relative).await.expect_bad_field("certificates[0].source_path");
    let r = app.post_json(&path, &credential, &report).await;
    r.expect(202, None);
    assert_eq!((&r.json["received"], &r.json["new"], &r.json["updated"]), (&json!(3), &json!(2), &json!(0)));
    assert_eq!(r.json["rejected"][0]["source_path"], "/etc/ssl/broken.pem");
    let r = app.post_json(&path, &credential, &report).await;
    assert_eq!((&r.json["new"], &r.json["updated"]), (&json!(0), &json!(2)), "a re-report updates, never duplicates");
    // The same certificate on another host is another row.
    let r = app
        .post_json(
            &format!("/api/v1/agents/{other_id}/discoveries"),
            &other_credential,
            &json!({"certificates": [{"source_path": "/srv/legacy.pem", "pem_data": leaf}]}),
        )
        .await;
    assert_eq!(r.json["new"], 1);

    // Facts come from the certificate itself.
    let list = app.get(&format!("/api/v1/discovered-certificates?agent_id={agent_id}"), &app.viewer).await;
    list.expect(200, None);
    assert_eq!(list.json["total"], 2);
    let found = list.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source_path"] == "/etc/ssl/legacy.pem")
        .unwrap()
        .clone();
    assert_eq!(
        (&found["common_name"], &found["sans"]),
        (&json!("legacy.example.com"), &json!(["legacy.example.com", "10.0.0.7"]))
    );
    assert_eq!(
        (&found["fingerprint_sha256"], &found["key_algorithm"], &found["key_size"]),
        (&json!(fingerprint), &json!("ECDSA"), &json!(256))
    );
    // `openssl req -x509` marks self-signed certificates CA:TRUE by its default config; the row
    // says what the certificate says.
    let leaf_is_ca = ssl.ok(&["x509", "-in", "leaf.pem", "-noout", "-text"]).contains("CA:TRUE");
    assert_eq!((&found["status"], &found["is_ca"]), (&json!("Unmanaged"), &json!(leaf_is_ca)));
    let ca_row =
        list.json["data"].as_array().unwrap().iter().find(|c| c["source_path"] == "/etc/ssl/ca.crt").unwrap().clone();
    assert_eq!(
        (&ca_row["is_ca"], &ca_row["key_algorithm"], &ca_row["source_format"]),
        (&json!(true), &json!("RSA"), &json!("DER"))
    );
    app.get("/api/v1/discovered-certificates?status=Lost", &app.viewer).await.expect_bad_field("status");
    let s = app.get("/api/v1/discovery-summary", &app.viewer).await;
    assert_eq!(
        s.json,
        json!({"total": 3, "unmanaged": 3, "managed": 0, "dismissed": 0,
                              "unmanaged_expired": 0, "unmanaged_expiring_30d": 2})
    );

    // Triage: claim into a new managed certificate, claim into an existing one, dismiss.
    let id = found["id"].as_str().unwrap();
    let claim = format!("/api/v1/discovered-certificates/{id}/claim");
    app.post_json(&claim, &app.viewer, &json!({})).await.expect(403, Some("forbidden"));
    app.post_json(&claim, &app.operator, &json!({"name": "legacy"})).await.expect_bad_field("owner_id");
    let body = json!({"name": "legacy", "owner_id": d.owner, "team_id": d.team, "issuer_id": d.issuer,
                      "renewal_policy_id": d.policy});
    let r = app.post_json(&claim, &app.operator, &body).await;
    r.expect(200, None);
    assert_eq!(r.json["status"], "Managed");
    let managed = r.json["managed_certificate_id"].as_str().unwrap().to_owned();
    let m = app.get(&format!("/api/v1/certificates/{managed}"), &app.viewer).await;
    assert_eq!((&m.json["common_name"], &m.json["source"]), (&json!("legacy.example.com"), &json!("Agent")));
    app.post_json(&claim, &app.operator, &body).await.expect(409, Some("conflict"));
    app.post_json(&format!("/api/v1/discovered-certificates/{id}/dismiss"), &app.operator, &json!({}))
        .await
        .expect(409, Some("conflict"));
    let other_row = app.get(&format!("/api/v1/discovered-certificates?agent_id={other_id}"), &app.viewer).await;
    let other_dcert = other_row.json["data"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .post_json(
            &format!("/api/v1/discovered-certificates/{other_dcert}/claim"),
            &app.operator,
            &json!({"managed_certificate_id": managed}),
        )
        .await;
    r.expect(200, None);
    app.post_json(
        &format!("/api/v1/discovered-certificates/{other_dcert}/claim"),
        &app.operator,
        &json!({"managed_certificate_id": managed}),
    )
    .await
    .expect(409, Some("conflict"));
    let ca_id = ca_row["id"].as_str().unwrap();
    app.post_json(
        &format!("/api/v1/discovered-certificates/{ca_id}/claim"),
        &app.operator,
        &json!({"managed_certificate_id": "mc-nope"}),
    )
    .await
    .expect_bad_field("managed_certificate_id");
    let r = app.post_json(&format!("/api/v1/discovered-certificates/{ca_id}/dismiss"), &app.operator, &json!({})).await;
    r.expect(200, None);
    assert_eq!(r.json["status"], "Dismissed");
    let s = app.get("/api/v1/discovery-summary", &app.viewer).await;
    assert_eq!((&s.json["managed"], &s.json["dismissed"], &s.json["unmanaged"]), (&json!(2), &json!(1), &json!(0)));
    app.get("/api/v1/discovered-certificates/dcert-nope", &app.viewer).await.expect(404, Some("not_found"));
    let audit = app.get("/api/v1/audit?action=discovery_scan_completed", &app.viewer).await;
    assert_eq!(audit.json["data"].as_array().unwrap().len(), 3);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reports_and_triage_sqlite() {
    discovery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reports_and_triage_postgres() {
    discovery(Backend::Postgres).await;
}

/// Heartbeats recorded as one batch each get their own answer, and many at once through the
/// API all land.
async fn heartbeat_batches(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let (live, _) = enrolled(&app, "hb-live").await;
    let (other, _) = enrolled(&app, "hb-other").await;
    let (retired, _) = enrolled(&app, "hb-retired").await;
    app.delete(&format!("/api/v1/agents/{retired}"), &app.admin).await.expect(200, None);
    let beat = |version: &str| certctl_api::AgentHeartbeat {
        version: version.into(),
        hostname: "h.example.com".into(),
        os: "linux".into(),
        architecture: "amd64".into(),
        ip_address: "10.0.0.9".into(),
    };
    let batch = vec![
        (live.clone(), beat("1.0.0")),
        (retired.clone(), beat("1.0.0")),
        ("agent-unknown".to_owned(), beat("1.0.0")),
        (other.clone(), beat("2.0.0")),
        (live.clone(), beat("1.0.1")),
    ];
    let now = app.state.clock.now() + Duration::minutes(3);
    let answers = app.store.record_heartbeats(&batch, now).await.unwrap();
    assert_eq!(answers.len(), 5);
    assert!(answers[0].is_ok() && answers[3].is_ok() && answers[4].is_ok(), "{answers:?}");
    assert!(matches!(answers[1], Err(certctl_store::StoreError::Gone(_))), "{:?}", answers[1]);
    assert!(matches!(answers[2], Err(certctl_store::StoreError::NotFound { .. })), "{:?}", answers[2]);
    let a = app.get(&format!("/api/v1/agents/{live}"), &app.viewer).await;
    assert_eq!((a.json["version"].as_str(), a.json["status"].as_str()), (Some("1.0.1"), Some("Online")), "last wins");
    let expected = now.format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(a.json["last_heartbeat_at"], expected.as_str());
    let o = app.get(&format!("/api/v1/agents/{other}"), &app.viewer).await;
    assert_eq!(o.json["version"], "2.0.0");

    // Forty agents beating at once through the API: every one is recorded.
    let mut fleet = Vec::new();
    for i in 0..40 {
        fleet.push(enrolled(&app, &format!("hb-fleet-{i}")).await);
    }
    let body = json!({"version": "3.0.0", "hostname": "fleet", "os": "linux", "architecture": "amd64",
                      "ip_address": "10.0.0.1"});
    let paths: Vec<String> = fleet.iter().map(|(id, _)| format!("/api/v1/agents/{id}/heartbeat")).collect();
    let replies =
        futures::future::join_all(paths.iter().zip(&fleet).map(|(path, (_, cred))| app.post_json(path, cred, &body)))
            .await;
    for r in &replies {
        r.expect(200, None);
    }
    for (id, _) in &fleet {
        let a = app.get(&format!("/api/v1/agents/{id}"), &app.viewer).await;
        assert_eq!(a.json["version"], "3.0.0", "{id}");
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_recorded_in_batches_sqlite() {
    heartbeat_batches(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_recorded_in_batches_postgres() {
    heartbeat_batches(Backend::Postgres).await;
}
