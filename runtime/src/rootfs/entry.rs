//! What a merged view says about one path: its metadata, whether it lives in
//! a snapshot directory or in an in-memory layer, and how to read it.

use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::RootfsError;
use super::error::IoContext;
use crate::layer::tree::{FileData, TreeEntry, TreeKind, Xattrs};

/// Extended attributes every view leaves out: overlayfs' own bookkeeping.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// What kind of entry a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

/// An entry's metadata, whichever kind of layer it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub permissions: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub atime: i64,
    pub atime_nsec: i64,
    pub rdev: u64,
    /// (device, inode) when the entry has several links, so that copies
    /// can keep hard links together.
    pub link_key: Option<(u64, u64)>,
}

impl EntryMeta {
    pub fn from_metadata(m: &Metadata) -> EntryMeta {
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_char_device() {
            EntryKind::CharDevice
        } else if ft.is_block_device() {
            EntryKind::BlockDevice
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            EntryKind::Socket
        };
        EntryMeta {
            kind,
            permissions: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            atime: m.atime(),
            atime_nsec: m.atime_nsec(),
            rdev: m.rdev(),
            link_key: (m.nlink() > 1 && !ft.is_dir()).then(|| (m.dev(), m.ino())),
        }
    }

    pub fn from_tree(e: &TreeEntry) -> EntryMeta {
        let (kind, size, rdev) = match &e.kind {
            TreeKind::Dir => (EntryKind::Dir, 0, 0),
            TreeKind::File(FileData::Bytes(b)) => (EntryKind::File, b.len() as u64, 0),
            // The size of a file on the host is known when it is read.
            TreeKind::File(FileData::Path(p)) => {
                (EntryKind::File, fs::metadata(p).map_or(0, |m| m.len()), 0)
            }
            TreeKind::Symlink(t) => (EntryKind::Symlink, t.as_os_str().len() as u64, 0),
            TreeKind::CharDevice { rdev } => (EntryKind::CharDevice, 0, *rdev),
            TreeKind::BlockDevice { rdev } => (EntryKind::BlockDevice, 0, *rdev),
            TreeKind::Fifo => (EntryKind::Fifo, 0, 0),
        };
        EntryMeta {
            kind,
            permissions: e.mode & 0o7777,
            uid: e.uid,
            gid: e.gid,
            size,
            mtime: e.mtime,
            mtime_nsec: 0,
            atime: e.mtime,
            atime_nsec: 0,
            rdev,
            link_key: e.link_key,
        }
    }

    /// A directory owned by root, mode 0755: the root of an in-memory layer.
    pub(crate) fn root_dir() -> EntryMeta {
        EntryMeta {
            kind: EntryKind::Dir,
            permissions: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            atime: 0,
            atime_nsec: 0,
            rdev: 0,
            link_key: None,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }

    pub fn is_symlink(&self) -> bool {
        self.kind == EntryKind::Symlink
    }

    /// Permission bits (`0o7777`), as `Metadata::mode() & 0o7777` gives.
    pub fn mode(&self) -> u32 {
        self.permissions
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn gid(&self) -> u32 {
        self.gid
    }

    pub fn mtime(&self) -> i64 {
        self.mtime
    }

    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// A 0/0 character device: an overlay whiteout.
    pub(crate) fn is_whiteout(&self) -> bool {
        self.kind == EntryKind::CharDevice && self.rdev == 0
    }

    /// The `S_IF*` bits of the kind, for `mknod`.
    pub(crate) fn type_bits(&self) -> u32 {
        match self.kind {
            EntryKind::Dir => libc::S_IFDIR,
            EntryKind::File => libc::S_IFREG,
            EntryKind::Symlink => libc::S_IFLNK,
            EntryKind::CharDevice => libc::S_IFCHR,
            EntryKind::BlockDevice => libc::S_IFBLK,
            EntryKind::Fifo => libc::S_IFIFO,
            EntryKind::Socket => libc::S_IFSOCK,
        }
    }
}

/// Where a found entry lives.
#[derive(Debug, Clone)]
pub enum EntrySource {
    /// In a snapshot directory on the host.
    Host(PathBuf),
    /// In an in-memory layer.
    Tree(TreeEntry),
}

/// A path found in the merged tree.
#[derive(Debug, Clone)]
pub struct Found {
    /// The absolute in-image path after resolving symlinks (lossy UTF-8 if a
    /// name is not UTF-8).
    pub path: String,
    /// The entry's own metadata (not followed if it is a symlink).
    pub metadata: EntryMeta,
    pub source: EntrySource,
}

impl Found {
    /// Where the entry lives on the host, for an entry in a snapshot.
    pub fn host_path(&self) -> Option<&Path> {
        match &self.source {
            EntrySource::Host(p) => Some(p),
            EntrySource::Tree(_) => None,
        }
    }

    /// Where a regular file's content can be read; `None` for other kinds.
    pub fn file_data(&self) -> Option<FileData> {
        if !self.metadata.is_file() {
            return None;
        }
        match &self.source {
            EntrySource::Host(p) => Some(FileData::Path(p.clone())),
            EntrySource::Tree(e) => match &e.kind {
                TreeKind::File(d) => Some(d.clone()),
                _ => None,
            },
        }
    }

    /// Opens a regular file's content.
    pub(crate) fn open(&self) -> Result<Box<dyn Read + Send>, RootfsError> {
        let at = match &self.source {
            EntrySource::Host(p) => p.clone(),
            EntrySource::Tree(_) => PathBuf::from(&self.path),
        };
        match self.file_data() {
            Some(FileData::Path(p)) => Ok(Box::new(
                OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&p)
                    .at("open", &p)?,
            )),
            Some(data) => data.open().at("open", &at),
            None => Err(RootfsError::NotAFile {
                path: self.path.clone(),
            }),
        }
    }

    /// A symlink's target.
    pub fn read_link(&self) -> Result<PathBuf, RootfsError> {
        match &self.source {
            EntrySource::Host(p) => fs::read_link(p).at("read symlink", p),
            EntrySource::Tree(e) => match &e.kind {
                TreeKind::Symlink(t) => Ok(t.clone()),
                _ => Err(RootfsError::Io {
                    action: "read symlink",
                    path: PathBuf::from(&self.path),
                    source: io::Error::from_raw_os_error(libc::EINVAL),
                }),
            },
        }
    }

    /// The entry's extended attributes, sorted by name, without overlayfs'
    /// own (`trusted.overlay.*`).
    pub fn xattrs(&self) -> Result<Xattrs, RootfsError> {
        match &self.source {
            EntrySource::Host(p) => host_xattrs(p),
            EntrySource::Tree(e) => Ok(e
                .xattrs
                .iter()
                .filter(|(n, _)| !n.starts_with(OVERLAY_XATTR_PREFIX))
                .cloned()
                .collect()),
        }
    }
}

/// Reads the extended attributes of a host path (not following a symlink),
/// sorted, without `trusted.overlay.*`; none where the filesystem has none.
pub(crate) fn host_xattrs(path: &Path) -> Result<Xattrs, RootfsError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e).at("list extended attributes of", path),
    };
    let mut out = Vec::new();
    for name in names {
        if name.as_bytes().starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        // `None`: removed since the listing.
        if let Some(value) = xattr::get(path, &name).at("read extended attributes of", path)? {
            out.push((name.as_bytes().to_vec(), value));
        }
    }
    out.sort_unstable();
    Ok(out)
}
