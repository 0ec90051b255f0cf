//! The agent protocol's state: one-time enrolment tokens, agent credentials, heartbeats and
//! offline marking, the work an agent claims, its job reports, and retirement.
//!
//! An agent reaches only its own rows: every query here is keyed by the agent's ID, and a job,
//! target or certificate of another agent is refused as `Forbidden`.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::{Duration, OffsetDateTime};

use certctl_api::{
    Agent, AgentDependencyCounts, AgentHeartbeat, AgentToken, CertificateVersion, Job, JobStatus, JobStatusReport,
    JobType, NotificationType, SeverityTier,
};

use crate::audit::{AuditEntry, append};
use crate::channels::{explicit_routes, route_certificate_event};
use crate::issuance::OPEN_STATES;
use crate::notifications::{NewNotification, enqueue_notifications};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Actor, Backend, NewAgent, Result, Store, StoreError, from_micros, new_id, opt_time, to_micros};

/// An enrolment token to store; the token itself is kept only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgentToken {
    pub name: String,
    pub group: Option<String>,
    pub token_hash: String,
    pub expires_at: OffsetDateTime,
}

/// Who an agent credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Deserialize)]
pub struct AgentIdentity {
    pub id: String,
    pub name: String,
    pub credential_hash: String,
    pub retired_at: Option<i64>,
}

impl AgentIdentity {
    pub fn is_retired(&self) -> bool {
        self.retired_at.is_some()
    }
}

/// One job handed to an agent, with what it needs to act on it. The target's configuration is
/// still sealed; the server opens it for this agent alone.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentWorkRow {
    pub job: Job,
    pub common_name: String,
    pub sans: Vec<String>,
    pub profile_id: Option<String>,
    pub target_type: Option<String>,
    pub target_sealed_config: Option<Vec<u8>>,
}

/// The outcome of a retirement request.
#[derive(Debug, Clone, PartialEq)]
pub enum Retirement {
    /// Retired now; `cascade` when targets and jobs went with it.
    Retired { retired_at: OffsetDateTime, cascade: bool, counts: AgentDependencyCounts },
    /// It was retired before; nothing changed.
    AlreadyRetired,
    /// Dependencies block it and `force` was not given.
    Blocked(AgentDependencyCounts),
}

#[derive(Debug, FromRow, Deserialize)]
struct TokenRow {
    id: String,
    name: String,
    agent_group: Option<String>,
    created_by: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    agent_id: Option<String>,
}

impl Keyed for TokenRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl TokenRow {
    fn into_api(self) -> AgentToken {
        AgentToken {
            id: self.id,
            name: self.name,
            group: self.agent_group,
            created_by: self.created_by,
            created_at: from_micros(self.created_at),
            expires_at: from_micros(self.expires_at),
            used_at: opt_time(self.used_at),
            agent_id: self.agent_id,
            token: None,
        }
    }
}

const TOKEN_COLUMNS: &str =
    "SELECT id, name, agent_group, created_by, created_at, expires_at, used_at, agent_id FROM agent_tokens";

fn agent_audit(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "agent", id, details)
}

fn forbidden(what: &str, id: &str, agent_id: &str) -> StoreError {
    StoreError::Forbidden(format!("{what} '{id}' does not belong to agent '{agent_id}'"))
}

async fn dependency_counts(conn: &mut Conn<'_>, agent_id: &str) -> Result<AgentDependencyCounts> {
    let mut q = Sql::new(
        "SELECT (SELECT COUNT(*) FROM deployment_targets WHERE agent_id = $1 AND retired_at IS NULL), \
         (SELECT COUNT(DISTINCT m.certificate_id) FROM certificate_target_mappings m JOIN deployment_targets t \
          ON t.id = m.target_id WHERE t.agent_id = $1 AND t.retired_at IS NULL), \
         (SELECT COUNT(*) FROM jobs WHERE agent_id = $1 AND status IN ",
    )
    .arg(agent_id);
    q.push(OPEN_STATES).push(")");
    let (targets, certificates, jobs): (i64, i64, i64) = q.fetch_one(conn).await?;
    Ok(AgentDependencyCounts { targets, certificates, jobs })
}

