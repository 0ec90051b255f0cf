//! The issuance pipeline's state: renewal requests, job claiming (also by concurrent claimers),
//! transitions, completion with its deployment fan-out, retries, overdue jobs, the renewal scan
//! (behaviour and scale), and the certificate authorities with their revocations, CRL numbers,
//! OCSP responders and serial lookups.
//!
//! Sealed keys are arbitrary bytes here: the store keeps them and never decrypts them.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use certctl_api::{AgentStatus, CertificateStatus, IssuerType, Job, JobStatus, JobType, NotificationType, TargetType};
use certctl_store::testing::TestDb;
use certctl_store::{
    Actor, AttemptOutcome, AuditFilterParsed, Backend, CaState, CertificateFilter, Completion, CompletionRequest,
    ImportedCertificate, IssuedVersion, JobQuery, Listing, NewAgent, NewCa, NewIssuer, NewJob, NewRevocation,
    NewTarget, NotificationQuery, Paging, RenewalRequest, RevokedSerial, ScanReport, SealedConfig, SerialStatus, Store,
    StoreError, StoredResponder, to_micros,
};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::support::{Raw, T0, alice, at, audit_count, expect_one_audit, name, newest_audit, owner_req, team_req};

const HOUR: i64 = 3_600;

fn days(n: i64) -> Duration {
    Duration::days(n)
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// Every notification about a certificate.
async fn notifications_of(store: &Store, cert: &str) -> Vec<certctl_api::Notification> {
    let query = NotificationQuery { certificate_id: Some(cert.to_owned()), ..NotificationQuery::default() };
    store.list_notifications(&query, &Paging::Page { page: 1, per_page: 100 }).await.unwrap().data().to_vec()
}

/// Asserts that `r` is a `Conflict`.
fn conflict<T: Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

/// Asserts that `r` is a `NotFound`.
fn not_found<T: Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// What the certificates of a test refer to: a team, an owner, an enabled local-CA issuer and a
/// renewal policy with a 30-day window that auto-renews with 4 retries.
struct World {
    team: String,
    owner: String,
    issuer: String,
    policy: String,
}

async fn world(store: &Store) -> World {
    let team = store.create_team(&team_req("Platform"), &alice(), T0).await.unwrap().id;
    let owner = store.create_owner(&owner_req("Ann", &team), &alice(), T0).await.unwrap().id;
    let issuer = add_issuer(store, "iss-local", IssuerType::GenericCa, true).await;
    let policy = add_policy(store, "Scan", json!({"renewal_window_days": 30, "max_retries": 4})).await;
    World { team, owner, issuer, policy }
}

async fn add_issuer(store: &Store, id: &str, issuer_type: IssuerType, enabled: bool) -> String {
    let new = NewIssuer {
        id: id.to_owned(),
        name: name(&format!("issuer {id}")),
        issuer_type,
        config: SealedConfig { redacted: Map::new(), sealed: vec![7; 4], merged_from: None },
        enabled,
    };
    store.create_issuer(&new, &alice(), T0).await.unwrap().id
}

async fn add_policy(store: &Store, policy_name: &str, fields: Value) -> String {
    let mut body = json!({ "name": policy_name });
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    store.create_renewal_policy(&from_json(body), &alice(), T0).await.unwrap().id
}

/// A certificate of `w` in `status`, expiring at `expires_at`, named after its ID.
fn imported(w: &World, id: &str, status: CertificateStatus, expires_at: Option<OffsetDateTime>) -> ImportedCertificate {
    ImportedCertificate {
        id: id.to_owned(),
        name: id.to_owned(),
        common_name: format!("{id}.example.com"),
        sans: vec![],
        environment: "prod".into(),
        owner_id: w.owner.clone(),
        team_id: w.team.clone(),
        issuer_id: w.issuer.clone(),
        renewal_policy_id: w.policy.clone(),
        certificate_profile_id: None,
        status,
        expires_at,
        tags: Default::default(),
        source: "Import".into(),
        created_at: T0,
    }
}

async fn import(store: &Store, certs: &[ImportedCertificate]) {
    store.import_certificates(certs, &alice(), T0).await.unwrap();
}

/// An Active certificate expiring `expires_in` after `T0`.
async fn active(store: &Store, w: &World, id: &str, expires_in: Duration) -> String {
    import(store, &[imported(w, id, CertificateStatus::Active, Some(T0 + expires_in))]).await;
    id.to_owned()
}

fn renewal(cert: &str, status: JobStatus) -> RenewalRequest {
    RenewalRequest {
        certificate_id: cert.to_owned(),
        job_type: JobType::Renewal,
        status,
        max_attempts: 3,
        force: false,
    }
}

/// A version signed by `ca` (when given), valid from a day before `T0` until `not_after`.
fn version(id: &str, cert: &str, serial: &str, ca: Option<&str>, not_after: OffsetDateTime) -> IssuedVersion {
    IssuedVersion {
        id: id.to_owned(),
        certificate_id: cert.to_owned(),
        serial_number: serial.to_owned(),
        not_before: T0 - days(1),
        not_after,
        fingerprint_sha256: format!("fp-{id}"),
        pem_chain: format!("-----BEGIN CERTIFICATE-----\n{id}\n-----END CERTIFICATE-----\n"),
        csr_pem: Some(format!("csr of {id}")),
        key_algorithm: "ECDSA".into(),
        key_size: 256,
        issuer_ca_id: ca.map(str::to_owned),
        sealed_private_key: ca.map(|_| format!("sealed key of {id}").into_bytes()),
    }
}

/// Completes an issuance as alice.
async fn complete(
    store: &Store,
    job: Option<&str>,
    v: IssuedVersion,
    now: OffsetDateTime,
) -> Result<Completion, StoreError> {
    store.complete_issuance(job, &v, &alice(), now).await
}

fn new_ca(id: &str, issuer: &str, parent: Option<&str>) -> NewCa {
    NewCa {
        id: id.to_owned(),
        issuer_id: issuer.to_owned(),
        parent_ca_id: parent.map(str::to_owned),
        name: format!("CA {id}"),
        source: if parent.is_some() { "intermediate" } else { "generated" }.into(),
        cert_pem: format!("-----BEGIN CERTIFICATE-----\n{id}\n-----END CERTIFICATE-----\n"),
        chain_pem: String::new(),
        sealed_key: format!("sealed CA key of {id}").into_bytes(),
        subject: format!("CN={id}"),
        serial_number: "1f".into(),
        key_algorithm: "ECDSA-P256".into(),
        path_len: Some(1),
        name_constraints: json!({"permitted_dns": ["example.com"]}),
        not_before: T0 - days(1),
        not_after: T0 + days(3650),
    }
}

async fn add_agent(store: &Store, agent: &str) {
    let new = NewAgent {
        id: Some(agent.to_owned()),
        name: agent.to_owned(),
        status: AgentStatus::Online,
        ..NewAgent::default()
    };
    store.create_agent(&new, &alice(), T0).await.unwrap();
}

async fn add_target(store: &Store, id: &str, agent: &str, enabled: bool) {
    let new = NewTarget {
        id: id.to_owned(),
        name: name(id),
        target_type: TargetType::File,
        agent_id: agent.to_owned(),
        config: SealedConfig { redacted: Map::new(), sealed: vec![1], merged_from: None },
        enabled,
    };
    store.create_target(&new, &alice(), T0).await.unwrap();
}

/// Every job of a certificate, newest first.
async fn jobs_of(store: &Store, cert: &str) -> Vec<Job> {
    let q = JobQuery { certificate_id: Some(cert.to_owned()), ..JobQuery::default() };
    store.list_jobs(&q, &Paging::Page { page: 1, per_page: 100 }).await.unwrap().data().to_vec()
}

/// The Issuance/Renewal jobs of a certificate that have not finished.
async fn open_issuance_jobs(store: &Store, cert: &str) -> Vec<Job> {
    jobs_of(store, cert)
        .await
        .into_iter()
        .filter(|j| matches!(j.job_type, JobType::Issuance | JobType::Renewal) && !j.status.is_terminal())
        .collect()
}

async fn job_count(store: &Store, q: &JobQuery) -> i64 {
    match store.list_jobs(q, &Paging::Page { page: 1, per_page: 1 }).await.unwrap() {
        Listing::Page { total, .. } => total,
        other => panic!("page mode returned {other:?}"),
    }
}

/// Number of audit records with `action`.
async fn audit_actions(store: &Store, action: &str) -> i64 {
    let filter = AuditFilterParsed { action: Some(action.to_owned()), ..AuditFilterParsed::default() };
    match store.list_audit(&filter, &Paging::Page { page: 1, per_page: 1 }).await.unwrap() {
        Listing::Page { total, .. } => total,
        other => panic!("page mode returned {other:?}"),
    }
}

async fn cert_status(store: &Store, id: &str) -> CertificateStatus {
    store.certificate(id).await.unwrap().status
}

fn ids(jobs: &[Job]) -> BTreeSet<String> {
    jobs.iter().map(|j| j.id.clone()).collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

// --- request_renewal -------------------------------------------------------------------------

pub async fn issuance_renewal_request_opens_one_job(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let cert = active(&store, &w, "web", days(10)).await;
    let mut n = audit_count(&store).await;

    let job = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(1)).await.unwrap();
    assert_eq!((job.job_type, job.status, job.certificate_id.as_str()), (JobType::Renewal, JobStatus::Pending, "web"));
    assert_eq!((job.attempts, job.max_attempts), (0, 3));
    assert_eq!((job.scheduled_at, job.created_at, job.started_at, job.completed_at), (at(1), at(1), None, None));
    assert_eq!((&job.target_id, &job.agent_id, &job.last_error), (&None, &None, &None));
    assert_eq!(store.job(&job.id).await.unwrap(), job);
    assert_eq!(cert_status(&store, &cert).await, CertificateStatus::RenewalInProgress);
    expect_one_audit(&store, &mut n, "renewal_requested", &cert, &alice()).await;
    let details = newest_audit(&store, 1).await.remove(0).details;
    assert_eq!(details["job_id"], json!(job.id));
    assert_eq!(details["previous_status"], json!("Active"));

    // A second request while one is open is refused and changes nothing.
    conflict(store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(2)).await, "second request");
    assert_eq!(audit_count(&store).await, n, "a refused request writes no audit record");
    assert_eq!(ids(&jobs_of(&store, &cert).await), set([job.id.as_str()]));
    // Also while the open job is running.
    let claimed = store.claim_issuance_jobs(at(3), Duration::minutes(5), 10).await.unwrap();
    assert_eq!(ids(&claimed), set([job.id.as_str()]));
    n = audit_count(&store).await;
    conflict(store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(4)).await, "while running");

    // `force` cancels the open job and opens a new one, with the caller's type, state and attempts.
    let bob = Actor::user("bob");
    let forced = RenewalRequest {
        job_type: JobType::Issuance,
        status: JobStatus::AwaitingApproval,
        max_attempts: 5,
        force: true,
        ..renewal(&cert, JobStatus::Pending)
    };
    let replacement = store.request_renewal(&forced, &bob, at(5)).await.unwrap();
    assert_ne!(replacement.id, job.id);
    assert_eq!(
        (replacement.job_type, replacement.status, replacement.max_attempts),
        (JobType::Issuance, JobStatus::AwaitingApproval, 5)
    );
    let old = store.job(&job.id).await.unwrap();
    assert_eq!(old.status, JobStatus::Cancelled);
    assert_eq!(old.completed_at, Some(at(5)));
    assert!(old.last_error.as_deref().is_some_and(|e| !e.is_empty()), "a replaced job says why: {old:?}");
    expect_one_audit(&store, &mut n, "renewal_requested", &cert, &bob).await;
    let details = newest_audit(&store, 1).await.remove(0).details;
    assert_eq!(details["replaced_jobs"], json!([job.id]));
    assert_eq!(ids(&open_issuance_jobs(&store, &cert).await), set([replacement.id.as_str()]));
    assert_eq!(cert_status(&store, &cert).await, CertificateStatus::RenewalInProgress);
    // The cancelled job cannot complete any more.
    conflict(
        store.complete_issuance(Some(&job.id), &version("v-late", &cert, "0a", None, T0 + days(90)), &bob, at(6)).await,
        "completing a replaced job",
    );

    // Fewer than one attempt is one attempt.
    let other = active(&store, &w, "api", days(10)).await;
    let zero = RenewalRequest { max_attempts: 0, ..renewal(&other, JobStatus::Pending) };
    assert_eq!(store.request_renewal(&zero, &alice(), at(7)).await.unwrap().max_attempts, 1);

    // Archived and revoked certificates are never renewed; a failed one may be.
    import(
        &store,
        &[
            imported(&w, "gone", CertificateStatus::Archived, Some(T0 + days(10))),
            imported(&w, "revoked", CertificateStatus::Revoked, Some(T0 + days(10))),
            imported(&w, "failed", CertificateStatus::Failed, Some(T0 + days(10))),
        ],
    )
    .await;
    n = audit_count(&store).await;
    for (id, status) in [("gone", CertificateStatus::Archived), ("revoked", CertificateStatus::Revoked)] {
        conflict(store.request_renewal(&renewal(id, JobStatus::Pending), &alice(), at(8)).await, id);
        assert!(jobs_of(&store, id).await.is_empty(), "{id}: no job");
        assert_eq!(cert_status(&store, id).await, status, "{id}: status unchanged");
    }
    assert_eq!(audit_count(&store).await, n);
    not_found(store.request_renewal(&renewal("nope", JobStatus::Pending), &alice(), at(8)).await, "unknown cert");
    store.request_renewal(&renewal("failed", JobStatus::Pending), &alice(), at(9)).await.unwrap();
    assert_eq!(cert_status(&store, "failed").await, CertificateStatus::RenewalInProgress);
}

