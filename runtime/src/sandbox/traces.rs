//! Taking the sandbox's own traces out of the layer: the mount points the
//! init created on the root overlay (`/proc`, `/etc/hosts`, mount targets,
//! and their missing parents), and the directories overlayfs copied up to
//! hold them.
//!
//! Runs in the parent after the init is reaped, when the mount namespace,
//! and with it the overlay, is gone. Deepest paths first:
//! - an entry the init created goes if it is still what the init made: an
//!   empty directory or an empty regular file;
//! - a parent it did not create (copied up from a lower layer when a mount
//!   point was made inside it) goes if it is empty in the upper directory,
//!   not opaque, and its mode, owner and extended attributes still match
//!   the lower layers' directory: then removing it leaves the merged view
//!   unchanged (only its mtime, which the mount point creation changed).
//!
//! The upper directory is walked without following symlinks: the command
//! ran as root in it and could have replaced directories with links.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use xattr::FileExt;

use super::SandboxError;
use crate::rootfs::LayeredFs;

const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Removes the traces reported as `created` (absolute in-container paths)
/// from `upper`; `lower` is the image's layers, top first.
pub(crate) fn remove(
    upper: &Path,
    lower: &[PathBuf],
    created: &[Vec<u8>],
) -> Result<(), SandboxError> {
    if created.is_empty() {
        return Ok(());
    }
    let mut ours: HashSet<Vec<OsString>> = HashSet::new();
    // Deepest first; for equal depth any order.
    let mut candidates: BTreeMap<(std::cmp::Reverse<usize>, Vec<OsString>), ()> = BTreeMap::new();
    for path in created {
        let Some(comps) = components(path) else {
            continue;
        };
        for depth in 1..comps.len() {
            candidates.insert((std::cmp::Reverse(depth), comps[..depth].to_vec()), ());
        }
        candidates.insert((std::cmp::Reverse(comps.len()), comps.clone()), ());
        ours.insert(comps);
    }
    let root = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| cleanup_error(upper, e.into()))?;
    let layers = LayeredFs::new(lower.iter().rev().cloned().collect());
    for (_, comps) in candidates.into_keys() {
        let host = comps.iter().fold(upper.to_path_buf(), |p, c| p.join(c));
        remove_one(&root, &comps, ours.contains(&comps), &layers)
            .map_err(|e| cleanup_error(&host, e))?;
    }
    Ok(())
}

fn cleanup_error(path: &Path, source: io::Error) -> SandboxError {
    SandboxError::Cleanup {
        path: path.to_path_buf(),
        source,
    }
}

/// The normal components of an absolute path; `None` for anything else
/// (the init only reports such paths, but this decides what is deleted).
fn components(path: &[u8]) -> Option<Vec<OsString>> {
    let rest = path.strip_prefix(b"/")?;
    let comps: Vec<OsString> = rest
        .split(|&b| b == b'/')
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect();
    let valid = comps
        .iter()
        .all(|c| !c.is_empty() && c != "." && c != ".." && !c.as_bytes().contains(&0));
    (valid && !comps.is_empty()).then_some(comps)
}

