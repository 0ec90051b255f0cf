//! Resource representations and the requests that create and change them.

mod access;
mod acme;
mod agent_protocol;
mod certificates;
mod connectors;
mod discovery;
mod lifecycle;
mod notifications;
mod operations;
mod organization;
mod policies;
mod stats;
mod target_config;

pub use access::*;
pub use acme::*;
pub use agent_protocol::*;
pub use certificates::*;
pub use connectors::*;
pub use discovery::*;
pub use lifecycle::*;
pub use notifications::*;
pub use operations::*;
pub use organization::*;
pub use policies::*;
pub use stats::*;
pub use target_config::*;

/// Serde helpers for RFC 3339 timestamps.
pub mod ts {
    pub use time::serde::rfc3339;
    pub use time::serde::rfc3339::option;
}
