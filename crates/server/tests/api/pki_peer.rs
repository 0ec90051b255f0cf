//! Peer checks of what the local CA hands out, with the real `openssl` binary: a scratch
//! directory, files written into it, and commands run there by argv (never a shell); plus the
//! issuance steps the issuance, revocation and hierarchy tests share.

use std::path::Path;
use std::process::Command;

use axum::body::Body;
use axum::http::{Method, header};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::fixtures::{Deps, cert, cert_body, with};
use certctl_server::clock::Clock;

use crate::harness::{Reply, TestApp};

/// A scratch directory in which `openssl` runs.
pub struct Openssl {
    dir: TempDir,
}

/// What one `openssl` run printed, and whether it succeeded.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams: openssl prints verdicts ("verify OK") on either.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Openssl {
    /// A scratch directory, or `None` when no `openssl` binary can run here: the calling test then
    /// skips. In CI (`CI=true`) a missing binary fails the test instead, so the peer checks never
    /// silently stop running.
    pub fn new() -> Option<Openssl> {
        let why = match Command::new("openssl").arg("version").output() {
            Ok(o) if o.status.success() => {
                let dir = tempfile::Builder::new().prefix("certctl-openssl-").tempdir().expect("a temp dir");
                return Some(Openssl { dir });
            }
            Ok(o) => format!("`openssl version` exited with {}", o.status),
            Err(e) => format!("`openssl` cannot be run: {e}"),
        };
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the openssl peer tests need the openssl binary in CI: {why}");
        }
        eprintln!("skipping an openssl peer test: {why}");
        None
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` in the scratch directory and returns the name, for use in an argv.
    pub fn write<'a>(&self, name: &'a str, bytes: impl AsRef<[u8]>) -> &'a str {
        std::fs::write(self.dir().join(name), bytes).expect("the scratch file is written");
        name
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir().join(name)).unwrap_or_else(|e| panic!("{name} cannot be read: {e}"))
    }

    pub fn read_text(&self, name: &str) -> String {
        String::from_utf8(self.read(name)).expect("a text file")
    }

    /// Runs `openssl args…` in the scratch directory.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = Command::new("openssl").args(args).current_dir(self.dir()).output().expect("openssl runs");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs openssl, which must succeed; returns both output streams.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.ok, "openssl {} failed:\n{}", args.join(" "), r.text());
        r.text()
    }

    /// Runs openssl, which must fail; returns both output streams.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(!r.ok, "openssl {} should have failed:\n{}", args.join(" "), r.text());
        r.text()
    }

    /// The subject public key of a PEM certificate, as PEM.
    #[track_caller]
    pub fn cert_pubkey(&self, cert: &str) -> String {
        self.ok(&["x509", "-in", cert, "-noout", "-pubkey"])
    }

    /// The certificate's serial in certctl's canonical form (lower hex, no leading zero bytes).
    #[track_caller]
    pub fn serial(&self, cert: &str) -> String {
        let out = self.ok(&["x509", "-in", cert, "-noout", "-serial"]);
        let hex = out.trim().strip_prefix("serial=").expect("`serial=` output").to_ascii_lowercase();
        let mut s = hex.as_str();
        while s.len() > 2 && s.starts_with("00") {
            s = &s[2..];
        }
        s.to_owned()
    }

    /// The subject alternative names of a PEM certificate as openssl prints them
    /// (`DNS:a.example.com`, `IP Address:10.0.0.1`), sorted.
    #[track_caller]
    pub fn sans(&self, cert: &str) -> Vec<String> {
        let out = self.ok(&["x509", "-in", cert, "-noout", "-ext", "subjectAltName"]);
        let mut names: Vec<String> = out
            .lines()
            .skip(1)
            .flat_map(|l| l.split(','))
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names
    }

    /// A one-line field of a certificate (`subject`, `issuer`), in RFC 2253 form.
    #[track_caller]
    pub fn name_field(&self, cert: &str, field: &str) -> String {
        let out = self.ok(&["x509", "-in", cert, "-noout", &format!("-{field}"), "-nameopt", "RFC2253"]);
        out.trim().strip_prefix(&format!("{field}=")).expect("`field=` output").to_owned()
    }

    /// Checks a DER CRL's signature against `ca_file`. `openssl crl` exits 0 even on a bad
    /// signature, so the verdict is read from its output.
    #[track_caller]
    pub fn crl_verifies(&self, der_name: &str, ca_file: &str) -> bool {
        let out = self.run(&["crl", "-inform", "DER", "-in", der_name, "-CAfile", ca_file, "-verify", "-noout"]).text();
        match (out.contains("verify OK"), out.contains("verify failure") || out.contains("Error getting CRL issuer")) {
            (true, false) => true,
            (false, true) => false,
            _ => panic!("no verdict from openssl crl: {out}"),
        }
    }

    /// Converts a DER CRL to PEM and returns the PEM file's name.
    #[track_caller]
    pub fn crl_to_pem<'a>(&self, der_name: &str, pem_name: &'a str) -> &'a str {
        self.ok(&["crl", "-inform", "DER", "-in", der_name, "-out", pem_name]);
        pem_name
    }

    /// The CRL number of a DER CRL.
    #[track_caller]
    pub fn crl_number(&self, der_name: &str) -> u64 {
        let out = self.ok(&["crl", "-inform", "DER", "-in", der_name, "-noout", "-crlnumber"]);
        let hex = out.trim().strip_prefix("crlNumber=0x").unwrap_or_else(|| panic!("crlNumber output: {out}"));
        u64::from_str_radix(hex, 16).expect("a hex CRL number")
    }
}

/// The application's "now" as openssl's `-attime` wants it: the manual clock, not the wall clock,
/// decides whether what the server issued is valid.
pub fn attime(app: &TestApp) -> String {
    app.clock.now().unix_timestamp().to_string()
}

/// Moves the manual clock to the wall clock (whole seconds), for checks where openssl reads the
/// wall clock itself (the validity window of OCSP responses).
pub fn to_wall_clock(app: &TestApp) {
    let wall = time::OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 is a valid nanosecond");
    app.clock.advance(wall - app.clock.now());
}

/// Builds an OCSP request for `leaf` with openssl into `out`; returns its DER.
pub fn ocsp_request(ssl: &Openssl, ca: &str, leaf: &str, out: &str, nonce: bool) -> Vec<u8> {
    let mut args = vec!["ocsp", "-issuer", ca, "-cert", leaf, "-reqout", out];
    if !nonce {
        args.push("-no_nonce");
    }
    ssl.ok(&args);
    ssl.read(out)
}

/// Checks an OCSP response with openssl against the request it answers (signed by a responder
/// the `issuer` CA authorised, chaining to `trusted`; the nonce echoed), then returns what
/// openssl says of `leaf`'s status.
#[track_caller]
pub fn ocsp_status(ssl: &Openssl, resp: &str, req: &str, issuer: &str, trusted: &str, leaf: &str) -> String {
    let out = ssl.ok(&["ocsp", "-respin", resp, "-reqin", req, "-CAfile", trusted]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(!out.contains("WARNING") && !out.contains("Nonce"), "{out}");
    let out = ssl.ok(&["ocsp", "-respin", resp, "-issuer", issuer, "-cert", leaf, "-CAfile", trusted, "-no_nonce"]);
    assert!(out.contains("Response verify OK") && !out.contains("WARNING"), "{out}");
    out
}

/// Percent-encodes the characters of standard base64 that are not safe in a URL path segment.
pub fn url_encode_base64(b64: &str) -> String {
    b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A profile whose certificates get server-generated keys.
pub async fn server_profile(app: &TestApp, name: &str) -> String {
    let r = app.post_json("/api/v1/profiles", &app.operator, &json!({"name": name, "key_mode": "server"})).await;
    r.expect(201, None);
    assert_eq!(r.json["key_mode"], "server");
    r.json["id"].as_str().unwrap().to_owned()
}

/// A renewal policy with the given settings.
pub async fn policy_with(app: &TestApp, name: &str, settings: Value) -> String {
    let body = with(json!({"name": name}), settings);
    let r = app.post_json("/api/v1/renewal-policies", &app.operator, &body).await;
    r.expect(201, None);
    r.json["id"].as_str().unwrap().to_owned()
}

/// A certificate `<name>` for `common_name` under the profile (server keys when it is a
/// server-key profile), not yet issued.
pub async fn cert_for(app: &TestApp, d: &Deps, profile: Option<&str>, name: &str, common_name: &str) -> String {
    let mut body = with(cert_body(d, name), json!({"common_name": common_name}));
    if let Some(p) = profile {
        body = with(body, json!({"certificate_profile_id": p}));
    }
    cert(app, &body).await
}

/// Asks for a renewal (operator key), expecting 202; returns the job.
pub async fn renew(app: &TestApp, cert_id: &str) -> Value {
    let r = app.post_json(&format!("/api/v1/certificates/{cert_id}/renew"), &app.operator, &json!({})).await;
    r.expect(202, None);
    assert_eq!(r.json["status"], "renewal_triggered");
    assert_eq!(r.json["job_id"], r.json["job"]["id"]);
    r.json["job"].clone()
}

/// Renews a server-key certificate and runs the job processor; returns the job as it ended.
pub async fn issue(app: &TestApp, cert_id: &str) -> Value {
    let job = renew(app, cert_id).await;
    certctl_server::scheduler::drain_jobs(&app.state).await;
    job_of(app, job["id"].as_str().unwrap()).await
}

/// Creates and issues a server-key certificate; returns its ID and its leaf PEM.
pub async fn issued(app: &TestApp, d: &Deps, profile: &str, name: &str, common_name: &str) -> (String, String) {
    let id = cert_for(app, d, Some(profile), name, common_name).await;
    let job = issue(app, &id).await;
    assert_eq!(job["status"], "Completed", "the issuance completes: {job}");
    let leaf = export_pem(app, &id).await["cert_pem"].as_str().unwrap().to_owned();
    (id, leaf)
}

pub async fn job_of(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/jobs/{id}"), &app.viewer).await;
    r.expect(200, None);
    r.json
}

pub async fn certificate(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/certificates/{id}"), &app.viewer).await;
    r.expect(200, None);
    r.json
}

/// The certificate's versions, newest first.
pub async fn versions(app: &TestApp, id: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/certificates/{id}/versions"), &app.viewer).await;
    r.expect(200, None);
    r.json["data"].as_array().expect("a data array").clone()
}

/// `GET …/export/pem`: `cert_pem`, `chain_pem` and `full_pem`.
pub async fn export_pem(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/certificates/{id}/export/pem"), &app.viewer).await;
    r.expect(200, None);
    r.json
}

/// The issuer's signing chain, PEM (`GET /api/v1/issuers/{id}/ca`).
pub async fn issuer_chain(app: &TestApp, issuer: &str) -> String {
    let r = app.get(&format!("/api/v1/issuers/{issuer}/ca"), &app.viewer).await;
    r.expect(200, None);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/x-pem-file");
    String::from_utf8(r.body.to_vec()).unwrap()
}

/// Sends a DER OCSP request by POST, unauthenticated, as a relying party does.
pub async fn ocsp_post(app: &TestApp, path_id: &str, der: Vec<u8>) -> Reply {
    let req = TestApp::request(Method::POST, &format!("/.well-known/pki/ocsp/{path_id}"), "")
        .header(header::CONTENT_TYPE, "application/ocsp-request")
        .body(Body::from(der))
        .unwrap();
    let r = app.send(req).await;
    r.expect(200, None);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/ocsp-response");
    r
}
