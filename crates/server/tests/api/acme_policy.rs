//! ACME policy in process, on each backend: external account binding (keys over REST, bound
//! on new-account, single use), rate limits held in the database across two server instances,
//! the admin "renew now" seen through ARI, the certificate's `Link rel="up"` to its issuer, and
//! garbage collection of expired state.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::Duration;
use tower::ServiceExt;
use x509_parser::prelude::{FromDer, X509Certificate};

use certctl_server::clock::Clock;
use certctl_store::{AuditFilterParsed, Backend};

use crate::acme_client::{AcmeSetup, Client, EXTERNAL, Key, b64, expect_problem, local, setup};
use crate::harness::{Reply, TestApp};

/// An EAB JWS (RFC 8555 §7.3.4) over `jwk`, MACed with `key` under `alg`.
fn eab_jws(alg: &str, kid: &str, key: &[u8], url: &str, jwk: &Value) -> Value {
    let algorithm = match alg {
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    let protected = b64(json!({"alg": alg, "kid": kid, "url": url}).to_string().as_bytes());
    let payload = b64(jwk.to_string().as_bytes());
    let tag = hmac::sign(&hmac::Key::new(algorithm, key), format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())})
}

/// Registers `client` with an EAB binding built by `eab`.
async fn register_with(client: &mut Client<'_>, eab: Option<Value>) -> Reply {
    let path = client.path("new-account");
    let mut payload = json!({"termsOfServiceAgreed": true});
    if let Some(eab) = eab {
        payload["externalAccountBinding"] = eab;
    }
    let r = client.post(&path, Some(&payload)).await;
    if r.status.is_success() {
        client.kid = Some(r.headers["location"].to_str().unwrap().to_owned());
    }
    r
}

/// Sets the profile's `external_account_required` switch, keeping the rest of its binding.
async fn require_eab(app: &TestApp, acme: &AcmeSetup, required: bool) -> Value {
    let list = app.get("/api/v1/acme/profiles", &app.viewer).await;
    let b = list.json.as_array().unwrap().iter().find(|b| b["profile_id"] == acme.profile.as_str()).unwrap().clone();
    let body = json!({
        "issuer_id": b["issuer_id"], "owner_id": b["owner_id"], "team_id": b["team_id"],
        "renewal_policy_id": b["renewal_policy_id"], "external_account_required": required,
    });
    let r = app.put_json(&format!("/api/v1/acme/profiles/{}", acme.profile), &app.admin, &body).await;
    r.expect(200, None);
    r.json.clone()
}

