//! overlayfs mounts: the container's root, and overlay spec mounts.
//!
//! `mount(2)` takes its options in one page (4096 bytes), which 60 layers of
//! ~90-byte snapshot paths overflow. The new mount API takes one layer per
//! `fsconfig(…, "lowerdir+", …)` call (Linux 6.8+). Older kernels reject
//! that key; then the classic mount is used with every path relative to
//! their common parent (the init changes into it first).
//!
//! Overlay features that write formats the layer differ does not read
//! (index, redirect_dir, metacopy) are turned off explicitly, whatever the
//! kernel's defaults.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, OpenTreeFlags,
    UnmountFlags,
};

use super::protocol::{SetupError, Step};
use super::sys::cstring;

/// The most `mount(2)` copies of its options.
const PAGE: usize = 4096;
const OFF_OPTIONS: [&str; 3] = ["index", "redirect_dir", "metacopy"];

/// The layers of one overlay mount.
pub(crate) struct Layers<'a> {
    /// Top first.
    pub lower: &'a [PathBuf],
    /// `(upper, work)` for a writable overlay.
    pub upper_work: Option<(&'a Path, &'a Path)>,
    pub readonly: bool,
    pub nodev: bool,
}

/// Mounts the overlay onto `target` (a host path, attached in the current
/// mount namespace).
pub(crate) fn mount_at(
    layers: &Layers<'_>,
    target: &Path,
    classic: bool,
) -> Result<(), SetupError> {
    let what = || format!("mount the overlay root on {}", target.display());
    if !classic && let Some(mnt) = new_api(layers)? {
        return rustix::mount::move_mount(
            mnt.as_fd(),
            "",
            CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .step("mount", what);
    }
    classic_mount(layers, target, || Ok(()))
}

/// An overlay mount not attached anywhere yet. The classic fallback needs
/// a mount point on the host: it borrows the top layer's directory (the
/// overlay has resolved its layers before it is attached), clones the
/// mount, and takes it off again.
pub(crate) fn mount_detached(layers: &Layers<'_>, classic: bool) -> Result<OwnedFd, SetupError> {
    if !classic && let Some(mnt) = new_api(layers)? {
        return Ok(mnt);
    }
    let spot = layers
        .lower
        .first()
        .ok_or_else(|| SetupError::new("mount", "an overlay mount needs at least one layer"))?;
    classic_mount(layers, spot, || {
        let clone = rustix::mount::open_tree(
            CWD,
            spot,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .step("mount", || {
            format!("clone the overlay mounted on {}", spot.display())
        });
        let unmounted = rustix::mount::unmount(spot, UnmountFlags::DETACH).step("mount", || {
            format!("unmount the overlay from {}", spot.display())
        });
        let clone = clone?;
        unmounted?;
        Ok(clone)
    })
}

/// `None` when the kernel lacks `lowerdir+` (or the new mount API).
fn new_api(layers: &Layers<'_>) -> Result<Option<OwnedFd>, SetupError> {
    let fs = match rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fs) => fs,
        Err(rustix::io::Errno::NOSYS) => return Ok(None),
        Err(e) => return Err(e).step("mount", || "open an overlay filesystem context".into()),
    };
    let failed = |what: String, e: rustix::io::Errno| {
        let log = fs_log(fs.as_fd());
        let mut message = format!("{what}: {}", super::sys::describe(&e.into()));
        if !log.is_empty() {
            message = format!("{message} ({log})");
        }
        SetupError::new("mount", message)
    };
    for (i, layer) in layers.lower.iter().enumerate() {
        match rustix::mount::fsconfig_set_string(fs.as_fd(), "lowerdir+", layer) {
            Ok(()) => {}
            // Unknown key (before 6.8), or a path over fsconfig's 256 bytes:
            // the classic mount copes with both.
            Err(rustix::io::Errno::INVAL) if i == 0 => return Ok(None),
            Err(e) => {
                return Err(failed(format!("overlay layer {}", layer.display()), e));
            }
        }
    }
    if let Some((upper, work)) = layers.upper_work {
        for (key, path) in [("upperdir", upper), ("workdir", work)] {
            rustix::mount::fsconfig_set_string(fs.as_fd(), key, path)
                .map_err(|e| failed(format!("overlay {key} {}", path.display()), e))?;
        }
    }
    for key in OFF_OPTIONS {
        rustix::mount::fsconfig_set_string(fs.as_fd(), key, "off")
            .map_err(|e| failed(format!("overlay option {key}=off"), e))?;
    }
    rustix::mount::fsconfig_create(fs.as_fd()).map_err(|e| {
        failed(
            format!("create the overlay of {} layers", layers.lower.len()),
            e,
        )
    })?;
    let mut attrs = MountAttrFlags::empty();
    if layers.readonly {
        attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    if layers.nodev {
        attrs |= MountAttrFlags::MOUNT_ATTR_NODEV;
    }
    let mnt = rustix::mount::fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| failed("mount the overlay".into(), e))?;
    Ok(Some(mnt))
}

