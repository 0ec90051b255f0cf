//! A load driver for ACME servers. Each client holds one account and repeats full issuances
//! (new-order → authorizations → finalize → download) with real JWS signatures, so certctl and
//! pebble are measured by the same code over the same kind of connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION};
use serde_json::{Value, json};

/// What `certctl-bench acme` is asked to do.
pub struct AcmeArgs {
    pub directory: String,
    /// PEM roots to trust for the server's TLS certificate.
    pub ca: Option<PathBuf>,
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Names are `c{n}.{domain}`, one per client.
    pub domain: String,
    /// Printed in front of every result line.
    pub label: String,
}

/// How long the driver waits between two polls of a pending authorization or a processing
/// order; it is the resolution of the latencies of servers that validate or issue
/// asynchronously.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Polls before an authorization or order is given up on.
const MAX_POLLS: usize = 2_000;
/// Consecutive badNonce answers before a request is given up on.
const MAX_NONCE_RETRIES: usize = 5;

struct Endpoints {
    new_nonce: String,
    new_account: String,
    new_order: String,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("a {} answer is not JSON", self.status))
    }

    fn location(&self) -> Result<String> {
        header(&self.headers, LOCATION.as_str()).ok_or_else(|| anyhow!("a {} answer has no Location", self.status))
    }
}

/// One ACME account and the connection it talks over.
struct Client {
    http: reqwest::Client,
    endpoints: Arc<Endpoints>,
    key: EcdsaKeyPair,
    jwk: Value,
    kid: Option<String>,
    nonce: Option<String>,
    rng: SystemRandom,
    name: String,
    /// base64url DER of a CSR for `name`, made once: key generation is the client's cost, not
    /// the server's.
    csr: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn is_bad_nonce(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v["type"].as_str() == Some("urn:ietf:params:acme:error:badNonce"))
}

fn str_field<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v[field].as_str().ok_or_else(|| anyhow!("`{field}` missing in {v}"))
}

fn csr_for(name: &str) -> Result<String> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let csr = params.serialize_request(&key)?;
    Ok(b64(csr.der()))
}

impl Client {
    fn new(http: reqwest::Client, endpoints: Arc<Endpoints>, name: String) -> Result<Client> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| anyhow!("P-256 key generation failed"))?;
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).map_err(|_| anyhow!("P-256 key rejected"))?;
        let point = key.public_key().as_ref();
        let jwk = json!({"crv": "P-256", "kty": "EC", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        let csr = csr_for(&name)?;
        Ok(Client { http, endpoints, key, jwk, kid: None, nonce: None, rng, name, csr })
    }

    async fn nonce(&mut self) -> Result<String> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let r = self.http.head(&self.endpoints.new_nonce).send().await.context("new-nonce")?;
        header(r.headers(), "replay-nonce").ok_or_else(|| anyhow!("new-nonce answered without Replay-Nonce"))
    }

    /// POSTs a flattened JWS of `payload` (`None`: POST-as-GET) to `url`. A badNonce answer is
    /// retried with the nonce it carries; any other error answer fails the call.
    async fn post(&mut self, url: &str, payload: Option<&Value>) -> Result<Reply> {
        for _ in 0..MAX_NONCE_RETRIES {
            let nonce = self.nonce().await?;
            let mut protected = json!({"alg": "ES256", "nonce": nonce, "url": url});
            match &self.kid {
                Some(kid) => protected["kid"] = json!(kid),
                None => protected["jwk"] = self.jwk.clone(),
            }
            let protected = b64(&serde_json::to_vec(&protected)?);
            let payload = match payload {
                Some(p) => b64(&serde_json::to_vec(p)?),
                None => String::new(),
            };
            let signature = self
                .key
                .sign(&self.rng, format!("{protected}.{payload}").as_bytes())
                .map_err(|_| anyhow!("signing failed"))?;
            let body = json!({"protected": protected, "payload": payload, "signature": b64(signature.as_ref())});
            let r = self
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/jose+json")
                .body(serde_json::to_vec(&body)?)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let (status, headers) = (r.status(), r.headers().clone());
            self.nonce = header(&headers, "replay-nonce");
            let body = r.bytes().await?.to_vec();
            if status == StatusCode::BAD_REQUEST && is_bad_nonce(&body) {
                continue;
            }
            if !status.is_success() {
                bail!("POST {url}: {status}: {}", String::from_utf8_lossy(&body));
            }
            return Ok(Reply { status, headers, body });
        }
        bail!("POST {url}: badNonce {MAX_NONCE_RETRIES} times in a row")
    }

    async fn register(&mut self) -> Result<()> {
        let url = self.endpoints.new_account.clone();
        let r = self.post(&url, Some(&json!({"termsOfServiceAgreed": true}))).await?;
        self.kid = Some(r.location()?);
        Ok(())
    }

    /// Polls `url` (POST-as-GET) until its `status` leaves `waiting`; returns the object.
    async fn poll(&mut self, url: &str, waiting: &[&str]) -> Result<Value> {
        for _ in 0..MAX_POLLS {
            let v = self.post(url, None).await?.json()?;
            if !waiting.contains(&str_field(&v, "status")?) {
                return Ok(v);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        bail!("{url} stayed in {waiting:?} for {MAX_POLLS} polls")
    }

    /// Answers the authorization's http-01 challenge when it is pending (servers that validate
    /// at once, or reuse a valid authorization, need nothing) and waits for it to be valid.
    async fn authorize(&mut self, authz_url: &str) -> Result<()> {
        let authz = self.post(authz_url, None).await?.json()?;
        if str_field(&authz, "status")? == "valid" {
            return Ok(());
        }
        let challenge = authz["challenges"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "http-01"))
            .ok_or_else(|| anyhow!("no http-01 challenge in {authz}"))?;
        let url = str_field(challenge, "url")?.to_owned();
        self.post(&url, Some(&json!({}))).await?;
        let authz = self.poll(authz_url, &["pending"]).await?;
        match str_field(&authz, "status")? {
            "valid" => Ok(()),
            other => bail!("authorization {authz_url} ended {other}: {authz}"),
        }
    }

    /// One full issuance; the certificate chain is downloaded and checked to be PEM.
    async fn issue(&mut self) -> Result<()> {
        let url = self.endpoints.new_order.clone();
        let payload = json!({"identifiers": [{"type": "dns", "value": self.name}]});
        let r = self.post(&url, Some(&payload)).await?;
        let order_url = r.location()?;
        let mut order = r.json()?;
        if str_field(&order, "status")? == "pending" {
            let authzs: Vec<String> = order["authorizations"]
                .as_array()
                .ok_or_else(|| anyhow!("order without authorizations: {order}"))?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            for authz in &authzs {
                self.authorize(authz).await?;
            }
            order = self.poll(&order_url, &["pending"]).await?;
        }
        if str_field(&order, "status")? != "ready" {
            bail!("order {order_url} is not ready: {order}");
        }
        let finalize = str_field(&order, "finalize")?.to_owned();
        let csr = json!({"csr": self.csr});
        let mut order = self.post(&finalize, Some(&csr)).await?.json()?;
        if str_field(&order, "status")? != "valid" {
            order = self.poll(&order_url, &["ready", "processing"]).await?;
        }
        let cert_url = str_field(&order, "certificate").with_context(|| format!("order {order_url}"))?.to_owned();
        let pem = self.post(&cert_url, None).await?;
        if !pem.body.starts_with(b"-----BEGIN CERTIFICATE-----") {
            bail!("{cert_url} did not answer a PEM chain");
        }
        Ok(())
    }
}

