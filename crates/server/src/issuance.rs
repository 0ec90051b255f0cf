//! The issuance pipeline: renewal requests become jobs; the processor issues server-key jobs
//! and parks agent-key jobs in AwaitingCSR until the agent's CSR arrives; failures are retried
//! with backoff up to the renewal policy's limit, after which the certificate is `Failed`.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use certctl_api::{
    CertificateProfile, CertificateStatus, CsrIssued, ExtendedKeyUsage, Job, JobStatus, JobType, KeyAlgorithm,
    KeyAlgorithmRule, KeyMode, ManagedCertificate,
};
use certctl_pki::constraints::San;
use certctl_pki::csr::{ParsedCsr, parse_csr};
use certctl_pki::issue::{Eku, IssuedCert, LeafRequest, PkiUrls, issue_leaf};
use certctl_pki::keys::{KeySpec, PrivateKey};
use certctl_store::{
    Actor, AttemptOutcome, Completion, CompletionRequest, IssuedVersion, RenewalRequest, Store, new_id,
};
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::local_ca::pki_error;

/// How long a claimed job belongs to this replica before another may take it over.
const JOB_LEASE: Duration = Duration::minutes(5);
/// Jobs claimed per processor pass.
const CLAIM_BATCH: i64 = 32;
/// Longest wait between two attempts, whatever the policy's interval and the attempt count.
const MAX_RETRY_DELAY: Duration = Duration::hours(24);
/// How long an issuance may wait for the agent's CSR.
pub const CSR_TIMEOUT: Duration = Duration::hours(24);
/// How long an issuance may wait for approval.
pub const APPROVAL_TIMEOUT: Duration = Duration::hours(168);

/// How long a certificate profile is used without reading it again; bounds how long another
/// replica's change to it takes to apply here.
const PROFILE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything signing needs about one certificate.
struct Context {
    cert: ManagedCertificate,
    profile: Option<CertificateProfile>,
}

async fn context(s: &AppState, certificate_id: &str) -> ApiResult<Context> {
    let cert = s.store.certificate(certificate_id).await?;
    with_profile(s, cert).await
}

async fn with_profile(s: &AppState, cert: ManagedCertificate) -> ApiResult<Context> {
    let profile = match &cert.certificate_profile_id {
        Some(id) => {
            Some(s.engine.profiles.get_or_load(id, async { Ok::<_, ApiError>(s.store.profile(id).await?) }).await?)
        }
        None => None,
    };
    Ok(Context { cert, profile })
}

fn key_mode(s: &AppState, ctx: &Context) -> KeyMode {
    ctx.profile.as_ref().and_then(|p| p.key_mode).unwrap_or(s.config.keygen_mode)
}

/// Opens an issuance for a certificate (API and bulk renew).
pub async fn request_renewal(s: &AppState, certificate_id: &str, force: bool, actor: &Actor) -> ApiResult<Job> {
    let ctx = context(s, certificate_id).await?;
    if matches!(ctx.cert.status, CertificateStatus::Archived | CertificateStatus::Revoked) {
        return Err(ApiError::Conflict(format!(
            "certificate '{certificate_id}' is {} and cannot be renewed",
            ctx.cert.status
        )));
    }
    let issuer = s.store.issuer(&ctx.cert.issuer_id).await?;
    if !matches!(issuer.issuer_type, certctl_api::IssuerType::GenericCa | certctl_api::IssuerType::Acme) {
        return Err(ApiError::Unprocessable(format!(
            "issuer '{}' is of type {} and certctl cannot issue through it yet",
            issuer.id, issuer.issuer_type
        )));
    }
    let policy = s.store.renewal_policy(&ctx.cert.renewal_policy_id).await?;
    let approval = ctx.profile.as_ref().is_some_and(|p| p.requires_approval);
    let req = RenewalRequest {
        certificate_id: certificate_id.to_owned(),
        job_type: if ctx.cert.expires_at.is_none() { JobType::Issuance } else { JobType::Renewal },
        status: if approval { JobStatus::AwaitingApproval } else { JobStatus::Pending },
        max_attempts: policy.max_retries.max(0) + 1,
        force,
    };
    let job = s.store.request_renewal(&req, actor, s.clock.now()).await?;
    s.engine.wake.notify_one();
    Ok(job)
}

