//! Demo data for a first look at a living system: teams, owners, issuers, profiles, renewal
//! policies, agents, targets, certificates in every status, and a few jobs.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use certctl_api::{
    AgentStatus, CertificateStatus, CreateOwner, CreateProfile, CreateRenewalPolicy, CreateTeam, Email,
    ExtendedKeyUsage, IssuerType, JobStatus, JobType, Name, ResourceId, TargetType,
};
use certctl_store::{Actor, ImportedCertificate, NewAgent, NewIssuer, NewJob, NewTarget, SealedConfig, Store};

use crate::secrets::{SecretBox, redact};

const TEAMS: &[(&str, &str)] =
    &[("t-platform", "Platform"), ("t-payments", "Payments"), ("t-data", "Data"), ("t-security", "Security")];
const OWNERS: &[(&str, &str, &str, &str)] = &[
    ("o-alice", "Alice Moreau", "alice@example.com", "t-platform"),
    ("o-bob", "Bob Okafor", "bob@example.com", "t-payments"),
    ("o-carol", "Carol Nguyen", "carol@example.com", "t-data"),
    ("o-dave", "Dave Lindqvist", "dave@example.com", "t-security"),
];
const AGENTS: &[(&str, &str, AgentStatus)] = &[
    ("ag-web-01", "web-01.prod.example.com", AgentStatus::Online),
    ("ag-web-02", "web-02.prod.example.com", AgentStatus::Online),
    ("ag-edge-01", "edge-01.prod.example.com", AgentStatus::Online),
    ("ag-db-01", "db-01.staging.example.com", AgentStatus::Offline),
];
const SERVICES: &[&str] = &[
    "api", "www", "auth", "payments", "checkout", "grafana", "vault", "ldap", "mail", "mq", "search", "cdn", "git",
    "ci", "registry", "metrics",
];
const ENVIRONMENTS: &[&str] = &["production", "staging", "development"];

fn ids(v: &str) -> ResourceId {
    ResourceId::parse(v).expect("demo IDs are valid")
}

fn name(v: &str) -> Name {
    Name::parse(v).expect("demo names are valid")
}

fn sealed(secrets: &SecretBox, context: &str, config: Value) -> SealedConfig {
    let map: Map<String, Value> = config.as_object().cloned().unwrap_or_default();
    let bytes = serde_json::to_vec(&map).unwrap_or_default();
    SealedConfig { redacted: redact(&map), sealed: secrets.seal(context, &bytes), merged_from: None }
}

/// The lifecycle state of the `i`-th demo certificate: a spread over every status with
/// expiries that make the dashboard interesting.
fn lifecycle(i: usize, now: OffsetDateTime) -> (CertificateStatus, Option<OffsetDateTime>) {
    let days = |d: i64| Some(now + Duration::days(d) + Duration::minutes((i % 97) as i64));
    match i % 20 {
        0..=8 => (CertificateStatus::Active, days(35 + (i as i64 * 7) % 330)),
        9..=11 => (CertificateStatus::Expiring, days(1 + (i as i64) % 28)),
        12 => (CertificateStatus::Expired, days(-1 - (i as i64) % 20)),
        13 | 14 => (CertificateStatus::Pending, None),
        15 => (CertificateStatus::RenewalInProgress, days(3 + (i as i64) % 10)),
        16 => (CertificateStatus::Failed, days(2 + (i as i64) % 5)),
        17 => (CertificateStatus::Revoked, days(40 + (i as i64) % 200)),
        18 => (CertificateStatus::Archived, days(-30)),
        _ => (CertificateStatus::Active, days(60 + (i as i64 * 13) % 300)),
    }
}

