//! The state directory: created 0700, holding the agent's identity (`agent.json`, 0600) and
//! its keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// State directory failures.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory could not be created, read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// `agent.json` is not what the agent writes.
    #[error("{path}: not a valid agent identity: {message}")]
    Corrupt { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_owned(), source }
}

/// Who the agent is to the server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub agent_id: String,
    pub credential: String,
    pub server_url: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("agent_id", &self.agent_id)
            .field("credential", &"********")
            .field("server_url", &self.server_url)
            .finish()
    }
}

/// The agent's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens `root`, creating it (and `keys/`) with mode 0700 and tightening an existing one.
    pub fn open(root: &Path) -> Result<StateDir, StateError> {
        for dir in [root.to_owned(), root.join("keys")] {
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        }
        Ok(StateDir { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where keys live: `keys/<certificate_id>/<spki_sha256_hex>.key`.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    fn identity_path(&self) -> PathBuf {
        self.root.join("agent.json")
    }

    /// The saved identity, if the agent has enrolled before.
    pub fn identity(&self) -> Result<Option<Identity>, StateError> {
        let path = self.identity_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let identity: Identity = serde_json::from_slice(&bytes)
            .map_err(|e| StateError::Corrupt { path: path.clone(), message: e.to_string() })?;
        if identity.agent_id.is_empty() || !identity.credential.starts_with("cca_") {
            return Err(StateError::Corrupt { path, message: "agent_id or credential missing".into() });
        }
        Ok(Some(identity))
    }

    /// Saves the identity atomically, readable by the agent's user only.
    pub fn save_identity(&self, identity: &Identity) -> Result<(), StateError> {
        // A struct of strings always serializes.
        let json = serde_json::to_vec_pretty(identity).unwrap_or_default();
        write_private(&self.identity_path(), &json)
    }
}

/// Writes `bytes` to `path` with mode 0600 through a temp file in the same directory, fsynced
/// and renamed, so a crash leaves the old file or the new one, never half of one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        let state = StateDir::open(&root).unwrap();
        assert_eq!(fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(root.join("keys")).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(state.identity().unwrap().is_none());
        let id =
            Identity { agent_id: "agent-1".into(), credential: "cca_secret".into(), server_url: "https://a".into() };
        state.save_identity(&id).unwrap();
        assert_eq!(fs::metadata(root.join("agent.json")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(state.identity().unwrap(), Some(id.clone()));
        assert!(!format!("{id:?}").contains("cca_secret"));
        // An existing directory with loose permissions is tightened.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        StateDir::open(&root).unwrap();
        assert_eq!(fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
        fs::write(root.join("agent.json"), b"{}").unwrap();
        assert!(matches!(state.identity(), Err(StateError::Corrupt { .. })));
    }
}
