//! Snapshots: each layer unpacked once under `<store root>/snapshots/<diffid-hex>/`,
//! shared read-only by every container and build step that uses it.
//!
//! Owns the `snapshots/` directory: unpacking layer blobs into it
//! ([`Snapshots::ensure`]) or layer streams as they are written
//! ([`Snapshots::unpack_stream`]), directories being built into new layers
//! ([`Staging`]), saved layer indexes, lineage hints, listing, removal and
//! cleaning up after crashes.
//!
//! A snapshot appears under its final name only complete and verified:
//! content is unpacked into a unique work directory next to it (same
//! filesystem), the decompressed stream is hashed on the way and checked
//! against the layer's diff ID, and the directory is renamed into place with
//! `RENAME_NOREPLACE`. Whoever renames first wins; a loser discards its
//! copy, which is identical. Removal renames to a trash name before
//! deleting, so a crash never leaves half a snapshot under its real name.
//! A snapshot unpacked from the tar stream of a layer being written is held
//! to the same rule: the stream is hashed as it is unpacked, and the
//! directory gets its name only if that hash is the diff ID the writer
//! reports for the layer.
//!
//! Snapshots may share inodes: a snapshot unpacked with a reference (see
//! [`crate::layer::unpack::unpack_reusing`]) hard-links the reference's
//! identical files. Nothing writes into a snapshot once it has its name,
//! so that is invisible, and removing either one leaves the other whole.
//!
//! Snapshots are not synced to disk: a snapshot is a cache of a layer blob
//! (which is), and syncing meant `syncfs`, which waits for every dirty page
//! on the filesystem, ours or not (0.2-2 s per build step when other writes
//! are pending). Instead, before a snapshot gets its name, a marker
//! `.boot-<hex>` records the kernel's boot ID. The page cache outlives any
//! process crash, so within one boot the snapshot is whole; after a reboot
//! (when a machine crash may have lost unwritten pages) a snapshot whose
//! marker names another boot is thrown away and unpacked again from its
//! blob.
//!
//! Names under `snapshots/`:
//!
//! ```text
//! <64 hex>            a complete snapshot
//! .unpack-<unique>/   a layer being unpacked by `ensure`
//! .stage-<unique>/    a `Staging` directory
//! .trash-<unique>/    a snapshot being removed
//! .lock-<64 hex>      serialises `ensure` of one layer (saves duplicate work only)
//! .boot-<64 hex>      the boot the snapshot was written in (see above)
//! .index-<64 hex>     the metadata of a layer a build laid out in memory and
//!                     never unpacked (see `layer::tree`), so later builds can
//!                     place files on top of it without unpacking it either
//! .line-<64 hex>      a lineage hint: the diff ID of the last snapshot made
//!                     for a caller-named site (a COPY instruction), whose
//!                     files the next layer made there may link to
//! ```
//!
//! Work directories hold an exclusive `flock` while in use, so
//! [`Snapshots::clean_staging`] never removes one that a live process is
//! still filling, however old it is.

mod error;

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, RenameFlags};
use rustix::io::Errno;

use error::IoContext;
pub use error::SnapshotError;

use crate::layer::decompress::decompress;
use crate::layer::tree::LayerTree;
use crate::layer::unpack::{UnpackOptions, unpack, unpack_reusing};
use crate::store::{Descriptor, Digest, Hasher, Store};

/// The directory under the store root that holds snapshots.
pub const SNAPSHOTS_DIR: &str = "snapshots";

const UNPACK_PREFIX: &str = ".unpack-";
const STAGE_PREFIX: &str = ".stage-";
const TRASH_PREFIX: &str = ".trash-";
const LOCK_PREFIX: &str = ".lock-";
const BOOT_PREFIX: &str = ".boot-";
const INDEX_PREFIX: &str = ".index-";
const LINE_PREFIX: &str = ".line-";

