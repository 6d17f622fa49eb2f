//! Unpacking a tar stream into a directory, without ever writing outside it.
//!
//! Owns the extraction of layer tarballs into snapshots (OCI whiteouts turned
//! into overlayfs ones, [`Whiteouts::Overlay`]) and of `ADD archive.tar /dir`
//! (entries written as they are, [`Whiteouts::Keep`]).
//!
//! Confinement, since archives are untrusted:
//! - entry names lose leading `/` and `./`; any `..` component is refused;
//! - the directory part of each name is resolved the way a chroot at the
//!   destination would: symlinks that earlier entries created are followed,
//!   but absolute targets start at the destination and `..` stops there, so
//!   `link -> /etc` then `link/passwd` writes `<dest>/etc/passwd`;
//! - the resolved directory is opened with `openat2(RESOLVE_IN_ROOT |
//!   RESOLVE_NO_SYMLINKS)`, so even a resolution bug or a concurrent change
//!   cannot lead outside, and the entry itself is created with `*at` calls
//!   that never follow a symlink in its last component;
//! - hardlink targets are resolved the same way, so they are inside too.
//!
//! Later entries replace earlier ones at the same path; a directory over a
//! directory merges. Memory does not grow with file size: content streams
//! through one fixed buffer. Directory mtimes are set last, once nothing
//! more is written into them.
//!
//! On error the destination keeps what was extracted so far: callers that
//! need all-or-nothing extract into a temporary directory (as snapshots do).
//!
//! [`unpack_reusing`] also takes a *reference* directory (an earlier
//! snapshot): a regular file that is at the same path there with the same
//! size, mode, owner, mtime, xattrs and bytes is hard-linked from it instead
//! of being created, so a layer that differs from the reference in one file
//! creates one inode, not thousands (creating an inode is the dominant cost
//! of unpacking small files; a link is a directory entry). Sharing is
//! invisible to readers as long as an inode is never reachable at two paths
//! of one merged view, so: each reference inode is linked at most once,
//! only at its own path, and a hardlink entry to such a file is refused
//! (callers only pass a reference when neither layer holds hardlinks).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
};
use rustix::io::Errno;

/// What to do with OCI whiteout entries (`.wh.<name>`, `.wh..wh..opq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Convert them to what overlayfs reads: `.wh.<name>` becomes a 0/0
    /// character device `<name>`, `<dir>/.wh..wh..opq` becomes the
    /// `trusted.overlay.opaque=y` xattr on `<dir>`. For layer snapshots.
    Overlay,
    /// Write them as the ordinary files they are. For `ADD` archives.
    Keep,
}

/// How [`unpack`] treats what an archive asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    pub whiteouts: Whiteouts,
    /// Set owners from the archive (needs root); otherwise everything is
    /// owned by the calling process.
    pub same_owner: bool,
    /// Create character and block devices. Without it a device entry is an
    /// error (except the 0/0 character device that is an overlay whiteout in
    /// [`Whiteouts::Overlay`] mode).
    pub allow_devices: bool,
}

impl UnpackOptions {
    /// The options for unpacking an image layer into a snapshot: overlay
    /// whiteouts, owners and devices as the layer says.
    pub fn layer() -> UnpackOptions {
        UnpackOptions {
            whiteouts: Whiteouts::Overlay,
            same_owner: true,
            allow_devices: true,
        }
    }
}

impl Default for UnpackOptions {
    /// The cautious choice: whiteouts kept as files, no owners, no devices.
    fn default() -> UnpackOptions {
        UnpackOptions {
            whiteouts: Whiteouts::Keep,
            same_owner: false,
            allow_devices: false,
        }
    }
}

/// What [`unpack`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Archive entries processed (files, directories, links, whiteouts, …;
    /// not the PAX and long-name headers that describe them).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Regular files hard-linked from the reference directory of
    /// [`unpack_reusing`] instead of being written (their bytes count in
    /// `bytes` too).
    pub reused: u64,
}

/// Why an archive could not be unpacked. `entry` is the path as the archive
/// names it.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The destination directory cannot be opened.
    #[error("cannot open the destination directory {}: {source}", dest.display())]
    Destination {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The tar stream itself is unreadable.
    #[error(
        "cannot read the archive{}: {source} (the archive is truncated or corrupt, or is not a tar archive)",
        entry.as_ref().map(|e| format!(" at entry {e:?}")).unwrap_or_default()
    )]
    Archive {
        entry: Option<String>,
        #[source]
        source: io::Error,
    },

    /// The entry would write (or link) outside the destination.
    #[error("archive entry {entry:?} is unsafe: {reason}; nothing was written for it")]
    Unsafe { entry: String, reason: &'static str },

    /// A device node where devices are not allowed.
    #[error(
        "archive entry {entry:?} is a {kind} device, and device nodes are not extracted here: remove it from the archive"
    )]
    DeviceNotAllowed { entry: String, kind: &'static str },

    /// An entry type berth does not extract.
    #[error(
        "archive entry {entry:?} has tar type {type_flag:?}, which berth does not extract: recreate the archive with GNU tar or bsdtar"
    )]
    UnsupportedType { entry: String, type_flag: char },

    /// An entry whose header does not make sense.
    #[error("archive entry {entry:?} is invalid: {reason}")]
    InvalidEntry { entry: String, reason: String },

    /// A filesystem call failed while writing an entry.
    #[error("cannot {action} for archive entry {entry:?} under {}: {source}", dest.display())]
    Io {
        entry: String,
        action: &'static str,
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Unpacks the tar stream `reader` into the existing directory `dest`.
///
/// See the module documentation for what is guaranteed. The stream is read
/// up to the tar end-of-archive marker; whatever follows it is left unread
/// (callers that hash the whole stream drain the rest themselves).
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    options: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    unpack_with(reader, dest, options, None)
}

