//! Managed certificates, their versions and their target mappings.

use serde::Deserialize;
use serde_json::json;
use sqlx::FromRow;
use time::OffsetDateTime;

use certctl_api::{
    CertificateQuery, CertificateStatus, CertificateVersion, CreateCertificate, ManagedCertificate, ResourceId,
    SubjectName, UpdateCertificate,
};

use crate::audit::{AuditEntry, append};
use crate::common::{Actor, id_free, must_exist, must_reference, name_free, parse_time_param};
use crate::paging::{self, CREATED, KeyKind, Keyed, Listing, Order, Paging, SortKey, SortValue};
use crate::sql::{Conn, Sql};
use crate::{Result, Store, StoreError, from_micros, new_id, opt_time, parse_enum, parse_json, to_json, to_micros};

/// Never-issued certificates sort after every issued one by expiry.
const EXPIRES_EXPR: &str = "COALESCE(expires_at, 9223372036854775807)";

const SORT_KEYS: &[(&[&str], SortKey)] = &[
    (&["createdAt", "created_at"], CREATED),
    (&["updatedAt", "updated_at"], SortKey { name: "updatedAt", expr: "updated_at", kind: KeyKind::Int }),
    (
        &["notAfter", "expiresAt", "expires_at", "not_after"],
        SortKey { name: "expiresAt", expr: EXPIRES_EXPR, kind: KeyKind::Int },
    ),
    (&["name"], SortKey { name: "name", expr: "name", kind: KeyKind::Text }),
    (&["commonName", "common_name"], SortKey { name: "commonName", expr: "common_name", kind: KeyKind::Text }),
    (&["status"], SortKey { name: "status", expr: "status", kind: KeyKind::Text }),
    (&["environment"], SortKey { name: "environment", expr: "environment", kind: KeyKind::Text }),
];

/// Parsed filters of the certificate list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CertificateFilter {
    pub status: Option<CertificateStatus>,
    pub environment: Option<String>,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub issuer_id: Option<String>,
    pub profile_id: Option<String>,
    pub agent_id: Option<String>,
    pub source: Option<String>,
    pub expires_before: Option<OffsetDateTime>,
    pub expires_after: Option<OffsetDateTime>,
    pub created_after: Option<OffsetDateTime>,
    pub updated_after: Option<OffsetDateTime>,
}

/// A list request: filters and order.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateListQuery {
    pub filter: CertificateFilter,
    order: Order,
}

impl CertificateListQuery {
    /// Parses the wire query; every malformed parameter is an error naming it.
    pub fn parse(q: &CertificateQuery) -> Result<Self> {
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let status = nonempty(&q.status)
            .map(|s| s.parse::<CertificateStatus>().map_err(|e| StoreError::Invalid { field: "status", message: e.0 }))
            .transpose()?;
        let mut desc = q.sort_desc.unwrap_or(false);
        let key = match nonempty(&q.sort) {
            None => CREATED,
            Some(sort) => {
                let name = match sort.strip_prefix('-') {
                    Some(rest) => {
                        desc = true;
                        rest.to_owned()
                    }
                    None => sort.clone(),
                };
                SORT_KEYS.iter().find(|(names, _)| names.contains(&name.as_str())).map(|(_, k)| *k).ok_or_else(|| {
                    StoreError::Invalid {
                        field: "sort",
                        message: format!(
                            "'{sort}' is not one of createdAt, updatedAt, notAfter, expiresAt, name, commonName, status, environment"
                        ),
                    }
                })?
            }
        };
        Ok(CertificateListQuery {
            filter: CertificateFilter {
                status,
                environment: nonempty(&q.environment),
                owner_id: nonempty(&q.owner_id),
                team_id: nonempty(&q.team_id),
                issuer_id: nonempty(&q.issuer_id),
                profile_id: nonempty(&q.profile_id),
                agent_id: nonempty(&q.agent_id),
                source: nonempty(&q.source),
                expires_before: parse_time_param("expires_before", q.expires_before.as_deref())?,
                expires_after: parse_time_param("expires_after", q.expires_after.as_deref())?,
                created_after: parse_time_param("created_after", q.created_after.as_deref())?,
                updated_after: parse_time_param("updated_after", q.updated_after.as_deref())?,
            },
            order: Order { key, desc },
        })
    }

