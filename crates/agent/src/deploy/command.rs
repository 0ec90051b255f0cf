//! Validate and reload commands: run as argv (never through a shell), with a timeout, killed
//! when abandoned.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use certctl_api::CommandLine;

/// How much of a failed command's output goes into the failure reason.
const OUTPUT_TAIL: usize = 1024;

/// Runs `command` with `env` added to the agent's environment. A non-zero exit, a timeout or a
/// program that cannot start is an error carrying the tail of its stderr (or stdout).
pub async fn run(command: &CommandLine, env: &[(String, PathBuf)], timeout: Duration) -> Result<(), String> {
    let argv = command.argv();
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_os_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("`{command}` cannot start: {e}"))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(|e| format!("`{command}` failed: {e}"))?,
        // Dropping the future drops the child, which kills it.
        Err(_) => return Err(format!("`{command}` timed out after {}s and was killed", timeout.as_secs_f32())),
    };
    if output.status.success() {
        tracing::debug!(%command, "command succeeded");
        return Ok(());
    }
    let text = if output.stderr.iter().any(|b| !b.is_ascii_whitespace()) { &output.stderr } else { &output.stdout };
    let text = String::from_utf8_lossy(text);
    let text = text.trim();
    let tail = match text.char_indices().rev().nth(OUTPUT_TAIL) {
        Some((i, _)) => &text[i..],
        None => text,
    };
    let status = match output.status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_owned(),
    };
    Err(if tail.is_empty() { format!("`{command}` {status}") } else { format!("`{command}` {status}: {tail}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> CommandLine {
        CommandLine::try_from(s.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn success_failure_timeout_and_env() {
        assert!(run(&line("true"), &[], Duration::from_secs(5)).await.is_ok());
        let e = run(&line("ls /nonexistent-certctl-path"), &[], Duration::from_secs(5)).await.unwrap_err();
        assert!(
            e.starts_with("`ls /nonexistent-certctl-path` exited with status 2: ") && e.contains("nonexistent"),
            "{e}"
        );
        let e = run(&line("sleep 5"), &[], Duration::from_millis(200)).await.unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        let e = run(&line("/no/such/program"), &[], Duration::from_secs(1)).await.unwrap_err();
        assert!(e.contains("cannot start"), "{e}");
        // The environment reaches the command: `test -f $CERTCTL_STAGED_CERT_PATH` without a shell.
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let env = vec![("CERTCTL_STAGED_CERT_PATH".to_owned(), tmp.path().to_owned())];
        assert!(run(&line("printenv CERTCTL_STAGED_CERT_PATH"), &env, Duration::from_secs(5)).await.is_ok());
        assert!(run(&line("printenv CERTCTL_STAGED_NOPE"), &env, Duration::from_secs(5)).await.is_err());
    }
}
