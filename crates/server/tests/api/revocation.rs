//! Revocation through the API and what relying parties see of it, checked with `openssl`: the
//! DER CRL (signature, CRL number, ETag) and the OCSP responder (POST and RFC 5019 GET, nonces,
//! good / revoked / unknown, and OCSP error statuses instead of HTTP errors).

use axum::http::{Method, header};
use serde_json::json;
use time::Duration;

use certctl_server::clock::Clock;
use certctl_server::scheduler::drain_jobs;

use crate::fixtures::{Deps, deps, lifecycle_audit};
use crate::harness::{NO_KEY, Reply, TestApp};
use crate::pki_peer::{
    Openssl, attime, base64, cert_for, certificate, issued, issuer_chain, job_of, ocsp_post, ocsp_request, ocsp_status,
    renew, server_profile, to_wall_clock, url_encode_base64, versions,
};

/// An issuer with a server-key profile.
async fn setup(app: &TestApp, tag: &str) -> (Deps, String) {
    let d = deps(app, tag).await;
    let prof = server_profile(app, &format!("server {tag}")).await;
    (d, prof)
}

async fn revoke(app: &TestApp, id: &str, reason: &str) -> Reply {
    app.post_json(&format!("/api/v1/certificates/{id}/revoke"), &app.operator, &json!({"reason": reason})).await
}

async fn crl(app: &TestApp, id: &str, if_none_match: Option<&str>) -> Reply {
    let mut req = TestApp::request(Method::GET, &format!("/.well-known/pki/crl/{id}"), NO_KEY);
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    app.send(req.body(axum::body::Body::empty()).unwrap()).await
}

fn etag(r: &Reply) -> String {
    r.headers[header::ETAG].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn revocation_rules() {
    let app = TestApp::new().await;
    let (d, prof) = setup(&app, "rules").await;
    let pending = cert_for(&app, &d, Some(&prof), "pending", "pending.example.com").await;
    let r = revoke(&app, &pending, "keyCompromise").await;
    r.expect(409, Some("conflict"));
    assert!(r.message().contains("no issued version"), "{}", r.message());

    let (a, _) = issued(&app, &d, &prof, "a", "a.example.com").await;
    let (b, _) = issued(&app, &d, &prof, "b", "b.example.com").await;
    let serial = versions(&app, &a).await[0]["serial_number"].clone();
    app.clock.advance(Duration::minutes(5));
    app.post_json(&format!("/api/v1/certificates/{a}/revoke"), &app.viewer, &json!({"reason": "keyCompromise"}))
        .await
        .expect(403, Some("forbidden"));
    let r = revoke(&app, &a, "keyCompromise").await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["status"], &r.json["certificate_id"], &r.json["serial_number"], &r.json["reason"]),
        (&json!("revoked"), &json!(a), &serial, &json!("keyCompromise"))
    );
    assert_eq!(r.json["revoked_at"], "2026-03-01T10:05:00Z");
    let c = certificate(&app, &a).await;
    assert_eq!(
        (&c["status"], &c["revocation_reason"], &c["revoked_at"]),
        (&json!("Revoked"), &json!("keyCompromise"), &json!("2026-03-01T10:05:00Z"))
    );
    let again = revoke(&app, &a, "superseded").await;
    again.expect(409, Some("conflict"));
    assert_eq!(certificate(&app, &a).await["revocation_reason"], "keyCompromise", "the first reason stays");

    let r = revoke(&app, &b, "becauseISaidSo").await;
    r.expect(400, Some("bad_request"));
    assert!(r.message().starts_with("reason:"), "{}", r.message());
    assert_eq!(certificate(&app, &b).await["status"], "Active", "a refused revocation changes nothing");
    revoke(&app, "cert-missing", "keyCompromise").await.expect(404, Some("not_found"));
    // Without a body the reason is `unspecified`.
    let r = app.post_json(&format!("/api/v1/certificates/{b}/revoke"), &app.operator, &json!({})).await;
    r.expect(200, None);
    assert_eq!(r.json["reason"], "unspecified");

    let audit = lifecycle_audit(&app.store).await;
    let e = audit.iter().find(|e| e.action == "certificate_revoked" && e.resource_id == a).expect("audited");
    assert_eq!((&e.details["serial_number"], &e.details["reason"]), (&serial, &json!("keyCompromise")));
    assert_eq!(e.actor, "operator");
    app.finish().await;
}

