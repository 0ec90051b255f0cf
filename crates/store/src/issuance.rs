//! The issuance pipeline's state: renewal requests, job claiming and completion, retries, the
//! renewal scan and certificate versions with the CA that signed them.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::{Duration, OffsetDateTime};

use certctl_api::{CertificateVersion, Job, JobStatus, JobType, NotificationType, SeverityTier};

use crate::audit::{AuditEntry, append};
use crate::channels::{Routing, explicit_routes, route_certificate_event};
use crate::common::{Actor, must_exist};
use crate::notifications::{NewNotification, enqueue_notifications};
use crate::sql::{Conn, Sql};
use crate::{Backend, Result, Store, StoreError, from_micros, new_id, to_micros};

/// Job states in which an issuance is still under way.
pub(crate) const OPEN_STATES: &str = "('Pending', 'AwaitingCSR', 'AwaitingApproval', 'Running')";
/// How many certificates one scan statement moves; keeps every statement bounded.
const SCAN_BATCH: i64 = 5_000;
/// Rows per multi-row INSERT.
const ROWS_PER_INSERT: usize = 200;
/// Version rows per INSERT (13 values each, under every backend's bind limit).
const VERSIONS_PER_INSERT: usize = 64;

/// A manual renewal (or first issuance) request.
#[derive(Debug, Clone)]
pub struct RenewalRequest {
    pub certificate_id: String,
    pub job_type: JobType,
    /// `Pending`, or `AwaitingApproval` when the profile asks for a second person.
    pub status: JobStatus,
    pub max_attempts: i64,
    /// Replace an issuance already under way instead of refusing.
    pub force: bool,
}

/// An issued certificate to record as the current version.
#[derive(Debug, Clone)]
pub struct IssuedVersion {
    /// Chosen by the caller because a sealed key is bound to it.
    pub id: String,
    pub certificate_id: String,
    pub serial_number: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub fingerprint_sha256: String,
    pub pem_chain: String,
    pub csr_pem: Option<String>,
    pub key_algorithm: String,
    pub key_size: i64,
    pub issuer_ca_id: Option<String>,
    pub sealed_private_key: Option<Vec<u8>>,
}

/// One issuance to record with `complete_issuances`.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The issuance job it completes, when it came from one.
    pub job_id: Option<String>,
    pub version: IssuedVersion,
    pub actor: Actor,
}

/// The current version of a certificate with what the read API never shows.
#[derive(Debug, Clone)]
pub struct VersionSecrets {
    pub version: CertificateVersion,
    pub issuer_ca_id: Option<String>,
    pub sealed_private_key: Option<Vec<u8>>,
}

/// What a completed issuance created.
#[derive(Debug, Clone)]
pub struct Completion {
    pub version: CertificateVersion,
    /// One Deployment job per mapped, live target.
    pub deployment_job_ids: Vec<String>,
}

/// The result of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The job waits and runs again at this time.
    RetryAt(OffsetDateTime),
    /// Attempts are exhausted: the job and the certificate are `Failed`.
    Exhausted,
}

/// What one renewal scan changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub expired: Vec<String>,
    pub expiring: Vec<String>,
    /// (job ID, certificate ID) of every renewal job created.
    pub jobs_created: Vec<(String, String)>,
}

#[derive(Debug, FromRow, Deserialize)]
struct VersionRow {
    id: String,
    certificate_id: String,
    serial_number: String,
    not_before: i64,
    not_after: i64,
    fingerprint_sha256: String,
    pem_chain: String,
    csr_pem: Option<String>,
    key_algorithm: String,
    key_size: i64,
    created_at: i64,
    issuer_ca_id: Option<String>,
    sealed_private_key: Option<Vec<u8>>,
}

impl VersionRow {
    fn new(v: &IssuedVersion, created_at: i64) -> VersionRow {
        VersionRow {
            id: v.id.clone(),
            certificate_id: v.certificate_id.clone(),
            serial_number: v.serial_number.clone(),
            not_before: to_micros(v.not_before),
            not_after: to_micros(v.not_after),
            fingerprint_sha256: v.fingerprint_sha256.clone(),
            pem_chain: v.pem_chain.clone(),
            csr_pem: v.csr_pem.clone(),
            key_algorithm: v.key_algorithm.clone(),
            key_size: v.key_size,
            created_at,
            issuer_ca_id: v.issuer_ca_id.clone(),
            sealed_private_key: v.sealed_private_key.clone(),
        }
    }

