//! Times `certctl_pki::crl::build_crl` over a large revocation list, and writes the same
//! revocations as an OpenSSL CA index so `openssl ca -gencrl` can build the same CRL beside it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use time::{Duration, OffsetDateTime};

use certctl_pki::ca::{CaCert, CaSpec};
use certctl_pki::constraints::NameConstraintSet;
use certctl_pki::crl::{RevokedEntry, build_crl};
use certctl_pki::keys::KeySpec;
use certctl_pki::revocation::RevocationReason;
use certctl_pki::serial::{random_serial, serial_hex};

use crate::stats::Summary;

pub struct CrlArgs {
    pub entries: usize,
    pub runs: usize,
    /// Where to write the last CRL (DER) and the CA certificate (PEM), for checking with openssl.
    pub out: Option<PathBuf>,
    pub ca_out: Option<PathBuf>,
    /// Where to write the revocations as an OpenSSL `index.txt`.
    pub openssl_index: Option<PathBuf>,
}

/// The reasons the generated revocations cycle through; most real revocations give none.
const REASONS: [RevocationReason; 6] = [
    RevocationReason::Unspecified,
    RevocationReason::Unspecified,
    RevocationReason::KeyCompromise,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
    RevocationReason::AffiliationChanged,
];

/// `count` revocations with random serials, spread over the last 90 days.
pub fn entries(count: usize, now: OffsetDateTime) -> anyhow::Result<Vec<RevokedEntry>> {
    (0..count)
        .map(|i| {
            Ok(RevokedEntry {
                serial: random_serial()?.to_vec(),
                revoked_at: now - Duration::seconds(((i * 7_919) % (90 * 86_400)) as i64),
                reason: REASONS[i % REASONS.len()],
            })
        })
        .collect()
}

/// OpenSSL's index date form: UTCTime `YYMMDDHHMMSSZ`.
fn utc_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The reason as `openssl ca` spells it in an index (its own table, not RFC 5280's names).
fn openssl_reason(reason: RevocationReason) -> Option<&'static str> {
    match reason {
        RevocationReason::Unspecified => None,
        RevocationReason::KeyCompromise => Some("keyCompromise"),
        RevocationReason::CaCompromise => Some("CACompromise"),
        RevocationReason::AffiliationChanged => Some("affiliationChanged"),
        RevocationReason::Superseded => Some("superseded"),
        RevocationReason::CessationOfOperation => Some("cessationOfOperation"),
        RevocationReason::CertificateHold => Some("certificateHold"),
        RevocationReason::PrivilegeWithdrawn | RevocationReason::AaCompromise => None,
    }
}

/// One `index.txt` line for a revoked certificate. Serials are upper-case hex, as OpenSSL
/// writes (and looks up) them; subjects are distinct so the index loads whatever its
/// `unique_subject` setting.
pub fn index_line(entry: &RevokedEntry, expires: OffsetDateTime) -> String {
    let serial = serial_hex(&entry.serial).to_ascii_uppercase();
    let revoked = match openssl_reason(entry.reason) {
        Some(r) => format!("{},{r}", utc_time(entry.revoked_at)),
        None => utc_time(entry.revoked_at),
    };
    format!("R\t{}\t{revoked}\t{serial}\tunknown\t/CN=revoked-{serial}", utc_time(expires))
}

fn write_index(path: &Path, entries: &[RevokedEntry], expires: OffsetDateTime) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for e in entries {
        writeln!(w, "{}", index_line(e, expires))?;
    }
    w.flush()?;
    Ok(())
}

pub fn run(args: &CrlArgs) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let spec = CaSpec {
        common_name: "certctl bench CA".into(),
        organization: None,
        key: KeySpec::EcdsaP256,
        validity: Duration::days(3650),
        path_len: None,
        name_constraints: NameConstraintSet::default(),
    };
    let ca = CaCert::create_root(&spec, now)?;
    let entries = entries(args.entries, now)?;
    if let Some(path) = &args.openssl_index {
        write_index(path, &entries, now + Duration::days(365))?;
    }
    let mut times = Vec::with_capacity(args.runs);
    let mut der = Vec::new();
    for run in 0..args.runs.max(1) {
        let started = Instant::now();
        der = build_crl(ca.signing(), run as u64 + 1, now, now + Duration::hours(24), &entries)?;
        times.push(started.elapsed());
    }
    let s = Summary::of(&times);
    println!(
        "crl entries={} bytes={} runs={} median_ms={:.1} min_ms={:.1} max_ms={:.1}",
        entries.len(),
        der.len(),
        times.len(),
        ms(s.median),
        ms(s.min),
        ms(s.max)
    );
    if let Some(path) = &args.out {
        std::fs::write(path, &der).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.ca_out {
        std::fs::write(path, ca.cert_pem()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines_use_openssl_forms() {
        let at = time::macros::datetime!(2026-03-04 05:06:07 UTC);
        let e =
            RevokedEntry { serial: vec![0x00, 0x0a, 0xbc], revoked_at: at, reason: RevocationReason::KeyCompromise };
        assert_eq!(
            index_line(&e, at + Duration::days(365)),
            "R\t270304050607Z\t260304050607Z,keyCompromise\t0ABC\tunknown\t/CN=revoked-0ABC"
        );
        let e = RevokedEntry { reason: RevocationReason::Unspecified, ..e };
        assert!(index_line(&e, at).contains("\t260304050607Z\t0ABC\t"));
    }

    #[test]
    fn generated_entries_are_distinct_and_in_the_past() {
        let now = OffsetDateTime::now_utc();
        let list = entries(500, now).unwrap();
        let mut serials: Vec<_> = list.iter().map(|e| e.serial.clone()).collect();
        serials.sort();
        serials.dedup();
        assert_eq!(serials.len(), 500);
        assert!(list.iter().all(|e| e.revoked_at <= now && e.revoked_at > now - Duration::days(91)));
    }
}
