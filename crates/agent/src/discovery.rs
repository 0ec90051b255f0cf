//! Filesystem discovery: walks the configured directories for certificates (PEM files and
//! chains, DER files) and splits what it finds into reports the server accepts.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use certctl_api::{DiscoveredEntry, DiscoveryReport};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::deploy::pem_of;

/// Files above this size are not read.
const MAX_FILE: u64 = 1024 * 1024;
/// How deep the walk goes below each directory.
const MAX_DEPTH: usize = 32;
/// Directory entries looked at per scan, over all directories.
const MAX_VISITED: usize = 200_000;
/// Certificates per report (the server takes 5,000).
const BATCH_ENTRIES: usize = 1_000;
/// Approximate JSON size per report (the server takes 1 MiB).
const BATCH_BYTES: usize = 768 * 1024;

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub directories: Vec<String>,
    pub certificates: Vec<DiscoveredEntry>,
    /// Files skipped or unreadable, with why.
    pub errors: Vec<String>,
    pub duration_ms: i64,
}

/// Walks `dirs`; symlinked directories are not followed.
pub fn scan(dirs: &[PathBuf]) -> Scan {
    let started = Instant::now();
    let mut scan = Scan { directories: dirs.iter().map(|d| d.display().to_string()).collect(), ..Scan::default() };
    let mut visited = 0usize;
    for dir in dirs {
        let mut stack = vec![(dir.clone(), 0usize)];
        while let Some((current, depth)) = stack.pop() {
            let entries = match fs::read_dir(&current) {
                Ok(entries) => entries,
                Err(e) => {
                    scan.errors.push(format!("{}: {e}", current.display()));
                    continue;
                }
            };
            for entry in entries.filter_map(Result::ok) {
                visited += 1;
                if visited > MAX_VISITED {
                    scan.errors.push(format!("scan stopped after {MAX_VISITED} entries"));
                    scan.duration_ms = elapsed_ms(started);
                    return scan;
                }
                let path = entry.path();
                let Ok(kind) = entry.file_type() else { continue };
                if kind.is_dir() {
                    if depth < MAX_DEPTH {
                        stack.push((path, depth + 1));
                    }
                } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                    read_file(&path, &mut scan);
                }
            }
        }
    }
    scan.duration_ms = elapsed_ms(started);
    scan
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Reads one file if its extension names a certificate format.
fn read_file(path: &Path, scan: &mut Scan) {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    if !matches!(ext.as_str(), "pem" | "crt" | "cer" | "cert" | "der" | "p12" | "pfx") {
        return;
    }
    let Some(source) = path.to_str().filter(|p| !p.chars().any(char::is_control) && p.len() <= 4096) else {
        scan.errors.push(format!("{}: path is not printable UTF-8, skipped", path.display()));
        return;
    };
    if matches!(ext.as_str(), "p12" | "pfx") {
        scan.errors.push(format!("{source}: PKCS#12 (password-protected), skipped"));
        return;
    }
    match fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE => {
            scan.errors.push(format!("{source}: larger than 1 MiB, skipped"));
            return;
        }
        Ok(_) => {}
        Err(e) => {
            scan.errors.push(format!("{source}: {e}"));
            return;
        }
    }
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            scan.errors.push(format!("{source}: {e}"));
            return;
        }
    };
    let pem_certs: Vec<Vec<u8>> = ::pem::parse_many(&bytes)
        .map(|blocks| blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE").map(::pem::Pem::into_contents).collect())
        .unwrap_or_default();
    let (ders, format) = if !pem_certs.is_empty() {
        (pem_certs, "PEM")
    } else if ext != "pem" && X509Certificate::from_der(&bytes).is_ok() {
        (vec![bytes], "DER")
    } else {
        // Key files and other PEM objects share these extensions; they are not certificates.
        return;
    };
    for der in ders {
        if X509Certificate::from_der(&der).is_err() {
            scan.errors.push(format!("{source}: a certificate does not parse, skipped"));
            continue;
        }
        scan.certificates.push(DiscoveredEntry {
            source_path: source.to_owned(),
            pem_data: pem_of(&der),
            source_format: Some(format.to_owned()),
        });
    }
}

