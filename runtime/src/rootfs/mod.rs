//! A read-only merged view of a chain of snapshot directories: what an
//! overlayfs mount of them would show, computed without mounting.
//!
//! Owns path resolution inside an image (for `USER` lookups in `/etc/passwd`,
//! `WORKDIR` checks, `COPY --from` sources, …) and flattening a chain into a
//! plain directory (`berth build --output type=local`).
//!
//! Overlay rules, top layer first:
//! - the top-most layer that has a path decides what it is;
//! - a 0/0 character device (a whiteout) hides the path in all lower layers;
//! - a directory with `trusted.overlay.opaque=y` hides the lower layers'
//!   contents of that directory;
//! - only directories merge: a non-directory hides everything below it, and
//!   below a directory a lower non-directory ends the merge.
//!
//! Paths are resolved as a chroot at the image root would: symlinks in
//! intermediate components are always followed, absolute targets start at the
//! image root, `..` at the root stays there, and more than 255 links is a
//! loop. Only names inside the layer directories are ever looked at; no
//! symlink is followed on the host.

mod error;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid};

use error::IoContext;
pub use error::RootfsError;

/// Symlinks followed while resolving one path before it counts as a loop.
const MAX_SYMLINKS: u32 = 255;
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// A chain of snapshot directories seen as one tree. Holds no open files.
#[derive(Debug, Clone)]
pub struct LayeredFs {
    /// Bottom first.
    layers: Vec<PathBuf>,
}

/// A path found in the merged tree.
#[derive(Debug, Clone)]
pub struct Found {
    /// The absolute in-image path after resolving symlinks (lossy UTF-8 if a
    /// name is not UTF-8).
    pub path: String,
    /// Where the entry that wins lives on the host (in its layer).
    pub host_path: PathBuf,
    /// That entry's own metadata (not followed if it is a symlink).
    pub metadata: Metadata,
}

/// A merged path: the layer that decides it, that layer's metadata, and for
/// directories the layers (top first) whose directories merge into it.
#[derive(Debug, Clone)]
struct Node {
    top: usize,
    metadata: Metadata,
    dirs: Vec<usize>,
}

impl LayeredFs {
    /// A view of `layers`, bottom first (the order of an image's `rootfs.diff_ids`).
    pub fn new(layers: Vec<PathBuf>) -> LayeredFs {
        LayeredFs { layers }
    }

    /// The layer directories, bottom first.
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// Finds `path` (absolute in the image; a relative path is taken from the
    /// root). Symlinks in intermediate components are followed; the final
    /// one only with `follow_final_symlink` (or a trailing `/`). `None` when
    /// the path does not exist, or a component that must be a directory is not.
    pub fn lookup(
        &self,
        path: &str,
        follow_final_symlink: bool,
    ) -> Result<Option<Found>, RootfsError> {
        Ok(self
            .resolve(path, follow_final_symlink)?
            .map(|(comps, node)| self.found(&comps, node)))
    }

    /// The merged entries of the directory at `path` (symlinks followed),
    /// whiteouts applied, sorted by name bytes. Entries themselves are not
    /// followed: a symlink is listed as a symlink.
    pub fn read_dir(&self, path: &str) -> Result<Vec<(String, Found)>, RootfsError> {
        if self.layers.is_empty() && is_root_path(path) {
            return Ok(Vec::new());
        }
        let (comps, node) = self
            .resolve(path, true)?
            .ok_or_else(|| RootfsError::NotFound {
                path: path.to_owned(),
            })?;
        if !node.metadata.is_dir() {
            return Err(RootfsError::NotADirectory {
                path: path.to_owned(),
            });
        }
        let rel = rel_path(&comps);
        let mut out = Vec::new();
        for (name, child) in self.children(&rel, &node.dirs)? {
            let mut child_comps = comps.clone();
            child_comps.push(name.clone());
            out.push((
                name.to_string_lossy().into_owned(),
                self.found(&child_comps, child),
            ));
        }
        Ok(out)
    }