#[tokio::test]
async fn crl_lists_revocations_and_verifies() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let (d, prof) = setup(&app, "crl").await;
    let (a, a_pem) = issued(&app, &d, &prof, "a", "a.example.com").await;
    let (_, b_pem) = issued(&app, &d, &prof, "b", "b.example.com").await;
    let ca = ssl.write("ca.pem", issuer_chain(&app, &d.issuer).await);
    let a_leaf = ssl.write("a.pem", a_pem);
    let b_leaf = ssl.write("b.pem", b_pem);
    let other = deps(&app, "other").await;
    ssl.write("other.pem", issuer_chain(&app, &other.issuer).await);

    let r = crl(&app, &d.issuer, None).await;
    r.expect(200, None);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pkix-crl");
    assert!(r.headers[header::CACHE_CONTROL].to_str().unwrap().starts_with("public, max-age="));
    let first_tag = etag(&r);
    ssl.write("crl0.der", &r.body);
    assert!(ssl.crl_verifies("crl0.der", ca));
    assert!(!ssl.crl_verifies("crl0.der", "other.pem"), "another issuer's CA does not vouch for it");
    let mut forged = r.body.to_vec();
    *forged.last_mut().unwrap() ^= 0x01;
    ssl.write("forged.der", forged);
    assert!(!ssl.crl_verifies("forged.der", ca), "a corrupted signature is caught");
    let n0 = ssl.crl_number("crl0.der");
    let crl0 = ssl.crl_to_pem("crl0.der", "crl0.pem");
    let at = attime(&app);
    ssl.ok(&["verify", "-attime", &at, "-crl_check", "-CRLfile", crl0, "-CAfile", ca, a_leaf]);
    assert!(ssl.ok(&["crl", "-in", crl0, "-noout", "-text"]).contains("No Revoked Certificates"));

    let r = crl(&app, &d.issuer, Some(&first_tag)).await;
    r.expect(304, None);
    assert!(r.body.is_empty());
    assert_eq!(etag(&r), first_tag);
    crl(&app, &d.issuer, Some("*")).await.expect(304, None);
    crl(&app, &d.issuer, Some("\"other\"")).await.expect(200, None);

    // The revocation is in the next CRL at once.
    revoke(&app, &a, "keyCompromise").await.expect(200, None);
    let r = crl(&app, &d.issuer, Some(&first_tag)).await;
    r.expect(200, None);
    let second_tag = etag(&r);
    assert_ne!(second_tag, first_tag);
    ssl.write("crl1.der", &r.body);
    assert!(ssl.crl_verifies("crl1.der", ca));
    let n1 = ssl.crl_number("crl1.der");
    assert!(n1 > n0, "CRL numbers grow: {n0} then {n1}");
    let crl1 = ssl.crl_to_pem("crl1.der", "crl1.pem");
    let out = ssl.fails(&["verify", "-attime", &at, "-crl_check", "-CRLfile", crl1, "-CAfile", ca, a_leaf]);
    assert!(out.contains("certificate revoked"), "{out}");
    let out = ssl.ok(&["verify", "-attime", &at, "-crl_check", "-CRLfile", crl1, "-CAfile", ca, b_leaf]);
    assert!(out.contains("b.pem: OK"), "{out}");
    let text = ssl.ok(&["crl", "-in", crl1, "-noout", "-text"]).to_ascii_lowercase();
    assert!(text.contains(&format!("serial number: {}", ssl.serial(a_leaf))), "{text}");
    assert!(!text.contains(&ssl.serial(b_leaf)), "{text}");
    assert!(text.contains("key compromise"), "{text}");

    // The CA's own ID names the same CRL; unknown IDs are 404.
    let r = crl(&app, &format!("ca-root-{}", d.issuer), None).await;
    r.expect(200, None);
    assert_eq!(etag(&r), second_tag);
    crl(&app, "iss-missing", None).await.expect(404, Some("not_found"));

    // Without revocations the CRL is still rebuilt when it ages, with a higher number.
    app.clock.advance(Duration::minutes(61));
    let r = crl(&app, &d.issuer, Some(&second_tag)).await;
    r.expect(200, None);
    ssl.write("crl2.der", &r.body);
    let n2 = ssl.crl_number("crl2.der");
    assert!(n2 > n1, "a rebuilt CRL has a higher number: {n1} then {n2}");
    let crl2 = ssl.crl_to_pem("crl2.der", "crl2.pem");
    let at = attime(&app);
    let out = ssl.fails(&["verify", "-attime", &at, "-crl_check", "-CRLfile", crl2, "-CAfile", ca, a_leaf]);
    assert!(out.contains("certificate revoked"), "{out}");
    app.finish().await;
}

