use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use certctl_api::{TargetConfig, TargetType};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::deploy::{DeployFailure, Material, Outcome, deploy};

/// A self-signed leaf for `cn` with a stand-in intermediate, and the leaf's key.
fn material(cn: &str) -> (Material, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap().self_signed(&key).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["ca.invalid".to_owned()]).unwrap().self_signed(&ca_key).unwrap();
    let chain = leaf.pem() + &ca.pem();
    (Material::new(&chain, Zeroizing::new(key.serialize_pem())).unwrap(), key)
}

fn config(t: TargetType, v: Value) -> TargetConfig {
    TargetConfig::parse(t, v.as_object().unwrap()).unwrap().unwrap()
}

fn files(dir: &Path, extra: Value) -> TargetConfig {
    let mut v = json!({"cert_path": dir.join("cert.pem"), "key_path": dir.join("key.pem"), "chain_path": dir.join("chain.pem")});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    config(TargetType::File, v)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn writes_then_skips_identical_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (m, _) = material("a.example");
    let cfg = files(dir, json!({}));
    let outcome = deploy(&cfg, &m).await.unwrap();
    assert!(matches!(outcome, Outcome::Deployed { .. }));
    assert_eq!(outcome.verification().status, "skipped");
    assert_eq!(fs::read_to_string(dir.join("cert.pem")).unwrap(), m.leaf_pem());
    assert_eq!(fs::read_to_string(dir.join("chain.pem")).unwrap(), m.chain_pem());
    assert_eq!(fs::read_to_string(dir.join("key.pem")).unwrap(), *m.key_pem);
    assert_eq!((mode(&dir.join("cert.pem")), mode(&dir.join("key.pem"))), (0o644, 0o600));
    assert_eq!(listing(dir), ["cert.pem", "chain.pem", "key.pem"], "no temp files or backups of new files");

    let inode = fs::metadata(dir.join("cert.pem")).unwrap().ino();
    let outcome = deploy(&cfg, &m).await.unwrap();
    assert!(matches!(outcome, Outcome::Skipped { .. }));
    assert_eq!(fs::metadata(dir.join("cert.pem")).unwrap().ino(), inode, "a skipped file keeps its inode");
    assert_eq!(listing(dir).len(), 3, "a skip makes no backup");
}

#[tokio::test]
async fn backups_keep_the_last_n() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = files(dir, json!({"backup_retention": 2}));
    let mut last = None;
    for i in 0..5 {
        let (m, _) = material(&format!("n{i}.example"));
        deploy(&cfg, &m).await.unwrap();
        last = Some(m);
    }
    let names = listing(dir);
    let backups = |file: &str| names.iter().filter(|n| n.starts_with(&format!("{file}.certctl-bak."))).count();
    assert_eq!((backups("cert.pem"), backups("key.pem"), backups("chain.pem")), (2, 2, 2), "{names:?}");
    assert_eq!(fs::read_to_string(dir.join("cert.pem")).unwrap(), last.unwrap().leaf_pem());
    let key_backup = names.iter().find(|n| n.starts_with("key.pem.certctl-bak.")).unwrap();
    assert_eq!(mode(&dir.join(key_backup)), 0o600, "a key's backup stays private");
}

#[tokio::test]
async fn validate_sees_the_staged_files_and_its_failure_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    fs::create_dir(&dir).unwrap();
    let (old, _) = material("old.example");
    deploy(&files(&dir, json!({})), &old).await.unwrap();
    let before = listing(&dir);
    let inode = fs::metadata(dir.join("key.pem")).unwrap().ino();

    let ok = script(
        tmp.path(),
        "ok.sh",
        r#"grep -q "BEGIN CERTIFICATE" "$CERTCTL_STAGED_CERT_PATH" && grep -q "PRIVATE KEY" "$CERTCTL_STAGED_KEY_PATH""#,
    );
    let bad = script(tmp.path(), "bad.sh", "echo 'config test failed: no ssl_certificate' >&2; exit 3");
    let (new, _) = material("new.example");
    let e = deploy(&files(&dir, json!({"validate_command": bad})), &new).await.unwrap_err();
    assert!(e.reason.starts_with("validation failed, nothing was changed"), "{}", e.reason);
    assert!(e.reason.contains("exited with status 3: config test failed: no ssl_certificate"), "{}", e.reason);
    assert_eq!(listing(&dir), before, "no temp files or backups are left");
    assert_eq!(fs::read_to_string(dir.join("cert.pem")).unwrap(), old.leaf_pem());
    assert_eq!(fs::metadata(dir.join("key.pem")).unwrap().ino(), inode);

    deploy(&files(&dir, json!({"validate_command": ok})), &new).await.unwrap();
    assert_eq!(fs::read_to_string(dir.join("cert.pem")).unwrap(), new.leaf_pem());
}