/// Concurrent requests for one certificate (two replicas, a double click) open one job.
async fn concurrent_requests_open_one_job(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let mut certs = Vec::new();
    for i in 0..20 {
        certs.push(active(&store, &w, &format!("c{i}"), days(10)).await);
    }
    let replicas = [store.clone(), db.store().await];
    for cert in &certs {
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (s, b, c) = (replicas[i % 2].clone(), barrier.clone(), cert.clone());
            tasks.push(tokio::spawn(async move {
                b.wait().await;
                s.request_renewal(&renewal(&c, JobStatus::Pending), &alice(), at(1)).await
            }));
        }
        let mut opened = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => opened += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{cert}: unexpected error {e}"),
            }
        }
        assert_eq!(opened, 1, "{cert}: exactly one of the concurrent requests succeeds");
        assert_eq!(open_issuance_jobs(&store, cert).await.len(), 1, "{cert}: exactly one open job");
    }
}

// SQLite serializes writers, so the check holds there; the PostgreSQL run is ignored until fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_renewal_requests_open_one_job() {
    let db = TestDb::sqlite();
    concurrent_requests_open_one_job(&db).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_renewal_requests_open_one_job() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    concurrent_requests_open_one_job(&db).await;
    db.cleanup().await;
}

// --- claim_issuance_jobs ---------------------------------------------------------------------

pub async fn claim_takes_due_issuance_jobs(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    for c in ["a", "b", "c", "d", "e"] {
        active(&store, &w, c, days(10)).await;
    }
    let ja = store.request_renewal(&renewal("a", JobStatus::Pending), &alice(), T0).await.unwrap().id;
    let issuance = RenewalRequest { job_type: JobType::Issuance, ..renewal("b", JobStatus::Pending) };
    let jb = store.request_renewal(&issuance, &alice(), at(1)).await.unwrap().id;
    let future = NewJob { scheduled_at: Some(at(500)), ..NewJob::new(JobType::Renewal, "c") };
    let jc = store.create_job(&future, &alice(), T0).await.unwrap().id;
    let jd = store.create_job(&NewJob::new(JobType::Deployment, "d"), &alice(), T0).await.unwrap().id;
    let je = store.request_renewal(&renewal("e", JobStatus::AwaitingApproval), &alice(), T0).await.unwrap().id;
    let lease = Duration::seconds(60);

    let got = store.claim_issuance_jobs(at(10), lease, 10).await.unwrap();
    assert_eq!(ids(&got), set([ja.as_str(), jb.as_str()]), "only due Pending Issuance/Renewal jobs");
    for j in &got {
        assert_eq!((j.status, j.attempts, j.started_at), (JobStatus::Running, 1, Some(at(10))), "{j:?}");
        assert_eq!(&store.job(&j.id).await.unwrap(), j, "the returned job is the stored one");
    }
    let untouched = [(&jc, JobStatus::Pending), (&jd, JobStatus::Pending), (&je, JobStatus::AwaitingApproval)];
    for (id, status) in untouched {
        let j = store.job(id).await.unwrap();
        assert_eq!((j.status, j.attempts, j.started_at), (status, 0, None), "{id} is not claimed");
    }

    // A live lease keeps the job with its replica.
    assert!(store.claim_issuance_jobs(at(40), lease, 10).await.unwrap().is_empty());
    // Once the lease runs out (the replica died), the job is claimed again with another attempt.
    let got = store.claim_issuance_jobs(at(71), lease, 10).await.unwrap();
    assert_eq!(ids(&got), set([ja.as_str(), jb.as_str()]));
    for j in &got {
        assert_eq!((j.status, j.attempts, j.started_at), (JobStatus::Running, 2, Some(at(71))), "{j:?}");
    }
    // The future job becomes due at its time; the expired leases are taken again with it.
    let got = store.claim_issuance_jobs(at(500), lease, 10).await.unwrap();
    assert_eq!(ids(&got), set([ja.as_str(), jb.as_str(), jc.as_str()]));
    let attempts: BTreeSet<(String, i64)> = got.iter().map(|j| (j.id.clone(), j.attempts)).collect();
    assert_eq!(attempts, [(ja.clone(), 3), (jb.clone(), 3), (jc.clone(), 1)].into_iter().collect());
    assert_eq!(store.job(&jd).await.unwrap().status, JobStatus::Pending, "deployment jobs are not issuance work");
    assert_eq!(store.job(&je).await.unwrap().status, JobStatus::AwaitingApproval);
}

