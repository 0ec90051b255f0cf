//! Issuance through the API, checked with `openssl`: server-generated keys (issue, verify,
//! export as PEM and PKCS#12), agent keys (a CSR made by openssl completes the waiting job), the
//! refusals on the way, and the renewal scheduler and retries driven by the manual clock.

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use certctl_server::scheduler::{drain_jobs, renewal_scan};

use crate::fixtures::{Deps, agent, cert, cert_body, deps, lifecycle_audit, with};
use crate::harness::{Reply, T0, TestApp};
use crate::pki_peer::{
    Openssl, attime, cert_for, certificate, export_pem, issue, issued, issuer_chain, job_of, policy_with, renew,
    server_profile, versions,
};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The leaf lifetime of the fixture issuers (`validity_days` 90).
const LEAF_DAYS: i64 = 90;

#[tokio::test]
async fn server_key_issuance_verifies_and_exports() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let d = deps(&app, "srv").await;
    let prof = server_profile(&app, "server keys").await;
    let body =
        with(cert_body(&d, "web"), json!({"sans": ["alt.example.com", "10.1.2.3"], "certificate_profile_id": prof}));
    let id = cert(&app, &body).await;
    let before = certificate(&app, &id).await;
    assert_eq!((&before["status"], &before["expires_at"]), (&json!("Pending"), &json!(null)));

    let job = renew(&app, &id).await;
    assert_eq!((&job["type"], &job["status"], &job["attempts"]), (&json!("Issuance"), &json!("Pending"), &json!(0)));
    assert_eq!(certificate(&app, &id).await["status"], "RenewalInProgress");
    drain_jobs(&app.state).await;
    let job = job_of(&app, job["id"].as_str().unwrap()).await;
    assert_eq!((&job["status"], &job["attempts"], &job["last_error"]), (&json!("Completed"), &json!(1), &json!(null)));

    let not_after = T0 + Duration::days(LEAF_DAYS);
    let c = certificate(&app, &id).await;
    assert_eq!((&c["status"], &c["expires_at"]), (&json!("Active"), &json!(rfc3339(not_after))));
    assert_eq!(c["last_renewal_at"], rfc3339(T0));
    let vs = versions(&app, &id).await;
    assert_eq!(vs.len(), 1, "one version: {vs:?}");
    assert_eq!((&vs[0]["csr_pem"], &vs[0]["key_algorithm"]), (&json!(null), &json!("ECDSA")));

    let pem = export_pem(&app, &id).await;
    let chain = issuer_chain(&app, &d.issuer).await;
    assert_eq!(pem["chain_pem"], chain, "the leaf's chain is the issuer's signing chain");
    assert_eq!(pem["full_pem"], format!("{}{}", pem["cert_pem"].as_str().unwrap(), chain));
    let leaf = ssl.write("leaf.pem", pem["cert_pem"].as_str().unwrap());
    let ca = ssl.write("ca.pem", &chain);
    assert!(
        ssl.ok(&["verify", "-attime", &attime(&app), "-x509_strict", "-CAfile", ca, leaf]).contains("leaf.pem: OK")
    );
    // Another issuer's root does not verify it, so the check above has teeth.
    let other = deps(&app, "other").await;
    ssl.write("other.pem", issuer_chain(&app, &other.issuer).await);
    ssl.fails(&["verify", "-attime", &attime(&app), "-CAfile", "other.pem", leaf]);

    assert_eq!(ssl.serial(leaf), vs[0]["serial_number"].as_str().unwrap());
    assert_eq!(ssl.name_field(leaf, "subject"), "CN=web.example.com");
    assert_eq!(ssl.sans(leaf), ["DNS:alt.example.com", "DNS:web.example.com", "IP Address:10.1.2.3"]);
    let end = ssl.ok(&["x509", "-in", leaf, "-noout", "-enddate", "-dateopt", "iso_8601"]);
    assert_eq!(end.trim(), "notAfter=2026-05-30 10:00:00Z", "expires_at is the leaf's notAfter");
    let text = ssl.ok(&["x509", "-in", leaf, "-noout", "-text"]);
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains(&format!("/.well-known/pki/crl/ca-root-{}", d.issuer)), "the CDP names the CA: {text}");

    // PKCS#12 with the key: only for admin keys.
    let path = format!("/api/v1/certificates/{id}/export/pkcs12");
    let r = app.post_json(&path, &app.admin, &json!({"password": "p12-s3cret", "include_key": true})).await;
    r.expect(200, None);
    assert_eq!(r.headers["content-type"], "application/x-pkcs12");
    let p12 = ssl.write("full.p12", &r.body);
    let info = ssl.ok(&["pkcs12", "-info", "-nodes", "-in", p12, "-passin", "pass:p12-s3cret"]);
    assert!(info.contains("BEGIN PRIVATE KEY"), "the key is in the file: {info}");
    assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 2, "leaf and root: {info}");
    ssl.ok(&["pkcs12", "-in", p12, "-passin", "pass:p12-s3cret", "-nocerts", "-nodes", "-out", "key.pem"]);
    let key_pub = ssl.ok(&["pkey", "-in", "key.pem", "-pubout"]);
    assert_eq!(key_pub, ssl.cert_pubkey(leaf), "the exported key is the leaf's key");
    ssl.fails(&["pkcs12", "-info", "-nodes", "-in", p12, "-passin", "pass:wrong"]);

    let r = app.post_json(&path, &app.operator, &json!({"password": "p12-s3cret", "include_key": true})).await;
    r.expect(403, Some("forbidden"));
    app.post_json(&path, &app.admin, &json!({"password": "", "include_key": true})).await.expect(400, None);
    let r = app.post_json(&path, &app.viewer, &json!({"password": "certs-only"})).await;
    r.expect(200, None);
    let p12 = ssl.write("certs.p12", &r.body);
    let info = ssl.ok(&["pkcs12", "-info", "-nodes", "-in", p12, "-passin", "pass:certs-only"]);
    assert!(!info.contains("PRIVATE KEY"), "no key without include_key: {info}");
    assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 2, "{info}");
    // Nothing the read API returns carries the key.
    for body in [certificate(&app, &id).await.to_string(), json!(versions(&app, &id).await).to_string()] {
        assert!(!body.contains("PRIVATE KEY") && !body.contains("sealed"), "{body}");
    }
    app.finish().await;
}

