//! Operator-driven deployment and ownership changes: deployment jobs for a certificate's mapped
//! targets, and bulk reassignment of certificates to another owner.

use serde_json::json;
use time::OffsetDateTime;

use certctl_api::{BulkItemError, BulkReassignResult, Job};

use crate::audit::{AuditEntry, append};
use crate::common::must_reference;
use crate::sql::Sql;
use crate::{Actor, Result, Store, StoreError, new_id, to_micros};

impl Store {
    /// Creates one Pending Deployment job per live target the certificate is mapped to (or for
    /// `target_id` alone, which must be one of them), for each target's agent to claim. The
    /// certificate must have an issued version and be neither revoked nor archived.
    pub async fn create_deployment_jobs(
        &self,
        certificate_id: &str,
        target_id: Option<&str>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Vec<Job>> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        let cert: Option<(String,)> = Sql::new("SELECT status FROM managed_certificates WHERE id = $1")
            .arg(certificate_id)
            .fetch_optional(&mut tx.conn())
            .await?;
        let Some((status,)) = cert else {
            return Err(StoreError::NotFound { resource: "certificate", id: certificate_id.to_owned() });
        };
        if status == "Revoked" || status == "Archived" {
            return Err(StoreError::Conflict(format!(
                "certificate '{certificate_id}' is {status} and is not deployed"
            )));
        }
        let versions: i64 = Sql::new("SELECT COUNT(*) FROM certificate_versions WHERE certificate_id = $1")
            .arg(certificate_id)
            .fetch_i64(&mut tx.conn())
            .await?;
        if versions == 0 {
            return Err(StoreError::Conflict(format!(
                "certificate '{certificate_id}' has not been issued yet; nothing to deploy"
            )));
        }
        let targets: Vec<(String, String)> = Sql::new(
            "SELECT t.id, t.agent_id FROM certificate_target_mappings m JOIN deployment_targets t ON t.id = m.target_id \
             WHERE m.certificate_id = $1 AND t.retired_at IS NULL AND t.enabled ORDER BY t.id",
        )
        .arg(certificate_id)
        .fetch_all(&mut tx.conn())
        .await?;
        let targets: Vec<(String, String)> = match target_id {
            Some(wanted) => {
                let one: Vec<_> = targets.into_iter().filter(|(id, _)| id == wanted).collect();
                if one.is_empty() {
                    return Err(StoreError::Invalid {
                        field: "target_id",
                        message: format!("target '{wanted}' is not a live, enabled target of this certificate"),
                    });
                }
                one
            }
            None if targets.is_empty() => {
                return Err(StoreError::Conflict(format!(
                    "certificate '{certificate_id}' is mapped to no live target; map one first"
                )));
            }
            None => targets,
        };
        let mut ids = Vec::with_capacity(targets.len());
        let mut audit = Vec::with_capacity(targets.len());
        for (target, agent) in &targets {
            let id = new_id("job");
            Sql::new(
                "INSERT INTO jobs (id, type, certificate_id, target_id, agent_id, status, scheduled_at, created_at, \
                 updated_at) VALUES ($1, 'Deployment', $2, $3, $4, 'Pending', $5, $5, $5)",
            )
            .arg(&id)
            .arg(certificate_id)
            .arg(target)
            .arg(agent)
            .arg(ts)
            .execute(&mut tx.conn())
            .await?;
            let details = json!({"certificate_id": certificate_id, "target_id": target, "agent_id": agent});
            audit.push(AuditEntry::new(actor.name.clone(), actor.kind, "deployment_job_created", "job", &id, details));
            ids.push(id);
        }
        append(&mut tx, &audit, now).await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in &ids {
            jobs.push(crate::jobs::fetch(&mut tx.conn(), id).await?);
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// Moves certificates to `owner_id` (and `team_id` when given) in one transaction. Unknown
    /// certificates are reported per item; ones that already match are skipped. An unknown owner
    /// or team refuses the whole request.
    pub async fn bulk_reassign(
        &self,
        certificate_ids: &[String],
        owner_id: &str,
        team_id: Option<&str>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<BulkReassignResult> {
        let ts = to_micros(now);
        let mut tx = self.begin().await?;
        must_reference(&mut tx.conn(), "owners", "owner_id", "owner", owner_id).await?;
        if let Some(team) = team_id {
            must_reference(&mut tx.conn(), "teams", "team_id", "team", team).await?;
        }
        let mut result = BulkReassignResult::default();
        let mut audit = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in certificate_ids.iter().filter(|id| seen.insert(id.as_str())) {
            let row: Option<(String, String)> =
                Sql::new("SELECT owner_id, team_id FROM managed_certificates WHERE id = $1")
                    .arg(id.as_str())
                    .fetch_optional(&mut tx.conn())
                    .await?;
            let Some((owner, team)) = row else {
                result.total_failed += 1;
                result.errors.push(BulkItemError { certificate_id: id.clone(), error: "certificate not found".into() });
                continue;
            };
            result.total_matched += 1;
            if owner == owner_id && team_id.is_none_or(|t| t == team) {
                result.total_skipped += 1;
                continue;
            }
            let new_team = team_id.unwrap_or(&team);
            Sql::new("UPDATE managed_certificates SET owner_id = $2, team_id = $3, updated_at = $4 WHERE id = $1")
                .arg(id.as_str())
                .arg(owner_id)
                .arg(new_team)
                .arg(ts)
                .execute(&mut tx.conn())
                .await?;
            let details = json!({"from_owner": owner, "to_owner": owner_id, "from_team": team, "to_team": new_team});
            audit.push(AuditEntry::new(
                actor.name.clone(),
                actor.kind,
                "certificate_reassigned",
                "certificate",
                id,
                details,
            ));
            result.total_reassigned += 1;
        }
        append(&mut tx, &audit, now).await?;
        tx.commit().await?;
        Ok(result)
    }
}
