//! Issuance checked by an independent peer: the real `openssl` binary verifies the chains we
//! build, reads the extensions we write, hands us its CSRs and CA keys, and enforces the name
//! and path length constraints we refuse to violate.

use std::path::{Path, PathBuf};
use std::process::Command;

use certctl_pki::PkiError;
use certctl_pki::ca::{CaCert, CaSpec};
use certctl_pki::constraints::{NameConstraintSet, San};
use certctl_pki::csr::parse_csr;
use certctl_pki::issue::{Eku, IssuedCert, LeafRequest, PkiUrls, issue_leaf, issue_with_new_key};
use certctl_pki::keys::{KeySpec, PrivateKey};
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose, SerialNumber};
use time::{Duration, OffsetDateTime};

/// A scratch directory and the openssl binary, or `None` when openssl is missing outside CI.
struct Peer {
    dir: tempfile::TempDir,
}

impl Peer {
    fn new() -> Option<Self> {
        let found = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        if !found {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("the openssl binary is required in CI but was not found");
            }
            eprintln!("skipping: the openssl binary is not installed");
            return None;
        }
        Some(Self { dir: tempfile::tempdir().unwrap() })
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs openssl and returns (success, stdout + stderr).
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("openssl").args(args).current_dir(self.dir.path()).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "openssl {args:?} failed:\n{text}");
        text
    }

    /// `openssl verify -x509_strict` of `leaf` against `root`, with `intermediates` untrusted.
    fn verify(&self, root: &str, intermediates: &[&str], leaf: &str) -> (bool, String) {
        let root = self.write("root.pem", root);
        let inter = self.write("untrusted.pem", &intermediates.concat());
        let leaf = self.write("leaf.pem", leaf);
        let mut args = vec!["verify", "-x509_strict", "-CAfile", s(&root)];
        if !intermediates.is_empty() {
            args.extend_from_slice(&["-untrusted", s(&inter)]);
        }
        args.push(s(&leaf));
        let (ok, text) = self.run(&args);
        (ok && text.contains(": OK"), text)
    }

    fn text(&self, cert_pem: &str) -> String {
        let path = self.write("show.pem", cert_pem);
        self.run_ok(&["x509", "-noout", "-text", "-in", s(&path)])
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn ca_spec(cn: &str, key: KeySpec, path_len: Option<u8>, days: i64) -> CaSpec {
    CaSpec {
        common_name: cn.into(),
        organization: Some("certctl interop".into()),
        key,
        validity: Duration::days(days),
        path_len,
        name_constraints: NameConstraintSet::default(),
    }
}

fn sans(names: &[&str]) -> Vec<San> {
    names.iter().map(|n| San::parse(n).unwrap()).collect()
}

fn leaf(ca: &CaCert, key: KeySpec, cn: &str, names: &[&str], urls: &PkiUrls, must_staple: bool) -> IssuedCert {
    let ekus = [Eku::ServerAuth, Eku::ClientAuth];
    issue_with_new_key(ca, key, cn, &sans(names), &ekus, must_staple, Duration::days(30), urls, now()).unwrap().0
}

/// A leaf for `dns` signed by `ca` with rcgen directly, skipping our constraint checks.
fn forged_leaf(ca: &CaCert, dns: &str) -> String {
    let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
    let mut params = CertificateParams::new(vec![dns.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, dns);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from(7u64));
    params.not_before = now() - Duration::minutes(5);
    params.not_after = now() + Duration::days(1);
    let issuer = Issuer::from_ca_cert_der(&ca.cert_der().into(), ca.key().key_pair().unwrap()).unwrap();
    params.signed_by(&key.key_pair().unwrap(), &issuer).unwrap().pem()
}

#[test]
fn hierarchies_of_every_ca_key_verify_leaves_of_every_key() {
    let Some(peer) = Peer::new() else { return };
    for ca_key in [KeySpec::EcdsaP256, KeySpec::EcdsaP384, KeySpec::Rsa2048] {
        let root = CaCert::create_root(&ca_spec("Interop Root", ca_key, Some(1), 3650), now()).unwrap();
        let inter = root.issue_child(&ca_spec("Interop Issuing CA", ca_key, None, 365), now()).unwrap();
        assert_eq!(inter.chain_pem(), format!("{}{}", inter.cert_pem(), root.cert_pem()));
        for leaf_key in [KeySpec::EcdsaP256, KeySpec::EcdsaP384, KeySpec::Rsa2048, KeySpec::Ed25519] {
            let cert = leaf(&inter, leaf_key, "svc.example.com", &["svc.example.com"], &PkiUrls::default(), false);
            let (ok, text) = peer.verify(&root.cert_pem(), &[&inter.cert_pem()], &cert.pem);
            assert!(ok, "CA {ca_key}, leaf {leaf_key}: {text}");
        }
        // Without the intermediate the leaf does not chain, so the verification above is real.
        let cert =
            leaf(&inter, KeySpec::EcdsaP256, "svc.example.com", &["svc.example.com"], &PkiUrls::default(), false);
        let (ok, text) = peer.verify(&root.cert_pem(), &[], &cert.pem);
        assert!(!ok, "verified without the intermediate: {text}");
    }
}

#[test]
fn extensions_are_visible_to_openssl() {
    let Some(peer) = Peer::new() else { return };
    let root = CaCert::create_root(&ca_spec("Ext Root", KeySpec::EcdsaP256, Some(0), 3650), now()).unwrap();
    let urls = PkiUrls {
        crl: Some("http://pki.example.net/crl/root.crl".into()),
        ocsp: Some("http://pki.example.net/ocsp".into()),
        ca_issuers: Some("http://pki.example.net/root.crt".into()),
    };
    let names = ["www.example.net", "192.0.2.44", "ops@example.net", "spiffe://example.net/web"];
    let cert = leaf(&root, KeySpec::Rsa2048, "www.example.net", &names, &urls, true);
    let text = peer.text(&cert.pem);
    for needle in [
        "TLS Feature:",
        "status_request",
        "X509v3 CRL Distribution Points:",
        "URI:http://pki.example.net/crl/root.crl",
        "Authority Information Access:",
        "OCSP - URI:http://pki.example.net/ocsp",
        "CA Issuers - URI:http://pki.example.net/root.crt",
        "X509v3 Authority Key Identifier:",
        "X509v3 Subject Key Identifier:",
        "X509v3 Key Usage: critical",
        "Digital Signature, Key Encipherment",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "CA:FALSE",
        "DNS:www.example.net",
        "IP Address:192.0.2.44",
        "email:ops@example.net",
        "URI:spiffe://example.net/web",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let (ok, out) = peer.verify(&root.cert_pem(), &[], &cert.pem);
    assert!(ok, "{out}");

    let path = peer.write("ext.pem", &cert.pem);
    let serial = peer.run_ok(&["x509", "-noout", "-serial", "-in", s(&path)]);
    assert_eq!(serial.trim().trim_start_matches("serial=").to_ascii_lowercase(), cert.serial_hex);
    let fingerprint = peer.run_ok(&["x509", "-noout", "-fingerprint", "-sha256", "-in", s(&path)]);
    let fingerprint = fingerprint.trim().rsplit('=').next().unwrap().replace(':', "").to_ascii_lowercase();
    assert_eq!(fingerprint, cert.fingerprint_sha256);

    // Without URLs or must-staple none of those extensions appear.
    let plain =
        leaf(&root, KeySpec::EcdsaP256, "plain.example.net", &["plain.example.net"], &PkiUrls::default(), false);
    let text = peer.text(&plain.pem);
    for absent in ["TLS Feature", "CRL Distribution", "Authority Information Access", "Key Encipherment"] {
        assert!(!text.contains(absent), "{absent:?} present in:\n{text}");
    }
}

#[test]
fn openssl_csrs_are_parsed_and_their_keys_certified() {
    let Some(peer) = Peer::new() else { return };
    let root = CaCert::create_root(&ca_spec("CSR Root", KeySpec::EcdsaP256, Some(0), 3650), now()).unwrap();
    let key = peer.path("csr.key");
    let req = peer.path("csr.pem");
    peer.run_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&key),
        "-subj",
        "/CN=app.example.com",
        "-addext",
        "subjectAltName=DNS:app.example.com,DNS:*.app.example.com,IP:192.0.2.10,email:ops@example.com",
        // A CA must never copy what a CSR asks for; this request asks to be a CA.
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-out",
        s(&req),
    ]);
    let csr = parse_csr(&std::fs::read(&req).unwrap()).unwrap();
    assert_eq!(csr.key, KeySpec::EcdsaP256);
    assert_eq!(csr.common_name.as_deref(), Some("app.example.com"));
    assert_eq!(csr.sans, sans(&["app.example.com", "*.app.example.com", "192.0.2.10", "ops@example.com"]));
    assert_eq!(csr.signature_algorithm, "ecdsa-with-SHA256");

    let urls = PkiUrls::default();
    let request = LeafRequest {
        public_key_der: &csr.public_key_der,
        common_name: csr.common_name.as_deref().unwrap_or(""),
        sans: &csr.sans,
        ekus: &[],
        must_staple: false,
        validity: Duration::days(7),
        urls: &urls,
    };
    let cert = issue_leaf(&root, &request, now()).unwrap();
    let (ok, text) = peer.verify(&root.cert_pem(), &[], &cert.pem);
    assert!(ok, "{text}");
    let text = peer.text(&cert.pem);
    assert!(text.contains("CA:FALSE") && !text.contains("CA:TRUE"), "{text}");

    let cert_path = peer.write("csr-cert.pem", &cert.pem);
    let cert_pub = peer.run_ok(&["x509", "-noout", "-pubkey", "-in", s(&cert_path)]);
    let key_pub = peer.run_ok(&["pkey", "-pubout", "-in", s(&key)]);
    assert_eq!(cert_pub, key_pub, "the certificate does not carry the CSR's key");
    let host = peer.run_ok(&["x509", "-noout", "-in", s(&cert_path), "-checkhost", "x.app.example.com"]);
    assert!(host.contains("does match"), "{host}");

    // Other key types openssl produces.
    let accepted = [(&["-newkey", "ed25519"][..], KeySpec::Ed25519), (&["-newkey", "rsa:2048"][..], KeySpec::Rsa2048)];
    for (newkey, want) in accepted {
        let csr = openssl_csr(&peer, newkey);
        assert_eq!(parse_csr(csr.as_bytes()).unwrap().key, want);
    }
    let refused: [&[&str]; 2] = [&["-newkey", "rsa:1024"], &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"]];
    for newkey in refused {
        let csr = openssl_csr(&peer, newkey);
        assert!(matches!(parse_csr(csr.as_bytes()), Err(PkiError::Policy(_))), "{newkey:?} accepted");
    }
    // The DER form of an openssl CSR parses too.
    let der = peer.path("csr.der");
    peer.run_ok(&["req", "-in", s(&req), "-outform", "DER", "-out", s(&der)]);
    assert_eq!(parse_csr(&std::fs::read(&der).unwrap()).unwrap().sans, csr.sans);
}

