//! certctl-agent: enrolment, the heartbeat and work loop, local keys, deployment and discovery.

pub mod config;
pub mod deploy;
pub mod discovery;
pub mod enroll;
pub mod keys;
mod run;
pub mod state;
pub mod verify;
mod work;

pub use config::{Config, ConfigError};
pub use run::run;

/// Why the agent stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A setting or the environment is unusable.
    #[error("{0}")]
    Config(String),
    /// The server refused the enrolment token.
    #[error("enrolment refused: {0}")]
    EnrolmentRefused(String),
    /// The server answered 410: the agent is retired and must not come back.
    #[error("this agent is retired: {0}")]
    Retired(String),
    /// Anything else that stops the agent.
    #[error("{0}")]
    Fatal(String),
}