/// Approval lets a waiting job go on to the claim; rejection ends it for good with its reason
/// and puts its certificate back. Both refuse any other state, and each writes one audit record.
pub async fn approval_moves_a_job_on_or_ends_it(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    active(&store, &w, "a", days(10)).await;
    active(&store, &w, "b", days(10)).await;
    let ja = store.request_renewal(&renewal("a", JobStatus::AwaitingApproval), &alice(), T0).await.unwrap().id;
    let jb = store.request_renewal(&renewal("b", JobStatus::AwaitingApproval), &alice(), T0).await.unwrap().id;
    not_found(store.approve_job("job-missing", &alice(), at(1)).await, "approving an unknown job");
    not_found(store.reject_job("job-missing", "", &alice(), at(1)).await, "rejecting an unknown job");
    let mut count = audit_count(&store).await;

    let approved = store.approve_job(&ja, &alice(), at(5)).await.unwrap();
    assert_eq!((approved.status, approved.scheduled_at, approved.attempts), (JobStatus::Pending, at(5), 0));
    expect_one_audit(&store, &mut count, "job_approved", &ja, &alice()).await;
    conflict(store.approve_job(&ja, &alice(), at(6)).await, "approving a Pending job");
    conflict(store.reject_job(&ja, "late", &alice(), at(6)).await, "rejecting a Pending job");

    let rejected = store.reject_job(&jb, "  not now  ", &alice(), at(7)).await.unwrap();
    assert_eq!(
        (rejected.status, rejected.last_error.as_deref(), rejected.completed_at),
        (JobStatus::Cancelled, Some("rejected: not now"), Some(at(7)))
    );
    expect_one_audit(&store, &mut count, "job_rejected", &jb, &alice()).await;
    assert_eq!(newest_audit(&store, 1).await[0].details["reason"], "not now");
    assert_eq!(store.certificate("b").await.unwrap().status, CertificateStatus::Active, "no longer in progress");
    conflict(store.reject_job(&jb, "", &alice(), at(8)).await, "rejecting a cancelled job");
    assert_eq!(audit_count(&store).await, count, "a refusal writes no audit record");

    let claimed = store.claim_issuance_jobs(at(9), Duration::seconds(60), 10).await.unwrap();
    assert_eq!(ids(&claimed), set([ja.as_str()]), "the approved job is claimed, the rejected one never");
}

pub async fn issuance_claim_respects_the_limit(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let c = active(&store, &w, &format!("c{i}"), days(10)).await;
        expected.push(store.request_renewal(&renewal(&c, JobStatus::Pending), &alice(), at(i)).await.unwrap().id);
    }
    let mut first = 0;
    for (round, want) in [2, 2, 1, 0].into_iter().enumerate() {
        let got = store.claim_issuance_jobs(at(100), Duration::hours(1), 2).await.unwrap();
        // Earliest scheduled first.
        let due: BTreeSet<String> = expected[first..(first + want)].iter().cloned().collect();
        assert_eq!(ids(&got), due, "round {round}");
        first += want;
    }
}

pub async fn issuance_concurrent_claimers_never_share_a_job(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let certs: Vec<ImportedCertificate> =
        (0..50).map(|i| imported(&w, &format!("c{i:02}"), CertificateStatus::Active, Some(T0 + days(10)))).collect();
    import(&store, &certs).await;
    let mut due = BTreeSet::new();
    for c in &certs {
        due.insert(store.request_renewal(&renewal(&c.id, JobStatus::Pending), &alice(), T0).await.unwrap().id);
    }

    // Two replicas with two workers each, all starting at once.
    let replicas = [store.clone(), db.store().await];
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (s, b) = (replicas[i % 2].clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            let mut mine = Vec::new();
            loop {
                let got = s.claim_issuance_jobs(at(10), Duration::hours(1), 3).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    let mut shares = Vec::new();
    for t in tasks {
        let mine = t.await.unwrap();
        shares.push(mine.len());
        all.extend(mine);
    }
    println!("{:?}: claims per worker {shares:?}", db.backend());
    assert_eq!(all.len(), 50, "no job is claimed twice");
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), due, "every due job is claimed");
    for id in &due {
        let j = store.job(id).await.unwrap();
        assert_eq!((j.status, j.attempts), (JobStatus::Running, 1), "{id}");
    }
}

// --- transition_job --------------------------------------------------------------------------

pub async fn issuance_transition_moves_only_from_the_expected_state(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let cert = active(&store, &w, "web", days(10)).await;
    let job = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), T0).await.unwrap().id;
    let mut n = audit_count(&store).await;

    let j = store.transition_job(&job, JobStatus::Pending, JobStatus::Running, Some(at(100)), &alice(), at(5)).await;
    let j = j.unwrap();
    assert_eq!((j.status, j.started_at, j.attempts), (JobStatus::Running, Some(at(5)), 0));
    expect_one_audit(&store, &mut n, "job_status_changed", &job, &alice()).await;
    // The lease it set holds off claimers until it ends.
    assert!(store.claim_issuance_jobs(at(50), Duration::minutes(1), 10).await.unwrap().is_empty());
    assert_eq!(ids(&store.claim_issuance_jobs(at(101), Duration::minutes(1), 10).await.unwrap()), set([job.as_str()]));
    n = audit_count(&store).await;

    // A job that is no longer in `from` is a Conflict and stays as it is.
    let stale = store.transition_job(&job, JobStatus::Pending, JobStatus::AwaitingCsr, None, &alice(), at(102)).await;
    conflict(stale, "wrong from");
    assert_eq!(store.job(&job).await.unwrap().status, JobStatus::Running);
    assert_eq!(audit_count(&store).await, n);

    let al = alice();
    let j = store.transition_job(&job, JobStatus::Running, JobStatus::AwaitingCsr, None, &al, at(103)).await.unwrap();
    assert_eq!((j.status, j.started_at), (JobStatus::AwaitingCsr, Some(at(101))), "started_at is kept");
    expect_one_audit(&store, &mut n, "job_status_changed", &job, &alice()).await;
    assert!(store.claim_issuance_jobs(at(100_000), Duration::minutes(1), 10).await.unwrap().is_empty());
    let bob = Actor::user("bob");
    let unknown = store.transition_job("job-nope", JobStatus::Pending, JobStatus::Running, None, &bob, at(104)).await;
    not_found(unknown, "unknown job");

    // A CSR submission reads the agent check, the certificate and the waiting job at once.
    add_agent(&store, "ag-csr").await;
    let inputs = store.csr_inputs("ag-csr", &cert).await.unwrap();
    assert_eq!(inputs.certificate, store.certificate(&cert).await.unwrap());
    assert_eq!(inputs.awaiting_job_id.as_deref(), Some(job.as_str()));
    store.transition_job(&job, JobStatus::AwaitingCsr, JobStatus::Running, None, &al, at(105)).await.unwrap();
    assert_eq!(store.csr_inputs("ag-csr", &cert).await.unwrap().awaiting_job_id, None);
    match store.csr_inputs("ag-nope", &cert).await {
        Err(StoreError::NotFound { resource, .. }) => assert_eq!(resource, "agent"),
        other => panic!("unknown agent: {other:?}"),
    }
    match store.csr_inputs("ag-nope", "mc-nope").await {
        Err(StoreError::NotFound { resource, .. }) => assert_eq!(resource, "agent", "the agent is checked first"),
        other => panic!("unknown agent and certificate: {other:?}"),
    }
    match store.csr_inputs("ag-csr", "mc-nope").await {
        Err(StoreError::NotFound { resource, .. }) => assert_eq!(resource, "certificate"),
        other => panic!("unknown certificate: {other:?}"),
    }
}

// --- complete_issuance -----------------------------------------------------------------------

