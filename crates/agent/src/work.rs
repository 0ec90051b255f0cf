//! One work item: a CSR made with a new local key, or a deployment reported back with its
//! verification.

use certctl_api::{
    AgentCertificate, CsrIssued, CsrSubmission, JobStatus, JobStatusReport, JobType, TargetConfig, VerificationReport,
    WorkItem,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use crate::deploy::{self, DeployFailure, Material, Outcome};
use crate::keys::{self, KeyChoice};
use crate::run::{Agent, StepError};

/// The longest error text the server takes.
const MAX_ERROR: usize = 4000;

impl Agent {
    /// Does one item; only a retirement is an error, other failures are logged or reported.
    pub(crate) async fn handle(&self, item: &WorkItem) -> Result<(), StepError> {
        if item.status == JobStatus::AwaitingCsr {
            return self.csr(item).await;
        }
        if item.job_type == JobType::Deployment {
            return self.deployment(item).await;
        }
        tracing::debug!(job = %item.id, kind = %item.job_type, status = %item.status, "not work for an agent; ignored");
        Ok(())
    }

    async fn csr(&self, item: &WorkItem) -> Result<(), StepError> {
        let choice = KeyChoice::from_rules(&item.allowed_key_algorithms);
        let key = tokio::task::spawn_blocking(move || choice.generate())
            .await
            .map_err(|e| StepError::Failed(format!("key generation stopped: {e}")))?
            .map_err(|e| StepError::Failed(e.to_string()))?;
        let key_path = self.keys.save(&item.certificate_id, &key).map_err(|e| StepError::Failed(e.to_string()))?;
        let common_name = item.common_name.as_deref().unwrap_or_default();
        let submitted = match keys::csr_pem(&key, common_name, &item.sans) {
            Ok(csr_pem) => {
                let body = CsrSubmission { certificate_id: item.certificate_id.clone(), csr_pem };
                let path = format!("/api/v1/agents/{}/csr", self.identity.agent_id);
                self.client.post::<_, CsrIssued>(&path, &body).await.map_err(StepError::from)
            }
            Err(e) => Err(StepError::Failed(e.to_string())),
        };
        match submitted {
            Ok(issued) => {
                tracing::info!(
                    job = %item.id, certificate = %item.certificate_id, serial = %issued.serial_number,
                    algorithm = keys::algorithm_name(&key), "CSR accepted"
                );
                Ok(())
            }
            Err(e) => {
                // The key never reached a certificate; the next offer of this job makes another.
                self.keys.discard(&key_path);
                match e {
                    StepError::Failed(why) => {
                        tracing::warn!(job = %item.id, certificate = %item.certificate_id, error = %why, "CSR not accepted");
                        Ok(())
                    }
                    retired => Err(retired),
                }
            }
        }
    }

    async fn deployment(&self, item: &WorkItem) -> Result<(), StepError> {
        let report = match self.deploy(item).await {
            Ok(outcome) => {
                let skipped = matches!(outcome, Outcome::Skipped { .. });
                tracing::info!(job = %item.id, target = ?item.target_id, skipped, verification = %outcome.verification().status, "deployed");
                JobStatusReport {
                    status: JobStatus::Completed,
                    error: None,
                    verification: Some(outcome.verification().clone()),
                }
            }
            Err(DeployStep::Retired(message)) => return Err(StepError::Retired(message)),
            Err(DeployStep::Failed(failure)) => {
                tracing::warn!(job = %item.id, target = ?item.target_id, error = %failure.reason, "deployment failed");
                JobStatusReport {
                    status: JobStatus::Failed,
                    error: Some(truncate(&failure.reason)),
                    verification: failure
                        .verification
                        .map(|v| VerificationReport { error: v.error.map(|e| truncate(&e)), ..v }),
                }
            }
        };
        let path = format!("/api/v1/agents/{}/jobs/{}/status", self.identity.agent_id, item.id);
        let _: serde_json::Value = self.client.post(&path, &report).await?;
        Ok(())
    }

    async fn deploy(&self, item: &WorkItem) -> Result<Outcome, DeployStep> {
        let target_type = item.target_type.ok_or_else(|| fail("the job names no target type"))?;
        let raw = match &item.target_config {
            Some(serde_json::Value::Object(map)) => map.clone(),
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(_) => return Err(fail("the target configuration is not a JSON object")),
        };
        let config = TargetConfig::parse(target_type, &raw)
            .map_err(|e| fail(format!("target configuration: {e}")))?
            .ok_or_else(|| fail(format!("target type {target_type} is not supported by certctl-agent")))?;
        let path = format!("/api/v1/agents/{}/certificates/{}", self.identity.agent_id, item.certificate_id);
        let cert: AgentCertificate = self.client.get(&path).await.map_err(|e| match StepError::from(e) {
            StepError::Retired(m) => DeployStep::Retired(m),
            StepError::Failed(m) => fail(format!("cannot fetch the certificate: {m}")),
        })?;
        let key_path = self.key_for(&item.certificate_id, &cert.certificate_pem)?;
        let key_pem = std::fs::read_to_string(&key_path)
            .map(Zeroizing::new)
            .map_err(|e| fail(format!("cannot read the private key {}: {e}", key_path.display())))?;
        let material = Material::new(&cert.certificate_pem, key_pem).map_err(DeployStep::Failed)?;
        let outcome = deploy::deploy(&config, &material).await.map_err(DeployStep::Failed)?;
        match self.keys.prune(&item.certificate_id, &key_path) {
            Ok(removed) if !removed.is_empty() => tracing::info!(removed = removed.len(), "retired keys removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot remove retired keys"),
        }
        Ok(outcome)
    }

    /// The local key whose public key is the leaf's.
    fn key_for(&self, certificate_id: &str, chain_pem: &str) -> Result<std::path::PathBuf, DeployStep> {
        let leaf = ::pem::parse_many(chain_pem.as_bytes())
            .ok()
            .and_then(|blocks| blocks.into_iter().find(|b| b.tag() == "CERTIFICATE"))
            .ok_or_else(|| fail("the certificate PEM holds no certificate"))?;
        let (_, parsed) = X509Certificate::from_der(leaf.contents())
            .map_err(|e| fail(format!("the leaf certificate does not parse: {e}")))?;
        let spki = parsed.tbs_certificate.subject_pki.raw;
        let public_key = parsed.tbs_certificate.subject_pki.subject_public_key.data.as_ref();
        self.keys
            .find(certificate_id, spki, public_key)
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("no local private key matches the certificate's public key"))
    }
}

/// A deployment that stopped: a failure to report, or a retirement that ends the agent.
enum DeployStep {
    Failed(DeployFailure),
    Retired(String),
}

fn fail(reason: impl Into<String>) -> DeployStep {
    DeployStep::Failed(DeployFailure::new(reason))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
