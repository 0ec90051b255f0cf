//! dns-01 through operator hooks: the present command publishes the `_acme-challenge` TXT
//! record and the cleanup command removes it. Commands run as argv, never through a shell,
//! with a bounded run time; the record travels in environment variables.

use std::process::Stdio;
use std::time::Duration;

/// Most bytes of a failed hook's output quoted in the error.
const OUTPUT_TAIL: usize = 400;

/// The TXT record one authorization needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// The name validated, without a wildcard label (`example.com` for `*.example.com`).
    pub domain: String,
    /// `_acme-challenge.<domain>`.
    pub name: String,
    pub value: String,
}

impl TxtRecord {
    pub fn new(domain: &str, value: String) -> TxtRecord {
        let domain = domain.trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase();
        TxtRecord { name: format!("_acme-challenge.{domain}"), domain, value }
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.char_indices().rev().nth(OUTPUT_TAIL).map(|(i, _)| i).unwrap_or(0);
    text[start..].to_owned()
}

/// Runs one hook for `record`; an error says what went wrong in the operator's terms.
pub async fn run(field: &str, argv: &[String], record: &TxtRecord, timeout: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err(format!("config.{field} names no program"));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("CERTCTL_ACME_DNS_DOMAIN", &record.domain)
        .env("CERTCTL_ACME_DNS_NAME", &record.name)
        .env("CERTCTL_ACME_DNS_FQDN", format!("{}.", record.name))
        .env("CERTCTL_ACME_DNS_VALUE", &record.value)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("config.{field}: cannot run {program}: {e}"))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(|e| format!("config.{field}: {program} failed: {e}"))?,
        Err(_) => return Err(format!("config.{field}: {program} did not finish within {}s", timeout.as_secs())),
    };
    if !output.status.success() {
        let mut why = tail(&output.stderr);
        if why.is_empty() {
            why = tail(&output.stdout);
        }
        return Err(format!("config.{field}: {program} exited with {} for {}: {why}", output.status, record.name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_share_the_base_record() {
        let r = TxtRecord::new("*.Example.com", "v".into());
        assert_eq!(r.domain, "example.com");
        assert_eq!(r.name, "_acme-challenge.example.com");
    }

    #[tokio::test]
    async fn hooks_get_the_record_and_are_bounded() {
        let record = TxtRecord::new("example.com", "abc".into());
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = run("dns_present_command", &argv(&["env"]), &record, Duration::from_secs(10)).await;
        assert!(ok.is_ok(), "{ok:?}");
        let e = run("dns_present_command", &argv(&["false"]), &record, Duration::from_secs(10)).await.unwrap_err();
        assert!(e.starts_with("config.dns_present_command: false exited"), "{e}");
        let e =
            run("dns_cleanup_command", &argv(&["sleep", "5"]), &record, Duration::from_millis(100)).await.unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        let e = run("dns_present_command", &argv(&["/nonexistent/hook"]), &record, Duration::from_secs(1)).await;
        assert!(e.unwrap_err().contains("cannot run"));
    }
}
