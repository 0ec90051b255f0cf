//! The `certctl` command-line client: the command tree built from the operation table, request
//! building, output rendering and PEM import. `main.rs` runs them; the parity test reads the
//! command tree from here.

pub mod command;
pub mod import;
pub mod output;
pub mod request;

use certctl_client::ClientError;
use serde_json::Value;

/// Why a command did not succeed, and so its exit code.
pub enum Failure {
    /// Exit 2.
    Usage(String),
    /// Exit 1.
    Api(ClientError),
    /// Exit 3: the job's final state.
    JobFailed(Value),
    /// Exit 1: an import where some certificates failed.
    Import(Value),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        match e {
            ClientError::Config(msg) => Failure::Usage(msg),
            other => Failure::Api(other),
        }
    }
}