/// Fills an empty store; `certificates` is how many managed certificates to create.
pub async fn seed_demo(
    store: &Store,
    secrets: &SecretBox,
    certificates: usize,
    now: OffsetDateTime,
) -> anyhow::Result<String> {
    let existing = store.list_teams(&certctl_store::Paging::Page { page: 1, per_page: 1 }).await?;
    if let certctl_store::Listing::Page { total, .. } = existing
        && total > 0
    {
        bail!("seed-demo fills an empty store, and this one already has {total} teams");
    }
    let actor = Actor { name: "seed-demo".into(), kind: certctl_api::ActorType::System };
    for (id, team) in TEAMS {
        let req = CreateTeam { id: Some(ids(id)), name: name(team), description: Some(format!("{team} engineering")) };
        store.create_team(&req, &actor, now).await?;
    }
    for (id, owner, email, team) in OWNERS {
        let req = CreateOwner {
            id: Some(ids(id)),
            name: name(owner),
            email: Email::parse(*email).expect("demo emails are valid"),
            team_id: ids(team),
        };
        store.create_owner(&req, &actor, now).await?;
    }
    let issuers = [
        ("iss-local", "Local CA", IssuerType::GenericCa, json!({"validity_days": 90})),
        (
            "iss-acme-staging",
            "Let's Encrypt staging",
            IssuerType::Acme,
            json!({"directory_url": "https://acme-staging-v02.api.letsencrypt.org/directory", "email": "pki@example.com", "eab_hmac_key": "demo-not-a-real-secret"}),
        ),
        (
            "iss-vault",
            "Vault PKI",
            IssuerType::VaultPki,
            json!({"address": "https://vault.example.com:8200", "mount": "pki", "role": "web", "token": "demo-not-a-real-token"}),
        ),
    ];
    for (id, label, kind, config) in issuers {
        let new = NewIssuer {
            id: id.into(),
            name: name(label),
            issuer_type: kind,
            config: sealed(secrets, &format!("issuer:{id}"), config),
            enabled: true,
        };
        store.create_issuer(&new, &actor, now).await?;
    }
    let profiles = [
        ("prof-tls-server", "TLS server", 90 * 86_400, vec![ExtendedKeyUsage::ServerAuth], false),
        ("prof-mtls-client", "mTLS client", 30 * 86_400, vec![ExtendedKeyUsage::ClientAuth], false),
        (
            "prof-short-lived",
            "Short-lived service identity",
            3_000,
            vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
            true,
        ),
    ];
    for (id, label, ttl, ekus, short) in profiles {
        let req: CreateProfile = serde_json::from_value(json!({
            "id": id, "name": label, "max_ttl_seconds": ttl, "allowed_ekus": ekus, "allow_short_lived": short,
            "description": format!("{label} certificates"),
        }))
        .context("demo profile")?;
        store.create_profile(&req, &actor, now).await?;
    }
    store.ensure_default_renewal_policy(&actor, now).await?;
    let req: CreateRenewalPolicy = serde_json::from_value(json!({
        "id": "rp-aggressive", "name": "Aggressive", "renewal_window_days": 45,
        "alert_thresholds_days": [45, 30, 14, 7, 3, 0],
    }))
    .context("demo renewal policy")?;
    store.create_renewal_policy(&req, &actor, now).await?;
    for (id, host, status) in AGENTS {
        let new = NewAgent {
            id: Some((*id).into()),
            name: (*id).into(),
            hostname: (*host).into(),
            os: "linux".into(),
            architecture: "amd64".into(),
            ip_address: "10.0.0.10".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            status: *status,
            credential_hash: None,
        };
        store.create_agent(&new, &actor, now).await?;
    }
    let targets = [
        (
            "tgt-nginx-web01",
            "nginx web-01",
            TargetType::Nginx,
            "ag-web-01",
            json!({"cert_path": "/etc/nginx/ssl/site.crt", "key_path": "/etc/nginx/ssl/site.key", "reload_command": "nginx -s reload"}),
        ),
        (
            "tgt-apache-web02",
            "apache web-02",
            TargetType::Apache,
            "ag-web-02",
            json!({"cert_path": "/etc/apache2/ssl/site.crt", "key_path": "/etc/apache2/ssl/site.key"}),
        ),
        (
            "tgt-haproxy-edge",
            "haproxy edge",
            TargetType::HaProxy,
            "ag-edge-01",
            json!({"pem_path": "/etc/haproxy/certs/site.pem"}),
        ),
        (
            "tgt-postfix-db01",
            "postfix db-01",
            TargetType::Postfix,
            "ag-db-01",
            json!({"cert_path": "/etc/postfix/tls/mail.crt", "key_path": "/etc/postfix/tls/mail.key"}),
        ),
    ];
    for (id, label, kind, agent, config) in targets {
        let new = NewTarget {
            id: id.into(),
            name: name(label),
            target_type: kind,
            agent_id: agent.into(),
            config: sealed(secrets, &format!("target:{id}"), config),
            enabled: true,
        };
        store.create_target(&new, &actor, now).await?;
    }

    let mut batch = Vec::with_capacity(certificates.min(5_000));
    let mut created = 0;
    for i in 0..certificates {
        let (status, expires_at) = lifecycle(i, now);
        let service = SERVICES[i % SERVICES.len()];
        let env = ENVIRONMENTS[(i / SERVICES.len()) % ENVIRONMENTS.len()];
        let (owner, _, _, team) = OWNERS[i % OWNERS.len()];
        let cn = if i < SERVICES.len() * ENVIRONMENTS.len() {
            format!("{service}.{env}.example.com")
        } else {
            format!("{service}-{i}.{env}.example.com")
        };
        let mut tags = BTreeMap::new();
        tags.insert("service".to_owned(), service.to_owned());
        batch.push(ImportedCertificate {
            id: format!("mc-{i:06}"),
            name: cn.trim_end_matches(".example.com").replace('.', "-"),
            sans: vec![cn.clone()],
            common_name: cn,
            environment: env.into(),
            owner_id: owner.into(),
            team_id: team.into(),
            issuer_id: if i % 5 == 4 { "iss-acme-staging".into() } else { "iss-local".into() },
            renewal_policy_id: if i % 3 == 2 { "rp-aggressive".into() } else { "rp-default".into() },
            certificate_profile_id: Some(if i % 7 == 6 { "prof-mtls-client".into() } else { "prof-tls-server".into() }),
            status,
            expires_at,
            tags,
            source: "API".into(),
            created_at: now - Duration::days(400) + Duration::seconds(i as i64 * 60),
        });
        if batch.len() == 5_000 {
            created += store.import_certificates(&batch, &actor, now).await?;
            batch.clear();
        }
    }
    created += store.import_certificates(&batch, &actor, now).await?;

    let mapped = ["tgt-nginx-web01", "tgt-apache-web02", "tgt-haproxy-edge", "tgt-postfix-db01"];
    for i in 0..certificates.min(12) {
        store.map_target(&format!("mc-{i:06}"), mapped[i % mapped.len()], &actor, now).await?;
    }
    let jobs = [
        (JobType::Renewal, JobStatus::Completed, 0),
        (JobType::Deployment, JobStatus::Completed, 1),
        (JobType::Deployment, JobStatus::Failed, 2),
        (JobType::Issuance, JobStatus::Pending, 13),
        (JobType::Renewal, JobStatus::AwaitingCsr, 15),
        (JobType::Renewal, JobStatus::Failed, 16),
    ];
    let mut job_count = 0;
    for (kind, status, cert) in jobs.into_iter().filter(|(_, _, c)| *c < certificates) {
        let mut job = NewJob::new(kind, format!("mc-{cert:06}"));
        job.status = status;
        store.create_job(&job, &actor, now).await?;
        job_count += 1;
    }
    Ok(format!(
        "seeded {} teams, {} owners, 3 issuers, 3 profiles, 2 renewal policies, {} agents, 4 targets, {created} certificates, {job_count} jobs",
        TEAMS.len(),
        OWNERS.len(),
        AGENTS.len()
    ))
}