#[tokio::test]
async fn ocsp_answers_good_then_revoked() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    // openssl judges an OCSP response's thisUpdate/nextUpdate by the wall clock.
    to_wall_clock(&app);
    let (d, prof) = setup(&app, "ocsp").await;
    let (a, a_pem) = issued(&app, &d, &prof, "a", "a.example.com").await;
    let (_, b_pem) = issued(&app, &d, &prof, "b", "b.example.com").await;
    let ca = ssl.write("ca.pem", issuer_chain(&app, &d.issuer).await);
    let a_leaf = ssl.write("a.pem", a_pem);
    let b_leaf = ssl.write("b.pem", b_pem);
    let a_nonce = ocsp_request(&ssl, ca, a_leaf, "a_nonce.req", true);
    let a_plain = ocsp_request(&ssl, ca, a_leaf, "a_plain.req", false);
    let b_nonce = ocsp_request(&ssl, ca, b_leaf, "b_nonce.req", true);
    let get_path = format!("/.well-known/pki/ocsp/{}/{}", d.issuer, url_encode_base64(&base64(&a_plain)));

    let r = ocsp_post(&app, &d.issuer, a_nonce.clone()).await;
    ssl.write("a1.resp", &r.body);
    assert!(ocsp_status(&ssl, "a1.resp", "a_nonce.req", ca, ca, a_leaf).contains("a.pem: good"));
    let text = ssl.ok(&["ocsp", "-respin", "a1.resp", "-resp_text", "-noverify"]);
    assert!(text.contains("OCSP Nonce"), "the nonce is echoed: {text}");
    let r = ocsp_post(&app, &d.issuer, a_plain.clone()).await;
    ssl.write("a2.resp", &r.body);
    assert!(ocsp_status(&ssl, "a2.resp", "a_plain.req", ca, ca, a_leaf).contains("a.pem: good"));
    let r = app.get(&get_path, NO_KEY).await;
    r.expect(200, None);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/ocsp-response");
    ssl.write("a3.resp", &r.body);
    assert!(ocsp_status(&ssl, "a3.resp", "a_plain.req", ca, ca, a_leaf).contains("a.pem: good"));
    // The OCSP path may also be the CA's own ID.
    let r = ocsp_post(&app, &format!("ca-root-{}", d.issuer), a_nonce.clone()).await;
    ssl.write("a4.resp", &r.body);
    assert!(ocsp_status(&ssl, "a4.resp", "a_nonce.req", ca, ca, a_leaf).contains("a.pem: good"));

    // Revoked, and visible at once over every form, cached or not.
    revoke(&app, &a, "keyCompromise").await.expect(200, None);
    for (i, (req, der)) in [("a_nonce.req", &a_nonce), ("a_plain.req", &a_plain)].into_iter().enumerate() {
        let r = ocsp_post(&app, &d.issuer, der.clone()).await;
        let resp = format!("a_revoked{i}.resp");
        ssl.write(&resp, &r.body);
        let out = ocsp_status(&ssl, &resp, req, ca, ca, a_leaf);
        assert!(out.contains("a.pem: revoked") && out.contains("Reason: keyCompromise"), "{out}");
    }
    let r = app.get(&get_path, NO_KEY).await;
    r.expect(200, None);
    ssl.write("a_revoked_get.resp", &r.body);
    let out = ocsp_status(&ssl, "a_revoked_get.resp", "a_plain.req", ca, ca, a_leaf);
    assert!(out.contains("a.pem: revoked") && out.contains("Reason: keyCompromise"), "{out}");
    let r = ocsp_post(&app, &d.issuer, b_nonce).await;
    ssl.write("b.resp", &r.body);
    assert!(ocsp_status(&ssl, "b.resp", "b_nonce.req", ca, ca, b_leaf).contains("b.pem: good"));

    // A serial this CA never issued is `unknown`.
    ssl.ok(&["ocsp", "-issuer", ca, "-serial", "0x0badc0de", "-reqout", "u.req"]);
    let r = ocsp_post(&app, &d.issuer, ssl.read("u.req")).await;
    ssl.write("u.resp", &r.body);
    let out = ssl.ok(&["ocsp", "-respin", "u.resp", "-reqin", "u.req", "-CAfile", ca]);
    assert!(out.contains("Response verify OK"), "{out}");
    let out =
        ssl.ok(&["ocsp", "-respin", "u.resp", "-issuer", ca, "-serial", "0x0badc0de", "-CAfile", ca, "-no_nonce"]);
    assert!(out.contains("0x0badc0de: unknown"), "{out}");
    app.finish().await;
}

