//! Replay nonces (RFC 8555 §6.5). A nonce is `expiry(8) ‖ random(16) ‖ HMAC-SHA256(…)[..16]`
//! under a key every replica shares (stored sealed in the database), so issuing one costs no
//! database write and any replica accepts it. Spending one records it in the database, whose
//! primary key makes it single-use across replicas; records outlive a nonce's expiry only until
//! the next purge, because an expired nonce fails verification on its own. The expiry comes
//! first so that nonces spent together, issued moments apart, sort together: a batch of spends
//! lands on a page or two of the primary key's index instead of one random page each.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

use certctl_store::StoreError;

use super::problem::AcmeError;
use crate::AppState;
use crate::group_commit::GroupCommit;

/// How long a nonce may wait between issue and use.
pub const NONCE_TTL: Duration = Duration::minutes(30);
const RANDOM_LEN: usize = 16;
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = RANDOM_LEN + 8 + TAG_LEN;
/// The sealing context of the nonce key.
const KEY_CONTEXT: &str = "acme-nonce-key";

/// The nonce key, loaded (or created) on first use.
#[derive(Default)]
pub struct NonceKey(tokio::sync::OnceCell<hmac::Key>);

impl NonceKey {
    async fn get(&self, s: &AppState) -> Result<&hmac::Key, AcmeError> {
        self.0
            .get_or_try_init(|| async {
                let mut fresh = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut fresh)
                    .map_err(|_| AcmeError::Internal("random generator failed".into()))?;
                let sealed = s.secrets.seal(KEY_CONTEXT, &fresh);
                let stored = s.store.acme_nonce_key(&sealed).await?;
                let key = s.secrets.open(KEY_CONTEXT, &stored).map_err(|e| AcmeError::Internal(e.to_string()))?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
            })
            .await
    }
}

/// Nonce spends waiting for the writer; callers wait when it is this far behind.
const SPEND_QUEUE_DEPTH: usize = 4096;
/// Most nonces spent in one transaction.
const SPEND_BATCH: usize = 256;

/// Spends nonces through one writer: every signed ACME request spends one, and concurrent
/// spends share a transaction instead of queueing for the database's writer one by one.
pub struct NonceSpends(GroupCommit<(String, OffsetDateTime, bool), Result<bool, StoreError>>);

impl Default for NonceSpends {
    fn default() -> Self {
        NonceSpends(GroupCommit::new(SPEND_BATCH, SPEND_QUEUE_DEPTH))
    }
}

impl NonceSpends {
    /// Whether this call spent `nonce` (false: spent before). With `purge`, the batch also
    /// deletes expired records.
    async fn spend(
        &self,
        s: &AppState,
        nonce: String,
        expires_at: OffsetDateTime,
        purge: bool,
    ) -> Result<bool, AcmeError> {
        let (store, clock) = (s.store.clone(), s.clock.clone());
        let writer = move || {
            move |items: Vec<(String, OffsetDateTime, bool)>| {
                let (store, now) = (store.clone(), clock.now());
                async move {
                    let purge = items.iter().any(|(_, _, p)| *p);
                    let nonces: Vec<_> = items.into_iter().map(|(n, e, _)| (n, e)).collect();
                    match store.spend_acme_nonces(&nonces, purge, now).await {
                        Ok(spent) => spent.into_iter().map(Ok).collect(),
                        // The batch failed as a whole and spent nothing: each nonce gets its
                        // own attempt, so each caller learns its own outcome.
                        Err(e) => {
                            tracing::warn!(error = %e, nonces = nonces.len(), "batched nonce spend failed; spending one by one");
                            let mut results = Vec::with_capacity(nonces.len());
                            for (nonce, expires_at) in &nonces {
                                results.push(store.spend_acme_nonce(nonce, *expires_at, false, now).await);
                            }
                            results
                        }
                    }
                }
            }
        };
        let spent = self.0.submit((nonce, expires_at, purge), writer).await;
        spent.map_err(|_| AcmeError::Internal("the nonce writer has stopped".into()))?.map_err(AcmeError::from)
    }
}

fn tag(key: &hmac::Key, body: &[u8]) -> [u8; TAG_LEN] {
    let full = hmac::sign(key, body);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full.as_ref()[..TAG_LEN]);
    out
}

/// A fresh nonce.
pub async fn issue(s: &AppState) -> Result<String, AcmeError> {
    let key = s.acme.nonce_key.get(s).await?;
    let mut bytes = [0u8; NONCE_LEN];
    let expiry = (s.clock.now() + NONCE_TTL).unix_timestamp();
    bytes[..8].copy_from_slice(&expiry.to_be_bytes());
    SystemRandom::new()
        .fill(&mut bytes[8..RANDOM_LEN + 8])
        .map_err(|_| AcmeError::Internal("random generator failed".into()))?;
    let t = tag(key, &bytes[..RANDOM_LEN + 8]);
    bytes[RANDOM_LEN + 8..].copy_from_slice(&t);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks a nonce and spends it: a forged, expired or already spent nonce is `badNonce`.
pub async fn spend(s: &AppState, nonce: Option<&str>) -> Result<(), AcmeError> {
    let nonce = nonce.ok_or_else(|| AcmeError::BadNonce("the protected header has no nonce".into()))?;
    let bad = || AcmeError::BadNonce(format!("nonce {nonce:?} was not issued by this server"));
    let bytes = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| bad())?;
    if bytes.len() != NONCE_LEN {
        return Err(bad());
    }
    let key = s.acme.nonce_key.get(s).await?;
    let expected = tag(key, &bytes[..RANDOM_LEN + 8]);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &bytes[RANDOM_LEN + 8..])) {
        return Err(bad());
    }
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&bytes[..8]);
    let expires_at = OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(expiry)).map_err(|_| bad())?;
    let now = s.clock.now();
    if expires_at <= now {
        return Err(AcmeError::BadNonce("the nonce has expired; fetch a new one".into()));
    }
    // One spend in 256 (by the nonce's first random byte) also purges expired records, which
    // bounds the table without a background job.
    let purge = bytes[8] == 0;
    if s.acme.nonce_spends.spend(s, nonce.to_owned(), expires_at, purge).await? {
        Ok(())
    } else {
        Err(AcmeError::BadNonce("the nonce was already used; fetch a new one".into()))
    }
}