impl Scan {
    /// Reports of at most [`BATCH_ENTRIES`] certificates and about [`BATCH_BYTES`] each; the
    /// directories, errors and duration travel with the first. Nothing found and no errors: no
    /// report.
    pub fn into_reports(self) -> Vec<DiscoveryReport> {
        if self.certificates.is_empty() && self.errors.is_empty() {
            return Vec::new();
        }
        let mut reports = vec![DiscoveryReport {
            directories: self.directories,
            certificates: Vec::new(),
            errors: self.errors.into_iter().take(1_000).collect(),
            scan_duration_ms: self.duration_ms,
        }];
        let mut bytes = 0usize;
        for entry in self.certificates {
            let size = entry.pem_data.len() + entry.source_path.len() + 64;
            let last = reports.last_mut().expect("one report exists");
            if last.certificates.len() >= BATCH_ENTRIES || (bytes + size > BATCH_BYTES && !last.certificates.is_empty())
            {
                reports.push(DiscoveryReport { directories: Vec::new(), ..DiscoveryReport::default() });
                bytes = 0;
            }
            bytes += size;
            reports.last_mut().expect("one report exists").certificates.push(entry);
        }
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_der(cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn finds_pem_chains_and_der_and_notes_skips() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let (a, b, c) = (cert_der("a.example"), cert_der("b.example"), cert_der("c.example"));
        fs::create_dir_all(root.join("nested/deeper")).unwrap();
        fs::write(root.join("chain.pem"), pem_of(&a) + &pem_of(&b)).unwrap();
        fs::write(root.join("nested/deeper/c.der"), &c).unwrap();
        fs::write(root.join("nested/store.p12"), b"binary").unwrap();
        fs::write(root.join("key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        fs::write(root.join("notes.txt"), pem_of(&a)).unwrap();
        fs::write(root.join("big.crt"), vec![b'x'; (MAX_FILE + 1) as usize]).unwrap();
        // A symlinked directory is not followed.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("outside.pem"), pem_of(&a)).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();

        let scan = scan(&[root.to_owned()]);
        let mut found: Vec<(String, String)> = scan
            .certificates
            .iter()
            .map(|e| {
                (
                    e.source_path.strip_prefix(root.to_str().unwrap()).unwrap().to_owned(),
                    e.source_format.clone().unwrap(),
                )
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("/chain.pem".into(), "PEM".into()),
                ("/chain.pem".into(), "PEM".into()),
                ("/nested/deeper/c.der".into(), "DER".into())
            ]
        );
        assert!(scan.certificates.iter().any(|e| e.pem_data == pem_of(&b)));
        assert!(
            scan.errors.iter().any(|e| e.ends_with("store.p12: PKCS#12 (password-protected), skipped")),
            "{:?}",
            scan.errors
        );
        assert!(scan.errors.iter().any(|e| e.ends_with("big.crt: larger than 1 MiB, skipped")));
        assert_eq!(scan.errors.len(), 2, "{:?}", scan.errors);
    }

    #[test]
    fn reports_are_batched() {
        let entry = |i: usize| DiscoveredEntry {
            source_path: format!("/etc/ssl/{i}.pem"),
            pem_data: "x".repeat(2_000),
            source_format: Some("PEM".into()),
        };
        let scan = Scan {
            directories: vec!["/etc/ssl".into()],
            certificates: (0..2_500).map(entry).collect(),
            errors: vec!["e".into()],
            duration_ms: 5,
        };
        let reports = scan.into_reports();
        assert!(reports.len() >= 7, "2,500 entries of 2 KB need several 768 KiB reports: {}", reports.len());
        assert_eq!(reports.iter().map(|r| r.certificates.len()).sum::<usize>(), 2_500);
        assert!(reports.iter().all(|r| serde_json::to_vec(r).unwrap().len() < 1024 * 1024));
        assert_eq!((reports[0].directories.len(), reports[0].errors.len()), (1, 1));
        assert!(reports[1].directories.is_empty() && reports[1].errors.is_empty());
        assert!(Scan::default().into_reports().is_empty());
    }
}
