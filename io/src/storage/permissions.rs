//! Private files: a member's data (values, users' password hashes) is readable by its own
//! user only, as etcd keeps it — directories 0700, files 0600 (LMDB creates its files 0600 on
//! its own). Existing looser permissions are reported, not changed: an operator may have
//! chosen them, and the member must still start.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// etcd's `PrivateDirMode`.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// etcd's `PrivateFileMode`.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// `create_dir_all` whose new directories are 0700 (existing ones are left as they are).
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR_MODE);
    }
    builder.create(path)
}

/// Options that create a file 0600 (an existing file keeps its mode).
pub fn private_file_options() -> OpenOptions {
    let mut options = File::options();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    options
}

/// `File::create`, but 0600 when it creates the file.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// A path whose permissions let users other than the owner in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoosePermission {
    pub path: PathBuf,
    /// The permission bits found (e.g. 0o755).
    pub mode: u32,
    /// What qraft creates it with.
    pub recommended: u32,
}

/// Paths of the member's data whose mode grants group or others any access: the data
/// directory, the member's LMDB and journal directories and the files directly in them.
/// Bounded by the journal's segment count; missing paths are skipped.
pub fn loose_permissions(data_dir: &Path) -> Vec<LoosePermission> {
    let mut found = Vec::new();
    let member = data_dir.join("member");
    let dirs = [
        data_dir.to_path_buf(),
        member.clone(),
        data_dir.join(super::LMDB_SUBDIR),
        data_dir.join(super::JOURNAL_SUBDIR),
    ];
    for dir in &dirs {
        check(dir, PRIVATE_DIR_MODE, &mut found);
    }
    for dir in &dirs[1..] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                check(&entry.path(), PRIVATE_FILE_MODE, &mut found);
            }
        }
    }
    found
}

#[cfg(unix)]
fn check(path: &Path, recommended: u32, found: &mut Vec<LoosePermission>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        found.push(LoosePermission {
            path: path.to_path_buf(),
            mode,
            recommended,
        });
    }
}

#[cfg(not(unix))]
fn check(_: &Path, _: u32, _: &mut Vec<LoosePermission>) {}