/// One processor pass: claims due issuance jobs and runs them. Returns how many it handled.
pub async fn process_due_jobs(s: &AppState) -> ApiResult<usize> {
    let jobs = s.store.claim_issuance_jobs(s.clock.now(), JOB_LEASE, CLAIM_BATCH).await?;
    let n = jobs.len();
    for job in jobs {
        if let Err(e) = process_job(s, &job).await {
            tracing::warn!(job_id = %job.id, certificate_id = %job.certificate_id, error = %e, "issuance attempt failed");
            record_failure(s, &job, &e.to_string()).await;
        }
    }
    Ok(n)
}

async fn process_job(s: &AppState, job: &Job) -> ApiResult<()> {
    let ctx = context(s, &job.certificate_id).await?;
    match key_mode(s, &ctx) {
        KeyMode::Agent => {
            s.store
                .transition_job(
                    &job.id,
                    JobStatus::Running,
                    JobStatus::AwaitingCsr,
                    None,
                    &Actor::system(),
                    s.clock.now(),
                )
                .await?;
            Ok(())
        }
        KeyMode::Server => {
            let spec = server_key_spec(ctx.profile.as_ref());
            let key = generate_key(s, spec).await?;
            let issued = issue_for(s, &ctx, Subject::Key(&key)).await?;
            complete(s, Some(&job.id), &ctx, issued, None, Some(&key), &Actor::system()).await?;
            Ok(())
        }
    }
}

/// Records a failed attempt: another try after the policy's interval (doubling per attempt), or
/// `Failed` once the attempts are spent.
pub async fn record_failure(s: &AppState, job: &Job, error: &str) {
    let now = s.clock.now();
    let interval = match s.store.certificate(&job.certificate_id).await {
        Ok(cert) => {
            s.store.renewal_policy(&cert.renewal_policy_id).await.map(|p| p.retry_interval_seconds).unwrap_or(3600)
        }
        Err(_) => 3600,
    };
    let retry_at = retry_time(job.attempts, job.max_attempts, interval, now);
    match s.store.fail_issuance_attempt(&job.id, error, retry_at, &Actor::system(), now).await {
        Ok(AttemptOutcome::Exhausted) => {
            tracing::error!(job_id = %job.id, certificate_id = %job.certificate_id, attempts = job.attempts, error, "renewal failed for good; certificate marked Failed");
        }
        Ok(AttemptOutcome::RetryAt(at)) => {
            tracing::info!(job_id = %job.id, retry_at = %at, "issuance will be retried");
        }
        // The job was cancelled meanwhile (revocation, archival, a forced renewal): nothing to retry.
        Err(certctl_store::StoreError::Conflict(why)) => {
            tracing::info!(job_id = %job.id, why, "job ended elsewhere; attempt not recorded");
        }
        Err(e) => tracing::error!(job_id = %job.id, error = %e, "cannot record the failed attempt"),
    }
}

/// When the next attempt runs, or `None` when `attempts` used up `max_attempts`.
pub fn retry_time(
    attempts: i64,
    max_attempts: i64,
    interval_seconds: i64,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    if attempts >= max_attempts {
        return None;
    }
    let base = Duration::seconds(interval_seconds.max(1));
    let doublings = (attempts - 1).clamp(0, 16) as u32;
    let delay = base.checked_mul(1i32 << doublings).unwrap_or(MAX_RETRY_DELAY).min(MAX_RETRY_DELAY);
    Some(now + delay)
}

/// Times out jobs stuck waiting for a CSR or an approval; each counts as a failed attempt.
pub async fn reap_overdue_jobs(s: &AppState) -> ApiResult<usize> {
    let jobs = s.store.overdue_jobs(s.clock.now(), CSR_TIMEOUT, APPROVAL_TIMEOUT, 500).await?;
    for job in &jobs {
        let why = if job.status == JobStatus::AwaitingCsr {
            "timed out waiting for the agent's CSR"
        } else {
            "timed out waiting for approval"
        };
        // Waiting for approval is not retried: nobody approved, so another wait would not help.
        let job = if job.status == JobStatus::AwaitingApproval {
            Job { attempts: job.max_attempts, ..job.clone() }
        } else {
            job.clone()
        };
        record_failure(s, &job, why).await;
    }
    Ok(jobs.len())
}

