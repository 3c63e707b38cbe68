//! The raft journal's file layer: every file system call the journal makes goes through
//! [`JournalFs`] and [`JournalFile`], so that a test can stand in for the disk and decide what a
//! crash keeps (see `journal_crash_fs.rs`: only what was synced).
//!
//! Production uses [`OsFs`], plain `std::fs` calls behind a trait object: one virtual call per
//! system call, next to an `fdatasync` that costs a device flush.
//!
//! Contract the journal relies on (POSIX, and what the test layer enforces): a file's bytes are
//! durable once [`JournalFile::sync_data`] (or `sync_all`) returns; a directory entry — a file
//! created, renamed or removed, a directory created — is durable once its parent directory is
//! synced with [`JournalFs::sync_dir`]. Nothing else is: a crash may drop any of it.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The file system operations of the journal. Paths are absolute or relative to the process's
/// working directory, as `std::fs` takes them.
pub(crate) trait JournalFs: Send + Sync {
    /// Whether `dir` exists (and is a directory).
    fn dir_exists(&self, dir: &Path) -> io::Result<bool>;
    /// Creates `dir` (its parent exists).
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates an empty file (replacing one at `path`), open for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn JournalFile>>;
    /// Opens an existing file for writing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn JournalFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// A file open for writing.
pub(crate) trait JournalFile: Send {
    /// Writes all of `bytes` at `offset` (extending the file if needed).
    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: the data written so far, and the size, are durable when it returns.
    fn sync_data(&mut self) -> io::Result<()>;
    /// `fsync`: as `sync_data`, with all of the file's metadata.
    fn sync_all(&mut self) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OsFs;

impl OsFs {
    pub fn shared() -> Arc<dyn JournalFs> {
        Arc::new(OsFs)
    }
}

impl JournalFs for OsFs {
    fn dir_exists(&self, dir: &Path) -> io::Result<bool> {
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(true),
            Ok(_) => Err(io::Error::other(format!(
                "{} is not a directory",
                dir.display()
            ))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        // 0700: the journal holds values and password hashes (see `permissions`).
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(super::permissions::PRIVATE_DIR_MODE);
        }
        builder.create(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for item in fs::read_dir(dir)? {
            names.push(item?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        Ok(Box::new(OsFile(super::permissions::create_private_file(
            path,
        )?)))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        Ok(Box::new(OsFile(File::options().write(true).open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

struct OsFile(File);

impl JournalFile for OsFile {
    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}
