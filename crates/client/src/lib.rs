//! Typed async client for the certctl REST API. The CLI, the agent and the MCP server reach the
//! server only through this crate.

pub mod operations;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use serde_json::Value;

use crate::operations::{HttpMethod, Operation};

use certctl_api::{
    AuthCheck, CreateCertificate, CreateOwner, CreateTeam, ErrorBody, ManagedCertificate, Owner, Page, Team,
    VersionInfo,
};

/// Client failures. API errors keep the server's code, message and request ID.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status}: {} ({}) [request {}]", body.message, body.error, body.request_id)]
    Api { status: StatusCode, body: ErrorBody },
    /// The request did not complete (connection, TLS, timeout) or the response did not parse.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The configuration is unusable (bad URL, unreadable CA bundle).
    #[error("{0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `https://127.0.0.1:8443`
    pub base_url: String,
    pub api_key: String,
    /// PEM bundle of CAs to trust instead of the system roots (`CERTCTL_SERVER_CA_BUNDLE`).
    pub ca_bundle_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// Where the server is when `CERTCTL_SERVER_URL` is not set.
pub const DEFAULT_SERVER_URL: &str = "https://localhost:8443";

/// Attempts of an idempotent call that fails in transport or with 502, 503 or 504.
const ATTEMPTS: u32 = 3;

impl ClientConfig {
    /// Settings from `CERTCTL_SERVER_URL`, `CERTCTL_API_KEY`, `CERTCTL_SERVER_CA_BUNDLE` (a PEM
    /// file) and `CERTCTL_TIMEOUT` (seconds, default 30).
    pub fn from_env() -> Result<ClientConfig> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let api_key = var("CERTCTL_API_KEY")
            .ok_or_else(|| ClientError::Config("CERTCTL_API_KEY is not set: export the API key to use".into()))?;
        let ca_bundle_pem = match var("CERTCTL_SERVER_CA_BUNDLE") {
            Some(path) => Some(
                std::fs::read(&path)
                    .map_err(|e| ClientError::Config(format!("CERTCTL_SERVER_CA_BUNDLE: cannot read {path}: {e}")))?,
            ),
            None => None,
        };
        let timeout = match var("CERTCTL_TIMEOUT") {
            Some(t) => Duration::from_secs(
                t.parse()
                    .map_err(|_| ClientError::Config(format!("CERTCTL_TIMEOUT: '{t}' is not a number of seconds")))?,
            ),
            None => Duration::from_secs(30),
        };
        Ok(ClientConfig {
            base_url: var("CERTCTL_SERVER_URL").unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned()),
            api_key,
            ca_bundle_pem,
            timeout,
        })
    }
}

/// A certctl API client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("certctl-client/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_bundle_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Config(format!("CERTCTL_SERVER_CA_BUNDLE: {e}")))?;
            builder = builder.tls_certs_only(certs);
        }
        let base = config.base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ClientError::Config(format!("CERTCTL_SERVER_URL: '{base}' must be an http(s):// URL")));
        }
        Ok(Client { http: builder.build()?, base, key: config.api_key })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&B>) -> Result<T> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if status.is_success() {
            if status == StatusCode::NO_CONTENT {
                return serde_json::from_value(serde_json::Value::Null).map_err(|_| unexpected_empty(status));
            }
            return Ok(resp.json().await?);
        }
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(ErrorBody {
            error: status.canonical_reason().unwrap_or("error").to_owned(),
            message: text,
            request_id: String::new(),
        });
        Err(ClientError::Api { status, body })
    }

    /// Runs one operation of the table: fills the path template from `path_params`, sends
    /// `query` and the JSON `body`, and returns the JSON answer (`null` for no content, a string
    /// for a text answer, `{"content_type", "base64"}` for a binary one). Idempotent operations
    /// are retried with backoff when the transport fails or the server answers 502, 503 or 504.
    pub async fn execute(
        &self,
        op: &Operation,
        path_params: &[(&str, &str)],
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut path = op.path.clone();
        for p in op.path_params() {
            let value = path_params
                .iter()
                .find(|(name, _)| *name == p.name)
                .map(|(_, v)| *v)
                .ok_or_else(|| ClientError::Config(format!("{}: missing path parameter {}", op.id, p.name)))?;
            path = path.replace(&format!("{{{}}}", p.name), &encode(value));
        }
        let method = match op.method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
        };
        let url = format!("{}{path}", self.base);
        let attempts = if op.idempotent() { ATTEMPTS } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url).bearer_auth(&self.key).query(query);
            if let Some(body) = body {
                req = req.json(body);
            }
            let retry_after = Duration::from_millis(200 * 2u64.pow(attempt - 1));
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) if attempt < attempts && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    tokio::time::sleep(retry_after).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let status = resp.status();
            let transient = matches!(
                status,
                StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
            );
            if transient && attempt < attempts {
                tokio::time::sleep(retry_after).await;
                continue;
            }
            return decode(resp).await;
        }
    }

    /// `GET path` decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`, expecting no content.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, path, None).await
    }

    pub async fn version(&self) -> Result<VersionInfo> {
        self.get("/api/v1/version").await
    }

    pub async fn auth_check(&self) -> Result<AuthCheck> {
        self.get("/api/v1/auth/check").await
    }

    pub async fn list_teams(&self, page: u32, per_page: u32) -> Result<Page<Team>> {
        self.get(&format!("/api/v1/teams?page={page}&per_page={per_page}")).await
    }

    pub async fn create_team(&self, req: &CreateTeam) -> Result<Team> {
        self.post("/api/v1/teams", req).await
    }

    pub async fn create_owner(&self, req: &CreateOwner) -> Result<Owner> {
        self.post("/api/v1/owners", req).await
    }

    pub async fn certificate(&self, id: &str) -> Result<ManagedCertificate> {
        self.get(&format!("/api/v1/certificates/{}", encode(id))).await
    }

    pub async fn create_certificate(&self, req: &CreateCertificate) -> Result<ManagedCertificate> {
        self.post("/api/v1/certificates", req).await
    }
}

/// A response as JSON: error bodies become [`ClientError::Api`].
async fn decode(resp: reqwest::Response) -> Result<Value> {
    let status = resp.status();
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(ErrorBody {
            error: status.canonical_reason().unwrap_or("error").to_owned(),
            message: text,
            request_id: String::new(),
        });
        return Err(ClientError::Api { status, body });
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if content_type.contains("json") {
        return serde_json::from_slice(&bytes).map_err(|e| ClientError::Config(format!("the answer is not JSON: {e}")));
    }
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) if content_type.starts_with("text/") || content_type.contains("pem") => Ok(Value::String(text)),
        _ => {
            use base64::Engine as _;
            Ok(serde_json::json!({
                "content_type": content_type,
                "base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
            }))
        }
    }
}

fn unexpected_empty(status: StatusCode) -> ClientError {
    ClientError::Api {
        status,
        body: ErrorBody {
            error: "unexpected_empty_body".into(),
            message: "the server returned no content".into(),
            request_id: String::new(),
        },
    }
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::encode("mc-1"), "mc-1");
        assert_eq!(super::encode("a/b c"), "a%2Fb%20c");
    }
}