fn openssl_csr(peer: &Peer, newkey: &[&str]) -> String {
    let key = peer.path("other.key");
    let req = peer.path("other.csr");
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-nodes", "-keyout", s(&key), "-subj", "/CN=other.example.com", "-out", s(&req)]);
    peer.run_ok(&args);
    std::fs::read_to_string(&req).unwrap()
}

#[test]
fn name_constraints_are_enforced_by_us_and_by_openssl() {
    let Some(peer) = Peer::new() else { return };
    let root = CaCert::create_root(&ca_spec("NC Root", KeySpec::EcdsaP256, Some(1), 3650), now()).unwrap();
    let mut spec = ca_spec("NC Issuing CA", KeySpec::EcdsaP256, None, 365);
    spec.name_constraints = NameConstraintSet {
        permitted_dns: vec!["example.com".into()],
        excluded_dns: vec!["bad.example.com".into()],
        ..Default::default()
    };
    let inter = root.issue_child(&spec, now()).unwrap();
    let text = peer.text(&inter.cert_pem());
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");

    let good = leaf(&inter, KeySpec::EcdsaP256, "www.example.com", &["www.example.com"], &PkiUrls::default(), false);
    let (ok, out) = peer.verify(&root.cert_pem(), &[&inter.cert_pem()], &good.pem);
    assert!(ok, "{out}");

    for (name, openssl_error) in
        [("evil.com", "permitted subtree violation"), ("x.bad.example.com", "excluded subtree violation")]
    {
        let refused = issue_with_new_key(
            &inter,
            KeySpec::EcdsaP256,
            name,
            &sans(&[name]),
            &[],
            false,
            Duration::days(1),
            &PkiUrls::default(),
            now(),
        );
        assert!(matches!(refused, Err(PkiError::Constraint(_))), "{name}: {refused:?}");
        let forged = forged_leaf(&inter, name);
        let (ok, out) = peer.verify(&root.cert_pem(), &[&inter.cert_pem()], &forged);
        assert!(!ok && out.contains(openssl_error), "{name}: openssl said:\n{out}");
    }
}