/// What openssl reads from an OCSP response that is not `successful`.
fn ocsp_error(ssl: &Openssl, name: &str, body: &[u8]) -> String {
    ssl.write(name, body);
    ssl.run(&["ocsp", "-respin", name, "-resp_text", "-noverify"]).text()
}

#[tokio::test]
async fn ocsp_problems_are_ocsp_statuses() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    to_wall_clock(&app);
    let (d, prof) = setup(&app, "errs").await;
    let (_, a_pem) = issued(&app, &d, &prof, "a", "a.example.com").await;
    let other = deps(&app, "elsewhere").await;
    let ca = ssl.write("ca.pem", issuer_chain(&app, &d.issuer).await);
    let a_leaf = ssl.write("a.pem", a_pem);
    let a_req = ocsp_request(&ssl, ca, a_leaf, "a.req", true);

    let r = ocsp_post(&app, &d.issuer, b"definitely not DER".to_vec()).await;
    let out = ocsp_error(&ssl, "garbage.resp", &r.body);
    assert!(out.contains("malformedrequest"), "{out}");
    let r = ocsp_post(&app, &d.issuer, Vec::new()).await;
    assert!(ocsp_error(&ssl, "empty.resp", &r.body).contains("malformedrequest"));
    let mut truncated = a_req.clone();
    truncated.truncate(a_req.len() / 2);
    let r = ocsp_post(&app, &d.issuer, truncated).await;
    assert!(ocsp_error(&ssl, "truncated.resp", &r.body).contains("malformedrequest"));
    let r = ocsp_post(&app, &d.issuer, vec![0x30; 20_000]).await;
    assert!(ocsp_error(&ssl, "huge.resp", &r.body).contains("malformedrequest"));
    let r = app.get(&format!("/.well-known/pki/ocsp/{}/%%%not-base64!!", d.issuer), NO_KEY).await;
    r.expect(200, None);
    assert!(ocsp_error(&ssl, "get.resp", &r.body).contains("malformedrequest"));

    // A request for this CA sent to a path that names no CA, or another issuer's CA.
    let r = ocsp_post(&app, "iss-missing", a_req.clone()).await;
    let out = ocsp_error(&ssl, "missing.resp", &r.body);
    assert!(out.contains("unauthorized"), "{out}");
    // The other issuer's root exists once its chain was read.
    issuer_chain(&app, &other.issuer).await;
    let r = ocsp_post(&app, &other.issuer, a_req.clone()).await;
    assert!(ocsp_error(&ssl, "foreign.resp", &r.body).contains("unauthorized"));
    let r = app.get(&format!("/.well-known/pki/ocsp/iss-missing/{}", url_encode_base64(&base64(&a_req))), NO_KEY).await;
    r.expect(200, None);
    assert!(ocsp_error(&ssl, "missing_get.resp", &r.body).contains("unauthorized"));
    app.finish().await;
}

/// A cached response must not answer for a path that names no CA: the path decides which CAs
/// may answer, whether or not the response was signed before.
#[tokio::test]
async fn ocsp_cache_is_bound_to_the_path() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    to_wall_clock(&app);
    let (d, prof) = setup(&app, "cache").await;
    let (_, a_pem) = issued(&app, &d, &prof, "a", "a.example.com").await;
    let ca = ssl.write("ca.pem", issuer_chain(&app, &d.issuer).await);
    let a_leaf = ssl.write("a.pem", a_pem);
    let plain = ocsp_request(&ssl, ca, a_leaf, "a.req", false);
    let r = ocsp_post(&app, &d.issuer, plain.clone()).await;
    ssl.write("a.resp", &r.body);
    assert!(ocsp_status(&ssl, "a.resp", "a.req", ca, ca, a_leaf).contains("a.pem: good"));

    let r = ocsp_post(&app, "iss-missing", plain.clone()).await;
    let out = ocsp_error(&ssl, "missing.resp", &r.body);
    assert!(out.contains("unauthorized"), "a path naming no CA is refused even for a cached CertID: {out}");
    app.finish().await;
}