    /// Reads a small regular file (such as `/etc/passwd`), following
    /// symlinks. `None` if it does not exist; an error if it is not a regular
    /// file or holds more than `max_bytes`.
    pub fn read_file(&self, path: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, RootfsError> {
        let Some((comps, node)) = self.resolve(path, true)? else {
            return Ok(None);
        };
        if !node.metadata.is_file() {
            return Err(RootfsError::NotAFile {
                path: path.to_owned(),
            });
        }
        let too_large = |size| RootfsError::TooLarge {
            path: path.to_owned(),
            size,
            limit: max_bytes,
        };
        if node.metadata.len() > max_bytes {
            return Err(too_large(node.metadata.len()));
        }
        let host = self.host_path(node.top, &comps);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&host)
            .at("open", &host)?;
        let mut buf = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .at("read", &host)?;
        if buf.len() as u64 > max_bytes {
            return Err(too_large(buf.len() as u64));
        }
        Ok(Some(buf))
    }

    /// Copies the merged tree into `dest`, an existing empty directory:
    /// types, modes, owners (when running as root), times, symlink targets
    /// and xattrs (never `trusted.overlay.*`) are kept; files hardlinked
    /// within one layer stay hardlinked. `dest`'s own metadata is left alone.
    pub fn flatten_into(&self, dest: &Path) -> Result<(), RootfsError> {
        let mut entries = fs::read_dir(dest).at("list", dest)?;
        if entries.next().is_some() {
            return Err(RootfsError::DestNotEmpty {
                path: dest.to_path_buf(),
            });
        }
        let Some(root) = self.root()? else {
            return Ok(());
        };
        let mut copier = Copier {
            as_root: rustix::process::geteuid().is_root(),
            links: HashMap::new(),
        };
        // Depth-first with an explicit stack, so a hostile, very deep tree
        // cannot overflow the thread's stack. A directory's mode and times
        // are set when it is left: after its children are written.
        enum Step {
            Enter(PathBuf, Vec<usize>),
            Leave(PathBuf, Metadata),
        }
        let mut steps = vec![Step::Enter(PathBuf::new(), root.dirs)];
        while let Some(step) = steps.pop() {
            let (rel, dirs) = match step {
                Step::Leave(dst, metadata) => {
                    copier.finish(&dst, &metadata)?;
                    continue;
                }
                Step::Enter(rel, dirs) => (rel, dirs),
            };
            for (name, child) in self.children(&rel, &dirs)? {
                let child_rel = rel.join(&name);
                let src = self.layers[child.top].join(&child_rel);
                let dst = dest.join(&child_rel);
                if child.metadata.is_dir() {
                    DirBuilder::new()
                        .mode(0o700)
                        .create(&dst)
                        .at("create directory", &dst)?;
                    copier.owner_and_xattrs(&src, &dst, &child.metadata)?;
                    steps.push(Step::Leave(dst, child.metadata));
                    steps.push(Step::Enter(child_rel, child.dirs));
                } else {
                    copier.copy(&src, &dst, &child.metadata)?;
                }
            }
        }
        Ok(())
    }

    fn found(&self, comps: &[OsString], node: Node) -> Found {
        let mut path = String::from("/");
        for (i, c) in comps.iter().enumerate() {
            if i > 0 {
                path.push('/');
            }
            path.push_str(&c.to_string_lossy());
        }
        Found {
            path,
            host_path: self.host_path(node.top, comps),
            metadata: node.metadata,
        }
    }

    fn host_path(&self, layer: usize, comps: &[OsString]) -> PathBuf {
        let mut p = self.layers[layer].clone();
        p.extend(comps);
        p
    }

    /// The image root: every layer's root directory down to the first
    /// opaque one. `None` with no layers.
    fn root(&self) -> Result<Option<Node>, RootfsError> {
        let mut dirs = Vec::new();
        let mut top = None;
        for l in (0..self.layers.len()).rev() {
            let path = &self.layers[l];
            let metadata = fs::metadata(path).at("look at layer", path)?;
            if !metadata.is_dir() {
                return Err(RootfsError::Io {
                    action: "use layer",
                    path: path.clone(),
                    source: io::Error::other("not a directory"),
                });
            }
            top.get_or_insert((l, metadata));
            dirs.push(l);
            if is_opaque(path)? {
                break;
            }
        }
        Ok(top.map(|(top, metadata)| Node {
            top,
            metadata,
            dirs,
        }))
    }

