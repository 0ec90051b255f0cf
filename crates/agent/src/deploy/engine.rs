//! The one deployment engine: skip identical content, back up, stage in the same directory with
//! owner and mode, validate, rename, reload, verify, and roll back when the reload or the check
//! fails.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certctl_api::{CommandLine, Endpoint, FilePermissions, TargetConfig, VerificationReport};
use zeroize::Zeroizing;

use super::connectors::Connector;
use super::files::{copy_preserving, fsync_dir, gid_of, prune_backups, sibling, stage, uid_of};
use super::{DeployFailure, Material, command};
use crate::verify::{self, VerifySpec};

/// One file a connector wants in place.
pub struct StagedFile {
    /// `cert`, `key`, `chain`, `pem`, …: names the permission keys and the staged-path variable.
    pub role: &'static str,
    pub path: PathBuf,
    pub contents: Zeroizing<Vec<u8>>,
    pub permissions: FilePermissions,
    /// The mode of a new file when none is configured.
    pub default_mode: u32,
}

impl StagedFile {
    pub fn new(
        config: &TargetConfig,
        role: &'static str,
        path: impl Into<PathBuf>,
        contents: Vec<u8>,
        default_mode: u32,
    ) -> Self {
        StagedFile {
            role,
            path: path.into(),
            contents: Zeroizing::new(contents),
            permissions: config.permissions(role),
            default_mode,
        }
    }
}

/// What runs once the files are in place.
pub enum Action {
    /// A reload command.
    Command(CommandLine),
    /// A JSON POST (a server's admin API); the body may hold the private key.
    Post { url: String, body: Zeroizing<String> },
}

impl Action {
    async fn run(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Action::Command(cmd) => command::run(cmd, &[], timeout).await,
            Action::Post { url, body } => post_json(url, body, timeout).await,
        }
    }
}

async fn post_json(url: &str, body: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| format!("POST {url}: {e}"))?;
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    Err(format!("POST {url}: {status}: {}", text.chars().take(512).collect::<String>()))
}

/// A deployment, ready to apply.
pub struct Plan {
    pub files: Vec<StagedFile>,
    pub validate: Option<CommandLine>,
    pub reload: Option<Action>,
    pub timeout: Duration,
    pub backup_retention: usize,
    pub verify: Option<VerifySpec>,
}

impl Plan {
    /// The connector's files and action with the target's commands, limits and TLS check.
    pub fn build(config: &TargetConfig, connector: &dyn Connector, material: &Material) -> Result<Plan, DeployFailure> {
        let c = &config.common;
        let verify = config.verify_endpoint().map(|endpoint: Endpoint| {
            let server_name = c
                .verify_server_name
                .clone()
                .or_else(|| material.server_name.clone())
                .unwrap_or_else(|| endpoint.host().to_owned());
            VerifySpec {
                endpoint,
                server_name,
                attempts: c.verify_attempts,
                backoff: Duration::from_millis(c.verify_backoff_ms),
            }
        });
        Ok(Plan {
            files: connector.files(material)?,
            validate: config.validate_command(),
            reload: connector.action(material)?.or_else(|| config.reload_command().map(Action::Command)),
            timeout: Duration::from_secs(u64::from(c.command_timeout_seconds)),
            backup_retention: c.backup_retention as usize,
            verify,
        })
    }
}

/// A deployment that completed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// New content is in place (and reloaded).
    Deployed { verification: VerificationReport },
    /// Every file already had this content: nothing was written or run.
    Skipped { verification: VerificationReport },
}

impl Outcome {
    pub fn verification(&self) -> &VerificationReport {
        match self {
            Outcome::Deployed { verification } | Outcome::Skipped { verification } => verification,
        }
    }
}

/// What a destination held before the deployment.
struct Prior {
    path: PathBuf,
    backup: Option<PathBuf>,
}

/// Applies `plan`; the connector decides what counts as identical content.
pub async fn apply(plan: &Plan, connector: &dyn Connector, material: &Material) -> Result<Outcome, DeployFailure> {
    for file in &plan.files {
        let dir = file.path.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            return Err(DeployFailure::new(format!(
                "directory {} does not exist (for {}); nothing was written",
                dir.display(),
                file.path.display()
            )));
        }
    }
    let unchanged = !plan.files.is_empty()
        && plan
            .files
            .iter()
            .all(|f| fs::read(&f.path).is_ok_and(|old| connector.same_content(f, &Zeroizing::new(old))));
    if unchanged {
        tracing::info!(files = plan.files.len(), "content already deployed; skipping");
        return Ok(Outcome::Skipped { verification: check(plan, material).await });
    }

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let priors = back_up(&plan.files, stamp).map_err(DeployFailure::new)?;
    let temps = match stage_all(&plan.files, stamp) {
        Ok(temps) => temps,
        Err(e) => {
            discard(&priors, &[]);
            return Err(DeployFailure::new(e));
        }
    };
    if let Some(validate) = &plan.validate {
        let env: Vec<(String, PathBuf)> = plan
            .files
            .iter()
            .zip(&temps)
            .map(|(f, tmp)| (format!("CERTCTL_STAGED_{}_PATH", f.role.to_ascii_uppercase()), tmp.clone()))
            .collect();
        if let Err(e) = command::run(validate, &env, plan.timeout).await {
            discard(&priors, &temps);
            return Err(DeployFailure::new(format!("validation failed, nothing was changed: {e}")));
        }
    }
    if let Err(e) = commit(&plan.files, &temps) {
        let restored = restore(&priors);
        discard(&[], &temps);
        return Err(DeployFailure::new(format!("{e}; {restored}")));
    }

    if let Some(reload) = &plan.reload
        && let Err(e) = reload.run(plan.timeout).await
    {
        let rolled_back = roll_back(plan, &priors).await;
        return Err(DeployFailure::new(format!("reload failed: {e}; {rolled_back}")));
    }
    let verification = check(plan, material).await;
    if verification.status == "failed" {
        let rolled_back = roll_back(plan, &priors).await;
        let why = verification.error.clone().unwrap_or_default();
        return Err(DeployFailure {
            reason: format!("verification failed: {why}; {rolled_back}"),
            verification: Some(verification),
        });
    }
    for file in &plan.files {
        prune_backups(&file.path, plan.backup_retention);
    }
    Ok(Outcome::Deployed { verification })
}

