//! Encryption of stored secrets (issuer and target credentials) and their redaction on read.
//!
//! AES-256-GCM with a random 96-bit nonce; the record's kind and ID are the associated data, so
//! a ciphertext copied onto another record does not decrypt. Stored form: `0x01 ‖ nonce ‖
//! ciphertext ‖ tag`.

use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hkdf};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use certctl_api::REDACTED;

use crate::fsutil::write_private;

const VERSION: u8 = 1;

/// Encrypts and decrypts secrets with the server's key.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// The key from `CERTCTL_ENCRYPTION_KEY` (32 bytes base64, or a passphrase of at least 32
    /// characters), else from `encryption.key` in the data directory, created on first use.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<SecretBox> {
        let bytes = match configured {
            Some(value) => key_from_setting(value)?,
            None => {
                let path = data_dir.join("encryption.key");
                match std::fs::read_to_string(&path) {
                    Ok(text) => STANDARD
                        .decode(text.trim())
                        .ok()
                        .filter(|b| b.len() == 32)
                        .with_context(|| format!("{} does not hold a base64 32-byte key", path.display()))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let mut key = vec![0u8; 32];
                        SystemRandom::new().fill(&mut key).map_err(|_| anyhow::anyhow!("random generator failed"))?;
                        write_private(&path, format!("{}\n", STANDARD.encode(&key)).as_bytes())?;
                        tracing::info!(path = %path.display(), "generated the secret-encryption key");
                        key
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot read {}", path.display()));
                    }
                }
            }
        };
        Ok(SecretBox::from_key(&bytes))
    }

    pub fn from_key(bytes: &[u8]) -> SecretBox {
        // A 32-byte key is always valid for AES-256.
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256 key is 32 bytes");
        SecretBox { key: LessSafeKey::new(unbound) }
    }

    /// Encrypts `plaintext` bound to `context` (e.g. `issuer:iss-1`).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("system random number generator failed");
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut in_out)
            .expect("AES-GCM sealing does not fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&in_out);
        out
    }

    /// Decrypts what [`SecretBox::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            bail!("stored secret for {context} has an unknown format");
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])?;
        let mut in_out = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| anyhow::anyhow!("stored secret for {context} does not decrypt with the current key"))?;
        Ok(plain.to_vec())
    }
}

fn key_from_setting(value: &str) -> anyhow::Result<Vec<u8>> {
    if let Ok(bytes) = STANDARD.decode(value.trim())
        && bytes.len() == 32
    {
        return Ok(bytes);
    }
    if value.len() < 32 {
        bail!("CERTCTL_ENCRYPTION_KEY: must be 32 bytes in base64 or a passphrase of at least 32 characters");
    }
    // A passphrase is stretched with HKDF; its length requirement keeps its entropy meaningful.
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"certctl secret encryption v1");
    let prk = salt.extract(value.as_bytes());
    let okm = prk
        .expand(&[b"aes-256-gcm"], hkdf::HKDF_SHA256)
        .map_err(|_| anyhow::anyhow!("CERTCTL_ENCRYPTION_KEY: key derivation failed"))?;
    let mut key = vec![0u8; digest::SHA256_OUTPUT_LEN];
    okm.fill(&mut key).map_err(|_| anyhow::anyhow!("CERTCTL_ENCRYPTION_KEY: key derivation failed"))?;
    Ok(key)
}

/// Whether a config key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "password",
        "passphrase",
        "secret",
        "token",
        "private",
        "credential",
        "hmac",
        "api_key",
        "apikey",
        "key_pem",
        "access_key",
    ];
    WORDS.iter().any(|w| k.contains(w)) || k == "key" || k.ends_with("_key")
}

/// A copy of `config` with every value under a secret key, whatever its shape, replaced by
/// `********`; other objects and arrays are searched recursively.
pub fn redact(config: &Map<String, Value>) -> Map<String, Value> {
    config
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Null => Value::Null,
                _ if is_secret_key(k) => Value::String(REDACTED.to_owned()),
                other => redact_value(other),
            };
            (k.clone(), v)
        })
        .collect()
}

fn redact_value(v: &Value) -> Value {
    match v {
        Value::Object(inner) => Value::Object(redact(inner)),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        other => other.clone(),
    }
}

/// `incoming` with every `********` value replaced by the value stored under the same path.
/// A placeholder with nothing stored behind it is an error naming the field.
pub fn merge_redacted(
    incoming: &Map<String, Value>,
    stored: &Map<String, Value>,
    path: &str,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, v) in incoming {
        let field = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        let merged = match v {
            Value::String(s) if s == REDACTED => stored
                .get(k)
                .cloned()
                .ok_or_else(|| format!("config.{field}: '{REDACTED}' given but no value is stored"))?,
            other => merge_value(other, stored.get(k), &field)?,
        };
        out.insert(k.clone(), merged);
    }
    Ok(out)
}

/// Merges placeholders inside objects and arrays (array elements by position).
fn merge_value(incoming: &Value, stored: Option<&Value>, field: &str) -> Result<Value, String> {
    Ok(match incoming {
        Value::Object(inner) => {
            let empty = Map::new();
            let stored_inner = stored.and_then(Value::as_object).unwrap_or(&empty);
            Value::Object(merge_redacted(inner, stored_inner, field)?)
        }
        Value::Array(items) => {
            let stored_items = stored.and_then(Value::as_array);
            let merged = items.iter().enumerate().map(|(i, item)| {
                let field = format!("{field}[{i}]");
                match item {
                    Value::String(s) if s == REDACTED => stored_items
                        .and_then(|a| a.get(i))
                        .cloned()
                        .ok_or_else(|| format!("config.{field}: '{REDACTED}' given but no value is stored")),
                    other => merge_value(other, stored_items.and_then(|a| a.get(i)), &field),
                }
            });
            Value::Array(merged.collect::<Result<_, _>>()?)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seal_open_and_context_binding() {
        let b = SecretBox::from_key(&[7u8; 32]);
        let sealed = b.seal("issuer:a", b"secret");
        assert_eq!(b.open("issuer:a", &sealed).unwrap(), b"secret");
        assert!(b.open("issuer:b", &sealed).is_err());
        assert!(SecretBox::from_key(&[8u8; 32]).open("issuer:a", &sealed).is_err());
    }

    #[test]
    fn redaction_and_merge() {
        let stored = json!({"url": "https://x", "api_key": "s3cret", "auth": {"password": "p", "user": "u"}});
        let stored = stored.as_object().unwrap();
        let red = redact(stored);
        assert_eq!(
            Value::Object(red.clone()),
            json!({"url": "https://x", "api_key": "********", "auth": {"password": "********", "user": "u"}})
        );
        let merged = merge_redacted(&red, stored, "").unwrap();
        assert_eq!(&merged, stored);
        let bad = json!({"token": "********"});
        assert!(merge_redacted(bad.as_object().unwrap(), stored, "").unwrap_err().starts_with("config.token"));
    }

    #[test]
    fn passphrase_keys() {
        assert!(key_from_setting("short").is_err());
        assert_eq!(key_from_setting(&"x".repeat(40)).unwrap().len(), 32);
        assert_eq!(key_from_setting(&STANDARD.encode([1u8; 32])).unwrap(), vec![1u8; 32]);
    }
}
