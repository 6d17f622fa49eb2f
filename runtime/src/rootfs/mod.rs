//! A read-only merged view of a chain of layers (snapshot directories, and
//! in-memory layers a build wrote but has not unpacked): what an overlayfs
//! mount of them would show, computed without mounting.
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

mod entry;
mod error;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid};

use crate::layer::tree::LayerTree;
pub use entry::{EntryKind, EntryMeta, EntrySource, Found};
use error::IoContext;
pub use error::RootfsError;

/// Symlinks followed while resolving one path before it counts as a loop.
const MAX_SYMLINKS: u32 = 255;
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// One layer of a view.
#[derive(Debug, Clone)]
pub enum FsLayer {
    /// A snapshot directory (overlay whiteouts and opaque markers).
    Dir(PathBuf),
    /// A layer this build wrote and has not unpacked: its entries in memory.
    Tree(Arc<LayerTree>),
}

/// A chain of layers seen as one tree. Holds no open files.
#[derive(Debug, Clone)]
pub struct LayeredFs {
    /// Bottom first.
    layers: Vec<FsLayer>,
}

/// A merged path: the layer that decides it, that layer's metadata, and for
/// directories the layers (top first) whose directories merge into it.
#[derive(Debug, Clone)]
struct Node {
    top: usize,
    metadata: EntryMeta,
    dirs: Vec<usize>,
}

impl LayeredFs {
    /// A view of snapshot directories, bottom first (the order of an
    /// image's `rootfs.diff_ids`).
    pub fn new(layers: Vec<PathBuf>) -> LayeredFs {
        LayeredFs {
            layers: layers.into_iter().map(FsLayer::Dir).collect(),
        }
    }