/// A P-256 CSR made by openssl for `cn` with the given SAN list (`DNS:a,DNS:b`).
fn csr(ssl: &Openssl, name: &str, key_args: &[&str], cn: &str, san: &str) -> String {
    let key = format!("{name}.key");
    let out = format!("{name}.csr");
    let subj = format!("/CN={cn}");
    let ext = format!("subjectAltName={san}");
    let mut args = vec!["req", "-new", "-nodes", "-keyout", &key, "-out", &out, "-subj", &subj, "-addext", &ext];
    args.extend_from_slice(key_args);
    ssl.ok(&args);
    ssl.read_text(&out)
}

async fn submit_csr(app: &TestApp, key: &str, agent_id: &str, cert: &str, pem: &str) -> Reply {
    let body = json!({"certificate_id": cert, "csr_pem": pem});
    app.post_json(&format!("/api/v1/agents/{agent_id}/csr"), key, &body).await
}

const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

#[tokio::test]
async fn agent_key_issuance_from_an_openssl_csr() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let d = deps(&app, "agent").await;
    let agent_id = agent(&app.store, "web01").await;
    let id = cert_for(&app, &d, None, "web", "web.example.com").await;
    let job = renew(&app, &id).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    drain_jobs(&app.state).await;
    let j = job_of(&app, &job_id).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("AwaitingCSR"), &json!(1)));
    assert_eq!(certificate(&app, &id).await["status"], "RenewalInProgress");
    assert!(versions(&app, &id).await.is_empty(), "no certificate before the CSR");

    let csr_pem = csr(&ssl, "web", P256, "web.example.com", "DNS:web.example.com");
    let r = app
        .post_json(
            &format!("/api/v1/agents/{agent_id}/csr"),
            &app.operator,
            &json!({"certificate_id": id, "csr_pem": csr_pem}),
        )
        .await;
    r.expect(201, None);
    assert_eq!((&r.json["certificate_id"], &r.json["job_id"]), (&json!(id), &json!(job_id)));
    assert_eq!(r.json["not_after"], rfc3339(T0 + Duration::days(LEAF_DAYS)));
    let j = job_of(&app, &job_id).await;
    assert_eq!(j["status"], "Completed");
    let c = certificate(&app, &id).await;
    assert_eq!((&c["status"], &c["expires_at"]), (&json!("Active"), &r.json["not_after"]));
    let vs = versions(&app, &id).await;
    assert_eq!(vs.len(), 1);
    assert_eq!((&vs[0]["csr_pem"], &vs[0]["id"]), (&json!(csr_pem), &r.json["version_id"]));

    let leaf = ssl.write("leaf.pem", r.json["cert_pem"].as_str().unwrap());
    let ca = ssl.write("ca.pem", r.json["chain_pem"].as_str().unwrap());
    assert_eq!(r.json["chain_pem"], issuer_chain(&app, &d.issuer).await);
    assert!(
        ssl.ok(&["verify", "-attime", &attime(&app), "-x509_strict", "-CAfile", ca, leaf]).contains("leaf.pem: OK")
    );
    assert_eq!(ssl.serial(leaf), r.json["serial_number"].as_str().unwrap());
    let csr_pub = ssl.ok(&["req", "-in", "web.csr", "-noout", "-pubkey"]);
    assert!(csr_pub.contains("BEGIN PUBLIC KEY"), "{csr_pub}");
    assert_eq!(ssl.cert_pubkey(leaf), csr_pub, "the certificate carries the CSR's key");
    assert_eq!(ssl.sans(leaf), ["DNS:web.example.com"]);

    // The issuance is counted, with its duration, in the Prometheus exposition.
    let scrape = app.get("/metrics", &app.operator).await;
    let text = String::from_utf8_lossy(&scrape.body);
    assert!(text.contains("certctl_issuance_total{issuer_type=\"GenericCA\",outcome=\"success\"} 1"), "{text}");
    assert!(text.contains("certctl_issuance_duration_seconds_count{issuer_type=\"GenericCA\"} 1"), "{text}");

    // The server never held this key, so there is none to export.
    let r = app
        .post_json(
            &format!("/api/v1/certificates/{id}/export/pkcs12"),
            &app.admin,
            &json!({"password": "x-pass", "include_key": true}),
        )
        .await;
    r.expect(409, Some("conflict"));
    app.finish().await;
}

