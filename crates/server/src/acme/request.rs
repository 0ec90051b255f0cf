//! Extractors that authenticate ACME requests: [`Directory`] resolves the profile a path
//! addresses; [`ByKid`], [`ByJwk`] and [`ByEither`] verify the JWS body (size, media type,
//! `url`, key, signature, then the nonce) so a handler that receives one holds a verified
//! request signed the way its endpoint requires.

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use certctl_api::CertificateProfile;
use certctl_store::{AccountStatus, AcmeAccount, AcmeBindingRecord};

use super::jws::{Jwk, Jws, Signer};
use super::nonce;
use super::problem::{AcmeError, AcmeResult};
use crate::AppState;

/// Largest accepted JWS body. Every ACME payload is small; a CSR with many names is the
/// largest.
pub const MAX_JWS_BYTES: usize = 64 * 1024;

/// How long a resolved profile and binding are reused without reading them again.
pub const DIRECTORY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Profiles cached at most; more are read from the store each time.
const DIRECTORY_CACHE_MAX: usize = 1_000;

type CachedDirectory = (std::time::Instant, CertificateProfile, AcmeBindingRecord);

/// Recently resolved profiles and bindings by profile ID.
#[derive(Default)]
pub struct DirectoryCache(std::sync::Mutex<std::collections::HashMap<String, CachedDirectory>>);

impl DirectoryCache {
    fn get(&self, id: &str) -> Option<(CertificateProfile, AcmeBindingRecord)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|(at, _, _)| at.elapsed() < DIRECTORY_CACHE_TTL)
            .map(|(_, profile, binding)| (profile.clone(), binding.clone()))
    }

    /// Forgets every entry, after a profile or binding changed on this replica.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn put(&self, id: &str, profile: &CertificateProfile, binding: &AcmeBindingRecord) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= DIRECTORY_CACHE_MAX {
            map.retain(|_, (at, _, _)| at.elapsed() < DIRECTORY_CACHE_TTL);
            if map.len() >= DIRECTORY_CACHE_MAX {
                return;
            }
        }
        map.insert(id.to_owned(), (std::time::Instant::now(), profile.clone(), binding.clone()));
    }
}

/// The profile a request addresses, with its ACME binding and URL base.
#[derive(Debug, Clone)]
pub struct Directory {
    pub profile: CertificateProfile,
    pub binding: AcmeBindingRecord,
    /// `https://host/acme` or `https://host/acme/profile/{id}`.
    pub base: String,
}

impl Directory {
    /// The URL of a resource under this directory.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    async fn resolve(parts: &mut Parts, s: &AppState) -> AcmeResult<Directory> {
        let params = RawPathParams::from_request_parts(parts, s)
            .await
            .map_err(|_| AcmeError::Malformed("the request path does not parse".into()))?;
        let named = params.iter().find(|(k, _)| *k == "profile_id").map(|(_, v)| v.to_owned());
        let external = s.config.external_url.trim_end_matches('/');
        let (id, base) = match named {
            Some(id) => (id.clone(), format!("{external}/acme/profile/{id}")),
            None => {
                let id = s.config.acme_default_profile_id.clone().ok_or_else(|| {
                    AcmeError::NotFound(
                        "no default ACME profile is configured; use /acme/profile/{profile_id}/directory".into(),
                    )
                })?;
                (id, format!("{external}/acme"))
            }
        };
        let not_served = || AcmeError::NotFound(format!("profile '{id}' is not served over ACME"));
        let (profile, binding) = match s.acme.directories.get(&id) {
            Some(hit) => hit,
            None => {
                let binding = s.store.acme_binding(&id).await?.ok_or_else(not_served)?;
                let profile = s.store.profile(&id).await?;
                s.acme.directories.put(&id, &profile, &binding);
                (profile, binding)
            }
        };
        if !profile.enabled {
            return Err(not_served());
        }
        Ok(Directory { profile, binding, base })
    }
}

impl FromRequestParts<AppState> for Directory {
    type Rejection = AcmeError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> AcmeResult<Self> {
        Directory::resolve(parts, s).await
    }
}

/// A verified request.
#[derive(Debug, Clone)]
pub struct Signed {
    pub dir: Directory,
    /// The key that signed.
    pub jwk: Jwk,
    /// The signing account (`kid` requests).
    pub account: Option<AcmeAccount>,
    /// The URL the request was signed for.
    pub url: String,
    pub payload: Vec<u8>,
}

