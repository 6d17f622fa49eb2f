//! Mount points inside the new root: resolving a target path the way the
//! container would see it (after `pivot_root`, so symlinks, absolute or
//! with `..`, cannot leave the root), creating what is missing, and
//! reporting each entry created on the root overlay, so that it can be
//! taken out of the layer afterwards.
//!
//! A dangling symlink is followed and its target created, as runc does for
//! `/etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags, StatxFlags};

use super::protocol::{Report, Reporter};

/// Symlinks followed while resolving one target, as Linux allows.
const MAX_SYMLINKS: u32 = 40;

/// What the mount point must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    /// Anything but a directory (created as an empty regular file).
    File,
}

/// Creates mount points, recording those on the root overlay.
pub(crate) struct MountPoints<'a> {
    reporter: &'a Reporter,
    root_mount: u64,
}

impl<'a> MountPoints<'a> {
    /// Must be called after `pivot_root`: `/` is the root overlay.
    pub fn new(reporter: &'a Reporter) -> io::Result<MountPoints<'a>> {
        Ok(MountPoints {
            reporter,
            root_mount: mount_id(Path::new("/"))?,
        })
    }

    /// Resolves `target` and creates what is missing (directories 0755,
    /// the last entry as `kind`). With `record`, each entry created on the
    /// root overlay is reported first. Returns the resolved path, which
    /// has no symlinks.
    pub fn ensure(&self, target: &str, kind: Kind, record: bool) -> io::Result<PathBuf> {
        let mut pending: VecDeque<OsString> = VecDeque::new();
        push_components(&mut pending, Path::new(target), false);
        let mut resolved = PathBuf::from("/");
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                resolved.pop();
                continue;
            }
            let last = pending.is_empty();
            let candidate = resolved.join(&name);
            match fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let link = fs::read_link(&candidate)?;
                    if link.is_absolute() {
                        resolved = PathBuf::from("/");
                    }
                    push_components(&mut pending, &link, true);
                }
                Ok(meta) => {
                    let want_dir = !last || kind == Kind::Dir;
                    if want_dir && !meta.is_dir() {
                        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                    }
                    if !want_dir && meta.is_dir() {
                        return Err(io::Error::from_raw_os_error(libc::EISDIR));
                    }
                    resolved = candidate;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if record && mount_id(&resolved)? == self.root_mount {
                        self.reporter.send(&Report::Creating {
                            path: candidate.as_os_str().as_bytes().to_vec(),
                        })?;
                    }
                    if last && kind == Kind::File {
                        rustix::fs::openat(
                            CWD,
                            &candidate,
                            OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::RDONLY
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o644),
                        )?;
                    } else {
                        rustix::fs::mkdir(&candidate, Mode::from_raw_mode(0o755))?;
                    }
                    resolved = candidate;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(resolved)
    }
}

/// Queues `path`'s components, in front of what is queued (`front`: a
/// symlink's target replaces the link) or behind.
fn push_components(pending: &mut VecDeque<OsString>, path: &Path, front: bool) {
    let comps: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsStr::new("..").to_os_string()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    if front {
        for c in comps.into_iter().rev() {
            pending.push_front(c);
        }
    } else {
        pending.extend(comps);
    }
}

/// The id of the mount `path` is on.
fn mount_id(path: &Path) -> io::Result<u64> {
    let stx = rustix::fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID)?;
    Ok(stx.stx_mnt_id)
}