pub async fn issuance_completion_records_the_version_and_fans_out_deployments(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    store.create_ca(&new_ca("ca-1", &w.issuer, None), &alice(), T0).await.unwrap();
    add_agent(&store, "agent-1").await;
    add_agent(&store, "agent-2").await;
    add_target(&store, "t-live1", "agent-1", true).await;
    add_target(&store, "t-off", "agent-1", false).await;
    add_target(&store, "t-retired", "agent-1", true).await;
    add_target(&store, "t-unmapped", "agent-1", true).await;
    add_target(&store, "t-live2", "agent-2", true).await;
    let cert = active(&store, &w, "web", days(5)).await;
    for t in ["t-live1", "t-off", "t-retired", "t-live2"] {
        store.map_target(&cert, t, &alice(), T0).await.unwrap();
    }
    let mut raw = Raw::connect(db).await;
    raw.must(&format!("UPDATE deployment_targets SET retired_at = {} WHERE id = 't-retired'", to_micros(T0))).await;
    // Stale revocation fields from an earlier life of the certificate.
    raw.must("UPDATE managed_certificates SET revoked_at = 1, revocation_reason = 'superseded' WHERE id = 'web'").await;
    raw.close().await;

    let job = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(1)).await.unwrap().id;
    store.claim_issuance_jobs(at(2), Duration::minutes(5), 10).await.unwrap();
    let v = version("ver-1", &cert, "0abc", Some("ca-1"), T0 + days(90));
    let mut n = audit_count(&store).await;
    let done = store.complete_issuance(Some(&job), &v, &alice(), at(3)).await.unwrap();

    let got = &done.version;
    assert_eq!((got.id.as_str(), got.certificate_id.as_str(), got.serial_number.as_str()), ("ver-1", "web", "0abc"));
    assert_eq!((got.not_before, got.not_after, got.created_at), (v.not_before, v.not_after, at(3)));
    assert_eq!(
        (&got.fingerprint_sha256, &got.pem_chain, &got.csr_pem),
        (&v.fingerprint_sha256, &v.pem_chain, &v.csr_pem)
    );
    assert_eq!((got.key_algorithm.as_str(), got.key_size), ("ECDSA", 256));
    assert_eq!(done.deployment_job_ids.len(), 2, "one deployment per enabled, live, mapped target");
    assert_eq!(audit_count(&store).await, n + 3, "certificate_issued and one record per deployment job");
    assert_eq!(audit_actions(&store, "certificate_issued").await, 1);
    n += 3;

    let j = store.job(&job).await.unwrap();
    assert_eq!((j.status, j.completed_at, j.last_error), (JobStatus::Completed, Some(at(3)), None));
    let c = store.certificate(&cert).await.unwrap();
    assert_eq!(
        (c.status, c.expires_at, c.last_renewal_at),
        (CertificateStatus::Active, Some(v.not_after), Some(at(3)))
    );
    assert_eq!((c.revoked_at, c.revocation_reason), (None, None), "revocation fields are cleared");
    let current = store.current_version(&cert).await.unwrap().expect("a current version");
    assert_eq!(current.version, done.version);
    assert_eq!(current.issuer_ca_id.as_deref(), Some("ca-1"));
    assert_eq!(current.sealed_private_key.as_deref(), Some(&b"sealed key of ver-1"[..]));

    let mut deployed = BTreeSet::new();
    for id in &done.deployment_job_ids {
        let d = store.job(id).await.unwrap();
        assert_eq!((d.job_type, d.status, d.certificate_id.as_str()), (JobType::Deployment, JobStatus::Pending, "web"));
        assert_eq!(d.scheduled_at, at(3));
        deployed.insert((d.target_id.unwrap(), d.agent_id.unwrap()));
    }
    let expected: BTreeSet<(String, String)> =
        [("t-live1", "agent-1"), ("t-live2", "agent-2")].iter().map(|(t, a)| ((*t).into(), (*a).into())).collect();
    assert_eq!(deployed, expected);
    assert!(store.claim_issuance_jobs(at(4), Duration::minutes(5), 10).await.unwrap().is_empty());

    // A job that is not Running cannot complete; nothing is recorded.
    let again = complete(&store, Some(&job), version("ver-2", &cert, "0abd", None, T0 + days(90)), at(5));
    conflict(again.await, "completed job");
    let listed = store.list_versions(&cert, &Paging::Page { page: 1, per_page: 10 }).await.unwrap();
    assert_eq!(listed.data().len(), 1);
    assert_eq!(audit_count(&store).await, n);

    let job2 = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(6)).await.unwrap().id;
    let pending = complete(&store, Some(&job2), version("ver-2", &cert, "0abd", None, T0 + days(90)), at(6));
    conflict(pending.await, "pending job");
    assert_eq!(store.job(&job2).await.unwrap().status, JobStatus::Pending);
    store.claim_issuance_jobs(at(7), Duration::minutes(5), 10).await.unwrap();
    n = audit_count(&store).await;
    let deployments = JobQuery { job_type: Some(JobType::Deployment), ..JobQuery::default() };

    // A duplicate fingerprint is a Conflict and rolls everything back: the job stays Running.
    let dup = IssuedVersion {
        fingerprint_sha256: v.fingerprint_sha256.clone(),
        ..version("ver-3", &cert, "0abe", None, T0 + days(91))
    };
    conflict(store.complete_issuance(Some(&job2), &dup, &alice(), at(8)).await, "duplicate fingerprint");
    assert_eq!(store.job(&job2).await.unwrap().status, JobStatus::Running);
    assert_eq!(cert_status(&store, &cert).await, CertificateStatus::RenewalInProgress);
    assert_eq!(store.current_version(&cert).await.unwrap().unwrap().version.id, "ver-1");
    assert_eq!(job_count(&store, &deployments).await, 2);
    assert_eq!(audit_count(&store).await, n);
    // So is a CA that does not exist.
    let orphan = version("ver-3", &cert, "0abe", Some("ca-nope"), T0 + days(91));
    conflict(store.complete_issuance(Some(&job2), &orphan, &alice(), at(8)).await, "unknown CA");
    assert_eq!(store.job(&job2).await.unwrap().status, JobStatus::Running);

    // The newest version is the current one; a key kept by the agent leaves no sealed key.
    let v3 = version("ver-3", &cert, "0abe", None, T0 + days(91));
    store.complete_issuance(Some(&job2), &v3, &alice(), at(9)).await.unwrap();
    let current = store.current_version(&cert).await.unwrap().unwrap();
    assert_eq!((current.version.id.as_str(), current.issuer_ca_id, current.sealed_private_key), ("ver-3", None, None));
    assert_eq!(store.certificate(&cert).await.unwrap().expires_at, Some(v3.not_after));
    assert_eq!(job_count(&store, &deployments).await, 4);

    // Without a job (a CSR answered directly) the version is recorded all the same.
    let direct = active(&store, &w, "direct", days(3)).await;
    assert!(store.current_version(&direct).await.unwrap().is_none());
    let done = complete(&store, None, version("ver-4", &direct, "0abf", Some("ca-1"), T0 + days(30)), at(10));
    let done = done.await.unwrap();
    assert!(done.deployment_job_ids.is_empty(), "no mapped targets, no deployments");
    assert_eq!(cert_status(&store, &direct).await, CertificateStatus::Active);
    assert_eq!(store.current_version(&direct).await.unwrap().unwrap().version.id, "ver-4");
    not_found(store.current_version("nope").await, "current_version of an unknown certificate");
    let unknown = complete(&store, None, version("ver-5", "nope", "01", None, T0 + days(30)), at(11));
    not_found(unknown.await, "completing for an unknown certificate");
}

/// A batch answers each request as if it were alone: refusals stay with their request, a
/// constraint violation by one request does not sink the others, and two issuances of one
/// certificate in a batch leave the later one current.
pub async fn issuance_completion_batches_answer_each_request(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    store.create_ca(&new_ca("ca-1", &w.issuer, None), &alice(), T0).await.unwrap();
    add_agent(&store, "agent-1").await;
    add_target(&store, "t-1", "agent-1", true).await;
    let a = active(&store, &w, "a", days(5)).await;
    let b = active(&store, &w, "b", days(5)).await;
    let gone = active(&store, &w, "gone", days(5)).await;
    store.map_target(&a, "t-1", &alice(), T0).await.unwrap();
    let mut raw = Raw::connect(db).await;
    raw.must("UPDATE managed_certificates SET status = 'Archived' WHERE id = 'gone'").await;
    raw.close().await;
    let job = store.request_renewal(&renewal(&b, JobStatus::Pending), &alice(), at(1)).await.unwrap().id;
    store.claim_issuance_jobs(at(2), Duration::minutes(5), 10).await.unwrap();

    let req = |job: Option<&str>, v: IssuedVersion| CompletionRequest {
        job_id: job.map(str::to_owned),
        version: v,
        actor: alice(),
    };
    // Only a policy that routes its informational tier hears of renewals.
    let mut raw = Raw::connect(db).await;
    raw.must(&format!(
        "UPDATE renewal_policies SET alert_channels = '{{\"informational\":[\"Webhook\",\"Slack\"]}}' WHERE id = '{}'",
        w.policy
    ))
    .await;
    raw.close().await;
    let n = audit_count(&store).await;
    let batch = [
        req(None, version("va-1", &a, "a1", Some("ca-1"), T0 + days(80))),
        req(Some(&job), version("vb-1", &b, "b1", None, T0 + days(90))),
        req(None, version("vg-1", &gone, "g1", None, T0 + days(90))),
        req(None, version("vn-1", "nope", "n1", None, T0 + days(90))),
        req(None, version("va-2", &a, "a2", Some("ca-1"), T0 + days(85))),
    ];
    let results = store.complete_issuances(&batch, at(3)).await;
    assert_eq!(results.len(), 5);
    let ok = |i: usize| results[i].as_ref().unwrap_or_else(|e| panic!("request {i}: {e:?}"));
    assert_eq!((ok(0).version.id.as_str(), ok(0).deployment_job_ids.len()), ("va-1", 1));
    assert_eq!((ok(1).version.id.as_str(), ok(1).deployment_job_ids.len()), ("vb-1", 0));
    assert_eq!((ok(4).version.id.as_str(), ok(4).version.created_at), ("va-2", at(3)));
    assert!(matches!(results[2], Err(StoreError::Conflict(_))), "archived: {:?}", results[2]);
    assert!(matches!(results[3], Err(StoreError::NotFound { .. })), "unknown: {:?}", results[3]);
    assert_eq!(store.current_version(&a).await.unwrap().unwrap().version.id, "va-2");
    assert_eq!(store.certificate(&a).await.unwrap().expires_at, Some(T0 + days(85)), "the later issuance wins");
    assert_eq!(store.job(&job).await.unwrap().status, JobStatus::Completed);
    assert_eq!(store.certificate(&b).await.unwrap().status, CertificateStatus::Active);
    assert_eq!(cert_status(&store, &gone).await, CertificateStatus::Archived);
    assert!(store.current_version(&gone).await.unwrap().is_none());
    assert_eq!(audit_actions(&store, "certificate_issued").await, 3);
    assert_eq!(audit_count(&store).await, n + 5, "three issuances and two deployment jobs");
    let alerts = notifications_of(&store, &a).await;
    let mut got: Vec<(NotificationType, String)> =
        alerts.iter().map(|n| (n.notification_type, n.channel.clone())).collect();
    got.sort();
    let mut expected = vec![
        (NotificationType::RenewalSuccess, "Slack".to_owned()),
        (NotificationType::RenewalSuccess, "Slack".to_owned()),
        (NotificationType::RenewalSuccess, "Webhook".to_owned()),
        (NotificationType::RenewalSuccess, "Webhook".to_owned()),
    ];
    expected.sort();
    assert_eq!(got, expected, "one per issuance and routed channel");
    assert!(notifications_of(&store, &gone).await.is_empty(), "nothing for a refused issuance");

    // A duplicate fingerprint fails the batch as a whole; each request is then recorded alone.
    let dup = IssuedVersion { fingerprint_sha256: "fp-va-1".into(), ..version("vb-2", &b, "b2", None, T0 + days(91)) };
    let results = store
        .complete_issuances(&[req(None, version("va-3", &a, "a3", None, T0 + days(86))), req(None, dup)], at(4))
        .await;
    assert_eq!(results[0].as_ref().unwrap().version.id, "va-3");
    assert!(matches!(results[1], Err(StoreError::Conflict(_))), "duplicate: {:?}", results[1]);
    assert_eq!(store.current_version(&b).await.unwrap().unwrap().version.id, "vb-1");
    assert_eq!(audit_actions(&store, "certificate_issued").await, 4);
    let chain = store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None, "{chain:?}");
}