fn remove_one(
    root: &OwnedFd,
    comps: &[OsString],
    ours: bool,
    layers: &LayeredFs,
) -> io::Result<()> {
    let (name, parents) = match comps.split_last() {
        Some(split) => split,
        None => return Ok(()),
    };
    let Some(parent) = open_dir(root, parents)? else {
        return Ok(());
    };
    let stat = match rustix::fs::statat(&parent, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile if ours && stat.st_size == 0 => {
            rustix::fs::unlinkat(&parent, name.as_os_str(), AtFlags::empty())?;
        }
        FileType::Directory => {
            let dir = open_child_dir(&parent, name)?;
            if !is_empty(&dir)? {
                return Ok(());
            }
            if !ours && !copied_up_unchanged(dir, comps, layers)? {
                return Ok(());
            }
            match rustix::fs::unlinkat(&parent, name.as_os_str(), AtFlags::REMOVEDIR) {
                Ok(()) | Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTEMPTY) => {}
                Err(e) => return Err(e.into()),
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether the upper directory at `comps` is a bare copy-up of the lower
/// layers' directory: not opaque, same mode, owner and xattrs.
fn copied_up_unchanged(dir: OwnedFd, comps: &[OsString], layers: &LayeredFs) -> io::Result<bool> {
    let dir = File::from(dir);
    if dir.get_xattr(OPAQUE_XATTR)?.is_some() {
        return Ok(false);
    }
    let path: PathBuf = comps.iter().fold(PathBuf::from("/"), |p, c| p.join(c));
    let Some(path) = path.to_str() else {
        return Ok(false);
    };
    let found = match layers.lookup(path, false) {
        Ok(Some(found)) => found,
        Ok(None) | Err(_) => return Ok(false),
    };
    let upper = dir.metadata()?;
    let lower = &found.metadata;
    if !lower.is_dir()
        || upper.mode() & 0o7777 != lower.mode()
        || upper.uid() != lower.uid()
        || upper.gid() != lower.gid()
    {
        return Ok(false);
    }
    let Some(host) = found.host_path() else {
        return Ok(false);
    };
    let lower_dir = File::open(host)?;
    Ok(user_xattrs(&dir)? == user_xattrs(&lower_dir)?)
}

/// The xattrs that are the directory's own, not overlayfs's bookkeeping.
fn user_xattrs(file: &File) -> io::Result<BTreeMap<OsString, Option<Vec<u8>>>> {
    let mut out = BTreeMap::new();
    for name in file.list_xattr()? {
        if name.as_bytes().starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        let value = file.get_xattr(&name)?;
        out.insert(name, value);
    }
    Ok(out)
}

/// Opens the directory at `comps` below `root` without following symlinks;
/// `None` if it is not there (or not a directory).
fn open_dir(root: &OwnedFd, comps: &[OsString]) -> io::Result<Option<OwnedFd>> {
    let mut dir = rustix::io::dup(root)?;
    for comp in comps {
        match open_child_dir(&dir, comp) {
            Ok(next) => dir = next,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(dir))
}

fn open_child_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn is_empty(dir: &OwnedFd) -> io::Result<bool> {
    let mut entries = rustix::fs::Dir::read_from(dir)?;
    for entry in entries.by_ref() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn paths(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn components_reject_relative_and_dot_paths() {
        assert_eq!(components(b"/etc/hosts").unwrap(), ["etc", "hosts"]);
        assert!(components(b"etc").is_none());
        assert!(components(b"/etc/../x").is_none());
        assert!(components(b"/etc//x").is_none());
        assert!(components(b"/").is_none());
    }

    #[test]
    fn removes_created_entries_and_unchanged_copied_up_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("lower");
        let upper = tmp.path().join("upper");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::create_dir_all(lower.join("var")).unwrap();
        fs::set_permissions(lower.join("var"), fs::Permissions::from_mode(0o755)).unwrap();
        // Upper as the run left it: /proc and /run/secrets/x created, /etc
        // and /var copied up; /var was then changed by the command.
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("run/secrets/x")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::create_dir_all(upper.join("var/m")).unwrap();
        fs::set_permissions(upper.join("var"), fs::Permissions::from_mode(0o700)).unwrap();
        // A created file the command could not have changed but a path the
        // command replaced with a symlink must not be followed.
        fs::create_dir_all(tmp.path().join("outside/d")).unwrap();
        symlink(tmp.path().join("outside"), upper.join("link")).unwrap();
        let created = paths(&[
            "/proc",
            "/run",
            "/run/secrets",
            "/run/secrets/x",
            "/etc/hosts",
            "/var/m",
            "/link/d",
        ]);
        remove(&upper, std::slice::from_ref(&lower), &created).unwrap();
        let mut left: Vec<String> = fs::read_dir(&upper)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["link", "var"]);
        assert!(fs::read_dir(upper.join("var")).unwrap().next().is_none());
        assert!(tmp.path().join("outside/d").is_dir());
    }

    #[test]
    fn keeps_non_empty_and_changed_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("lower");
        let upper = tmp.path().join("upper");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("etc/new"), "x").unwrap();
        fs::create_dir_all(upper.join("data")).unwrap();
        fs::write(upper.join("data/file"), "x").unwrap();
        fs::write(upper.join("written"), "x").unwrap();
        let created = paths(&["/etc/hosts", "/data", "/written"]);
        remove(&upper, &[lower], &created).unwrap();
        assert!(!upper.join("etc/hosts").exists());
        assert!(upper.join("etc/new").exists());
        assert!(upper.join("data/file").exists());
        assert!(upper.join("written").exists());
    }
}
