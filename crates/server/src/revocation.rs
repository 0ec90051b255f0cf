//! Revocation, CRLs and the OCSP responder.
//!
//! Every revocation bumps its CA's revocation generation in the database. Each replica polls
//! the generations (the PKI loop of the scheduler, twice a second) and treats cached CRLs and
//! OCSP responses of an older generation as stale, so a revocation on any replica shows in
//! every replica's CRL and OCSP answers within a second. The replica that revoked sees it at
//! once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use time::{Duration, OffsetDateTime};

use certctl_api::{CertificateStatus, RevocationResult};
use certctl_pki::crl::{RevokedEntry, build_crl};
use certctl_pki::ocsp::{
    CertIdRef, CertStatus, IssuerHashes, OcspError, OcspResponseStatusCode, Responder, SingleAnswer, error_response,
    parse_request, sign_response,
};
use certctl_pki::revocation::RevocationReason;
use certctl_store::{Actor, CaRecord, NewRevocation, SerialStatus, StoredResponder};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::local_ca::pki_error;

/// How long a CRL is valid; it is rebuilt well before.
const CRL_VALIDITY: Duration = Duration::hours(24);
/// Age after which a CRL is rebuilt even without revocations.
const CRL_REFRESH: Duration = Duration::hours(1);
/// Validity of a pre-signed OCSP response.
const OCSP_VALIDITY: Duration = Duration::hours(4);
/// Age after which a cached OCSP response is signed anew.
const OCSP_REFRESH: Duration = Duration::hours(1);
/// Validity of a delegated OCSP responder certificate.
const RESPONDER_VALIDITY: Duration = Duration::days(30);
/// A responder certificate closer than this to expiry is replaced.
const RESPONDER_ROTATE_BEFORE: Duration = Duration::days(7);
/// A cached response is no longer served this close to its nextUpdate.
const OCSP_STALE_MARGIN: Duration = Duration::minutes(30);
/// Responses re-signed per background run.
const OCSP_REFRESH_BATCH: usize = 20_000;
/// Cached OCSP responses kept per replica; beyond this the cache starts over.
const OCSP_CACHE_LIMIT: usize = 500_000;