// --- fail_issuance_attempt -------------------------------------------------------------------

pub async fn issuance_failed_attempts_retry_then_exhaust(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let system = Actor::system();
    let cert = active(&store, &w, "web", days(10)).await;
    let job = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), T0).await.unwrap().id;
    store.claim_issuance_jobs(at(1), Duration::minutes(5), 10).await.unwrap();
    let mut n = audit_count(&store).await;

    // A long error is kept to 2000 characters (not bytes).
    let long = format!("{}{}", "é".repeat(1500), "x".repeat(1000));
    let truncated: String = long.chars().take(2000).collect();
    let outcome = store.fail_issuance_attempt(&job, &long, Some(at(600)), &system, at(2)).await.unwrap();
    assert_eq!(outcome, AttemptOutcome::RetryAt(at(600)));
    expect_one_audit(&store, &mut n, "job_retry_scheduled", &job, &system).await;
    let j = store.job(&job).await.unwrap();
    assert_eq!((j.status, j.scheduled_at, j.attempts, j.completed_at), (JobStatus::Pending, at(600), 1, None));
    assert_eq!(j.last_error.as_deref(), Some(truncated.as_str()));
    assert_eq!(j.last_error.unwrap().chars().count(), 2000);
    assert_eq!(cert_status(&store, &cert).await, CertificateStatus::RenewalInProgress);

    // The retry waits for its time, then counts another attempt; the last error stays visible.
    assert!(store.claim_issuance_jobs(at(599), Duration::minutes(5), 10).await.unwrap().is_empty());
    let got = store.claim_issuance_jobs(at(600), Duration::minutes(5), 10).await.unwrap();
    assert_eq!(ids(&got), set([job.as_str()]));
    assert_eq!(got[0].attempts, 2);
    assert_eq!(got[0].last_error.as_deref(), Some(truncated.as_str()));
    n = audit_count(&store).await;

    // Without a retry time the job and the certificate fail.
    let outcome = store.fail_issuance_attempt(&job, "CA unreachable", None, &system, at(601)).await.unwrap();
    assert_eq!(outcome, AttemptOutcome::Exhausted);
    expect_one_audit(&store, &mut n, "renewal_failed", &cert, &system).await;
    let details = newest_audit(&store, 1).await.remove(0).details;
    assert_eq!((details["job_id"].clone(), details["error"].clone()), (json!(job), json!("CA unreachable")));
    let j = store.job(&job).await.unwrap();
    assert_eq!(
        (j.status, j.completed_at, j.last_error.as_deref()),
        (JobStatus::Failed, Some(at(601)), Some("CA unreachable"))
    );
    assert_eq!(cert_status(&store, &cert).await, CertificateStatus::Failed);
    // The owner hears of it on the policy's warning channel, Email by default, exactly once.
    let alerts = notifications_of(&store, &cert).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].notification_type, alerts[0].channel.as_str()), (NotificationType::RenewalFailure, "Email"));
    assert!(alerts[0].message.contains("CA unreachable"), "{}", alerts[0].message);

    // A finished job cannot fail again, with or without a retry.
    conflict(store.fail_issuance_attempt(&job, "again", None, &system, at(602)).await, "failed job");
    conflict(store.fail_issuance_attempt(&job, "again", Some(at(700)), &system, at(602)).await, "failed job, retry");
    let j = store.job(&job).await.unwrap();
    assert_eq!((j.status, j.last_error.as_deref()), (JobStatus::Failed, Some("CA unreachable")));
    let other = active(&store, &w, "api", days(10)).await;
    n = audit_count(&store).await;
    let cancelled = store.request_renewal(&renewal(&other, JobStatus::Pending), &alice(), at(603)).await.unwrap().id;
    store.cancel_job(&cancelled, &alice(), at(604)).await.unwrap();
    conflict(store.fail_issuance_attempt(&cancelled, "late", None, &system, at(605)).await, "cancelled job");
    assert_eq!(
        cert_status(&store, &other).await,
        CertificateStatus::Active,
        "a cancelled issuance returns the certificate to its version's state, never Failed"
    );
    assert_eq!(audit_count(&store).await, n + 2, "only the request and the cancel were recorded");
    not_found(store.fail_issuance_attempt("job-nope", "x", None, &system, at(606)).await, "unknown job");

    // A failed certificate can be renewed again.
    store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(700)).await.unwrap();
}

// --- overdue_jobs ----------------------------------------------------------------------------

pub async fn issuance_overdue_jobs_follow_their_own_clocks(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let names = ["csr-old", "csr-fresh", "appr-old", "appr-fresh", "pending", "running"];
    let mut job = std::collections::BTreeMap::new();
    for c in names {
        active(&store, &w, c, days(10)).await;
    }
    let request = |c: &'static str, status: JobStatus, when: OffsetDateTime| {
        let store = store.clone();
        async move { store.request_renewal(&renewal(c, status), &alice(), when).await.unwrap().id }
    };
    for c in ["csr-old", "csr-fresh", "appr-old", "pending", "running"] {
        let status = if c == "appr-old" { JobStatus::AwaitingApproval } else { JobStatus::Pending };
        job.insert(c, request(c, status, T0).await);
    }
    job.insert("appr-fresh", request("appr-fresh", JobStatus::AwaitingApproval, at(2 * HOUR)).await);
    let to_csr = |c: &'static str, when: OffsetDateTime| {
        let (store, id) = (store.clone(), job[c].clone());
        async move {
            store.transition_job(&id, JobStatus::Pending, JobStatus::AwaitingCsr, None, &alice(), when).await.unwrap();
        }
    };
    // Both CSR waits were created at T0; only the time they started waiting counts.
    to_csr("csr-old", at(HOUR)).await;
    to_csr("csr-fresh", at(24 * HOUR + 1800)).await;
    store
        .transition_job(&job["running"], JobStatus::Pending, JobStatus::Running, Some(at(1)), &alice(), at(1))
        .await
        .unwrap();
    // A touch of an approval wait does not restart its clock.
    let mut raw = Raw::connect(db).await;
    let touched = to_micros(at(25 * HOUR - 1));
    raw.must(&format!("UPDATE jobs SET updated_at = {touched} WHERE id = '{}'", job["appr-old"])).await;
    raw.close().await;

    let now = at(25 * HOUR);
    let overdue = store.overdue_jobs(now, Duration::hours(1), Duration::hours(24), 100).await.unwrap();
    assert_eq!(ids(&overdue), set([job["csr-old"].as_str(), job["appr-old"].as_str()]));
    let limited = store.overdue_jobs(now, Duration::hours(1), Duration::hours(24), 1).await.unwrap();
    assert_eq!(limited.len(), 1);

    // The timeouts are the callers': just past and just short of them.
    let csr_only = |now: OffsetDateTime| {
        let store = store.clone();
        async move { ids(&store.overdue_jobs(now, Duration::hours(1), Duration::days(365), 100).await.unwrap()) }
    };
    assert_eq!(csr_only(at(2 * HOUR + 1)).await, set([job["csr-old"].as_str()]));
    assert!(csr_only(at(2 * HOUR - 1)).await.is_empty());
    let approval_only = |now: OffsetDateTime| {
        let store = store.clone();
        async move { ids(&store.overdue_jobs(now, Duration::days(365), Duration::hours(24), 100).await.unwrap()) }
    };
    assert_eq!(approval_only(at(24 * HOUR + 1)).await, set([job["appr-old"].as_str()]));
    assert!(approval_only(at(24 * HOUR - 1)).await.is_empty());
}

