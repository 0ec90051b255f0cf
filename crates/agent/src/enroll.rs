//! Who the agent is: the host's facts, enrolment with a one-time token, and the identity reused
//! on every later start.

use std::net::{IpAddr, UdpSocket};

use certctl_api::{AgentHeartbeat, EnrollAgent, EnrolledAgent};
use certctl_client::{Client, ClientConfig, ClientError};
use reqwest::StatusCode;

use crate::AgentError;
use crate::config::{Config, StartToken};
use crate::state::{Identity, StateDir};

/// Facts about the host, sent at enrolment and with every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    pub os: String,
    pub architecture: String,
    pub ip_address: String,
    pub version: String,
}

impl HostFacts {
    pub fn gather() -> HostFacts {
        HostFacts {
            hostname: hostname(),
            os: std::env::consts::OS.to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            ip_address: primary_ip().map(|ip| ip.to_string()).unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    pub fn heartbeat(&self) -> AgentHeartbeat {
        AgentHeartbeat {
            version: self.version.clone(),
            hostname: self.hostname.clone(),
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            ip_address: self.ip_address.clone(),
        }
    }
}

/// The kernel's host name.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The address of the interface that routes outwards. Connecting a UDP socket sends nothing;
/// it only asks the kernel which source address it would use.
fn primary_ip() -> Option<IpAddr> {
    let probe = |bind: &str, peer: &str| {
        let socket = UdpSocket::bind(bind).ok()?;
        socket.connect(peer).ok()?;
        socket.local_addr().ok().map(|a| a.ip()).filter(|ip| !ip.is_unspecified())
    };
    probe("0.0.0.0:0", "192.0.2.1:9").or_else(|| probe("[::]:0", "[2001:db8::1]:9"))
}

/// A client for `config`'s server authenticated with `secret`.
pub fn client(config: &Config, secret: &str) -> Result<Client, AgentError> {
    let ca_bundle_pem = match &config.ca_bundle {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            AgentError::Config(format!("CERTCTL_SERVER_CA_BUNDLE: cannot read {}: {e}", path.display()))
        })?),
        None => None,
    };
    Client::new(ClientConfig {
        base_url: config.server_url.clone(),
        api_key: secret.to_owned(),
        ca_bundle_pem,
        timeout: std::time::Duration::from_secs(30),
    })
    .map_err(|e| AgentError::Config(e.to_string()))
}

/// The identity to run as: the saved one, else the configured credential, else a new one from
/// enrolling with the configured token. A new identity is saved before it is used.
pub async fn identity(config: &Config, state: &StateDir, facts: &HostFacts) -> Result<Identity, AgentError> {
    if let Some(saved) = state.identity().map_err(|e| AgentError::Fatal(e.to_string()))? {
        if config.token.is_some() {
            tracing::info!(agent_id = %saved.agent_id, "using the saved identity; CERTCTL_AGENT_TOKEN is ignored");
        }
        return Ok(saved);
    }
    let identity = match &config.token {
        None => {
            return Err(AgentError::Config(format!(
                "CERTCTL_AGENT_TOKEN: required on first start ({} holds no agent.json)",
                state.root().display()
            )));
        }
        Some(StartToken::Credential { agent_id, credential }) => Identity {
            agent_id: agent_id.clone(),
            credential: credential.clone(),
            server_url: config.server_url.clone(),
        },
        Some(StartToken::Enrolment(token)) => enroll(config, token, facts).await?,
    };
    state.save_identity(&identity).map_err(|e| AgentError::Fatal(e.to_string()))?;
    Ok(identity)
}

async fn enroll(config: &Config, token: &str, facts: &HostFacts) -> Result<Identity, AgentError> {
    let request = EnrollAgent {
        name: config.name.clone(),
        hostname: facts.hostname.clone(),
        os: facts.os.clone(),
        architecture: facts.architecture.clone(),
        ip_address: facts.ip_address.clone(),
        version: facts.version.clone(),
    };
    let enrolled: EnrolledAgent = match client(config, token)?.post("/api/v1/agents/enroll", &request).await {
        Ok(enrolled) => enrolled,
        Err(ClientError::Api { status: StatusCode::UNAUTHORIZED, body }) => {
            return Err(AgentError::EnrolmentRefused(format!(
                "{} (CERTCTL_AGENT_TOKEN is invalid, expired or already used; create a new one)",
                body.message
            )));
        }
        Err(ClientError::Api { status, body }) if status.is_client_error() => {
            return Err(AgentError::Config(format!("enrolment refused ({status}): {}", body.message)));
        }
        Err(e) => return Err(AgentError::Fatal(format!("enrolment failed: {e}"))),
    };
    tracing::info!(agent_id = %enrolled.agent.id, name = %config.name, "enrolled");
    Ok(Identity { agent_id: enrolled.agent.id, credential: enrolled.credential, server_url: config.server_url.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_describe_this_host() {
        let facts = HostFacts::gather();
        assert!(!facts.hostname.is_empty());
        assert_eq!(facts.os, std::env::consts::OS);
        assert_eq!(facts.version, env!("CARGO_PKG_VERSION"));
        assert!(facts.ip_address.is_empty() || facts.ip_address.parse::<IpAddr>().is_ok());
        assert_eq!(facts.heartbeat().architecture, std::env::consts::ARCH);
    }
}
