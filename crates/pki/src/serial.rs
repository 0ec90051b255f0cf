//! Certificate serial numbers: 159 random bits, positive, rendered as lower-case hex.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::PkiError;

/// A fresh serial: 20 bytes with the top bit clear (positive in DER) and never all zero.
pub fn random_serial() -> Result<[u8; 20], PkiError> {
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 20];
        rng.fill(&mut bytes).map_err(|_| PkiError::Random)?;
        bytes[0] &= 0x7f;
        if bytes.iter().any(|b| *b != 0) {
            return Ok(bytes);
        }
    }
}

/// The canonical text form of a serial: lower-case hex without leading zero bytes.
pub fn serial_hex(bytes: &[u8]) -> String {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => &[0],
    };
    trimmed.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        assert!(a[0] < 0x80);
        assert_eq!(serial_hex(&[0, 0, 0x0a, 0xff]), "0aff");
        assert_eq!(serial_hex(&[0, 0]), "00");
    }
}
