//! The agent against nginx, haproxy and apache2: the first issuance with a key made on the host,
//! deployed and served; a renewal that changes what is served; a redeploy of identical content
//! that touches nothing; a deploy the server's own check refuses, which leaves the old
//! certificate served; and the recovery once the configuration is fixed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::harness::{Agent, Fixture, current_version, first_cert_der, mode, sha256_hex};
use super::peers::{Kind, Peer};
use super::tls::{served_leaf, wait_served};

#[test]
fn nginx_deploys_renews_skips_and_refuses() {
    deploy_cycle(Kind::Nginx);
}

#[test]
fn haproxy_deploys_renews_skips_and_refuses() {
    deploy_cycle(Kind::Haproxy);
}

#[test]
fn apache2_deploys_renews_skips_and_refuses() {
    deploy_cycle(Kind::Apache);
}

fn deploy_cycle(kind: Kind) {
    let tag = kind.tag();
    let cn = format!("{tag}.agent.test");
    let Some(peer) = Peer::start(kind, &cn) else { return };
    let fx = Fixture::new(tag);
    let mut agent = Agent::start(&format!("{tag}-host"), &fx.token(), &[]);
    let agent_id = agent.wait_enrolled();
    let target = fx.target(&format!("{tag} on {tag}-host"), kind.target_type(), &agent_id, peer.target_config());
    let cert = fx.certificate(tag, &cn, &[&target]);
    let why = || format!("certctl-agent stderr:\n{}{}", agent.stderr(), peer.log());

    // 1. The agent makes the key, the local CA issues, the agent deploys, reloads and verifies.
    let job = agent.renew_and_deploy(&cert);
    assert_eq!(job["status"], "Completed", "{job}\n{}", why());
    let first = fingerprint_of(&current_version(&cert));
    assert_ne!(first, peer.initial_fingerprint);
    assert_eq!(
        (&job["verification_status"], job["verification_fingerprint"].as_str().map(str::to_ascii_lowercase)),
        (&Value::from("success"), Some(first.clone())),
        "{job}"
    );
    wait_served(peer.port, &cn, &first, &why);
    // During a graceful reload an old worker may still take a new connection with the previous
    // certificate; the leaf checked is the one served with the issued fingerprint.
    let leaf = (0..50)
        .find_map(|_| match served_leaf(peer.port, &cn) {
            Ok(l) if sha256_hex(&l) == first => Some(l),
            _ => {
                std::thread::sleep(std::time::Duration::from_millis(100));
                None
            }
        })
        .unwrap_or_else(|| panic!("the issued leaf is served\n{}", why()));
    assert_issued_by(&leaf, &fx.ca_pem());
    assert_eq!(live_leaf(&peer), first, "the live certificate file holds the issued leaf");
    assert_eq!(mode(&peer.key_file()), 0o600, "the deployed key is private");
    let keys = state_keys(&agent, &cert);
    assert_eq!(keys.len(), 1, "one key for one deployed certificate: {keys:?}");
    assert_state_private(&agent, &keys);
    for file in peer.live_files() {
        assert!(!backups(&file).is_empty(), "the initial {} is backed up", file.display());
    }
    let backup = peer.dir().join(backups(&peer.cert_file()).pop().unwrap());
    assert_eq!(leaf_in(&backup), peer.initial_fingerprint, "the backup holds the initial certificate");

    // 2. A renewal: a new key, a new certificate, served after the reload.
    let job = agent.renew_and_deploy(&cert);
    assert_eq!(job["status"], "Completed", "{job}\n{}", why());
    let second = fingerprint_of(&current_version(&cert));
    assert_ne!(second, first);
    assert_eq!(job["verification_status"], "success", "{job}");
    wait_served(peer.port, &cn, &second, &why);
    let renewed_keys = state_keys(&agent, &cert);
    assert_eq!(renewed_keys.len(), 1, "the replaced key is removed after the deploy: {renewed_keys:?}");
    assert_ne!(renewed_keys, keys, "the renewal used a new key");
    assert_state_private(&agent, &renewed_keys);

    // 4. The same content again: nothing is written, backed up or reloaded.
    let before: Vec<_> = peer.live_files().iter().map(|f| (identity(f), backups(f))).collect();
    let job = agent.deploy(&cert);
    assert_eq!(job["status"], "Completed", "{job}\n{}", why());
    let after: Vec<_> = peer.live_files().iter().map(|f| (identity(f), backups(f))).collect();
    assert_eq!(after, before, "an identical deploy keeps inode, mtime and backups");
    assert_eq!(job["verification_status"], "success", "a skipped deploy is still verified: {job}");
    wait_served(peer.port, &cn, &second, &why);

    // 3. The server's check fails: the job fails with what the check said; nothing changes.
    let says = peer.break_config();
    let job = agent.renew_and_deploy(&cert);
    assert_eq!(job["status"], "Failed", "{job}\n{}", why());
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(says), "the reason carries the check's output ({says}): {error}");
    let third = fingerprint_of(&current_version(&cert));
    assert_ne!(third, second);
    assert_eq!(live_leaf(&peer), second, "the live files are untouched");
    assert_eq!(after, peer.live_files().iter().map(|f| (identity(f), backups(f))).collect::<Vec<_>>());
    wait_served(peer.port, &cn, &second, &why);
    assert_eq!(state_keys(&agent, &cert).len(), 2, "the key in use stays beside the pending one");
    for leftover in std::fs::read_dir(peer.dir()).unwrap().flatten() {
        let name = leftover.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".certctl-tmp."), "a staged file is left behind: {name}");
    }

    // Fixed: the pending certificate deploys with the key the agent kept for it.
    peer.restore_config();
    let job = agent.deploy(&cert);
    assert_eq!(job["status"], "Completed", "{job}\n{}", why());
    wait_served(peer.port, &cn, &third, &why);
    assert_eq!(state_keys(&agent, &cert).len(), 1, "the superseded key is removed");
    for file in peer.live_files() {
        let kept = backups(&file).len();
        assert!(kept <= peer.backup_retention(), "{} keeps {kept} backups", file.display());
    }

    // A reload that does not take: the verification sees the old certificate, the backups go
    // back into place, and the job fails saying so.
    let mut config = peer.target_config();
    config["reload_command"] = Value::from("/bin/true");
    config["verify_attempts"] = Value::from(2);
    super::harness::expect(
        200,
        reqwest::Method::PUT,
        &format!("/api/v1/targets/{target}"),
        Some(&serde_json::json!({"config": config})),
    );
    let job = agent.renew_and_deploy(&cert);
    assert_eq!(job["status"], "Failed", "{job}\n{}", why());
    assert!(job["last_error"].as_str().is_some_and(|e| !e.is_empty()), "the job says why: {job}");
    let fourth = fingerprint_of(&current_version(&cert));
    assert_ne!(fourth, third);
    assert_eq!(live_leaf(&peer), third, "the previous files are restored");
    wait_served(peer.port, &cn, &third, &why);
    let log = agent.full_stderr();
    assert!(!log.contains("PRIVATE KEY"), "the agent logs key material");
    let credential = std::fs::read_to_string(agent.state.join("agent.json")).unwrap();
    let credential: Value = serde_json::from_str(&credential).unwrap();
    assert!(!log.contains(credential["credential"].as_str().unwrap()), "the agent logs its credential");
    let log = why();
    assert!(agent.running(), "the agent keeps running\n{log}");
}

