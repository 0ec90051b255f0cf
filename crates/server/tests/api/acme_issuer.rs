//! certctl as an ACME *client*: an `ACME` issuer orders certificates from real ACME servers —
//! Debian's pebble (names resolved by pebble-challtestsrv) and another certctl-server — through
//! the ordinary issuance pipeline, and revokes at the CA. Chains are checked with
//! `openssl verify` against the CA's own root. A missing peer skips, except in CI.

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, header};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Child;
use tower::ServiceExt;

use certctl_server::scheduler::drain_jobs;
use certctl_store::Backend;

use crate::acme_peers::{Server, free_port};
use crate::fixtures::{agent, cert_body, deps, with};
use crate::harness::TestApp;
use crate::pki_peer::{Openssl, certificate, export_pem, job_of, renew, server_profile, to_wall_clock, versions};

/// Whether `binary` can be started (pebble's tools have no `--version`); when not, skips with
/// the reason or, in CI, fails.
fn available(binary: &str) -> bool {
    match std::process::Command::new(binary).arg("-h").output() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the ACME issuer tests need {binary} in CI: {e}");
            }
            eprintln!("skipping an ACME issuer test: `{binary}` cannot be run: {e}");
            false
        }
    }
}

/// A pebble ACME server with its own DNS (pebble-challtestsrv answering 127.0.0.1 for every
/// name), TLS from a throwaway CA, and HTTP-01 validation dialling `http_port`.
struct Pebble {
    directory: String,
    management: String,
    /// pebble-challtestsrv's management API (`/set-txt`, `/clear-txt`).
    challtest: String,
    /// The CA of pebble's TLS certificate, to trust pebble's HTTPS.
    tls_ca_pem: String,
    http: reqwest::Client,
    _dir: TempDir,
    _children: Vec<Child>,
}

