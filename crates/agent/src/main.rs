//! `certctl-agent`: reads its configuration from the environment and runs the agent.
//! Exit statuses: 0 stopped by SIGINT/SIGTERM, 1 fatal error, 2 bad configuration or refused
//! enrolment, 4 retired by the server.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use certctl_agent::{AgentError, Config, enroll, run};
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let config = match Config::from_lookup(|name| std::env::var(name).ok(), &enroll::hostname()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("certctl-agent: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log_level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = match e.downcast_ref::<AgentError>() {
                Some(AgentError::Config(_) | AgentError::EnrolmentRefused(_)) => 2,
                Some(AgentError::Retired(_)) => 4,
                Some(AgentError::Fatal(_)) | None => 1,
            };
            eprintln!("certctl-agent: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// One thread is plenty for an agent that mostly waits, and keeps its memory small.
fn start(config: Config) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        run(config, shutdown).await.map_err(anyhow::Error::from)
    })
}