/// Issues the certificate an agent's CSR asks for and completes the waiting job.
pub async fn submit_csr(
    s: &AppState,
    agent_id: &str,
    certificate_id: &str,
    csr_pem: &str,
    actor: &Actor,
) -> ApiResult<CsrIssued> {
    let csr = parse_csr(csr_pem.as_bytes()).map_err(pki_error)?;
    // One read for the agent check, the certificate and the issuance waiting for this CSR.
    let inputs = s.store.csr_inputs(agent_id, certificate_id).await?;
    let ctx = with_profile(s, inputs.certificate).await?;
    check_key(ctx.profile.as_ref(), csr.key)?;
    check_names(&ctx.cert, &csr)?;
    if matches!(ctx.cert.status, CertificateStatus::Archived | CertificateStatus::Revoked) {
        return Err(ApiError::Conflict(format!(
            "certificate '{certificate_id}' is {} and cannot be issued",
            ctx.cert.status
        )));
    }
    // A CSR completes the issuance waiting for it; without one (an agent re-keying on its own
    // schedule, bulk tooling) the certificate is issued directly.
    let job = match inputs.awaiting_job_id {
        Some(job_id) => {
            let now = s.clock.now();
            Some(
                s.store
                    .transition_job(
                        &job_id,
                        JobStatus::AwaitingCsr,
                        JobStatus::Running,
                        Some(now + JOB_LEASE),
                        actor,
                        now,
                    )
                    .await?,
            )
        }
        None => None,
    };
    let issued = match issue_for(s, &ctx, Subject::Csr(&csr)).await {
        Ok(issued) => issued,
        Err(e) => {
            if let Some(job) = &job {
                record_failure(s, job, &e.to_string()).await;
            }
            return Err(e);
        }
    };
    let job_id = job.map(|j| j.id);
    let (version_id, leaf, chain) =
        complete(s, job_id.as_deref(), &ctx, issued.clone(), Some(csr_pem.to_owned()), None, actor).await?;
    Ok(CsrIssued {
        certificate_id: certificate_id.to_owned(),
        job_id,
        version_id,
        serial_number: issued.0.serial_hex,
        cert_pem: leaf,
        chain_pem: chain,
        not_after: issued.0.not_after,
    })
}

/// An issued leaf, the chain above it, and the local CA that signed it (none for an external
/// CA).
type Issued = (IssuedCert, String, Option<String>);

