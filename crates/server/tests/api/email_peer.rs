//! A real SMTP server for the email tests: `tests/peers/smtp_sink.py` (aiosmtpd) in plain,
//! STARTTLS or implicit-TLS mode, with a certificate made here for `localhost` and AUTH checking
//! a fixed user and password. Each message it accepts lands in a directory as JSON.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

pub const SMTP_USER: &str = "certctl";
pub const SMTP_PASSWORD: &str = "sm7p-pa55word";

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_sink.py");

/// The Python that has aiosmtpd: Debian's, whatever else is first on `PATH`.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" }
}

/// Whether the sink can run here; without it the email tests skip locally and fail under CI.
pub fn available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let reason = "python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "email peer tests cannot run under CI: {reason}");
        eprintln!("skipping the SMTP peer test: {reason}");
    }
    ok
}

pub struct SmtpSink {
    pub port: u16,
    /// PEM of the sink's self-signed certificate (the channel's `ca_path`).
    pub ca_path: PathBuf,
    child: Child,
    _stdin: ChildStdin,
    out: TempDir,
    _certs: TempDir,
}

impl SmtpSink {
    /// Starts the sink in `mode` (`plain`, `starttls` or `tls`) requiring [`SMTP_USER`] and
    /// [`SMTP_PASSWORD`].
    pub fn start(mode: &str) -> SmtpSink {
        let certs = tempfile::tempdir().unwrap();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let ca_path = certs.path().join("cert.pem");
        let key_path = certs.path().join("key.pem");
        std::fs::write(&ca_path, cert.pem()).unwrap();
        std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(SCRIPT)
            .arg("--dir")
            .arg(out.path())
            .args(["--mode", mode, "--user", SMTP_USER, "--password", SMTP_PASSWORD])
            .arg("--cert")
            .arg(&ca_path)
            .arg("--key")
            .arg(&key_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok()).expect("sink did not start");
        SmtpSink { port, ca_path, child, _stdin: stdin, out, _certs: certs }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.out.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap());
            }
        }
        out
    }

    /// Waits (briefly) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..50 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.messages()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