    fn into_secrets(self) -> VersionSecrets {
        VersionSecrets {
            version: CertificateVersion {
                id: self.id,
                certificate_id: self.certificate_id,
                serial_number: self.serial_number,
                not_before: from_micros(self.not_before),
                not_after: from_micros(self.not_after),
                fingerprint_sha256: self.fingerprint_sha256,
                pem_chain: self.pem_chain,
                csr_pem: self.csr_pem,
                key_algorithm: self.key_algorithm,
                key_size: self.key_size,
                created_at: from_micros(self.created_at),
            },
            issuer_ca_id: self.issuer_ca_id,
            sealed_private_key: self.sealed_private_key,
        }
    }
}

const VERSION_COLUMNS: &str = "SELECT id, certificate_id, serial_number, not_before, not_after, fingerprint_sha256, \
     pem_chain, csr_pem, key_algorithm, key_size, created_at, issuer_ca_id, sealed_private_key FROM certificate_versions";

/// Cancels every unfinished job of a certificate, Running ones included (a replica still
/// working on one finds it cancelled when it tries to complete). Returns the cancelled IDs.
pub(crate) async fn cancel_open_jobs(
    tx: &mut crate::Tx,
    certificate_id: &str,
    why: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>> {
    let ts = to_micros(now);
    let mut q = Sql::new(
        "UPDATE jobs SET status = 'Cancelled', completed_at = $2, updated_at = $2, lease_until = NULL, last_error = $3 \
         WHERE certificate_id = $1 AND status IN ",
    )
    .arg(certificate_id)
    .arg(ts)
    .arg(why);
    q.push(OPEN_STATES).push(" RETURNING id");
    let ids: Vec<(String,)> = q.fetch_all(&mut tx.conn()).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// What a batch of completions needs to know about each certificate.
struct CertFacts {
    status: String,
    name: String,
    email: Option<String>,
    /// The renewal policy's `alert_channels`.
    routes: Option<String>,
}

/// RenewalSuccess alerts for a recorded issuance: only to the channels the certificate's policy
/// routes its informational tier to (no default channel, so a quiet policy stays quiet).
fn renewal_success(
    v: &IssuedVersion,
    name: &str,
    owner_email: Option<&str>,
    alert_channels: &str,
) -> Result<Vec<NewNotification>> {
    let Some(channels) = explicit_routes(alert_channels, SeverityTier::Informational)? else {
        return Ok(Vec::new());
    };
    let not_after = v.not_after.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    Ok(channels
        .into_iter()
        .map(|channel| NewNotification {
            notification_type: NotificationType::RenewalSuccess,
            recipient: owner_email.unwrap_or_default().to_owned(),
            certificate_id: Some(v.certificate_id.clone()),
            subject: format!("Certificate {name} renewed"),
            message: format!("Certificate {name} was issued a new version, valid until {not_after}."),
            payload: json!({
                "certificate_name": name,
                "version_id": v.id,
                "serial_number": v.serial_number,
                "not_after": not_after,
            }),
            severity: SeverityTier::Informational,
            dedup_key: Some(format!("renewal-success:{}:{}:{channel}", v.certificate_id, v.id)),
            channel,
        })
        .collect())
}

/// RenewalFailure alerts once a renewal has used up its attempts.
fn renewal_failure(job: &Job, job_id: &str, error: &str, routing: &Routing) -> Vec<NewNotification> {
    let name = &routing.certificate_name;
    routing
        .channels
        .iter()
        .map(|channel| NewNotification {
            notification_type: NotificationType::RenewalFailure,
            channel: channel.clone(),
            recipient: routing.owner_email.clone(),
            certificate_id: Some(job.certificate_id.clone()),
            subject: format!("Certificate {name} could not be renewed"),
            message: format!("Renewal of certificate {name} failed after {} attempts: {error}", job.attempts),
            payload: json!({
                "certificate_name": name,
                "job_id": job_id,
                "attempts": job.attempts,
                "error": error,
            }),
            severity: SeverityTier::Warning,
            dedup_key: Some(format!("renewal-failure:{}:{job_id}:{channel}", job.certificate_id)),
        })
        .collect()
}

fn cert_audit(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "certificate", id, details)
}

fn job_audit(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "job", id, details)
}

async fn job_in(conn: &mut Conn<'_>, id: &str) -> Result<Job> {
    crate::jobs::fetch(conn, id).await
}