// --- renewal_scan ----------------------------------------------------------------------------

pub async fn issuance_renewal_scan_opens_due_work(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let acme = add_issuer(&store, "iss-acme", IssuerType::Acme, true).await;
    let off = add_issuer(&store, "iss-off", IssuerType::GenericCa, false).await;
    let manual = add_policy(&store, "Manual", json!({"renewal_window_days": 30, "auto_renew": false})).await;
    let gated: certctl_api::CreateProfile = from_json(json!({"name": "Gated", "requires_approval": true}));
    let gated = store.create_profile(&gated, &alice(), T0).await.unwrap().id;

    use CertificateStatus::{Active, Archived, Expiring, Failed, Pending, RenewalInProgress, Revoked};
    let s = Duration::seconds;
    let mut certs = vec![
        imported(&w, "soon", Active, Some(T0 + days(10))),
        imported(&w, "edge", Active, Some(T0 + days(29))),
        imported(&w, "later", Active, Some(T0 + days(60))),
        imported(&w, "gone", Active, Some(T0 - s(1))),
        imported(&w, "now", Active, Some(T0)),
        imported(&w, "fresh", Pending, None),
        imported(&w, "expiring", Expiring, Some(T0 + days(10))),
        imported(&w, "busy", Active, Some(T0 + days(10))),
        imported(&w, "failed", Failed, Some(T0 + days(10))),
        imported(&w, "revoked", Revoked, Some(T0 + days(10))),
        imported(&w, "archived", Archived, Some(T0 - days(1))),
        imported(&w, "in-progress", RenewalInProgress, Some(T0 + days(10))),
    ];
    let mut other = |id: &str, f: &dyn Fn(&mut ImportedCertificate)| {
        let mut c = imported(&w, id, Active, Some(T0 + days(10)));
        f(&mut c);
        certs.push(c);
    };
    other("manual-soon", &|c| c.renewal_policy_id = manual.clone());
    other("manual-gone", &|c| {
        c.renewal_policy_id = manual.clone();
        c.expires_at = Some(T0 - days(1));
    });
    other("acme", &|c| c.issuer_id = acme.clone());
    other("off", &|c| c.issuer_id = off.clone());
    other("gated", &|c| c.certificate_profile_id = Some(gated.clone()));
    import(&store, &certs).await;
    let busy_job = store.create_job(&NewJob::new(JobType::Renewal, "busy"), &alice(), T0).await.unwrap().id;

    let started = Instant::now();
    let report = store.renewal_scan(T0, &Actor::system()).await.unwrap();
    println!("{:?}: scan of {} certificates took {:?}", db.backend(), certs.len(), started.elapsed());
    let as_set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(as_set(&report.expired), set(["gone", "now", "manual-gone"]));
    assert_eq!(as_set(&report.expiring), set(["soon", "edge", "busy", "manual-soon", "acme", "off", "gated"]));
    let with_jobs: BTreeSet<String> = report.jobs_created.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(with_jobs, set(["soon", "edge", "gone", "now", "fresh", "expiring", "gated", "acme"]));
    assert_eq!(report.jobs_created.len(), 8, "one job per certificate");
    for (job, cert) in &report.jobs_created {
        let j = store.job(job).await.unwrap();
        assert_eq!(&j.certificate_id, cert);
        let want_type = if cert == "fresh" { JobType::Issuance } else { JobType::Renewal };
        let want_status = if cert == "gated" { JobStatus::AwaitingApproval } else { JobStatus::Pending };
        assert_eq!((j.job_type, j.status), (want_type, want_status), "{cert}");
        assert_eq!((j.max_attempts, j.attempts, j.scheduled_at), (5, 0, T0), "{cert}: max_retries + 1 attempts");
        assert_eq!(cert_status(&store, cert).await, RenewalInProgress, "{cert}");
        assert_eq!(open_issuance_jobs(&store, cert).await.len(), 1, "{cert}");
    }
    let unchanged = [
        ("later", Active),
        ("manual-soon", Expiring),
        ("manual-gone", CertificateStatus::Expired),
        ("off", Expiring),
        ("busy", Expiring),
        ("failed", Failed),
        ("revoked", Revoked),
        ("archived", Archived),
        ("in-progress", RenewalInProgress),
    ];
    for (cert, status) in unchanged {
        assert_eq!(cert_status(&store, cert).await, status, "{cert}");
        let open = ids(&open_issuance_jobs(&store, cert).await);
        let want = if cert == "busy" { set([busy_job.as_str()]) } else { BTreeSet::new() };
        assert_eq!(open, want, "{cert}: no job from the scan");
    }
    assert_eq!(audit_actions(&store, "renewal_job_created").await, 8);
    assert_eq!(audit_actions(&store, "certificate_expired").await, 3);
    assert_eq!(audit_actions(&store, "certificate_expiring").await, 7);

    // A second pass finds nothing new to do.
    let n = audit_count(&store).await;
    assert_eq!(store.renewal_scan(T0 + s(1), &Actor::system()).await.unwrap(), ScanReport::default());
    assert_eq!(audit_count(&store).await, n);

    // A month on, `later` enters its window, and Expiring certificates past expiry become Expired.
    let report = store.renewal_scan(T0 + days(31), &Actor::system()).await.unwrap();
    assert_eq!(as_set(&report.expiring), set(["later"]));
    assert_eq!(as_set(&report.expired), set(["manual-soon", "off", "busy"]));
    let with_jobs: BTreeSet<String> = report.jobs_created.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(with_jobs, set(["later"]));
    assert_eq!(cert_status(&store, "busy").await, CertificateStatus::Expired);
}

pub async fn issuance_acme_windows_accounts_and_external_revocation(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let acme = add_issuer(&store, "iss-acme", IssuerType::Acme, true).await;
    let mut certs = Vec::new();
    for id in ["ari-now", "ari-later", "ari-local", "no-window"] {
        let mut c = imported(&w, id, CertificateStatus::Active, Some(T0 + days(60)));
        if id != "ari-local" {
            c.issuer_id = acme.clone();
        }
        certs.push(c);
    }
    import(&store, &certs).await;
    let window = |cert: &str, renew_at: OffsetDateTime| certctl_store::RenewalWindow {
        certificate_id: cert.to_owned(),
        serial_number: format!("{cert}-serial"),
        start: T0 - days(1),
        end: T0 + days(20),
        renew_at,
        checked_at: T0,
    };
    store.put_renewal_window(&window("ari-now", T0 - Duration::seconds(1))).await.unwrap();
    store.put_renewal_window(&window("ari-later", T0 + days(10))).await.unwrap();
    // Only an ACME issuer's suggestion counts.
    store.put_renewal_window(&window("ari-local", T0 - days(1))).await.unwrap();
    assert_eq!(store.renewal_window("ari-later").await.unwrap(), Some(window("ari-later", T0 + days(10))));

    let jobs = |r: ScanReport| r.jobs_created.into_iter().map(|(_, c)| c).collect::<BTreeSet<_>>();
    assert_eq!(jobs(store.renewal_scan(T0, &Actor::system()).await.unwrap()), set(["ari-now"]));
    assert_eq!(jobs(store.renewal_scan(T0 + days(10), &Actor::system()).await.unwrap()), set(["ari-later"]));
    store.clear_renewal_window("ari-local").await.unwrap();
    assert_eq!(store.renewal_window("ari-local").await.unwrap(), None);

    // The account: stored sealed, replaced when the directory changes, gone with the issuer.
    assert_eq!(store.acme_issuer_account(&acme).await.unwrap(), None);
    let mut account = certctl_store::AcmeIssuerAccount {
        issuer_id: acme.clone(),
        directory_url: "https://ca.example/dir".into(),
        account_url: "https://ca.example/acct/1".into(),
        sealed_credentials: vec![1, 2, 3],
    };
    store.put_acme_issuer_account(&account, &Actor::system(), T0).await.unwrap();
    assert_eq!(store.acme_issuer_account(&acme).await.unwrap().as_ref(), Some(&account));
    account.directory_url = "https://other.example/dir".into();
    account.sealed_credentials = vec![4, 5];
    store.put_acme_issuer_account(&account, &Actor::system(), T0).await.unwrap();
    assert_eq!(store.acme_issuer_account(&acme).await.unwrap(), Some(account));
    assert_eq!(audit_actions(&store, "acme_issuer_account_created").await, 2);

    // A revocation at the CA: the certificate is Revoked and its open renewal cancelled.
    let rev = certctl_store::ExternalRevocation {
        certificate_id: "ari-now".into(),
        issuer_id: acme.clone(),
        serial_number: "ari-now-serial".into(),
        reason: "keyCompromise".into(),
    };
    assert_eq!(open_issuance_jobs(&store, "ari-now").await.len(), 1);
    let at = store.record_external_revocation(&rev, &alice(), T0 + days(11)).await.unwrap();
    assert_eq!(at, T0 + days(11));
    let c = store.certificate("ari-now").await.unwrap();
    assert_eq!((c.status, c.revocation_reason.as_deref()), (CertificateStatus::Revoked, Some("keyCompromise")));
    assert!(open_issuance_jobs(&store, "ari-now").await.is_empty());
    conflict(store.record_external_revocation(&rev, &alice(), T0 + days(12)).await, "revoked twice");
}