/// What a certificate is issued for.
enum Subject<'a> {
    /// A key the server generated.
    Key(&'a PrivateKey),
    /// An agent's CSR.
    Csr(&'a ParsedCsr),
}

/// Issues a leaf through the certificate's issuer and counts the outcome and the time it took.
async fn issue_for(s: &AppState, ctx: &Context, subject: Subject<'_>) -> ApiResult<Issued> {
    let started = std::time::Instant::now();
    let issuer_type = s.engine.authorities.issuer_type(s, &ctx.cert.issuer_id).await?;
    let result = match issuer_type {
        certctl_api::IssuerType::Acme => issue_acme(s, ctx, subject).await,
        _ => {
            let public = match subject {
                Subject::Key(key) => key.public_key_der(),
                Subject::Csr(csr) => csr.public_key_der.clone(),
            };
            sign_leaf(s, ctx, &public).await
        }
    };
    let outcome = if result.is_ok() { "success" } else { "failure" };
    s.metrics.issuance(issuer_type.as_str(), outcome, started.elapsed());
    result
}

async fn issue_acme(s: &AppState, ctx: &Context, subject: Subject<'_>) -> ApiResult<Issued> {
    use crate::acme_issuer::CsrSource;
    let names = certificate_names(&ctx.cert)?;
    let source = match subject {
        Subject::Key(key) => CsrSource::Key(key),
        Subject::Csr(csr) => CsrSource::Csr { der: &csr.der, public_key_der: &csr.public_key_der, key: csr.key },
    };
    let (issued, chain) = crate::acme_issuer::issue(s, &ctx.cert, &names, source).await?;
    Ok((issued, chain, None))
}

async fn sign_leaf(s: &AppState, ctx: &Context, public_key_der: &[u8]) -> ApiResult<Issued> {
    let signer = s.engine.authorities.signer(s, &ctx.cert.issuer_id).await?;
    let (config, ca) = (&signer.config, &signer.ca);
    let mut validity = Duration::days(config.validity_days);
    if let Some(p) = &ctx.profile
        && p.max_ttl_seconds > 0
    {
        validity = validity.min(Duration::seconds(p.max_ttl_seconds));
    }
    let sans = certificate_names(&ctx.cert)?;
    let ekus = ekus(ctx.profile.as_ref());
    let base = pki_base_url(s);
    let ca_id = ca.record.id.clone();
    let urls = PkiUrls {
        crl: Some(format!("{base}/.well-known/pki/crl/{ca_id}")),
        ocsp: Some(format!("{base}/.well-known/pki/ocsp/{ca_id}")),
        ca_issuers: Some(format!("{base}/.well-known/pki/ca/{ca_id}")),
    };
    let must_staple = ctx.profile.as_ref().is_some_and(|p| p.must_staple);
    let req = LeafRequest {
        public_key_der,
        common_name: &ctx.cert.common_name,
        sans: &sans,
        ekus: &ekus,
        must_staple,
        validity,
        urls: &urls,
    };
    let issued = issue_leaf(&ca.ca, &req, s.clock.now()).map_err(pki_error)?;
    Ok((issued, ca.ca.chain_pem(), Some(ca_id)))
}

async fn complete(
    s: &AppState,
    job_id: Option<&str>,
    ctx: &Context,
    (issued, chain_pem, ca_id): Issued,
    csr_pem: Option<String>,
    key: Option<&PrivateKey>,
    actor: &Actor,
) -> ApiResult<(String, String, String)> {
    let version_id = new_id("certver");
    let sealed = key.map(|k| s.secrets.seal(&version_key_context(&version_id), k.pkcs8_der()));
    let version = IssuedVersion {
        id: version_id.clone(),
        certificate_id: ctx.cert.id.clone(),
        serial_number: issued.serial_hex.clone(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        fingerprint_sha256: issued.fingerprint_sha256.clone(),
        pem_chain: format!("{}{}", issued.pem, chain_pem),
        csr_pem,
        key_algorithm: issued.key.family().to_owned(),
        key_size: i64::from(issued.key.size_bits()),
        issuer_ca_id: ca_id,
        sealed_private_key: sealed,
    };
    let request = CompletionRequest { job_id: job_id.map(str::to_owned), version, actor: actor.clone() };
    s.engine.completions.complete(s, request).await?;
    Ok((version_id, issued.pem, chain_pem))
}

/// The sealing context of a server-generated private key.
pub fn version_key_context(version_id: &str) -> String {
    format!("certver:{version_id}")
}

/// Base URL written into certificates for CRL, OCSP and CA issuer links.
pub fn pki_base_url(s: &AppState) -> String {
    match s.config.pki_http_listen {
        // Relying parties fetch CRLs and OCSP over plain HTTP (RFC 5280 practice), so the
        // dedicated listener wins when it has an address clients can reach.
        Some(addr) if !addr.ip().is_unspecified() => format!("http://{addr}"),
        _ => s.config.external_url.trim_end_matches('/').to_owned(),
    }
}

async fn generate_key(s: &AppState, spec: KeySpec) -> ApiResult<PrivateKey> {
    // RSA key generation takes hundreds of milliseconds of CPU; bounding it keeps a burst of
    // server-key renewals from starving request handling.
    let _permit = s.engine.keygen.acquire().await.map_err(|_| ApiError::Unavailable("shutting down".into()))?;
    tokio::task::spawn_blocking(move || PrivateKey::generate(spec))
        .await
        .map_err(|e| ApiError::Internal(format!("key generation panicked: {e}")))?
        .map_err(pki_error)
}

/// The managed certificate's names as SANs: its SAN list plus the common name when that is a
/// host name or address not already listed.
fn certificate_names(cert: &ManagedCertificate) -> ApiResult<Vec<San>> {
    let mut names = Vec::with_capacity(cert.sans.len() + 1);
    for s in &cert.sans {
        let san = San::parse(s).map_err(|e| ApiError::Unprocessable(format!("sans: '{s}': {e}")))?;
        if !names.contains(&san) {
            names.push(san);
        }
    }
    if let Ok(cn) = San::parse(&cert.common_name)
        && matches!(cn, San::Dns(_) | San::Ip(_))
        && !names.contains(&cn)
    {
        names.insert(0, cn);
    }
    Ok(names)
}

pub(crate) fn ekus(profile: Option<&CertificateProfile>) -> Vec<Eku> {
    let list = profile.map(|p| p.allowed_ekus.as_slice()).unwrap_or(&[]);
    let mut out: Vec<Eku> = list
        .iter()
        .map(|e| match e {
            ExtendedKeyUsage::ServerAuth => Eku::ServerAuth,
            ExtendedKeyUsage::ClientAuth => Eku::ClientAuth,
            ExtendedKeyUsage::CodeSigning => Eku::CodeSigning,
            ExtendedKeyUsage::EmailProtection => Eku::EmailProtection,
            ExtendedKeyUsage::TimeStamping => Eku::TimeStamping,
        })
        .collect();
    if out.is_empty() {
        out.push(Eku::ServerAuth);
    }
    out
}

fn default_rules() -> Vec<KeyAlgorithmRule> {
    vec![
        KeyAlgorithmRule { algorithm: KeyAlgorithm::Ecdsa, min_size: 256 },
        KeyAlgorithmRule { algorithm: KeyAlgorithm::Rsa, min_size: 2048 },
        KeyAlgorithmRule { algorithm: KeyAlgorithm::Ed25519, min_size: 0 },
    ]
}

fn family(spec: KeySpec) -> KeyAlgorithm {
    match spec.family() {
        "RSA" => KeyAlgorithm::Rsa,
        "Ed25519" => KeyAlgorithm::Ed25519,
        _ => KeyAlgorithm::Ecdsa,
    }
}

/// Refuses a key the profile does not accept (422).
pub(crate) fn check_key(profile: Option<&CertificateProfile>, key: KeySpec) -> ApiResult<()> {
    let rules = match profile {
        Some(p) if !p.allowed_key_algorithms.is_empty() => p.allowed_key_algorithms.clone(),
        _ => default_rules(),
    };
    let fam = family(key);
    let size = key.size_bits();
    if rules.iter().any(|r| r.algorithm == fam && size >= r.min_size) {
        return Ok(());
    }
    let accepted: Vec<String> = rules.iter().map(|r| format!("{} ≥ {}", r.algorithm, r.min_size)).collect();
    Err(ApiError::Unprocessable(format!(
        "csr_pem: key {} is not accepted by the profile (accepted: {})",
        key.as_str(),
        accepted.join(", ")
    )))
}

/// The key a server-side issuance generates: the strongest-sensible choice within the
/// profile's first rule.
fn server_key_spec(profile: Option<&CertificateProfile>) -> KeySpec {
    let Some(rule) = profile.and_then(|p| p.allowed_key_algorithms.first()) else {
        return KeySpec::EcdsaP256;
    };
    match rule.algorithm {
        KeyAlgorithm::Ecdsa if rule.min_size > 256 => KeySpec::EcdsaP384,
        KeyAlgorithm::Ecdsa => KeySpec::EcdsaP256,
        KeyAlgorithm::Rsa if rule.min_size > 3072 => KeySpec::Rsa4096,
        KeyAlgorithm::Rsa if rule.min_size > 2048 => KeySpec::Rsa3072,
        KeyAlgorithm::Rsa => KeySpec::Rsa2048,
        KeyAlgorithm::Ed25519 => KeySpec::Ed25519,
    }
}

/// A CSR must ask for the managed certificate's names: its CN (when present) must be the
/// certificate's CN or one of its SANs, and each of its SANs must be one of the certificate's.
fn check_names(cert: &ManagedCertificate, csr: &ParsedCsr) -> ApiResult<()> {
    let allowed = certificate_names(cert)?;
    let mut allowed_text: Vec<String> = allowed.iter().map(|n| n.to_string().to_ascii_lowercase()).collect();
    allowed_text.push(cert.common_name.to_ascii_lowercase());
    if let Some(cn) = &csr.common_name
        && !cn.is_empty()
        && !allowed_text.contains(&cn.to_ascii_lowercase())
    {
        return Err(ApiError::Unprocessable(format!(
            "csr_pem: common name '{cn}' does not match certificate '{}' ({})",
            cert.id, cert.common_name
        )));
    }
    for san in &csr.sans {
        if !allowed.contains(san) {
            return Err(ApiError::Unprocessable(format!(
                "csr_pem: subject alternative name '{san}' is not one of certificate '{}''s names",
                cert.id
            )));
        }
    }
    Ok(())
}

/// Shared runtime pieces of the issuance and revocation machinery.
pub struct Engine {
    pub authorities: crate::local_ca::Authorities,
    pub completions: CompletionQueue,
    pub heartbeats: crate::heartbeats::HeartbeatQueue,
    pub revocation: crate::revocation::RevocationState,
    /// Wakes the job processor when a new job is due now.
    pub wake: tokio::sync::Notify,
    pub keygen: tokio::sync::Semaphore,
    pub acme_client: crate::acme_issuer::AcmeClient,
    /// Certificate profiles read by every issuance; cleared when this replica changes one.
    pub profiles: crate::ttl_cache::TtlCache<CertificateProfile>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            authorities: Default::default(),
            completions: Default::default(),
            heartbeats: Default::default(),
            revocation: Default::default(),
            wake: tokio::sync::Notify::new(),
            keygen: tokio::sync::Semaphore::new(2),
            acme_client: Default::default(),
            profiles: crate::ttl_cache::TtlCache::new(PROFILE_TTL),
        }
    }
}