    /// The merged entry `name` in the directory `parent_rel` whose layers
    /// are `parent_dirs` (top first); `None` if absent or whited out.
    fn child(
        &self,
        parent_rel: &Path,
        parent_dirs: &[usize],
        name: &OsStr,
    ) -> Result<Option<Node>, RootfsError> {
        let mut found: Option<Node> = None;
        for &l in parent_dirs {
            let host = self.layers[l].join(parent_rel).join(name);
            let metadata = match fs::symlink_metadata(&host) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at("look at", &host),
            };
            if is_whiteout(&metadata) {
                break;
            }
            let is_dir = metadata.is_dir();
            match found.as_mut() {
                None => {
                    let dirs = if is_dir { vec![l] } else { Vec::new() };
                    found = Some(Node {
                        top: l,
                        metadata,
                        dirs,
                    });
                    if !is_dir {
                        break;
                    }
                }
                // Only directories merge: a lower non-directory ends it.
                Some(_) if !is_dir => break,
                Some(node) => node.dirs.push(l),
            }
            if is_opaque(&host)? {
                break;
            }
        }
        Ok(found)
    }

    /// The merged children of a directory, sorted by name bytes.
    fn children(&self, rel: &Path, dirs: &[usize]) -> Result<Vec<(OsString, Node)>, RootfsError> {
        let mut names = BTreeSet::new();
        for &l in dirs {
            let host = self.layers[l].join(rel);
            for entry in fs::read_dir(&host).at("list", &host)? {
                names.insert(entry.at("list", &host)?.file_name().into_vec());
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let name = OsString::from_vec(name);
            if let Some(node) = self.child(rel, dirs, &name)? {
                out.push((name, node));
            }
        }
        Ok(out)
    }

    /// Resolves an in-image path chroot-style; see [`lookup`](Self::lookup).
    fn resolve(
        &self,
        path: &str,
        follow_final: bool,
    ) -> Result<Option<(Vec<OsString>, Node)>, RootfsError> {
        let Some(root) = self.root()? else {
            return Ok(None);
        };
        // A trailing slash asks for a directory, so the final link is followed.
        let follow_final = follow_final || path.ends_with('/');
        let mut pending: VecDeque<OsString> = components(path.as_bytes()).collect();
        let mut comps: Vec<OsString> = Vec::new();
        // stack[i] is the directory at comps[..i]; stack[0] is the root.
        let mut stack = vec![root];
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                if !comps.is_empty() {
                    comps.pop();
                    stack.pop();
                }
                continue;
            }
            let rel = rel_path(&comps);
            let Some(parent) = stack.last() else {
                break;
            };
            let Some(node) = self.child(&rel, &parent.dirs, &c)? else {
                return Ok(None);
            };
            let file_type = node.metadata.file_type();
            if file_type.is_symlink() && (follow_final || !pending.is_empty()) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(RootfsError::SymlinkLoop {
                        path: path.to_owned(),
                    });
                }
                let host = self.layers[node.top].join(&rel).join(&c);
                let target = fs::read_link(&host).at("read symlink", &host)?;
                let target = target.as_os_str().as_bytes();
                if target.starts_with(b"/") {
                    comps.clear();
                    stack.truncate(1);
                }
                for part in components(target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(part);
                }
                continue;
            }
            comps.push(c);
            if file_type.is_dir() {
                stack.push(node);
            } else if pending.is_empty() {
                return Ok(Some((comps, node)));
            } else {
                // A non-directory used as one.
                return Ok(None);
            }
        }
        Ok(stack.pop().map(|node| (comps, node)))
    }
}