fn http_client(ca: Option<&PathBuf>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(path) = ca {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// Latency percentile `p` (0–100) of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

/// Issues in a loop until `until`; only issuances that start after `record_from` are recorded.
async fn drive(mut client: Client, record_from: Instant, until: Instant) -> Outcome {
    let mut out = Outcome { latencies: Vec::new(), errors: 0, first_error: None };
    while Instant::now() < until {
        let started = Instant::now();
        let result = client.issue().await;
        if started < record_from {
            continue;
        }
        match result {
            Ok(()) => out.latencies.push(started.elapsed()),
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| format!("{e:#}"));
                // A failed issuance may leave a stale nonce behind.
                client.nonce = None;
            }
        }
    }
    out
}

pub async fn run(args: &AcmeArgs) -> Result<()> {
    let http = http_client(args.ca.as_ref())?;
    let directory: Value = http
        .get(&args.directory)
        .send()
        .await
        .with_context(|| format!("GET {}", args.directory))?
        .error_for_status()?
        .json()
        .await?;
    let endpoints = Arc::new(Endpoints {
        new_nonce: str_field(&directory, "newNonce")?.to_owned(),
        new_account: str_field(&directory, "newAccount")?.to_owned(),
        new_order: str_field(&directory, "newOrder")?.to_owned(),
    });
    let mut clients = Vec::with_capacity(args.clients);
    for n in 0..args.clients {
        let mut client = Client::new(http.clone(), endpoints.clone(), format!("c{n}.{}", args.domain))?;
        client.register().await.with_context(|| format!("registering client {n}"))?;
        clients.push(client);
    }
    // One issuance per client proves the flow before anything is timed.
    for client in &mut clients {
        client.issue().await.context("first issuance")?;
    }
    let record_from = Instant::now() + args.warmup;
    let until = record_from + args.duration;
    let load_before = crate::load::averages();
    let tasks: Vec<_> = clients.into_iter().map(|c| tokio::spawn(drive(c, record_from, until))).collect();
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        let out = task.await?;
        latencies.extend(out.latencies);
        errors += out.errors;
        first_error = first_error.or(out.first_error);
    }
    let elapsed = until.saturating_duration_since(record_from);
    latencies.sort();
    let label = &args.label;
    println!(
        "[{label}] {} issuances in {:.1} s with {} clients: {:.1} issuances/s; latency p50 {}, p90 {}, p99 {}, max {}; {errors} errors",
        latencies.len(),
        elapsed.as_secs_f64(),
        args.clients,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    println!("[{label}] load average before {load_before}, after {}", crate::load::averages());
    if let Some(e) = first_error {
        println!("[{label}] first error: {e}");
    }
    if latencies.is_empty() {
        bail!("no issuance completed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ceiling_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn a_csr_names_its_client() {
        let csr = URL_SAFE_NO_PAD.decode(csr_for("c1.bench.test").unwrap()).unwrap();
        let text = String::from_utf8_lossy(&csr);
        assert!(text.contains("c1.bench.test"));
    }
}