#[test]
fn path_length_zero_is_enforced_by_us_and_by_openssl() {
    let Some(peer) = Peer::new() else { return };
    let root = CaCert::create_root(&ca_spec("PL Root", KeySpec::EcdsaP256, Some(1), 3650), now()).unwrap();
    let inter = root.issue_child(&ca_spec("PL Issuing CA", KeySpec::EcdsaP256, None, 365), now()).unwrap();
    assert_eq!(inter.info().path_len, Some(0));
    assert!(peer.text(&inter.cert_pem()).contains("CA:TRUE, pathlen:0"));
    let refused = inter.issue_child(&ca_spec("PL Sub CA", KeySpec::EcdsaP256, None, 30), now());
    assert!(matches!(refused, Err(PkiError::Constraint(_))), "{refused:?}");

    // A sub-CA forged with rcgen under the pathlen-0 CA is refused by openssl.
    let sub_key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "PL Forged Sub CA");
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from(9u64));
    params.not_before = now() - Duration::minutes(5);
    params.not_after = now() + Duration::days(1);
    let issuer = Issuer::from_ca_cert_der(&inter.cert_der().into(), inter.key().key_pair().unwrap()).unwrap();
    let sub_der = params.signed_by(&sub_key.key_pair().unwrap(), &issuer).unwrap().der().to_vec();
    let sub = CaCert::from_parts(sub_der, sub_key, vec![inter.cert_der().to_vec(), root.cert_der().to_vec()]).unwrap();
    assert_eq!(sub.remaining_path_len(), Some(0));
    let under_sub =
        leaf(&sub, KeySpec::EcdsaP256, "deep.example.com", &["deep.example.com"], &PkiUrls::default(), false);
    let (ok, out) = peer.verify(&root.cert_pem(), &[&inter.cert_pem(), &sub.cert_pem()], &under_sub.pem);
    assert!(!ok && out.contains("path length constraint exceeded"), "openssl said:\n{out}");
}

