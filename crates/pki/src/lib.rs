//! Pure PKI building blocks for certctl. Functions take `now` instead of reading a clock; nothing
//! here touches the network, the database or the file system (except loading PEM files an issuer
//! config names, in `ca`).

pub mod bootstrap;
pub mod ca;
pub mod constraints;
pub mod crl;
pub mod csr;
pub mod export;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod ocsp;
pub mod revocation;
pub mod serial;

/// PKI failures. The variant decides the HTTP status the server maps it to.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Key or certificate generation failed inside the crypto library.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Stored or supplied PEM/DER material does not parse.
    #[error("invalid PEM material: {0}")]
    InvalidPem(String),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// A CSR is not well formed or its self-signature does not verify (HTTP 400).
    #[error("malformed CSR: {0}")]
    MalformedCsr(String),
    /// A request is well formed but a profile or certificate rule refuses it (HTTP 422).
    #[error("{0}")]
    Policy(String),
    /// A name or path-length constraint of an issuing CA refuses the request (HTTP 422).
    #[error("constraint violation: {0}")]
    Constraint(String),
    /// A parameter is out of range (HTTP 400).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// Encoding a structure failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// A CA certificate and its private key as the signing functions take them: the certificate in
/// DER and the key as PKCS#8 DER.
#[derive(Clone, Copy)]
pub struct SigningCa<'a> {
    pub cert_der: &'a [u8],
    pub key_pkcs8_der: &'a [u8],
}
