//! Durable file operations shared by the store's modules.
//!
//! A rename is only durable once the directory holding it is fsynced, and a
//! file's content only once the file is: these helpers do both, so a crash
//! leaves either the old file or the complete new one, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use super::error::{IoContext, Result};

/// Fsyncs a directory so that renames and unlinks inside it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

/// Replaces `dir/name` with `bytes` atomically: writes `dir/name.tmp`,
/// fsyncs it, renames it over `dir/name` and fsyncs `dir`.
///
/// The caller must hold the store lock: the temporary name is fixed so that a
/// leftover from a crash is found (and overwritten) by the next writer.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dest = dir.join(name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .at("create", &tmp)?;
    f.write_all(bytes).at("write", &tmp)?;
    f.sync_all().at("fsync", &tmp)?;
    drop(f);
    fs::rename(&tmp, &dest).at("rename into place", &dest)?;
    sync_dir(dir)
}

/// Reads the rest of `file` if it is at most `limit` bytes; `Ok(None)` if it holds more.
pub(crate) fn read_capped(file: &mut File, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(buf))
}

/// Creates `dir` (and missing parents), fsyncing each parent that gained an
/// entry so the new directories survive a crash.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    match create_one(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                ensure_dir(parent)?;
            }
            create_one(dir).at("create directory", dir)
        }
        other => other.at("create directory", dir),
    }
}

fn create_one(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => File::open(parent).and_then(|d| d.sync_all()),
            None => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}
