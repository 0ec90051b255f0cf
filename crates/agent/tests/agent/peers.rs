//! The real TLS servers the agent deploys to: nginx, haproxy (master-worker) and apache2, each
//! started on a loopback high port with a configuration in a temporary directory and an initial
//! self-signed certificate, and stopped on drop. Every command they need is an argv without
//! shell syntax, as the agent runs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{free_port, missing_peer, sha256_hex, signal};
use super::tls::served_fingerprint;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Haproxy,
    Apache,
}

impl Kind {
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
            Kind::Apache => "apache2",
        }
    }

    /// The target type certctl knows the server as.
    pub fn target_type(self) -> &'static str {
        match self {
            Kind::Nginx => "NGINX",
            Kind::Haproxy => "HAProxy",
            Kind::Apache => "Apache",
        }
    }
}

/// A running server.
pub struct Peer {
    pub kind: Kind,
    pub port: u16,
    /// The name the server answers for, and the certificate's common name.
    pub cn: String,
    /// SHA-256 of the initial self-signed certificate.
    pub initial_fingerprint: String,
    dir: tempfile::TempDir,
}

/// A line no server accepts, and what its configuration check says about it.
const BROKEN_NGINX: (&str, &str) = ("certctl_test_broken on;", "unknown directive");
const BROKEN_HAPROXY: (&str, &str) = ("    certctl-test-broken", "unknown keyword");
const BROKEN_APACHE: (&str, &str) = ("CertctlTestBroken on", "Invalid command");

