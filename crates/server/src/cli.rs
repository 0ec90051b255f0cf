//! Sub-commands of `certctl-server` besides serving.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use certctl_api::Role;
use certctl_store::{Actor, NewApiKey};

use crate::auth::{generate_key, hash_key};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;

#[derive(Debug, Clone, Default, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    #[default]
    Serve,
    /// Manage API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Fill an empty store with demo teams, owners, issuers, targets, agents and certificates.
    SeedDemo {
        /// Number of managed certificates to create.
        #[arg(long, default_value_t = 30)]
        certificates: usize,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key and print it once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and report the first broken link (exit status 1 when broken).
    Verify,
}

fn parse_role(v: &str) -> Result<Role, String> {
    v.parse::<Role>().map_err(|e| e.0)
}

/// Runs one command to completion.
pub async fn execute(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => crate::run(config).await.map(|()| ExitCode::SUCCESS),
        Command::Openapi => {
            println!("{}", crate::api::openapi().to_pretty_json()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Apikey { command: ApikeyCommand::Create { name, role } } => {
            let name = certctl_api::Name::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let store = crate::open_store(&config).await?;
            let key = generate_key();
            let new = NewApiKey { name: name.into_inner(), role, key_hash: hash_key(&key), created_by: "cli".into() };
            let created = store.create_api_key(&new, &Actor::system(), SystemClock.now()).await?;
            store.close().await;
            eprintln!("created API key '{}' ({}, id {}); it is shown once:", created.name, created.role, created.id);
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let store = crate::open_store(&config).await?;
            let report = store.verify_audit_chain().await.context("cannot read the audit trail")?;
            store.close().await;
            match report.first_broken {
                None => {
                    println!("audit chain intact: {} records verified", report.checked);
                    // Printing the head lets an operator anchor it elsewhere: a chain cannot by
                    // itself reveal records cut from its end.
                    if let Some((seq, hash)) = &report.head {
                        println!("head: record {seq}, hash {hash}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Some((seq, reason)) => {
                    println!(
                        "audit chain BROKEN at record {seq}: {reason} ({} records verified before it)",
                        report.checked
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::SeedDemo { certificates } => {
            let store = crate::open_store(&config).await?;
            let secrets = crate::secrets::SecretBox::load(config.encryption_key.as_deref(), &config.data_dir)?;
            let summary = crate::seed::seed_demo(&store, &secrets, certificates, SystemClock.now()).await?;
            store.close().await;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