async fn eab(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let acme = setup(&app, "eab", "trust_authenticated").await;
    let other = setup(&app, "eab-other", "trust_authenticated").await;
    let binding = require_eab(&app, &acme, true).await;
    assert_eq!(binding["external_account_required"], true);
    let dir = app.get(&format!("{}/directory", acme.prefix), "").await;
    assert_eq!(dir.json["meta"]["externalAccountRequired"], true);
    let dir = app.get(&format!("{}/directory", other.prefix), "").await;
    assert_eq!(dir.json["meta"]["externalAccountRequired"], false);

    // Keys are an admin's to create, and the HMAC key is shown once.
    let r = app.post_json("/api/v1/acme/eab-keys", &app.operator, &json!({})).await;
    r.expect(403, None);
    let r = app.post_json("/api/v1/acme/eab-keys", &app.admin, &json!({"note": "web team"})).await;
    r.expect(201, None);
    let kid = r.json["kid"].as_str().unwrap().to_owned();
    let hmac_text = r.json["hmac_key"].as_str().unwrap().to_owned();
    let hmac_key = URL_SAFE_NO_PAD.decode(&hmac_text).unwrap();
    assert_eq!(hmac_key.len(), 32);
    let list = app.get("/api/v1/acme/eab-keys", &app.admin).await;
    list.expect(200, None);
    assert_eq!(list.json["total"], 1);
    assert_eq!(list.json["data"][0]["kid"], kid.as_str());
    assert_eq!(list.json["data"][0]["note"], "web team");
    let one = app.get(&format!("/api/v1/acme/eab-keys/{kid}"), &app.admin).await;
    one.expect(200, None);
    assert_eq!(one.json["account_id"], Value::Null);
    for body in [&list.body, &one.body] {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains(&hmac_text) && !text.contains("hmac_key"), "the key is never listed: {text}");
    }
    app.get("/api/v1/acme/eab-keys", &app.viewer).await.expect(403, None);
    let created = AuditFilterParsed { action: Some("acme_eab_key_created".into()), ..AuditFilterParsed::default() };
    let record = app.wait_for_audit(created, |e| e.resource_id == kid).await;
    assert!(!record.details.to_string().contains(&hmac_text), "the audit never holds the key");
    let r = app.post_json("/api/v1/acme/eab-keys", &app.admin, &json!({"profile_id": "nope"})).await;
    r.expect(400, None);

    let new_account = |c: &Client<'_>| format!("{EXTERNAL}{}", c.path("new-account"));

    // No binding where one is required.
    let mut alice = Client::new(&app, &acme, Key::p256());
    let r = register_with(&mut alice, None).await;
    expect_problem(&r, 403, "externalAccountRequired");
    let rejected = AuditFilterParsed { action: Some("acme_request_rejected".into()), ..AuditFilterParsed::default() };
    let record = app.wait_for_audit(rejected.clone(), |e| e.details["request_id"] == r.request_id()).await;
    assert_eq!(record.details["problem"], "externalAccountRequired");
    // A wrong MAC, a wrong URL, a binding for another key, an unknown kid, a bad algorithm.
    let jwk = alice.key.jwk();
    let bad_mac = eab_jws("HS256", &kid, b"not the key at all, not the key!", &new_account(&alice), &jwk);
    expect_problem(&register_with(&mut alice, Some(bad_mac)).await, 403, "unauthorized");
    let wrong_url = eab_jws("HS256", &kid, &hmac_key, &format!("{EXTERNAL}{}", alice.path("new-order")), &jwk);
    expect_problem(&register_with(&mut alice, Some(wrong_url)).await, 403, "unauthorized");
    let other_key = eab_jws("HS256", &kid, &hmac_key, &new_account(&alice), &Key::p256().jwk());
    expect_problem(&register_with(&mut alice, Some(other_key)).await, 403, "unauthorized");
    let unknown = eab_jws("HS256", "eab-nope", &hmac_key, &new_account(&alice), &jwk);
    expect_problem(&register_with(&mut alice, Some(unknown)).await, 403, "unauthorized");
    let none_alg = eab_jws("none", &kid, &hmac_key, &new_account(&alice), &jwk);
    expect_problem(&register_with(&mut alice, Some(none_alg)).await, 400, "malformed");
    expect_problem(&register_with(&mut alice, Some(json!("garbage"))).await, 400, "malformed");
    assert!(app.get(&format!("/api/v1/acme/eab-keys/{kid}"), &app.admin).await.json["account_id"].is_null());

    // The right binding (HS384 too) creates the account and uses the key up.
    let good = eab_jws("HS384", &kid, &hmac_key, &new_account(&alice), &jwk);
    let r = register_with(&mut alice, Some(good)).await;
    r.expect(201, None);
    alice.order(&["eab.example.com"]).await.expect(201, None);
    let account_id = alice.kid.as_deref().unwrap().rsplit('/').next().unwrap().to_owned();
    let one = app.get(&format!("/api/v1/acme/eab-keys/{kid}"), &app.admin).await;
    assert_eq!(one.json["account_id"], account_id.as_str());
    assert!(one.json["used_at"].is_string());
    let used = AuditFilterParsed { action: Some("acme_eab_key_used".into()), ..AuditFilterParsed::default() };
    let record = app.wait_for_audit(used, |e| e.resource_id == kid).await;
    assert_eq!(record.details["account_id"], account_id.as_str());
    // The same key again with the same account key is that account (no new binding needed).
    alice.kid = None;
    register_with(&mut alice, None).await.expect(200, None);

    // A used key does not bind a second account.
    let mut bob = Client::new(&app, &acme, Key::p256());
    let reused = eab_jws("HS256", &kid, &hmac_key, &new_account(&bob), &bob.key.jwk());
    expect_problem(&register_with(&mut bob, Some(reused)).await, 403, "unauthorized");

    // A key restricted to another profile is refused here and accepted there.
    let r = app.post_json("/api/v1/acme/eab-keys", &app.admin, &json!({"profile_id": other.profile})).await;
    r.expect(201, None);
    assert_eq!(r.json["profile_id"], other.profile.as_str());
    let (kid2, key2) = (
        r.json["kid"].as_str().unwrap().to_owned(),
        URL_SAFE_NO_PAD.decode(r.json["hmac_key"].as_str().unwrap()).unwrap(),
    );
    let wrong_profile = eab_jws("HS256", &kid2, &key2, &new_account(&bob), &bob.key.jwk());
    expect_problem(&register_with(&mut bob, Some(wrong_profile)).await, 403, "unauthorized");
    let mut carol = Client::new(&app, &other, Key::p256());
    let there = eab_jws("HS512", &kid2, &key2, &new_account(&carol), &carol.key.jwk());
    register_with(&mut carol, Some(there)).await.expect(201, None);

    // A deleted key binds nothing.
    let r = app.post_json("/api/v1/acme/eab-keys", &app.admin, &json!({})).await;
    let (kid3, key3) = (
        r.json["kid"].as_str().unwrap().to_owned(),
        URL_SAFE_NO_PAD.decode(r.json["hmac_key"].as_str().unwrap()).unwrap(),
    );
    app.delete(&format!("/api/v1/acme/eab-keys/{kid3}"), &app.operator).await.expect(403, None);
    app.delete(&format!("/api/v1/acme/eab-keys/{kid3}"), &app.admin).await.expect(204, None);
    app.get(&format!("/api/v1/acme/eab-keys/{kid3}"), &app.admin).await.expect(404, None);
    app.delete(&format!("/api/v1/acme/eab-keys/{kid3}"), &app.admin).await.expect(404, None);
    let deleted = eab_jws("HS256", &kid3, &key3, &new_account(&bob), &bob.key.jwk());
    expect_problem(&register_with(&mut bob, Some(deleted)).await, 403, "unauthorized");
    let gone = AuditFilterParsed { action: Some("acme_eab_key_deleted".into()), ..AuditFilterParsed::default() };
    app.wait_for_audit(gone, |e| e.resource_id == kid3).await;

    // Switching the requirement off lets accounts register without a binding.
    require_eab(&app, &acme, false).await;
    register_with(&mut bob, None).await.expect(201, None);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_eab_sqlite() {
    eab(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_eab_postgres() {
    eab(Backend::Postgres).await;
}

/// A second server instance over the same database and clock, with its own limits.
fn replica(app: &TestApp, accounts: u32, orders: u32) -> Router {
    let mut config = (*app.state.config).clone();
    config.acme_rate_limit_accounts_per_hour = accounts;
    config.acme_rate_limit_orders_per_hour = orders;
    let clock: Arc<dyn Clock> = app.clock.clone();
    let (state, _writer) = certctl_server::build_state(app.store.clone(), config, clock).unwrap();
    certctl_server::router(state)
}

/// Sends a signed request through `router`, from `ip`.
async fn send_via(router: &Router, ip: [u8; 4], path: &str, body: Value) -> Reply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/jose+json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    let response = router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Reply { status, headers, body, json }
}

async fn signed(client: &Client<'_>, path: &str, payload: &Value) -> Value {
    client.key.sign(client.header(path).await, Some(payload))
}

async fn rate_limits(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let acme = setup(&app, "limits", "trust_authenticated").await;
    let (a, b) = (replica(&app, 2, 3), replica(&app, 2, 3));
    let register = json!({"termsOfServiceAgreed": true});
    let ip = [192, 0, 2, 10];

    // Two new accounts from one address, one through each instance; the third is refused by
    // either, until the hour's window ends.
    let mut clients = Vec::new();
    for router in [&a, &b] {
        let mut c = Client::new(&app, &acme, Key::p256());
        let path = c.path("new-account");
        let r = send_via(router, ip, &path, signed(&c, &path, &register).await).await;
        r.expect(201, None);
        c.kid = Some(r.headers["location"].to_str().unwrap().to_owned());
        clients.push(c);
    }
    let late = Client::new(&app, &acme, Key::p256());
    let path = late.path("new-account");
    for router in [&a, &b] {
        let r = send_via(router, ip, &path, signed(&late, &path, &register).await).await;
        expect_problem(&r, 429, "rateLimited");
        assert_eq!(r.headers[header::RETRY_AFTER], "3600", "T0 is on the hour: the window frees in an hour");
    }
    // Existing accounts are found without counting; another address has its own budget.
    let existing = &clients[0];
    let mut h = existing.header(&path).await;
    h.as_object_mut().unwrap().remove("kid");
    h["jwk"] = existing.key.jwk();
    send_via(&a, ip, &path, existing.key.sign(h, Some(&register))).await.expect(200, None);
    let r = send_via(&b, ip, &path, signed(&late, &path, &json!({"onlyReturnExisting": true})).await).await;
    expect_problem(&r, 400, "accountDoesNotExist");
    let r = send_via(&b, [192, 0, 2, 11], &path, signed(&late, &path, &register).await).await;
    r.expect(201, None);

    // Three orders per account per hour, counted across both instances.
    let new_order = existing.path("new-order");
    let ids = json!({"identifiers": [{"type": "dns", "value": "limits.example.com"}]});
    for router in [&a, &b, &a] {
        send_via(router, ip, &new_order, signed(existing, &new_order, &ids).await).await.expect(201, None);
    }
    let r = send_via(&b, ip, &new_order, signed(existing, &new_order, &ids).await).await;
    expect_problem(&r, 429, "rateLimited");
    assert_eq!(r.headers[header::RETRY_AFTER], "3600");
    let audited = AuditFilterParsed { action: Some("acme_request_rejected".into()), ..AuditFilterParsed::default() };
    app.wait_for_audit(audited, |e| e.details["problem"] == "rateLimited").await;
    // The other account's budget is its own.
    send_via(&a, ip, &new_order, signed(&clients[1], &new_order, &ids).await).await.expect(201, None);
    app.clock.advance(Duration::minutes(45));
    let r = send_via(&a, ip, &new_order, signed(existing, &new_order, &ids).await).await;
    expect_problem(&r, 429, "rateLimited");
    assert_eq!(r.headers[header::RETRY_AFTER], "900");
    app.clock.advance(Duration::minutes(15));
    send_via(&b, ip, &new_order, signed(existing, &new_order, &ids).await).await.expect(201, None);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_rate_limits_across_instances_sqlite() {
    rate_limits(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_rate_limits_across_instances_postgres() {
    rate_limits(Backend::Postgres).await;
}

fn pem_certs(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
            body.clear();
        } else if line.starts_with("-----END") {
            inside = false;
            out.push(base64::engine::general_purpose::STANDARD.decode(&body).unwrap());
        } else if inside {
            body.push_str(line.trim());
        }
    }
    out
}

/// Issues a certificate for `name`; returns its download reply.
async fn issue(client: &Client<'_>, name: &str) -> Reply {
    let order = client.order(&[name]).await;
    order.expect(201, None);
    let r = client.finalize(&order.json, &[name]).await;
    r.expect(200, None);
    let pem = client.post(&local(r.json["certificate"].as_str().unwrap()), None).await;
    pem.expect(200, None);
    pem
}

/// The RFC 9773 certID of a DER certificate.
fn cert_id(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.clone(),
            _ => None,
        })
        .unwrap();
    format!("{}.{}", b64(aki.0), b64(cert.raw_serial()))
}