/// The outbox rows a finished deployment writes in the transaction that records it: a failure
/// goes to the channels the certificate's policy routes its warning tier to (the default
/// channel when it names none); a success only to channels the policy routes its informational
/// tier to explicitly, so a quiet policy stays quiet.
async fn deployment_alerts(
    tx: &mut crate::Tx,
    job: &Job,
    outcome: JobStatus,
    error: Option<&str>,
) -> Result<Vec<NewNotification>> {
    let target = job.target_id.clone().unwrap_or_default();
    let (kind, tier, channels, name, email) = if outcome == JobStatus::Failed {
        let Some(r) = route_certificate_event(tx, &job.certificate_id, SeverityTier::Warning).await? else {
            return Ok(Vec::new());
        };
        (NotificationType::DeploymentFailure, SeverityTier::Warning, r.channels, r.certificate_name, r.owner_email)
    } else {
        let row: Option<(String, Option<String>, String)> = Sql::new(
            "SELECT c.name, o.email, p.alert_channels FROM managed_certificates c \
             LEFT JOIN owners o ON o.id = c.owner_id JOIN renewal_policies p ON p.id = c.renewal_policy_id \
             WHERE c.id = $1",
        )
        .arg(&job.certificate_id)
        .fetch_optional(&mut tx.conn())
        .await?;
        let Some((name, email, routes)) = row else { return Ok(Vec::new()) };
        let Some(channels) = explicit_routes(&routes, SeverityTier::Informational)? else {
            return Ok(Vec::new());
        };
        (NotificationType::DeploymentSuccess, SeverityTier::Informational, channels, name, email.unwrap_or_default())
    };
    let (subject, message) = match error {
        Some(e) if outcome == JobStatus::Failed => (
            format!("Certificate {name} could not be deployed"),
            format!("Deployment of certificate {name} to target {target} failed: {e}"),
        ),
        _ => (format!("Certificate {name} deployed"), format!("Certificate {name} was deployed to target {target}.")),
    };
    let key = if outcome == JobStatus::Failed { "deployment-failure" } else { "deployment-success" };
    Ok(channels
        .into_iter()
        .map(|channel| NewNotification {
            notification_type: kind,
            recipient: email.clone(),
            certificate_id: Some(job.certificate_id.clone()),
            subject: subject.clone(),
            message: message.clone(),
            payload: json!({
                "certificate_name": name,
                "job_id": job.id,
                "target_id": target,
                "agent_id": job.agent_id,
                "error": error,
            }),
            severity: tier,
            dedup_key: Some(format!("{key}:{}:{}:{channel}", job.certificate_id, job.id)),
            channel,
        })
        .collect())
}