impl Store {
    /// Opens an issuance for a certificate: a job in `req.status` and the certificate in
    /// `RenewalInProgress`. Archived and revoked certificates are a `Conflict`, and so is an
    /// issuance already under way unless `force` replaces it.
    pub async fn request_renewal(&self, req: &RenewalRequest, actor: &Actor, now: OffsetDateTime) -> Result<Job> {
        let mut tx = self.begin().await?;
        let status: Option<(String,)> = Sql::new("SELECT status FROM managed_certificates WHERE id = $1")
            .arg(&req.certificate_id)
            .fetch_optional(&mut tx.conn())
            .await?;
        let Some((status,)) = status else {
            return Err(StoreError::NotFound { resource: "certificate", id: req.certificate_id.clone() });
        };
        if status == "Archived" || status == "Revoked" {
            return Err(StoreError::Conflict(format!(
                "certificate '{}' is {status} and cannot be renewed",
                req.certificate_id
            )));
        }
        let ts = to_micros(now);
        let mut open = Sql::default();
        open.push("SELECT id FROM jobs WHERE certificate_id = ")
            .push_bind(req.certificate_id.as_str())
            .push(" AND type IN ('Issuance', 'Renewal') AND status IN ")
            .push(OPEN_STATES);
        let open: Vec<(String,)> = open.fetch_all(&mut tx.conn()).await?;
        if !open.is_empty() {
            if !req.force {
                return Err(StoreError::Conflict(format!(
                    "certificate '{}' already has an issuance in progress (job '{}'); pass force to replace it",
                    req.certificate_id, open[0].0
                )));
            }
            for (job_id,) in &open {
                Sql::new(
                    "UPDATE jobs SET status = 'Cancelled', completed_at = $2, updated_at = $2, lease_until = NULL, \
                     last_error = 'replaced by a forced renewal' WHERE id = $1",
                )
                .arg(job_id)
                .arg(ts)
                .execute(&mut tx.conn())
                .await?;
            }
        }
        let id = new_id("job");
        Sql::new(
            "INSERT INTO jobs (id, type, certificate_id, status, max_attempts, scheduled_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
        )
        .arg(&id)
        .arg(req.job_type.as_str())
        .arg(&req.certificate_id)
        .arg(req.status.as_str())
        .arg(req.max_attempts.max(1))
        .arg(ts)
        .execute(&mut tx.conn())
        .await
        // The partial unique index catches a concurrent request that passed the check above.
        .map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "certificate '{}' already has an issuance in progress",
                req.certificate_id
            )),
            other => other,
        })?;
        Sql::new("UPDATE managed_certificates SET status = 'RenewalInProgress', updated_at = $2 WHERE id = $1")
            .arg(&req.certificate_id)
            .arg(ts)
            .execute(&mut tx.conn())
            .await?;
        let details = json!({
            "job_id": id,
            "type": req.job_type,
            "status": req.status,
            "previous_status": status,
            "replaced_jobs": open.iter().map(|(j,)| j).collect::<Vec<_>>(),
        });
        append(&mut tx, &[cert_audit(actor, "renewal_requested", &req.certificate_id, details)], now).await?;
        let job = job_in(&mut tx.conn(), &id).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Claims up to `limit` due Issuance/Renewal jobs for this replica: Pending jobs whose time
    /// has come, and Running jobs whose lease ran out (their replica died). Each claim counts an
    /// attempt. On PostgreSQL, `SKIP LOCKED` keeps replicas from claiming the same job.
    pub async fn claim_issuance_jobs(&self, now: OffsetDateTime, lease: Duration, limit: i64) -> Result<Vec<Job>> {
        let mut tx = self.begin().await?;
        let ts = to_micros(now);
        let mut q = Sql::new(
            "UPDATE jobs SET status = 'Running', attempts = attempts + 1, started_at = $1, lease_until = $2, \
             updated_at = $1 WHERE id IN (SELECT id FROM jobs WHERE type IN ('Issuance', 'Renewal') AND \
             ((status = 'Pending' AND scheduled_at <= $1) OR (status = 'Running' AND lease_until < $1)) \
             ORDER BY scheduled_at, id LIMIT $3",
        )
        .arg(ts)
        .arg(to_micros(now + lease))
        .arg(limit);
        if tx.backend() == Backend::Postgres {
            q.push(" FOR UPDATE SKIP LOCKED");
        }
        q.push(") RETURNING id");
        let ids: Vec<(String,)> = q.fetch_all(&mut tx.conn()).await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for (id,) in &ids {
            jobs.push(job_in(&mut tx.conn(), id).await?);
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// Moves a job from one state to another, failing with `Conflict` when it is no longer in
    /// `from` (another replica or request got there first).
    pub async fn transition_job(
        &self,
        id: &str,
        from: JobStatus,
        to: JobStatus,
        lease_until: Option<OffsetDateTime>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Job> {
        let mut tx = self.begin().await?;
        let ts = to_micros(now);
        let changed = Sql::new(
            "UPDATE jobs SET status = $3, lease_until = $4, updated_at = $5, \
             started_at = CASE WHEN $3 = 'Running' THEN $5 ELSE started_at END WHERE id = $1 AND status = $2",
        )
        .arg(id)
        .arg(from.as_str())
        .arg(to.as_str())
        .arg(lease_until.map(to_micros))
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        if changed == 0 {
            let job = job_in(&mut tx.conn(), id).await?;
            return Err(StoreError::Conflict(format!("job '{id}' is {} and not {from}", job.status)));
        }
        let job = job_in(&mut tx.conn(), id).await?;
        let details = json!({"from": from, "to": to, "certificate_id": job.certificate_id});
        append(&mut tx, &[job_audit(actor, "job_status_changed", id, details)], now).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// The oldest issuance job of a certificate waiting for a CSR.
    pub async fn awaiting_csr_job(&self, certificate_id: &str) -> Result<Option<Job>> {
        let mut c = self.reader().await?;
        let id: Option<(String,)> = Sql::new(
            "SELECT id FROM jobs WHERE certificate_id = $1 AND status = 'AwaitingCSR' ORDER BY created_at, id LIMIT 1",
        )
        .arg(certificate_id)
        .fetch_optional(&mut c.conn())
        .await?;
        match id {
            Some((id,)) => Ok(Some(job_in(&mut c.conn(), &id).await?)),
            None => Ok(None),
        }
    }

    /// Records an issued certificate as the current version, makes the certificate Active,
    /// completes `job_id` (when the issuance came from a job) and creates one Deployment job
    /// per mapped live target, all in one transaction.
    pub async fn complete_issuance(
        &self,
        job_id: Option<&str>,
        v: &IssuedVersion,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Completion> {
        let request = CompletionRequest { job_id: job_id.map(str::to_owned), version: v.clone(), actor: actor.clone() };
        self.complete_issuances(std::slice::from_ref(&request), now).await.pop().expect("one result per request")
    }

    /// Records a batch of issuances in one transaction (group commit): each request gets the
    /// result `complete_issuance` would give it alone. A request refused on its own terms (an
    /// unknown, archived or revoked certificate, a job no longer running) is answered without
    /// touching the others; when the batch fails as a whole (a constraint violated by one
    /// request), every request is retried in a transaction of its own so the error lands on the
    /// request that caused it.
    pub async fn complete_issuances(
        &self,
        requests: &[CompletionRequest],
        now: OffsetDateTime,
    ) -> Vec<Result<Completion>> {
        if requests.len() > 1
            && let Ok(results) = self.complete_batch(requests, now).await
        {
            return results;
        }
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let result = match self.complete_batch(std::slice::from_ref(request), now).await {
                Ok(mut one) => one.pop().expect("one result per request"),
                Err(e) => Err(e),
            };
            results.push(result);
        }
        results
    }

    async fn complete_batch(
        &self,
        requests: &[CompletionRequest],
        now: OffsetDateTime,
    ) -> Result<Vec<Result<Completion>>> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;

        let mut q = Sql::new(
            "SELECT c.id, c.status, c.name, o.email, p.alert_channels FROM managed_certificates c \
             LEFT JOIN owners o ON o.id = c.owner_id LEFT JOIN renewal_policies p ON p.id = c.renewal_policy_id \
             WHERE c.id IN (",
        );
        q.push_list(requests.iter().map(|r| r.version.certificate_id.as_str())).push(")");
        let certs: HashMap<String, CertFacts> = q
            .fetch_all::<(String, String, String, Option<String>, Option<String>)>(&mut tx.conn())
            .await?
            .into_iter()
            .map(|(id, status, name, email, routes)| (id, CertFacts { status, name, email, routes }))
            .collect();

        // Requests refused on their own terms get their error here; the rest are recorded.
        let mut results: Vec<Option<Result<Completion>>> = (0..requests.len()).map(|_| None).collect();
        let mut accepted = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            let cert_id = &r.version.certificate_id;
            match certs.get(cert_id).map(|c| c.status.as_str()) {
                None => {
                    results[i] = Some(Err(StoreError::NotFound { resource: "certificate", id: cert_id.clone() }));
                    continue;
                }
                // A revocation or archival that landed while the certificate was being issued
                // wins: the new certificate is not recorded and the certificate stays as the
                // operator left it.
                Some(status @ ("Archived" | "Revoked")) => {
                    results[i] = Some(Err(StoreError::Conflict(format!(
                        "certificate '{cert_id}' was {} during issuance; the issued certificate is discarded",
                        status.to_ascii_lowercase()
                    ))));
                    continue;
                }
                Some(_) => {}
            }
            if let Some(job_id) = &r.job_id {
                let changed = Sql::new(
                    "UPDATE jobs SET status = 'Completed', completed_at = $2, updated_at = $2, lease_until = NULL, \
                     last_error = NULL WHERE id = $1 AND status = 'Running' AND certificate_id = $3",
                )
                .arg(job_id)
                .arg(ts)
                .arg(cert_id)
                .execute(&mut tx.conn())
                .await?;
                if changed == 0 {
                    let job = job_in(&mut tx.conn(), job_id).await?;
                    results[i] = Some(Err(StoreError::Conflict(format!(
                        "job '{job_id}' is {} for certificate '{}' and cannot complete an issuance of '{cert_id}'",
                        job.status, job.certificate_id
                    ))));
                    continue;
                }
            }
            accepted.push(i);
        }

        if !accepted.is_empty() {
            let rows: Vec<VersionRow> = accepted.iter().map(|&i| VersionRow::new(&requests[i].version, ts)).collect();
            for chunk in rows.chunks(VERSIONS_PER_INSERT) {
                let mut q = Sql::new(
                    "INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before, not_after, \
                     fingerprint_sha256, pem_chain, csr_pem, key_algorithm, key_size, created_at, issuer_ca_id, \
                     sealed_private_key) VALUES ",
                );
                for (n, v) in chunk.iter().enumerate() {
                    q.push(if n == 0 { "(" } else { ", (" });
                    q.push_bind(v.id.as_str()).push(", ").push_bind(v.certificate_id.as_str());
                    q.push(", ").push_bind(v.serial_number.as_str()).push(", ").push_bind(v.not_before);
                    q.push(", ").push_bind(v.not_after).push(", ").push_bind(v.fingerprint_sha256.as_str());
                    q.push(", ").push_bind(v.pem_chain.as_str()).push(", ").push_bind(v.csr_pem.clone());
                    q.push(", ").push_bind(v.key_algorithm.as_str()).push(", ").push_bind(v.key_size);
                    q.push(", ").push_bind(ts).push(", ").push_bind(v.issuer_ca_id.clone());
                    q.push(", ").push_bind(v.sealed_private_key.clone()).push(")");
                }
                q.execute(&mut tx.conn()).await?;
            }

            // One row per certificate: the last issuance of the batch is its current version.
            let mut expiry: Vec<(&str, i64)> = Vec::with_capacity(accepted.len());
            for &i in &accepted {
                let v = &requests[i].version;
                match expiry.iter_mut().find(|(id, _)| *id == v.certificate_id) {
                    Some(slot) => slot.1 = to_micros(v.not_after),
                    None => expiry.push((&v.certificate_id, to_micros(v.not_after))),
                }
            }
            for chunk in expiry.chunks(VERSIONS_PER_INSERT) {
                let mut q = Sql::new("WITH v (cid, exp) AS (VALUES ");
                for (n, (id, exp)) in chunk.iter().enumerate() {
                    q.push(if n == 0 { "(" } else { ", (" });
                    q.push_bind(*id).push(", ").push_bind(*exp).push(")");
                }
                q.push(") UPDATE managed_certificates SET status = 'Active', expires_at = v.exp, last_renewal_at = ");
                q.push_bind(ts).push(", updated_at = ").push_bind(ts);
                q.push(", revoked_at = NULL, revocation_reason = NULL FROM v WHERE managed_certificates.id = v.cid");
                q.execute(&mut tx.conn()).await?;
            }

            let mut q = Sql::new(
                "SELECT m.certificate_id, m.target_id, t.agent_id FROM certificate_target_mappings m \
                 JOIN deployment_targets t ON t.id = m.target_id WHERE t.retired_at IS NULL AND t.enabled \
                 AND m.certificate_id IN (",
            );
            q.push_list(expiry.iter().map(|(id, _)| *id)).push(")");
            q.push(" ORDER BY m.certificate_id, m.target_id");
            let mappings: Vec<(String, String, String)> = q.fetch_all(&mut tx.conn()).await?;

            let mut audit = Vec::with_capacity(accepted.len());
            let mut deployments: Vec<(String, &str, &str, &str)> = Vec::new();
            let mut renewed = Vec::new();
            for (&i, row) in accepted.iter().zip(rows) {
                let r = &requests[i];
                let v = &r.version;
                audit.push(cert_audit(
                    &r.actor,
                    "certificate_issued",
                    &v.certificate_id,
                    json!({
                        "version_id": v.id,
                        "job_id": r.job_id,
                        "serial_number": v.serial_number,
                        "issuer_ca_id": v.issuer_ca_id,
                        "not_after": v.not_after.unix_timestamp(),
                        "fingerprint_sha256": v.fingerprint_sha256,
                        "key_algorithm": v.key_algorithm,
                    }),
                ));
                let mut deployment_job_ids = Vec::new();
                for (_, target_id, agent_id) in mappings.iter().filter(|(c, _, _)| *c == v.certificate_id) {
                    let id = new_id("job");
                    audit.push(job_audit(
                        &r.actor,
                        "deployment_job_created",
                        &id,
                        json!({"certificate_id": v.certificate_id, "target_id": target_id, "agent_id": agent_id}),
                    ));
                    deployment_job_ids.push(id.clone());
                    deployments.push((id, &v.certificate_id, target_id, agent_id));
                }
                results[i] = Some(Ok(Completion { version: row.into_secrets().version, deployment_job_ids }));
                if let Some(CertFacts { name, email, routes: Some(routes), .. }) = certs.get(&v.certificate_id) {
                    renewed.extend(renewal_success(v, name, email.as_deref(), routes)?);
                }
            }
            for chunk in deployments.chunks(ROWS_PER_INSERT) {
                let mut q = Sql::new(
                    "INSERT INTO jobs (id, type, certificate_id, target_id, agent_id, status, scheduled_at, created_at, \
                     updated_at) VALUES ",
                );
                for (n, (id, cert_id, target_id, agent_id)) in chunk.iter().enumerate() {
                    q.push(if n == 0 { "(" } else { ", (" });
                    q.push_bind(id.as_str()).push(", 'Deployment', ").push_bind(*cert_id);
                    q.push(", ").push_bind(*target_id).push(", ").push_bind(*agent_id);
                    q.push(", 'Pending', ").push_bind(ts).push(", ").push_bind(ts).push(", ").push_bind(ts).push(")");
                }
                q.execute(&mut tx.conn()).await?;
            }
            append(&mut tx, &audit, now).await?;
            enqueue_notifications(&mut tx, &renewed, now).await?;
        }
        tx.commit().await?;
        Ok(results.into_iter().map(|r| r.expect("every request answered")).collect())
    }

    /// Records a failed attempt of an issuance job. With `retry_at` the job waits for another
    /// attempt; without it the job and its certificate end `Failed`.
    pub async fn fail_issuance_attempt(
        &self,
        job_id: &str,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<AttemptOutcome> {
        let mut tx = self.begin().await?;
        let job = job_in(&mut tx.conn(), job_id).await?;
        if job.status.is_terminal() {
            return Err(StoreError::Conflict(format!("job '{job_id}' is already {}", job.status)));
        }
        let ts = to_micros(now);
        let error: String = error.chars().take(2000).collect();
        let outcome = match retry_at {
            Some(at) => {
                Sql::new(
                    "UPDATE jobs SET status = 'Pending', scheduled_at = $2, last_error = $3, lease_until = NULL, \
                     updated_at = $4 WHERE id = $1",
                )
                .arg(job_id)
                .arg(to_micros(at))
                .arg(&error)
                .arg(ts)
                .execute(&mut tx.conn())
                .await?;
                let details = json!({
                    "certificate_id": job.certificate_id,
                    "attempts": job.attempts,
                    "max_attempts": job.max_attempts,
                    "error": error,
                    "retry_at": at.unix_timestamp(),
                });
                append(&mut tx, &[job_audit(actor, "job_retry_scheduled", job_id, details)], now).await?;
                AttemptOutcome::RetryAt(at)
            }
            None => {
                Sql::new(
                    "UPDATE jobs SET status = 'Failed', completed_at = $2, last_error = $3, lease_until = NULL, \
                     updated_at = $2 WHERE id = $1",
                )
                .arg(job_id)
                .arg(ts)
                .arg(&error)
                .execute(&mut tx.conn())
                .await?;
                Sql::new(
                    "UPDATE managed_certificates SET status = 'Failed', updated_at = $2 WHERE id = $1 \
                     AND status NOT IN ('Revoked', 'Archived')",
                )
                .arg(&job.certificate_id)
                .arg(ts)
                .execute(&mut tx.conn())
                .await?;
                let details = json!({
                    "job_id": job_id,
                    "attempts": job.attempts,
                    "max_attempts": job.max_attempts,
                    "error": error,
                });
                append(&mut tx, &[cert_audit(actor, "renewal_failed", &job.certificate_id, details)], now).await?;
                if let Some(routing) =
                    route_certificate_event(&mut tx, &job.certificate_id, SeverityTier::Warning).await?
                {
                    let alerts = renewal_failure(&job, job_id, &error, &routing);
                    enqueue_notifications(&mut tx, &alerts, now).await?;
                }
                AttemptOutcome::Exhausted
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Jobs stuck waiting for a CSR or an approval longer than allowed.
    pub async fn overdue_jobs(
        &self,
        now: OffsetDateTime,
        csr_timeout: Duration,
        approval_timeout: Duration,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let mut c = self.reader().await?;
        let ids: Vec<(String,)> = Sql::new(
            "SELECT id FROM jobs WHERE (status = 'AwaitingCSR' AND updated_at < $1) \
             OR (status = 'AwaitingApproval' AND created_at < $2) ORDER BY updated_at, id LIMIT $3",
        )
        .arg(to_micros(now - csr_timeout))
        .arg(to_micros(now - approval_timeout))
        .arg(limit)
        .fetch_all(&mut c.conn())
        .await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for (id,) in &ids {
            jobs.push(job_in(&mut c.conn(), id).await?);
        }
        Ok(jobs)
    }

    /// The current version of a certificate with its CA and sealed key.
    pub async fn current_version(&self, certificate_id: &str) -> Result<Option<VersionSecrets>> {
        let mut c = self.reader().await?;
        must_exist(&mut c.conn(), "managed_certificates", "certificate", certificate_id).await?;
        let mut q = Sql::new(VERSION_COLUMNS);
        q.push(" WHERE certificate_id = ").push_bind(certificate_id).push(" ORDER BY created_at DESC, id DESC LIMIT 1");
        let row: Option<VersionRow> = q.fetch_optional(&mut c.conn()).await?;
        Ok(row.map(VersionRow::into_secrets))
    }

    /// One pass of the renewal scheduler: certificates past expiry become `Expired`, those inside
    /// their policy's renewal window become `Expiring`, and every certificate of a local-CA
    /// or ACME issuer whose policy auto-renews and that is due (or never issued) gets a Renewal (or
    /// Issuance) job unless one is already open; so does an ACME-issued one whose CA's suggested
    /// renewal moment (RFC 9773) has passed. Each statement touches at most one batch;
    /// a scan with more due work leaves the rest for the next pass.
    pub async fn renewal_scan(&self, now: OffsetDateTime, actor: &Actor) -> Result<ScanReport> {
        let ts = to_micros(now);
        let mut report = ScanReport::default();
        let mut tx = self.begin().await?;
        let widest = Sql::new("SELECT COALESCE(MAX(renewal_window_days), CAST(0 AS BIGINT)) FROM renewal_policies")
            .fetch_i64(&mut tx.conn())
            .await?;
        let horizon = ts.saturating_add(widest.clamp(0, 36_500).saturating_mul(86_400_000_000));
        let expired: Vec<(String,)> = Sql::new(
            "UPDATE managed_certificates SET status = 'Expired', updated_at = $1 WHERE id IN (SELECT id FROM \
             managed_certificates WHERE status IN ('Active', 'Expiring') AND expires_at <= $1 LIMIT $2) RETURNING id",
        )
        .arg(ts)
        .arg(SCAN_BATCH)
        .fetch_all(&mut tx.conn())
        .await?;
        let expiring: Vec<(String,)> = Sql::new(
            "UPDATE managed_certificates SET status = 'Expiring', updated_at = $1 WHERE id IN (SELECT c.id FROM \
             managed_certificates c JOIN renewal_policies p ON p.id = c.renewal_policy_id WHERE c.expires_at <= $3 \
             AND c.status = 'Active' AND c.expires_at > $1 AND c.expires_at <= $1 + p.renewal_window_days * 86400000000 \
             LIMIT $2) RETURNING id",
        )
        .arg(ts)
        .arg(SCAN_BATCH)
        .arg(horizon)
        .fetch_all(&mut tx.conn())
        .await?;
        // Two indexed halves instead of one OR: never-issued certificates by status, and issued
        // ones by expiry up to the widest renewal window (then each policy's own window).
        let mut due = Sql::new(
            "SELECT c.id, c.status, p.max_retries, COALESCE(pr.requires_approval, FALSE), \
             COALESCE(c.expires_at, 0) AS sort_key FROM managed_certificates c \
             JOIN renewal_policies p ON p.id = c.renewal_policy_id JOIN issuers i ON i.id = c.issuer_id \
             LEFT JOIN certificate_profiles pr ON pr.id = c.certificate_profile_id \
             WHERE c.status = 'Pending' AND p.auto_renew AND i.enabled AND i.type IN ('GenericCA', 'ACME') \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.certificate_id = c.id AND j.type IN ('Issuance', 'Renewal') \
             AND j.status IN ",
        );
        due.push(OPEN_STATES).push(
            ") UNION ALL SELECT c.id, c.status, p.max_retries, COALESCE(pr.requires_approval, FALSE), c.expires_at \
             FROM managed_certificates c JOIN renewal_policies p ON p.id = c.renewal_policy_id \
             JOIN issuers i ON i.id = c.issuer_id LEFT JOIN certificate_profiles pr ON pr.id = c.certificate_profile_id \
             WHERE c.expires_at <= ",
        );
        due.push_bind(horizon).push(" AND c.status IN ('Active', 'Expiring', 'Expired') AND c.expires_at <= ");
        due.push_bind(ts).push(
            " + p.renewal_window_days * 86400000000 AND p.auto_renew AND i.enabled AND i.type IN ('GenericCA', 'ACME') \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.certificate_id = c.id AND j.type IN ('Issuance', 'Renewal') \
             AND j.status IN ",
        );
        // A third half for certificates whose ACME CA suggested an earlier renewal (RFC 9773)
        // than their policy's window; those already inside the window are in the second half.
        due.push(OPEN_STATES).push(
            ") UNION ALL SELECT c.id, c.status, p.max_retries, COALESCE(pr.requires_approval, FALSE), c.expires_at \
             FROM acme_renewal_windows w JOIN managed_certificates c ON c.id = w.certificate_id \
             JOIN renewal_policies p ON p.id = c.renewal_policy_id JOIN issuers i ON i.id = c.issuer_id \
             LEFT JOIN certificate_profiles pr ON pr.id = c.certificate_profile_id WHERE w.renew_at <= ",
        );
        due.push_bind(ts).push(" AND c.status IN ('Active', 'Expiring') AND c.expires_at > ");
        due.push_bind(ts).push(
            " + p.renewal_window_days * 86400000000 AND p.auto_renew AND i.enabled AND i.type = 'ACME' \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.certificate_id = c.id AND j.type IN ('Issuance', 'Renewal') \
             AND j.status IN ",
        );
        due.push(OPEN_STATES).push(") ORDER BY 5, 1 LIMIT ").push_bind(SCAN_BATCH);
        let due: Vec<(String, String, i64, bool, i64)> = due.fetch_all(&mut tx.conn()).await?;
        let mut audit = Vec::with_capacity(expired.len() + expiring.len() + due.len());
        for (id,) in &expired {
            audit.push(cert_audit(actor, "certificate_expired", id, json!({"status": "Expired"})));
        }
        for (id,) in &expiring {
            audit.push(cert_audit(actor, "certificate_expiring", id, json!({"status": "Expiring"})));
        }
        for chunk in due.chunks(ROWS_PER_INSERT) {
            let mut insert = Sql::new(
                "INSERT INTO jobs (id, type, certificate_id, status, max_attempts, scheduled_at, created_at, \
                 updated_at) VALUES ",
            );
            let mut update =
                Sql::new("UPDATE managed_certificates SET status = 'RenewalInProgress', updated_at = $1 WHERE id IN (")
                    .arg(ts);
            for (i, (cert_id, status, max_retries, approval, _)) in chunk.iter().enumerate() {
                let job_id = new_id("job");
                let job_type = if status == "Pending" { JobType::Issuance } else { JobType::Renewal };
                let job_status = if *approval { JobStatus::AwaitingApproval } else { JobStatus::Pending };
                if i > 0 {
                    insert.push(", ");
                    update.push(", ");
                }
                insert.push("(").push_bind(job_id.as_str()).push(", ").push_bind(job_type.as_str());
                insert.push(", ").push_bind(cert_id.as_str()).push(", ").push_bind(job_status.as_str());
                insert.push(", ").push_bind((max_retries + 1).max(1)).push(", ").push_bind(ts);
                insert.push(", ").push_bind(ts).push(", ").push_bind(ts).push(")");
                update.push_bind(cert_id.as_str());
                audit.push(cert_audit(
                    actor,
                    "renewal_job_created",
                    cert_id,
                    json!({"job_id": job_id, "type": job_type, "status": job_status, "trigger": "scheduler"}),
                ));
                report.jobs_created.push((job_id, cert_id.clone()));
            }
            update.push(")");
            insert.execute(&mut tx.conn()).await?;
            update.execute(&mut tx.conn()).await?;
        }
        append(&mut tx, &audit, now).await?;
        tx.commit().await?;
        report.expired = expired.into_iter().map(|(id,)| id).collect();
        report.expiring = expiring.into_iter().map(|(id,)| id).collect();
        Ok(report)
    }
}