#[tokio::test]
async fn csr_submission_refusals() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let d = deps(&app, "bad").await;
    let agent_id = agent(&app.store, "web02").await;
    let id = cert_for(&app, &d, None, "api", "api.example.com").await;
    let job_id = renew(&app, &id).await["id"].as_str().unwrap().to_owned();
    drain_jobs(&app.state).await;
    assert_eq!(job_of(&app, &job_id).await["status"], "AwaitingCSR");
    let good = csr(&ssl, "good", P256, "api.example.com", "DNS:api.example.com");
    let r = submit_csr(&app, &app.operator, &agent_id, &id, "not a certificate request").await;
    r.expect(400, Some("bad_request"));
    let garbled = good.replace("MII", "MIX");
    submit_csr(&app, &app.operator, &agent_id, &id, &garbled).await.expect(400, Some("bad_request"));
    let weak = csr(&ssl, "weak", &["-newkey", "rsa:1024"], "api.example.com", "DNS:api.example.com");
    let r = submit_csr(&app, &app.operator, &agent_id, &id, &weak).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("RSA"), "{}", r.message());
    let wrong_cn = csr(&ssl, "cn", P256, "other.example.com", "DNS:api.example.com");
    let r = submit_csr(&app, &app.operator, &agent_id, &id, &wrong_cn).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("other.example.com"), "{}", r.message());
    let wrong_san = csr(&ssl, "san", P256, "api.example.com", "DNS:api.example.com,DNS:evil.example.net");
    let r = submit_csr(&app, &app.operator, &agent_id, &id, &wrong_san).await;
    r.expect(422, Some("unprocessable_entity"));
    assert!(r.message().contains("evil.example.net"), "{}", r.message());
    let r = app
        .post_json("/api/v1/agents/agent-missing/csr", &app.operator, &json!({"certificate_id": id, "csr_pem": good}))
        .await;
    r.expect(404, Some("not_found"));
    submit_csr(&app, &app.operator, &agent_id, "cert-missing", &good).await.expect(404, Some("not_found"));
    submit_csr(&app, &app.viewer, &agent_id, &id, &good).await.expect(403, Some("forbidden"));
    let j = job_of(&app, &job_id).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("AwaitingCSR"), &json!(1)), "refusals leave the job waiting");
    assert!(versions(&app, &id).await.is_empty());

    // One issuance at a time; `force` replaces the one under way.
    let r = app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains(&job_id), "the message names the open job: {}", r.message());
    let r = app.post_json(&format!("/api/v1/certificates/{id}/renew?force=true"), &app.operator, &json!({})).await;
    r.expect(202, None);
    let forced = r.json["job_id"].as_str().unwrap().to_owned();
    assert_ne!(forced, job_id);
    let old = job_of(&app, &job_id).await;
    assert_eq!((&old["status"], &old["last_error"]), (&json!("Cancelled"), &json!("replaced by a forced renewal")));
    let r = app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.operator, &json!({"force": true})).await;
    r.expect(202, None);
    assert_eq!(job_of(&app, &forced).await["status"], "Cancelled", "force in the body works too");
    app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.viewer, &json!({}))
        .await
        .expect(403, Some("forbidden"));
    app.post_json("/api/v1/certificates/cert-missing/renew", &app.operator, &json!({}))
        .await
        .expect(404, Some("not_found"));

    // With the open job replaced, the CSR completes the newest one.
    drain_jobs(&app.state).await;
    let r = submit_csr(&app, &app.operator, &agent_id, &id, &good).await;
    r.expect(201, None);
    assert_eq!(job_of(&app, r.json["job_id"].as_str().unwrap()).await["status"], "Completed");

    // Archived and revoked certificates are not renewed, nor issued from a CSR.
    let revoked = app.post_json(&format!("/api/v1/certificates/{id}/revoke"), &app.operator, &json!({})).await;
    revoked.expect(200, None);
    let r = app.post_json(&format!("/api/v1/certificates/{id}/renew"), &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("Revoked"), "{}", r.message());
    submit_csr(&app, &app.operator, &agent_id, &id, &good).await.expect(409, Some("conflict"));
    let archived = cert_for(&app, &d, None, "gone", "gone.example.com").await;
    app.delete(&format!("/api/v1/certificates/{archived}"), &app.operator).await.expect(204, None);
    let r = app.post_json(&format!("/api/v1/certificates/{archived}/renew"), &app.operator, &json!({})).await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("Archived"), "{}", r.message());
    app.finish().await;
}