    /// A view of snapshot directories and in-memory layers, bottom first.
    pub fn from_layers(layers: Vec<FsLayer>) -> LayeredFs {
        LayeredFs { layers }
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[FsLayer] {
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
        let found = self.found(&comps, node);
        let file = found.open()?;
        let mut buf = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .at("read", Path::new(&found.path))?;
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
            Enter(Vec<OsString>, Vec<usize>),
            Leave(PathBuf, EntryMeta),
        }
        let mut steps = vec![Step::Enter(Vec::new(), root.dirs)];
        while let Some(step) = steps.pop() {
            let (comps, dirs) = match step {
                Step::Leave(dst, metadata) => {
                    copier.finish(&dst, &metadata)?;
                    continue;
                }
                Step::Enter(comps, dirs) => (comps, dirs),
            };
            let rel = rel_path(&comps);
            for (name, child) in self.children(&rel, &dirs)? {
                let mut child_comps = comps.clone();
                child_comps.push(name);
                let dst = dest.join(rel_path(&child_comps));
                let child_dirs = child.dirs.clone();
                let found = self.found(&child_comps, child);
                if found.metadata.is_dir() {
                    DirBuilder::new()
                        .mode(0o700)
                        .create(&dst)
                        .at("create directory", &dst)?;
                    copier.owner_and_xattrs(&found, &dst)?;
                    steps.push(Step::Leave(dst, found.metadata));
                    steps.push(Step::Enter(child_comps, child_dirs));
                } else {
                    copier.copy(&found, &dst)?;
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
        let source = match &self.layers[node.top] {
            FsLayer::Dir(dir) => {
                let mut p = dir.clone();
                p.extend(comps);
                EntrySource::Host(p)
            }
            FsLayer::Tree(tree) => match tree_path(&rel_path(comps)).and_then(|r| tree.get(r)) {
                Some(e) => EntrySource::Tree(e.clone()),
                // The root of an in-memory layer has no entry of its own.
                None => EntrySource::Tree(crate::layer::tree::TreeEntry::root_dir()),
            },
        };
        Found {
            path,
            metadata: node.metadata,
            source,
        }
    }

    /// The entry at `rel` in one layer, as that layer alone has it.
    fn stat(&self, layer: usize, rel: &Path) -> Result<Option<EntryMeta>, RootfsError> {
        match &self.layers[layer] {
            FsLayer::Dir(dir) => {
                let host = dir.join(rel);
                match fs::symlink_metadata(&host) {
                    Ok(m) => Ok(Some(EntryMeta::from_metadata(&m))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e).at("look at", &host),
                }
            }
            FsLayer::Tree(tree) => Ok(tree_path(rel)
                .and_then(|r| tree.get(r))
                .map(EntryMeta::from_tree)),
        }
    }

    /// Whether the directory at `rel` in one layer hides the lower layers'.
    fn opaque(&self, layer: usize, rel: &Path) -> Result<bool, RootfsError> {
        match &self.layers[layer] {
            FsLayer::Dir(dir) => is_opaque(&dir.join(rel)),
            FsLayer::Tree(_) => Ok(false),
        }
    }

    /// The names in the directory at `rel` of one layer.
    fn names(
        &self,
        layer: usize,
        rel: &Path,
        out: &mut BTreeSet<Vec<u8>>,
    ) -> Result<(), RootfsError> {
        match &self.layers[layer] {
            FsLayer::Dir(dir) => {
                let host = dir.join(rel);
                for entry in fs::read_dir(&host).at("list", &host)? {
                    out.insert(entry.at("list", &host)?.file_name().into_vec());
                }
            }
            FsLayer::Tree(tree) => {
                if let Some(r) = tree_path(rel) {
                    out.extend(tree.children(r).map(|(n, _)| n.as_bytes().to_vec()));
                }
            }
        }
        Ok(())
    }

    /// The image root: every layer's root directory down to the first
    /// opaque one. `None` with no layers.
    fn root(&self) -> Result<Option<Node>, RootfsError> {
        let mut dirs = Vec::new();
        let mut top = None;
        for l in (0..self.layers.len()).rev() {
            let metadata = match &self.layers[l] {
                FsLayer::Dir(path) => {
                    let metadata = fs::metadata(path).at("look at layer", path)?;
                    if !metadata.is_dir() {
                        return Err(RootfsError::Io {
                            action: "use layer",
                            path: path.clone(),
                            source: io::Error::other("not a directory"),
                        });
                    }
                    EntryMeta::from_metadata(&metadata)
                }
                FsLayer::Tree(_) => EntryMeta::root_dir(),
            };
            top.get_or_insert((l, metadata));
            dirs.push(l);
            if self.opaque(l, Path::new(""))? {
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
        let rel = parent_rel.join(name);
        let mut found: Option<Node> = None;
        for &l in parent_dirs {
            let Some(metadata) = self.stat(l, &rel)? else {
                continue;
            };
            if metadata.is_whiteout() {
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
            if self.opaque(l, &rel)? {
                break;
            }
        }
        Ok(found)
    }

    /// The merged children of a directory, sorted by name bytes.
    fn children(&self, rel: &Path, dirs: &[usize]) -> Result<Vec<(OsString, Node)>, RootfsError> {
        let mut names = BTreeSet::new();
        for &l in dirs {
            self.names(l, rel, &mut names)?;
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
            if node.metadata.is_symlink() && (follow_final || !pending.is_empty()) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(RootfsError::SymlinkLoop {
                        path: path.to_owned(),
                    });
                }
                let mut link_comps = comps.clone();
                link_comps.push(c);
                let target = self.found(&link_comps, node).read_link()?;
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
            if node.metadata.is_dir() {
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

/// A relative path as an in-memory layer names it; `None` if it is not
/// UTF-8 (such a name cannot be in an in-memory layer).
fn tree_path(rel: &Path) -> Option<&str> {
    rel.to_str()
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
    fn copy(&mut self, src: &Found, dst: &Path) -> Result<(), RootfsError> {
        let metadata = &src.metadata;
        match metadata.kind {
            EntryKind::File => {
                if let Some(key) = metadata.link_key
                    && let Some(first) = self.links.get(&key)
                {
                    return fs::hard_link(first, dst).at("create hardlink", dst);
                }
                let mut from = src.open()?;
                let mut to = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(dst)
                    .at("create", dst)?;
                // Uses copy_file_range where the kernel can: bounded memory,
                // and reflinks on filesystems that support them.
                io::copy(&mut from, &mut to).at("copy into", dst)?;
                drop(to);
                if let Some(key) = metadata.link_key {
                    self.links.insert(key, dst.to_path_buf());
                }
            }
            EntryKind::Symlink => {
                let target = src.read_link()?;
                std::os::unix::fs::symlink(&target, dst).at("create symlink", dst)?;
            }
            // FIFOs, devices and sockets: whiteouts never get here.
            _ => {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    dst,
                    FileType::from_raw_mode(metadata.type_bits()),
                    Mode::from_raw_mode(0o600),
                    metadata.rdev,
                )
                .at("create special file", dst)?;
            }
        }
        self.owner_and_xattrs(src, dst)?;
        self.finish(dst, metadata)
    }

    /// Owner first (chown clears setuid bits and file capabilities), then xattrs.
    fn owner_and_xattrs(&self, src: &Found, dst: &Path) -> Result<(), RootfsError> {
        if self.as_root {
            rustix::fs::chownat(
                rustix::fs::CWD,
                dst,
                Some(Uid::from_raw(src.metadata.uid)),
                Some(Gid::from_raw(src.metadata.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .at("set the owner of", dst)?;
        }
        set_xattrs(&src.xattrs()?, dst, self.as_root)
    }

    /// Mode (not for symlinks) and times, last.
    fn finish(&self, dst: &Path, metadata: &EntryMeta) -> Result<(), RootfsError> {
        if !metadata.is_symlink() {
            fs::set_permissions(
                dst,
                std::os::unix::fs::PermissionsExt::from_mode(metadata.permissions),
            )
            .at("set the mode of", dst)?;
        }
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: metadata.atime,
                tv_nsec: metadata.atime_nsec,
            },
            last_modification: Timespec {
                tv_sec: metadata.mtime,
                tv_nsec: metadata.mtime_nsec,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW)
            .at("set the times of", dst)
    }
}

/// Sets xattrs on a copy. A destination that cannot hold a kind of xattr
/// (no support, or `security.*`/`trusted.*` refused to a non-root user)
/// does not fail the copy.
fn set_xattrs(xattrs: &[(Vec<u8>, Vec<u8>)], dst: &Path, as_root: bool) -> Result<(), RootfsError> {
    for (name, value) in xattrs {
        match xattr::set(dst, OsStr::from_bytes(name), value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => {}
            Err(e)
                if name.starts_with(b"security.")
                    || (!as_root && name.starts_with(b"trusted.")) =>
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