#[tokio::test]
async fn reload_failure_restores_the_previous_files_and_reloads_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    fs::create_dir(&dir).unwrap();
    let (old, _) = material("old.example");
    deploy(&files(&dir, json!({})), &old).await.unwrap();
    let failing =
        script(tmp.path(), "fail.sh", &format!("echo reload >> {}; exit 1", tmp.path().join("count").display()));
    let (new, _) = material("new.example");
    let e = deploy(&files(&dir, json!({"reload_command": failing})), &new).await.unwrap_err();
    assert!(e.reason.starts_with("reload failed: "), "{}", e.reason);
    assert!(e.reason.contains("the previous files were restored"), "{}", e.reason);
    assert_eq!(fs::read_to_string(dir.join("cert.pem")).unwrap(), old.leaf_pem());
    assert_eq!(fs::read_to_string(dir.join("key.pem")).unwrap(), *old.key_pem);
    assert_eq!(mode(&dir.join("key.pem")), 0o600);
    let reloads = fs::read_to_string(tmp.path().join("count")).unwrap();
    assert_eq!(reloads.lines().count(), 2, "the reload runs again after the restore");
}

#[tokio::test]
async fn a_missing_directory_fails_naming_it_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let (m, _) = material("a.example");
    let cfg = config(
        TargetType::Nginx,
        json!({"cert_path": tmp.path().join("cert.pem"), "key_path": missing.join("key.pem")}),
    );
    let e = deploy(&cfg, &m).await.unwrap_err();
    assert!(e.reason.contains(missing.to_str().unwrap()), "{}", e.reason);
    assert!(listing(tmp.path()).is_empty(), "nothing was written");
}

#[tokio::test]
async fn modes_and_owners_come_from_config_then_the_existing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("cert.pem"), "old").unwrap();
    fs::set_permissions(dir.join("cert.pem"), fs::Permissions::from_mode(0o640)).unwrap();
    let root = fs::metadata(dir).unwrap().uid() == 0;
    if root {
        std::os::unix::fs::chown(dir.join("cert.pem"), Some(1), Some(1)).unwrap();
    }
    let (m, _) = material("a.example");
    deploy(&files(dir, json!({"key_mode": "0640", "chain_mode": "0604"})), &m).await.unwrap();
    assert_eq!(mode(&dir.join("cert.pem")), 0o640, "the existing file's mode is kept");
    assert_eq!(mode(&dir.join("key.pem")), 0o640, "an explicit mode wins");
    assert_eq!(mode(&dir.join("chain.pem")), 0o604);
    if root {
        let meta = fs::metadata(dir.join("cert.pem")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1, 1), "the existing file's owner is kept");
        let (m2, _) = material("b.example");
        deploy(&files(dir, json!({"cert_owner": "root", "key_owner": "2", "key_group": "2"})), &m2).await.unwrap();
        assert_eq!(fs::metadata(dir.join("cert.pem")).unwrap().uid(), 0, "an explicit owner wins");
        let key = fs::metadata(dir.join("key.pem")).unwrap();
        assert_eq!((key.uid(), key.gid()), (2, 2));
    } else {
        eprintln!("not root: owner preservation is not checked");
    }
    let e =
        deploy(&files(dir, json!({"key_owner": "no-such-user-certctl"})), &material("c.example").0).await.unwrap_err();
    assert!(e.reason.contains("key_owner: unknown user"), "{}", e.reason);
    assert!(!listing(dir).iter().any(|n| n.contains("certctl-tmp")), "no temp file is left");
}

#[tokio::test]
async fn haproxy_writes_one_private_pem() {
    let tmp = tempfile::tempdir().unwrap();
    let pem = tmp.path().join("site.pem");
    let (m, _) = material("a.example");
    let cfg = config(TargetType::HaProxy, json!({"pem_path": pem, "reload_command": "true", "verify": false}));
    deploy(&cfg, &m).await.unwrap();
    assert_eq!(fs::read_to_string(&pem).unwrap(), m.fullchain_pem() + &m.key_pem);
    assert_eq!(mode(&pem), 0o600);
}

#[tokio::test]
async fn keystores_round_trip_and_skip_when_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.p12");
    let (m, _) = material("a.example");
    let cfg = config(TargetType::JavaKeystore, json!({"keystore_path": path, "keystore_password": "changeit"}));
    assert!(matches!(deploy(&cfg, &m).await.unwrap(), Outcome::Deployed { .. }));
    let store = p12_keystore::KeyStore::from_pkcs12(
        &fs::read(&path).unwrap(),
        "changeit",
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .unwrap();
    let Some(p12_keystore::KeyStoreEntry::PrivateKeyChain(chain)) = store.entry("certctl") else { panic!("no alias") };
    assert_eq!(chain.certs()[0].as_der(), m.leaf_der.as_slice());
    assert_eq!(mode(&path), 0o600);
    assert!(matches!(deploy(&cfg, &m).await.unwrap(), Outcome::Skipped { .. }));
}