/// A server-key certificate under a policy with `settings`.
async fn managed(app: &TestApp, tag: &str, settings: serde_json::Value) -> (Deps, String) {
    let mut d = deps(app, tag).await;
    d.policy = policy_with(app, &format!("policy {tag} custom"), settings).await;
    let prof = server_profile(app, &format!("server {tag}")).await;
    let id = cert_for(app, &d, Some(&prof), tag, &format!("{tag}.example.com")).await;
    (d, id)
}

/// Every job of a certificate, newest first.
async fn jobs_of(app: &TestApp, cert_id: &str) -> Vec<serde_json::Value> {
    let r = app.get(&format!("/api/v1/jobs?certificate_id={cert_id}"), &app.viewer).await;
    r.expect(200, None);
    r.json["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn renewal_window_drives_reissuance() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let (d, id) = managed(&app, "renew", json!({"renewal_window_days": 30})).await;
    assert_eq!(issue(&app, &id).await["status"], "Completed");
    let first = versions(&app, &id).await[0].clone();

    // Outside the window the scan leaves the certificate alone.
    renewal_scan(&app.state).await;
    app.clock.advance(Duration::days(LEAF_DAYS - 31));
    renewal_scan(&app.state).await;
    assert_eq!(certificate(&app, &id).await["status"], "Active");
    assert_eq!(jobs_of(&app, &id).await.len(), 1);

    // Two days later 29 days are left: inside the 30-day window.
    app.clock.advance(Duration::days(2));
    let renewed_at = T0 + Duration::days(LEAF_DAYS - 29);
    renewal_scan(&app.state).await;
    assert_eq!(certificate(&app, &id).await["status"], "RenewalInProgress");
    let jobs = jobs_of(&app, &id).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!((&job["type"], &job["status"], &job["max_attempts"]), (&json!("Renewal"), &json!("Pending"), &json!(4)));
    let audit = lifecycle_audit(&app.store).await;
    let created = audit.iter().find(|e| e.action == "renewal_job_created" && e.resource_id == id).expect("audited");
    assert_eq!((&created.details["job_id"], &created.details["trigger"]), (&job["id"], &json!("scheduler")));
    assert!(audit.iter().any(|e| e.action == "certificate_expiring" && e.resource_id == id));
    renewal_scan(&app.state).await;
    assert_eq!(jobs_of(&app, &id).await.len(), 2, "an open job is not doubled");

    drain_jobs(&app.state).await;
    assert_eq!(job_of(&app, job["id"].as_str().unwrap()).await["status"], "Completed");
    let c = certificate(&app, &id).await;
    let expires = renewed_at + Duration::days(LEAF_DAYS);
    assert_eq!((&c["status"], &c["expires_at"]), (&json!("Active"), &json!(rfc3339(expires))));
    assert_eq!(c["last_renewal_at"], rfc3339(renewed_at));
    let vs = versions(&app, &id).await;
    assert_eq!(vs.len(), 2);
    assert_ne!(vs[0]["serial_number"], first["serial_number"], "a renewal is a new certificate");
    assert_eq!(vs[1]["id"], first["id"]);
    let leaf = ssl.write("leaf.pem", export_pem(&app, &id).await["cert_pem"].as_str().unwrap());
    assert_eq!(ssl.serial(leaf), vs[0]["serial_number"].as_str().unwrap(), "export/pem gives the newest version");
    ssl.write("ca.pem", issuer_chain(&app, &d.issuer).await);
    ssl.ok(&["verify", "-attime", &attime(&app), "-x509_strict", "-CAfile", "ca.pem", leaf]);

    renewal_scan(&app.state).await;
    assert_eq!(jobs_of(&app, &id).await.len(), 2, "the renewed certificate is outside the window again");
    app.finish().await;
}

#[tokio::test]
async fn without_auto_renew_a_certificate_expires() {
    let app = TestApp::new().await;
    let (_, id) = managed(&app, "lapse", json!({"auto_renew": false})).await;
    assert_eq!(issue(&app, &id).await["status"], "Completed");
    app.clock.advance(Duration::days(LEAF_DAYS - 10));
    renewal_scan(&app.state).await;
    assert_eq!(certificate(&app, &id).await["status"], "Expiring", "inside the window, but no renewal");
    assert_eq!(jobs_of(&app, &id).await.len(), 1);
    app.clock.advance(Duration::days(9));
    renewal_scan(&app.state).await;
    assert_eq!(certificate(&app, &id).await["status"], "Expiring");
    app.clock.advance(Duration::days(1));
    renewal_scan(&app.state).await;
    assert_eq!(certificate(&app, &id).await["status"], "Expired", "expired from expires_at on");
    assert_eq!(jobs_of(&app, &id).await.len(), 1, "no job without auto-renew");
    let audit = lifecycle_audit(&app.store).await;
    assert!(audit.iter().any(|e| e.action == "certificate_expired" && e.resource_id == id));
    app.finish().await;
}

#[tokio::test]
async fn failed_issuance_retries_with_backoff_then_fails() {
    let app = TestApp::new().await;
    let (d, id) = managed(&app, "fail", json!({"max_retries": 2, "retry_interval_seconds": 60})).await;
    // Retiring the issuer's only CA leaves nothing to sign with.
    let root = format!("ca-root-{}", d.issuer);
    issuer_chain(&app, &d.issuer).await;
    let r = app.post_json(&format!("/api/v1/intermediates/{root}/retire"), &app.admin, &json!({})).await;
    r.expect(200, None);
    assert_eq!(r.json["state"], "retiring");
    app.get(&format!("/api/v1/issuers/{}/ca", d.issuer), &app.viewer).await.expect(409, Some("conflict"));

    let job = renew(&app, &id).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["max_attempts"], 3, "max_retries + 1");
    drain_jobs(&app.state).await;
    let j = job_of(&app, &job_id).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("Pending"), &json!(1)));
    assert!(j["last_error"].as_str().unwrap().contains("no active certificate authority"), "{j}");
    assert_eq!(j["scheduled_at"], rfc3339(T0 + Duration::seconds(60)));
    assert_eq!(certificate(&app, &id).await["status"], "RenewalInProgress");

    app.clock.advance(Duration::seconds(59));
    drain_jobs(&app.state).await;
    assert_eq!(job_of(&app, &job_id).await["attempts"], 1, "not due before the interval");
    app.clock.advance(Duration::seconds(1));
    drain_jobs(&app.state).await;
    let j = job_of(&app, &job_id).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("Pending"), &json!(2)));
    assert_eq!(j["scheduled_at"], rfc3339(T0 + Duration::seconds(60 + 120)), "the interval doubles");
    app.clock.advance(Duration::seconds(119));
    drain_jobs(&app.state).await;
    assert_eq!(job_of(&app, &job_id).await["attempts"], 2);
    app.clock.advance(Duration::seconds(1));
    drain_jobs(&app.state).await;
    let j = job_of(&app, &job_id).await;
    assert_eq!((&j["status"], &j["attempts"]), (&json!("Failed"), &json!(3)));
    assert!(j["completed_at"].is_string());
    assert_eq!(certificate(&app, &id).await["status"], "Failed");
    let audit = lifecycle_audit(&app.store).await;
    let failed = audit.iter().find(|e| e.action == "renewal_failed" && e.resource_id == id).expect("audited");
    assert_eq!((&failed.details["job_id"], &failed.details["attempts"]), (&json!(job_id), &json!(3)));
    assert_eq!(audit.iter().filter(|e| e.action == "job_retry_scheduled" && e.resource_id == job_id).count(), 2);
    app.clock.advance(Duration::days(1));
    drain_jobs(&app.state).await;
    assert_eq!(job_of(&app, &job_id).await["attempts"], 3, "a failed job is never claimed again");

    // A retiring CA signs no new CA either; a failed certificate may still be renewed by hand,
    // and without an active CA that attempt waits for its retry too.
    let r = app
        .post_json(
            &format!("/api/v1/issuers/{}/intermediates", d.issuer),
            &app.admin,
            &json!({"name": "fresh", "parent_ca_id": root}),
        )
        .await;
    r.expect(409, Some("conflict"));
    let job = issue(&app, &id).await;
    assert_eq!(job["status"], "Pending", "still no active CA: {job}");
    app.finish().await;
}