pub type SharedEngine = Arc<Engine>;

/// Issuances waiting for the writer; senders wait when it is this far behind.
const COMPLETION_QUEUE_DEPTH: usize = 1024;
/// Most issuances recorded in one transaction.
const COMPLETION_BATCH: usize = 128;

type QueuedCompletion = (CompletionRequest, oneshot::Sender<certctl_store::Result<Completion>>);

/// Group commit for issuances: every completed issuance goes to one writer task, which records
/// whatever has queued up while the previous transaction committed as one transaction and
/// answers each request with its own result. Under load this turns many small write
/// transactions contending for the database's write lock (and, on PostgreSQL, the audit
/// chain's lock) into a few large ones; a lone issuance is recorded at once.
#[derive(Default)]
pub struct CompletionQueue {
    sender: std::sync::OnceLock<mpsc::Sender<QueuedCompletion>>,
}

impl CompletionQueue {
    /// Records one issuance through the writer and returns its result. The writer starts on
    /// first use, in the runtime that serves the requests.
    pub async fn complete(&self, s: &AppState, request: CompletionRequest) -> ApiResult<Completion> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(COMPLETION_QUEUE_DEPTH);
            tokio::spawn(record_completions(s.store.clone(), s.clock.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::Internal("the issuance writer has stopped".into());
        sender.send((request, reply)).await.map_err(|_| stopped())?;
        Ok(answer.await.map_err(|_| stopped())??)
    }
}

/// The writer: runs until every sender is gone, so requests already queued at shutdown are
/// still recorded and answered.
async fn record_completions(
    store: Store,
    clock: Arc<dyn crate::clock::Clock>,
    mut receiver: mpsc::Receiver<QueuedCompletion>,
) {
    let mut queued = Vec::with_capacity(COMPLETION_BATCH);
    while receiver.recv_many(&mut queued, COMPLETION_BATCH).await > 0 {
        let (requests, replies): (Vec<_>, Vec<_>) = queued.drain(..).unzip();
        let results = store.complete_issuances(&requests, clock.now()).await;
        for (reply, result) in replies.into_iter().zip(results) {
            // A requester that gave up (client disconnected) no longer needs the answer; the
            // issuance is recorded all the same.
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_and_stop_at_the_limit() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(retry_time(1, 3, 60, now), Some(now + Duration::seconds(60)));
        assert_eq!(retry_time(2, 3, 60, now), Some(now + Duration::seconds(120)));
        assert_eq!(retry_time(3, 3, 60, now), None);
        assert_eq!(retry_time(10, 20, 3600, now), Some(now + MAX_RETRY_DELAY));
    }
}
