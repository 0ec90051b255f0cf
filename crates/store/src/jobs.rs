//! Jobs: units of lifecycle work, listed newest first, and their cancellation.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{Job, JobStatus, JobType};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, id_free, must_reference};
use crate::paging::{self, CREATED, Keyed, Listing, Order, Paging, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, Tx, from_micros, new_id, opt_time, parse_enum, to_micros};

/// A job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Chosen by the store when `None`.
    pub id: Option<String>,
    pub job_type: JobType,
    pub certificate_id: String,
    pub target_id: Option<String>,
    pub agent_id: Option<String>,
    pub status: JobStatus,
    pub max_attempts: i64,
    /// Creation time when `None`.
    pub scheduled_at: Option<OffsetDateTime>,
}

impl NewJob {
    /// A pending job with the default three attempts, scheduled at creation.
    pub fn new(job_type: JobType, certificate_id: impl Into<String>) -> Self {
        NewJob {
            id: None,
            job_type,
            certificate_id: certificate_id.into(),
            target_id: None,
            agent_id: None,
            status: JobStatus::Pending,
            max_attempts: 3,
            scheduled_at: None,
        }
    }
}

/// Filters of a job listing; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    pub status: Option<JobStatus>,
    pub job_type: Option<JobType>,
    pub certificate_id: Option<String>,
    pub agent_id: Option<String>,
    pub target_id: Option<String>,
}

#[derive(Debug, FromRow, Deserialize)]
struct JobRow {
    id: String,
    job_type: String,
    certificate_id: String,
    target_id: Option<String>,
    agent_id: Option<String>,
    status: String,
    attempts: i64,
    max_attempts: i64,
    last_error: Option<String>,
    scheduled_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    created_at: i64,
    verification_status: String,
    verified_at: Option<i64>,
    verification_error: Option<String>,
    verification_fingerprint: Option<String>,
}

impl Keyed for JobRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl JobRow {
    fn into_job(self) -> Result<Job> {
        Ok(Job {
            job_type: parse_enum("jobs.type", &self.job_type)?,
            status: parse_enum("jobs.status", &self.status)?,
            id: self.id,
            certificate_id: self.certificate_id,
            target_id: self.target_id,
            agent_id: self.agent_id,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            last_error: self.last_error,
            scheduled_at: from_micros(self.scheduled_at),
            started_at: opt_time(self.started_at),
            completed_at: opt_time(self.completed_at),
            created_at: from_micros(self.created_at),
            verification_status: self.verification_status,
            verified_at: opt_time(self.verified_at),
            verification_error: self.verification_error,
            verification_fingerprint: self.verification_fingerprint,
        })
    }
}

const COLUMNS: &str = "SELECT id, type AS job_type, certificate_id, target_id, agent_id, status, attempts, \
                       max_attempts, last_error, scheduled_at, started_at, completed_at, created_at, \
                       verification_status, verified_at, verification_error, verification_fingerprint FROM jobs";

/// States a job can be cancelled from.
const CANCELLABLE: [JobStatus; 4] =
    [JobStatus::Pending, JobStatus::AwaitingCsr, JobStatus::AwaitingApproval, JobStatus::Running];

pub(crate) async fn fetch(conn: &mut Conn<'_>, id: &str) -> Result<Job> {
    let mut q = Sql::new(COLUMNS);
    q.push(" WHERE id = ").push_bind(id);
    let row: Option<JobRow> = q.fetch_optional(conn).await?;
    row.ok_or_else(|| StoreError::NotFound { resource: "job", id: id.to_owned() })?.into_job()
}

fn audit(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "job", id, details)
}

impl Store {
    /// Jobs matching `query`, newest first.
    pub async fn list_jobs(&self, query: &JobQuery, paging: &Paging) -> Result<Listing<Job>> {
        let mut c = self.reader().await?;
        let rows: Listing<JobRow> = paging::list(
            &mut c.conn(),
            COLUMNS,
            "SELECT COUNT(*) FROM jobs",
            |q| {
                q.push(" WHERE 1=1");
                if let Some(s) = query.status {
                    q.push(" AND status = ").push_bind(s.as_str());
                }
                if let Some(t) = query.job_type {
                    q.push(" AND type = ").push_bind(t.as_str());
                }
                if let Some(cert) = &query.certificate_id {
                    q.push(" AND certificate_id = ").push_bind(cert);
                }
                if let Some(agent) = &query.agent_id {
                    q.push(" AND agent_id = ").push_bind(agent);
                }
                if let Some(target) = &query.target_id {
                    q.push(" AND target_id = ").push_bind(target);
                }
            },
            Order { key: CREATED, desc: true },
            paging,
        )
        .await?;
        rows.try_map(JobRow::into_job)
    }

    pub async fn job(&self, id: &str) -> Result<Job> {
        let mut c = self.reader().await?;
        fetch(&mut c.conn(), id).await
    }

