//! A test stand-in for the disk under the raft journal ([`JournalFs`]) that knows what a power
//! loss keeps: file bytes as of their last sync, directory entries as of their directory's last
//! sync. Every mutating call is a numbered point; the test picks one at which the "machine"
//! stops — that call and every later one fail — and then reads back the disk as it would come
//! up after the crash, in one of two [`CrashMode`]s.
//!
//! The test's own points (the LMDB commits it makes) are numbered in the same sequence through
//! [`CrashDisk::point`], so one counter covers every write of a run.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::journal_fs::{JournalFile, JournalFs};

const SECTOR: usize = 512;

/// What of the unsynced state survives the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrashMode {
    /// Power loss with nothing written back: only synced bytes and entries survive.
    LoseUnsynced,
    /// Everything written survives (as after kill -9, which keeps the page cache), except that
    /// the write the crash interrupted lands only in every other sector.
    KeepUnsynced,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    /// The namespace the running process sees.
    files: BTreeMap<PathBuf, usize>,
    dirs: BTreeSet<PathBuf>,
    /// The namespace a crash leaves: each entry as of its directory's last sync.
    durable_files: BTreeMap<PathBuf, usize>,
    durable_dirs: BTreeSet<PathBuf>,
    /// Points passed so far.
    points: u64,
    crash_at: Option<u64>,
    crashed: bool,
}

impl Disk {
    /// Passes one point; an error once the crash point is reached.
    fn point(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(crashed());
        }
        self.points += 1;
        if self.crash_at == Some(self.points) {
            self.crashed = true;
            return Err(crashed());
        }
        Ok(())
    }

    fn file(&self, path: &Path) -> io::Result<usize> {
        self.files
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

/// The disk, shared by the journal's files and the test.
#[derive(Debug, Clone, Default)]
pub(crate) struct CrashDisk {
    disk: Arc<Mutex<Disk>>,
}

impl CrashDisk {
    /// A disk that crashes at point `at` (`None`: never).
    pub fn new(crash_at: Option<u64>) -> CrashDisk {
        let disk = Disk {
            crash_at,
            ..Disk::default()
        };
        CrashDisk {
            disk: Arc::new(Mutex::new(disk)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn fs(&self) -> Arc<dyn JournalFs> {
        Arc::new(self.clone())
    }

    /// A point of the test's own (an LMDB commit): an error if the crash happens here.
    pub fn point(&self) -> io::Result<()> {
        self.lock().point()
    }

    pub fn points(&self) -> u64 {
        self.lock().points
    }

    /// The disk as the machine finds it after the crash (or after a power loss now), with no
    /// crash planned.
    pub fn after_crash(&self, mode: CrashMode) -> CrashDisk {
        let disk = self.lock();
        let (files, dirs) = match mode {
            CrashMode::LoseUnsynced => (&disk.durable_files, &disk.durable_dirs),
            CrashMode::KeepUnsynced => (&disk.files, &disk.dirs),
        };
        let mut after = Disk::default();
        let dirs = dirs.clone();
        for (path, inode) in files {
            if path.parent().is_some_and(|dir| dirs.contains(dir)) {
                let old = &disk.inodes[*inode];
                let data = match mode {
                    CrashMode::LoseUnsynced => old.synced.clone(),
                    CrashMode::KeepUnsynced => old.data.clone(),
                };
                after.inodes.push(Inode {
                    synced: data.clone(),
                    data,
                });
                after.files.insert(path.clone(), after.inodes.len() - 1);
            }
        }
        after.durable_files = after.files.clone();
        after.dirs = dirs.clone();
        after.durable_dirs = dirs;
        CrashDisk {
            disk: Arc::new(Mutex::new(after)),
        }
    }
}

impl JournalFs for CrashDisk {
    fn dir_exists(&self, dir: &Path) -> io::Result<bool> {
        let disk = self.lock();
        if disk.crashed {
            return Err(crashed());
        }
        Ok(disk.dirs.contains(dir))
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.point()?;
        if !disk.dirs.insert(dir.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                dir.display().to_string(),
            ));
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let disk = self.lock();
        if !disk.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                dir.display().to_string(),
            ));
        }
        Ok(disk
            .files
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let disk = self.lock();
        let inode = disk.file(path)?;
        Ok(disk.inodes[inode].data.clone())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        let mut disk = self.lock();
        disk.point()?;
        disk.inodes.push(Inode::default());
        let inode = disk.inodes.len() - 1;
        disk.files.insert(path.to_path_buf(), inode);
        Ok(Box::new(CrashFile {
            disk: self.clone(),
            inode,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        let disk = self.lock();
        if disk.crashed {
            return Err(crashed());
        }
        let inode = disk.file(path)?;
        Ok(Box::new(CrashFile {
            disk: self.clone(),
            inode,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.point()?;
        let inode = disk.file(from)?;
        disk.files.remove(from);
        disk.files.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.point()?;
        disk.file(path)?;
        disk.files.remove(path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.point()?;
        let in_dir = |path: &PathBuf| path.parent() == Some(dir);
        disk.durable_files.retain(|path, _| !in_dir(path));
        let live: Vec<(PathBuf, usize)> = disk
            .files
            .iter()
            .filter(|(path, _)| in_dir(path))
            .map(|(path, inode)| (path.clone(), *inode))
            .collect();
        disk.durable_files.extend(live);
        disk.durable_dirs.retain(|path| !in_dir(path));
        let live: Vec<PathBuf> = disk.dirs.iter().filter(|p| in_dir(p)).cloned().collect();
        disk.durable_dirs.extend(live);
        Ok(())
    }
}

struct CrashFile {
    disk: CrashDisk,
    inode: usize,
}

impl JournalFile for CrashFile {
    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let offset = offset as usize;
        if disk.crashed {
            return Err(crashed());
        }
        let result = disk.point();
        let inode = &mut disk.inodes[self.inode];
        if inode.data.len() < offset + bytes.len() {
            inode.data.resize(offset + bytes.len(), 0);
        }
        match result {
            Ok(()) => inode.data[offset..offset + bytes.len()].copy_from_slice(bytes),
            // The interrupted write: every other sector reached the page cache (and, in
            // `KeepUnsynced`, the disk).
            Err(err) => {
                for (i, byte) in bytes.iter().enumerate() {
                    if ((offset + i) / SECTOR).is_multiple_of(2) {
                        inode.data[offset + i] = *byte;
                    }
                }
                return Err(err);
            }
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.point()?;
        let inode = &mut disk.inodes[self.inode];
        inode.synced = inode.data.clone();
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}
