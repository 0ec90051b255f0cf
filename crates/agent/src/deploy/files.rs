//! File operations of the engine: staging with owner and mode, backups and their retention,
//! restores, directory fsync, and user and group names.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use certctl_api::Principal;

/// `path` with `suffix` appended to its file name.
pub fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{prefix}{name}{suffix}"))
}

/// Writes `contents` to a new file `tmp` with `mode`, then owner and group when given, and
/// fsyncs it. The file is created 0600 so its content is never readable more widely than asked.
pub fn stage(tmp: &Path, contents: &[u8], mode: u32, uid: Option<u32>, gid: Option<u32>) -> Result<(), String> {
    let describe = |e: std::io::Error| format!("cannot stage {}: {e}", tmp.display());
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp).map_err(describe)?;
    f.write_all(contents).map_err(describe)?;
    let meta = f.metadata().map_err(describe)?;
    if uid.is_some_and(|u| u != meta.uid()) || gid.is_some_and(|g| g != meta.gid()) {
        std::os::unix::fs::fchown(&f, uid, gid)
            .map_err(|e| format!("cannot give {} owner {uid:?} and group {gid:?}: {e}", tmp.display()))?;
    }
    // After chown, which may clear setuid-like bits, and independent of the umask.
    f.set_permissions(fs::Permissions::from_mode(mode)).map_err(describe)?;
    f.sync_all().map_err(describe)
}

/// Copies `src` to `dst` with the same mode and, where allowed, the same owner.
pub fn copy_preserving(src: &Path, dst: &Path) -> Result<(), String> {
    let describe = |e: std::io::Error| format!("cannot copy {} to {}: {e}", src.display(), dst.display());
    let meta = fs::metadata(src).map_err(describe)?;
    let bytes = zeroize::Zeroizing::new(fs::read(src).map_err(describe)?);
    let _ = fs::remove_file(dst);
    stage(dst, &bytes, meta.mode() & 0o7777, None, None)?;
    if let Err(e) = std::os::unix::fs::chown(dst, Some(meta.uid()), Some(meta.gid())) {
        // An unprivileged agent owns what it writes; the copy keeps the mode at least.
        tracing::debug!(path = %dst.display(), error = %e, "cannot keep the owner of a copy");
    }
    Ok(())
}

pub fn fsync_dir(dir: &Path) -> Result<(), String> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot fsync {}: {e}", dir.display()))
}

/// Removes the oldest backups of `path` beyond the newest `keep`.
pub fn prune_backups(path: &Path, keep: usize) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let prefix = format!("{}.certctl-bak.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut backups: Vec<(u128, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file_name = e.file_name().to_string_lossy().into_owned();
            let stamp = file_name.strip_prefix(&prefix)?.parse().ok()?;
            Some((stamp, e.path()))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    for (_, old) in backups.into_iter().take(excess) {
        if let Err(e) = fs::remove_file(&old) {
            tracing::warn!(path = %old.display(), error = %e, "cannot remove an old backup");
        }
    }
}

/// A user's ID from a name or a number.
pub fn uid_of(p: &Principal) -> Result<u32, String> {
    id_of(p.as_str(), "/etc/passwd").ok_or_else(|| format!("unknown user '{}'", p.as_str()))
}

/// A group's ID from a name or a number.
pub fn gid_of(p: &Principal) -> Result<u32, String> {
    id_of(p.as_str(), "/etc/group").ok_or_else(|| format!("unknown group '{}'", p.as_str()))
}

/// Numbers are IDs; names are looked up in the local database file (`name:x:id:…`).
fn id_of(name: &str, database: &str) -> Option<u32> {
    if let Ok(id) = name.parse() {
        return Some(id);
    }
    let text = fs::read_to_string(database).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        let root = Principal::try_from("root".to_owned()).unwrap();
        assert_eq!(uid_of(&root), Ok(0));
        assert_eq!(gid_of(&root), Ok(0));
        assert_eq!(uid_of(&Principal::try_from("1234".to_owned()).unwrap()), Ok(1234));
        assert!(uid_of(&Principal::try_from("no-such-user-certctl".to_owned()).unwrap()).is_err());
    }

    #[test]
    fn backups_keep_the_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("cert.pem");
        for stamp in [5u128, 1, 3, 4, 2] {
            fs::write(sibling(&live, "", &format!(".certctl-bak.{stamp}")), b"x").unwrap();
        }
        fs::write(tmp.path().join("other.pem.certctl-bak.1"), b"x").unwrap();
        prune_backups(&live, 2);
        let mut left: Vec<String> =
            fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["cert.pem.certctl-bak.4", "cert.pem.certctl-bak.5", "other.pem.certctl-bak.1"]);
    }
}