/// A built CRL.
#[derive(Clone)]
pub struct CachedCrl {
    pub der: Bytes,
    pub etag: String,
    pub crl_number: i64,
    generation: i64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

#[derive(Clone)]
struct CachedOcsp {
    der: Bytes,
    id: CertIdRef,
    ca_id: Arc<str>,
    generation: i64,
    /// When the background refresh signs it anew.
    refresh_after: OffsetDateTime,
    /// After this it is never served, refreshed or not.
    stale_after: OffsetDateTime,
}

/// Per-replica caches of CRLs, OCSP responses, responders and issuer hashes.
#[derive(Default)]
pub struct RevocationState {
    generations: RwLock<HashMap<String, i64>>,
    crls: RwLock<HashMap<String, CachedCrl>>,
    ocsp: RwLock<HashMap<Vec<u8>, CachedOcsp>>,
    responders: RwLock<HashMap<String, Arc<Responder>>>,
    hashes: RwLock<HashMap<String, Arc<IssuerHashes>>>,
    /// CA IDs by issuer ID (and by CA ID itself), for resolving the `{issuer_id}` path segment.
    cas_by_path: RwLock<HashMap<String, Vec<String>>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl RevocationState {
    fn generation(&self, ca_id: &str) -> Option<i64> {
        read(&self.generations).get(ca_id).copied()
    }

    /// Reads every CA's revocation generation; returns the CAs whose generation moved.
    pub async fn refresh_generations(&self, s: &AppState) -> ApiResult<Vec<String>> {
        let current = s.store.ca_generations().await?;
        let mut changed = Vec::new();
        let mut map = write(&self.generations);
        for (id, generation) in current {
            if map.insert(id.clone(), generation) != Some(generation) {
                changed.push(id);
            }
        }
        Ok(changed)
    }
}

/// Revokes the current version of a certificate and rebuilds its CA's CRL.
pub async fn revoke(
    s: &AppState,
    certificate_id: &str,
    reason: Option<&str>,
    actor: &Actor,
) -> ApiResult<RevocationResult> {
    let (result, ca_id) = revoke_only(s, certificate_id, reason, actor).await?;
    publish(s, ca_id.as_slice()).await;
    Ok(result)
}

/// Makes revocations of these CAs visible: this replica's generations and CRLs are refreshed at
/// once (other replicas follow within their next poll).
pub async fn publish(s: &AppState, ca_ids: &[String]) {
    if let Err(e) = s.engine.revocation.refresh_generations(s).await {
        tracing::warn!(error = %e, "cannot refresh revocation generations after a revocation");
    }
    let mut seen: Vec<&String> = Vec::new();
    for ca_id in ca_ids {
        if seen.contains(&ca_id) {
            continue;
        }
        seen.push(ca_id);
        if let Err(e) = crl(s, ca_id).await {
            tracing::warn!(ca_id, error = %e, "cannot rebuild the CRL after a revocation");
        }
    }
}

/// Records a revocation without rebuilding the CRL; bulk revocation publishes once at the end.
/// Returns the result and the local CA whose CRL changed (none when an external ACME CA
/// issued the certificate: it is revoked there).
pub async fn revoke_only(
    s: &AppState,
    certificate_id: &str,
    reason: Option<&str>,
    actor: &Actor,
) -> ApiResult<(RevocationResult, Option<String>)> {
    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => RevocationReason::parse(r).map_err(|e| ApiError::BadRequest(format!("reason: {e}")))?,
        None => RevocationReason::Unspecified,
    };
    let cert = s.store.certificate(certificate_id).await?;
    if matches!(cert.status, CertificateStatus::Revoked | CertificateStatus::Archived) {
        return Err(ApiError::Conflict(format!(
            "certificate '{certificate_id}' is {} and cannot be revoked",
            cert.status
        )));
    }
    let version =
        s.store.current_version(certificate_id).await?.ok_or_else(|| {
            ApiError::Conflict(format!("certificate '{certificate_id}' has no issued version to revoke"))
        })?;
    if version.issuer_ca_id.is_none()
        && s.store.issuer(&cert.issuer_id).await?.issuer_type == certctl_api::IssuerType::Acme
    {
        return Ok((crate::acme_issuer::revoke(s, &cert, reason, actor).await?, None));
    }
    let ca_id = version.issuer_ca_id.ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "certificate '{certificate_id}' was not issued by certctl's local CA; revoke it at its issuer"
        ))
    })?;
    let rev = NewRevocation {
        certificate_id: certificate_id.to_owned(),
        issuer_id: cert.issuer_id.clone(),
        ca_id: ca_id.clone(),
        serial_number: version.version.serial_number.clone(),
        reason: reason.name().to_owned(),
    };
    let revoked = s.store.revoke_certificate(&rev, actor, s.clock.now()).await?;
    let result = RevocationResult {
        status: "revoked".into(),
        certificate_id: certificate_id.to_owned(),
        serial_number: revoked.serial_number,
        reason: revoked.reason,
        revoked_at: revoked.revoked_at,
    };
    Ok((result, Some(ca_id)))
}