#[tokio::test]
async fn bulk_revoke_reports_per_item() {
    let Some(ssl) = Openssl::new() else { return };
    let app = TestApp::new().await;
    let (d, prof) = setup(&app, "bulk").await;
    let (a, a_pem) = issued(&app, &d, &prof, "a", "a.example.com").await;
    let (b, b_pem) = issued(&app, &d, &prof, "b", "b.example.com").await;
    let (c, _) = issued(&app, &d, &prof, "c", "c.example.com").await;
    let pending = cert_for(&app, &d, Some(&prof), "p", "p.example.com").await;
    let body = json!({"reason": "superseded", "certificate_ids": [a, "cert-missing", b, pending]});

    app.post_json("/api/v1/certificates/bulk-revoke", &app.operator, &body).await.expect(403, Some("forbidden"));
    let bad = json!({"reason": "whim", "certificate_ids": [a]});
    let r = app.post_json("/api/v1/certificates/bulk-revoke", &app.admin, &bad).await;
    r.expect(400, Some("bad_request"));
    app.post_json("/api/v1/certificates/bulk-revoke", &app.admin, &json!({"reason": "superseded"}))
        .await
        .expect(400, Some("bad_request"));
    assert_eq!(certificate(&app, &a).await["status"], "Active", "refused bulk requests revoke nothing");

    let r = app.post_json("/api/v1/certificates/bulk-revoke", &app.admin, &body).await;
    r.expect(200, None);
    assert_eq!(
        (&r.json["total_matched"], &r.json["total_revoked"], &r.json["total_skipped"], &r.json["total_failed"]),
        (&json!(3), &json!(2), &json!(0), &json!(2)),
        "{}",
        r.json
    );
    let errors = r.json["errors"].as_array().unwrap();
    let failed: Vec<&str> = errors.iter().map(|e| e["certificate_id"].as_str().unwrap()).collect();
    assert_eq!(failed, ["cert-missing", pending.as_str()], "{errors:?}");
    assert_eq!(errors[0]["error"], "certificate not found");
    assert!(errors[1]["error"].as_str().unwrap().contains("no issued version"), "{errors:?}");
    for id in [&a, &b] {
        let cert = certificate(&app, id).await;
        assert_eq!((&cert["status"], &cert["revocation_reason"]), (&json!("Revoked"), &json!("superseded")));
    }
    assert_eq!(certificate(&app, &c).await["status"], "Active", "unselected certificates are untouched");
    let r = app.post_json("/api/v1/certificates/bulk-revoke", &app.admin, &body).await;
    r.expect(200, None);
    assert_eq!((&r.json["total_revoked"], &r.json["total_skipped"]), (&json!(0), &json!(2)));

    let r = crl(&app, &d.issuer, None).await;
    r.expect(200, None);
    ssl.write("crl.der", &r.body);
    let text = ssl.ok(&["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"]).to_ascii_lowercase();
    let a_leaf = ssl.write("a.pem", a_pem);
    let b_leaf = ssl.write("b.pem", b_pem);
    for leaf in [a_leaf, b_leaf] {
        assert!(text.contains(&format!("serial number: {}", ssl.serial(leaf))), "{text}");
    }
    assert_eq!(text.matches("superseded").count(), 2, "{text}");
    app.finish().await;
}

#[tokio::test]
async fn revocation_wins_over_an_issuance_under_way() {
    let app = TestApp::new().await;
    let (d, prof) = setup(&app, "race").await;
    let (a, _) = issued(&app, &d, &prof, "a", "a.example.com").await;
    let job_id = renew(&app, &a).await["id"].as_str().unwrap().to_owned();
    // A replica claims the job; before it finishes, the certificate is revoked.
    let claimed = app.store.claim_issuance_jobs(app.clock.now(), Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), [job_id.as_str()]);
    revoke(&app, &a, "keyCompromise").await.expect(200, None);
    // That replica dies; another takes the job over once its lease runs out.
    app.clock.advance(Duration::minutes(6));
    drain_jobs(&app.state).await;
    let c = certificate(&app, &a).await;
    assert_eq!((&c["status"], &c["revocation_reason"]), (&json!("Revoked"), &json!("keyCompromise")), "{c}");
    assert_eq!(versions(&app, &a).await.len(), 1, "nothing is issued for a revoked certificate");
    assert_ne!(job_of(&app, &job_id).await["status"], "Completed");
    app.finish().await;
}
