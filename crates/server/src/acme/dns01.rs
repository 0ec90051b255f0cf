//! dns-01 (RFC 8555 §8.4): the client publishes base64url(SHA-256(key authorization)) as a TXT
//! record at `_acme-challenge.<name>`; a wildcard's authorization carries its base name, so
//! `*.example.com` is proved at `_acme-challenge.example.com`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::challenge::Failure;
use super::resolve::ValidationDns;

/// The TXT value that proves control of a name for a key authorization.
pub fn txt_value(key_authorization: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Looks the record up and accepts when any TXT string is the expected value.
pub async fn validate(dns: &ValidationDns, name: &str, key_authorization: &str) -> Result<(), Failure> {
    let record = format!("_acme-challenge.{name}");
    let found = dns.txt(&record).await?;
    check(&record, &found, &txt_value(key_authorization))
}

fn check(record: &str, found: &[String], expected: &str) -> Result<(), Failure> {
    if found.iter().any(|v| v.trim() == expected) {
        return Ok(());
    }
    match found.first() {
        None => Err(Failure::new("unauthorized", format!("no TXT record found at {record}"))),
        Some(first) => Err(Failure::new(
            "unauthorized",
            format!("{} TXT record(s) at {record}, none with the expected value (first: {first:?})", found.len()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_and_match() {
        // A key authorization of the RFC 8555 §8.1 shape (token.thumbprint).
        let ka = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";
        let value = txt_value(ka);
        // Computed independently: printf %s KA | openssl dgst -sha256 -binary | base64url.
        assert_eq!(value, "NGwKoXBgCT8JhEa0bK7AwfSqHyu_ZWeugV07fLGIVq0");

        let rec = "_acme-challenge.example.com";
        assert!(check(rec, &["other".into(), value.clone()], &value).is_ok());
        let none = check(rec, &[], &value).unwrap_err();
        assert_eq!(none.kind, "unauthorized");
        assert!(none.detail.contains("no TXT record"), "{}", none.detail);
        let wrong = check(rec, &[txt_value("another.key-authorization")], &value).unwrap_err();
        assert_eq!(wrong.kind, "unauthorized");
    }
}
