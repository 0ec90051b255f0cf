//! RFC 5019 GET paths: one DER OCSPRequest per serial, base64 and percent-encoded, one per line.
//!
//! Each request holds a single SHA-1 CertID and no nonce, the shape RFC 5019 clients send and the
//! only one a responder (or an HTTP cache in front of it) may answer from a pre-signed response.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use certctl_pki::ocsp::{HashAlg, IssuerHashes};

/// id-sha1 (1.3.14.3.2.26), the CertID hash every OCSP responder answers.
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// A DER element: tag, definite length, contents.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 4);
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// The DER INTEGER contents of a non-negative serial given as a big-endian magnitude.
fn integer_contents(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude.iter().position(|b| *b != 0).unwrap_or(magnitude.len());
    let trimmed = &magnitude[start..];
    match trimmed.first() {
        None => vec![0],
        // A set top bit would read as negative; a leading zero keeps the value positive.
        Some(b) if b & 0x80 != 0 => [&[0u8][..], trimmed].concat(),
        Some(_) => trimmed.to_vec(),
    }
}

/// One OCSPRequest (RFC 6960 §4.1.1) asking about `serial` under the CA the hashes describe.
pub fn request_der(name_hash: &[u8], key_hash: &[u8], serial: &[u8]) -> Vec<u8> {
    let algorithm = tlv(0x30, &[tlv(0x06, OID_SHA1), vec![0x05, 0x00]].concat());
    let cert_id = tlv(
        0x30,
        &[algorithm, tlv(0x04, name_hash), tlv(0x04, key_hash), tlv(0x02, &integer_contents(serial))].concat(),
    );
    let request = tlv(0x30, &cert_id);
    let request_list = tlv(0x30, &request);
    let tbs_request = tlv(0x30, &request_list);
    tlv(0x30, &tbs_request)
}

/// The RFC 5019 path component of a request: standard base64, then percent-encoded so `+`, `/`
/// and `=` survive URL handling.
pub fn get_path(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + 16);
    for c in b64.chars() {
        match c {
            '+' | '/' | '=' => {
                let _ = write!(out, "%{:02X}", c as u32);
            }
            other => out.push(other),
        }
    }
    out
}

/// A serial in hex (certctl's lower-case form or OpenSSL's upper-case one) as bytes.
pub fn parse_serial(hex_serial: &str) -> anyhow::Result<Vec<u8>> {
    let s = hex_serial.trim().trim_start_matches("0x");
    if s.is_empty() {
        bail!("empty serial");
    }
    let padded = if s.len() % 2 == 1 { format!("0{s}") } else { s.to_owned() };
    hex::decode(&padded).with_context(|| format!("serial '{s}' is not hex"))
}