/// The version's leaf SHA-256, lower-case hex.
fn fingerprint_of(version: &Value) -> String {
    version["fingerprint_sha256"].as_str().expect("a version fingerprint").to_ascii_lowercase()
}

/// SHA-256 of the first certificate in the peer's live certificate file.
fn live_leaf(peer: &Peer) -> String {
    leaf_in(&peer.cert_file())
}

/// SHA-256 of the first certificate in a PEM file.
fn leaf_in(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let der = x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .flatten()
        .find(|p| p.label == "CERTIFICATE")
        .unwrap_or_else(|| panic!("no certificate in {}", path.display()))
        .contents;
    sha256_hex(&der)
}

/// Checks the leaf's signature against the first certificate of the issuer's CA chain.
fn assert_issued_by(leaf_der: &[u8], ca_pem: &str) {
    let ca_der = first_cert_der(ca_pem);
    let (_, ca) = X509Certificate::from_der(&ca_der).expect("the CA parses");
    let (_, leaf) = X509Certificate::from_der(leaf_der).expect("the served leaf parses");
    leaf.verify_signature(Some(ca.public_key())).expect("the served leaf is signed by the local CA");
}

/// The key files the agent keeps for `cert`.
fn state_keys(agent: &Agent, cert: &str) -> Vec<PathBuf> {
    let dir = agent.state.join("keys").join(cert);
    let mut keys: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .collect();
    keys.sort();
    keys
}

fn assert_state_private(agent: &Agent, keys: &[PathBuf]) {
    assert_eq!(mode(&agent.state), 0o700, "the state dir");
    for key in keys {
        assert_eq!(mode(key), 0o600, "{}", key.display());
        assert_eq!(mode(key.parent().unwrap()), 0o700, "{}", key.parent().unwrap().display());
        let pem = std::fs::read_to_string(key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM: {}", key.display());
    }
}

/// Inode and modification time.
fn identity(path: &Path) -> (u64, i64, i64) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.ino(), m.mtime(), m.mtime_nsec())
}

/// The backups of `path`, sorted.
fn backups(path: &Path) -> Vec<String> {
    let prefix = format!("{}.certctl-bak.", path.file_name().unwrap().to_string_lossy());
    let mut found: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    found.sort();
    found
}
