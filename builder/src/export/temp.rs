//! Temporary files and directories beside a destination, removed unless
//! kept: how exports make sure a failure leaves nothing under the final name.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ExportError, io_err};

/// Tells one process's temp names apart; the pid tells processes apart.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// A temp path removed on drop unless [`keep`](Temp::keep) was called.
#[derive(Debug)]
pub(super) struct Temp {
    path: PathBuf,
    dir: bool,
    kept: bool,
}

/// A hidden name beside `dest` in `parent`, unique to this process and call.
fn temp_name(parent: &Path, dest: &Path) -> PathBuf {
    let base = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    parent.join(format!(".{base}.berth-{}-{seq}.tmp", std::process::id()))
}

impl Temp {
    /// Creates a new empty file beside `dest` (in `parent`, which must exist).
    pub(super) fn file(parent: &Path, dest: &Path) -> Result<(Temp, File), ExportError> {
        let mut attempt = 0;
        loop {
            let path = temp_name(parent, dest);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let temp = Temp {
                        path,
                        dir: false,
                        kept: false,
                    };
                    return Ok((temp, file));
                }
                // A dead process with our pid may have left this name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(io_err("create temp file", &path)(e)),
            }
        }
    }

    /// Creates a new empty directory beside `dest` (in `parent`).
    pub(super) fn dir(parent: &Path, dest: &Path) -> Result<Temp, ExportError> {
        let mut attempt = 0;
        loop {
            let path = temp_name(parent, dest);
            match fs::create_dir(&path) {
                Ok(()) => {
                    return Ok(Temp {
                        path,
                        dir: true,
                        kept: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(io_err("create temp directory", &path)(e)),
            }
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temp path to `dest` and stops removing it.
    pub(super) fn persist(mut self, dest: &Path) -> Result<(), ExportError> {
        fs::rename(&self.path, dest).map_err(io_err("move into place at", dest))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // Nothing more can be done about a failure here: the name is hidden
        // and marked as berth's temp file.
        let _ = if self.dir {
            fs::remove_dir_all(&self.path)
        } else {
            fs::remove_file(&self.path)
        };
    }
}

/// The directory that holds `dest`, created if missing.
pub(super) fn parent_of(dest: &Path) -> Result<PathBuf, ExportError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_err("create directory", &parent))?;
    Ok(parent)
}

/// Fsyncs a directory so renames inside it survive a crash.
pub(super) fn sync_dir(dir: &Path) -> Result<(), ExportError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}
