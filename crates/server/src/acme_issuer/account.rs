//! The ACME account certctl holds at an issuer's CA, and the HTTP client every request to that
//! CA goes through (the SSRF guard, no redirects, bounded bodies, the configured trust roots).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http;
use instant_acme::{Account, AccountCredentials, BodyWrapper, BytesResponse, ExternalAccountKey, NewAccount};

use certctl_store::{AcmeIssuerAccount, Actor};

use super::config::AcmeIssuerConfig;
use super::upstream;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::notify::guard;

/// Bound on one request to the CA.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body accepted from the CA (certificate chains are a few kilobytes).
const MAX_BODY: usize = 1 << 20;

/// instant-acme's transport: reqwest behind the SSRF guard.
struct GuardedHttp {
    client: reqwest::Client,
    allow_loopback: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn other(e: impl Into<BoxError>) -> instant_acme::Error {
    instant_acme::Error::Other(e.into())
}

impl GuardedHttp {
    fn new(config: &AcmeIssuerConfig, allow_loopback: bool) -> ApiResult<GuardedHttp> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            // A redirect could lead past the guard to an internal address; ACME needs none.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(guard::GuardedResolver { allow_loopback }))
            .user_agent(concat!("certctl/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_bundle_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| ApiError::BadRequest(format!("config.ca_bundle_pem: {e}")))?;
            builder = builder.tls_certs_only(certs);
        }
        let client =
            builder.build().map_err(|e| ApiError::Internal(format!("cannot build the ACME HTTP client: {e}")))?;
        Ok(GuardedHttp { client, allow_loopback })
    }

    async fn send(
        client: reqwest::Client,
        allow_loopback: bool,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Result<BytesResponse, instant_acme::Error> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(axum::body::Body::new(body), MAX_BODY).await.map_err(other)?;
        let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(other)?;
        // Every URL the CA hands out is held to the rule the directory URL was held to.
        super::config::directory_url(url.as_str(), allow_loopback)
            .map_err(|e| other(format!("refusing the ACME URL {url}: {e}")))?;
        let mut resp =
            client.request(parts.method, url).headers(parts.headers).body(body).send().await.map_err(other)?;
        let mut head = http::Response::builder().status(resp.status()).version(resp.version());
        if let Some(h) = head.headers_mut() {
            *h = resp.headers().clone();
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(other)? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(other(format!("the ACME server's response exceeds {MAX_BODY} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        let (parts, ()) = head.body(()).map_err(other)?.into_parts();
        Ok(BytesResponse { parts, body: Box::new(Bytes::from(bytes)) })
    }
}

impl instant_acme::HttpClient for GuardedHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        Box::pin(GuardedHttp::send(self.client.clone(), self.allow_loopback, req))
    }
}

/// Fetches the CA's directory through the guarded client and checks that it is one: an issuer
/// test, which creates no account.
pub async fn check_directory(config: &AcmeIssuerConfig, allow_loopback: bool) -> ApiResult<()> {
    let directory = config.directory_url.as_str();
    let fail = |why: &dyn std::fmt::Display| upstream(directory, "fetching the directory", why);
    let http = GuardedHttp::new(config, allow_loopback)?;
    let mut resp = http.client.get(config.directory_url.clone()).send().await.map_err(|e| fail(&causes(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(&format!("HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(&causes(&e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(fail(&format!("the directory exceeds {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let dir: serde_json::Value = serde_json::from_slice(&body).map_err(|e| fail(&format!("not JSON: {e}")))?;
    if let Some(missing) = ["newNonce", "newAccount", "newOrder"].into_iter().find(|k| !dir[*k].is_string()) {
        return Err(fail(&format!("not an ACME directory: no {missing}")));
    }
    Ok(())
}

/// An error with its causes, since reqwest's own message ("error sending request") hides them.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// The sealing context of an issuer's account credentials.
fn context(issuer_id: &str) -> String {
    format!("acme-issuer-account:{issuer_id}")
}

/// The issuer's account: the stored one when it belongs to the configured directory, else a
/// new one (with external account binding when configured), stored sealed before use.
pub async fn account(s: &AppState, issuer_id: &str, config: &AcmeIssuerConfig) -> ApiResult<Account> {
    let allow_loopback = s.config.allow_loopback_targets;
    let directory = config.directory_url.as_str();
    if let Some(stored) = s.store.acme_issuer_account(issuer_id).await?
        && stored.directory_url == directory
    {
        let plain = s.secrets.open(&context(issuer_id), &stored.sealed_credentials).map_err(|e| {
            ApiError::Internal(format!("the ACME account of issuer '{issuer_id}' cannot be decrypted: {e}"))
        })?;
        let credentials: AccountCredentials = serde_json::from_slice(&plain).map_err(|e| {
            ApiError::Internal(format!("the stored ACME account of issuer '{issuer_id}' does not parse: {e}"))
        })?;
        let http = GuardedHttp::new(config, allow_loopback)?;
        return Account::builder_with_http(Box::new(http))
            .from_credentials(credentials)
            .await
            .map_err(|e| upstream(directory, "loading the ACME account", &e));
    }
    let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
    let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
    let eab = config.eab.as_ref().map(|e| ExternalAccountKey::new(e.kid.clone(), &e.hmac_key));
    let http = GuardedHttp::new(config, allow_loopback)?;
    let (account, credentials) = Account::builder_with_http(Box::new(http))
        .create(&new, directory.to_owned(), eab.as_ref())
        .await
        .map_err(|e| upstream(directory, "creating the ACME account", &e))?;
    let plain = serde_json::to_vec(&credentials)
        .map_err(|e| ApiError::Internal(format!("ACME account credentials do not serialize: {e}")))?;
    let record = AcmeIssuerAccount {
        issuer_id: issuer_id.to_owned(),
        directory_url: directory.to_owned(),
        account_url: account.id().to_owned(),
        sealed_credentials: s.secrets.seal(&context(issuer_id), &plain),
    };
    s.store.put_acme_issuer_account(&record, &Actor::system(), s.clock.now()).await?;
    tracing::info!(issuer_id, account_url = account.id(), "created the ACME account");
    Ok(account)
}