/// Tells work directories of one process apart; the pid tells processes apart.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The snapshot directory of one store. Cheap to clone; holds no open files.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// Opens `<store root>/snapshots`, creating it if missing.
    ///
    /// The directory is created mode 0700: snapshots hold images' setuid
    /// binaries, which local users must not be able to reach and run. It is
    /// marked as the top of independent trees, so each snapshot gets fresh
    /// space on ext4 (see `spread_below`).
    pub fn open(store: &Store) -> Result<Snapshots, SnapshotError> {
        let dir = store.root().join(SNAPSHOTS_DIR);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => sync_dir(store.root())?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e).at("create directory", &dir),
        }
        spread_below(&dir);
        Ok(Snapshots { dir })
    }

    /// The `snapshots/` directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the snapshot of the layer with this diff ID lives (whether or not it exists).
    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    /// Whether the snapshot exists (and can be trusted: see the module docs).
    pub fn contains(&self, diff_id: &Digest) -> bool {
        self.path(diff_id).is_dir() && self.written_this_boot(diff_id)
    }

    fn boot_marker(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(format!("{BOOT_PREFIX}{}", diff_id.hex()))
    }

    /// Whether the snapshot was written in this boot, or synced (no marker).
    fn written_this_boot(&self, diff_id: &Digest) -> bool {
        match fs::read_to_string(self.boot_marker(diff_id)) {
            Ok(text) => boot_id().is_some_and(|b| b == text.trim()),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// Removes a snapshot that may have lost data in a machine crash.
    fn drop_if_stale(&self, diff_id: &Digest) -> Result<(), SnapshotError> {
        if self.path(diff_id).is_dir() && !self.written_this_boot(diff_id) {
            self.remove(diff_id)?;
        }
        Ok(())
    }

    /// Returns the snapshot of `layer` (a blob in `store`), unpacking it
    /// first if it does not exist yet.
    ///
    /// The blob is decompressed (gzip, zstd, bzip2, xz or none, recognised by
    /// its bytes), and its tar must hash to `diff_id`; otherwise nothing is
    /// kept and the error names the layer. Safe to call from several threads
    /// and processes at once: one unpacks, the others wait for it (or, if
    /// that cannot be arranged, unpack too and discard their copy).
    pub fn ensure(
        &self,
        store: &Store,
        layer: &Descriptor,
        diff_id: &Digest,
    ) -> Result<PathBuf, SnapshotError> {
        let dest = self.path(diff_id);
        if self.contains(diff_id) {
            return Ok(dest);
        }
        // Only to avoid unpacking the same layer twice at once; correctness
        // comes from the no-replace rename below.
        let _lock = self.layer_lock(diff_id)?;
        self.drop_if_stale(diff_id)?;
        if dest.is_dir() {
            return Ok(dest);
        }
        let mut work = WorkDir::create(&self.dir, UNPACK_PREFIX)?;
        let blob = store.open_blob(&layer.digest)?;
        let read_err = |source| SnapshotError::Read {
            layer: layer.digest,
            source,
        };
        let (_, decoded) = decompress(blob).map_err(read_err)?;
        let mut reader = HashingReader {
            inner: decoded,
            hasher: Hasher::new(),
        };
        unpack(&mut reader, &work.path, &UnpackOptions::layer()).map_err(|source| {
            SnapshotError::Unpack {
                layer: layer.digest,
                source,
            }
        })?;
        // The diff ID covers the whole stream, including the end-of-archive
        // blocks and padding the tar reader stops before.
        io::copy(&mut reader, &mut io::sink()).map_err(read_err)?;
        let actual = reader.hasher.finish();
        if actual != *diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                layer: layer.digest,
                expected: *diff_id,
                actual,
            });
        }
        self.commit(&mut work, diff_id)
    }

    /// Creates a fresh, empty directory (mode 0755) for building a layer's
    /// content; [`Staging::commit`] turns it into the snapshot of that layer.
    pub fn stage(&self) -> Result<Staging, SnapshotError> {
        Ok(Staging {
            work: WorkDir::create(&self.dir, STAGE_PREFIX)?,
            snapshots: self.clone(),
        })
    }

    /// Unpacks a layer's tar stream (typically a
    /// [`LayerStream`](crate::layer::writer::LayerStream) while the layer is
    /// written) into a work directory, hashing every byte of it. The result
    /// becomes the layer's snapshot with [`Unpacked::commit`], which checks
    /// that hash against the diff ID.
    ///
    /// With `reference`, the diff ID of a snapshot that exists (and is
    /// trusted), files identical to the reference's at the same path are
    /// hard-linked from it; the caller makes sure neither layer holds
    /// hardlinks of its own (see [`unpack_reusing`]).
    pub fn unpack_stream(
        &self,
        tar: &mut dyn Read,
        reference: Option<&Digest>,
    ) -> Result<Unpacked, SnapshotError> {
        let work = WorkDir::create(&self.dir, UNPACK_PREFIX)?;
        let mut reader = HashingReader {
            inner: tar,
            hasher: Hasher::new(),
        };
        let options = UnpackOptions::layer();
        let reference = reference.filter(|r| self.contains(r)).map(|r| self.path(r));
        let unpacked = match &reference {
            Some(r) => unpack_reusing(&mut reader, &work.path, &options, r),
            None => unpack(&mut reader, &work.path, &options),
        };
        let stats = unpacked.map_err(|source| SnapshotError::UnpackStream { source })?;
        // The diff ID covers the end-of-archive blocks the tar reader stops
        // before, too.
        io::copy(&mut reader, &mut io::sink())
            .map_err(|source| SnapshotError::ReadStream { source })?;
        Ok(Unpacked {
            work,
            snapshots: self.clone(),
            hashed: reader.hasher.finish(),
            reused: stats.reused,
        })
    }

    fn line_path(&self, site: &Digest) -> PathBuf {
        self.dir.join(format!("{LINE_PREFIX}{}", site.hex()))
    }

    /// The snapshot last recorded for `site` with
    /// [`set_line`](Self::set_line), if it still exists and is trusted.
    pub fn line(&self, site: &Digest) -> Option<Digest> {
        let text = fs::read_to_string(self.line_path(site)).ok()?;
        let diff_id = Digest::from_hex(text.trim()).ok()?;
        self.contains(&diff_id).then_some(diff_id)
    }

    /// Records `diff_id` as the last snapshot made for `site` (a name the
    /// caller chooses). Only a hint: written to a temporary file and
    /// renamed, never synced.
    pub fn set_line(&self, site: &Digest, diff_id: &Digest) -> Result<(), SnapshotError> {
        let path = self.line_path(site);
        let tmp = self.dir.join(unique_name(STAGE_PREFIX));
        let written = fs::write(&tmp, diff_id.hex()).and_then(|()| fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.at("save the lineage hint", &path)
    }

    /// The diff IDs of all complete snapshots, sorted.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).at("list", &self.dir)? {
            let entry = entry.at("list", &self.dir)?;
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue; // work, trash and lock entries, or foreign files
            };
            if entry.file_type().at("look at", &entry.path())?.is_dir() {
                out.push(digest);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Where the saved index of a layer lives (whether or not it exists).
    pub fn index_path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(format!("{INDEX_PREFIX}{}", diff_id.hex()))
    }

    /// Saves the metadata of a layer laid out in memory (see
    /// [`LayerTree::write_index`]), so later builds can answer questions
    /// about the layer without unpacking it. Written to a temporary file
    /// and renamed: an index is complete or absent.
    pub fn save_index(&self, diff_id: &Digest, tree: &LayerTree) -> Result<(), SnapshotError> {
        let path = self.index_path(diff_id);
        let tmp = self.dir.join(unique_name(STAGE_PREFIX));
        let written = (|| {
            let mut out = io::BufWriter::new(File::create(&tmp)?);
            tree.write_index(&mut out)?;
            out.into_inner().map_err(io::IntoInnerError::into_error)?;
            fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.at("save the layer index", &path)
    }

    /// The saved metadata of a layer, its files naming where the snapshot
    /// would hold them; `None` if there is no usable index.
    pub fn load_index(&self, diff_id: &Digest) -> Option<LayerTree> {
        let file = File::open(self.index_path(diff_id)).ok()?;
        LayerTree::read_index(&mut io::BufReader::new(file), &self.path(diff_id)).ok()
    }

    /// The diff IDs of layers with a saved index, sorted.
    pub fn indexed(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).at("list", &self.dir)? {
            let entry = entry.at("list", &self.dir)?;
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(INDEX_PREFIX))
                .and_then(|hex| Digest::from_hex(hex).ok())
            {
                out.push(digest);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a layer's saved index; `Ok(false)` if there was none.
    pub fn remove_index(&self, diff_id: &Digest) -> Result<bool, SnapshotError> {
        let path = self.index_path(diff_id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).at("remove", &path),
        }
    }

    /// Removes a snapshot; `Ok(false)` if there was none. The caller makes
    /// sure no container or build still uses it.
    pub fn remove(&self, diff_id: &Digest) -> Result<bool, SnapshotError> {
        let path = self.path(diff_id);
        let trash = self.dir.join(unique_name(TRASH_PREFIX));
        match fs::rename(&path, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).at("move aside", &path),
        }
        sync_dir(&self.dir)?;
        // If this fails the snapshot is already gone under its name; the
        // leftover is removed by a later `clean_staging`.
        fs::remove_dir_all(&trash).at("remove", &trash)?;
        for leftover in [self.lock_path(diff_id), self.boot_marker(diff_id)] {
            if let Err(e) = fs::remove_file(&leftover)
                && e.kind() != io::ErrorKind::NotFound
            {
                return Err(e).at("remove", &leftover);
            }
        }
        Ok(true)
    }

    /// Removes what crashed or interrupted work left behind — unpack and
    /// staging directories, trash, lock files — last modified more than
    /// `older_than` ago. Directories that a live process still holds are
    /// kept. Returns how many entries were removed.
    pub fn clean_staging(&self, older_than: Duration) -> Result<usize, SnapshotError> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).at("list", &self.dir)? {
            let entry = entry.at("list", &self.dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            let is_work = name.starts_with(UNPACK_PREFIX) || name.starts_with(STAGE_PREFIX);
            let is_trash = name.starts_with(TRASH_PREFIX);
            let is_lock = name.starts_with(LOCK_PREFIX);
            if name.starts_with(LINE_PREFIX) {
                // A hint whose snapshot is gone points nowhere: whatever its age.
                let target = fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| Digest::from_hex(t.trim()).ok());
                if !target.is_some_and(|d| self.path(&d).is_dir()) {
                    match fs::remove_file(&path) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e).at("remove", &path),
                    }
                }
                continue;
            }
            if !(is_work || is_trash || is_lock) {
                continue;
            }
            let modified = match entry.metadata() {
                Ok(m) => m.modified().at("look at", &path)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at("look at", &path),
            };
            if now.duration_since(modified).unwrap_or(Duration::ZERO) < older_than {
                continue;
            }
            // Trash has no owner; work dirs and lock files are only removed
            // when nobody holds their lock.
            let _held = if is_trash {
                None
            } else {
                match try_lock(&path, is_work)? {
                    Some(f) => Some(f),
                    None => continue,
                }
            };
            // Work names are files too while an index or hint is written.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let r = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match r {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at("remove", &path),
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    fn lock_path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(format!("{LOCK_PREFIX}{}", diff_id.hex()))
    }

    /// Takes the per-layer lock, waiting for a holder to finish.
    fn layer_lock(&self, diff_id: &Digest) -> Result<File, SnapshotError> {
        let path = self.lock_path(diff_id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at("create lock file", &path)?;
        loop {
            match rustix::fs::flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(file),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e).at("lock", &path),
            }
        }
    }

    /// Moves a finished work directory to the snapshot name of `diff_id`.
    fn commit(&self, work: &mut WorkDir, diff_id: &Digest) -> Result<PathBuf, SnapshotError> {
        let dest = self.path(diff_id);
        // A same-named snapshot from an earlier boot must not win the race.
        self.drop_if_stale(diff_id)?;
        // The boot marker goes first, so no snapshot name is ever without
        // one (the journal orders these metadata operations).
        if let Some(boot) = boot_id() {
            let marker = self.boot_marker(diff_id);
            fs::write(&marker, boot).at("write", &marker)?;
        } else {
            // No boot ID to scope trust to: fall back to syncing.
            let dir = File::open(&work.path).at("open", &work.path)?;
            rustix::fs::syncfs(&dir).at("sync the filesystem of", &work.path)?;
        }
        match rename_noreplace(&work.path, &dest) {
            Ok(()) => {
                work.keep = true;
                sync_dir(&self.dir)?;
                Ok(dest)
            }
            // Someone else committed the same layer first: same content, so
            // theirs is used and ours is removed when `work` drops.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                if dest.is_dir() {
                    Ok(dest)
                } else {
                    Err(io::Error::other(
                        "it exists but is not a directory: remove it and try again",
                    ))
                    .at("use snapshot", &dest)
                }
            }
            Err(e) => Err(e).at("move snapshot into place at", &dest),
        }
    }
}