impl Signed {
    /// The payload as a JSON object of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> AcmeResult<T> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| AcmeError::Malformed(format!("the payload is not the expected JSON: {e}")))
    }

    /// Whether this is a POST-as-GET (empty payload).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// Refuses anything but a POST-as-GET.
    pub fn must_be_post_as_get(&self) -> AcmeResult<()> {
        if self.is_post_as_get() {
            Ok(())
        } else {
            Err(AcmeError::Malformed("this resource is read with POST-as-GET (an empty payload)".into()))
        }
    }
}

/// Which key form an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Kid,
    Jwk,
    Either,
}

async fn verify(req: Request, s: &AppState, want: Want) -> AcmeResult<Signed> {
    let (mut parts, body) = req.into_parts();
    let dir = Directory::resolve(&mut parts, s).await?;
    let media = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = media.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/jose+json") && !media.eq_ignore_ascii_case("application/jose") {
        return Err(AcmeError::UnsupportedMediaType(format!("ACME requests are application/jose+json, not {media:?}")));
    }
    let bytes = axum::body::to_bytes(body, MAX_JWS_BYTES).await.map_err(|_| AcmeError::TooLarge(MAX_JWS_BYTES))?;
    let jws = Jws::parse(&bytes)?;
    let expected = format!("{}{}", s.config.external_url.trim_end_matches('/'), parts.uri.path());
    if jws.url != expected {
        return Err(AcmeError::Unauthorized(format!("the JWS url {:?} is not the request URL {expected:?}", jws.url)));
    }
    let (jwk, account) = match (&jws.signer, want) {
        (Signer::Jwk(_), Want::Kid) => {
            return Err(AcmeError::Malformed("this request is signed with the account's kid, not a jwk".into()));
        }
        (Signer::Kid(_), Want::Jwk) => {
            return Err(AcmeError::Malformed("this request is signed with a jwk, not a kid".into()));
        }
        (Signer::Jwk(jwk), _) => (jwk.clone(), None),
        (Signer::Kid(kid), _) => {
            let (account, jwk) = account_of_kid(s, &dir, kid).await?;
            (jwk, Some(account))
        }
    };
    jws.verify(&jwk)?;
    // Spent only once the signature verifies: a forged request cannot burn a client's nonce.
    nonce::spend(s, jws.nonce.as_deref()).await?;
    Ok(Signed { dir, jwk, account, url: jws.url, payload: jws.payload })
}

/// How long an account read for a signed request is reused without reading it again: every
/// `kid` request names its account, and an issuance is several of them. A deactivation or key
/// change made through this replica applies at once (it clears the cache); one made through
/// another replica applies here within this time.
pub const ACCOUNT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The valid account a `kid` names in this directory's profile, with its parsed key.
async fn account_of_kid(s: &AppState, dir: &Directory, kid: &str) -> AcmeResult<(AcmeAccount, Jwk)> {
    let external = s.config.external_url.trim_end_matches('/');
    let unknown = || AcmeError::AccountDoesNotExist(format!("no account {kid:?} in this directory"));
    let id = kid
        .strip_prefix(external)
        .filter(|rest| rest.starts_with("/acme/"))
        .and_then(|rest| rest.rsplit_once("/account/"))
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(unknown)?;
    let (account, jwk) = match s.acme.accounts.fresh(id) {
        Some(hit) => hit,
        None => {
            let account = s.store.acme_account(id).await?.ok_or_else(unknown)?;
            let stored: serde_json::Value = serde_json::from_str(&account.jwk)
                .map_err(|e| AcmeError::Internal(format!("stored account key does not parse: {e}")))?;
            let jwk = Jwk::parse(&stored)?;
            s.acme.accounts.insert(id, (account.clone(), jwk.clone()));
            (account, jwk)
        }
    };
    if account.profile_id != dir.profile.id {
        return Err(unknown());
    }
    if account.status != AccountStatus::Valid {
        return Err(AcmeError::Unauthorized(format!("account {kid:?} is {}", account.status.as_str())));
    }
    Ok((account, jwk))
}

macro_rules! signed_extractor {
    ($(#[$meta:meta])* $name:ident, $want:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Signed);

        impl FromRequest<AppState> for $name {
            type Rejection = AcmeError;

            async fn from_request(req: Request, s: &AppState) -> AcmeResult<Self> {
                verify(req, s, $want).await.map($name)
            }
        }
    };
}

signed_extractor!(
    /// A request signed by an existing, valid account (`kid`).
    ByKid,
    Want::Kid
);
signed_extractor!(
    /// A request signed with an embedded key (`jwk`): new accounts.
    ByJwk,
    Want::Jwk
);
signed_extractor!(
    /// A request signed either way: revocation by account or by certificate key.
    ByEither,
    Want::Either
);

impl ByKid {
    /// The signing account (always present for `kid` requests).
    pub fn account(&self) -> &AcmeAccount {
        self.0.account.as_ref().expect("kid requests carry their account")
    }
}
