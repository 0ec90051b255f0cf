//! Times `Store::renewal_scan` over a seeded inventory: most certificates far from expiry, a
//! given number inside the default policy's 30-day renewal window. Each run finds the due ones,
//! marks them Expiring and opens a Renewal job for each; between runs those jobs are cancelled and
//! the certificates set Active again, so every run does the same work.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, ensure};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use time::{Duration, OffsetDateTime};

use certctl_api::{CertificateStatus, CreateOwner, CreateTeam, Email, IssuerType, Name, ResourceId};
use certctl_store::{Actor, Backend, ImportedCertificate, NewIssuer, SealedConfig, Store, StoreOptions};

use crate::stats::Summary;

pub struct ScanArgs {
    pub database_url: String,
    pub certificates: usize,
    pub due: usize,
    pub runs: usize,
    /// After seeding, wait until the 1-minute load average is below this (when given).
    pub quiet_load: Option<f64>,
    /// Longest wait for `quiet_load`.
    pub quiet_wait: StdDuration,
}

/// Certificates per import transaction.
const IMPORT_CHUNK: usize = 10_000;

/// Whether the `i`-th of `total` certificates is one of the `due` ones: spread evenly through
/// the inventory rather than bunched at one end of an index.
fn is_due(i: usize, total: usize, due: usize) -> bool {
    due > 0 && i.is_multiple_of((total / due).max(1)) && i / (total / due).max(1) < due
}

fn name(v: &str) -> anyhow::Result<Name> {
    Name::parse(v).map_err(|e| anyhow::anyhow!("{v}: {e:?}"))
}

fn id(v: &str) -> anyhow::Result<ResourceId> {
    ResourceId::parse(v).map_err(|e| anyhow::anyhow!("{v}: {e:?}"))
}

/// Team, owner, a local-CA issuer and the default policy, then the certificates.
async fn seed(store: &Store, args: &ScanArgs, now: OffsetDateTime) -> anyhow::Result<()> {
    let actor = Actor::system();
    let team = CreateTeam { id: Some(id("t-bench")?), name: name("Bench")?, description: None };
    store.create_team(&team, &actor, now).await?;
    let owner = CreateOwner {
        id: Some(id("o-bench")?),
        name: name("Bench owner")?,
        email: Email::parse("bench@example.com").map_err(|e| anyhow::anyhow!("{e:?}"))?,
        team_id: id("t-bench")?,
    };
    store.create_owner(&owner, &actor, now).await?;
    // The scan reads only the issuer's type and enabled flag, never its configuration.
    let issuer = NewIssuer {
        id: "iss-bench".into(),
        name: name("Bench local CA")?,
        issuer_type: IssuerType::GenericCa,
        config: SealedConfig { redacted: serde_json::Map::new(), sealed: Vec::new(), merged_from: None },
        enabled: true,
    };
    store.create_issuer(&issuer, &actor, now).await?;
    let policy = store.ensure_default_renewal_policy(&actor, now).await?;
    ensure!(policy.renewal_window_days == 30, "the default policy's window is no longer 30 days; adjust the seed");

    let certs: Vec<ImportedCertificate> = (0..args.certificates)
        .map(|i| {
            let days = if is_due(i, args.certificates, args.due) { 1 + (i % 28) } else { 31 + (i % 330) };
            ImportedCertificate {
                id: format!("mc-bench-{i:06}"),
                name: format!("bench-{i:06}"),
                common_name: format!("svc-{i}.bench.example.com"),
                sans: vec![format!("svc-{i}.bench.example.com")],
                environment: "production".into(),
                owner_id: "o-bench".into(),
                team_id: "t-bench".into(),
                issuer_id: "iss-bench".into(),
                renewal_policy_id: policy.id.clone(),
                certificate_profile_id: None,
                status: CertificateStatus::Active,
                expires_at: Some(now + Duration::days(days as i64) + Duration::minutes((i % 1440) as i64)),
                tags: BTreeMap::new(),
                source: "bench".into(),
                created_at: now - Duration::days(60),
            }
        })
        .collect();
    for chunk in certs.chunks(IMPORT_CHUNK) {
        store.import_certificates(chunk, &actor, now).await?;
    }
    Ok(())
}

pub async fn run(args: &ScanArgs) -> anyhow::Result<()> {
    ensure!(args.due <= args.certificates, "--due is larger than --certificates");
    let store = Store::connect(&args.database_url, &StoreOptions::default())
        .await
        .with_context(|| format!("cannot open {}", args.database_url))?;
    store.migrate().await?;
    let now = OffsetDateTime::now_utc();
    let started = Instant::now();
    seed(&store, args, now).await?;
    let seeded = started.elapsed();
    if store.backend() == Backend::Postgres {
        // Planner statistics as autovacuum would have them in a running system, instead of the
        // empty-table guesses a freshly bulk-loaded database gives.
        let mut conn = PgConnection::connect(&args.database_url).await?;
        conn.execute(AssertSqlSafe("VACUUM ANALYZE")).await?;
        conn.close().await?;
    }
    println!(
        "renewal-scan seeded certificates={} due={} in {:.1} s",
        args.certificates,
        args.due,
        seeded.as_secs_f64()
    );
    if let Some(limit) = args.quiet_load {
        crate::load::wait_below(limit, args.quiet_wait).await;
    }
    println!("renewal-scan load average before the runs: {}", crate::load::averages());

    let actor = Actor::system();
    let mut times = Vec::with_capacity(args.runs);
    for run in 0..args.runs.max(1) {
        let started = Instant::now();
        let report = store.renewal_scan(now, &actor).await?;
        let elapsed = started.elapsed();
        ensure!(
            report.jobs_created.len() == args.due && report.expiring.len() == args.due && report.expired.is_empty(),
            "run {run}: expected {} due, got {} jobs, {} expiring, {} expired",
            args.due,
            report.jobs_created.len(),
            report.expiring.len(),
            report.expired.len()
        );
        println!("renewal-scan run={run} ms={:.1} jobs_created={}", ms(elapsed), report.jobs_created.len());
        times.push(elapsed);
        for (job_id, cert_id) in &report.jobs_created {
            store.cancel_job(job_id, &actor, now).await?;
            store.set_certificate_status(cert_id, CertificateStatus::Active, None, &actor, now).await?;
        }
    }
    let s = Summary::of(&times);
    println!(
        "renewal-scan backend={:?} certificates={} due={} runs={} median_ms={:.1} min_ms={:.1} max_ms={:.1}",
        store.backend(),
        args.certificates,
        args.due,
        times.len(),
        ms(s.median),
        ms(s.min),
        ms(s.max)
    );
    store.close().await;
    Ok(())
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_certificates_are_spread_and_counted_exactly() {
        let due: Vec<usize> = (0..100_000).filter(|i| is_due(*i, 100_000, 1_000)).collect();
        assert_eq!(due.len(), 1_000);
        assert_eq!(due[1] - due[0], 100);
        assert_eq!((0..10).filter(|i| is_due(*i, 10, 10)).count(), 10);
        assert_eq!((0..10).filter(|i| is_due(*i, 10, 0)).count(), 0);
        assert_eq!((0..1000).filter(|i| is_due(*i, 1000, 3)).count(), 3);
    }
}