/// Copies single entries for [`LayeredFs::flatten_into`].
struct Copier {
    /// Owners are only set when running as root; others cannot give files away.
    as_root: bool,
    /// (device, inode) of multiply-linked files already copied -> their copy.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier {
    /// Copies a non-directory entry with its metadata.
    fn copy(&mut self, src: &Path, dst: &Path, metadata: &Metadata) -> Result<(), RootfsError> {
        let file_type = metadata.file_type();
        if file_type.is_file() {
            let key = (metadata.dev(), metadata.ino());
            if metadata.nlink() > 1
                && let Some(first) = self.links.get(&key)
            {
                return fs::hard_link(first, dst).at("create hardlink", dst);
            }
            let mut from = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(src)
                .at("open", src)?;
            let mut to = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dst)
                .at("create", dst)?;
            // Uses copy_file_range where the kernel can: bounded memory, and
            // reflinks on filesystems that support them.
            io::copy(&mut from, &mut to).at("copy into", dst)?;
            drop(to);
            if metadata.nlink() > 1 {
                self.links.insert(key, dst.to_path_buf());
            }
        } else if file_type.is_symlink() {
            let target = fs::read_link(src).at("read symlink", src)?;
            std::os::unix::fs::symlink(&target, dst).at("create symlink", dst)?;
        } else {
            // FIFOs, devices and sockets: whiteouts never get here.
            rustix::fs::mknodat(
                rustix::fs::CWD,
                dst,
                FileType::from_raw_mode(metadata.mode()),
                Mode::from_raw_mode(0o600),
                metadata.rdev(),
            )
            .at("create special file", dst)?;
        }
        self.owner_and_xattrs(src, dst, metadata)?;
        self.finish(dst, metadata)
    }

    /// Owner first (chown clears setuid bits and file capabilities), then xattrs.
    fn owner_and_xattrs(
        &self,
        src: &Path,
        dst: &Path,
        metadata: &Metadata,
    ) -> Result<(), RootfsError> {
        if self.as_root {
            rustix::fs::chownat(
                rustix::fs::CWD,
                dst,
                Some(Uid::from_raw(metadata.uid())),
                Some(Gid::from_raw(metadata.gid())),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .at("set the owner of", dst)?;
        }
        copy_xattrs(src, dst, self.as_root)
    }

    /// Mode (not for symlinks) and times, last.
    fn finish(&self, dst: &Path, metadata: &Metadata) -> Result<(), RootfsError> {
        if !metadata.file_type().is_symlink() {
            fs::set_permissions(
                dst,
                std::os::unix::fs::PermissionsExt::from_mode(metadata.mode() & 0o7777),
            )
            .at("set the mode of", dst)?;
        }
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: metadata.atime(),
                tv_nsec: metadata.atime_nsec(),
            },
            last_modification: Timespec {
                tv_sec: metadata.mtime(),
                tv_nsec: metadata.mtime_nsec(),
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW)
            .at("set the times of", dst)
    }
}

/// Copies xattrs (never `trusted.overlay.*`, which belong to the layers'
/// overlay bookkeeping). A destination that cannot hold a kind of xattr
/// (no support, or `security.*`/`trusted.*` refused to a non-root user)
/// does not fail the copy.
fn copy_xattrs(src: &Path, dst: &Path, as_root: bool) -> Result<(), RootfsError> {
    let names = match xattr::list(src) {
        Ok(names) => names,
        Err(e) if unsupported(&e) => return Ok(()),
        Err(e) => return Err(e).at("list extended attributes of", src),
    };
    for name in names {
        let bytes = name.as_bytes();
        if bytes.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        let Some(value) = xattr::get(src, &name).at("read extended attributes of", src)? else {
            continue; // removed meanwhile
        };
        match xattr::set(dst, &name, &value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => {}
            Err(e)
                if bytes.starts_with(b"security.")
                    || (!as_root && bytes.starts_with(b"trusted.")) =>
            {
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM | libc::EACCES | libc::EINVAL)
                ) {
                    return Err(e).at("set extended attributes of", dst);
                }
            }
            Err(e) => return Err(e).at("set extended attributes of", dst),
        }
    }
    Ok(())
}

fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP)
}

fn is_whiteout(metadata: &Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_char_device() && metadata.rdev() == 0
}

fn is_opaque(path: &Path) -> Result<bool, RootfsError> {
    match xattr::get(path, OPAQUE_XATTR) {
        Ok(v) => Ok(v.as_deref() == Some(b"y")),
        Err(e) if unsupported(&e) => Ok(false),
        Err(e) => Err(e).at("read extended attributes of", path),
    }
}

/// The names of a path, without empty and `.` components.
fn components(path: &[u8]) -> impl Iterator<Item = OsString> + '_ {
    path.split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .map(|p| OsString::from_vec(p.to_vec()))
}

fn is_root_path(path: &str) -> bool {
    components(path.as_bytes()).next().is_none()
}

fn rel_path(comps: &[OsString]) -> PathBuf {
    comps.iter().collect()
}