#[test]
fn validity_is_capped_by_the_issuing_ca() {
    let Some(peer) = Peer::new() else { return };
    let root = CaCert::create_root(&ca_spec("Short Root", KeySpec::EcdsaP256, Some(1), 30), now()).unwrap();
    let inter = root.issue_child(&ca_spec("Short Issuing CA", KeySpec::EcdsaP256, None, 365), now()).unwrap();
    let cert = issue_with_new_key(
        &inter,
        KeySpec::EcdsaP256,
        "long.example.com",
        &sans(&["long.example.com"]),
        &[],
        false,
        Duration::days(398),
        &PkiUrls::default(),
        now(),
    )
    .unwrap()
    .0;
    assert_eq!(inter.info().not_after, root.info().not_after);
    assert_eq!(cert.not_after, root.info().not_after);
    let end = |pem: &str| {
        let path = peer.write("end.pem", pem);
        peer.run_ok(&["x509", "-noout", "-enddate", "-in", s(&path)])
    };
    assert_eq!(end(&cert.pem), end(&root.cert_pem()));
    let (ok, out) = peer.verify(&root.cert_pem(), &[&inter.cert_pem()], &cert.pem);
    assert!(ok, "{out}");
}

#[test]
fn openssl_made_cas_with_sec1_and_pkcs1_keys_can_issue() {
    let Some(peer) = Peer::new() else { return };
    let cases: [(&[&str], &[&str], KeySpec); 2] = [
        (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], &["ec"], KeySpec::EcdsaP384),
        (&["-newkey", "rsa:2048"], &["rsa", "-traditional"], KeySpec::Rsa2048),
    ];
    for (newkey, convert, spec) in cases {
        let key = peer.path("ca.key");
        let cert = peer.path("ca.pem");
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&[
            "-nodes",
            "-keyout",
            s(&key),
            "-subj",
            "/O=Operator/CN=Operator Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            s(&cert),
        ]);
        peer.run_ok(&args);
        let legacy = peer.path("ca-legacy.key");
        let mut args = convert.to_vec();
        args.extend_from_slice(&["-in", s(&key), "-out", s(&legacy)]);
        peer.run_ok(&args);
        let legacy_pem = std::fs::read_to_string(&legacy).unwrap();
        let label = if spec == KeySpec::Rsa2048 { "RSA PRIVATE KEY" } else { "EC PRIVATE KEY" };
        assert!(legacy_pem.contains(label), "{legacy_pem}");

        let cert_pem = std::fs::read_to_string(&cert).unwrap();
        let ca = CaCert::from_pem(&cert_pem, &legacy_pem).unwrap();
        assert_eq!(ca.key().spec(), spec);
        assert_eq!(ca.info().path_len, Some(0));
        assert_eq!(ca.info().subject, "O=Operator, CN=Operator Root");
        // The stored key is PKCS#8 whatever it was loaded from.
        assert!(ca.key().to_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        let issued = leaf(&ca, KeySpec::EcdsaP256, "op.example.org", &["op.example.org"], &PkiUrls::default(), false);
        let (ok, out) = peer.verify(&cert_pem, &[], &issued.pem);
        assert!(ok, "{spec}: {out}");
        // The key openssl reads back from our PKCS#8 is the same key.
        let ours = peer.write("ours.key", &ca.key().to_pem());
        let a = peer.run_ok(&["pkey", "-pubout", "-in", s(&ours)]);
        let b = peer.run_ok(&["pkey", "-pubout", "-in", s(&key)]);
        assert_eq!(a, b);
    }
}
