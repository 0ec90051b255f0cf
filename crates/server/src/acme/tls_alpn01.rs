//! tls-alpn-01 (RFC 8737, RFC 8738 for addresses): a TLS handshake with the identifier on the
//! tls-alpn port, offering only ALPN `acme-tls/1`, with SNI the name (for an address, its
//! reverse-mapping name). The server must negotiate `acme-tls/1` and present a self-signed
//! certificate whose only SAN is the identifier and whose critical `id-pe-acmeIdentifier`
//! extension holds SHA-256 of the key authorization. The certificate is checked, not trusted:
//! it is self-signed by design, so no chain is verified.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::challenge::Failure;
use super::order::Identifier;
use super::resolve::{ValidationDns, reverse_name};

/// The ALPN protocol of the challenge.
pub const ACME_TLS_1: &[u8] = b"acme-tls/1";
/// id-pe-acmeIdentifier.
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";
/// How long one TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Dials the identifier and checks what it presents.
pub async fn validate(dns: &ValidationDns, id: &Identifier, port: u16, key_authorization: &str) -> Result<(), Failure> {
    let (targets, sni) = match id {
        Identifier::Dns { name, wildcard: false } => (dns.addresses(name).await?, name.clone()),
        Identifier::Dns { wildcard: true, .. } => {
            return Err(Failure::new("malformed", "tls-alpn-01 cannot prove a wildcard"));
        }
        Identifier::Ip(ip) => {
            dns.check(*ip).map_err(|e| Failure::new("connection", e))?;
            (vec![*ip], reverse_name(*ip))
        }
    };
    let leaf = handshake(&targets, port, sni).await?;
    check_certificate(&leaf, id, &key_authorization_digest(key_authorization))
}

/// SHA-256 of the key authorization: the value the acmeIdentifier extension carries.
pub fn key_authorization_digest(key_authorization: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Connects to the first address that accepts and completes the handshake; returns the leaf.
async fn handshake(targets: &[IpAddr], port: u16, sni: String) -> Result<Vec<u8>, Failure> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::new("serverInternal", format!("TLS client: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(CheckedNotTrusted))
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS_1.to_vec()];
    let server_name =
        ServerName::try_from(sni.clone()).map_err(|e| Failure::new("malformed", format!("SNI {sni:?}: {e}")))?;
    let mut last = String::from("no address to dial");
    for ip in targets {
        let addr = SocketAddr::new(*ip, port);
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                last = format!("cannot connect to {addr}: {e}");
                continue;
            }
            Err(_) => {
                last = format!("connecting to {addr} timed out");
                continue;
            }
        };
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map_err(|e| Failure::new("tls", format!("TLS handshake with {addr} (SNI {sni}) failed: {e}")))?;
        let (_, session) = tls.get_ref();
        if session.alpn_protocol() != Some(ACME_TLS_1) {
            return Err(Failure::new("unauthorized", format!("{addr} did not negotiate ALPN protocol acme-tls/1")));
        }
        let leaf = session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .ok_or_else(|| Failure::new("unauthorized", format!("{addr} presented no certificate")))?;
        return Ok(leaf.to_vec());
    }
    Err(Failure::new("connection", last))
}

/// Checks a tls-alpn-01 certificate: self-signed, exactly one SAN equal to the identifier, and
/// one critical acmeIdentifier extension whose value is DER OCTET STRING of `digest`.
pub fn check_certificate(der: &[u8], id: &Identifier, digest: &[u8; 32]) -> Result<(), Failure> {
    let bad = |why: String| Failure::new("unauthorized", why);
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(format!("the certificate does not parse: {e}")))?;
    if cert.issuer().as_raw() != cert.subject().as_raw() || cert.verify_signature(None).is_err() {
        return Err(bad("the certificate is not self-signed".into()));
    }
    let mut sans = Vec::new();
    let mut acme_ids = Vec::new();
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == ACME_IDENTIFIER_OID {
            acme_ids.push(ext);
        } else if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            sans.extend(san.general_names.iter());
        }
    }
    let names_identifier = match (sans.as_slice(), id) {
        ([GeneralName::DNSName(dns)], Identifier::Dns { name, wildcard: false }) => dns.eq_ignore_ascii_case(name),
        ([GeneralName::IPAddress(bytes)], Identifier::Ip(ip)) => match ip {
            IpAddr::V4(v4) => *bytes == v4.octets().as_slice(),
            IpAddr::V6(v6) => *bytes == v6.octets().as_slice(),
        },
        _ => false,
    };
    if !names_identifier {
        return Err(bad(format!(
            "the certificate's subjectAltName must be exactly {} (it has {} entries)",
            id.wire().value,
            sans.len()
        )));
    }
    let [ext] = acme_ids.as_slice() else {
        return Err(bad(format!("the certificate needs exactly one acmeIdentifier extension, not {}", acme_ids.len())));
    };
    if !ext.critical {
        return Err(bad("the acmeIdentifier extension is not critical".into()));
    }
    // extnValue holds the DER of an OCTET STRING of the 32-byte digest.
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(digest);
    if ext.value != expected.as_slice() {
        return Err(bad("the acmeIdentifier extension does not hold the key authorization digest".into()));
    }
    Ok(())
}