pub async fn issuance_renewal_scan_handles_a_large_inventory(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let mut due = BTreeSet::new();
    let certs: Vec<ImportedCertificate> = (0..20_000)
        .map(|i| {
            let id = format!("c{i:05}");
            let expires = if i % 40 == 0 {
                due.insert(id.clone());
                T0 + days(1 + i % 20)
            } else {
                T0 + days(200) + Duration::seconds(i)
            };
            imported(&w, &id, CertificateStatus::Active, Some(expires))
        })
        .collect();
    let started = Instant::now();
    import(&store, &certs).await;
    println!("{:?}: importing 20,000 certificates took {:?}", db.backend(), started.elapsed());
    assert_eq!(due.len(), 500);

    let started = Instant::now();
    let report = store.renewal_scan(T0, &Actor::system()).await.unwrap();
    println!("{:?}: renewal scan over 20,000 certificates (500 due) took {:?}", db.backend(), started.elapsed());
    assert_eq!(report.jobs_created.len(), 500);
    assert_eq!(report.jobs_created.iter().map(|(_, c)| c.clone()).collect::<BTreeSet<_>>(), due);
    assert_eq!(report.expiring.iter().cloned().collect::<BTreeSet<_>>(), due);
    assert!(report.expired.is_empty());
    assert_eq!(job_count(&store, &JobQuery::default()).await, 500);
    let in_progress = CertificateFilter { status: Some(CertificateStatus::RenewalInProgress), ..Default::default() };
    assert_eq!(store.count_certificates(&in_progress).await.unwrap(), 500);

    let started = Instant::now();
    assert_eq!(store.renewal_scan(T0 + Duration::minutes(1), &Actor::system()).await.unwrap(), ScanReport::default());
    println!("{:?}: a scan with nothing due took {:?}", db.backend(), started.elapsed());
    assert_eq!(job_count(&store, &JobQuery::default()).await, 500);
}

// --- authorities -----------------------------------------------------------------------------

pub async fn issuance_ca_hierarchy_and_states(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    let other = add_issuer(&store, "iss-other", IssuerType::GenericCa, true).await;
    let mut n = audit_count(&store).await;

    let new = new_ca("root", &w.issuer, None);
    let root = store.create_ca(&new, &alice(), at(5)).await.unwrap();
    expect_one_audit(&store, &mut n, "ca_created", "root", &alice()).await;
    assert_eq!((root.state, root.parent_ca_id.clone(), root.source.as_str()), (CaState::Active, None, "generated"));
    assert_eq!((&root.sealed_key, &root.cert_pem, &root.subject), (&new.sealed_key, &new.cert_pem, &new.subject));
    assert_eq!((root.path_len, &root.name_constraints), (Some(1), &new.name_constraints));
    assert_eq!((root.not_before, root.not_after), (new.not_before, new.not_after));
    assert_eq!((root.revocation_generation, root.crl_number, root.responder.clone()), (0, 0, None));
    assert_eq!((root.retired_at, root.created_at, root.updated_at), (None, at(5), at(5)));
    assert_eq!(store.ca("root").await.unwrap(), root);

    // Creation times, not insertion order, order an issuer's CAs.
    let child = store.create_ca(&new_ca("child", &w.issuer, Some("root")), &alice(), at(7)).await.unwrap();
    assert_eq!(child.parent_ca_id.as_deref(), Some("root"));
    store.create_ca(&new_ca("early", &w.issuer, None), &alice(), at(1)).await.unwrap();
    store.create_ca(&new_ca("elsewhere", &other, None), &alice(), at(2)).await.unwrap();
    let order: Vec<String> = store.issuer_cas(&w.issuer).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(order, ["early", "root", "child"]);
    let order: Vec<String> = store.issuer_cas(&other).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(order, ["elsewhere"]);
    not_found(store.issuer_cas("iss-nope").await, "issuer_cas of an unknown issuer");
    not_found(store.ca("nope").await, "unknown CA");

    // Bad references.
    n = audit_count(&store).await;
    conflict(store.create_ca(&new_ca("root", &w.issuer, None), &alice(), at(8)).await, "duplicate id");
    match store.create_ca(&new_ca("x", "iss-nope", None), &alice(), at(8)).await {
        Err(StoreError::InvalidReference { field: "issuer_id", .. }) => {}
        other => panic!("unknown issuer: {other:?}"),
    }
    not_found(store.create_ca(&new_ca("x", &w.issuer, Some("nope")), &alice(), at(8)).await, "unknown parent");
    assert_eq!(audit_count(&store).await, n);

    // active → retiring → retired, never backwards or skipping a step.
    conflict(store.set_ca_state("root", CaState::Retired, &alice(), at(9)).await, "active → retired");
    conflict(store.set_ca_state("root", CaState::Active, &alice(), at(9)).await, "active → active");
    let retiring = store.set_ca_state("root", CaState::Retiring, &alice(), at(10)).await.unwrap();
    assert_eq!((retiring.state, retiring.retired_at, retiring.updated_at), (CaState::Retiring, None, at(10)));
    expect_one_audit(&store, &mut n, "ca_state_changed", "root", &alice()).await;
    conflict(store.set_ca_state("root", CaState::Active, &alice(), at(11)).await, "retiring → active");
    conflict(store.set_ca_state("root", CaState::Retiring, &alice(), at(11)).await, "retiring → retiring");
    // Only an active CA signs new CAs.
    conflict(store.create_ca(&new_ca("x", &w.issuer, Some("root")), &alice(), at(11)).await, "retiring parent");
    // A CA with a child that is not retired stays.
    conflict(store.set_ca_state("root", CaState::Retired, &alice(), at(12)).await, "live child");
    store.set_ca_state("child", CaState::Retiring, &alice(), at(13)).await.unwrap();
    conflict(store.set_ca_state("root", CaState::Retired, &alice(), at(14)).await, "retiring child");
    let gone = store.set_ca_state("child", CaState::Retired, &alice(), at(15)).await.unwrap();
    assert_eq!((gone.state, gone.retired_at), (CaState::Retired, Some(at(15))));
    n = audit_count(&store).await;
    let retired = store.set_ca_state("root", CaState::Retired, &alice(), at(16)).await.unwrap();
    assert_eq!((retired.state, retired.retired_at), (CaState::Retired, Some(at(16))));
    expect_one_audit(&store, &mut n, "ca_state_changed", "root", &alice()).await;
    for to in [CaState::Active, CaState::Retiring, CaState::Retired] {
        conflict(store.set_ca_state("root", to, &alice(), at(17)).await, &format!("retired → {}", to.as_str()));
    }
    assert_eq!(store.ca("root").await.unwrap(), retired);
    conflict(store.create_ca(&new_ca("x", &w.issuer, Some("root")), &alice(), at(18)).await, "retired parent");
    not_found(store.set_ca_state("nope", CaState::Retiring, &alice(), at(18)).await, "unknown CA");
    assert_eq!(audit_count(&store).await, n);
}