/// OpenSSL, an independent reader, opens the keystore with its password and finds the deployed
/// leaf and the key that belongs to it.
#[tokio::test]
async fn keystores_open_in_openssl() {
    use rcgen::PublicKeyData;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.p12");
    let (m, key) = material("a.example");
    let cfg = config(TargetType::JavaKeystore, json!({"keystore_path": path, "keystore_password": "changeit"}));
    deploy(&cfg, &m).await.unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .arg("pkcs12")
            .arg("-in")
            .arg(&path)
            .args(["-passin", "pass:changeit"])
            .args(args)
            .output()
            .expect("openssl runs (Debian: apt-get install openssl)");
        assert!(out.status.success(), "openssl pkcs12 {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let leaf = openssl(&["-nokeys", "-clcerts"]);
    assert!(leaf.contains(m.leaf_pem().trim()), "the keystore's leaf is the deployed one:\n{leaf}");
    let keys = openssl(&["-nocerts", "-nodes"]);
    let found = rcgen::KeyPair::from_pem(&keys[keys.find("-----BEGIN").expect("a key in the keystore")..]).unwrap();
    assert_eq!(found.subject_public_key_info(), key.subject_public_key_info(), "the keystore's key is the leaf's");
}

#[tokio::test]
async fn envoy_writes_an_sds_file_naming_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, _) = material("a.example");
    let cfg = config(TargetType::Envoy, json!({"cert_dir": tmp.path(), "sds_config": true}));
    deploy(&cfg, &m).await.unwrap();
    let sds = fs::read_to_string(tmp.path().join("sds.yaml")).unwrap();
    assert!(sds.contains(&format!("\"{}\"", tmp.path().join("cert.pem").display())), "{sds}");
    assert_eq!(fs::read_to_string(tmp.path().join("cert.pem")).unwrap(), m.fullchain_pem());
}

/// Serves `cert` + `key` over TLS on a loopback port; returns the port.
async fn tls_server(m: &Material, key: &rcgen::KeyPair) -> u16 {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(m.leaf_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn verification_success_and_rollback_on_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (served, served_key) = material("served.example");
    let port = tls_server(&served, &served_key).await;
    let endpoint = format!("127.0.0.1:{port}");

    let extra = json!({"verify_endpoint": endpoint, "verify_attempts": 2, "verify_backoff_ms": 10});
    let outcome = deploy(&files(dir, extra.clone()), &served).await.unwrap();
    let v = outcome.verification();
    assert_eq!((v.status.as_str(), v.fingerprint.as_deref()), ("success", Some(served.fingerprint.as_str())));

    let (other, _) = material("other.example");
    let e: DeployFailure = deploy(&files(dir, extra), &other).await.unwrap_err();
    assert!(e.reason.starts_with("verification failed: "), "{}", e.reason);
    assert!(e.reason.contains("the previous files were restored"), "{}", e.reason);
    let v = e.verification.unwrap();
    assert_eq!((v.status.as_str(), v.fingerprint.as_deref()), ("failed", Some(served.fingerprint.as_str())));
    assert_eq!(fs::read_to_string(dir.join("cert.pem")).unwrap(), served.leaf_pem(), "rolled back");
}

/// Answers one HTTP request with `status` and hands back the request's head and body.
async fn one_http_exchange(status: u16) -> (u16, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
        tcp.write_all(reply.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (port, handle)
}

#[tokio::test]
async fn caddy_api_mode_posts_the_certificate_and_key() {
    let (m, _) = material("a.example");
    let (port, request) = one_http_exchange(200).await;
    let cfg = config(TargetType::Caddy, json!({"mode": "api", "admin_api": format!("http://127.0.0.1:{port}/")}));
    let outcome = deploy(&cfg, &m).await.unwrap();
    assert!(matches!(outcome, Outcome::Deployed { .. }));
    let request = request.await.unwrap();
    assert!(request.starts_with("POST /config/apps/tls/certificates/load HTTP/1.1"), "{request}");
    let body: Value = serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(
        (body["cert"].as_str().unwrap(), body["key"].as_str().unwrap()),
        (m.fullchain_pem().as_str(), m.key_pem.as_str())
    );

    let (port, _request) = one_http_exchange(500).await;
    let cfg = config(TargetType::Caddy, json!({"mode": "api", "admin_api": format!("http://127.0.0.1:{port}")}));
    let e = deploy(&cfg, &m).await.unwrap_err();
    assert!(e.reason.starts_with("reload failed: POST http://127.0.0.1:") && e.reason.contains("500"), "{}", e.reason);
}

#[tokio::test]
async fn traefik_and_caddy_files_hold_the_full_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, _) = material("a.example");
    let cfg =
        config(TargetType::Traefik, json!({"cert_dir": tmp.path(), "cert_file": "site.crt", "key_file": "site.key"}));
    deploy(&cfg, &m).await.unwrap();
    assert_eq!(fs::read_to_string(tmp.path().join("site.crt")).unwrap(), m.fullchain_pem());
    assert_eq!(mode(&tmp.path().join("site.key")), 0o600);
    let cfg = config(TargetType::Caddy, json!({"cert_dir": tmp.path()}));
    deploy(&cfg, &m).await.unwrap();
    assert_eq!(fs::read_to_string(tmp.path().join("key.pem")).unwrap(), *m.key_pem);
}