/// Accepts any certificate (the challenge's certificate is checked by [`check_certificate`],
/// never trusted) but still verifies the handshake signature with the certificate's key, so
/// the server proves it holds the key of the certificate it presented. The signature is
/// checked against the raw key: a path-building parser would refuse the certificate for its
/// critical acmeIdentifier extension before looking at the signature.
#[derive(Debug)]
struct CheckedNotTrusted;

impl CheckedNotTrusted {
    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        use aws_lc_rs::signature as sig;
        use rustls::SignatureScheme as S;
        let algorithm: &dyn sig::VerificationAlgorithm = match dss.scheme {
            S::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
            S::ECDSA_NISTP384_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
            S::ECDSA_NISTP521_SHA512 => &sig::ECDSA_P521_SHA512_ASN1,
            S::ED25519 => &sig::ED25519,
            S::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            S::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            S::RSA_PKCS1_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            S::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
            S::RSA_PSS_SHA384 => &sig::RSA_PSS_2048_8192_SHA384,
            S::RSA_PSS_SHA512 => &sig::RSA_PSS_2048_8192_SHA512,
            _ => return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into()),
        };
        let (_, parsed) = X509Certificate::from_der(cert)
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        let key = parsed.public_key().subject_public_key.data.as_ref();
        sig::UnparsedPublicKey::new(algorithm, key)
            .verify(message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
    }
}