/// The kernel's own messages about a failed filesystem context, if any.
fn fs_log(fs: BorrowedFd<'_>) -> String {
    let mut messages = Vec::new();
    let mut buf = [0u8; 1024];
    // The log holds a handful of messages; reading returns one each time
    // and ENODATA when empty.
    for _ in 0..8 {
        match rustix::io::read(fs, &mut buf) {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(&buf[..n]);
                let text = text.trim_end();
                messages.push(text.strip_prefix("e ").unwrap_or(text).to_owned());
            }
            _ => break,
        }
    }
    messages.join("; ")
}

/// The classic mount on `target`, then `then` (while the mount is still
/// attached there).
fn classic_mount<T>(
    layers: &Layers<'_>,
    target: &Path,
    then: impl FnOnce() -> Result<T, SetupError>,
) -> Result<T, SetupError> {
    let lower: Vec<&Path> = layers.lower.iter().map(PathBuf::as_path).collect();
    let base = common_parent(&lower);
    rustix::process::chdir(&base).step("mount", || {
        format!("change directory to {}", base.display())
    })?;
    let mut groups = Vec::new();
    let result = classic_mount_in(layers, &base, target, &mut groups).and_then(|()| then());
    // The overlay holds its own references to its layers: the group
    // mounts can leave the tree (and must, so that their top directories
    // show their own contents to later mounts).
    for group in groups.iter().rev() {
        let _ = rustix::mount::unmount(group, UnmountFlags::DETACH);
    }
    rustix::process::chdir("/").step("mount", || "change directory to /".into())?;
    result
}

/// The classic mount, from `base`. When even relative paths overflow the
/// page, consecutive layers are first grouped into read-only overlays,
/// each mounted over its own top directory (recorded in `groups`), and the
/// groups become the layers: overlayfs allows an overlay as a lower layer.
fn classic_mount_in(
    layers: &Layers<'_>,
    base: &Path,
    target: &Path,
    groups: &mut Vec<PathBuf>,
) -> Result<(), SetupError> {
    let off = needed_off_options();
    let rel: Vec<Vec<u8>> = layers
        .lower
        .iter()
        .map(|l| escaped(relative(l, base)))
        .collect();
    let upper_work = layers
        .upper_work
        .map(|(upper, work)| (escaped(shorter(upper, base)), escaped(shorter(work, base))));
    let mut data = classic_options(&rel, upper_work.as_ref(), &off);
    if data.len() >= PAGE {
        let mut tops = Vec::new();
        let mut start = 0;
        while start < rel.len() {
            let mut end = start + 1;
            while end < rel.len() && classic_options(&rel[start..=end], None, &off).len() < PAGE {
                end += 1;
            }
            if end - start > 1 {
                let group = classic_options(&rel[start..end], None, &off);
                let group = cstring(group).step("mount", || "encode the overlay options".into())?;
                let top = &layers.lower[start];
                rustix::mount::mount(
                    "overlay",
                    top,
                    "overlay",
                    MountFlags::RDONLY,
                    group.as_c_str(),
                )
                .step("mount", || {
                    format!(
                        "mount an overlay of {} layers on {}",
                        end - start,
                        top.display()
                    )
                })?;
                groups.push(top.clone());
            }
            tops.push(rel[start].clone());
            start = end;
        }
        data = classic_options(&tops, upper_work.as_ref(), &off);
        if data.len() >= PAGE {
            return Err(SetupError::new(
                "mount",
                format!(
                    "overlay of {} layers: too many for one mount on this kernel (which lacks fsconfig lowerdir+, Linux 6.8)",
                    layers.lower.len()
                ),
            ));
        }
    }
    let mut flags = MountFlags::empty();
    if layers.readonly {
        flags |= MountFlags::RDONLY;
    }
    if layers.nodev {
        flags |= MountFlags::NODEV;
    }
    let data = cstring(data).step("mount", || "encode the overlay options".into())?;
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str()).step("mount", || {
        format!(
            "mount an overlay of {} layers on {}",
            layers.lower.len(),
            target.display()
        )
    })
}

