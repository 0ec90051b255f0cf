//! CRLs, OCSP responses and PKCS#12 exports as the real `openssl` binary reads them.

use std::path::{Path, PathBuf};
use std::process::Command;

use certctl_pki::SigningCa;
use certctl_pki::bootstrap::{PemPair, create_ca, issue_server_cert};
use certctl_pki::crl::{RevokedEntry, build_crl};
use certctl_pki::export::{pem_certs_to_der, pkcs12, split_pem_chain};
use certctl_pki::ocsp::{
    CertStatus, IssuerHashes, OcspResponseStatusCode, Responder, SingleAnswer, error_response, parse_request,
    sign_response,
};
use certctl_pki::revocation::RevocationReason;
use rcgen::KeyPair;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Whether the openssl binary runs; without it the tests are skipped, except in CI.
fn have_openssl() -> bool {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => true,
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("openssl is required in CI but does not run"),
        _ => {
            eprintln!("skipping: the openssl binary is not available");
            false
        }
    }
}

/// Runs openssl with `args`; returns whether it succeeded and its stdout followed by its stderr.
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("run openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

struct Fixture {
    dir: tempfile::TempDir,
    ca_der: Vec<u8>,
    ca_key: Vec<u8>,
    ca: PemPair,
}

impl Fixture {
    /// A fixture around bootstrap's ECDSA P-256 CA.
    fn new(now: OffsetDateTime) -> Self {
        Self::with_ca(create_ca("certctl revocation test CA", now).unwrap())
    }

    /// A fixture around an RSA-2048 CA, the other key family CAs commonly use.
    fn rsa(now: OffsetDateTime) -> Self {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::CommonName, "certctl RSA test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(30);
        let cert = params.self_signed(&key).unwrap();
        Self::with_ca(PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    fn with_ca(ca: PemPair) -> Self {
        let ca_der = pem_certs_to_der(&ca.cert_pem).unwrap().remove(0);
        let ca_key = KeyPair::from_pem(&ca.key_pem).unwrap().serialize_der();
        let fixture = Self { dir: tempfile::tempdir().unwrap(), ca_der, ca_key, ca };
        fixture.write("ca.pem", fixture.ca.cert_pem.as_bytes());
        fixture
    }

    fn signing_ca(&self) -> SigningCa<'_> {
        SigningCa { cert_der: &self.ca_der, key_pkcs8_der: &self.ca_key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path_str(&path)
    }

    /// Issues a leaf, writes it as `name`, and returns (its PEM pair, its serial in the
    /// canonical form: the magnitude without the DER sign byte, as OCSP and CRLs compare it).
    fn leaf(&self, name: &str, now: OffsetDateTime) -> (PemPair, Vec<u8>) {
        let leaf = issue_server_cert(&self.ca, &[format!("{}.example", name.trim_end_matches(".pem"))], now).unwrap();
        self.write(name, leaf.cert_pem.as_bytes());
        let der = pem_certs_to_der(&leaf.cert_pem).unwrap().remove(0);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        // A serial whose first random byte is zero and second has its top bit set keeps a
        // leading zero in DER (the sign byte); the canonical form drops it.
        let raw = cert.raw_serial();
        let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len() - 1);
        (leaf, raw[start..].to_vec())
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[test]
fn crl_is_accepted_and_enforced_by_openssl() {
    if !have_openssl() {
        return;
    }
    let now = OffsetDateTime::now_utc();
    crl_round_trip(&Fixture::new(now), now);
    crl_round_trip(&Fixture::rsa(now), now);
}

fn crl_round_trip(fx: &Fixture, now: OffsetDateTime) {
    let (_, good_serial) = fx.leaf("good.pem", now);
    let (_, revoked_serial) = fx.leaf("revoked.pem", now);
    let entries = [
        RevokedEntry { serial: revoked_serial.clone(), revoked_at: now, reason: RevocationReason::KeyCompromise },
        RevokedEntry { serial: vec![0x01, 0x02, 0x03], revoked_at: now, reason: RevocationReason::Superseded },
        RevokedEntry {
            serial: vec![0x00, 0x7a, 0xbc],
            revoked_at: now - Duration::days(1),
            reason: RevocationReason::CessationOfOperation,
        },
    ];
    let der = build_crl(fx.signing_ca(), 1207, now - Duration::minutes(1), now + Duration::days(1), &entries).unwrap();
    let crl_der = fx.write("crl.der", &der);
    let ca_pem = path_str(&fx.path("ca.pem"));

    let (ok, out) = openssl(&["crl", "-inform", "DER", "-in", &crl_der, "-CAfile", &ca_pem, "-verify", "-noout"]);
    assert!(ok && out.contains("verify OK"), "{out}");

    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", &crl_der, "-text", "-noout"]);
    assert!(ok, "{text}");
    assert!(text.contains("X509v3 CRL Number:") && text.contains("1207"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    for reason in ["Key Compromise", "Superseded", "Cessation Of Operation"] {
        assert!(text.contains(reason), "missing {reason}: {text}");
    }
    assert!(text.contains(&hex::encode_upper(&revoked_serial)), "{text}");
    assert!(text.contains("7ABC") && !text.contains(&hex::encode_upper(&good_serial)), "{text}");

    let crl_pem = path_str(&fx.path("crl.pem"));
    let (ok, out) = openssl(&["crl", "-inform", "DER", "-in", &crl_der, "-out", &crl_pem]);
    assert!(ok, "{out}");
    let verify = |leaf: &str| {
        let leaf = path_str(&fx.path(leaf));
        openssl(&["verify", "-crl_check", "-CRLfile", &crl_pem, "-CAfile", &ca_pem, &leaf])
    };
    let (ok, out) = verify("revoked.pem");
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify("good.pem");
    assert!(ok && out.contains(": OK"), "{out}");
}

/// One OCSP exchange: openssl writes a request for both leaves, we answer it, openssl checks it.
fn ocsp_round_trip(fx: &Fixture, responder: &Responder, request_flags: &[&str], now: OffsetDateTime) {
    let (_, good_serial) = fx.leaf("good.pem", now);
    let (_, revoked_serial) = fx.leaf("revoked.pem", now);
    let ca_pem = path_str(&fx.path("ca.pem"));
    let good = path_str(&fx.path("good.pem"));
    let revoked = path_str(&fx.path("revoked.pem"));
    let req = path_str(&fx.path("req.der"));
    let resp = path_str(&fx.path("resp.der"));

    let mut args = vec!["ocsp", "-issuer", &ca_pem];
    args.extend_from_slice(request_flags);
    args.extend(["-cert", &good, "-cert", &revoked, "-reqout", &req]);
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");

    let query = parse_request(&std::fs::read(&req).unwrap()).unwrap();
    let expects_nonce = !request_flags.contains(&"-no_nonce");
    assert_eq!(query.nonce.is_some(), expects_nonce);
    assert_eq!(query.ids.len(), 2);
    let hashes = IssuerHashes::new(&fx.ca_der).unwrap();
    let revoked_at = now - Duration::hours(2);
    let answers: Vec<SingleAnswer> = query
        .ids
        .iter()
        .map(|id| {
            assert!(hashes.matches(id));
            let status = if id.serial == good_serial {
                CertStatus::Good
            } else {
                assert_eq!(id.serial, revoked_serial);
                CertStatus::Revoked { at: revoked_at, reason: Some(RevocationReason::KeyCompromise) }
            };
            SingleAnswer { id, status, this_update: now - Duration::minutes(1), next_update: now + Duration::hours(1) }
        })
        .collect();
    let der = sign_response(responder, &answers, now, query.nonce.as_deref()).unwrap();
    fx.write("resp.der", &der);

    // Statuses: openssl looks answers up by CertIDs it rebuilds from -cert, so the digest flag
    // must match; -no_nonce stops it from adding a fresh nonce of its own to compare against.
    let digest: Vec<&str> = request_flags.iter().copied().filter(|f| *f == "-sha256").collect();
    let mut args = vec!["ocsp", "-respin", &resp, "-issuer", &ca_pem, "-CAfile", &ca_pem, "-no_nonce"];
    args.extend_from_slice(&digest);
    args.extend(["-cert", &good, "-cert", &revoked]);
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{good}: good")), "{out}");
    assert!(out.contains(&format!("{revoked}: revoked")), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");

    // Nonce: with the saved request, openssl compares its nonce with the response's.
    let (ok, out) = openssl(&["ocsp", "-respin", &resp, "-reqin", &req, "-CAfile", &ca_pem]);
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(!out.contains("WARNING: no nonce in response") && !out.contains("Nonce Verify error"), "{out}");

    if expects_nonce {
        // The check above can fail: a response without the nonce draws openssl's warning.
        let bare = sign_response(responder, &answers, now, None).unwrap();
        let bare_path = fx.write("bare.der", &bare);
        let (_, out) = openssl(&["ocsp", "-respin", &bare_path, "-reqin", &req, "-CAfile", &ca_pem]);
        assert!(out.contains("WARNING: no nonce in response"), "{out}");
    }
}

#[test]
fn ocsp_responses_verify_in_openssl() {
    if !have_openssl() {
        return;
    }
    let now = OffsetDateTime::now_utc();
    let fx = Fixture::new(now);
    let responder = Responder::issue(fx.signing_ca(), now, Duration::days(2)).unwrap();
    ocsp_round_trip(&fx, &responder, &[], now);
    ocsp_round_trip(&fx, &responder, &["-sha256"], now);
    ocsp_round_trip(&fx, &responder, &["-no_nonce"], now);

    let rsa = Fixture::rsa(now);
    let responder = Responder::issue(rsa.signing_ca(), now, Duration::days(2)).unwrap();
    ocsp_round_trip(&rsa, &responder, &["-sha256"], now);

    let err = fx.write("err.der", &error_response(OcspResponseStatusCode::MalformedRequest));
    let (_, out) = openssl(&["ocsp", "-respin", &err, "-resp_text", "-noverify"]);
    assert!(out.contains("malformedrequest"), "{out}");
}

#[test]
fn pkcs12_exports_open_in_openssl() {
    if !have_openssl() {
        return;
    }
    let now = OffsetDateTime::now_utc();
    let fx = Fixture::new(now);
    let (leaf, _) = fx.leaf("leaf.pem", now);
    let (leaf_pem, rest) = split_pem_chain(&format!("{}{}", leaf.cert_pem, fx.ca.cert_pem)).unwrap();
    let chain = pem_certs_to_der(&format!("{leaf_pem}{rest}")).unwrap();
    assert_eq!(chain.len(), 2);

    let certs_only = fx.write("certs.p12", &pkcs12(&chain, None, "secret", "chain").unwrap());
    let (ok, out) = openssl(&["pkcs12", "-info", "-in", &certs_only, "-passin", "pass:secret", "-nokeys"]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{out}");
    assert!(out.contains("PBES2") && !out.contains("PRIVATE KEY"), "{out}");

    let key_der = KeyPair::from_pem(&leaf.key_pem).unwrap().serialize_der();
    let with_key = fx.write("key.p12", &pkcs12(&chain, Some(&key_der), "secret", "my leaf").unwrap());
    let (ok, out) = openssl(&["pkcs12", "-info", "-in", &with_key, "-passin", "pass:secret", "-nodes"]);
    assert!(ok, "{out}");
    assert!(out.contains("-----BEGIN PRIVATE KEY-----"), "{out}");
    assert!(out.contains("friendlyName: my leaf"), "{out}");
    assert_eq!(out.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{out}");

    let (ok, out) = openssl(&["pkcs12", "-info", "-in", &with_key, "-passin", "pass:wrong", "-nodes"]);
    assert!(!ok, "{out}");
}