impl Peer {
    /// Starts `kind` with a self-signed certificate for `cn`; `None` when the binary is missing
    /// outside CI (the test then skips).
    pub fn start(kind: Kind, cn: &str) -> Option<Peer> {
        let (program, version) = match kind {
            Kind::Nginx => ("nginx", "-v"),
            Kind::Haproxy => ("haproxy", "-v"),
            Kind::Apache => ("apache2", "-v"),
        };
        if missing_peer(program, version) {
            return None;
        }
        let dir = tempfile::Builder::new().prefix(&format!("certctl-{}-", kind.tag())).tempdir().expect("a temp dir");
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![cn.to_owned()]).expect("a self-signed certificate");
        let peer =
            Peer { kind, port: free_port(), cn: cn.to_owned(), initial_fingerprint: sha256_hex(cert.der()), dir };
        let (cert_pem, key_pem) = (cert.pem(), signing_key.serialize_pem());
        match kind {
            Kind::Nginx => {
                write(&peer.path("cert.pem"), &cert_pem, 0o644);
                write(&peer.path("key.pem"), &key_pem, 0o600);
            }
            Kind::Haproxy => write(&peer.path("site.pem"), &format!("{cert_pem}{key_pem}"), 0o600),
            // A key readable by a group, as some hosts have it; the target asks for 0600.
            Kind::Apache => {
                write(&peer.path("cert.pem"), &cert_pem, 0o644);
                write(&peer.path("key.pem"), &key_pem, 0o640);
            }
        }
        peer.write_config(None);
        let start: Vec<String> = match kind {
            Kind::Nginx => peer.nginx_argv(&[]),
            Kind::Haproxy => {
                argv(&format!("haproxy -W -D -p {} -f {}", peer.path("haproxy.pid").display(), peer.conf().display()))
            }
            Kind::Apache => argv(&format!("apache2 -f {} -k start", peer.conf().display())),
        };
        let out = Command::new(&start[0]).args(&start[1..]).output().expect("the server starts");
        assert!(out.status.success(), "{start:?} failed: {}{}", String::from_utf8_lossy(&out.stderr), peer.log());
        // A port taken between the probe and the start shows up here, as a refused connection.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match served_fingerprint(peer.port, cn) {
                Ok(fp) if fp == peer.initial_fingerprint => break,
                seen => assert!(
                    Instant::now() < deadline,
                    "{} on port {} did not serve its initial certificate: {seen:?}\n{}",
                    kind.tag(),
                    peer.port,
                    peer.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(peer)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    fn conf(&self) -> PathBuf {
        self.path(match self.kind {
            Kind::Nginx => "nginx.conf",
            Kind::Haproxy => "haproxy.cfg",
            Kind::Apache => "apache2.conf",
        })
    }

    fn nginx_argv(&self, extra: &[&str]) -> Vec<String> {
        let d = self.dir().display();
        let mut v = argv(&format!("nginx -p {d}/ -c {d}/nginx.conf -e {d}/error.log"));
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    }

    /// The files the agent writes: the certificate (leaf first) and the private key, which are
    /// one file for haproxy.
    pub fn cert_file(&self) -> PathBuf {
        self.path(if self.kind == Kind::Haproxy { "site.pem" } else { "cert.pem" })
    }

    pub fn key_file(&self) -> PathBuf {
        self.path(if self.kind == Kind::Haproxy { "site.pem" } else { "key.pem" })
    }

    pub fn live_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.cert_file()];
        if self.kind != Kind::Haproxy {
            files.push(self.key_file());
        }
        files
    }

    /// How many backups the target keeps per file.
    pub fn backup_retention(&self) -> usize {
        if self.kind == Kind::Haproxy { 2 } else { 3 }
    }

    /// The target configuration: the server's own files and commands, verification against its
    /// port.
    pub fn target_config(&self) -> Value {
        let d = self.dir().display();
        let conf = self.conf();
        let conf = conf.display();
        let mut c = json!({
            "verify_endpoint": format!("127.0.0.1:{}", self.port),
            "verify_attempts": 10,
            "verify_backoff_ms": 200,
            "command_timeout_seconds": 20,
        });
        let extra = match self.kind {
            Kind::Nginx => json!({
                "cert_path": format!("{d}/cert.pem"),
                "key_path": format!("{d}/key.pem"),
                "validate_command": self.nginx_argv(&["-t"]).join(" "),
                "reload_command": self.nginx_argv(&["-s", "reload"]).join(" "),
            }),
            Kind::Haproxy => json!({
                "pem_path": format!("{d}/site.pem"),
                "validate_command": format!("haproxy -c -f {conf}"),
                "reload_command": format!("/bin/kill -USR2 {}", self.pid()),
                "backup_retention": 2,
            }),
            Kind::Apache => json!({
                "cert_path": format!("{d}/cert.pem"),
                "key_path": format!("{d}/key.pem"),
                "key_mode": "0600",
                "validate_command": format!("apache2 -f {conf} -t"),
                "reload_command": format!("apache2 -f {conf} -k graceful"),
            }),
        };
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    }

    /// Makes the configuration fail the server's check; returns what the check says about it.
    pub fn break_config(&self) -> &'static str {
        let (line, says) = self.broken();
        self.write_config(Some(line));
        says
    }

    pub fn restore_config(&self) {
        self.write_config(None);
    }

    fn broken(&self) -> (&'static str, &'static str) {
        match self.kind {
            Kind::Nginx => BROKEN_NGINX,
            Kind::Haproxy => BROKEN_HAPROXY,
            Kind::Apache => BROKEN_APACHE,
        }
    }

    /// The master process, from the pid file.
    pub fn pid(&self) -> u32 {
        let file = self.path(match self.kind {
            Kind::Nginx => "nginx.pid",
            Kind::Haproxy => "haproxy.pid",
            Kind::Apache => "apache2.pid",
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse().ok()) {
                return pid;
            }
            assert!(Instant::now() < deadline, "no pid in {}", file.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's error log, for failure messages.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.path("error.log")).unwrap_or_default();
        format!("\n{} error log:\n{log}", self.kind.tag())
    }

    fn write_config(&self, broken: Option<&str>) {
        let d = self.dir().display();
        let port = self.port;
        let cn = &self.cn;
        let broken = broken.unwrap_or("");
        let text = match self.kind {
            Kind::Nginx => format!(
                "daemon on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  {broken}\n\
                 client_body_temp_path {d}/tmp-body;\n  proxy_temp_path {d}/tmp-proxy;\n\
                 fastcgi_temp_path {d}/tmp-fastcgi;\n  uwsgi_temp_path {d}/tmp-uwsgi;\n  scgi_temp_path {d}/tmp-scgi;\n\
                 server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name {cn};\n\
                 ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n\
                 location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n"
            ),
            Kind::Haproxy => format!(
                "global\n    master-worker\n    log stderr format short local0 err\n\
                 defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\
                 frontend tls\n    bind 127.0.0.1:{port} ssl crt {d}/site.pem\n{broken}\n\
                 \x20   http-request return status 200 content-type text/plain string ok\n"
            ),
            Kind::Apache => format!(
                "ServerRoot {d}\nDefaultRuntimeDir {d}\nPidFile {d}/apache2.pid\nErrorLog {d}/error.log\n\
                 LogLevel warn\nMutex file:{d} default\n\
                 LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
                 LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
                 LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so\n\
                 LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n\
                 User nobody\nGroup nogroup\nServerName {cn}\nListen 127.0.0.1:{port}\n\
                 StartServers 1\nServerLimit 4\nThreadsPerChild 4\nMinSpareThreads 1\nMaxSpareThreads 8\n\
                 MaxRequestWorkers 8\n{broken}\n\
                 SSLSessionCache shmcb:{d}/ssl_scache(51200)\n\
                 <VirtualHost 127.0.0.1:{port}>\n  SSLEngine on\n  SSLCertificateFile {d}/cert.pem\n\
                 \x20 SSLCertificateKeyFile {d}/key.pem\n</VirtualHost>\n"
            ),
        };
        std::fs::write(self.conf(), text).expect("the server's configuration is written");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let file = self.path(match self.kind {
            Kind::Nginx => "nginx.pid",
            Kind::Haproxy => "haproxy.pid",
            Kind::Apache => "apache2.pid",
        });
        if let Some(pid) = std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse().ok()) {
            signal("-TERM", pid);
        }
    }
}

/// Splits a command line on whitespace, as the agent does.
fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("a file is written");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("its mode is set");
}