/// The CA IDs a PKI path segment names: a CA ID names itself; an issuer ID names every CA of
/// that issuer (oldest first).
async fn resolve(s: &AppState, id: &str) -> ApiResult<Vec<String>> {
    if let Some(ids) = read(&s.engine.revocation.cas_by_path).get(id) {
        return Ok(ids.clone());
    }
    let ids = match s.store.ca(id).await {
        Ok(ca) => vec![ca.id],
        Err(certctl_store::StoreError::NotFound { .. }) => match s.store.issuer_cas(id).await {
            Ok(cas) if !cas.is_empty() => cas.into_iter().map(|c| c.id).collect(),
            Ok(_) | Err(certctl_store::StoreError::NotFound { .. }) => {
                return Err(ApiError::NotFound(format!("no certificate authority or local-CA issuer '{id}'")));
            }
            Err(e) => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    // Issuer mappings can grow when intermediates are added, so only CA IDs are cached.
    if ids.len() == 1 && ids[0] == id {
        write(&s.engine.revocation.cas_by_path).insert(id.to_owned(), ids.clone());
    }
    Ok(ids)
}

/// The current CRL of the CA (or of the issuer's root CA) that `id` names.
pub async fn crl(s: &AppState, id: &str) -> ApiResult<CachedCrl> {
    let ca_id = resolve(s, id).await?.into_iter().next().ok_or_else(|| ApiError::NotFound(format!("no CA '{id}'")))?;
    let state = &s.engine.revocation;
    let now = s.clock.now();
    let generation = match state.generation(&ca_id) {
        Some(g) => g,
        None => {
            state.refresh_generations(s).await?;
            state.generation(&ca_id).unwrap_or(0)
        }
    };
    if let Some(c) = read(&state.crls).get(&ca_id)
        && c.generation == generation
        && now < c.this_update + CRL_REFRESH
    {
        return Ok(c.clone());
    }
    let loaded = s.engine.authorities.load(s, &ca_id).await?;
    let revoked = s.store.ca_revocations(&ca_id).await?;
    let entries: Vec<RevokedEntry> = revoked
        .iter()
        .map(|r| {
            Ok(RevokedEntry {
                serial: hex::decode(&r.serial_number)
                    .map_err(|_| ApiError::Internal(format!("stored serial '{}' is not hex", r.serial_number)))?,
                revoked_at: r.revoked_at,
                reason: RevocationReason::parse(&r.reason).unwrap_or(RevocationReason::Unspecified),
            })
        })
        .collect::<ApiResult<_>>()?;
    let number = s.store.next_crl_number(&ca_id).await?;
    let ca = loaded.ca.clone();
    let next_update = (now + CRL_VALIDITY).min(loaded.record.not_after.max(now + Duration::minutes(1)));
    let der = tokio::task::spawn_blocking(move || build_crl(ca.signing(), number as u64, now, next_update, &entries))
        .await
        .map_err(|e| ApiError::Internal(format!("CRL build panicked: {e}")))?
        .map_err(pki_error)?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    let built = CachedCrl {
        etag: format!("\"{}\"", hex::encode(&digest.as_ref()[..16])),
        der: Bytes::from(der),
        crl_number: number,
        generation,
        this_update: now,
        next_update,
    };
    write(&state.crls).insert(ca_id, built.clone());
    Ok(built)
}

/// Rebuilds the CRLs of CAs whose revocations changed, and those due for a refresh.
pub async fn refresh_crls(s: &AppState, changed: &[String]) {
    let now = s.clock.now();
    let due: Vec<String> = {
        let crls = read(&s.engine.revocation.crls);
        crls.iter()
            .filter(|(id, c)| changed.contains(id) || now >= c.this_update + CRL_REFRESH)
            .map(|(id, _)| id.clone())
            .collect()
    };
    for id in due {
        if let Err(e) = crl(s, &id).await {
            tracing::warn!(ca_id = %id, error = %e, "CRL refresh failed");
        }
    }
}

async fn responder(s: &AppState, record: &CaRecord) -> ApiResult<Arc<Responder>> {
    let now = s.clock.now();
    let state = &s.engine.revocation;
    if let Some(r) = read(&state.responders).get(&record.id)
        && r.not_after() > now + RESPONDER_ROTATE_BEFORE
    {
        return Ok(r.clone());
    }
    // A fresh record, so a responder another replica rotated in is reused.
    let record = s.store.ca(&record.id).await?;
    let ctx = format!("ocsp:{}", record.id);
    if let Some(stored) = &record.responder
        && stored.not_after > now + RESPONDER_ROTATE_BEFORE
    {
        let key = s.secrets.open(&ctx, &stored.sealed_key).map_err(|e| {
            ApiError::Internal(format!("OCSP responder key of '{}' cannot be decrypted: {e}", record.id))
        })?;
        let cert = certctl_pki::export::pem_certs_to_der(&stored.cert_pem).map_err(pki_error)?;
        let cert = cert.into_iter().next().ok_or_else(|| ApiError::Internal("empty responder certificate".into()))?;
        let r = Arc::new(Responder::from_parts(cert, key).map_err(pki_error)?);
        write(&state.responders).insert(record.id.clone(), r.clone());
        return Ok(r);
    }
    let loaded = s.engine.authorities.material(s, &record)?;
    let validity = RESPONDER_VALIDITY.min(record.not_after - now);
    let r = Responder::issue(loaded.signing(), now, validity).map_err(pki_error)?;
    let stored = StoredResponder {
        cert_pem: der_to_pem("CERTIFICATE", r.cert_der()),
        sealed_key: s.secrets.seal(&ctx, r.key_pkcs8_der()),
        not_after: r.not_after(),
    };
    s.store.set_ocsp_responder(&record.id, &stored, now).await?;
    let r = Arc::new(r);
    write(&state.responders).insert(record.id.clone(), r.clone());
    tracing::info!(ca_id = %record.id, not_after = %stored.not_after, "OCSP responder certificate issued");
    Ok(r)
}

fn der_to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

async fn hashes(s: &AppState, ca_id: &str) -> ApiResult<(Arc<IssuerHashes>, Option<CaRecord>)> {
    if let Some(h) = read(&s.engine.revocation.hashes).get(ca_id) {
        return Ok((h.clone(), None));
    }
    let record = s.store.ca(ca_id).await?;
    let der = certctl_pki::export::pem_certs_to_der(&record.cert_pem).map_err(pki_error)?;
    let der = der.into_iter().next().ok_or_else(|| ApiError::Internal("empty CA certificate".into()))?;
    let h = Arc::new(IssuerHashes::new(&der).map_err(pki_error)?);
    write(&s.engine.revocation.hashes).insert(ca_id.to_owned(), h.clone());
    Ok((h, Some(record)))
}

/// Answers an OCSP request for the CAs `path_id` names. Always returns a DER OCSPResponse:
/// problems become OCSP error statuses, never HTTP errors.
pub async fn answer_ocsp(s: &AppState, path_id: &str, request: &[u8]) -> Bytes {
    match answer(s, path_id, request).await {
        Ok(der) => {
            s.metrics.ocsp_request("successful");
            der
        }
        Err(status) => {
            s.metrics.ocsp_request(match status {
                OcspResponseStatusCode::MalformedRequest => "malformed_request",
                OcspResponseStatusCode::InternalError => "internal_error",
                OcspResponseStatusCode::TryLater => "try_later",
                OcspResponseStatusCode::Unauthorized => "unauthorized",
            });
            Bytes::from(error_response(status))
        }
    }
}

async fn answer(s: &AppState, path_id: &str, request: &[u8]) -> Result<Bytes, OcspResponseStatusCode> {
    let query = parse_request(request).map_err(|e| match e {
        OcspError::Malformed(_) | OcspError::Unsupported(_) => OcspResponseStatusCode::MalformedRequest,
    })?;
    let now = s.clock.now();
    let state = &s.engine.revocation;
    let cacheable = query.ids.len() == 1 && query.nonce.is_none();
    let hit = if cacheable {
        read(&state.ocsp)
            .get(&query.ids[0].der)
            .filter(|hit| now < hit.stale_after && state.generation(&hit.ca_id) == Some(hit.generation))
            .cloned()
    } else {
        None
    };
    // The usual path names the CA itself (the URL in issued certificates), which needs no lookup;
    // an issuer path is resolved so a cached answer is only given for a CA the path names.
    if let Some(hit) = &hit
        && *hit.ca_id == *path_id
    {
        return Ok(hit.der.clone());
    }
    let cas = resolve(s, path_id).await.map_err(|_| OcspResponseStatusCode::Unauthorized)?;
    if let Some(hit) = hit
        && cas.iter().any(|c| *c == *hit.ca_id)
    {
        return Ok(hit.der);
    }
    // All CertIDs must belong to one CA: one responder signs the whole response.
    let mut owner: Option<String> = None;
    for id in &query.ids {
        let mut found = None;
        for ca_id in &cas {
            let (h, _) = hashes(s, ca_id).await.map_err(|_| OcspResponseStatusCode::InternalError)?;
            if h.matches(id) {
                found = Some(ca_id.clone());
                break;
            }
        }
        match (found, &owner) {
            (None, _) => return Err(OcspResponseStatusCode::Unauthorized),
            (Some(f), Some(o)) if &f != o => return Err(OcspResponseStatusCode::Unauthorized),
            (Some(f), _) => owner = Some(f),
        }
    }
    let ca_id = owner.ok_or(OcspResponseStatusCode::MalformedRequest)?;
    sign_for(s, &ca_id, &query.ids, query.nonce.as_deref(), cacheable).await
}

/// Looks up and signs the status of `ids` under one CA; a single nonce-less answer is cached.
async fn sign_for(
    s: &AppState,
    ca_id: &str,
    ids: &[CertIdRef],
    nonce: Option<&[u8]>,
    cache: bool,
) -> Result<Bytes, OcspResponseStatusCode> {
    let now = s.clock.now();
    let state = &s.engine.revocation;
    let generation = match state.generation(ca_id) {
        Some(g) => g,
        None => {
            state.refresh_generations(s).await.map_err(|_| OcspResponseStatusCode::TryLater)?;
            state.generation(ca_id).unwrap_or(0)
        }
    };
    let record = s.store.ca(ca_id).await.map_err(|_| OcspResponseStatusCode::InternalError)?;
    let mut statuses = Vec::with_capacity(ids.len());
    for id in ids {
        let serial = certctl_pki::serial::serial_hex(&id.serial);
        let status = s.store.serial_status(ca_id, &serial).await.map_err(|_| OcspResponseStatusCode::TryLater)?;
        statuses.push(match status {
            SerialStatus::Good => CertStatus::Good,
            SerialStatus::Unknown => CertStatus::Unknown,
            SerialStatus::Revoked { revoked_at, reason } => {
                CertStatus::Revoked { at: revoked_at, reason: RevocationReason::parse(&reason).ok() }
            }
        });
    }
    let responder = responder(s, &record).await.map_err(|e| {
        tracing::error!(ca_id, error = %e, "OCSP responder unavailable");
        OcspResponseStatusCode::InternalError
    })?;
    let next_update = now + OCSP_VALIDITY;
    let answers: Vec<SingleAnswer> = ids
        .iter()
        .zip(statuses)
        .map(|(id, status)| SingleAnswer { id, status, this_update: now, next_update })
        .collect();
    let der = sign_response(&responder, &answers, now, nonce).map_err(|e| {
        tracing::error!(ca_id, error = %e, "OCSP signing failed");
        OcspResponseStatusCode::InternalError
    })?;
    let der = Bytes::from(der);
    if cache && let [id] = ids {
        let mut cached = write(&state.ocsp);
        if cached.len() >= OCSP_CACHE_LIMIT {
            cached.clear();
        }
        cached.insert(
            id.der.clone(),
            CachedOcsp {
                der: der.clone(),
                id: id.clone(),
                ca_id: Arc::from(ca_id),
                generation,
                refresh_after: now + OCSP_REFRESH,
                stale_after: next_update - OCSP_STALE_MARGIN,
            },
        );
    }
    Ok(der)
}

/// Re-signs cached OCSP responses that are due for a refresh, so clients keep getting
/// pre-signed answers well before their nextUpdate; bounded per run.
pub async fn refresh_ocsp(s: &AppState) {
    let now = s.clock.now();
    let due: Vec<(String, CertIdRef)> = {
        let cache = read(&s.engine.revocation.ocsp);
        cache
            .values()
            .filter(|c| now >= c.refresh_after)
            .take(OCSP_REFRESH_BATCH)
            .map(|c| (c.ca_id.to_string(), c.id.clone()))
            .collect()
    };
    for (ca_id, id) in due {
        if let Err(status) = sign_for(s, &ca_id, std::slice::from_ref(&id), None, true).await {
            tracing::warn!(ca_id, ?status, "OCSP pre-signing failed; the cached answer stays until it is stale");
        }
    }
}