    /// Default order (creation time, ascending) over `filter`.
    pub fn with_filter(filter: CertificateFilter) -> Self {
        CertificateListQuery { filter, order: Order { key: CREATED, desc: false } }
    }
}

impl CertificateFilter {
    fn apply(&self, q: &mut Sql) {
        q.push(" WHERE 1=1");
        if let Some(v) = self.status {
            q.push(" AND status = ").push_bind(v.as_str());
        }
        if let Some(v) = &self.environment {
            q.push(" AND environment = ").push_bind(v);
        }
        if let Some(v) = &self.owner_id {
            q.push(" AND owner_id = ").push_bind(v);
        }
        if let Some(v) = &self.team_id {
            q.push(" AND team_id = ").push_bind(v);
        }
        if let Some(v) = &self.issuer_id {
            q.push(" AND issuer_id = ").push_bind(v);
        }
        if let Some(v) = &self.profile_id {
            q.push(" AND certificate_profile_id = ").push_bind(v);
        }
        if let Some(v) = &self.source {
            q.push(" AND source = ").push_bind(v);
        }
        if let Some(v) = &self.agent_id {
            q.push(" AND id IN (SELECT m.certificate_id FROM certificate_target_mappings m JOIN deployment_targets t ON t.id = m.target_id WHERE t.agent_id = ");
            q.push_bind(v).push(")");
        }
        if let Some(v) = self.expires_before {
            q.push(" AND expires_at < ").push_bind(to_micros(v));
        }
        if let Some(v) = self.expires_after {
            q.push(" AND expires_at > ").push_bind(to_micros(v));
        }
        if let Some(v) = self.created_after {
            q.push(" AND created_at > ").push_bind(to_micros(v));
        }
        if let Some(v) = self.updated_after {
            q.push(" AND updated_at > ").push_bind(to_micros(v));
        }
    }
}

#[derive(Debug, FromRow, Deserialize)]
struct CertRow {
    id: String,
    name: String,
    common_name: String,
    sans: String,
    environment: String,
    owner_id: String,
    team_id: String,
    issuer_id: String,
    renewal_policy_id: String,
    certificate_profile_id: Option<String>,
    status: String,
    expires_at: Option<i64>,
    tags: String,
    last_renewal_at: Option<i64>,
    last_deployment_at: Option<i64>,
    revoked_at: Option<i64>,
    revocation_reason: Option<String>,
    source: String,
    created_at: i64,
    updated_at: i64,
    target_ids: String,
}

/// The certificate columns plus its target IDs as a JSON array, aggregated in the same query so
/// a page costs one round trip. JSON aggregation is spelled differently per backend.
const CERT_SELECT_SQLITE: &str = "SELECT id, name, common_name, sans, environment, owner_id, team_id, issuer_id, renewal_policy_id, certificate_profile_id, status, expires_at, tags, last_renewal_at, last_deployment_at, revoked_at, revocation_reason, source, created_at, updated_at, \
     (SELECT json_group_array(target_id) FROM (SELECT target_id FROM certificate_target_mappings m WHERE m.certificate_id = managed_certificates.id ORDER BY target_id)) AS target_ids \
     FROM managed_certificates";
const CERT_SELECT_POSTGRES: &str = "SELECT id, name, common_name, sans, environment, owner_id, team_id, issuer_id, renewal_policy_id, certificate_profile_id, status, expires_at, tags, last_renewal_at, last_deployment_at, revoked_at, revocation_reason, source, created_at, updated_at, \
     (SELECT COALESCE(json_agg(target_id ORDER BY target_id), '[]')::text FROM certificate_target_mappings m WHERE m.certificate_id = managed_certificates.id) AS target_ids \
     FROM managed_certificates";