/// Writes one GET path per serial in `serials` (one hex serial per line) to `out`, and, when
/// `der_dir` is given, the first `der_count` requests as `<serial>.der` for inspection.
pub fn write_paths(
    issuer_pem: &Path,
    serials: &Path,
    out: &Path,
    der_dir: Option<&Path>,
    der_count: usize,
) -> anyhow::Result<usize> {
    let pem = std::fs::read_to_string(issuer_pem).with_context(|| format!("cannot read {}", issuer_pem.display()))?;
    let issuer = certctl_pki::export::pem_certs_to_der(&pem)?
        .into_iter()
        .next()
        .with_context(|| format!("{} holds no certificate", issuer_pem.display()))?;
    let hashes = IssuerHashes::new(&issuer)?;
    let (name_hash, key_hash) = (hashes.name_hash(HashAlg::Sha1), hashes.key_hash(HashAlg::Sha1));
    let list = std::fs::read_to_string(serials).with_context(|| format!("cannot read {}", serials.display()))?;
    if let Some(dir) = der_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let mut n = 0;
    for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let der = request_der(name_hash, key_hash, &parse_serial(line)?);
        writeln!(writer, "{}", get_path(&der))?;
        if let Some(dir) = der_dir
            && n < der_count
        {
            std::fs::write(dir.join(format!("{}.der", line.to_ascii_lowercase())), &der)?;
        }
        n += 1;
    }
    writer.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_back_to_the_same_cert_id() {
        let name = [0x11u8; 20];
        let key = [0x22u8; 20];
        for serial in [vec![0x01], vec![0x80, 0x01], vec![0x00, 0x00, 0x7f, 0xff], vec![0x5a; 20]] {
            let der = request_der(&name, &key, &serial);
            let query = certctl_pki::ocsp::parse_request(&der).expect("the request parses");
            assert_eq!(query.nonce, None);
            assert_eq!(query.ids.len(), 1);
            let id = &query.ids[0];
            assert_eq!(id.hash, HashAlg::Sha1);
            assert_eq!(id.issuer_name_hash, name);
            assert_eq!(id.issuer_key_hash, key);
            let start = serial.iter().position(|b| *b != 0).unwrap();
            assert_eq!(id.serial, serial[start..]);
        }
    }

    #[test]
    fn get_paths_decode_to_the_request() {
        let der = request_der(&[0xfb; 20], &[0xff; 20], &[0x3f, 0xff, 0xfe]);
        let path = get_path(&der);
        assert!(!path.contains(['+', '/', '=']), "{path}");
        assert_eq!(certctl_pki::ocsp::parse_get_path(&path).unwrap(), der);
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        assert_eq!(tlv(0x04, &[0; 0x7f])[..2], [0x04, 0x7f]);
        assert_eq!(tlv(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[0; 0x1234])[..4], [0x04, 0x82, 0x12, 0x34]);
    }

    /// Whether the `openssl` binary can run; on CI (`CI=true`) its absence is a failure.
    fn openssl_available() -> bool {
        if std::process::Command::new("openssl").arg("version").output().is_ok() {
            return true;
        }
        if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
            panic!("openssl is required on CI for the peer tests");
        }
        eprintln!("skipping: openssl is not installed");
        false
    }

    #[test]
    fn requests_are_byte_identical_to_openssl_ones() {
        if !openssl_available() {
            return;
        }
        let spec = certctl_pki::ca::CaSpec {
            common_name: "bench peer CA".into(),
            organization: Some("certctl".into()),
            key: certctl_pki::keys::KeySpec::EcdsaP256,
            validity: time::Duration::days(30),
            path_len: None,
            name_constraints: Default::default(),
        };
        let ca = certctl_pki::ca::CaCert::create_root(&spec, time::OffsetDateTime::now_utc()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let issuer = dir.path().join("ca.pem");
        std::fs::write(&issuer, ca.cert_pem()).unwrap();
        for serial in ["01", "7fab", "00ff10", "5a0102030405060708090a0b0c0d0e0f10111213"] {
            let reqout = dir.path().join(format!("{serial}.der"));
            let out = std::process::Command::new("openssl")
                .args(["ocsp", "-no_nonce", "-issuer"])
                .arg(&issuer)
                .arg("-serial")
                .arg(format!("0x{serial}"))
                .arg("-reqout")
                .arg(&reqout)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let theirs = std::fs::read(&reqout).unwrap();

            let serials = dir.path().join("serials.txt");
            std::fs::write(&serials, format!("{serial}\n")).unwrap();
            let paths = dir.path().join("paths.txt");
            assert_eq!(write_paths(&issuer, &serials, &paths, None, 0).unwrap(), 1);
            let line = std::fs::read_to_string(&paths).unwrap();
            let ours = certctl_pki::ocsp::parse_get_path(line.trim()).unwrap();
            assert_eq!(hex::encode(&ours), hex::encode(&theirs), "serial {serial}");
        }
    }

    #[test]
    fn serials_parse_from_either_case() {
        assert_eq!(parse_serial("0AfF").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(parse_serial("abc").unwrap(), vec![0x0a, 0xbc]);
        assert!(parse_serial("xyz").is_err());
    }
}