/// [`unpack`], hard-linking regular files that are identical at the same
/// path in `reference` instead of writing them (see the module docs).
///
/// Only for trees nobody modifies in place (snapshots), since a linked file
/// is one inode in both; only when `options.same_owner` (otherwise nothing
/// is reused). A hardlink entry to a linked file is an error: a layer with
/// hardlinks must be unpacked without a reference. An unusable `reference`
/// (missing, not a directory) just means nothing is reused.
pub fn unpack_reusing(
    reader: impl Read,
    dest: &Path,
    options: &UnpackOptions,
    reference: &Path,
) -> Result<UnpackStats, UnpackError> {
    let reference = rfs::open(
        reference,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
    .filter(|_| options.same_owner)
    .map(|root| Reference {
        root,
        linked: HashSet::new(),
        buf: vec![0; COPY_BUFFER],
    });
    unpack_with(reader, dest, options, reference)
}

fn unpack_with(
    reader: impl Read,
    dest: &Path,
    options: &UnpackOptions,
    reference: Option<Reference>,
) -> Result<UnpackStats, UnpackError> {
    let root = rfs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Destination {
        dest: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        root,
        dest,
        options,
        dir_times: HashMap::new(),
        cache: None,
        buf: vec![0; COPY_BUFFER],
        stats: UnpackStats::default(),
        reference,
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|source| UnpackError::Archive {
        entry: None,
        source,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| UnpackError::Archive {
            entry: None,
            source,
        })?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.set_dir_times()?;
    Ok(unpacker.stats)
}

/// Content is copied through a buffer of this size.
const COPY_BUFFER: usize = 128 * 1024;
/// Symlinks followed while resolving one path before it counts as a loop
/// (the kernel's limit is 40; images with long chains exist, 255 is generous).
const MAX_SYMLINKS: u32 = 255;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Names AUFS used for its own bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`).
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
/// The xattr overlayfs reads to hide a lower directory's contents.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs overlayfs interprets; never taken from an archive, since they can
/// redirect lookups to other layers' files.
pub(crate) const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    Char,
    Block,
}

/// Ownership, permissions, times and xattrs from one header.
struct Meta {
    mode: u32,
    owner: Option<(Uid, Gid)>,
    mtime: (i64, i64),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn timestamps(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: self.mtime.0,
            tv_nsec: self.mtime.1,
        };
        // atime = mtime: archives rarely carry an atime, and a fixed value
        // keeps unpacked trees reproducible.
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }
}

/// The last entry's parent directory, reused while consecutive entries share
/// it (the common case: archives list a directory's files together).
struct CachedParent {
    raw: Vec<u8>,
    canonical: Vec<u8>,
    fd: Rc<OwnedFd>,
}

struct Unpacker<'a> {
    /// `O_PATH` descriptor of the destination: every path is resolved from it.
    root: OwnedFd,
    dest: &'a Path,
    options: &'a UnpackOptions,
    /// Canonical relative path of each directory entry -> its (sec, nsec) mtime.
    dir_times: HashMap<Vec<u8>, (i64, i64)>,
    cache: Option<CachedParent>,
    buf: Vec<u8>,
    stats: UnpackStats,
    /// Where identical files may be linked from ([`unpack_reusing`]).
    reference: Option<Reference>,
}

/// The reference directory of [`unpack_reusing`].
struct Reference {
    /// `O_PATH` descriptor of its root.
    root: OwnedFd,
    /// (device, inode) of the files linked from it so far: none is linked twice.
    linked: HashSet<(u64, u64)>,
    /// Holds the reference's bytes while they are compared with the entry's.
    buf: Vec<u8>,
}

/// How far a reference file matched an entry's content.
enum Compared {
    /// All of it: the file can be linked.
    Same,
    /// The first `matched` bytes; the entry's next `pending` bytes, which
    /// differ, are in the unpacker's buffer.
    Differs { matched: u64, pending: usize },
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let type_byte = entry.header().as_bytes()[156];
        let kind = match entry.header().entry_type() {
            // Global PAX headers carry defaults for no entry berth uses.
            tar::EntryType::XGlobalHeader => return Ok(()),
            // Old (v7) archives mark directories by a trailing slash only.
            tar::EntryType::Regular if type_byte == 0 && raw_path.ends_with(b"/") => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                Kind::File
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Char => Kind::Char,
            tar::EntryType::Block => Kind::Block,
            _ => {
                return Err(UnpackError::UnsupportedType {
                    entry: name,
                    type_flag: char::from(type_byte),
                });
            }
        };
        let comps = split_path(&raw_path).map_err(|reason| UnpackError::Unsafe {
            entry: name.clone(),
            reason,
        })?;
        self.stats.entries += 1;

        let Some((last, parent)) = comps.split_last() else {
            // "./" or "/": the destination itself.
            if kind != Kind::Dir {
                return Err(UnpackError::InvalidEntry {
                    entry: name,
                    reason: "it names the destination directory itself but is not a directory"
                        .into(),
                });
            }
            let meta = self.meta(entry, &name)?;
            return self.root_dir(&meta, &name);
        };

        if self.options.whiteouts == Whiteouts::Overlay {
            if parent.iter().any(|c| c.starts_with(AUFS_META_PREFIX)) {
                // Inside AUFS bookkeeping directories (`.wh..wh.plnk/…`):
                // meaningless to overlayfs, and never to land on disk.
                return Ok(());
            }
            if last.starts_with(WHITEOUT_PREFIX) {
                return self.whiteout(parent, last, &name);
            }
        }

        // Refused before anything (parent directories included) is created.
        let device = match kind {
            Kind::Char | Kind::Block => Some(self.device(entry, kind, &name)?),
            _ => None,
        };

        let (canonical, parent_fd) = self.parent(parent, &name)?;
        let meta = self.meta(entry, &name)?;
        let at = Target {
            parent: parent_fd.as_fd(),
            name: last,
            entry: &name,
        };
        match kind {
            Kind::File => {
                let mut rel = canonical;
                push_component(&mut rel, last);
                self.file(&at, &rel, entry, &meta)
            }
            Kind::Dir => {
                let mut rel = canonical;
                push_component(&mut rel, last);
                self.dir(&at, &meta, rel)
            }
            Kind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(&name, "a symlink without a target"))?
                    .into_owned();
                self.symlink(&at, &target, &meta)
            }
            Kind::Hardlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(&name, "a hardlink without a target"))?
                    .into_owned();
                self.hardlink(&at, &target)
            }
            Kind::Fifo => self.node(&at, FileType::Fifo, 0, 0, &meta),
            Kind::Char | Kind::Block => {
                let (file_type, major, minor) =
                    device.ok_or_else(|| invalid(&name, "a device without numbers"))?;
                self.node(&at, file_type, major, minor, &meta)
            }
        }
    }

    /// The type and numbers of a device entry, if devices are allowed here.
    fn device<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        kind: Kind,
        name: &str,
    ) -> Result<(FileType, u32, u32), UnpackError> {
        let header = entry.header();
        let major = header
            .device_major()
            .map_err(|e| invalid(name, &format!("bad device major: {e}")))?
            .unwrap_or(0);
        let minor = header
            .device_minor()
            .map_err(|e| invalid(name, &format!("bad device minor: {e}")))?
            .unwrap_or(0);
        let is_char = kind == Kind::Char;
        let is_whiteout =
            is_char && major == 0 && minor == 0 && self.options.whiteouts == Whiteouts::Overlay;
        if !self.options.allow_devices && !is_whiteout {
            return Err(UnpackError::DeviceNotAllowed {
                entry: name.to_owned(),
                kind: if is_char { "character" } else { "block" },
            });
        }
        let file_type = if is_char {
            FileType::CharacterDevice
        } else {
            FileType::BlockDevice
        };
        Ok((file_type, major, minor))
    }

    /// Reads ownership, mode, mtime and xattrs from the entry's headers.
    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Meta, UnpackError> {
        let header = entry.header();
        let raw = header.as_bytes();
        let field = |r: io::Result<u64>, range: std::ops::Range<usize>, what: &str| {
            // An empty field reads as 0, as GNU tar and Go's archive/tar do.
            match r {
                Ok(v) => Ok(v),
                Err(_) if raw[range].iter().all(|&b| b == 0 || b == b' ') => Ok(0),
                Err(e) => Err(invalid(name, &format!("bad {what}: {e}"))),
            }
        };
        let mode = field(header.mode().map(u64::from), 100..108, "mode")? as u32 & 0o7777;
        let owner = if self.options.same_owner {
            // The tar crate has already applied PAX uid/gid overrides.
            let uid = field(header.uid(), 108..116, "uid")?;
            let gid = field(header.gid(), 116..124, "gid")?;
            let uid = u32::try_from(uid).map_err(|_| invalid(name, "uid out of range"))?;
            let gid = u32::try_from(gid).map_err(|_| invalid(name, "gid out of range"))?;
            Some((Uid::from_raw(uid), Gid::from_raw(gid)))
        } else {
            None
        };
        let secs = field(header.mtime(), 136..148, "mtime")?;
        let mut mtime = (i64::try_from(secs).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        let pax = entry
            .pax_extensions()
            .map_err(|source| UnpackError::Archive {
                entry: Some(name.to_owned()),
                source,
            })?;
        if let Some(pax) = pax {
            for ext in pax {
                let ext = ext.map_err(|source| UnpackError::Archive {
                    entry: Some(name.to_owned()),
                    source,
                })?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    // PAX keeps sub-second precision the ustar field lacks.
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        mtime = t;
                    }
                } else if let Some(xattr) = key.strip_prefix(PAX_XATTR_PREFIX)
                    && !xattr.starts_with(OVERLAY_XATTR_PREFIX)
                    && !xattr.is_empty()
                {
                    xattrs.push((xattr.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(Meta {
            mode,
            owner,
            mtime,
            xattrs,
        })
    }

    fn io_err(
        &self,
        entry: &str,
        action: &'static str,
        source: impl Into<io::Error>,
    ) -> UnpackError {
        UnpackError::Io {
            entry: entry.to_owned(),
            action,
            dest: self.dest.to_path_buf(),
            source: source.into(),
        }
    }

    /// Resolves (chroot-style) and creates the directory an entry goes in;
    /// returns its canonical relative path and an `O_PATH` descriptor.
    fn parent(
        &mut self,
        comps: &[&[u8]],
        entry: &str,
    ) -> Result<(Vec<u8>, Rc<OwnedFd>), UnpackError> {
        let raw = comps.join(&b'/');
        if let Some(c) = self.cache.as_ref().filter(|c| c.raw == raw) {
            return Ok((c.canonical.clone(), Rc::clone(&c.fd)));
        }
        let root = self.root.as_fd();
        let (canonical, existing) = resolve_in_root(root, comps)
            .map_err(|e| self.io_err(entry, "resolve the parent directory", e))?;
        // Create what is missing below the last existing directory.
        for i in existing..canonical.len() {
            let above = open_dir(root, &canonical[..i].join(&b'/'))
                .map_err(|e| self.io_err(entry, "open a parent directory", e))?;
            let name = canonical[i].as_slice();
            match rfs::mkdirat(&above, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => {}
                // Not ours to change the mode of.
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(self.io_err(entry, "create a parent directory", e)),
            }
            // Independent of the umask: implicit directories are always 0755.
            rfs::openat(
                &above,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .and_then(|dir| rfs::fchmod(&dir, Mode::from_raw_mode(0o755)))
            .map_err(|e| self.io_err(entry, "set the mode of a parent directory", e))?;
        }
        let joined = canonical.join(&b'/');
        let fd = Rc::new(
            open_dir(root, &joined)
                .map_err(|e| self.io_err(entry, "open the parent directory", e))?,
        );
        self.cache = Some(CachedParent {
            raw,
            canonical: joined.clone(),
            fd: Rc::clone(&fd),
        });
        Ok((joined, fd))
    }

    /// Makes room for a new entry `name` in `parent`: removes what is there,
    /// except a directory when `keep_dir`. Returns whether a directory was kept.
    fn clear(&mut self, at: &Target<'_>, keep_dir: bool) -> Result<bool, UnpackError> {
        let st = match rfs::statat(at.parent, at.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(self.io_err(at.entry, "look at the existing file", e)),
        };
        // Anything removed may have been part of a cached resolution.
        self.cache = None;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if keep_dir {
                return Ok(true);
            }
            remove_tree(at.parent, at.name)
                .map_err(|e| self.io_err(at.entry, "remove the existing directory", e))?;
        } else {
            rfs::unlinkat(at.parent, at.name, AtFlags::empty())
                .map_err(|e| self.io_err(at.entry, "remove the existing file", e))?;
        }
        Ok(false)
    }

    fn file<R: Read>(
        &mut self,
        at: &Target<'_>,
        rel: &[u8],
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        self.clear(at, false)?;
        // Content already consumed from the entry before the file exists:
        // the first `len` bytes are those of `from`, then `pending` bytes
        // of the unpacker's buffer.
        let mut head: Option<(File, u64, usize)> = None;
        if let Some(same) = self.reuse_candidate(rel, entry.size(), meta) {
            match self.compare(entry, &same, at.entry)? {
                Compared::Same => {
                    if self.link_reused(&same, at) {
                        self.stats.bytes += entry.size();
                        self.stats.reused += 1;
                        return Ok(());
                    }
                    let len = entry.size();
                    head = Some((same, len, 0));
                }
                Compared::Differs { matched, pending } => head = Some((same, matched, pending)),
            }
        }
        let fd = rfs::openat(
            at.parent,
            at.name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.io_err(at.entry, "create the file", e))?;
        let mut file = File::from(fd);
        let mut copied = 0u64;
        if let Some((mut from, len, pending)) = head {
            // The bytes both had in common, straight from file to file.
            let copy = from
                .seek(SeekFrom::Start(0))
                .and_then(|_| io::copy(&mut (&mut from).take(len), &mut file));
            match copy {
                Ok(n) if n == len => {}
                Ok(_) => {
                    return Err(self.io_err(
                        at.entry,
                        "copy from the reference snapshot",
                        io::Error::from(io::ErrorKind::UnexpectedEof),
                    ));
                }
                Err(e) => return Err(self.io_err(at.entry, "copy from the reference snapshot", e)),
            }
            file.write_all(&self.buf[..pending])
                .map_err(|e| self.io_err(at.entry, "write the file", e))?;
            copied = len + pending as u64;
        }
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::Archive {
                        entry: Some(at.entry.to_owned()),
                        source,
                    });
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| self.io_err(at.entry, "write the file", e))?;
            copied += n as u64;
        }
        self.stats.bytes += copied;
        if copied != entry.size() {
            // The tar reader reports a short stream as a short entry.
            return Err(UnpackError::Archive {
                entry: Some(at.entry.to_owned()),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the archive ends after {copied} of this file's {} bytes",
                        entry.size()
                    ),
                ),
            });
        }
        // Owner before mode (chown clears setuid/setgid), xattrs after both
        // (chown also drops security.capability), times last.
        self.apply_fd(file.as_fd(), meta, at.entry)?;
        rfs::futimens(&file, &meta.timestamps())
            .map_err(|e| self.io_err(at.entry, "set the modification time", e))
    }

    /// The reference's regular file at `rel` if everything but its bytes
    /// matches what this entry would create, and it was not linked yet.
    /// Anything unexpected means no candidate: the file is written instead.
    fn reuse_candidate(&self, rel: &[u8], size: u64, meta: &Meta) -> Option<File> {
        let reference = self.reference.as_ref()?;
        let (uid, gid) = meta.owner?;
        let fd = rfs::openat2(
            &reference.root,
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()?;
        let st = rfs::fstat(&fd).ok()?;
        let same = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            && u64::try_from(st.st_size).ok() == Some(size)
            && st.st_mode & 0o7777 == meta.mode
            && st.st_uid == uid.as_raw()
            && st.st_gid == gid.as_raw()
            && (st.st_mtime, st.st_mtime_nsec) == (meta.mtime.0, meta.mtime.1 as _)
            && !reference.linked.contains(&(st.st_dev, st.st_ino));
        if !same {
            return None;
        }
        let file = File::from(fd);
        let mut theirs = Vec::new();
        for name in xattr::FileExt::list_xattr(&file).ok()? {
            let value = xattr::FileExt::get_xattr(&file, &name).ok()??;
            theirs.push((name.as_bytes().to_vec(), value));
        }
        theirs.sort_unstable();
        let mut ours = meta.xattrs.clone();
        ours.sort_unstable();
        (theirs == ours).then_some(file)
    }

    /// Reads the entry's content and compares it with `reference`'s.
    fn compare<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        mut reference: &File,
        name: &str,
    ) -> Result<Compared, UnpackError> {
        let Some(r) = self.reference.as_mut() else {
            return Ok(Compared::Differs {
                matched: 0,
                pending: 0,
            });
        };
        let mut matched = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                // A short entry (a cut archive) is not the same: writing it
                // reports the cut.
                Ok(0) if matched == entry.size() => return Ok(Compared::Same),
                Ok(0) => {
                    return Ok(Compared::Differs {
                        matched,
                        pending: 0,
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::Archive {
                        entry: Some(name.to_owned()),
                        source,
                    });
                }
            };
            // A short or failed read of the reference counts as different:
            // the file is then written from the entry.
            let theirs = &mut r.buf[..n];
            if reference.read_exact(theirs).is_err() || theirs != &self.buf[..n] {
                return Ok(Compared::Differs {
                    matched,
                    pending: n,
                });
            }
            matched += n as u64;
        }
    }

    /// Links the reference's file at the entry's place; false if the kernel
    /// refuses (another filesystem, too many links, the file was removed),
    /// in which case the caller writes a copy.
    fn link_reused(&mut self, same: &File, at: &Target<'_>) -> bool {
        let Some(r) = self.reference.as_mut() else {
            return false;
        };
        let Ok(st) = rfs::fstat(same) else {
            return false;
        };
        // Through the open descriptor, so the inode linked is the one
        // compared, whatever happened to its name meanwhile.
        let proc_path = format!("/proc/self/fd/{}", same.as_raw_fd());
        let linked = rfs::linkat(
            rfs::CWD,
            proc_path.as_str(),
            at.parent,
            at.name,
            AtFlags::SYMLINK_FOLLOW,
        )
        .is_ok();
        if linked {
            r.linked.insert((st.st_dev, st.st_ino));
        }
        linked
    }

    fn dir(&mut self, at: &Target<'_>, meta: &Meta, rel: Vec<u8>) -> Result<(), UnpackError> {
        if !self.clear(at, true)? {
            rfs::mkdirat(at.parent, at.name, Mode::from_raw_mode(0o700))
                .map_err(|e| self.io_err(at.entry, "create the directory", e))?;
        }
        let fd = rfs::openat(
            at.parent,
            at.name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io_err(at.entry, "open the directory", e))?;
        self.apply_fd(fd.as_fd(), meta, at.entry)?;
        self.dir_times.insert(rel, meta.mtime);
        Ok(())
    }

    fn root_dir(&mut self, meta: &Meta, entry: &str) -> Result<(), UnpackError> {
        let fd = rfs::openat(
            &self.root,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io_err(entry, "open the destination directory", e))?;
        self.apply_fd(fd.as_fd(), meta, entry)?;
        self.dir_times.insert(Vec::new(), meta.mtime);
        Ok(())
    }

    fn symlink(&mut self, at: &Target<'_>, target: &[u8], meta: &Meta) -> Result<(), UnpackError> {
        self.clear(at, false)?;
        // A new symlink may change how later names resolve.
        self.cache = None;
        // The target is stored as it is: it is never followed here, and
        // readers of the tree resolve it inside the root themselves.
        rfs::symlinkat(target, at.parent, at.name)
            .map_err(|e| self.io_err(at.entry, "create the symlink", e))?;
        self.apply_at(at, meta, false)
    }

    fn hardlink(&mut self, at: &Target<'_>, target: &[u8]) -> Result<(), UnpackError> {
        let target_comps = split_path(target).map_err(|_| UnpackError::Unsafe {
            entry: at.entry.to_owned(),
            reason: "its hardlink target has a '..' component",
        })?;
        let Some((target_name, target_parent)) = target_comps.split_last() else {
            return Err(invalid(at.entry, "a hardlink to the destination directory"));
        };
        let missing = || {
            invalid(
                at.entry,
                &format!(
                    "its hardlink target {:?} does not exist (a hardlink must follow its target in the archive)",
                    String::from_utf8_lossy(target)
                ),
            )
        };
        let root = self.root.as_fd();
        let (canonical, existing) = resolve_in_root(root, target_parent)
            .map_err(|e| self.io_err(at.entry, "resolve the hardlink target", e))?;
        if existing < canonical.len() {
            return Err(missing());
        }
        let target_dir = open_dir(root, &canonical.join(&b'/'))
            .map_err(|e| self.io_err(at.entry, "open the hardlink target's directory", e))?;
        let target_st = match rfs::statat(&target_dir, *target_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(self.io_err(at.entry, "look at the hardlink target", e)),
        };
        if let Ok(st) = rfs::statat(at.parent, at.name, AtFlags::SYMLINK_NOFOLLOW)
            && st.st_dev == target_st.st_dev
            && st.st_ino == target_st.st_ino
        {
            return Ok(()); // already the same file
        }
        if self
            .reference
            .as_ref()
            .is_some_and(|r| r.linked.contains(&(target_st.st_dev, target_st.st_ino)))
        {
            // The inode is also the reference's: another name for it here
            // would make the two trees share more than one path.
            return Err(invalid(
                at.entry,
                "it hardlinks a file shared with the reference directory; unpack this layer without a reference",
            ));
        }
        self.clear(at, false)?;
        // Flags 0: a symlink target is linked itself, never followed.
        rfs::linkat(
            &target_dir,
            *target_name,
            at.parent,
            at.name,
            AtFlags::empty(),
        )
        .map_err(|e| self.io_err(at.entry, "create the hardlink", e))
    }

    fn node(
        &mut self,
        at: &Target<'_>,
        file_type: FileType,
        major: u32,
        minor: u32,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        self.clear(at, false)?;
        rfs::mknodat(
            at.parent,
            at.name,
            file_type,
            Mode::from_raw_mode(0o600),
            rfs::makedev(major, minor),
        )
        .map_err(|e| self.io_err(at.entry, "create the special file", e))?;
        self.apply_at(at, meta, true)
    }

    /// `.wh.<name>` and `.wh..wh..opq` in [`Whiteouts::Overlay`] mode.
    fn whiteout(&mut self, parent: &[&[u8]], last: &[u8], entry: &str) -> Result<(), UnpackError> {
        let (_, parent_fd) = self.parent(parent, entry)?;
        if last == OPAQUE_MARKER {
            let dir = rfs::openat(
                &*parent_fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.io_err(entry, "open the directory to mark it opaque", e))?;
            return rfs::fsetxattr(&dir, OPAQUE_XATTR, b"y", rfs::XattrFlags::empty())
                .map_err(|e| self.io_err(entry, "mark the directory opaque (needs root)", e));
        }
        let hidden = &last[WHITEOUT_PREFIX.len()..];
        if last.starts_with(AUFS_META_PREFIX) {
            // Other `.wh..wh.*` names are AUFS bookkeeping (hardlink dirs),
            // meaningless to overlayfs.
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(invalid(entry, "a whiteout that names no file"));
        }
        let at = Target {
            parent: parent_fd.as_fd(),
            name: hidden,
            entry,
        };
        self.clear(&at, false)?;
        rfs::mknodat(
            at.parent,
            hidden,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(|e| self.io_err(entry, "create the whiteout device (needs root)", e))?;
        if self.options.same_owner {
            // Owned by root whatever the archive says, as overlayfs makes them.
            rfs::chownat(
                at.parent,
                hidden,
                Some(Uid::ROOT),
                Some(Gid::ROOT),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io_err(entry, "set the owner of the whiteout", e))?;
        }
        Ok(())
    }

    /// Owner, mode and xattrs through an open descriptor.
    fn apply_fd(&self, fd: BorrowedFd<'_>, meta: &Meta, entry: &str) -> Result<(), UnpackError> {
        if let Some((uid, gid)) = meta.owner {
            rfs::fchown(fd, Some(uid), Some(gid))
                .map_err(|e| self.io_err(entry, "set the owner", e))?;
        }
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(|e| self.io_err(entry, "set the mode", e))?;
        for (name, value) in &meta.xattrs {
            let r = rfs::fsetxattr(fd, name.as_slice(), value, rfs::XattrFlags::empty());
            self.xattr_result(name, r.map_err(Into::into), entry)?;
        }
        Ok(())
    }

    /// Owner, mode, xattrs and times of an entry that cannot be opened
    /// (symlinks, devices, FIFOs), by name, never following it.
    fn apply_at(&self, at: &Target<'_>, meta: &Meta, chmod: bool) -> Result<(), UnpackError> {
        if let Some((uid, gid)) = meta.owner {
            rfs::chownat(
                at.parent,
                at.name,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io_err(at.entry, "set the owner", e))?;
        }
        if chmod {
            // Not a symlink (the caller says), so following is harmless:
            // it names the node just created.
            rfs::chmodat(
                at.parent,
                at.name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(|e| self.io_err(at.entry, "set the mode", e))?;
        }
        if !meta.xattrs.is_empty() {
            // lsetxattr needs a path: the parent through its descriptor
            // (a real directory), then the name, not followed.
            let mut path = PathBuf::from(format!("/proc/self/fd/{}", at.parent.as_raw_fd()));
            path.push(OsStr::from_bytes(at.name));
            for (name, value) in &meta.xattrs {
                let r = rfs::lsetxattr(&path, name.as_slice(), value, rfs::XattrFlags::empty());
                self.xattr_result(name, r.map_err(Into::into), at.entry)?;
            }
        }
        rfs::utimensat(
            at.parent,
            at.name,
            &meta.timestamps(),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io_err(at.entry, "set the modification time", e))
    }

    /// `security.*` xattrs may be refused by the kernel (an LSM, or a
    /// filesystem without them): skipped then. Other failures are errors.
    fn xattr_result(&self, name: &[u8], r: io::Result<()>, entry: &str) -> Result<(), UnpackError> {
        match r {
            Err(e) if name.starts_with(b"security.") && kernel_refused(&e) => Ok(()),
            Err(e) => Err(UnpackError::Io {
                entry: entry.to_owned(),
                action: "set an extended attribute",
                dest: self.dest.to_path_buf(),
                source: io::Error::new(e.kind(), format!("{}: {e}", String::from_utf8_lossy(name))),
            }),
            Ok(()) => Ok(()),
        }
    }

    /// Sets directory mtimes once nothing more is written into them.
    fn set_dir_times(&mut self) -> Result<(), UnpackError> {
        let root = self.root.as_fd();
        for (rel, &mtime) in &self.dir_times {
            let t = Timespec {
                tv_sec: mtime.0,
                tv_nsec: mtime.1,
            };
            let times = Timestamps {
                last_access: t,
                last_modification: t,
            };
            let name = String::from_utf8_lossy(rel).into_owned();
            let (parent, last) = match rel.iter().rposition(|&b| b == b'/') {
                Some(i) => (&rel[..i], &rel[i + 1..]),
                None if rel.is_empty() => (&rel[..], &b"."[..]),
                None => (&b""[..], &rel[..]),
            };
            // A later entry may have replaced the directory: then skip it.
            let Ok(dir) = open_dir(root, parent) else {
                continue;
            };
            match rfs::statat(&dir, last, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                _ => continue,
            }
            rfs::utimensat(&dir, last, &times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.io_err(&name, "set the modification time", e))?;
        }
        Ok(())
    }
}

/// Where an entry is created: a name in an already opened directory.
struct Target<'a> {
    parent: BorrowedFd<'a>,
    name: &'a [u8],
    entry: &'a str,
}

fn invalid(entry: &str, reason: &str) -> UnpackError {
    UnpackError::InvalidEntry {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    }
}

fn kernel_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EACCES | libc::ENOTSUP | libc::EINVAL)
    )
}

/// Splits an archive path into its components, dropping empty ones and `.`
/// (so leading `/` and `./` vanish). Refuses `..` anywhere and NUL bytes.
fn split_path(raw: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("its path has a '..' component"),
            _ if part.contains(&0) => return Err("its path contains a NUL byte"),
            _ => out.push(part),
        }
    }
    Ok(out)
}

fn push_component(path: &mut Vec<u8>, name: &[u8]) {
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
}

/// Parses a PAX time (`"1700000000.5"`, possibly negative) into (sec, nsec).
fn parse_pax_time(value: &[u8]) -> Option<(i64, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
    }
    if !negative {
        Some((secs, nanos))
    } else if nanos == 0 {
        Some((-secs, 0))
    } else {
        Some((-secs - 1, 1_000_000_000 - nanos))
    }
}

/// Resolves directory components below `root` as a chroot at `root` would:
/// symlinks are followed, absolute targets restart at `root`, `..` never
/// rises above it. Every component must be (or resolve to) a directory.
///
/// Returns the canonical components — real directories, or names that do
/// not exist yet — and how many leading ones exist.
pub(crate) fn resolve_in_root(
    root: BorrowedFd<'_>,
    comps: &[&[u8]],
) -> io::Result<(Vec<Vec<u8>>, usize)> {
    let mut pending: VecDeque<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut existing = 0;
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                out.pop();
                existing = existing.min(out.len());
                continue;
            }
            _ => {}
        }
        if existing < out.len() {
            // Below a missing directory nothing can be a symlink yet.
            out.push(c);
            continue;
        }
        let mut rel = out.join(&b'/');
        push_component(&mut rel, &c);
        let st = match rfs::statat(root, rel.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => {
                out.push(c);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                out.push(c);
                existing += 1;
            }
            FileType::Symlink => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = rfs::readlinkat(root, rel.as_slice(), Vec::new())?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    out.clear();
                    existing = 0;
                }
                for part in target.split(|&b| b == b'/').rev() {
                    if !part.is_empty() && part != b"." {
                        pending.push_front(part.to_vec());
                    }
                }
            }
            _ => return Err(Errno::NOTDIR.into()),
        }
    }
    Ok((out, existing))
}

/// Opens the directory at the canonical relative path `rel` (no symlinks,
/// no `..`) below `root`, as an `O_PATH` descriptor. The kernel refuses any
/// symlink on the way, so the result is inside `root` whatever changed since
/// `rel` was resolved.
pub(crate) fn open_dir(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    let path: &[u8] = if rel.is_empty() { b"." } else { rel };
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    for _ in 0..16 {
        match rfs::openat2(root, path, flags, Mode::empty(), resolve) {
            // Raced with a rename elsewhere in the tree: the kernel asks to retry.
            Err(Errno::AGAIN) => continue,
            Err(Errno::NOSYS) => return open_dir_walk(root, rel),
            r => return r.map_err(Into::into),
        }
    }
    Err(Errno::AGAIN.into())
}

/// `open_dir` for kernels without `openat2` (before 5.6): one component at a
/// time, never following a symlink.
fn open_dir_walk(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = rfs::openat(root, ".", flags, Mode::empty())?;
    for part in rel.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        if part == b"." || part == b".." {
            return Err(Errno::INVAL.into());
        }
        fd = rfs::openat(&fd, part, flags, Mode::empty())?;
    }
    Ok(fd)
}

/// Removes `name` in `parent` and everything below it, never following a
/// symlink.
pub(crate) fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rfs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) => return Ok(()),
        Err(Errno::NOTEMPTY | Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Names first, then removal: unlinking while reading a directory stream
    // may skip entries.
    let mut children = Vec::new();
    for child in rfs::Dir::read_from(&dir)? {
        let child = child?;
        let child_name = child.file_name().to_bytes();
        if child_name == b"." || child_name == b".." {
            continue;
        }
        children.push((child_name.to_vec(), child.file_type()));
    }
    for (child, file_type) in children {
        let is_dir = match file_type {
            FileType::Directory => true,
            FileType::Unknown => {
                let st = rfs::statat(&dir, child.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(st.st_mode) == FileType::Directory
            }
            _ => false,
        };
        if is_dir {
            remove_tree(dir.as_fd(), &child)?;
        } else {
            rfs::unlinkat(&dir, child.as_slice(), AtFlags::empty())?;
        }
    }
    drop(dir);
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(split_path(b"/a//./b/").unwrap(), vec![&b"a"[..], b"b"]);
        assert_eq!(split_path(b"./").unwrap(), Vec::<&[u8]>::new());
        assert!(split_path(b"a/../b").is_err());
        assert!(split_path(b"..").is_err());
        assert_eq!(split_path(b"a/..b").unwrap(), vec![&b"a"[..], b"..b"]);
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.123456789123"),
            Some((1_700_000_000, 123_456_789))
        );
        assert_eq!(parse_pax_time(b"5.5"), Some((5, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"-3"), Some((-3, 0)));
        assert_eq!(parse_pax_time(b"x"), None);
        assert_eq!(parse_pax_time(b""), None);
        assert_eq!(parse_pax_time(b"1.2e3"), None);
    }
}