async fn check(plan: &Plan, material: &Material) -> VerificationReport {
    match &plan.verify {
        Some(spec) => verify::check(spec, &material.fingerprint).await,
        None => VerificationReport { status: "skipped".into(), fingerprint: None, error: None },
    }
}

fn back_up(files: &[StagedFile], stamp: u128) -> Result<Vec<Prior>, String> {
    let mut priors = Vec::with_capacity(files.len());
    for file in files {
        let backup = if file.path.exists() {
            let backup = sibling(&file.path, "", &format!(".certctl-bak.{stamp}"));
            if let Err(e) = copy_preserving(&file.path, &backup) {
                discard(&priors, &[]);
                return Err(e);
            }
            Some(backup)
        } else {
            None
        };
        priors.push(Prior { path: file.path.clone(), backup });
    }
    Ok(priors)
}

/// Stages every file beside its destination with its resolved owner and mode.
fn stage_all(files: &[StagedFile], stamp: u128) -> Result<Vec<PathBuf>, String> {
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    for file in files {
        let tmp = sibling(&file.path, ".", &format!(".certctl-tmp.{stamp}"));
        if let Err(e) = stage_one(file, &tmp) {
            discard(&[], &temps);
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        temps.push(tmp);
    }
    Ok(temps)
}

/// Precedence for owner, group and mode: the configuration, then the existing file, then the
/// connector's default (and the agent's own user).
fn stage_one(file: &StagedFile, tmp: &Path) -> Result<(), String> {
    let existing = fs::metadata(&file.path).ok();
    let mode = file
        .permissions
        .mode
        .map(|m| m.bits())
        .or(existing.as_ref().map(|m| m.mode() & 0o777))
        .unwrap_or(file.default_mode);
    let uid = match &file.permissions.owner {
        Some(owner) => Some(uid_of(owner).map_err(|e| format!("{}_owner: {e}", file.role))?),
        None => existing.as_ref().map(MetadataExt::uid),
    };
    let gid = match &file.permissions.group {
        Some(group) => Some(gid_of(group).map_err(|e| format!("{}_group: {e}", file.role))?),
        None => existing.as_ref().map(MetadataExt::gid),
    };
    stage(tmp, &file.contents, mode, uid, gid)
}

fn commit(files: &[StagedFile], temps: &[PathBuf]) -> Result<(), String> {
    for (file, tmp) in files.iter().zip(temps) {
        fs::rename(tmp, &file.path).map_err(|e| format!("cannot move {} into place: {e}", file.path.display()))?;
    }
    fsync_dirs(files.iter().map(|f| f.path.as_path()))
}

fn fsync_dirs<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<(), String> {
    let dirs: BTreeSet<&Path> = paths.filter_map(Path::parent).collect();
    dirs.into_iter().try_for_each(fsync_dir)
}

/// Puts the previous files back (files that did not exist are removed); describes the result.
fn restore(priors: &[Prior]) -> String {
    let mut problems = Vec::new();
    for prior in priors {
        let result = match &prior.backup {
            Some(backup) => {
                let tmp = sibling(&prior.path, ".", ".certctl-restore");
                copy_preserving(backup, &tmp).and_then(|()| {
                    fs::rename(&tmp, &prior.path).map_err(|e| format!("cannot restore {}: {e}", prior.path.display()))
                })
            }
            None => match fs::remove_file(&prior.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove {}: {e}", prior.path.display()))
                }
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            problems.push(e);
        }
    }
    let _ = fsync_dirs(priors.iter().map(|p| p.path.as_path()));
    if problems.is_empty() {
        "the previous files were restored".into()
    } else {
        format!("restoring the previous files failed, manual action is needed: {}", problems.join("; "))
    }
}

/// Restores the previous files and reloads again so the old certificate is served.
async fn roll_back(plan: &Plan, priors: &[Prior]) -> String {
    let restored = restore(priors);
    match &plan.reload {
        Some(reload) => match reload.run(plan.timeout).await {
            Ok(()) => format!("{restored} and reloaded"),
            Err(e) => format!("{restored}, but the reload after restoring failed: {e}"),
        },
        None => restored,
    }
}

/// Removes this run's backups and temp files.
fn discard(priors: &[Prior], temps: &[PathBuf]) {
    for path in priors.iter().filter_map(|p| p.backup.as_ref()).chain(temps) {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
