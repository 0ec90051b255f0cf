//! The ACME server in process, on each backend: the whole trust_authenticated flow, and every
//! kind of bad request answered with its RFC 8555 problem type (never a 500), each carrying a
//! fresh nonce.

use axum::body::Body;
use axum::http::{Request, header};
use futures::future::join_all;
use serde_json::json;

use certctl_server::clock::Clock;
use certctl_store::{AuditFilterParsed, Backend};

use crate::acme_client::{Client, EXTERNAL, Key, b64, csr_der, csr_der_with_key, expect_problem, local, setup};
use crate::harness::TestApp;

async fn flow(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let acme = setup(&app, "flow", "trust_authenticated").await;

    let r = app.get(&format!("{}/directory", acme.prefix), "").await;
    r.expect(200, None);
    assert_eq!(r.json["newOrder"], format!("{EXTERNAL}{}/new-order", acme.prefix));
    assert_eq!(r.json["meta"]["externalAccountRequired"], false);
    assert!(r.headers.contains_key("replay-nonce"));
    let r = app.get(&format!("{}/new-nonce", acme.prefix), "").await;
    r.expect(204, None);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");

    let mut client = Client::new(&app, &acme, Key::p256());
    let r = client.register().await;
    r.expect(201, None);
    assert_eq!(r.json["status"], "valid");
    assert_eq!(r.json["contact"][0], "mailto:ops@example.com");
    let kid = client.kid.clone().unwrap();
    // The same key again: the same account, 200.
    client.kid = None;
    let again = client.register().await;
    again.expect(200, None);
    assert_eq!(client.kid.as_deref(), Some(kid.as_str()));

    let r = client.order(&["www.example.com", "example.com"]).await;
    r.expect(201, None);
    assert_eq!(r.json["status"], "ready");
    let order = r.json.clone();
    let authz = client.post(&local(order["authorizations"][0].as_str().unwrap()), None).await;
    authz.expect(200, None);
    assert_eq!(authz.json["status"], "valid");
    assert_eq!(authz.json["identifier"]["value"], "www.example.com");

    let r = client.finalize(&order, &["example.com", "www.example.com"]).await;
    r.expect(200, None);
    assert_eq!(r.json["status"], "valid");
    let cert_url = r.json["certificate"].as_str().unwrap().to_owned();
    // Finalizing a valid order again returns it.
    let again = client.finalize(&order, &["example.com", "www.example.com"]).await;
    again.expect(200, None);
    assert_eq!(again.json["certificate"], cert_url.as_str());

    let pem = client.post(&local(&cert_url), None).await;
    pem.expect(200, None);
    assert_eq!(pem.headers[header::CONTENT_TYPE], "application/pem-certificate-chain");
    let text = String::from_utf8(pem.body.to_vec()).unwrap();
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2, "leaf and CA: {text}");

    let list = app.get("/api/v1/certificates?source=ACME", &app.viewer).await;
    list.expect(200, None);
    assert_eq!(list.json["total"], 1, "{}", list.json);
    let cert = &list.json["data"][0];
    assert_eq!(cert["status"], "Active");
    assert_eq!(cert["issuer_id"], acme.issuer.as_str());
    let orders = client.post(&format!("{}/orders", local(&kid)), None).await;
    orders.expect(200, None);
    assert_eq!(orders.json["orders"][0], order["finalize"].as_str().unwrap().trim_end_matches("/finalize"));

    // Revocation by the account, then again.
    let leaf_der = pem_to_der(&text);
    let revoke = json!({"certificate": b64(&leaf_der), "reason": 4});
    client.post(&client.path("revoke-cert"), Some(&revoke)).await.expect(200, None);
    let again = client.post(&client.path("revoke-cert"), Some(&revoke)).await;
    expect_problem(&again, 400, "alreadyRevoked");
    let id = cert["id"].as_str().unwrap();
    let revoked = app.get(&format!("/api/v1/certificates/{id}"), &app.viewer).await;
    assert_eq!(revoked.json["status"], "Revoked");

    // Deactivation ends the account.
    let r = client.post(&local(&kid), Some(&json!({"status": "deactivated"}))).await;
    r.expect(200, None);
    assert_eq!(r.json["status"], "deactivated");
    expect_problem(&client.order(&["late.example.com"]).await, 403, "unauthorized");
    app.finish().await;
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_flow_sqlite() {
    flow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_flow_postgres() {
    flow(Backend::Postgres).await;
}

/// A burst of clients ordering and finalizing at once: their writes share batches, yet each
/// client gets its own order (read back as it was answered) and certificate, a finalize racing
/// another for the same order gets the same one certificate, and the audit chain holds.
async fn burst(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let acme = setup(&app, "burst", "trust_authenticated").await;
    let mut clients = Vec::new();
    for _ in 0..12 {
        let mut c = Client::new(&app, &acme, Key::p256());
        c.register().await.expect(201, None);
        clients.push(c);
    }
    let names: Vec<String> = (0..clients.len()).map(|i| format!("burst-{i}.example.com")).collect();
    let names: Vec<[&str; 1]> = names.iter().map(|n| [n.as_str()]).collect();

    let orders = join_all(clients.iter().zip(&names).map(|(c, n)| c.order(n))).await;
    for r in &orders {
        r.expect(201, None);
        assert_eq!(r.json["status"], "ready");
    }
    for (c, r) in clients.iter().zip(&orders) {
        let back = c.post(&local(r.headers["location"].to_str().unwrap()), None).await;
        back.expect(200, None);
        assert_eq!(back.json, r.json, "an order reads back as new-order answered it");
    }

    let finals = join_all(
        clients
            .iter()
            .zip(&orders)
            .zip(&names)
            .map(|((c, o), n)| c.finalize(&o.json, n))
            .chain(std::iter::once(clients[0].finalize(&orders[0].json, &names[0]))),
    )
    .await;
    let mut certificates = std::collections::BTreeSet::new();
    for r in &finals {
        r.expect(200, None);
        assert_eq!(r.json["status"], "valid", "{}", r.json);
        certificates.insert(r.json["certificate"].as_str().unwrap().to_owned());
    }
    assert_eq!(finals[0].json["certificate"], finals[clients.len()].json["certificate"]);
    assert_eq!(certificates.len(), clients.len(), "one certificate per order");
    for (c, r) in clients.iter().zip(&orders) {
        let back = c.post(&local(r.headers["location"].to_str().unwrap()), None).await;
        assert_eq!(back.json["status"], "valid");
        assert!(certificates.contains(back.json["certificate"].as_str().unwrap()));
    }

    let list = app.get("/api/v1/certificates?source=ACME&per_page=50", &app.viewer).await;
    list.expect(200, None);
    assert_eq!(list.json["total"], clients.len(), "the racing finalize filed nothing: {}", list.json);
    let report = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(report.first_broken, None);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_burst_sqlite() {
    burst(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_burst_postgres() {
    burst(Backend::Postgres).await;
}

async fn bad_requests(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let acme = setup(&app, "bad", "trust_authenticated").await;
    let mut alice = Client::new(&app, &acme, Key::p256());
    alice.register().await.expect(201, None);
    // ES384 accounts are first-class.
    let mut bob = Client::new(&app, &acme, Key::p384());
    bob.register().await.expect(201, None);
    let new_order = alice.path("new-order");
    let ids = json!({"identifiers": [{"type": "dns", "value": "a.example.com"}]});

    // Not a JWS at all.
    expect_problem(&alice.post_raw(&new_order, "{not json").await, 400, "malformed");
    expect_problem(&alice.post_raw(&new_order, "a.b").await, 400, "malformed");
    // Wrong media type.
    let req =
        Request::post(&new_order).header(header::CONTENT_TYPE, "application/json").body(Body::from("{}")).unwrap();
    expect_problem(&app.send(req).await, 415, "malformed");
    // Too large.
    let big = "x".repeat(70 * 1024);
    expect_problem(&alice.post_raw(&new_order, big).await, 413, "malformed");

    // A forged, a missing and a replayed nonce.
    let mut h = alice.header(&new_order).await;
    h["nonce"] = json!(b64(&[7u8; 40]));
    expect_problem(&alice.post_raw(&new_order, alice.key.sign(h, Some(&ids)).to_string()).await, 400, "badNonce");
    let mut h = alice.header(&new_order).await;
    h.as_object_mut().unwrap().remove("nonce");
    expect_problem(&alice.post_raw(&new_order, alice.key.sign(h, Some(&ids)).to_string()).await, 400, "badNonce");
    let body = alice.key.sign(alice.header(&new_order).await, Some(&ids)).to_string();
    alice.post_raw(&new_order, body.clone()).await.expect(201, None);
    let replayed = alice.post_raw(&new_order, body).await;
    expect_problem(&replayed, 400, "badNonce");
    // Every refusal is audited.
    let filter = AuditFilterParsed { action: Some("acme_request_rejected".into()), ..AuditFilterParsed::default() };
    let record = app.wait_for_audit(filter, |e| e.details["request_id"] == replayed.request_id()).await;
    assert_eq!(record.details["problem"], "badNonce");
    assert_eq!(record.resource_id, new_order);

    // Signed for another URL.
    let mut h = alice.header(&new_order).await;
    h["url"] = json!(format!("{EXTERNAL}{}", alice.path("new-account")));
    expect_problem(&alice.post_raw(&new_order, alice.key.sign(h, Some(&ids)).to_string()).await, 403, "unauthorized");
    // Signed by a key that is not the account's.
    let h = alice.header(&new_order).await;
    expect_problem(&alice.post_raw(&new_order, bob.key.sign(h, Some(&ids)).to_string()).await, 403, "unauthorized");
    // An unknown kid, and a jwk where a kid belongs.
    let mut h = alice.header(&new_order).await;
    h["kid"] = json!(format!("{EXTERNAL}{}/account/acct-nope", acme.prefix));
    expect_problem(
        &alice.post_raw(&new_order, alice.key.sign(h, Some(&ids)).to_string()).await,
        400,
        "accountDoesNotExist",
    );
    let mut h = alice.header(&new_order).await;
    h.as_object_mut().unwrap().remove("kid");
    h["jwk"] = alice.key.jwk();
    expect_problem(&alice.post_raw(&new_order, alice.key.sign(h, Some(&ids)).to_string()).await, 400, "malformed");
    // An algorithm the server does not verify.
    let mut h = alice.header(&new_order).await;
    h["alg"] = json!("HS256");
    let header = b64(h.to_string().as_bytes());
    let body = json!({"protected": header, "payload": b64(ids.to_string().as_bytes()), "signature": b64(b"x")});
    expect_problem(&alice.post_raw(&new_order, body.to_string()).await, 400, "badSignatureAlgorithm");
    // onlyReturnExisting with an unknown key.
    let carol = Client::new(&app, &acme, Key::p256());
    let r = carol.post(&carol.path("new-account"), Some(&json!({"onlyReturnExisting": true}))).await;
    expect_problem(&r, 400, "accountDoesNotExist");
    let r = carol.post(&carol.path("new-account"), Some(&json!({"contact": ["tel:+15551234"]}))).await;
    expect_problem(&r, 400, "unsupportedContact");

    // Identifiers.
    let r = alice.post(&new_order, Some(&json!({"identifiers": [{"type": "email", "value": "a@b.com"}]}))).await;
    expect_problem(&r, 400, "unsupportedIdentifier");
    let r = alice.order(&["ok.example.com", "bad..name"]).await;
    expect_problem(&r, 400, "rejectedIdentifier");
    assert_eq!(r.json["subproblems"][0]["identifier"]["value"], "bad..name");

    // Another account's order, authorization and certificate are not there for bob.
    let order = alice.order(&["mine.example.com"]).await;
    order.expect(201, None);
    let order_url = local(order.headers["location"].to_str().unwrap());
    expect_problem(&bob.post(&order_url, None).await, 404, "malformed");
    expect_problem(&bob.post(&local(order.json["authorizations"][0].as_str().unwrap()), None).await, 404, "malformed");
    expect_problem(&bob.finalize(&order.json, &["mine.example.com"]).await, 404, "malformed");
    // bob cannot read or change alice's account.
    let alice_kid = local(alice.kid.as_deref().unwrap());
    expect_problem(&bob.post(&alice_kid, None).await, 403, "unauthorized");

    // CSR names that are not the order's.
    expect_problem(&alice.finalize(&order.json, &["mine.example.com", "extra.example.com"]).await, 400, "badCSR");
    let r = alice.post(&order_url, None).await;
    assert_eq!(r.json["status"], "ready", "a refused CSR leaves the order ready");
    let garbage = json!({"csr": b64(b"not a csr")});
    expect_problem(&alice.post(&local(order.json["finalize"].as_str().unwrap()), Some(&garbage)).await, 400, "badCSR");

    // Revocation of a certificate the account did not order, or with a bad reason.
    alice.finalize(&order.json, &["mine.example.com"]).await.expect(200, None);
    let r = alice.post(&order_url, None).await;
    let pem = alice.post(&local(r.json["certificate"].as_str().unwrap()), None).await;
    let der = pem_to_der(std::str::from_utf8(&pem.body).unwrap());
    let r = bob.post(&bob.path("revoke-cert"), Some(&json!({"certificate": b64(&der)}))).await;
    expect_problem(&r, 403, "unauthorized");
    let r = alice.post(&alice.path("revoke-cert"), Some(&json!({"certificate": b64(&der), "reason": 7}))).await;
    expect_problem(&r, 400, "badRevocationReason");
    let r =
        alice.post(&alice.path("revoke-cert"), Some(&json!({"certificate": b64(&csr_der(&["x.example.com"]))}))).await;
    expect_problem(&r, 400, "malformed");

    // Names outside the profile's SAN patterns.
    let r = app
        .put_json(
            &format!("/api/v1/profiles/{}", acme.profile),
            &app.operator,
            &json!({"required_san_patterns": ["*.svc.example.com"]}),
        )
        .await;
    r.expect(200, None);
    alice.order(&["db.svc.example.com"]).await.expect(201, None);
    let r = alice.order(&["db.svc.example.com", "bank.example.org"]).await;
    expect_problem(&r, 400, "rejectedIdentifier");
    assert_eq!(r.json["subproblems"][0]["identifier"]["value"], "bank.example.org");

    // A CSR key weaker than the profile accepts, and an account key too weak to register.
    let r = app
        .put_json(
            &format!("/api/v1/profiles/{}", acme.profile),
            &app.operator,
            &json!({"allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 384}]}),
        )
        .await;
    r.expect(200, None);
    let order = alice.order(&["weak.svc.example.com"]).await;
    order.expect(201, None);
    expect_problem(&alice.finalize(&order.json, &["weak.svc.example.com"]).await, 400, "badCSR");
    let new_account = carol.path("new-account");
    let mut h = carol.header(&new_account).await;
    h["jwk"] = json!({"kty": "RSA", "n": b64(&[0xc5u8; 128]), "e": "AQAB"});
    let weak = carol.key.sign(h, Some(&json!({"termsOfServiceAgreed": true})));
    expect_problem(&carol.post_raw(&new_account, weak.to_string()).await, 400, "badPublicKey");

    // An unknown profile.
    let r = app.get("/acme/profile/nope/directory", "").await;
    expect_problem(&r, 404, "malformed");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_bad_requests_sqlite() {
    bad_requests(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_bad_requests_postgres() {
    bad_requests(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_key_change() {
    let app = TestApp::new().await;
    let acme = setup(&app, "keys", "trust_authenticated").await;
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);
    let kid = client.kid.clone().unwrap();
    let path = client.path("key-change");
    let new_key = Key::p384();
    let inner_header = json!({"jwk": new_key.jwk(), "url": format!("{EXTERNAL}{path}")});
    let inner = new_key.sign(inner_header, Some(&json!({"account": kid, "oldKey": client.key.jwk()})));
    client.post(&path, Some(&inner)).await.expect(200, None);
    // The old key no longer signs for the account; the new one does.
    expect_problem(&client.order(&["k.example.com"]).await, 403, "unauthorized");
    client.key = new_key;
    client.order(&["k.example.com"]).await.expect(201, None);
    app.finish().await;
}

/// Challenge mode: orders wait for validation, offer http-01, dns-01 and tls-alpn-01 for names
/// (dns-01 alone for wildcards, no dns-01 for addresses) with 256-bit tokens, and cannot be
/// finalized before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_challenge_mode_orders_wait() {
    let app = TestApp::new().await;
    let acme = setup(&app, "challenge", "challenge").await;
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);
    let order = client.order(&["app.example.com", "*.example.com"]).await;
    order.expect(201, None);
    assert_eq!(order.json["status"], "pending");
    let plain = client.post(&local(order.json["authorizations"][0].as_str().unwrap()), None).await;
    assert_eq!(plain.json["status"], "pending");
    let kinds = |authz: &serde_json::Value| -> Vec<String> {
        authz["challenges"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(kinds(&plain.json), ["http-01", "dns-01", "tls-alpn-01"]);
    let ip_order = order_ip(&client, "192.0.2.10").await;
    ip_order.expect(201, None);
    let by_ip = client.post(&local(ip_order.json["authorizations"][0].as_str().unwrap()), None).await;
    assert_eq!(kinds(&by_ip.json), ["http-01", "tls-alpn-01"]);
    let token = plain.json["challenges"][0]["token"].as_str().unwrap();
    assert!(token.len() >= 43, "at least 256 bits of token: {token}");
    let wildcard = client.post(&local(order.json["authorizations"][1].as_str().unwrap()), None).await;
    assert_eq!(wildcard.json["wildcard"], true);
    assert_eq!(wildcard.json["identifier"]["value"], "example.com");
    assert_eq!(wildcard.json["challenges"].as_array().unwrap().len(), 1);
    assert_eq!(wildcard.json["challenges"][0]["type"], "dns-01");
    let r = client.finalize(&order.json, &["app.example.com", "*.example.com"]).await;
    expect_problem(&r, 403, "orderNotReady");
    app.finish().await;
}

/// Revocation by the certificate's own key (a jwk request, no account): the first attempt
/// succeeds, so its nonce is spent once, after the signature verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_revoke_with_certificate_key() {
    let app = TestApp::new().await;
    let acme = setup(&app, "certkey", "trust_authenticated").await;
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);
    let order = client.order(&["leaf.example.com"]).await;
    let (cert_key, pkcs8) = Key::p256_pkcs8();
    let rcgen_key = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
    let csr = csr_der_with_key(&["leaf.example.com"], &rcgen_key);
    let r = client.post(&local(order.json["finalize"].as_str().unwrap()), Some(&json!({"csr": b64(&csr)}))).await;
    r.expect(200, None);
    let pem = client.post(&local(r.json["certificate"].as_str().unwrap()), None).await;
    let der = pem_to_der(std::str::from_utf8(&pem.body).unwrap());
    let revoke = json!({"certificate": b64(&der), "reason": 1});
    // Another key (a stranger's jwk) may not revoke it.
    let stranger = Client::new(&app, &acme, Key::p256());
    expect_problem(&stranger.post(&stranger.path("revoke-cert"), Some(&revoke)).await, 403, "unauthorized");
    let holder = Client::new(&app, &acme, cert_key);
    holder.post(&holder.path("revoke-cert"), Some(&revoke)).await.expect(200, None);
    let list = app.get("/api/v1/certificates?source=ACME", &app.viewer).await;
    assert_eq!(list.json["data"][0]["status"], "Revoked");
    assert_eq!(list.json["data"][0]["revocation_reason"], "keyCompromise");
    app.finish().await;
}

/// ARI (RFC 9773): the certID of an issued certificate answers a window inside its lifetime
/// with Retry-After; a revoked one answers "now"; an unknown one is a 404 problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_renewal_info() {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let app = TestApp::new().await;
    let acme = setup(&app, "ari", "trust_authenticated").await;
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);
    let dir = app.get(&format!("{}/directory", acme.prefix), "").await;
    let renewal_info = local(dir.json["renewalInfo"].as_str().unwrap());
    let order = client.order(&["ari.example.com"]).await;
    let r = client.finalize(&order.json, &["ari.example.com"]).await;
    let pem = client.post(&local(r.json["certificate"].as_str().unwrap()), None).await;
    let der = pem_to_der(std::str::from_utf8(&pem.body).unwrap());
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.clone(),
            _ => None,
        })
        .unwrap();
    let cert_id = format!("{}.{}", b64(aki.0), b64(cert.raw_serial()));
    let r = app.get(&format!("{renewal_info}/{cert_id}"), "").await;
    r.expect(200, None);
    assert_eq!(r.headers[header::RETRY_AFTER], "21600");
    let parse = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    let (start, end) = (parse(&r.json["suggestedWindow"]["start"]), parse(&r.json["suggestedWindow"]["end"]));
    let (nb, na) = (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp());
    assert!(nb < start.unix_timestamp() && start < end && end.unix_timestamp() < na, "{}", r.json);

    let revoke = json!({"certificate": b64(&der)});
    client.post(&client.path("revoke-cert"), Some(&revoke)).await.expect(200, None);
    let r = app.get(&format!("{renewal_info}/{cert_id}"), "").await;
    assert!(parse(&r.json["suggestedWindow"]["start"]) <= app.clock.now(), "a revoked certificate renews now");

    let wrong_aki = format!("{}.{}", b64(b"not the CA"), b64(cert.raw_serial()));
    expect_problem(&app.get(&format!("{renewal_info}/{wrong_aki}"), "").await, 404, "malformed");
    expect_problem(&app.get(&format!("{renewal_info}/nodot"), "").await, 400, "malformed");
    app.finish().await;
}

/// An order for one IP address (RFC 8738).
async fn order_ip(client: &Client<'_>, ip: &str) -> crate::harness::Reply {
    let ids = json!({"identifiers": [{"type": "ip", "value": ip}]});
    client.post(&client.path("new-order"), Some(&ids)).await
}

/// A failed validation makes the challenge, the authorization and the order invalid, with the
/// RFC 8555 problem on the challenge. The default configuration refuses loopback targets, so
/// tls-alpn-01 and http-01 for 127.0.0.1 fail at the SSRF guard without any dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_failed_validation_is_recorded() {
    let app = TestApp::new().await;
    let acme = setup(&app, "failing", "challenge").await;
    let mut client = Client::new(&app, &acme, Key::p256());
    client.register().await.expect(201, None);
    for kind in ["tls-alpn-01", "http-01"] {
        let order = order_ip(&client, "127.0.0.1").await;
        order.expect(201, None);
        let authz_url = local(order.json["authorizations"][0].as_str().unwrap());
        let authz = client.post(&authz_url, None).await;
        let challenge = authz.json["challenges"].as_array().unwrap().iter().find(|c| c["type"] == kind).unwrap();
        let r = client.post(&local(challenge["url"].as_str().unwrap()), Some(&json!({}))).await;
        r.expect(200, None);
        let mut authz = client.post(&authz_url, None).await;
        for _ in 0..100 {
            if authz.json["status"] != "pending" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            authz = client.post(&authz_url, None).await;
        }
        assert_eq!(authz.json["status"], "invalid", "{kind}: {}", authz.json);
        let tried = authz.json["challenges"].as_array().unwrap().iter().find(|c| c["type"] == kind).unwrap();
        assert_eq!(tried["status"], "invalid");
        assert_eq!(tried["error"]["type"], "urn:ietf:params:acme:error:connection", "{kind}: {tried}");
        assert!(tried["error"]["detail"].as_str().unwrap().contains("loopback"), "{tried}");
        let order =
            client.post(&local(order.json["finalize"].as_str().unwrap().trim_end_matches("/finalize")), None).await;
        assert_eq!(order.json["status"], "invalid", "{}", order.json);
    }
    app.finish().await;
}