/// Marks `dir` as the top of independent directory trees (`chattr +T`), if
/// the filesystem has the notion (ext4) and it is not set yet; best effort.
///
/// ext4 puts a new directory (and then its files) in the block group of its
/// parent, unless the parent is so marked: then it picks a roomy group with
/// few directories, from a start that depends on the name. Without the
/// mark every snapshot lands in the groups of `snapshots/`, where earlier
/// snapshots (and whatever else lived there) were deleted; and ext4 without
/// a journal skips each inode freed in the last minute before it hands out
/// one, reading its inode table block every time. After a few thousand
/// deletions, creating a small file took 0.2-1 ms there, and a cold build
/// of W1 (3,300 files unpacked) spent 1.5-3 s in it; with the mark, about
/// 0.03 ms per file. Elsewhere the mark only changes where trees are put.
fn spread_below(dir: &Path) {
    let Ok(file) = File::open(dir) else {
        return;
    };
    if let Ok(flags) = rustix::fs::ioctl_getflags(&file)
        && !flags.contains(rustix::fs::IFlags::TOPDIR)
    {
        let _ = rustix::fs::ioctl_setflags(&file, flags | rustix::fs::IFlags::TOPDIR);
    }
}

/// The kernel's ID for this boot, if it tells.
fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A fresh directory under `snapshots/` for building a layer's content.
/// [`commit`](Staging::commit) it under the layer's diff ID; dropping it
/// uncommitted removes it.
#[derive(Debug)]
pub struct Staging {
    work: WorkDir,
    snapshots: Snapshots,
}