impl ServerCertVerifier for CheckedNotTrusted {
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
        self.verify(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        use rustls::SignatureScheme as S;
        // TLS 1.3 signs with PSS, never PKCS#1 v1.5 (RFC 8446 §4.2.3).
        if matches!(dss.scheme, S::RSA_PKCS1_SHA256 | S::RSA_PKCS1_SHA384 | S::RSA_PKCS1_SHA512) {
            return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        self.verify(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        use rustls::SignatureScheme as S;
        vec![
            S::ECDSA_NISTP256_SHA256,
            S::ECDSA_NISTP384_SHA384,
            S::ECDSA_NISTP521_SHA512,
            S::ED25519,
            S::RSA_PSS_SHA256,
            S::RSA_PSS_SHA384,
            S::RSA_PSS_SHA512,
            S::RSA_PKCS1_SHA256,
            S::RSA_PKCS1_SHA384,
            S::RSA_PKCS1_SHA512,
        ]
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, CustomExtension, Issuer, KeyPair};
    use rustls::pki_types::PrivateKeyDer;

    use super::*;

    const KA: &str = "token.thumbprint";

    fn dns(name: &str) -> Identifier {
        Identifier::Dns { name: name.into(), wildcard: false }
    }

    /// A challenge certificate for `sans` with the given acmeIdentifier extensions.
    fn cert(sans: &[&str], exts: Vec<CustomExtension>) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.custom_extensions = exts;
        (params.self_signed(&key).unwrap().der().to_vec(), key)
    }

    fn acme_ext(digest: &[u8; 32]) -> CustomExtension {
        CustomExtension::new_acme_identifier(digest)
    }

    fn unauthorized(r: Result<(), Failure>) -> String {
        let f = r.unwrap_err();
        assert_eq!(f.kind, "unauthorized", "{}", f.detail);
        f.detail
    }

    #[test]
    fn certificate_checks() {
        let digest = key_authorization_digest(KA);
        let (good, _) = cert(&["a.example.com"], vec![acme_ext(&digest)]);
        assert!(check_certificate(&good, &dns("a.example.com"), &digest).is_ok());
        assert!(check_certificate(&good, &dns("A.Example.com"), &digest).is_ok());
        // Another name, another digest.
        assert!(unauthorized(check_certificate(&good, &dns("b.example.com"), &digest)).contains("subjectAltName"));
        let other = key_authorization_digest("token.other");
        assert!(unauthorized(check_certificate(&good, &dns("a.example.com"), &other)).contains("digest"));

        let (missing, _) = cert(&["a.example.com"], vec![]);
        assert!(unauthorized(check_certificate(&missing, &dns("a.example.com"), &digest)).contains("exactly one"));

        let mut lax = acme_ext(&digest);
        lax.set_criticality(false);
        let (non_critical, _) = cert(&["a.example.com"], vec![lax]);
        assert!(unauthorized(check_certificate(&non_critical, &dns("a.example.com"), &digest)).contains("critical"));

        let (two_sans, _) = cert(&["a.example.com", "b.example.com"], vec![acme_ext(&digest)]);
        assert!(unauthorized(check_certificate(&two_sans, &dns("a.example.com"), &digest)).contains("2 entries"));

        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let (by_ip, _) = cert(&["192.0.2.7"], vec![acme_ext(&digest)]);
        assert!(check_certificate(&by_ip, &Identifier::Ip(ip), &digest).is_ok());
        assert!(check_certificate(&by_ip, &Identifier::Ip("192.0.2.8".parse().unwrap()), &digest).is_err());
        assert!(check_certificate(&by_ip, &dns("192.0.2.7"), &digest).is_err());

        assert!(unauthorized(check_certificate(b"not DER", &dns("a.example.com"), &digest)).contains("parse"));
    }

    #[test]
    fn certificate_must_be_self_signed() {
        let digest = key_authorization_digest(KA);
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.example.com".to_string()]).unwrap();
        params.custom_extensions = vec![acme_ext(&digest)];
        let leaf = params.signed_by(&key, &issuer).unwrap();
        assert!(unauthorized(check_certificate(leaf.der(), &dns("a.example.com"), &digest)).contains("self-signed"));
    }

    /// Serves one certificate as given: `with_single_cert` would refuse it for its critical
    /// acmeIdentifier extension.
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// A one-connection TLS server presenting `cert`, offering `alpn`; yields the SNI it saw.
    async fn responder(cert: Vec<u8>, key: KeyPair, alpn: &[u8]) -> (u16, tokio::task::JoinHandle<Option<String>>) {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = provider.key_provider.load_private_key(key).unwrap();
        let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert)], signer));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(certified)));
        config.alpn_protocols = vec![alpn.to_vec()];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.ok()?;
            let tls = acceptor.accept(tcp).await.ok()?;
            tls.get_ref().1.server_name().map(str::to_owned)
        });
        (port, task)
    }

    #[tokio::test]
    async fn dials_with_alpn_and_reverse_sni() {
        let digest = key_authorization_digest(KA);
        let local = Identifier::Ip("127.0.0.1".parse().unwrap());
        let open = ValidationDns { server: None, allow_loopback: true };

        let (der, key) = cert(&["127.0.0.1"], vec![acme_ext(&digest)]);
        let (port, seen) = responder(der, key, ACME_TLS_1).await;
        validate(&open, &local, port, KA).await.unwrap();
        assert_eq!(seen.await.unwrap().as_deref(), Some("1.0.0.127.in-addr.arpa"));

        let (der, key) = cert(&["127.0.0.1"], vec![acme_ext(&digest)]);
        let (port, _) = responder(der, key, b"h2").await;
        let err = validate(&open, &local, port, KA).await.unwrap_err();
        assert!(err.kind == "tls" || err.kind == "unauthorized", "{err:?}");

        let strict = ValidationDns { server: None, allow_loopback: false };
        let err = validate(&strict, &local, port, KA).await.unwrap_err();
        assert_eq!(err.kind, "connection", "{err:?}");
    }
}
