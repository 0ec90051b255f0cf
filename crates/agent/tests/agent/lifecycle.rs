//! The agent's life outside deployments to a server: configuration refused at start, enrolment
//! with a one-time token and the state it keeps, a spent token refused, a restart on the kept
//! credential, SIGTERM, retirement (exit 4), filesystem discovery, and a deploy into a directory
//! that does not exist.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{Agent, Fixture, WAIT, current_version, expect, get, mode, sha256_hex};

#[test]
fn enrolment_restart_retirement_and_exit_statuses() {
    let fx = Fixture::new("life");

    // A bad value stops the agent at once with status 2, naming the variable.
    let mut bad = Agent::start("life-bad", &fx.token(), &[("CERTCTL_POLL_INTERVAL", "soon")]);
    let status = bad.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "stderr:\n{}", bad.stderr());
    assert!(bad.stderr().contains("CERTCTL_POLL_INTERVAL"), "stderr:\n{}", bad.stderr());

    // Enrolment: the credential is kept in a private state dir.
    let token = fx.token();
    let mut agent = Agent::start("life-host", &token, &[]);
    let id = agent.wait_enrolled();
    // The server records the enrolment before the agent has written its answer down.
    let saved = agent.state.join("agent.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !saved.exists() {
        assert!(Instant::now() < deadline, "no agent.json after enrolment; stderr:\n{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mode(&agent.state), 0o700, "the state dir");
    assert_eq!(mode(&saved), 0o600, "agent.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).expect("agent.json is JSON");
    assert_eq!(saved["agent_id"], id.as_str(), "{saved}");
    let credential = saved["credential"].as_str().expect("a credential").to_owned();
    assert!(credential.starts_with("cca_"), "the credential is saved");

    // The spent token enrols nobody: status 2.
    let mut second = Agent::start("life-second", &token, &[]);
    let status = second.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "stderr:\n{}", second.stderr());
    let names: Vec<Value> =
        get("/api/v1/agents?per_page=500")["data"].as_array().unwrap().iter().map(|a| a["name"].clone()).collect();
    assert!(!names.contains(&json!("life-second")), "{names:?}");
    for (who, log) in [("life-host", agent.full_stderr()), ("life-second", second.full_stderr())] {
        assert!(!log.contains(&token), "{who} logs the enrolment token");
        assert!(!log.contains(&credential), "{who} logs its credential");
    }

    // SIGTERM: a clean stop.
    agent.terminate();
    let status = agent.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", agent.stderr());

    // A restart runs on the kept credential and ignores the (spent) token.
    let seen = get(&format!("/api/v1/agents/{id}"))["last_heartbeat_at"].clone();
    agent.spawn(&token, &[]);
    let deadline = Instant::now() + WAIT;
    while get(&format!("/api/v1/agents/{id}"))["last_heartbeat_at"] == seen {
        assert!(agent.running(), "the restarted agent exited; stderr:\n{}", agent.stderr());
        assert!(Instant::now() < deadline, "no heartbeat after the restart; stderr:\n{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    let same_name = get("/api/v1/agents?per_page=500")["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == "life-host")
        .count();
    assert_eq!(same_name, 1, "the restart did not enrol again");
    assert!(!agent.full_stderr().contains(&credential), "the restarted agent logs its credential");

    // Retired: the server answers 410 and the agent stops with status 4.
    expect(200, reqwest::Method::DELETE, &format!("/api/v1/agents/{id}?force=true&reason=decommissioned"), None);
    let status = agent.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(4), "stderr:\n{}", agent.stderr());
}

#[test]
fn discovery_reports_certificates_found_on_disk() {
    let fx = Fixture::new("disc");
    let dir = tempfile::Builder::new().prefix("certctl-discovery-").tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    let mut planted = Vec::new();
    for (path, cn) in [("legacy.pem", "legacy.disc.test"), ("nested/old.crt", "old.disc.test")] {
        let c = rcgen::generate_simple_self_signed(vec![cn.to_owned()]).unwrap();
        let full = dir.path().join(path);
        std::fs::write(&full, c.cert.pem()).unwrap();
        planted.push((full.display().to_string(), cn, sha256_hex(c.cert.der())));
    }
    std::fs::write(dir.path().join("notes.txt"), "not a certificate\n").unwrap();
    let dirs = dir.path().display().to_string();
    let mut agent = Agent::start(
        "disc-host",
        &fx.token(),
        &[("CERTCTL_DISCOVERY_DIRS", dirs.as_str()), ("CERTCTL_DISCOVERY_INTERVAL", "2s")],
    );
    let id = agent.wait_enrolled();
    let deadline = Instant::now() + WAIT;
    let found = loop {
        let list = get(&format!("/api/v1/discovered-certificates?agent_id={id}&per_page=500"));
        let rows = list["data"].as_array().cloned().unwrap_or_default();
        if planted.iter().all(|(p, _, _)| rows.iter().any(|r| r["source_path"] == p.as_str())) {
            break rows;
        }
        assert!(agent.running(), "the agent exited; stderr:\n{}", agent.stderr());
        assert!(Instant::now() < deadline, "discovery reported {rows:?}; stderr:\n{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(300));
    };
    for (path, cn, fingerprint) in &planted {
        let row = found.iter().find(|r| r["source_path"] == path.as_str()).unwrap();
        assert_eq!((&row["sans"], &row["fingerprint_sha256"]), (&json!([cn]), &json!(fingerprint)), "{row}");
        assert_eq!(row["status"], "Unmanaged", "{row}");
    }
    assert_eq!(found.len(), planted.len(), "only the certificates are reported: {found:?}");
}

#[test]
fn deploy_into_a_missing_directory_fails_naming_it() {
    let fx = Fixture::new("files");
    let mut agent = Agent::start("files-host", &fx.token(), &[]);
    let id = agent.wait_enrolled();
    let dir = tempfile::Builder::new().prefix("certctl-files-").tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file_target = |name: &str, d: &std::path::Path| {
        let config = json!({"cert_path": d.join("cert.pem"), "key_path": d.join("key.pem")});
        fx.target(name, "File", &id, config)
    };
    let lost = file_target("files missing", &missing);
    let fresh = file_target("files out", &out);
    let cert = fx.certificate("files", "files.agent.test", &[&lost, &fresh]);

    let before = super::harness::deployment_jobs(&cert);
    let accepted = super::harness::post(202, &format!("/api/v1/certificates/{cert}/renew"), json!({}));
    agent.job_ends(accepted["job_id"].as_str().unwrap(), "Completed");
    let deadline = Instant::now() + WAIT;
    let jobs: Vec<Value> = loop {
        let new: Vec<String> =
            super::harness::deployment_jobs(&cert).into_iter().filter(|j| !before.contains(j)).collect();
        if new.len() == 2 {
            break new.iter().map(|j| agent.wait_job(j)).collect();
        }
        assert!(Instant::now() < deadline, "deployments: {new:?}; stderr:\n{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(200));
    };
    let job_of = |target: &str| jobs.iter().find(|j| j["target_id"] == target).cloned().unwrap();

    let failed = job_of(&lost);
    assert_eq!(failed["status"], "Failed", "{failed}\nstderr:\n{}", agent.stderr());
    let reason = failed["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains(&missing.display().to_string()), "the reason names the directory: {reason}");
    assert!(!missing.exists(), "nothing is created for a missing directory");

    // The other target, a fresh directory: new files get the default modes, nothing to verify.
    let done = job_of(&fresh);
    assert_eq!(done["status"], "Completed", "{done}\nstderr:\n{}", agent.stderr());
    assert_eq!(done["verification_status"], "skipped", "{done}");
    assert_eq!((mode(&out.join("key.pem")), mode(&out.join("cert.pem"))), (0o600, 0o644));
    let pem = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    let leaf = super::harness::first_cert_der(&pem);
    assert_eq!(sha256_hex(&leaf), current_version(&cert)["fingerprint_sha256"].as_str().unwrap());
}