impl Staging {
    /// The directory to fill.
    pub fn path(&self) -> &Path {
        &self.work.path
    }

    /// Makes the content the snapshot of the layer with `diff_id` and
    /// returns its path. If that snapshot already exists (the same layer was
    /// built or pulled meanwhile) it is kept and this content discarded.
    pub fn commit(mut self, diff_id: &Digest) -> Result<PathBuf, SnapshotError> {
        let snapshots = self.snapshots.clone();
        snapshots.commit(&mut self.work, diff_id)
    }
}

/// A layer unpacked by [`Snapshots::unpack_stream`], waiting for the
/// layer's diff ID to become its snapshot; dropping it removes it.
#[derive(Debug)]
pub struct Unpacked {
    work: WorkDir,
    snapshots: Snapshots,
    /// sha256 of the whole stream unpacked.
    hashed: Digest,
    reused: u64,
}

impl Unpacked {
    /// The directory holding the content.
    pub fn path(&self) -> &Path {
        &self.work.path
    }

    /// How many files were linked from the reference snapshot.
    pub fn reused(&self) -> u64 {
        self.reused
    }

    /// Makes the content the snapshot of the layer with `diff_id`, if the
    /// stream it came from hashes to `diff_id` (otherwise nothing is kept);
    /// if that snapshot exists already, it is kept and this content dropped.
    pub fn commit(mut self, diff_id: &Digest) -> Result<PathBuf, SnapshotError> {
        if self.hashed != *diff_id {
            return Err(SnapshotError::StreamMismatch {
                expected: *diff_id,
                actual: self.hashed,
            });
        }
        let snapshots = self.snapshots.clone();
        snapshots.commit(&mut self.work, diff_id)
    }
}

