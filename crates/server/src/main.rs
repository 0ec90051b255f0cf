//! `certctl-server`: parse the command line and configuration, then hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use certctl_server::cli;

/// mimalloc keeps per-thread heaps: rows are built on SQLite's worker threads and freed on the
/// runtime's, which makes the system allocator contend on its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use certctl_server::config::RawSettings;

#[derive(Parser)]
#[command(name = "certctl-server", version, about = "certctl control plane: REST API, scheduler and local CA")]
struct Args {
    /// TOML file with settings (keys are the variable names without CERTCTL_, lower case).
    #[arg(long, env = "CERTCTL_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<cli::Command>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match RawSettings::load(args.config.as_deref(), std::env::vars()).and_then(RawSettings::into_config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certctl-server: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    certctl_server::init_logging(&config.log, config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("certctl-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::execute(args.command.unwrap_or_default(), config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("certctl-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