fn window(r: &Reply) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    (parse(&r.json["suggestedWindow"]["start"]), parse(&r.json["suggestedWindow"]["end"]))
}

async fn renew_now_and_links(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let acme = setup(&app, "renew", "trust_authenticated").await;
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);

    // The download links its issuer's certificate, which is the certificate that signed it.
    let pem = issue(&client, "one.example.com").await;
    let links: Vec<&str> = pem.headers.get_all(header::LINK).iter().map(|v| v.to_str().unwrap()).collect();
    let up = links.iter().find(|l| l.ends_with(";rel=\"up\"")).unwrap_or_else(|| panic!("no rel=up in {links:?}"));
    let up_url = up.trim_start_matches('<').split('>').next().unwrap();
    let ca = app.get(&local(up_url), "").await;
    ca.expect(200, None);
    assert_eq!(ca.headers[header::CONTENT_TYPE], "application/pkix-cert");
    let chain = pem_certs(std::str::from_utf8(&pem.body).unwrap());
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let (_, issuer) = X509Certificate::from_der(&ca.body).unwrap();
    assert_eq!(leaf.issuer(), issuer.subject());
    leaf.verify_signature(Some(issuer.public_key())).expect("the linked certificate signed the leaf");
    // A root-issued chain has no alternate.
    assert!(!links.iter().any(|l| l.contains("rel=\"alternate\"")), "{links:?}");

    // ARI before and after "renew now" for the one certificate.
    let dir = app.get(&format!("{}/directory", acme.prefix), "").await;
    let renewal_info = local(dir.json["renewalInfo"].as_str().unwrap());
    let id_one = cert_id(&chain[0]);
    let before = app.get(&format!("{renewal_info}/{id_one}"), "").await;
    before.expect(200, None);
    assert!(window(&before).0 > app.clock.now() + Duration::days(7), "{}", before.json);
    let certs = app.get("/api/v1/certificates?source=ACME", &app.viewer).await;
    let cert_one = certs.json["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/acme/certificates/{cert_one}/renew-now");
    app.post_json(&path, &app.operator, &json!({})).await.expect(403, None);
    let r = app.post_json(&path, &app.admin, &json!({})).await;
    r.expect(200, None);
    assert_eq!(r.json["certificates"], 1);
    let after = app.get(&format!("{renewal_info}/{id_one}"), "").await;
    let (start, end) = window(&after);
    assert_eq!(start, app.clock.now());
    assert_eq!(end, app.clock.now() + Duration::hours(1));
    let filter = AuditFilterParsed { action: Some("acme_renew_now".into()), ..AuditFilterParsed::default() };
    let record = app.wait_for_audit(filter.clone(), |e| e.resource_id == cert_one).await;
    assert_eq!(record.details["certificates"], 1);
    app.post_json("/api/v1/acme/certificates/nope/renew-now", &app.admin, &json!({})).await.expect(404, None);

    // For every certificate of the issuer.
    let pem_two = issue(&client, "two.example.com").await;
    let id_two = cert_id(&pem_certs(std::str::from_utf8(&pem_two.body).unwrap())[0]);
    assert!(window(&app.get(&format!("{renewal_info}/{id_two}"), "").await).0 > app.clock.now() + Duration::days(7));
    app.clock.advance(Duration::minutes(5));
    let r = app.post_json(&format!("/api/v1/acme/issuers/{}/renew-now", acme.issuer), &app.admin, &json!({})).await;
    r.expect(200, None);
    assert_eq!(r.json["certificates"], 2);
    for id in [&id_one, &id_two] {
        assert_eq!(window(&app.get(&format!("{renewal_info}/{id}"), "").await).0, app.clock.now());
    }
    app.wait_for_audit(filter, |e| e.resource_id == acme.issuer).await;
    app.post_json("/api/v1/acme/issuers/nope/renew-now", &app.admin, &json!({})).await.expect(404, None);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_renew_now_and_issuer_link_sqlite() {
    renew_now_and_links(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_renew_now_and_issuer_link_postgres() {
    renew_now_and_links(Backend::Postgres).await;
}

async fn gc(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let acme = setup(&app, "gc", "challenge").await;
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);
    let stale = client.order(&["stale.example.com"]).await;
    stale.expect(201, None);
    let stale_order = local(stale.headers["location"].to_str().unwrap()).rsplit('/').next().unwrap().to_owned();
    let stale_authz = local(stale.json["authorizations"][0].as_str().unwrap()).rsplit('/').next().unwrap().to_owned();

    // Three days on: the stale order is past expiry and the grace period; a fresh order is live.
    app.clock.advance(Duration::days(3));
    let fresh = client.order(&["fresh.example.com"]).await;
    fresh.expect(201, None);
    let fresh_order = local(fresh.headers["location"].to_str().unwrap()).rsplit('/').next().unwrap().to_owned();
    // A request whose nonce is spent and not yet expired: its record must survive GC.
    let path = client.path("new-order");
    let body = signed(&client, &path, &json!({"identifiers": [{"type": "dns", "value": "late.example.com"}]})).await;
    client.post_raw(&path, body.to_string()).await.expect(201, None);

    let report = certctl_server::acme::gc::collect(&app.state).await.unwrap();
    assert_eq!(report.orders, 1, "{report:?}");
    assert!(report.nonces >= 2, "the nonces spent days ago: {report:?}");
    assert!(report.rate_windows >= 1, "the windows of days ago: {report:?}");
    assert!(app.store.acme_order(&stale_order).await.unwrap().is_none());
    assert!(app.store.acme_authz(&stale_authz).await.unwrap().is_none(), "authorizations go with their order");
    assert!(app.store.acme_order(&fresh_order).await.unwrap().is_some());
    client.post(&local(fresh.headers["location"].to_str().unwrap()), None).await.expect(200, None);
    expect_problem(&client.post_raw(&path, body.to_string()).await, 400, "badNonce");
    // The account's live rate-limit window survives: a second pass finds nothing.
    let again = certctl_server::acme::gc::collect(&app.state).await.unwrap();
    assert_eq!(again.total(), 0, "{again:?}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_gc_sqlite() {
    gc(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_gc_postgres() {
    gc(Backend::Postgres).await;
}

/// An issuer signing through an intermediate: the default chain runs to the root, and a
/// `rel="alternate"` chain stops at the intermediate; each links the other, and `rel="up"` is
/// the intermediate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_alternate_chain_without_the_root() {
    let app = TestApp::new().await;
    let acme = setup(&app, "alt", "trust_authenticated").await;
    // The root exists a second before its intermediate, so the intermediate is the newer signer.
    crate::pki_peer::issuer_chain(&app, &acme.issuer).await;
    app.clock.advance(Duration::seconds(1));
    let r = app
        .post_json(&format!("/api/v1/issuers/{}/intermediates", acme.issuer), &app.admin, &json!({"name": "ACME CA"}))
        .await;
    r.expect(201, None);
    let inter = r.json["id"].as_str().unwrap().to_owned();
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);
    let pem = issue(&client, "alt.example.com").await;
    let chain = pem_certs(std::str::from_utf8(&pem.body).unwrap());
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    let links: Vec<String> = pem.headers.get_all(header::LINK).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(links.iter().any(|l| l.contains(&format!("/.well-known/pki/ca/{inter}>;rel=\"up\""))), "{links:?}");
    let alternate = links.iter().find(|l| l.ends_with(";rel=\"alternate\"")).unwrap_or_else(|| panic!("{links:?}"));
    let alt_url = alternate.trim_start_matches('<').split('>').next().unwrap();
    assert!(alt_url.ends_with("/1"), "{alt_url}");
    let alt = client.post(&local(alt_url), None).await;
    alt.expect(200, None);
    let alt_chain = pem_certs(std::str::from_utf8(&alt.body).unwrap());
    assert_eq!(alt_chain, chain[..2].to_vec(), "the alternate is the chain without its root");
    let back: Vec<&str> = alt.headers.get_all(header::LINK).iter().map(|v| v.to_str().unwrap()).collect();
    let default_url = alt_url.trim_end_matches("/1");
    assert!(back.contains(&format!("<{default_url}>;rel=\"alternate\"").as_str()), "{back:?}");
    expect_problem(&client.post(&format!("{}/2", local(default_url)), None).await, 404, "malformed");
    expect_problem(&client.post(&format!("{}/0", local(default_url)), None).await, 404, "malformed");
    app.finish().await;
}