impl Store {
    pub async fn create_agent_token(
        &self,
        new: &NewAgentToken,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<AgentToken> {
        let id = new_id("atok");
        let mut tx = self.begin().await?;
        Sql::new(
            "INSERT INTO agent_tokens (id, name, agent_group, token_hash, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .arg(&id)
        .arg(&new.name)
        .arg(new.group.clone())
        .arg(&new.token_hash)
        .arg(&actor.name)
        .arg(to_micros(now))
        .arg(to_micros(new.expires_at))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"name": new.name, "group": new.group, "expires_at": to_micros(new.expires_at)});
        let entry = AuditEntry::new(actor.name.clone(), actor.kind, "agent_token_created", "agent_token", &id, details);
        append(&mut tx, &[entry], now).await?;
        let mut q = Sql::new(TOKEN_COLUMNS);
        q.push(" WHERE id = ").push_bind(id.as_str());
        let row: TokenRow = q.fetch_one(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok(row.into_api())
    }

    pub async fn list_agent_tokens(&self, paging: &Paging) -> Result<Listing<AgentToken>> {
        let mut c = self.reader().await?;
        let rows: Listing<TokenRow> = paging::list(
            &mut c.conn(),
            TOKEN_COLUMNS,
            "SELECT COUNT(*) FROM agent_tokens",
            |_| {},
            Order { key: CREATED, desc: false },
            paging,
        )
        .await?;
        rows.try_map(|r| Ok(r.into_api()))
    }

    /// Revokes an enrolment token; an agent that already enrolled with it keeps its credential.
    pub async fn delete_agent_token(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = Sql::new("DELETE FROM agent_tokens WHERE id = $1").arg(id).execute(&mut tx.conn()).await?;
        if n == 0 {
            return Err(StoreError::NotFound { resource: "agent token", id: id.to_owned() });
        }
        let entry =
            AuditEntry::new(actor.name.clone(), actor.kind, "agent_token_deleted", "agent_token", id, json!({}));
        append(&mut tx, &[entry], now).await?;
        tx.commit().await
    }

    /// Trades an unused, unexpired enrolment token for a new agent holding `new.credential_hash`.
    /// The token is spent in the same transaction, so two agents racing with one token cannot
    /// both enrol. `None` when the token is unknown, spent or expired (the caller cannot tell
    /// which, by design).
    pub async fn enroll_agent(&self, token_hash: &str, new: &NewAgent, now: OffsetDateTime) -> Result<Option<Agent>> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let spent: Option<(String, Option<String>)> = Sql::new(
            "UPDATE agent_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING id, agent_group",
        )
        .arg(token_hash)
        .arg(ts)
        .fetch_optional(&mut tx.conn())
        .await?;
        let Some((token_id, group)) = spent else {
            return Ok(None);
        };
        let id = new.id.clone().unwrap_or_else(|| new_id("agent"));
        crate::common::name_free(&mut tx.conn(), "agents", "agent", &new.name, None).await?;
        Sql::new(
            "INSERT INTO agents (id, name, hostname, status, last_heartbeat_at, registered_at, os, architecture, \
             ip_address, version, credential_hash) VALUES ($1, $2, $3, 'Online', $4, $4, $5, $6, $7, $8, $9)",
        )
        .arg(&id)
        .arg(&new.name)
        .arg(&new.hostname)
        .arg(ts)
        .arg(&new.os)
        .arg(&new.architecture)
        .arg(&new.ip_address)
        .arg(&new.version)
        .arg(new.credential_hash.clone())
        .execute(&mut tx.conn())
        .await?;
        Sql::new("UPDATE agent_tokens SET agent_id = $1 WHERE id = $2")
            .arg(&id)
            .arg(&token_id)
            .execute(&mut tx.conn())
            .await?;
        let actor = Actor { name: new.name.clone(), kind: certctl_api::ActorType::Agent };
        let details = json!({"token_id": token_id, "group": group, "hostname": new.hostname, "version": new.version});
        append(&mut tx, &[agent_audit(&actor, "agent_enrolled", &id, details)], now).await?;
        let agent = crate::agents::fetch(&mut tx.conn(), &id).await?;
        tx.commit().await?;
        Ok(Some(agent))
    }

    /// The agent a credential hash belongs to, retired or not.
    pub async fn agent_by_credential(&self, credential_hash: &str) -> Result<Option<AgentIdentity>> {
        let mut c = self.reader().await?;
        Sql::new("SELECT id, name, credential_hash, retired_at FROM agents WHERE credential_hash = $1")
            .arg(credential_hash)
            .fetch_optional(&mut c.conn())
            .await
    }