/// The `off` options the kernel would not already default to: the page is
/// precious. Unknown defaults count as on.
fn needed_off_options() -> Vec<&'static str> {
    OFF_OPTIONS
        .into_iter()
        .filter(|key| {
            let param = format!("/sys/module/overlay/parameters/{key}");
            std::fs::read_to_string(param).map_or(true, |v| v.trim() != "N")
        })
        .collect()
}

/// `path` relative to `base` (`.` for `base` itself).
fn relative(path: &Path, base: &Path) -> Vec<u8> {
    let rel = path
        .strip_prefix(base)
        .unwrap_or(path)
        .as_os_str()
        .as_bytes();
    if rel.is_empty() {
        b".".to_vec()
    } else {
        rel.to_vec()
    }
}

/// `path` absolute, or relative to `base` through `..` if that is shorter.
fn shorter(path: &Path, base: &Path) -> Vec<u8> {
    let absolute = path.as_os_str().as_bytes().to_vec();
    let common = common_parent(&[path, base]);
    let ups = base.components().count() - common.components().count();
    let mut rel = b"../".repeat(ups);
    rel.extend(relative(path, &common));
    if rel.len() < absolute.len() {
        rel
    } else {
        absolute
    }
}

/// Escaped for overlay's option parser: `\` before `\`, `:` and `,`.
fn escaped(bytes: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for b in bytes {
        if matches!(b, b'\\' | b':' | b',') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// `lowerdir=…[,upperdir=…,workdir=…][,key=off…]` from escaped paths.
fn classic_options(
    lower: &[Vec<u8>],
    upper_work: Option<&(Vec<u8>, Vec<u8>)>,
    off: &[&str],
) -> Vec<u8> {
    let mut data = b"lowerdir=".to_vec();
    data.extend(lower.join(&b':'));
    if let Some((upper, work)) = upper_work {
        data.extend(b",upperdir=");
        data.extend(upper);
        data.extend(b",workdir=");
        data.extend(work);
    }
    for key in off {
        data.extend(format!(",{key}=off").as_bytes());
    }
    data
}

/// The deepest directory that is an ancestor of (or equal to) every path.
fn common_parent(paths: &[&Path]) -> PathBuf {
    let mut common: Option<Vec<OsString>> = None;
    for path in paths {
        let comps: Vec<OsString> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        common = Some(match common {
            None => comps,
            Some(prev) => prev
                .into_iter()
                .zip(comps)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let mut base = PathBuf::from("/");
    for c in common.unwrap_or_default() {
        base.push(OsString::from_vec(c.into_vec()));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_parent_of_siblings_and_nested() {
        let a = Path::new("/var/lib/berth/snapshots/a");
        let b = Path::new("/var/lib/berth/snapshots/b");
        let u = Path::new("/var/lib/berth/containers/x/upper");
        assert_eq!(
            common_parent(&[a, b]),
            Path::new("/var/lib/berth/snapshots")
        );
        assert_eq!(common_parent(&[a, b, u]), Path::new("/var/lib/berth"));
        assert_eq!(common_parent(&[a]), a);
        assert_eq!(common_parent(&[a, Path::new("/x")]), Path::new("/"));
    }

    #[test]
    fn classic_paths_are_short_and_escaped() {
        let base = Path::new("/base/snapshots");
        assert_eq!(relative(Path::new("/base/snapshots/one"), base), b"one");
        assert_eq!(relative(base, base), b".");
        assert_eq!(shorter(Path::new("/base/c/upper"), base), b"../c/upper");
        assert_eq!(shorter(Path::new("/x"), base), b"/x");
        assert_eq!(escaped(b"t:w,o\\".to_vec()), b"t\\:w\\,o\\\\");
        let data = classic_options(
            &[b"one".to_vec(), b"two".to_vec()],
            Some(&(b"../c/u".to_vec(), b"../c/w".to_vec())),
            &["index"],
        );
        assert_eq!(
            data,
            b"lowerdir=one:two,upperdir=../c/u,workdir=../c/w,index=off"
        );
        assert_eq!(classic_options(&[b".".to_vec()], None, &[]), b"lowerdir=.");
    }
}
