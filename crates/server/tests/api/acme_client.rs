//! A minimal ACME client for the in-process protocol tests: EC account keys (P-256 or P-384),
//! flattened JWS signed with aws-lc-rs, and requests through the real router. It can also
//! build deliberately broken requests (wrong url, replayed nonce, jwk where a kid belongs).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair};
use axum::body::Body;
use axum::http::{Method, Request, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{Reply, TestApp};

/// The external URL of the test application (the default `https://$CERTCTL_LISTEN`).
pub const EXTERNAL: &str = "https://127.0.0.1:8443";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An account key.
pub struct Key {
    pair: EcdsaKeyPair,
    alg: &'static str,
    crv: &'static str,
}

impl Key {
    pub fn p256() -> Key {
        Key::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "ES256", "P-256")
    }

    /// A P-256 key with its PKCS#8 form, to put in a CSR and later sign with (revocation by
    /// certificate key).
    pub fn p256_pkcs8() -> (Key, Vec<u8>) {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
        let key = Key { pair: EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap(), alg: "ES256", crv: "P-256" };
        (key, pkcs8.as_ref().to_vec())
    }

    pub fn p384() -> Key {
        Key::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "ES384", "P-384")
    }

    fn generate(alg: &'static EcdsaSigningAlgorithm, name: &'static str, crv: &'static str) -> Key {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
        Key { pair: EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap(), alg: name, crv }
    }

    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        let n = (point.len() - 1) / 2;
        json!({"crv": self.crv, "kty": "EC", "x": b64(&point[1..1 + n]), "y": b64(&point[1 + n..])})
    }

    /// A flattened JWS over `payload` (`None`: POST-as-GET) with `header`.
    pub fn sign(&self, mut header: Value, payload: Option<&Value>) -> Value {
        header["alg"] = json!(self.alg);
        let protected = b64(header.to_string().as_bytes());
        let payload = payload.map(|p| b64(p.to_string().as_bytes())).unwrap_or_default();
        let sig = self.pair.sign(&SystemRandom::new(), format!("{protected}.{payload}").as_bytes()).unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64(sig.as_ref())})
    }
}

/// A profile served over ACME by a fresh local-CA issuer.
pub struct AcmeSetup {
    pub profile: String,
    pub issuer: String,
    /// `/acme/profile/{profile}`.
    pub prefix: String,
}

/// Creates an issuer, a team, an owner and a profile in `mode`, and binds the profile to ACME.
pub async fn setup(app: &TestApp, tag: &str, mode: &str) -> AcmeSetup {
    let team = app.team(&format!("acme team {tag}")).await;
    let owner = app.owner(&format!("acme-owner-{tag}"), &team).await;
    let issuer = fixtures::issuer(app, &format!("acme issuer {tag}")).await;
    let r = app
        .post_json("/api/v1/profiles", &app.operator, &json!({"name": format!("acme {tag}"), "acme_auth_mode": mode}))
        .await;
    r.expect(201, None);
    let profile = r.json["id"].as_str().unwrap().to_owned();
    let body = json!({"issuer_id": issuer, "owner_id": owner, "team_id": team});
    let r = app.put_json(&format!("/api/v1/acme/profiles/{profile}"), &app.admin, &body).await;
    r.expect(200, None);
    assert_eq!(r.json["renewal_policy_id"], "rp-acme");
    AcmeSetup { prefix: format!("/acme/profile/{profile}"), profile, issuer }
}

/// One ACME client: a key, the account URL once registered, and the app it talks to.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub prefix: String,
    pub key: Key,
    pub kid: Option<String>,
}

impl<'a> Client<'a> {
    pub fn new(app: &'a TestApp, setup: &AcmeSetup, key: Key) -> Client<'a> {
        Client { app, prefix: setup.prefix.clone(), key, kid: None }
    }

    /// The path of a directory resource.
    pub fn path(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    pub async fn nonce(&self) -> String {
        let r = self.app.send(Request::head(self.path("new-nonce")).body(Body::empty()).unwrap()).await;
        r.expect(200, None);
        r.headers["replay-nonce"].to_str().unwrap().to_owned()
    }

    /// POSTs a JWS body to `path` as `application/jose+json`.
    pub async fn post_raw(&self, path: &str, body: impl Into<Body>) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/jose+json")
            .body(body.into())
            .unwrap();
        self.app.send(req).await
    }

    /// The protected header for `path` with a fresh nonce, signed by kid when registered.
    pub async fn header(&self, path: &str) -> Value {
        let mut h = json!({"nonce": self.nonce().await, "url": format!("{EXTERNAL}{path}")});
        match &self.kid {
            Some(kid) => h["kid"] = json!(kid),
            None => h["jwk"] = self.key.jwk(),
        }
        h
    }

    /// A signed POST (`payload` `None`: POST-as-GET).
    pub async fn post(&self, path: &str, payload: Option<&Value>) -> Reply {
        let body = self.key.sign(self.header(path).await, payload);
        self.post_raw(path, body.to_string()).await
    }

    /// Registers the key; returns the reply and remembers the account URL.
    pub async fn register(&mut self) -> Reply {
        let path = self.path("new-account");
        let r =
            self.post(&path, Some(&json!({"termsOfServiceAgreed": true, "contact": ["mailto:ops@example.com"]}))).await;
        if r.status.is_success() {
            self.kid = Some(r.headers["location"].to_str().unwrap().to_owned());
        }
        r
    }

    /// Creates an order for DNS names.
    pub async fn order(&self, names: &[&str]) -> Reply {
        let ids: Vec<Value> = names.iter().map(|n| json!({"type": "dns", "value": n})).collect();
        self.post(&self.path("new-order"), Some(&json!({ "identifiers": ids }))).await
    }

    /// Finalizes `order` (its JSON) with a CSR for `names`.
    pub async fn finalize(&self, order: &Value, names: &[&str]) -> Reply {
        let csr = csr_der(names);
        self.post(&local(order["finalize"].as_str().unwrap()), Some(&json!({"csr": b64(&csr)}))).await
    }
}

/// The local path of an absolute URL the server handed out.
pub fn local(url: &str) -> String {
    url.strip_prefix(EXTERNAL).unwrap_or_else(|| panic!("{url} is not under {EXTERNAL}")).to_owned()
}

/// A P-256 CSR for `names` (the first is also the CN).
pub fn csr_der(names: &[&str]) -> Vec<u8> {
    csr_der_with_key(names, &rcgen::KeyPair::generate().unwrap())
}

/// A CSR for `names` over a given key.
pub fn csr_der_with_key(names: &[&str], key: &rcgen::KeyPair) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    params.serialize_request(key).unwrap().der().to_vec()
}

/// Asserts an ACME problem of `kind` with `status`, and that even errors carry a nonce.
#[track_caller]
pub fn expect_problem(r: &Reply, status: u16, kind: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(r.json["type"], format!("urn:ietf:params:acme:error:{kind}"), "body: {}", r.json);
    assert_eq!(r.json["status"], status);
    assert!(r.headers.contains_key("replay-nonce"), "errors carry a Replay-Nonce");
}
