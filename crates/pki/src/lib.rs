//! Pure PKI building blocks for certctl. Functions take `now` instead of reading a clock.

pub mod bootstrap;
pub mod serial;

/// PKI failures.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Key or certificate generation failed inside the crypto library.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Stored PEM material does not parse.
    #[error("invalid PEM material: {0}")]
    InvalidPem(String),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
}