/// A work directory under `snapshots/`: removed on drop unless `keep`, and
/// `flock`ed while alive so `clean_staging` leaves it alone.
#[derive(Debug)]
struct WorkDir {
    path: PathBuf,
    /// Held for the lock; the lock moves with the directory on rename.
    _lock: File,
    keep: bool,
}

impl WorkDir {
    fn create(parent: &Path, prefix: &str) -> Result<WorkDir, SnapshotError> {
        let mut attempt = 0;
        let path = loop {
            let path = parent.join(unique_name(prefix));
            match DirBuilder::new().mode(0o755).create(&path) {
                Ok(()) => break path,
                // A dead process with our pid may have left this name behind.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => return Err(e).at("create directory", &path),
            }
        };
        // From here on, dropping the guard removes the directory.
        let lock = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir(&path);
                return Err(e).at("open", &path);
            }
        };
        let work = WorkDir {
            path,
            _lock: lock,
            keep: false,
        };
        // Fresh and unique: nobody else can hold it, so this does not block.
        rustix::fs::flock(&work._lock, FlockOperation::NonBlockingLockExclusive)
            .at("lock", &work.path)?;
        // Exactly 0755 whatever the umask: this becomes the layer's root.
        fs::set_permissions(
            &work.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .at("set the mode of", &work.path)?;
        Ok(work)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            // Nothing useful can be done about a failure here;
            // `clean_staging` removes leftovers later.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Passes bytes through while hashing them (the layer's diff ID).
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn unique_name(prefix: &str) -> String {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{seq}-{nanos:09}", std::process::id())
}

/// `rename` that fails with `EEXIST` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        RenameFlags::NOREPLACE,
    ) {
        // A filesystem without RENAME_NOREPLACE: a directory rename still
        // cannot replace a non-empty directory, and replacing an empty one
        // (an empty layer) with an identical one is harmless.
        Err(Errno::INVAL) => fs::rename(from, to),
        r => r.map_err(Into::into),
    }
}