pub async fn issuance_crl_numbers_and_ocsp_responder(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    store.create_ca(&new_ca("ca-1", &w.issuer, None), &alice(), T0).await.unwrap();
    store.create_ca(&new_ca("ca-2", &w.issuer, None), &alice(), T0).await.unwrap();

    let first: Vec<i64> = [
        store.next_crl_number("ca-1").await.unwrap(),
        store.next_crl_number("ca-1").await.unwrap(),
        store.next_crl_number("ca-1").await.unwrap(),
    ]
    .into();
    assert_eq!(first, [1, 2, 3]);
    assert_eq!(store.next_crl_number("ca-2").await.unwrap(), 1, "each CA counts on its own");
    not_found(store.next_crl_number("nope").await, "unknown CA");

    // Replicas asking at once each get a number of their own.
    let replicas = [store.clone(), db.store().await];
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = replicas[i % 2].clone();
        tasks.push(tokio::spawn(async move { s.next_crl_number("ca-1").await.unwrap() }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (4..=23).collect::<Vec<i64>>());
    assert_eq!(store.ca("ca-1").await.unwrap().crl_number, 23);

    let mut n = audit_count(&store).await;
    let responder =
        StoredResponder { cert_pem: "responder one".into(), sealed_key: vec![0, 1, 2, 255], not_after: T0 + days(7) };
    store.set_ocsp_responder("ca-1", &responder, at(1)).await.unwrap();
    expect_one_audit(&store, &mut n, "ocsp_responder_rotated", "ca-1", &Actor::system()).await;
    let ca = store.ca("ca-1").await.unwrap();
    assert_eq!((ca.responder, ca.updated_at), (Some(responder), at(1)));
    assert_eq!(store.ca("ca-2").await.unwrap().responder, None);
    let next = StoredResponder { cert_pem: "responder two".into(), sealed_key: vec![9; 48], not_after: T0 + days(14) };
    store.set_ocsp_responder("ca-1", &next, at(2)).await.unwrap();
    assert_eq!(store.ca("ca-1").await.unwrap().responder, Some(next.clone()));
    not_found(store.set_ocsp_responder("nope", &next, at(3)).await, "unknown CA");
}

pub async fn issuance_revocation_updates_certificate_jobs_and_lookups(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    store.create_ca(&new_ca("ca-1", &w.issuer, None), &alice(), T0).await.unwrap();
    store.create_ca(&new_ca("ca-2", &w.issuer, None), &alice(), T0).await.unwrap();
    add_agent(&store, "agent-1").await;
    add_target(&store, "t1", "agent-1", true).await;
    let cert = active(&store, &w, "web", days(5)).await;
    store.map_target(&cert, "t1", &alice(), T0).await.unwrap();
    let issued = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(1)).await.unwrap().id;
    store.claim_issuance_jobs(at(2), Duration::minutes(5), 10).await.unwrap();
    let done = complete(&store, Some(&issued), version("v1", &cert, "0a01", Some("ca-1"), T0 + days(90)), at(3));
    let deployment = done.await.unwrap().deployment_job_ids.remove(0);
    let approval =
        store.request_renewal(&renewal(&cert, JobStatus::AwaitingApproval), &alice(), at(4)).await.unwrap().id;
    let generations = |store: Store| async move {
        store.ca_generations().await.unwrap().into_iter().collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = generations(store.clone()).await;
    assert_eq!(store.serial_status("ca-1", "0a01").await.unwrap(), SerialStatus::Good);

    let bob = Actor::user("bob");
    let rev = NewRevocation {
        certificate_id: cert.clone(),
        issuer_id: w.issuer.clone(),
        ca_id: "ca-1".into(),
        serial_number: "0a01".into(),
        reason: "keyCompromise".into(),
    };
    let mut n = audit_count(&store).await;
    let revoked = store.revoke_certificate(&rev, &bob, at(10)).await.unwrap();
    let expected = RevokedSerial { serial_number: "0a01".into(), revoked_at: at(10), reason: "keyCompromise".into() };
    assert_eq!(revoked, expected);
    expect_one_audit(&store, &mut n, "certificate_revoked", &cert, &bob).await;

    let c = store.certificate(&cert).await.unwrap();
    assert_eq!(
        (c.status, c.revoked_at, c.revocation_reason.as_deref()),
        (CertificateStatus::Revoked, Some(at(10)), Some("keyCompromise"))
    );
    for id in [&deployment, &approval] {
        let j = store.job(id).await.unwrap();
        assert_eq!((j.status, j.completed_at), (JobStatus::Cancelled, Some(at(10))), "{id}");
        assert!(j.last_error.is_some(), "{id}: a cancelled job says why");
    }
    assert_eq!(store.job(&issued).await.unwrap().status, JobStatus::Completed, "finished jobs stay as they are");
    let after = generations(store.clone()).await;
    assert_eq!(after["ca-1"], before["ca-1"] + 1, "the revoking CA's generation moves");
    assert_eq!(after["ca-2"], before["ca-2"], "other CAs keep theirs");
    assert_eq!(store.ca("ca-1").await.unwrap().revocation_generation, after["ca-1"]);
    assert_eq!(store.ca_revocations("ca-1").await.unwrap(), std::slice::from_ref(&expected));
    assert!(store.ca_revocations("ca-2").await.unwrap().is_empty());
    assert_eq!(
        store.serial_status("ca-1", "0a01").await.unwrap(),
        SerialStatus::Revoked { revoked_at: at(10), reason: "keyCompromise".into() }
    );
    assert_eq!(store.serial_status("ca-2", "0a01").await.unwrap(), SerialStatus::Unknown, "serials are per CA");

    // Twice is a Conflict and changes nothing.
    conflict(store.revoke_certificate(&rev, &bob, at(11)).await, "revoking twice");
    assert_eq!(store.ca("ca-1").await.unwrap().revocation_generation, after["ca-1"]);
    assert_eq!(store.ca_revocations("ca-1").await.unwrap().len(), 1);
    assert_eq!(audit_count(&store).await, n);
    // So is a serial revoked under another certificate, and an archived certificate.
    let other = active(&store, &w, "other", days(5)).await;
    let same_serial = NewRevocation { certificate_id: other.clone(), ..rev.clone() };
    conflict(store.revoke_certificate(&same_serial, &bob, at(12)).await, "serial already revoked");
    assert_eq!(cert_status(&store, &other).await, CertificateStatus::Active);
    import(&store, &[imported(&w, "archived", CertificateStatus::Archived, Some(T0 + days(5)))]).await;
    let archived = NewRevocation { certificate_id: "archived".into(), serial_number: "0a02".into(), ..rev.clone() };
    conflict(store.revoke_certificate(&archived, &bob, at(12)).await, "archived certificate");
    assert_eq!(cert_status(&store, "archived").await, CertificateStatus::Archived);
    let unknown = NewRevocation { certificate_id: "nope".into(), serial_number: "0a03".into(), ..rev.clone() };
    not_found(store.revoke_certificate(&unknown, &bob, at(12)).await, "unknown certificate");
    assert_eq!(store.ca("ca-1").await.unwrap().revocation_generation, after["ca-1"]);
}

pub async fn issuance_issued_serials_and_serial_status(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    store.create_ca(&new_ca("ca-1", &w.issuer, None), &alice(), T0).await.unwrap();
    store.create_ca(&new_ca("ca-2", &w.issuer, None), &alice(), T0).await.unwrap();
    let issue = [
        ("a", "01", Some("ca-1"), T0 + days(90)),
        ("b", "02", Some("ca-1"), T0 + days(90)),
        ("c", "03", Some("ca-1"), T0 + days(1)),
        ("d", "04", Some("ca-2"), T0 + days(90)),
        ("e", "05", None, T0 + days(90)),
    ];
    for (i, (cert, serial, ca, not_after)) in issue.into_iter().enumerate() {
        active(&store, &w, cert, days(1)).await;
        let v = version(&format!("v-{cert}"), cert, serial, ca, not_after);
        store.complete_issuance(None, &v, &alice(), at(i as i64 + 1)).await.unwrap();
    }

    assert_eq!(store.ca_issued_serials("ca-1", T0, 10).await.unwrap(), ["03", "02", "01"], "newest first");
    assert_eq!(store.ca_issued_serials("ca-1", T0 + days(2), 10).await.unwrap(), ["02", "01"], "expired ones drop out");
    assert_eq!(store.ca_issued_serials("ca-1", T0 + days(2), 1).await.unwrap(), ["02"]);
    assert_eq!(store.ca_issued_serials("ca-2", T0, 10).await.unwrap(), ["04"]);
    assert!(store.ca_issued_serials("ca-1", T0 + days(100), 10).await.unwrap().is_empty());

    for (ca, serial, want) in [
        ("ca-1", "01", SerialStatus::Good),
        ("ca-1", "03", SerialStatus::Good),
        ("ca-2", "04", SerialStatus::Good),
        ("ca-1", "04", SerialStatus::Unknown),
        ("ca-1", "05", SerialStatus::Unknown),
        ("ca-1", "ff", SerialStatus::Unknown),
        ("ca-nope", "01", SerialStatus::Unknown),
    ] {
        assert_eq!(store.serial_status(ca, serial).await.unwrap(), want, "{ca}/{serial}");
    }
}

/// A revocation that lands while an issuance of the same certificate is running.
async fn running_issuance_after_revocation(db: &TestDb) {
    let store = db.store().await;
    let w = world(&store).await;
    store.create_ca(&new_ca("ca-1", &w.issuer, None), &alice(), T0).await.unwrap();
    let cert = active(&store, &w, "web", days(5)).await;
    let first = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(1)).await.unwrap().id;
    store.claim_issuance_jobs(at(2), Duration::minutes(5), 10).await.unwrap();
    store
        .complete_issuance(Some(&first), &version("v1", &cert, "01", Some("ca-1"), T0 + days(90)), &alice(), at(3))
        .await
        .unwrap();
    let second = store.request_renewal(&renewal(&cert, JobStatus::Pending), &alice(), at(4)).await.unwrap().id;
    store.claim_issuance_jobs(at(5), Duration::minutes(5), 10).await.unwrap();

    let rev = NewRevocation {
        certificate_id: cert.clone(),
        issuer_id: w.issuer.clone(),
        ca_id: "ca-1".into(),
        serial_number: "01".into(),
        reason: "keyCompromise".into(),
    };
    store.revoke_certificate(&rev, &alice(), at(6)).await.unwrap();
    let late = complete(&store, Some(&second), version("v2", &cert, "02", Some("ca-1"), T0 + days(90)), at(7));
    let late = late.await;
    let c = store.certificate(&cert).await.unwrap();
    assert_eq!(
        (c.status, c.revocation_reason.as_deref()),
        (CertificateStatus::Revoked, Some("keyCompromise")),
        "a revoked certificate stays revoked; the late completion returned {late:?}"
    );
    conflict(late, "completing an issuance of a revoked certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_issuance_does_not_revive_a_revoked_certificate() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await else { continue };
        running_issuance_after_revocation(&db).await;
        db.cleanup().await;
    }
}