/// The same server-key issuance on PostgreSQL, when a test database is configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_key_issuance_on_postgres() {
    let Some(ssl) = Openssl::new() else { return };
    let Some(app) = TestApp::on(certctl_store::Backend::Postgres).await else { return };
    let d = deps(&app, "pg").await;
    let prof = server_profile(&app, "server pg").await;
    let (id, leaf) = issued(&app, &d, &prof, "pg", "pg.example.com").await;
    assert_eq!(certificate(&app, &id).await["status"], "Active");
    let leaf = ssl.write("leaf.pem", leaf);
    ssl.write("ca.pem", issuer_chain(&app, &d.issuer).await);
    ssl.ok(&["verify", "-attime", &attime(&app), "-x509_strict", "-CAfile", "ca.pem", leaf]);
    app.finish().await;
}

#[tokio::test]
async fn archiving_ends_an_open_issuance() {
    let app = TestApp::new().await;
    let (_, id) = managed(&app, "shelved", json!({})).await;
    let job_id = renew(&app, &id).await["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v1/certificates/{id}"), &app.operator).await.expect(204, None);
    drain_jobs(&app.state).await;
    let c = certificate(&app, &id).await;
    assert_eq!(c["status"], "Archived", "an archived certificate stays archived: {c}");
    assert!(versions(&app, &id).await.is_empty(), "nothing is issued for an archived certificate");
    let job = job_of(&app, &job_id).await;
    assert!(job["status"] == "Cancelled" || job["status"] == "Failed", "{job}");
    app.finish().await;
}