/// Takes a non-blocking exclusive lock on a work directory or lock file;
/// `None` if someone holds it (or it vanished meanwhile).
fn try_lock(path: &Path, is_dir: bool) -> Result<Option<File>, SnapshotError> {
    let file = if is_dir {
        File::open(path)
    } else {
        OpenOptions::new().read(true).write(true).open(path)
    };
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at("open", path),
    };
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e).at("lock", path),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The losing side of a commit race keeps the winner's snapshot and
    /// removes its own copy (hard to provoke through `ensure`, which
    /// serialises on the layer lock).
    #[test]
    fn losing_a_commit_race_keeps_the_winner() {
        let tmp = tempfile::TempDir::new().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let snaps = Snapshots::open(&store).unwrap();
        let id = Digest::of(b"x");
        let winner = snaps.stage().unwrap();
        fs::write(winner.path().join("who"), "winner").unwrap();
        let loser = snaps.stage().unwrap();
        fs::write(loser.path().join("who"), "loser").unwrap();
        let loser_path = loser.path().to_path_buf();
        let p1 = winner.commit(&id).unwrap();
        let p2 = loser.commit(&id).unwrap();
        assert_eq!(p1, p2);
        assert_eq!(fs::read_to_string(p1.join("who")).unwrap(), "winner");
        assert!(!loser_path.exists());
    }
}