fn spawn(program: &str, args: &[&str], env: &[(&str, &str)], logs: &Path) -> Child {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .kill_on_drop(true)
        .stdout(std::fs::File::create(logs.join(format!("{program}.out"))).unwrap())
        .stderr(std::fs::File::create(logs.join(format!("{program}.err"))).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap_or_else(|e| panic!("{program} cannot start: {e}"))
}

impl Pebble {
    async fn start(always_valid: bool, http_port: u16) -> Pebble {
        Pebble::start_with(always_valid, http_port, None).await
    }

    /// `eab`: the key ID and base64url HMAC key pebble then requires every new account to bind.
    async fn start_with(always_valid: bool, http_port: u16, eab: Option<(&str, &str)>) -> Pebble {
        let dir = tempfile::Builder::new().prefix("certctl-pebble-").tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "pebble test TLS CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();

        let (listen, management, dns) = (free_port(), free_port(), free_port());
        let mut config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": cert_path, "privateKey": key_path,
            "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }});
        if let Some((kid, key)) = eab {
            config["pebble"]["externalAccountBindingRequired"] = json!(true);
            config["pebble"]["externalAccountMACKeys"] = json!({ kid: key });
        }
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let dns_addr = format!("127.0.0.1:{dns}");
        let challtest_mgmt = format!("127.0.0.1:{}", free_port());
        let challtestsrv = spawn(
            "pebble-challtestsrv",
            &[
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
                "-dns01",
                &dns_addr,
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &challtest_mgmt,
            ],
            &[],
            dir.path(),
        );
        let mut env = vec![("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0")];
        if always_valid {
            env.push(("PEBBLE_VA_ALWAYS_VALID", "1"));
        }
        let pebble =
            spawn("pebble", &["-config", config_path.to_str().unwrap(), "-dnsserver", &dns_addr], &env, dir.path());
        let tls_ca_pem = ca.pem();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(tls_ca_pem.as_bytes()).unwrap()])
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let directory = format!("https://127.0.0.1:{listen}/dir");
        for attempt in 0.. {
            if http.get(&directory).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            let log = std::fs::read_to_string(dir.path().join("pebble.err")).unwrap_or_default();
            assert!(attempt < 150, "pebble did not come up:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Pebble {
            directory,
            management: format!("https://127.0.0.1:{management}"),
            challtest: format!("http://{challtest_mgmt}"),
            tls_ca_pem,
            http,
            _dir: dir,
            _children: vec![challtestsrv, pebble],
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.management)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The root pebble signs leaves under.
    async fn root(&self) -> String {
        let (status, pem) = self.get("/roots/0").await;
        assert_eq!(status, 200, "{pem}");
        pem
    }

    /// pebble's view of a serial: `Valid` or `Revoked`.
    async fn status(&self, serial_hex: &str) -> String {
        let (status, body) = self.get(&format!("/cert-status-by-serial/{serial_hex}")).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["Status"].as_str().unwrap_or_default().to_owned()
    }

    fn issuer_config(&self, extra: Value) -> Value {
        with(
            json!({"directory_url": self.directory, "contact": ["ops@example.com"], "ca_bundle_pem": self.tls_ca_pem}),
            extra,
        )
    }
}

/// An application that may dial loopback ACME servers, its clock at the wall clock (the CA's
/// certificates are valid now, not at the test epoch).
async fn client_app(backend: Backend) -> Option<TestApp> {
    let app = TestApp::on_with(backend, &[("allow_loopback_targets", "true")]).await?;
    to_wall_clock(&app);
    Some(app)
}

async fn acme_issuer(app: &TestApp, name: &str, config: Value) -> String {
    let r =
        app.post_json("/api/v1/issuers", &app.operator, &json!({"name": name, "type": "ACME", "config": config})).await;
    r.expect(201, None);
    r.json["id"].as_str().unwrap().to_owned()
}

/// A certificate for `web.example.com` (plus `alt.example.com`) through `issuer`.
async fn acme_certificate(app: &TestApp, tag: &str, issuer: &str, profile: Option<&str>) -> String {
    let d = deps(app, tag).await;
    let extra = json!({"name": format!("web-{tag}"), "issuer_id": issuer, "sans": ["alt.example.com"]});
    let mut body = with(cert_body(&d, "web"), extra);
    if let Some(p) = profile {
        body = with(body, json!({"certificate_profile_id": p}));
    }
    let r = app.post_json("/api/v1/certificates", &app.operator, &body).await;
    r.expect(201, None);
    r.json["id"].as_str().unwrap().to_owned()
}

/// Renews a server-key certificate, runs the job processor, and expects the job to complete.
async fn issue_through_acme(app: &TestApp, id: &str) {
    let job = renew(app, id).await;
    drain_jobs(&app.state).await;
    let job = job_of(app, job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "Completed", "{job}");
}

/// Checks the issued certificate: its chain verifies against `root`, it names the ordered
/// names, and the inventory shows it Active.
async fn check_issued(app: &TestApp, ssl: &Openssl, id: &str, root: &str) -> String {
    let c = certificate(app, id).await;
    assert_eq!(c["status"], "Active", "{c}");
    let vs = versions(app, id).await;
    assert_eq!(vs.len(), 1, "{vs:?}");
    let pem = export_pem(app, id).await;
    let leaf = ssl.write("leaf.pem", pem["cert_pem"].as_str().unwrap());
    let chain = ssl.write("chain.pem", pem["chain_pem"].as_str().unwrap());
    let root = ssl.write("root.pem", root);
    let out = ssl.ok(&["verify", "-CAfile", root, "-untrusted", chain, leaf]);
    assert!(out.contains("leaf.pem: OK"), "{out}");
    assert_eq!(ssl.sans(leaf), ["DNS:alt.example.com", "DNS:web.example.com"]);
    assert_eq!(ssl.serial(leaf), vs[0]["serial_number"].as_str().unwrap());
    vs[0]["serial_number"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_issues_and_revokes_through_an_acme_issuer() {
    if !available("pebble") || !available("pebble-challtestsrv") {
        return;
    }
    let Some(ssl) = Openssl::new() else { return };
    let pebble = Pebble::start(true, free_port()).await;
    let root = pebble.root().await;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = client_app(backend).await else { continue };
        let issuer = acme_issuer(
            &app,
            "pebble",
            pebble.issuer_config(json!({"http01_listen": format!("127.0.0.1:{}", free_port())})),
        )
        .await;
        let r = app.get(&format!("/api/v1/issuers/{issuer}"), &app.viewer).await;
        assert_eq!(r.json["config"]["directory_url"], pebble.directory);
        let prof = server_profile(&app, "acme server keys").await;
        let id = acme_certificate(&app, "pebble", &issuer, Some(&prof)).await;
        issue_through_acme(&app, &id).await;
        let serial = check_issued(&app, &ssl, &id, &root).await;
        assert_eq!(pebble.status(&serial).await, "Valid");
        let accounts = app.store.acme_issuer_account(&issuer).await.unwrap().expect("the account is stored");
        assert!(accounts.account_url.starts_with("https://127.0.0.1:"), "{accounts:?}");

        // A second issuance reuses the stored account.
        issue_through_acme(&app, &id).await;
        assert_eq!(versions(&app, &id).await.len(), 2);
        let again = app.store.acme_issuer_account(&issuer).await.unwrap().unwrap();
        assert_eq!(again.account_url, accounts.account_url, "one account per issuer");

        // A restarted server (new in-memory state over the same database and key) revokes with
        // the stored account.
        let (restarted, _audit) =
            certctl_server::build_state(app.store.clone(), (*app.state.config).clone(), app.clock.clone()).unwrap();
        let req = TestApp::request(Method::POST, &format!("/api/v1/certificates/{id}/revoke"), &app.operator)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"reason": "keyCompromise"}).to_string()))
            .unwrap();
        let response = certctl_server::router(restarted).oneshot(req).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let revoked: Value = serde_json::from_slice(&body).unwrap();
        let current = versions(&app, &id).await[0]["serial_number"].as_str().unwrap().to_owned();
        assert_eq!(revoked["serial_number"], current);
        assert_eq!(pebble.status(&current).await, "Revoked", "pebble revoked it");
        assert_eq!(pebble.status(&serial).await, "Valid", "only the current version is revoked");
        assert_eq!(certificate(&app, &id).await["status"], "Revoked");
        app.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_validates_http01_against_the_built_in_responder() {
    if !available("pebble") || !available("pebble-challtestsrv") {
        return;
    }
    let Some(ssl) = Openssl::new() else { return };
    let port = free_port();
    let pebble = Pebble::start(false, port).await;
    let root = pebble.root().await;
    let app = client_app(Backend::Sqlite).await.unwrap();
    let listen = format!("127.0.0.1:{port}");
    let issuer = acme_issuer(&app, "pebble http-01", pebble.issuer_config(json!({"http01_listen": listen}))).await;

    // Agent key mode: the job waits for the agent's CSR, whose arrival places the order.
    let id = acme_certificate(&app, "http01", &issuer, None).await;
    let agent_id = agent(&app.store, "web01").await;
    let job = renew(&app, &id).await;
    drain_jobs(&app.state).await;
    assert_eq!(job_of(&app, job["id"].as_str().unwrap()).await["status"], "AwaitingCSR");
    ssl.ok(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        "web.key",
        "-out",
        "web.csr",
        "-subj",
        "/CN=web.example.com",
        "-addext",
        "subjectAltName=DNS:web.example.com,DNS:alt.example.com",
    ]);
    let csr = ssl.read_text("web.csr");
    let r = app
        .post_json(
            &format!("/api/v1/agents/{agent_id}/csr"),
            &app.operator,
            &json!({"certificate_id": id, "csr_pem": csr}),
        )
        .await;
    r.expect(201, None);
    assert_eq!(job_of(&app, job["id"].as_str().unwrap()).await["status"], "Completed");
    check_issued(&app, &ssl, &id, &root).await;
    let leaf = ssl.write("leaf.pem", r.json["cert_pem"].as_str().unwrap());
    assert_eq!(ssl.cert_pubkey(leaf), ssl.ok(&["req", "-in", "web.csr", "-noout", "-pubkey"]), "the agent's key");
    // The responder stopped with the order.
    assert!(std::net::TcpListener::bind(&listen).is_ok(), "the http-01 port is free again");

    // Nobody answers on another port: pebble's validation fails and the job records why.
    let other = free_port();
    let r = app
        .put_json(
            &format!("/api/v1/issuers/{issuer}"),
            &app.operator,
            &json!({"config": pebble.issuer_config(json!({"http01_listen": format!("127.0.0.1:{other}")}))}),
        )
        .await;
    r.expect(200, None);
    // New names: pebble would reuse the authorizations it already validated for the others.
    let prof = server_profile(&app, "acme server keys").await;
    let d = deps(&app, "unanswered").await;
    let body = json!({"name": "unanswered", "common_name": "unanswered.example.com", "owner_id": d.owner,
        "team_id": d.team, "issuer_id": issuer, "renewal_policy_id": d.policy, "certificate_profile_id": prof});
    let r = app.post_json("/api/v1/certificates", &app.operator, &body).await;
    r.expect(201, None);
    let failing = r.json["id"].as_str().unwrap().to_owned();
    let job = renew(&app, &failing).await;
    drain_jobs(&app.state).await;
    let job = job_of(&app, job["id"].as_str().unwrap()).await;
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with(&format!("ACME CA {}", pebble.directory)), "{job}");
    assert!(error.contains("validation failed") && error.contains("unanswered.example.com"), "{error}");
    assert_eq!(job["status"], "Pending", "the retry policy schedules another attempt: {job}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certctl_issues_through_another_certctl_over_acme() {
    let Some(ssl) = Openssl::new() else { return };
    let ca_server = Server::start(free_port()).await;
    let (status, issuers) = ca_server.call(reqwest::Method::GET, "/api/v1/issuers", None).await;
    assert_eq!(status, 200);
    let ca_issuer = issuers["data"].as_array().unwrap().iter().find(|i| i["type"] == "GenericCA").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = ca_server
        .http
        .get(format!("{}/api/v1/issuers/{ca_issuer}/ca", ca_server.url))
        .bearer_auth(&ca_server.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let app = client_app(Backend::Sqlite).await.unwrap();
    let config = json!({
        "directory_url": format!("{}/acme/directory", ca_server.url),
        "ca_bundle_pem": std::fs::read_to_string(&ca_server.ca).unwrap(),
        "http01_listen": format!("127.0.0.1:{}", free_port()),
    });
    let issuer = acme_issuer(&app, "certctl upstream", config).await;
    let prof = server_profile(&app, "acme server keys").await;
    let id = acme_certificate(&app, "upstream", &issuer, Some(&prof)).await;
    issue_through_acme(&app, &id).await;
    let serial = check_issued(&app, &ssl, &id, &root).await;
    let upstream = ca_server.acme_certificates().await;
    assert!(
        upstream.iter().any(|c| c["common_name"] == "web.example.com"),
        "the upstream inventory shows the ACME issuance: {upstream:?}"
    );
    // The upstream CA offers ARI, so the suggested renewal window is kept for the scan.
    let window = app.store.renewal_window(&id).await.unwrap().expect("an ARI window");
    assert_eq!(window.serial_number, serial);
    assert!(window.start <= window.renew_at && window.renew_at < window.end, "{window:?}");
    app.finish().await;
}

async fn config_errors_on(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else { return };
    let create = |config: Value| {
        let app = &app;
        async move {
            app.post_json("/api/v1/issuers", &app.operator, &json!({"name": "acme", "type": "ACME", "config": config}))
                .await
        }
    };
    let url = "https://acme.example.com/directory";
    create(json!({})).await.expect_bad_field("config.directory_url");
    create(json!({"directory_url": "http://acme.example.com/directory"}))
        .await
        .expect_bad_field("config.directory_url");
    // Loopback needs CERTCTL_ALLOW_LOOPBACK_TARGETS=true, which this application does not set.
    create(json!({"directory_url": "https://127.0.0.1:14000/dir"})).await.expect_bad_field("config.directory_url");
    create(json!({"directory_url": url, "contact": ["not-an-address"]})).await.expect_bad_field("config.contact[0]");
    create(json!({"directory_url": url, "eab_kid": "kid"})).await.expect_bad_field("config.eab_hmac_key");
    create(json!({"directory_url": url, "challenge": "tls-alpn-01"})).await.expect_bad_field("config.challenge");
    create(json!({"directory_url": url, "challenge": "dns-01"})).await.expect_bad_field("config.dns_present_command");
    create(json!({"directory_url": url, "challenge": "dns-01", "dns_present_command": "/bin/hook add"}))
        .await
        .expect_bad_field("config.dns_present_command");
    create(json!({"directory_url": url, "http01_listen": "everywhere"})).await.expect_bad_field("config.http01_listen");
    create(json!({"directory_url": url, "ca_bundle_pem": "nope"})).await.expect_bad_field("config.ca_bundle_pem");
    create(json!({"directory_url": url, "retries": 3})).await.expect_bad_field("config.retries");

    // A good one; the EAB HMAC key is a secret: sealed, redacted on read, kept on update.
    let config = json!({"directory_url": url, "contact": ["ops@example.com"], "eab_kid": "kid-7",
        "eab_hmac_key": "c2VjcmV0LWhtYWMta2V5", "challenge": "dns-01",
        "dns_present_command": ["/usr/local/bin/dns-hook", "present"], "profile": "shortlived"});
    let r = create(config).await;
    r.expect(201, None);
    assert_eq!(r.json["config"]["eab_hmac_key"], "********");
    assert_eq!(r.json["config"]["eab_kid"], "kid-7");
    assert!(!r.body.windows(6).any(|w| w == b"c2VjcmV"), "the key never shows");
    let id = r.json["id"].as_str().unwrap();
    let mut update = r.json["config"].clone();
    update["profile"] = json!("classic");
    app.put_json(&format!("/api/v1/issuers/{id}"), &app.operator, &json!({"config": update})).await.expect(200, None);
    let stored = certctl_server::local_ca::issuer_config(&app.state, id).await.unwrap();
    assert_eq!(stored["eab_hmac_key"], "c2VjcmV0LWhtYWMta2V5", "the placeholder kept the stored secret");
    assert_eq!(stored["profile"], "classic");
    let bad = json!({"config": {"directory_url": url, "challenge": "carrier-pigeon"}});
    app.put_json(&format!("/api/v1/issuers/{id}"), &app.operator, &bad).await.expect_bad_field("config.challenge");
    app.finish().await;
}

#[tokio::test]
async fn acme_issuer_config_errors_name_the_field_on_sqlite() {
    config_errors_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn acme_issuer_config_errors_name_the_field_on_postgres() {
    config_errors_on(Backend::Postgres).await;
}

/// The HMAC key pebble holds for `kid-1` (base64url, as CAs hand them out).
const EAB_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_requires_the_bound_account_and_validates_dns01_through_hooks() {
    if !available("pebble") || !available("pebble-challtestsrv") || !available("python3") {
        return;
    }
    let Some(ssl) = Openssl::new() else { return };
    let pebble = Pebble::start_with(false, free_port(), Some(("kid-1", EAB_KEY))).await;
    let root = pebble.root().await;
    let app = client_app(Backend::Sqlite).await.unwrap();
    let prof = server_profile(&app, "acme server keys").await;

    // Without the binding pebble refuses the account, and the job says so.
    let unbound = acme_issuer(
        &app,
        "unbound",
        pebble.issuer_config(json!({"http01_listen": format!("127.0.0.1:{}", free_port())})),
    )
    .await;
    let id = acme_certificate(&app, "unbound", &unbound, Some(&prof)).await;
    let job = renew(&app, &id).await;
    drain_jobs(&app.state).await;
    let job = job_of(&app, job["id"].as_str().unwrap()).await;
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("creating the ACME account failed") && error.contains("externalAccount"), "{job}");
    assert!(app.store.acme_issuer_account(&unbound).await.unwrap().is_none());

    // The hooks: a script of the test's own (certctl runs `python3 script verb` as argv, so the
    // file needs no exec bit and no freshly written file is executed) that publishes the record
    // in pebble-challtestsrv, pebble's DNS, and logs what it was asked to do.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hook.log");
    let hook = dir.path().join("hook.py");
    let script = r#"import json, os, sys, urllib.request
verb, name = sys.argv[1], os.environ["CERTCTL_ACME_DNS_NAME"]
with open(LOG, "a") as log:
    log.write(f"{verb} {name}\n")
body = {"host": os.environ["CERTCTL_ACME_DNS_FQDN"], "value": os.environ["CERTCTL_ACME_DNS_VALUE"]}
urllib.request.urlopen(URL + "/" + verb, json.dumps(body).encode(), timeout=10).read()
"#;
    let script = script
        .replace("LOG", &format!("{:?}", log.display().to_string()))
        .replace("URL", &format!("{:?}", pebble.challtest));
    std::fs::write(&hook, script).unwrap();
    let hook = hook.display().to_string();
    let config = pebble.issuer_config(json!({
        "eab_kid": "kid-1", "eab_hmac_key": EAB_KEY, "challenge": "dns-01",
        "dns_present_command": ["python3", hook, "set-txt"], "dns_cleanup_command": ["python3", hook, "clear-txt"],
        "dns_timeout_seconds": 20,
    }));
    let bound = acme_issuer(&app, "bound", config).await;
    let id = acme_certificate(&app, "bound", &bound, Some(&prof)).await;
    issue_through_acme(&app, &id).await;
    check_issued(&app, &ssl, &id, &root).await;
    assert!(app.store.acme_issuer_account(&bound).await.unwrap().is_some());
    let mut calls: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    calls.sort();
    assert_eq!(
        calls,
        [
            "clear-txt _acme-challenge.alt.example.com",
            "clear-txt _acme-challenge.web.example.com",
            "set-txt _acme-challenge.alt.example.com",
            "set-txt _acme-challenge.web.example.com",
        ],
        "each record published, then removed"
    );
    app.finish().await;
}
