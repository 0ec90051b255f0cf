//! `certctl-bench`: the in-process parts of certctl's benchmarks (see `bench/*.sh` and
//! BENCHMARKS.md). Load over HTTP comes from `wrk`; this binary builds request sets and times
//! what has no HTTP front: CRL building and the renewal scan; and it drives full ACME issuances
//! (JWS, orders, finalize, download) against certctl's ACME server and pebble alike.

mod acme;
mod crl;
mod load;
mod ocsp_requests;
mod scan;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "certctl-bench", about = "Benchmark helpers for certctl")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write one RFC 5019 GET path (percent-encoded base64 of a DER OCSPRequest with a SHA-1
    /// CertID and no nonce) per serial.
    OcspRequests {
        /// The issuing CA certificate (PEM; the first certificate is used).
        #[arg(long)]
        issuer: PathBuf,
        /// One hex serial per line.
        #[arg(long)]
        serials: PathBuf,
        /// Output: one path component per line, in the order of the serials.
        #[arg(long)]
        out: PathBuf,
        /// Also write the first --der-count requests as DER files into this directory.
        #[arg(long)]
        der_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        der_count: usize,
    },
    /// Time building and signing a CRL (ECDSA P-256 CA) with this many revoked entries.
    Crl {
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Write the CRL (DER) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the CA certificate (PEM) here.
        #[arg(long)]
        ca_out: Option<PathBuf>,
        /// Write the same revocations as an OpenSSL CA index here, for `openssl ca -gencrl`.
        #[arg(long)]
        openssl_index: Option<PathBuf>,
    },
    /// Full ACME issuances (new-order → authorizations → finalize → download) from N clients,
    /// each with its own P-256 account, for a fixed time; prints issuances/s and latencies.
    Acme {
        /// The server's directory URL.
        #[arg(long)]
        directory: String,
        /// PEM roots for the server's TLS certificate.
        #[arg(long)]
        ca: Option<PathBuf>,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds of issuing before measuring starts.
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Seconds measured.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Client n orders `c{n}.DOMAIN`.
        #[arg(long, default_value = "bench.test")]
        domain: String,
        #[arg(long, default_value = "acme")]
        label: String,
    },
    /// Seed a database and time the renewal scan over it.
    RenewalScan {
        /// sqlite://PATH or postgres://… of an empty database.
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        certificates: usize,
        /// How many of them are inside their renewal window.
        #[arg(long, default_value_t = 1_000)]
        due: usize,
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// After seeding, wait until the 1-minute load average is below this.
        #[arg(long)]
        quiet_load: Option<f64>,
        /// Longest wait for --quiet-load, in seconds.
        #[arg(long, default_value_t = 900)]
        quiet_wait: u64,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::OcspRequests { issuer, serials, out, der_dir, der_count } => {
            ocsp_requests::write_paths(&issuer, &serials, &out, der_dir.as_deref(), der_count).map(|n| {
                println!("ocsp-requests wrote {n} paths to {}", out.display());
            })
        }
        Command::Crl { entries, runs, out, ca_out, openssl_index } => {
            crl::run(&crl::CrlArgs { entries, runs, out, ca_out, openssl_index })
        }
        Command::Acme { directory, ca, clients, warmup, duration, domain, label } => {
            let args = acme::AcmeArgs {
                directory,
                ca,
                clients,
                warmup: std::time::Duration::from_secs(warmup),
                duration: std::time::Duration::from_secs(duration),
                domain,
                label,
            };
            match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt.block_on(acme::run(&args)),
                Err(e) => Err(e.into()),
            }
        }
        Command::RenewalScan { database_url, certificates, due, runs, quiet_load, quiet_wait } => {
            let args = scan::ScanArgs {
                database_url,
                certificates,
                due,
                runs,
                quiet_load,
                quiet_wait: std::time::Duration::from_secs(quiet_wait),
            };
            match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt.block_on(scan::run(&args)),
                Err(e) => Err(e.into()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certctl-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