    pub async fn create_job(&self, new: &NewJob, actor: &Actor, now: OffsetDateTime) -> Result<Job> {
        let id = new.id.clone().unwrap_or_else(|| new_id("job"));
        let mut tx = self.begin().await?;
        id_free(&mut tx.conn(), "jobs", "job", &id).await?;
        must_reference(&mut tx.conn(), "managed_certificates", "certificate_id", "certificate", &new.certificate_id)
            .await?;
        if let Some(target) = &new.target_id {
            must_reference(&mut tx.conn(), "deployment_targets", "target_id", "target", target).await?;
        }
        if let Some(agent) = &new.agent_id {
            must_reference(&mut tx.conn(), "agents", "agent_id", "agent", agent).await?;
        }
        let ts = to_micros(now);
        // A job created in a later state (demo data, imports) gets the times that state implies.
        let started = new.status == JobStatus::Running || new.status.is_terminal();
        Sql::new(
            "INSERT INTO jobs (id, type, certificate_id, target_id, agent_id, status, max_attempts, scheduled_at, \
             started_at, completed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .arg(&id)
        .arg(new.job_type.as_str())
        .arg(&new.certificate_id)
        .arg(new.target_id.clone())
        .arg(new.agent_id.clone())
        .arg(new.status.as_str())
        .arg(new.max_attempts)
        .arg(to_micros(new.scheduled_at.unwrap_or(now)))
        .arg(started.then_some(ts))
        .arg(new.status.is_terminal().then_some(ts))
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        let details = json!({
            "type": new.job_type,
            "status": new.status,
            "certificate_id": new.certificate_id,
            "target_id": new.target_id,
            "agent_id": new.agent_id,
        });
        append(&mut tx, &[audit(actor, "job_created", &id, details)], now).await?;
        let job = fetch(&mut tx.conn(), &id).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Cancels a job that has not finished; a finished job is a `Conflict`.
    pub async fn cancel_job(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<Job> {
        let mut tx = self.begin().await?;
        let job = fetch(&mut tx.conn(), id).await?;
        if !CANCELLABLE.contains(&job.status) {
            return Err(StoreError::Conflict(format!(
                "job '{id}' is {} and cannot be cancelled; only Pending, AwaitingCSR, AwaitingApproval and \
                 Running jobs can",
                job.status
            )));
        }
        end_open_job(&mut tx, &job, None, now).await?;
        let details = json!({
            "previous_status": job.status,
            "type": job.job_type,
            "certificate_id": job.certificate_id,
        });
        append(&mut tx, &[audit(actor, "job_cancelled", id, details)], now).await?;
        let job = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Lets a job awaiting approval go on: it becomes `Pending`, due now, where the issuance
    /// runner claims it as if no approval had been needed. Any other state is a `Conflict`.
    pub async fn approve_job(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<Job> {
        let mut tx = self.begin().await?;
        let job = awaiting_approval(&mut tx.conn(), id, "approved").await?;
        let ts = to_micros(now);
        let changed = Sql::new(
            "UPDATE jobs SET status = 'Pending', scheduled_at = $2, updated_at = $2 WHERE id = $1 \
             AND status = 'AwaitingApproval'",
        )
        .arg(id)
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!("job '{id}' changed state while being approved; retry")));
        }
        let details = json!({"type": job.job_type, "certificate_id": job.certificate_id});
        append(&mut tx, &[audit(actor, "job_approved", id, details)], now).await?;
        let job = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Refuses a job awaiting approval: it ends `Cancelled` (so it is never retried) with
    /// `rejected: <reason>` as its last error, and its certificate leaves `RenewalInProgress`
    /// as on a cancellation. Any other state is a `Conflict`.
    pub async fn reject_job(&self, id: &str, reason: &str, actor: &Actor, now: OffsetDateTime) -> Result<Job> {
        let mut tx = self.begin().await?;
        let job = awaiting_approval(&mut tx.conn(), id, "rejected").await?;
        let reason: String = reason.trim().chars().take(1024).collect();
        let error = if reason.is_empty() { "rejected".to_owned() } else { format!("rejected: {reason}") };
        end_open_job(&mut tx, &job, Some(&error), now).await?;
        let details = json!({"type": job.job_type, "certificate_id": job.certificate_id, "reason": reason});
        append(&mut tx, &[audit(actor, "job_rejected", id, details)], now).await?;
        let job = fetch(&mut tx.conn(), id).await?;
        tx.commit().await?;
        Ok(job)
    }
}

/// The job `id` when it awaits approval; otherwise a `Conflict` naming its state.
async fn awaiting_approval(conn: &mut Conn<'_>, id: &str, verb: &str) -> Result<Job> {
    let job = fetch(conn, id).await?;
    if job.status != JobStatus::AwaitingApproval {
        return Err(StoreError::Conflict(format!(
            "job '{id}' is {} and cannot be {verb}; only AwaitingApproval jobs can",
            job.status
        )));
    }
    Ok(job)
}

/// Moves an open job to `Cancelled` (recording `last_error` when given) and puts a certificate
/// whose issuance it was back in the state its current version implies, so the renewal scan
/// considers it again instead of leaving it in progress.
async fn end_open_job(tx: &mut Tx, job: &Job, last_error: Option<&str>, now: OffsetDateTime) -> Result<()> {
    let ts = to_micros(now);
    // The status condition keeps the check and the change atomic on PostgreSQL too, where
    // another writer may move the job between the caller's read and this update.
    let mut q = Sql::new("UPDATE jobs SET status = 'Cancelled', completed_at = $1, updated_at = $1").arg(ts);
    if let Some(error) = last_error {
        q.push(", last_error = ").push_bind(error.to_owned());
    }
    q.push(" WHERE id = ").push_bind(job.id.clone()).push(" AND status = ").push_bind(job.status.as_str());
    if q.execute(&mut tx.conn()).await? == 0 {
        return Err(StoreError::Conflict(format!("job '{}' changed state meanwhile; retry", job.id)));
    }
    if matches!(job.job_type, JobType::Issuance | JobType::Renewal) {
        Sql::new(
            "UPDATE managed_certificates SET status = CASE WHEN expires_at IS NULL THEN 'Pending' ELSE 'Active' END, \
             updated_at = $2 WHERE id = $1 AND status = 'RenewalInProgress'",
        )
        .arg(&job.certificate_id)
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
    }
    Ok(())
}
