//! The TLS check after a deployment: connect to the endpoint with the certificate's name as SNI
//! and compare the served leaf's SHA-256 with the deployed one. Trust is not the question here,
//! identity is, so every server certificate is accepted and then compared.

use std::sync::Arc;
use std::time::Duration;

use certctl_api::{Endpoint, VerificationReport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::deploy::sha256_hex;

/// Longest wait for one connection and handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Where and how to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySpec {
    pub endpoint: Endpoint,
    /// SNI: the certificate's CN or first DNS SAN unless configured.
    pub server_name: String,
    pub attempts: u32,
    /// First pause between attempts; it doubles up to 8 s.
    pub backoff: Duration,
}

/// Checks up to `spec.attempts` times that the endpoint serves the leaf with SHA-256 `expected`.
pub async fn check(spec: &VerifySpec, expected: &str) -> VerificationReport {
    let mut pause = spec.backoff;
    let mut last = (None, String::new());
    for attempt in 1..=spec.attempts.max(1) {
        match probe(&spec.endpoint, &spec.server_name).await {
            Ok(served) if served == expected => {
                tracing::info!(endpoint = %spec.endpoint, attempt, "the endpoint serves the deployed certificate");
                return VerificationReport { status: "success".into(), fingerprint: Some(served), error: None };
            }
            Ok(served) => {
                let why = format!("{} serves certificate {served}, not the deployed {expected}", spec.endpoint);
                last = (Some(served), why);
            }
            Err(e) => last = (None, e),
        }
        tracing::debug!(endpoint = %spec.endpoint, attempt, error = %last.1, "verification attempt failed");
        if attempt < spec.attempts {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }
    VerificationReport { status: "failed".into(), fingerprint: last.0, error: Some(last.1) }
}

/// The SHA-256 of the leaf `endpoint` serves for `server_name`.
pub async fn probe(endpoint: &Endpoint, server_name: &str) -> Result<String, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let name = sni(server_name)?;
    let work = async {
        let tcp = TcpStream::connect((endpoint.host(), endpoint.port()))
            .await
            .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {endpoint} failed: {e}"))?;
        let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| sha256_hex(c));
        leaf.ok_or_else(|| format!("{endpoint} sent no certificate"))
    };
    tokio::time::timeout(PROBE_TIMEOUT, work).await.map_err(|_| format!("{endpoint} did not answer within 10s"))?
}

/// An IP address, or a DNS name (a wildcard's `*` becomes a label that matches it).
fn sni(name: &str) -> Result<ServerName<'static>, String> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    let name = match name.strip_prefix("*.") {
        Some(rest) => format!("certctl-verify.{rest}"),
        None => name.to_owned(),
    };
    ServerName::try_from(name.clone()).map_err(|_| format!("'{name}' is not a usable TLS server name"))
}

/// Accepts any certificate chain, while still checking that the server holds its key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(matches!(sni("10.0.0.1"), Ok(ServerName::IpAddress(_))));
        assert_eq!(sni("*.example.com").unwrap().to_str(), "certctl-verify.example.com");
        assert!(sni("bad name").is_err());
    }

    #[tokio::test]
    async fn unreachable_endpoints_fail_after_the_attempts() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let spec = VerifySpec {
            endpoint: Endpoint::try_from(format!("127.0.0.1:{port}")).unwrap(),
            server_name: "example.com".into(),
            attempts: 2,
            backoff: Duration::from_millis(10),
        };
        let report = check(&spec, "00").await;
        assert_eq!(report.status, "failed");
        assert!(report.error.unwrap().contains("cannot connect"));
        assert!(report.fingerprint.is_none());
    }
}
