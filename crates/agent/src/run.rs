//! The agent's loop: heartbeats, work polls with jitter and bounded backoff, discovery scans,
//! and a stop that lets the current job finish.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certctl_api::AgentWork;
use certctl_client::{Client, ClientError};
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::AgentError;
use crate::config::Config;
use crate::discovery;
use crate::enroll::{self, HostFacts};
use crate::keys::KeyStore;
use crate::state::{Identity, StateDir};

/// The longest pause between work polls after failures (longer when the poll interval is).
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a step of the loop did not complete.
#[derive(Debug)]
pub(crate) enum StepError {
    /// The server answered 410: the agent is retired.
    Retired(String),
    /// Anything else; the loop carries on.
    Failed(String),
}

impl From<ClientError> for StepError {
    fn from(e: ClientError) -> StepError {
        match e {
            ClientError::Api { status: StatusCode::GONE, body } => StepError::Retired(body.message),
            other => StepError::Failed(other.to_string()),
        }
    }
}

/// A connected, enrolled agent.
pub(crate) struct Agent {
    pub client: Client,
    pub identity: Identity,
    pub keys: KeyStore,
    facts: HostFacts,
}

/// Runs the agent until `shutdown` completes (then `Ok`), the agent is retired, or a fatal error.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let state =
        StateDir::open(&config.state_dir).map_err(|e| AgentError::Config(format!("CERTCTL_AGENT_STATE_DIR: {e}")))?;
    let facts = HostFacts::gather();
    tokio::pin!(shutdown);
    let identity = tokio::select! {
        biased;
        () = &mut shutdown => return Ok(()),
        identity = enroll::identity(&config, &state, &facts) => identity?,
    };
    let agent = Agent {
        client: enroll::client(&config, &identity.credential)?,
        keys: KeyStore::new(state.keys_dir()),
        identity,
        facts,
    };
    tracing::info!(agent_id = %agent.identity.agent_id, server = %config.server_url, "certctl-agent running");
    agent.serve(&config, shutdown).await
}

impl Agent {
    async fn serve(&self, config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        tokio::pin!(shutdown);
        let mut jitter = Jitter::seeded();
        let start = Instant::now();
        let (mut next_heartbeat, mut next_poll, mut next_discovery) = (start, start, start);
        let discovery_on = !config.discovery_dirs.is_empty();
        let mut failures = 0u32;
        loop {
            let mut next = next_heartbeat.min(next_poll);
            if discovery_on {
                next = next.min(next_discovery);
            }
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!("stopping");
                    return Ok(());
                }
                () = tokio::time::sleep_until(next) => {}
            }
            let now = Instant::now();
            if now >= next_heartbeat {
                settle(self.heartbeat().await, "heartbeat")?;
                next_heartbeat = Instant::now() + config.heartbeat_interval;
            }
            if now >= next_poll {
                let polled = self.poll(&mut shutdown).await;
                let ok = polled.is_ok();
                if settle(polled, "work poll")? == Some(Stop) {
                    tracing::info!("stopping after the current job");
                    return Ok(());
                }
                failures = if ok { 0 } else { failures.saturating_add(1) };
                let wait = backoff(config.poll_interval, failures);
                next_poll = Instant::now() + jitter.spread(wait);
            }
            if discovery_on && now >= next_discovery {
                settle(self.discover(&config.discovery_dirs).await, "discovery")?;
                next_discovery = Instant::now() + config.discovery_interval;
            }
        }
    }

    async fn heartbeat(&self) -> Result<(), StepError> {
        let path = format!("/api/v1/agents/{}/heartbeat", self.identity.agent_id);
        let _: serde_json::Value = self.client.post(&path, &self.facts.heartbeat()).await?;
        tracing::debug!("heartbeat recorded");
        Ok(())
    }

    /// Fetches the work and does it in order; `Some(Stop)` when a stop was asked between jobs.
    async fn poll<S: Future<Output = ()> + Unpin>(&self, shutdown: &mut S) -> Result<Option<Stop>, StepError> {
        let path = format!("/api/v1/agents/{}/work", self.identity.agent_id);
        let work: AgentWork = self.client.get(&path).await?;
        if !work.jobs.is_empty() {
            tracing::info!(jobs = work.jobs.len(), "work received");
        }
        for item in &work.jobs {
            self.handle(item).await?;
            let stop = tokio::select! {
                biased;
                () = &mut *shutdown => true,
                () = std::future::ready(()) => false,
            };
            if stop {
                return Ok(Some(Stop));
            }
        }
        Ok(None)
    }

    async fn discover(&self, dirs: &[std::path::PathBuf]) -> Result<(), StepError> {
        let dirs = dirs.to_vec();
        let scan = tokio::task::spawn_blocking(move || discovery::scan(&dirs))
            .await
            .map_err(|e| StepError::Failed(format!("the scan stopped: {e}")))?;
        let found = scan.certificates.len();
        let path = format!("/api/v1/agents/{}/discoveries", self.identity.agent_id);
        for report in scan.into_reports() {
            let _: serde_json::Value = self.client.post(&path, &report).await?;
        }
        tracing::info!(certificates = found, "discovery scan reported");
        Ok(())
    }
}

/// A stop asked for while the work was being done.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stop;

/// Logs a failed step; a retirement ends the loop.
fn settle<T: Default>(result: Result<T, StepError>, step: &str) -> Result<T, AgentError> {
    match result {
        Ok(value) => Ok(value),
        Err(StepError::Retired(message)) => {
            tracing::error!(step, %message, "the server says this agent is retired; exiting");
            Err(AgentError::Retired(message))
        }
        Err(StepError::Failed(message)) => {
            tracing::warn!(step, %message, "failed; retrying later");
            Ok(T::default())
        }
    }
}

/// The pause before the next poll: the interval, doubled per consecutive failure, up to five
/// minutes (or the interval itself when that is longer).
pub(crate) fn backoff(interval: Duration, failures: u32) -> Duration {
    let cap = MAX_BACKOFF.max(interval);
    interval.saturating_mul(2u32.saturating_pow(failures.min(16))).min(cap)
}

/// ±10% spread so that many agents do not poll in step. Not for anything secret.
pub(crate) struct Jitter(u64);

impl Jitter {
    fn seeded() -> Jitter {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
        Jitter((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn spread(&mut self, d: Duration) -> Duration {
        // A factor in [0.9, 1.1).
        let factor = 0.9 + (self.next() % 10_000) as f64 / 50_000.0;
        d.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(30), 0), s(30));
        assert_eq!(backoff(s(30), 1), s(60));
        assert_eq!(backoff(s(30), 3), s(240));
        assert_eq!(backoff(s(30), 4), s(300));
        assert_eq!(backoff(s(30), u32::MAX), s(300));
        assert_eq!(backoff(s(3600), 5), s(3600), "a long interval is its own cap");
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let mut j = Jitter(42);
        let base = Duration::from_secs(100);
        let spread: Vec<Duration> = (0..1000).map(|_| j.spread(base)).collect();
        assert!(spread.iter().all(|d| *d >= Duration::from_secs(90) && *d < Duration::from_secs(110)));
        assert!(
            spread.iter().any(|d| *d < Duration::from_secs(97)) && spread.iter().any(|d| *d > Duration::from_secs(103))
        );
    }
}