/// What an agent's CSR submission needs, read in one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrInputs {
    pub certificate: ManagedCertificate,
    /// The oldest issuance of the certificate waiting for a CSR.
    pub awaiting_job_id: Option<String>,
}

#[derive(Debug, FromRow, Deserialize)]
struct CsrInputsRow {
    agent_known: i64,
    awaiting_job_id: Option<String>,
    #[sqlx(flatten)]
    #[serde(flatten)]
    cert: CertRow,
}

fn cert_select(conn: &Conn<'_>) -> &'static str {
    match conn.backend() {
        crate::Backend::Sqlite => CERT_SELECT_SQLITE,
        crate::Backend::Postgres => CERT_SELECT_POSTGRES,
    }
}

impl Keyed for CertRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, name: &str) -> SortValue {
        match name {
            "updatedAt" => SortValue::Int(self.updated_at),
            "expiresAt" => SortValue::Int(self.expires_at.unwrap_or(i64::MAX)),
            "name" => SortValue::Text(self.name.clone()),
            "commonName" => SortValue::Text(self.common_name.clone()),
            "status" => SortValue::Text(self.status.clone()),
            "environment" => SortValue::Text(self.environment.clone()),
            _ => SortValue::Int(self.created_at),
        }
    }
}

impl CertRow {
    fn into_api(self) -> Result<ManagedCertificate> {
        Ok(ManagedCertificate {
            target_ids: parse_json("managed_certificates.target_ids", &self.target_ids)?,
            sans: parse_json("managed_certificates.sans", &self.sans)?,
            tags: parse_json("managed_certificates.tags", &self.tags)?,
            status: parse_enum("managed_certificates.status", &self.status)?,
            id: self.id,
            name: self.name,
            common_name: self.common_name,
            environment: self.environment,
            owner_id: self.owner_id,
            team_id: self.team_id,
            issuer_id: self.issuer_id,
            renewal_policy_id: self.renewal_policy_id,
            certificate_profile_id: self.certificate_profile_id,
            expires_at: opt_time(self.expires_at),
            last_renewal_at: opt_time(self.last_renewal_at),
            last_deployment_at: opt_time(self.last_deployment_at),
            revoked_at: opt_time(self.revoked_at),
            revocation_reason: self.revocation_reason,
            source: self.source,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

async fn fetch_certificate(conn: &mut Conn<'_>, id: &str) -> Result<ManagedCertificate> {
    let mut q = Sql::new(cert_select(conn));
    q.push(" WHERE id = ").push_bind(id);
    let row: CertRow = q
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound { resource: "certificate", id: id.to_owned() })?;
    row.into_api()
}

/// Checks every ID a certificate refers to, naming the field that is wrong.
async fn check_references(
    conn: &mut Conn<'_>,
    owner: Option<&ResourceId>,
    team: Option<&ResourceId>,
    issuer: Option<&ResourceId>,
    policy: Option<&ResourceId>,
    profile: Option<&ResourceId>,
    targets: Option<&[ResourceId]>,
) -> Result<()> {
    if let Some(v) = owner {
        must_reference(conn, "owners", "owner_id", "owner", v.as_str()).await?;
    }
    if let Some(v) = team {
        must_reference(conn, "teams", "team_id", "team", v.as_str()).await?;
    }
    if let Some(v) = issuer {
        must_reference(conn, "issuers", "issuer_id", "issuer", v.as_str()).await?;
    }
    if let Some(v) = policy {
        must_reference(conn, "renewal_policies", "renewal_policy_id", "renewal policy", v.as_str()).await?;
    }
    if let Some(v) = profile {
        must_reference(conn, "certificate_profiles", "certificate_profile_id", "certificate profile", v.as_str())
            .await?;
    }
    for t in targets.unwrap_or_default() {
        must_reference(conn, "deployment_targets", "target_ids", "deployment target", t.as_str()).await?;
    }
    Ok(())
}

fn names(v: &[SubjectName]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn replace_mappings(conn: &mut Conn<'_>, cert: &str, targets: &[ResourceId], ts: i64) -> Result<()> {
    Sql::new("DELETE FROM certificate_target_mappings WHERE certificate_id = $1").arg(cert).execute(conn).await?;
    let mut seen = std::collections::HashSet::new();
    for t in targets.iter().filter(|t| seen.insert(t.as_str())) {
        Sql::new("INSERT INTO certificate_target_mappings (certificate_id, target_id, created_at) VALUES ($1, $2, $3)")
            .arg(cert)
            .arg(t.as_str())
            .arg(ts)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A newly issued certificate to record as the current version.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub certificate_id: String,
    pub serial_number: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub fingerprint_sha256: String,
    pub pem_chain: String,
    pub csr_pem: Option<String>,
    pub key_algorithm: String,
    pub key_size: i64,
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
}

impl Keyed for VersionRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn sort_value(&self, _: &str) -> SortValue {
        SortValue::Int(self.created_at)
    }
}

impl From<VersionRow> for CertificateVersion {
    fn from(r: VersionRow) -> Self {
        CertificateVersion {
            id: r.id,
            certificate_id: r.certificate_id,
            serial_number: r.serial_number,
            not_before: from_micros(r.not_before),
            not_after: from_micros(r.not_after),
            fingerprint_sha256: r.fingerprint_sha256,
            pem_chain: r.pem_chain,
            csr_pem: r.csr_pem,
            key_algorithm: r.key_algorithm,
            key_size: r.key_size,
            created_at: from_micros(r.created_at),
        }
    }
}

fn entry(actor: &Actor, action: &str, id: &str, details: serde_json::Value) -> AuditEntry {
    AuditEntry::new(actor.name.clone(), actor.kind, action, "certificate", id, details)
}

impl Store {
    pub async fn list_certificates(
        &self,
        query: &CertificateListQuery,
        paging: &Paging,
    ) -> Result<Listing<ManagedCertificate>> {
        let mut c = self.reader().await?;
        let mut conn = c.conn();
        let select = cert_select(&conn);
        let rows: Listing<CertRow> = paging::list(
            &mut conn,
            select,
            "SELECT COUNT(*) FROM managed_certificates",
            |q| query.filter.apply(q),
            query.order,
            paging,
        )
        .await?;
        rows.try_map(CertRow::into_api)
    }

    /// Number of certificates matching `filter`.
    pub async fn count_certificates(&self, filter: &CertificateFilter) -> Result<i64> {
        let mut c = self.reader().await?;
        let mut q = Sql::new("SELECT COUNT(*) FROM managed_certificates");
        filter.apply(&mut q);
        q.fetch_i64(&mut c.conn()).await
    }

    /// IDs of certificates matching `filter`, oldest first, at most `limit` (bulk operations).
    pub async fn certificate_ids(&self, filter: &CertificateFilter, limit: i64) -> Result<Vec<String>> {
        let mut c = self.reader().await?;
        let mut q = Sql::new("SELECT id FROM managed_certificates");
        filter.apply(&mut q);
        q.push(" ORDER BY created_at, id LIMIT ").push_bind(limit);
        let rows: Vec<(String,)> = q.fetch_all(&mut c.conn()).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn certificate(&self, id: &str) -> Result<ManagedCertificate> {
        let mut c = self.reader().await?;
        fetch_certificate(&mut c.conn(), id).await
    }

    /// The certificate a CSR from `agent_id` is for, and the issuance waiting for it; NotFound
    /// names the agent when it is unknown, else the certificate.
    pub async fn csr_inputs(&self, agent_id: &str, certificate_id: &str) -> Result<CsrInputs> {
        let mut c = self.reader().await?;
        let mut conn = c.conn();
        let select = cert_select(&conn);
        let mut q = Sql::default();
        q.push("SELECT (SELECT COUNT(*) FROM agents WHERE id = ").push_bind(agent_id);
        q.push(") AS agent_known, (SELECT id FROM jobs WHERE certificate_id = managed_certificates.id ");
        q.push("AND status = 'AwaitingCSR' ORDER BY created_at, id LIMIT 1) AS awaiting_job_id, ");
        q.push(select.strip_prefix("SELECT ").unwrap_or(select));
        q.push(" WHERE id = ").push_bind(certificate_id);
        let row: Option<CsrInputsRow> = q.fetch_optional(&mut conn).await?;
        let agent_missing = || StoreError::NotFound { resource: "agent", id: agent_id.to_owned() };
        match row {
            Some(r) if r.agent_known == 0 => Err(agent_missing()),
            Some(r) => Ok(CsrInputs { certificate: r.cert.into_api()?, awaiting_job_id: r.awaiting_job_id }),
            None => {
                let agent: Option<(i64,)> = Sql::new("SELECT COUNT(*) FROM agents WHERE id = $1")
                    .arg(agent_id)
                    .fetch_optional(&mut conn)
                    .await?;
                if agent.is_none_or(|(n,)| n == 0) {
                    return Err(agent_missing());
                }
                Err(StoreError::NotFound { resource: "certificate", id: certificate_id.to_owned() })
            }
        }
    }

    /// Creates a certificate in `Pending` with its target mappings. `source` records how it
    /// entered certctl (`API`, `ACME`, …).
    pub async fn create_certificate(
        &self,
        req: &CreateCertificate,
        source: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ManagedCertificate> {
        let id = req.id.as_ref().map(|i| i.to_string()).unwrap_or_else(|| new_id("cert"));
        let mut tx = self.begin().await?;
        let mut c = tx.conn();
        id_free(&mut c, "managed_certificates", "certificate", &id).await?;
        name_free(&mut c, "managed_certificates", "certificate", req.name.as_str(), None).await?;
        check_references(
            &mut c,
            Some(&req.owner_id),
            Some(&req.team_id),
            Some(&req.issuer_id),
            Some(&req.renewal_policy_id),
            req.certificate_profile_id.as_ref(),
            req.target_ids.as_deref(),
        )
        .await?;
        let ts = to_micros(now);
        Sql::new(
            "INSERT INTO managed_certificates (id, name, common_name, sans, environment, owner_id, team_id, issuer_id, renewal_policy_id, certificate_profile_id, status, tags, source, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Pending', $11, $12, $13, $13)",
        )
        .arg(&id)
        .arg(req.name.as_str())
        .arg(req.common_name.as_str())
        .arg(to_json(&names(req.sans.as_deref().unwrap_or_default())))
        .arg(req.environment.clone().unwrap_or_default())
        .arg(req.owner_id.as_str())
        .arg(req.team_id.as_str())
        .arg(req.issuer_id.as_str())
        .arg(req.renewal_policy_id.as_str())
        .arg(req.certificate_profile_id.as_ref().map(|p| p.to_string()))
        .arg(to_json(&req.tags.clone().unwrap_or_default()))
        .arg(source)
        .arg(ts)
        .execute(&mut c)
        .await?;
        if let Some(targets) = &req.target_ids {
            replace_mappings(&mut c, &id, targets, ts).await?;
        }
        let cert = fetch_certificate(&mut c, &id).await?;
        let details = json!({
            "name": cert.name, "common_name": cert.common_name, "sans": cert.sans, "owner_id": cert.owner_id,
            "team_id": cert.team_id, "issuer_id": cert.issuer_id, "target_ids": cert.target_ids, "source": source,
        });
        append(&mut tx, &[entry(actor, "certificate_created", &id, details)], now).await?;
        tx.commit().await?;
        Ok(cert)
    }

    pub async fn update_certificate(
        &self,
        id: &str,
        req: &UpdateCertificate,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ManagedCertificate> {
        let mut tx = self.begin().await?;
        let mut c = tx.conn();
        must_exist(&mut c, "managed_certificates", "certificate", id).await?;
        if let Some(name) = &req.name {
            name_free(&mut c, "managed_certificates", "certificate", name.as_str(), Some(id)).await?;
        }
        check_references(
            &mut c,
            req.owner_id.as_ref(),
            req.team_id.as_ref(),
            req.issuer_id.as_ref(),
            req.renewal_policy_id.as_ref(),
            req.certificate_profile_id.as_ref(),
            req.target_ids.as_deref(),
        )
        .await?;
        let ts = to_micros(now);
        Sql::new(
            "UPDATE managed_certificates SET name = COALESCE($2, name), common_name = COALESCE($3, common_name), \
             sans = COALESCE($4, sans), environment = COALESCE($5, environment), owner_id = COALESCE($6, owner_id), \
             team_id = COALESCE($7, team_id), issuer_id = COALESCE($8, issuer_id), \
             renewal_policy_id = COALESCE($9, renewal_policy_id), \
             certificate_profile_id = COALESCE($10, certificate_profile_id), tags = COALESCE($11, tags), updated_at = $12 \
             WHERE id = $1",
        )
        .arg(id)
        .arg(req.name.as_ref().map(|v| v.to_string()))
        .arg(req.common_name.as_ref().map(|v| v.to_string()))
        .arg(req.sans.as_ref().map(|v| to_json(&names(v))))
        .arg(req.environment.clone())
        .arg(req.owner_id.as_ref().map(|v| v.to_string()))
        .arg(req.team_id.as_ref().map(|v| v.to_string()))
        .arg(req.issuer_id.as_ref().map(|v| v.to_string()))
        .arg(req.renewal_policy_id.as_ref().map(|v| v.to_string()))
        .arg(req.certificate_profile_id.as_ref().map(|v| v.to_string()))
        .arg(req.tags.as_ref().map(to_json))
        .arg(ts)
        .execute(&mut c)
        .await?;
        if let Some(targets) = &req.target_ids {
            replace_mappings(&mut c, id, targets, ts).await?;
        }
        let cert = fetch_certificate(&mut c, id).await?;
        let changed: Vec<&str> = [
            ("name", req.name.is_some()),
            ("common_name", req.common_name.is_some()),
            ("sans", req.sans.is_some()),
            ("environment", req.environment.is_some()),
            ("owner_id", req.owner_id.is_some()),
            ("team_id", req.team_id.is_some()),
            ("issuer_id", req.issuer_id.is_some()),
            ("renewal_policy_id", req.renewal_policy_id.is_some()),
            ("certificate_profile_id", req.certificate_profile_id.is_some()),
            ("tags", req.tags.is_some()),
            ("target_ids", req.target_ids.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        append(&mut tx, &[entry(actor, "certificate_updated", id, json!({ "changed": changed }))], now).await?;
        tx.commit().await?;
        Ok(cert)
    }

    /// Soft-deletes: the certificate becomes `Archived` and keeps its history. Archiving twice
    /// is a no-op.
    pub async fn archive_certificate(&self, id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "managed_certificates", "certificate", id).await?;
        let changed =
            Sql::new("UPDATE managed_certificates SET status = 'Archived', updated_at = $2 WHERE id = $1 AND status <> 'Archived'")
                .arg(id)
                .arg(to_micros(now))
                .execute(&mut tx.conn())
                .await?;
        if changed == 0 {
            // Already archived: nothing changes, so nothing is recorded.
            return tx.commit().await;
        }
        // An archived certificate gets nothing more: its unfinished work ends with it.
        let cancelled = crate::issuance::cancel_open_jobs(&mut tx, id, "certificate archived", now).await?;
        append(&mut tx, &[entry(actor, "certificate_archived", id, json!({"cancelled_jobs": cancelled}))], now).await?;
        tx.commit().await
    }

    /// Maps a certificate to a deployment target; mapping twice is a no-op.
    pub async fn map_target(&self, id: &str, target_id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "managed_certificates", "certificate", id).await?;
        must_exist(&mut tx.conn(), "deployment_targets", "deployment target", target_id).await?;
        let n =
            Sql::new("SELECT COUNT(*) FROM certificate_target_mappings WHERE certificate_id = $1 AND target_id = $2")
                .arg(id)
                .arg(target_id)
                .fetch_i64(&mut tx.conn())
                .await?;
        if n == 0 {
            Sql::new(
                "INSERT INTO certificate_target_mappings (certificate_id, target_id, created_at) VALUES ($1, $2, $3)",
            )
            .arg(id)
            .arg(target_id)
            .arg(to_micros(now))
            .execute(&mut tx.conn())
            .await?;
            append(&mut tx, &[entry(actor, "certificate_target_mapped", id, json!({ "target_id": target_id }))], now)
                .await?;
        }
        tx.commit().await
    }

    pub async fn unmap_target(&self, id: &str, target_id: &str, actor: &Actor, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "managed_certificates", "certificate", id).await?;
        let n = Sql::new("DELETE FROM certificate_target_mappings WHERE certificate_id = $1 AND target_id = $2")
            .arg(id)
            .arg(target_id)
            .execute(&mut tx.conn())
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound {
                resource: "certificate target mapping",
                id: format!("{id}/{target_id}"),
            });
        }
        append(&mut tx, &[entry(actor, "certificate_target_unmapped", id, json!({ "target_id": target_id }))], now)
            .await?;
        tx.commit().await
    }

    /// Versions of a certificate, newest first.
    pub async fn list_versions(&self, id: &str, paging: &Paging) -> Result<Listing<CertificateVersion>> {
        let mut c = self.reader().await?;
        must_exist(&mut c.conn(), "managed_certificates", "certificate", id).await?;
        let rows: Listing<VersionRow> = paging::list(
            &mut c.conn(),
            "SELECT id, certificate_id, serial_number, not_before, not_after, fingerprint_sha256, pem_chain, csr_pem, key_algorithm, key_size, created_at FROM certificate_versions",
            "SELECT COUNT(*) FROM certificate_versions",
            |q| {
                q.push(" WHERE certificate_id = ").push_bind(id);
            },
            Order { key: CREATED, desc: true },
            paging,
        )
        .await?;
        rows.try_map(|r| Ok(CertificateVersion::from(r)))
    }

    /// Records an issued certificate as the current version and sets the certificate's
    /// expiry and status in the same transaction.
    pub async fn add_version(
        &self,
        v: &NewVersion,
        status: CertificateStatus,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<CertificateVersion> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "managed_certificates", "certificate", &v.certificate_id).await?;
        let id = new_id("certver");
        let ts = to_micros(now);
        Sql::new(
            "INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before, not_after, fingerprint_sha256, pem_chain, csr_pem, key_algorithm, key_size, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .arg(&id)
        .arg(v.certificate_id.as_str())
        .arg(v.serial_number.as_str())
        .arg(to_micros(v.not_before))
        .arg(to_micros(v.not_after))
        .arg(v.fingerprint_sha256.as_str())
        .arg(v.pem_chain.as_str())
        .arg(v.csr_pem.clone())
        .arg(v.key_algorithm.as_str())
        .arg(v.key_size)
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        Sql::new(
            "UPDATE managed_certificates SET status = $2, expires_at = $3, last_renewal_at = $4, updated_at = $4 WHERE id = $1",
        )
        .arg(v.certificate_id.as_str())
        .arg(status.as_str())
        .arg(to_micros(v.not_after))
        .arg(ts)
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"version_id": id, "serial_number": v.serial_number, "not_after": v.not_after.unix_timestamp(), "fingerprint_sha256": v.fingerprint_sha256});
        append(&mut tx, &[entry(actor, "certificate_version_added", &v.certificate_id, details)], now).await?;
        let mut q = Sql::new(
            "SELECT id, certificate_id, serial_number, not_before, not_after, fingerprint_sha256, pem_chain, csr_pem, key_algorithm, key_size, created_at FROM certificate_versions",
        );
        q.push(" WHERE id = ").push_bind(id);
        let row: VersionRow = q.fetch_one(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// Sets lifecycle fields directly (status transitions decided by the caller).
    pub async fn set_certificate_status(
        &self,
        id: &str,
        status: CertificateStatus,
        revocation: Option<(&str, OffsetDateTime)>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        must_exist(&mut tx.conn(), "managed_certificates", "certificate", id).await?;
        Sql::new(
            "UPDATE managed_certificates SET status = $2, revocation_reason = COALESCE($3, revocation_reason), revoked_at = COALESCE($4, revoked_at), updated_at = $5 WHERE id = $1",
        )
        .arg(id)
        .arg(status.as_str())
        .arg(revocation.map(|(r, _)| r.to_owned()))
        .arg(revocation.map(|(_, t)| to_micros(t)))
        .arg(to_micros(now))
        .execute(&mut tx.conn())
        .await?;
        let details = json!({"status": status, "revocation_reason": revocation.map(|(r, _)| r)});
        append(&mut tx, &[entry(actor, "certificate_status_changed", id, details)], now).await?;
        tx.commit().await
    }

    /// Target IDs a certificate is mapped to.
    pub async fn certificate_target_ids(&self, id: &str) -> Result<Vec<String>> {
        let mut c = self.reader().await?;
        must_exist(&mut c.conn(), "managed_certificates", "certificate", id).await?;
        let rows: Vec<(String,)> =
            Sql::new("SELECT target_id FROM certificate_target_mappings WHERE certificate_id = $1 ORDER BY target_id")
                .arg(id)
                .fetch_all(&mut c.conn())
                .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }
}

/// A certificate brought in whole (demo data, imports), with its lifecycle state.
#[derive(Debug, Clone)]
pub struct ImportedCertificate {
    pub id: String,
    pub name: String,
    pub common_name: String,
    pub sans: Vec<String>,
    pub environment: String,
    pub owner_id: String,
    pub team_id: String,
    pub issuer_id: String,
    pub renewal_policy_id: String,
    pub certificate_profile_id: Option<String>,
    pub status: CertificateStatus,
    pub expires_at: Option<OffsetDateTime>,
    pub tags: std::collections::BTreeMap<String, String>,
    pub source: String,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Inserts many certificates in one transaction, with one audit record each; any bad row
    /// (duplicate name, unknown reference) rolls the whole batch back.
    pub async fn import_certificates(
        &self,
        certs: &[ImportedCertificate],
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        // Large statements save round trips on PostgreSQL; SQLite binds many parameters slowly.
        let rows_per_statement = match tx.backend() {
            crate::Backend::Postgres => 1_000,
            crate::Backend::Sqlite => 200,
        };
        for chunk in certs.chunks(rows_per_statement) {
            let mut q = Sql::new(
                "INSERT INTO managed_certificates (id, name, common_name, sans, environment, owner_id, team_id, issuer_id, renewal_policy_id, certificate_profile_id, status, expires_at, tags, source, created_at, updated_at) VALUES ",
            );
            for (i, c) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                let ts = to_micros(c.created_at);
                q.push("(").push_bind(c.id.as_str()).push(", ").push_bind(c.name.as_str());
                q.push(", ").push_bind(c.common_name.as_str()).push(", ").push_bind(to_json(&c.sans));
                q.push(", ").push_bind(c.environment.as_str()).push(", ").push_bind(c.owner_id.as_str());
                q.push(", ").push_bind(c.team_id.as_str()).push(", ").push_bind(c.issuer_id.as_str());
                q.push(", ")
                    .push_bind(c.renewal_policy_id.as_str())
                    .push(", ")
                    .push_bind(c.certificate_profile_id.clone());
                q.push(", ").push_bind(c.status.as_str()).push(", ").push_bind(c.expires_at.map(to_micros));
                q.push(", ").push_bind(to_json(&c.tags)).push(", ").push_bind(c.source.as_str());
                q.push(", ").push_bind(ts).push(", ").push_bind(ts).push(")");
            }
            q.execute(&mut tx.conn()).await?;
            let entries: Vec<AuditEntry> = chunk
                .iter()
                .map(|c| {
                    entry(
                        actor,
                        "certificate_imported",
                        &c.id,
                        json!({"name": c.name, "status": c.status, "source": c.source}),
                    )
                })
                .collect();
            append(&mut tx, &entries, now).await?;
        }
        tx.commit().await?;
        Ok(certs.len())
    }
}
