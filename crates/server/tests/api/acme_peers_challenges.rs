//! The challenge types against real clients, with `pebble-challtestsrv` as the only DNS server
//! the certctl-server asks (`CERTCTL_ACME_DNS_RESOLVER`): lego proves dns-01 (wildcard and
//! base name, EC P-256 and P-384 accounts) through its exec provider, certbot proves http-01
//! for a name only that DNS server knows, and uacme proves tls-alpn-01 (a name and an IP
//! address) through ualpn. certbot and lego also renew and revoke in challenge mode, and uacme
//! issues, renews and revokes in trust_authenticated mode too. uacme's libcurl reads no CA variable, so it runs under bubblewrap
//! with our CA mounted over the system trust directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::acme_peers::{Server, Setup, free_port, ocsp_status, peer, run, serial, succeeded, verify_chain};

/// A running `pebble-challtestsrv` answering DNS on loopback, killed on drop.
struct ChallTestSrv {
    dns: SocketAddr,
    management: String,
    _child: tokio::process::Child,
}

impl ChallTestSrv {
    /// Every A query answers 127.0.0.1 (AAAA nothing); TXT records are what tests set.
    /// Its log goes to `log` so a failure can show it.
    async fn start(log: &Path) -> ChallTestSrv {
        let (dns_port, management_port) = (free_port(), free_port());
        let dns = format!("127.0.0.1:{dns_port}");
        let management = format!("127.0.0.1:{management_port}");
        let child = tokio::process::Command::new("pebble-challtestsrv")
            .args(["-dns01", &dns, "-management", &management, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .kill_on_drop(true)
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("pebble-challtestsrv starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&management).await.is_ok()
                && tokio::net::TcpStream::connect(&dns).await.is_ok()
            {
                return ChallTestSrv { dns: dns.parse().unwrap(), management, _child: child };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let err = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
        panic!("pebble-challtestsrv did not come up on {dns} / {management}: {err}");
    }
}

/// A test file written to the temporary directory, executable.
fn fixture(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// lego's exec DNS hook: `present FQDN VALUE` sets a TXT record, `cleanup FQDN VALUE` clears
/// the name's records, through the challtestsrv management API.
fn lego_dns_hook(dir: &Path, management: &str) -> PathBuf {
    let script = format!(
        r#"#!/usr/bin/env python3
import json, sys, urllib.request
action, fqdn, value = sys.argv[1], sys.argv[2], sys.argv[3]
paths = {{"present": ("/set-txt", {{"host": fqdn, "value": value}}), "cleanup": ("/clear-txt", {{"host": fqdn}})}}
if action in paths:
    path, body = paths[action]
    req = urllib.request.Request("http://{management}" + path, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()
"#
    );
    fixture(dir, "lego-dns-hook", &script)
}

/// Leaf and chain of a full-chain PEM file, as two files beside it.
fn split_chain(full: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(full).unwrap();
    let end = "-----END CERTIFICATE-----";
    let cut = text.find(end).expect("a certificate") + end.len();
    let (leaf, chain) = (full.with_extension("leaf.pem"), full.with_extension("chain.pem"));
    std::fs::write(&leaf, format!("{}\n", &text[..cut])).unwrap();
    std::fs::write(&chain, text[cut..].trim_start()).unwrap();
    (leaf, chain)
}

async fn revoked_count(server: &Server) -> usize {
    server.acme_certificates().await.iter().filter(|c| c["status"] == "Revoked").count()
}

/// dns-01 with lego's exec provider for `*.example.test` and `example.test` (one TXT name,
/// two values), then a forced renewal and revocation.
async fn lego_dns01(key_type: &str) {
    if !peer("lego") || !peer("openssl") || !peer("pebble-challtestsrv") || !peer("python3") {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let dns = ChallTestSrv::start(&logs.path().join("challtestsrv.log")).await;
    let server = Server::launch(Setup { dns_resolver: Some(dns.dns), ..Setup::new(free_port()) }).await.unwrap();
    let hook = lego_dns_hook(server.dir.path(), &dns.management);
    let path = server.dir.path().join(format!("lego-dns01-{key_type}"));
    let path_s = path.display().to_string();
    let directory = format!("{}/acme/profile/acme-challenge/directory", server.url);
    let resolver = dns.dns.to_string();
    let env = [
        ("LEGO_CA_CERTIFICATES", server.ca.as_path()),
        ("EXEC_PATH", hook.as_path()),
        ("EXEC_PROPAGATION_TIMEOUT", Path::new("30")),
        ("EXEC_POLLING_INTERVAL", Path::new("1")),
        // The exec provider solves one name at a time, by default a minute apart.
        ("EXEC_SEQUENCE_INTERVAL", Path::new("1")),
    ];
    let base = [
        "--server",
        directory.as_str(),
        "--accept-tos",
        "--email",
        "ops@example.com",
        "--path",
        path_s.as_str(),
        "--key-type",
        key_type,
        "--dns",
        "exec",
        "--dns.resolvers",
        resolver.as_str(),
        // lego still checks the TXT record through the challtestsrv before it answers the
        // challenge; only its second stage, asking the zone's authoritative servers, is off,
        // because the challtestsrv answers no SOA queries to find them.
        "--dns.disable-cp",
    ];
    let both = ["--domains", "*.example.test", "--domains", "example.test"];
    let out = run("lego", &[&base[..], &both, &["run"]].concat(), &env).await;
    succeeded("lego run (dns-01)", &out);
    let certs = path.join("certificates");
    let (leaf, issuer) = (certs.join("_.example.test.crt"), certs.join("_.example.test.issuer.crt"));
    let sans = verify_chain(&leaf, &issuer);
    assert!(sans.contains("DNS:*.example.test") && sans.contains("DNS:example.test"), "{sans}");
    let issued = server.acme_certificates().await;
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["certificate_profile_id"], "acme-challenge");

    // `--days 3650` makes the 30-day certificate due, so lego renews it in place.
    let first = serial(&leaf);
    let renew = ["renew", "--days", "3650", "--no-random-sleep"];
    let out = run("lego", &[&base[..], &both, &renew].concat(), &env).await;
    succeeded("lego renew (dns-01)", &out);
    let sans = verify_chain(&leaf, &issuer);
    assert!(sans.contains("DNS:*.example.test") && sans.contains("DNS:example.test"), "{sans}");
    assert_ne!(serial(&leaf), first, "the renewal is a new certificate");
    let issued = server.acme_certificates().await;
    assert_eq!(issued.len(), 2, "the renewal is a second ACME certificate: {issued:?}");

    // lego files the certificate under its first name and revokes it by that name; `--keep`
    // leaves the files in place (not archived) for the OCSP check.
    let revoke = ["--domains", "*.example.test", "revoke", "--keep"];
    let out = run("lego", &[&base[..], &revoke].concat(), &env).await;
    succeeded("lego revoke", &out);
    assert_eq!(revoked_count(&server).await, 1);
    let status = ocsp_status(&leaf, &issuer).await;
    assert!(status.contains(": revoked"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_ec256_dns01_wildcard() {
    lego_dns01("ec256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_ec384_dns01_wildcard() {
    lego_dns01("ec384").await;
}

/// http-01 with certbot's standalone responder for `certbot.test`, a name only the
/// challtestsrv resolves (to 127.0.0.1); then `certbot renew` from the saved renewal settings
/// and revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_http01_through_configured_resolver() {
    if !peer("certbot") || !peer("openssl") || !peer("pebble-challtestsrv") {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let dns = ChallTestSrv::start(&logs.path().join("challtestsrv.log")).await;
    let http01 = free_port();
    let server = Server::launch(Setup { dns_resolver: Some(dns.dns), ..Setup::new(http01) }).await.unwrap();
    let work = server.dir.path().join("certbot-resolver");
    let directory = format!("{}/acme/profile/acme-challenge/directory", server.url);
    let port = http01.to_string();
    let (config, workdir, logs) = (work.join("config"), work.join("work"), work.join("logs"));
    let (config_s, work_s, logs_s) =
        (config.display().to_string(), workdir.display().to_string(), logs.display().to_string());
    let args = [
        "certonly",
        "--server",
        &directory,
        "--standalone",
        "--preferred-challenges",
        "http-01",
        "--http-01-port",
        &port,
        "--http-01-address",
        "127.0.0.1",
        "-d",
        "certbot.test",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--non-interactive",
        "--config-dir",
        &config_s,
        "--work-dir",
        &work_s,
        "--logs-dir",
        &logs_s,
    ];
    let env = [("REQUESTS_CA_BUNDLE", server.ca.as_path())];
    let out = run("certbot", &args, &env).await;
    succeeded("certbot certonly (http-01 via the configured resolver)", &out);
    let live = config.join("live/certbot.test");
    let (leaf, chain) = (live.join("cert.pem"), live.join("chain.pem"));
    let sans = verify_chain(&leaf, &chain);
    assert!(sans.contains("DNS:certbot.test"), "{sans}");
    assert_eq!(server.acme_certificates().await.len(), 1);

    let dirs = ["--config-dir", &config_s, "--work-dir", &work_s, "--logs-dir", &logs_s, "--non-interactive"];
    let first = serial(&leaf);
    let renew = ["renew", "--force-renewal", "--no-random-sleep-on-renew"];
    let out = run("certbot", &[&renew[..], &dirs].concat(), &env).await;
    succeeded("certbot renew (http-01)", &out);
    let sans = verify_chain(&leaf, &chain);
    assert!(sans.contains("DNS:certbot.test"), "{sans}");
    assert_ne!(serial(&leaf), first, "the renewal is a new certificate");
    let certs = server.acme_certificates().await;
    assert_eq!(certs.len(), 2, "the renewal is a second ACME certificate: {certs:?}");
    assert!(certs.iter().all(|c| c["certificate_profile_id"] == "acme-challenge"), "{certs:?}");

    let leaf_s = leaf.display().to_string();
    let revoke = [
        "revoke",
        "--server",
        &directory,
        "--cert-path",
        &leaf_s,
        "--reason",
        "superseded",
        "--no-delete-after-revoke",
    ];
    let out = run("certbot", &[&revoke[..], &dirs].concat(), &env).await;
    succeeded("certbot revoke (challenge mode)", &out);
    let certs = server.acme_certificates().await;
    let revoked: Vec<_> = certs.iter().filter(|c| c["status"] == "Revoked").collect();
    assert_eq!(revoked.len(), 1, "{certs:?}");
    assert_eq!(revoked[0]["revocation_reason"], "superseded");
    let status = ocsp_status(&leaf, &chain).await;
    assert!(status.contains(": revoked") && status.contains("Reason: superseded"), "{status}");
}

/// uacme's hook for ualpn: declines every type but tls-alpn-01 (so uacme moves on to it), and
/// hands the digest to the ualpn server on `socket`.
fn ualpn_hook(dir: &Path, socket: &Path) -> PathBuf {
    let script = format!(
        r#"#!/usr/bin/env python3
import subprocess, sys
method, kind, ident, token, auth = sys.argv[1:6]
if kind != "tls-alpn-01":
    sys.exit(1)
line = f"auth {{ident}} {{auth}}\n" if method == "begin" else f"unauth {{ident}}\n"
out = subprocess.run(["ualpn", "-s", "{socket}"], input=line, capture_output=True, text=True, timeout=10)
sys.exit(0 if out.stdout.startswith("OK") else 1)
"#,
        socket = socket.display()
    );
    fixture(dir, "uacme-ualpn-hook", &script)
}

/// tls-alpn-01 with uacme and ualpn for `uacme.test` and 127.0.0.1 (RFC 8738: SNI is the
/// reverse name), then a forced renewal and revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uacme_tls_alpn01_issues_renews_and_revokes() {
    for binary in ["uacme", "ualpn", "bwrap", "openssl", "pebble-challtestsrv", "python3"] {
        if !peer(binary) {
            return;
        }
    }
    let logs = tempfile::tempdir().unwrap();
    let dns = ChallTestSrv::start(&logs.path().join("challtestsrv.log")).await;
    let alpn_port = free_port();
    let setup = Setup { dns_resolver: Some(dns.dns), tlsalpn01_port: alpn_port, ..Setup::new(free_port()) };
    let server = Server::launch(setup).await.unwrap();
    let dir = server.dir.path();
    let socket = dir.join("ualpn.sock");
    // ualpn proxies other TLS traffic to a backend; none is needed here, so it names a port
    // nothing listens on.
    let bind = format!("127.0.0.1@{alpn_port}");
    let backend = format!("127.0.0.1@{}", free_port());
    let (socket_s, pid_s) = (socket.display().to_string(), dir.join("ualpn.pid").display().to_string());
    let _ualpn = tokio::process::Command::new("ualpn")
        .args(["-b", &bind, "-c", &backend, "-s", &socket_s, "-p", &pid_s, "-n", "1", "-P", "0", "-v"])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ualpn starts");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(socket.exists(), "ualpn did not open {}", socket.display());
    let hook = ualpn_hook(dir, &socket);
    let directory = format!("{}/acme/profile/acme-challenge/directory", server.url);
    let uacme = Uacme::new(&server, "uacme", &directory, &hook);

    succeeded("uacme new", &uacme.run(&["new", "ops@example.com"]).await);
    succeeded("uacme issue (tls-alpn-01)", &uacme.run(&["issue", "uacme.test", "127.0.0.1"]).await);
    let cert = dir.join("uacme/uacme.test/cert.pem");
    let (leaf, chain) = split_chain(&cert);
    let sans = verify_chain(&leaf, &chain);
    assert!(sans.contains("DNS:uacme.test") && sans.contains("IP Address:127.0.0.1"), "{sans}");
    assert_eq!(server.acme_certificates().await.len(), 1);

    succeeded("uacme issue --force (renewal)", &uacme.run(&["-f", "issue", "uacme.test", "127.0.0.1"]).await);
    let (leaf, chain) = split_chain(&cert);
    verify_chain(&leaf, &chain);
    assert_eq!(server.acme_certificates().await.len(), 2, "the renewal is a second ACME certificate");

    let cert_s = cert.display().to_string();
    succeeded("uacme revoke", &uacme.run(&["revoke", &cert_s]).await);
    assert_eq!(revoked_count(&server).await, 1);
}

/// uacme under bubblewrap with only our CA in the trust directory libcurl (GnuTLS) reads; its
/// account and certificates live in `name` under the server's data directory.
struct Uacme {
    argv: Vec<String>,
}

impl Uacme {
    fn new(server: &Server, name: &str, directory: &str, hook: &Path) -> Uacme {
        let dir = server.dir.path();
        let trust = dir.join(format!("{name}-trust"));
        std::fs::create_dir_all(&trust).unwrap();
        std::fs::copy(&server.ca, trust.join("ca-certificates.crt")).unwrap();
        let (trust_s, confdir, hook_s) =
            (trust.display().to_string(), dir.join(name).display().to_string(), hook.display().to_string());
        let argv = ["--dev-bind", "/", "/", "--ro-bind", &trust_s, "/etc/ssl/certs", "--", "uacme"]
            .into_iter()
            .chain(["-v", "-c", &confdir, "-a", directory, "-h", &hook_s, "-t", "EC", "-y"])
            .map(str::to_owned)
            .collect();
        Uacme { argv }
    }

    async fn run(&self, command: &[&str]) -> std::process::Output {
        let argv: Vec<&str> = self.argv.iter().map(String::as_str).chain(command.iter().copied()).collect();
        run("bwrap", &argv, &[]).await
    }
}

/// trust_authenticated mode with uacme: authorizations are valid as soon as the order exists,
/// so the hook (which fails, saying why) is never asked to answer a challenge; uacme issues,
/// renews by force and revokes on the default directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uacme_trust_authenticated_issues_renews_and_revokes() {
    for binary in ["uacme", "bwrap", "openssl", "python3"] {
        if !peer(binary) {
            return;
        }
    }
    let server = Server::start(free_port()).await;
    let dir = server.dir.path();
    let hook = fixture(
        dir,
        "uacme-no-challenge-hook",
        "#!/usr/bin/env python3\nimport sys\n\
         sys.stderr.write(f\"a trust_authenticated order asked for a challenge: {sys.argv[1:]}\\n\")\n\
         sys.exit(1)\n",
    );
    let directory = format!("{}/acme/directory", server.url);
    let uacme = Uacme::new(&server, "uacme-trust", &directory, &hook);
    let names = ["uacme.example.test", "www.uacme.example.test"];

    succeeded("uacme new", &uacme.run(&["new", "ops@example.com"]).await);
    succeeded("uacme issue (trust_authenticated)", &uacme.run(&[&["issue"][..], &names].concat()).await);
    let cert = dir.join("uacme-trust/uacme.example.test/cert.pem");
    let (leaf, chain) = split_chain(&cert);
    let sans = verify_chain(&leaf, &chain);
    assert!(sans.contains("DNS:uacme.example.test") && sans.contains("DNS:www.uacme.example.test"), "{sans}");
    let certs = server.acme_certificates().await;
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0]["certificate_profile_id"], "acme-default");

    let first = serial(&leaf);
    succeeded("uacme issue --force (renewal)", &uacme.run(&[&["-f", "issue"][..], &names].concat()).await);
    let (leaf, chain) = split_chain(&cert);
    verify_chain(&leaf, &chain);
    assert_ne!(serial(&leaf), first, "the renewal is a new certificate");
    assert_eq!(server.acme_certificates().await.len(), 2, "the renewal is a second ACME certificate");

    let cert_s = cert.display().to_string();
    succeeded("uacme revoke", &uacme.run(&["revoke", &cert_s]).await);
    assert_eq!(revoked_count(&server).await, 1);
    let status = ocsp_status(&leaf, &chain).await;
    assert!(status.contains(": revoked"), "{status}");
}

/// The validators' DNS against a real DNS server: the TXT digest, the failures a client sees
/// (no record, a wrong record, an unreachable resolver) and the SSRF guard on A answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_dns_through_challtestsrv() {
    use certctl_server::acme::{dns01, resolve::ValidationDns};
    if !peer("pebble-challtestsrv") {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let srv = ChallTestSrv::start(&logs.path().join("challtestsrv.log")).await;
    let dns = ValidationDns { server: Some(srv.dns), allow_loopback: true };
    let ka = "token.thumbprint";
    let set = |host: &'static str, value: String| {
        let url = format!("http://{}/set-txt", srv.management);
        async move {
            let body = serde_json::json!({"host": host, "value": value});
            let r = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "set-txt: {}", r.status());
        }
    };
    let missing = dns01::validate(&dns, "none.example.test", ka).await.unwrap_err();
    assert_eq!((missing.kind, missing.detail.contains("no TXT record")), ("unauthorized", true), "{missing:?}");
    set("_acme-challenge.wrong.example.test.", dns01::txt_value("token.other")).await;
    let wrong = dns01::validate(&dns, "wrong.example.test", ka).await.unwrap_err();
    assert_eq!(wrong.kind, "unauthorized", "{wrong:?}");
    set("_acme-challenge.ok.example.test.", "unrelated".into()).await;
    set("_acme-challenge.ok.example.test.", dns01::txt_value(ka)).await;
    dns01::validate(&dns, "ok.example.test", ka).await.unwrap();

    assert_eq!(dns.addresses("anything.test").await.unwrap(), ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    let strict = ValidationDns { allow_loopback: false, ..dns };
    let refused = strict.addresses("anything.test").await.unwrap_err();
    assert_eq!(refused.kind, "connection", "{refused:?}");

    // A resolver that never answers: a dns problem within the query timeout, not a hang.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = ValidationDns { server: Some(silent.local_addr().unwrap()), allow_loopback: true };
    let e = dns01::validate(&dead, "ok.example.test", ka).await.unwrap_err();
    assert_eq!(e.kind, "dns", "{e:?}");
}