    /// Records a heartbeat: the host's facts, `Online`, and the time. A retired agent is a
    /// `Gone`.
    pub async fn record_heartbeat(&self, agent_id: &str, hb: &AgentHeartbeat, now: OffsetDateTime) -> Result<()> {
        // One statement, committed on its own: the heartbeat is the fleet's most frequent write.
        let n = Sql::new(
            "UPDATE agents SET status = 'Online', last_heartbeat_at = $2, version = $3, hostname = $4, os = $5, \
             architecture = $6, ip_address = $7 WHERE id = $1 AND retired_at IS NULL",
        )
        .arg(agent_id)
        .arg(to_micros(now))
        .arg(&hb.version)
        .arg(&hb.hostname)
        .arg(&hb.os)
        .arg(&hb.architecture)
        .arg(&hb.ip_address)
        .execute(&mut self.writer().await?.conn())
        .await?;
        if n == 0 {
            let agent = crate::agents::fetch(&mut self.reader().await?.conn(), agent_id).await?;
            if agent.retired_at.is_some() {
                return Err(StoreError::Gone(format!("agent '{agent_id}' is retired")));
            }
        }
        Ok(())
    }

    /// Records many agents' heartbeats with one statement; each gets its own answer, in order:
    /// `Ok`, `Gone` for a retired agent or `NotFound` for an unknown one. When an agent appears
    /// twice, its last heartbeat wins. An error of the statement itself fails the whole batch.
    pub async fn record_heartbeats(
        &self,
        beats: &[(String, AgentHeartbeat)],
        now: OffsetDateTime,
    ) -> Result<Vec<Result<()>>> {
        let mut last: std::collections::HashMap<&str, &AgentHeartbeat> = std::collections::HashMap::new();
        for (id, hb) in beats {
            last.insert(id, hb);
        }
        let mut q = Sql::new("WITH v (id, version, hostname, os, architecture, ip_address) AS (VALUES ");
        for (i, (id, hb)) in last.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.push_list([*id, &hb.version, &hb.hostname, &hb.os, &hb.architecture, &hb.ip_address]);
            q.push(")");
        }
        q.push(") UPDATE agents SET status = 'Online', last_heartbeat_at = ");
        q.push_bind(to_micros(now));
        q.push(
            ", version = v.version, hostname = v.hostname, os = v.os, architecture = v.architecture, \
             ip_address = v.ip_address FROM v WHERE agents.id = v.id AND agents.retired_at IS NULL RETURNING agents.id",
        );
        let updated: Vec<(String,)> = q.fetch_all(&mut self.writer().await?.conn()).await?;
        let updated: std::collections::HashSet<String> = updated.into_iter().map(|(id,)| id).collect();
        let mut answers = Vec::with_capacity(beats.len());
        for (id, _) in beats {
            answers.push(if updated.contains(id) {
                Ok(())
            } else {
                match crate::agents::fetch(&mut self.reader().await?.conn(), id).await {
                    Ok(agent) if agent.retired_at.is_some() => {
                        Err(StoreError::Gone(format!("agent '{id}' is retired")))
                    }
                    // Not updated, yet present and live: it was retired and restored between the
                    // statement and this read, which a retry settles.
                    Ok(_) => Err(StoreError::Conflict(format!("agent '{id}' changed during its heartbeat; retry"))),
                    Err(e) => Err(e),
                }
            });
        }
        Ok(answers)
    }

    /// Marks `Offline` every online agent whose last heartbeat is older than `silent_since`;
    /// returns their IDs.
    pub async fn mark_silent_agents_offline(
        &self,
        silent_since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let ids: Vec<(String,)> = Sql::new(
            "UPDATE agents SET status = 'Offline' WHERE status = 'Online' AND retired_at IS NULL \
             AND (last_heartbeat_at IS NULL OR last_heartbeat_at < $1) RETURNING id",
        )
        .arg(to_micros(silent_since))
        .fetch_all(&mut tx.conn())
        .await?;
        let ids: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
        let entries: Vec<AuditEntry> = ids
            .iter()
            .map(|id| {
                agent_audit(&Actor::system(), "agent_offline", id, json!({"silent_since": to_micros(silent_since)}))
            })
            .collect();
        append(&mut tx, &entries, now).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// The agent's work: claims up to `limit` due Deployment jobs of the agent (Pending ones, and
    /// Running ones whose claim lapsed while attempts remain; each claim counts an attempt and
    /// holds the job for `lease`), fails lapsed ones that used up their attempts, and lists the
    /// Issuance/Renewal jobs waiting for a CSR for certificates mapped to the agent's live
    /// targets. Retired agents get `Gone`.
    pub async fn agent_work(
        &self,
        agent_id: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<AgentWorkRow>> {
        let ts = to_micros(now);
        // Most polls find nothing to claim: answer those from a reader, without the write lock
        // (SQLite) or a row lock (PostgreSQL), so an idle fleet costs reads only.
        {
            let mut c = self.reader().await?;
            let probe = agent_poll_probe(&mut c.conn(), agent_id, ts).await?;
            if probe.retired {
                return Err(StoreError::Gone(format!("agent '{agent_id}' is retired")));
            }
            if !probe.due {
                if !probe.awaiting_csr {
                    return Ok(Vec::new());
                }
                let csr = awaiting_csr(&mut c.conn(), agent_id, limit).await?;
                return work_rows(&mut c.conn(), agent_id, &csr).await;
            }
        }
        let mut tx = self.begin().await?;
        if agent_poll_probe(&mut tx.conn(), agent_id, ts).await?.retired {
            return Err(StoreError::Gone(format!("agent '{agent_id}' is retired")));
        }
        let exhausted: Vec<(String,)> = Sql::new(
            "UPDATE jobs SET status = 'Failed', completed_at = $2, updated_at = $2, lease_until = NULL, \
             last_error = 'the agent did not report on the deployment within its claim, on every attempt' \
             WHERE agent_id = $1 AND type = 'Deployment' AND status = 'Running' AND lease_until < $2 \
             AND attempts >= max_attempts RETURNING id",
        )
        .arg(agent_id)
        .arg(ts)
        .fetch_all(&mut tx.conn())
        .await?;
        let mut q = Sql::new(
            "UPDATE jobs SET status = 'Running', attempts = attempts + 1, started_at = $2, lease_until = $3, \
             updated_at = $2 WHERE id IN (SELECT id FROM jobs WHERE agent_id = $1 AND type = 'Deployment' AND \
             ((status = 'Pending' AND scheduled_at <= $2) OR (status = 'Running' AND lease_until < $2)) \
             ORDER BY scheduled_at, id LIMIT $4",
        )
        .arg(agent_id)
        .arg(ts)
        .arg(to_micros(now + lease))
        .arg(limit);
        if tx.backend() == Backend::Postgres {
            q.push(" FOR UPDATE SKIP LOCKED");
        }
        q.push(") RETURNING id");
        let mut ids: Vec<(String,)> = q.fetch_all(&mut tx.conn()).await?;
        let claimed = ids.len();
        ids.extend(awaiting_csr(&mut tx.conn(), agent_id, limit).await?);
        let rows = work_rows(&mut tx.conn(), agent_id, &ids).await?;
        let actor = Actor::system();
        let mut audit: Vec<AuditEntry> = ids[..claimed]
            .iter()
            .map(|(id,)| {
                AuditEntry::new(
                    actor.name.clone(),
                    actor.kind,
                    "deployment_claimed",
                    "job",
                    id,
                    json!({"agent_id": agent_id}),
                )
            })
            .collect();
        audit.extend(exhausted.iter().map(|(id,)| {
            AuditEntry::new(
                actor.name.clone(),
                actor.kind,
                "deployment_lapsed",
                "job",
                id,
                json!({"agent_id": agent_id}),
            )
        }));
        append(&mut tx, &audit, now).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Records an agent's report on one of its jobs. `Running` renews the claim by `lease`;
    /// `Completed` and `Failed` end it (a completed deployment also stamps the certificate's
    /// `last_deployment_at`). Only a Running job of this agent takes a report: another agent's
    /// job is `Forbidden`, a job in another state a `Conflict`.
    pub async fn report_agent_job(
        &self,
        agent_id: &str,
        job_id: &str,
        report: &JobStatusReport,
        lease: Duration,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Job> {
        if !matches!(report.status, JobStatus::Running | JobStatus::Completed | JobStatus::Failed) {
            return Err(StoreError::Invalid {
                field: "status",
                message: format!("an agent reports Running, Completed or Failed, not {}", report.status),
            });
        }
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let job = crate::jobs::fetch(&mut tx.conn(), job_id).await?;
        if job.agent_id.as_deref() != Some(agent_id) {
            return Err(forbidden("job", job_id, agent_id));
        }
        if job.status != JobStatus::Running {
            return Err(StoreError::Conflict(format!("job '{job_id}' is {} and takes no report", job.status)));
        }
        let done = report.status != JobStatus::Running;
        let error = (report.status == JobStatus::Failed)
            .then(|| report.error.clone().unwrap_or_else(|| "the agent reported a failure without a reason".into()));
        let v = report.verification.as_ref();
        Sql::new(
            "UPDATE jobs SET status = $2, updated_at = $3, \
             lease_until = CASE WHEN $4 THEN NULL ELSE $5 END, \
             completed_at = CASE WHEN $4 THEN $3 ELSE completed_at END, \
             last_error = COALESCE($6, last_error), \
             verification_status = COALESCE($7, verification_status), \
             verified_at = CASE WHEN $7 IS NULL THEN verified_at ELSE $3 END, \
             verification_fingerprint = COALESCE($8, verification_fingerprint), \
             verification_error = COALESCE($9, verification_error) \
             WHERE id = $1 AND status = 'Running'",
        )
        .arg(job_id)
        .arg(report.status.as_str())
        .arg(ts)
        .arg(done)
        .arg(to_micros(now + lease))
        .arg(error.clone())
        .arg(v.map(|v| v.status.clone()))
        .arg(v.and_then(|v| v.fingerprint.clone()))
        .arg(v.and_then(|v| v.error.clone()))
        .execute(&mut tx.conn())
        .await?;
        if report.status == JobStatus::Completed && job.job_type == JobType::Deployment {
            Sql::new("UPDATE managed_certificates SET last_deployment_at = $2, updated_at = $2 WHERE id = $1")
                .arg(&job.certificate_id)
                .arg(ts)
                .execute(&mut tx.conn())
                .await?;
        }
        if done && job.job_type == JobType::Deployment {
            let alerts = deployment_alerts(&mut tx, &job, report.status, error.as_deref()).await?;
            enqueue_notifications(&mut tx, &alerts, now).await?;
        }
        let details = json!({
            "agent_id": agent_id,
            "status": report.status,
            "error": error,
            "verification": v.map(|v| &v.status),
            "certificate_id": job.certificate_id,
        });
        let entry = AuditEntry::new(actor.name.clone(), actor.kind, "job_status_reported", "job", job_id, details);
        append(&mut tx, &[entry], now).await?;
        let job = crate::jobs::fetch(&mut tx.conn(), job_id).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// The current version of a certificate the agent deploys: one mapped to a live target of
    /// the agent, or named by one of the agent's jobs. Another certificate is `Forbidden`.
    pub async fn agent_certificate(&self, agent_id: &str, certificate_id: &str) -> Result<CertificateVersion> {
        let mut c = self.reader().await?;
        let entitled: (i64, i64) = Sql::new(
            "SELECT (SELECT COUNT(*) FROM managed_certificates WHERE id = $2), \
             (SELECT COUNT(*) FROM certificate_target_mappings m JOIN deployment_targets t ON t.id = m.target_id \
              WHERE m.certificate_id = $2 AND t.agent_id = $1 AND t.retired_at IS NULL) \
             + (SELECT COUNT(*) FROM jobs WHERE certificate_id = $2 AND agent_id = $1)",
        )
        .arg(agent_id)
        .arg(certificate_id)
        .fetch_one(&mut c.conn())
        .await?;
        match entitled {
            (0, _) => return Err(StoreError::NotFound { resource: "certificate", id: certificate_id.to_owned() }),
            (_, 0) => return Err(forbidden("certificate", certificate_id, agent_id)),
            _ => {}
        }
        drop(c);
        self.current_version(certificate_id)
            .await?
            .map(|v| v.version)
            .ok_or_else(|| StoreError::Conflict(format!("certificate '{certificate_id}' has not been issued yet")))
    }

    /// What depends on an agent.
    pub async fn agent_dependencies(&self, agent_id: &str) -> Result<AgentDependencyCounts> {
        let mut c = self.reader().await?;
        crate::agents::fetch(&mut c.conn(), agent_id).await?;
        dependency_counts(&mut c.conn(), agent_id).await
    }

    /// Retires an agent. With dependencies and without `force` it is `Blocked`; with `force` the
    /// agent's live targets are retired and its open jobs cancelled in the same transaction.
    pub async fn retire_agent(
        &self,
        agent_id: &str,
        force: bool,
        reason: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Retirement> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let agent = crate::agents::fetch(&mut tx.conn(), agent_id).await?;
        if agent.retired_at.is_some() {
            return Ok(Retirement::AlreadyRetired);
        }
        let counts = dependency_counts(&mut tx.conn(), agent_id).await?;
        let blocked = counts != AgentDependencyCounts::default();
        if blocked && !force {
            return Ok(Retirement::Blocked(counts));
        }
        let n = Sql::new(
            "UPDATE agents SET retired_at = $2, retired_reason = $3, status = 'Offline' \
             WHERE id = $1 AND retired_at IS NULL",
        )
        .arg(agent_id)
        .arg(ts)
        .arg(reason)
        .execute(&mut tx.conn())
        .await?;
        if n == 0 {
            return Ok(Retirement::AlreadyRetired);
        }
        let mut cancelled = Vec::new();
        if blocked {
            Sql::new(
                "UPDATE deployment_targets SET retired_at = $2, retired_reason = $3, enabled = FALSE, updated_at = $2 \
                 WHERE agent_id = $1 AND retired_at IS NULL",
            )
            .arg(agent_id)
            .arg(ts)
            .arg(format!("agent '{agent_id}' retired: {reason}"))
            .execute(&mut tx.conn())
            .await?;
            let mut q = Sql::new(
                "UPDATE jobs SET status = 'Cancelled', completed_at = $2, updated_at = $2, lease_until = NULL, \
                 last_error = $3 WHERE agent_id = $1 AND status IN ",
            )
            .arg(agent_id)
            .arg(ts)
            .arg(format!("agent '{agent_id}' retired"));
            q.push(OPEN_STATES).push(" RETURNING id");
            let ids: Vec<(String,)> = q.fetch_all(&mut tx.conn()).await?;
            cancelled = ids.into_iter().map(|(id,)| id).collect();
        }
        let details = json!({"reason": reason, "force": force, "counts": counts, "cancelled_jobs": cancelled});
        append(&mut tx, &[agent_audit(actor, "agent_retired", agent_id, details)], now).await?;
        tx.commit().await?;
        Ok(Retirement::Retired { retired_at: from_micros(ts), cascade: blocked, counts })
    }
}

/// What a work poll has to do, read in one statement.
struct PollProbe {
    retired: bool,
    /// Deployment jobs to claim, or lapsed claims to settle.
    due: bool,
    /// Issuance/Renewal jobs waiting for a CSR for a certificate mapped to the agent's targets.
    awaiting_csr: bool,
}

/// The agent's [`PollProbe`]; an unknown agent is `NotFound`.
async fn agent_poll_probe(conn: &mut Conn<'_>, agent_id: &str, ts: i64) -> Result<PollProbe> {
    let probe: Option<(Option<i64>, i64, i64)> = Sql::new(
        "SELECT retired_at, \
         CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE agent_id = $1 AND type = 'Deployment' AND \
         ((status = 'Pending' AND scheduled_at <= $2) OR (status = 'Running' AND lease_until < $2))) \
         THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END, \
         CASE WHEN EXISTS (SELECT 1 FROM jobs j JOIN certificate_target_mappings m ON m.certificate_id = \
         j.certificate_id JOIN deployment_targets t ON t.id = m.target_id WHERE t.agent_id = $1 AND \
         t.retired_at IS NULL AND j.type IN ('Issuance', 'Renewal') AND j.status = 'AwaitingCSR') \
         THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END FROM agents WHERE id = $1",
    )
    .arg(agent_id)
    .arg(ts)
    .fetch_optional(conn)
    .await?;
    match probe {
        None => Err(StoreError::NotFound { resource: "agent", id: agent_id.to_owned() }),
        Some((retired, due, awaiting_csr)) => {
            Ok(PollProbe { retired: retired.is_some(), due: due != 0, awaiting_csr: awaiting_csr != 0 })
        }
    }
}

/// The Issuance/Renewal jobs waiting for a CSR for certificates mapped to the agent's live
/// targets, oldest first.
async fn awaiting_csr(conn: &mut Conn<'_>, agent_id: &str, limit: i64) -> Result<Vec<(String,)>> {
    Sql::new(
        "SELECT j.id FROM jobs j WHERE j.type IN ('Issuance', 'Renewal') AND j.status = 'AwaitingCSR' AND \
         EXISTS (SELECT 1 FROM certificate_target_mappings m JOIN deployment_targets t ON t.id = m.target_id \
         WHERE m.certificate_id = j.certificate_id AND t.agent_id = $1 AND t.retired_at IS NULL) \
         ORDER BY j.created_at, j.id LIMIT $2",
    )
    .arg(agent_id)
    .arg(limit)
    .fetch_all(conn)
    .await
}

/// Each job with what the agent needs to act on it: the certificate's names and profile, and
/// for a deployment the target's type and sealed configuration (only if the target is the
/// agent's).
async fn work_rows(conn: &mut Conn<'_>, agent_id: &str, ids: &[(String,)]) -> Result<Vec<AgentWorkRow>> {
    let mut rows = Vec::with_capacity(ids.len());
    for (id,) in ids {
        let job = crate::jobs::fetch(conn, id).await?;
        let (common_name, sans, profile_id): (String, String, Option<String>) =
            Sql::new("SELECT common_name, sans, certificate_profile_id FROM managed_certificates WHERE id = $1")
                .arg(&job.certificate_id)
                .fetch_one(conn)
                .await?;
        let (target_type, sealed) = match (&job.job_type, &job.target_id) {
            (JobType::Deployment, Some(target_id)) => {
                let t: Option<(String, Option<Vec<u8>>)> =
                    Sql::new("SELECT type, encrypted_config FROM deployment_targets WHERE id = $1 AND agent_id = $2")
                        .arg(target_id)
                        .arg(agent_id)
                        .fetch_optional(conn)
                        .await?;
                t.map_or((None, None), |(ty, sealed)| (Some(ty), sealed))
            }
            _ => (None, None),
        };
        rows.push(AgentWorkRow {
            job,
            common_name,
            sans: crate::parse_json("managed_certificates.sans", &sans)?,
            profile_id,
            target_type,
            target_sealed_config: sealed,
        });
    }
    Ok(rows)
}
