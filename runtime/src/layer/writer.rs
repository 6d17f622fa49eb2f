//! The layer writer: directory tree -> deterministic tar -> compressed blob
//! in the content store.
//!
//! Owns the tar format berth emits and the pipeline that produces it:
//!
//! - **What goes in.** Everything below `root` (not `root` itself), depth
//!   first, each directory's children sorted by name bytes. Regular files,
//!   directories (`name/`), symlinks, hard links (a second path to an inode
//!   already written in this layer becomes a link entry to the first path),
//!   character and block devices and FIFOs. Sockets are skipped.
//! - **How it is encoded.** POSIX ustar headers with numeric uid/gid, empty
//!   user and group names, permission bits including setuid/setgid/sticky,
//!   whole-second mtimes clamped to `SOURCE_DATE_EPOCH`, no atime/ctime. PAX
//!   extended headers, never GNU extensions, carry what ustar cannot: long
//!   or non-ASCII names and link targets, sizes of 8 GiB and more, large ids,
//!   and extended attributes (`SCHILY.xattr.*`, sorted). Overlay-internal
//!   and SELinux attributes are left out: they describe the host, not the
//!   image. The stream ends with two zero blocks.
//! - **Whiteouts.** With [`LayerOptions::overlay_whiteouts`], an overlay
//!   upper directory is translated to OCI form: a 0/0 character device
//!   becomes an empty `.wh.<name>` file, and an opaque directory gets an
//!   empty `.wh..wh..opq` file as its first child. Both are written as
//!   BuildKit writes whiteouts: regular file, mode 0, owner 0:0, with the
//!   (clamped) mtime of what they stand for.
//! - **Pipeline.** The calling thread walks the tree, frames the tar and
//!   hashes it (the diff ID); a second thread feeds the compressor (which
//!   spreads gzip and zstd over one worker per core) and writes into a
//!   [`BlobWriter`], which hashes the blob. The two exchange a fixed set of
//!   256 KiB buffers over bounded channels, so memory stays constant
//!   whatever the file or layer size. An error on either side stops both,
//!   and nothing reaches the store unless the whole layer was written.
//! - **Tee.** [`write_layer_tree_teed`] hands each buffer, once compressed,
//!   to a third thread that reads the same tar stream (a [`LayerStream`]),
//!   so a snapshot of the layer can be unpacked from the very bytes the
//!   diff ID hashes, while they are compressed, instead of from the blob
//!   afterwards. The stream ends only once the whole tar was produced and
//!   compressed: a reader of a failed layer gets an error, never a clean end.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::compress::{Compression, CompressionSpec, Encoder};
use super::tree::{FileData, LayerTree, TreeEntry, TreeKind};
use crate::store::{BlobWriter, Descriptor, Digest, Hasher, Store, StoreError};

/// Size of the buffers passed from the tar producer to the compressor: large
/// enough that channel traffic and per-chunk hashing overhead vanish, small
/// enough that all buffers together stay around 1.5 MiB.
const CHUNK: usize = 256 * 1024;
/// Filled chunks that may wait for the compressor. A few let the producer
/// run ahead over a run of small files while a large chunk compresses.
const IN_FLIGHT: usize = 4;
/// All buffers in circulation: those in flight plus one being filled and one
/// being compressed.
const BUFFERS: usize = IN_FLIGHT + 2;
/// With a tee: as many more waiting for it, and the one it reads.
const TEE_BUFFERS: usize = BUFFERS + IN_FLIGHT + 1;

const BLOCK: usize = 512;
/// ustar field limits.
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTRS: [&[u8]; 2] = [b"trusted.overlay.opaque", b"user.overlay.opaque"];

/// The diff ID of a tar with no entries (two zero blocks, as berth writes
/// it): a layer that changes nothing.
pub const EMPTY_TAR_DIFF_ID: Digest = Digest::from_bytes(hex_literal(
    b"5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
));

const fn hex_literal(hex: &[u8; 64]) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
        i += 1;
    }
    out
}

/// How to write a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    pub compression: CompressionSpec,
    /// `SOURCE_DATE_EPOCH`: no entry's mtime is later than this.
    pub source_date_epoch: Option<i64>,
    /// Translate overlayfs whiteouts (0/0 character devices, opaque
    /// directories) into OCI `.wh.` entries; for `RUN` upper directories.
    pub overlay_whiteouts: bool,
}

/// A layer written into the store.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBlob {
    /// The blob as stored: media type from the compression, digest and size
    /// of the compressed bytes.
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub uncompressed_size: u64,
}

/// Why a layer could not be written, or a compression setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("unknown layer compression {value:?}: use one of {valid}")]
    UnknownCompression { value: String, valid: &'static str },

    #[error("{kind} compression level {level} is out of range: use a level from {min} to {max}")]
    InvalidLevel {
        kind: Compression,
        level: i32,
        min: i32,
        max: i32,
    },

    #[error(
        "{kind} layers take no compression level (got {level}): drop the level, or choose gzip or zstd"
    )]
    LevelNotAllowed { kind: Compression, level: i32 },

    #[error(
        "cannot make a layer from {}: it is not a directory; a layer is made from a directory tree",
        path.display()
    )]
    NotADirectory { path: PathBuf },

    /// A filesystem call on the source tree failed.
    #[error(
        "cannot {action} {} while writing a layer: {source}; check that it exists and that berth may read it",
        path.display()
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "{} changed while its layer was being written ({what}): make sure nothing modifies the tree during the build step, then retry",
        path.display()
    )]
    Changed { path: PathBuf, what: &'static str },

    #[error("cannot put {} into a layer: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },

    /// Compressing or writing the blob failed (typically a full disk).
    #[error(
        "cannot write the layer blob into the store at {}: {source}; check free space and permissions there",
        store.display()
    )]
    WriteBlob {
        store: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(
        "cannot start the layer compression thread: {0}; the system is out of threads or memory, retry when it has recovered"
    )]
    Thread(#[source] io::Error),

    #[error("the layer {0} stopped unexpectedly; this is a bug in berth, please report it")]
    Internal(&'static str),
}

fn io_error<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> LayerError + 'p {
    move |source| LayerError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the tree below `root` as a layer blob into `store`.
///
/// `progress` is called from the compression thread with the number of
/// uncompressed tar bytes compressed so far, once per 256 KiB chunk.
///
/// On error nothing is committed to the store (the blob's temp file is
/// removed); the error names the path involved.
pub fn write_layer(
    store: &Store,
    root: &Path,
    options: &LayerOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<LayerBlob, LayerError> {
    // The spec's fields are public: refuse a level that bypassed `new`.
    CompressionSpec::new(options.compression.kind, options.compression.level)?;
    let meta = fs::metadata(root).map_err(io_error("look at", root))?;
    if !meta.is_dir() {
        return Err(LayerError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    pipeline(
        store,
        options,
        progress,
        |producer| producer.run(root),
        NO_TEE,
    )
    .0
}

/// Writes the entries of `tree` as a layer blob into `store`, reading file
/// content from where the tree says it is; otherwise as [`write_layer`].
/// A file that is no longer a regular file when it is read is an error.
pub fn write_layer_tree(
    store: &Store,
    tree: &LayerTree,
    options: &LayerOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<LayerBlob, LayerError> {
    CompressionSpec::new(options.compression.kind, options.compression.level)?;
    pipeline(
        store,
        options,
        progress,
        |producer| producer.run_tree(tree),
        NO_TEE,
    )
    .0
}

/// [`write_layer_tree`], with `tee` reading the uncompressed tar stream on
/// a thread of its own while the layer is written (see the module docs).
///
/// `tee` sees every byte the diff ID covers, in order, and then the end of
/// the stream; if the layer fails, a read fails instead of ending. Whatever
/// it leaves unread is drained for it. Returns the layer and what `tee`
/// returned (`None` if its thread could not start or it panicked; the layer
/// is written either way).
pub fn write_layer_tree_teed<T: Send>(
    store: &Store,
    tree: &LayerTree,
    options: &LayerOptions,
    progress: &(dyn Fn(u64) + Sync),
    tee: impl FnOnce(&mut LayerStream) -> T + Send,
) -> (Result<LayerBlob, LayerError>, Option<T>) {
    if let Err(e) = CompressionSpec::new(options.compression.kind, options.compression.level) {
        return (Err(e), None);
    }
    pipeline(
        store,
        options,
        progress,
        |producer| producer.run_tree(tree),
        Some(tee),
    )
}

/// The `tee` of a pipeline without one.
const NO_TEE: Option<fn(&mut LayerStream)> = None;

/// The uncompressed tar stream of a layer being written, as a
/// [`write_layer_tree_teed`] tee reads it.
pub struct LayerStream {
    chunks: Receiver<Msg>,
    free: Sender<Vec<u8>>,
    /// The chunk being read, its length, and how far it was read.
    current: Option<(Vec<u8>, usize)>,
    pos: usize,
    ended: bool,
}

impl LayerStream {
    /// Reads and drops the rest of the stream, handing its buffers back.
    fn drain(&mut self) {
        if let Some((buf, _)) = self.current.take() {
            let _ = self.free.send(buf);
        }
        while !self.ended {
            match self.chunks.recv() {
                Ok(Msg::Chunk(buf, _)) => {
                    let _ = self.free.send(buf);
                }
                Ok(Msg::End) | Err(_) => self.ended = true,
            }
        }
    }
}

impl Read for LayerStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((buf, len)) = &self.current {
                if self.pos < *len {
                    let n = out.len().min(len - self.pos);
                    out[..n].copy_from_slice(&buf[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
                if let Some((buf, _)) = self.current.take() {
                    let _ = self.free.send(buf);
                }
            }
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Msg::Chunk(buf, len)) => {
                    self.current = Some((buf, len));
                    self.pos = 0;
                }
                Ok(Msg::End) => {
                    self.ended = true;
                    return Ok(0);
                }
                Err(_) => {
                    // Gone without the end marker: the layer was not written.
                    self.ended = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the layer stream stopped before its end: writing the layer failed",
                    ));
                }
            }
        }
    }
}

/// Runs `produce` (the tar side) on this thread and the compressor on
/// another (and `tee`, if any, on a third), and commits the blob if
/// producer and compressor succeed.
fn pipeline<T: Send>(
    store: &Store,
    options: &LayerOptions,
    progress: &(dyn Fn(u64) + Sync),
    produce: impl FnOnce(TarProducer<'_>) -> Result<(Digest, u64), Fail>,
    tee: Option<impl FnOnce(&mut LayerStream) -> T + Send>,
) -> (Result<LayerBlob, LayerError>, Option<T>) {
    let store_root = store.root();
    let write_error = |source| LayerError::WriteBlob {
        store: store_root.to_path_buf(),
        source,
    };
    let blob = match store.writer(None) {
        Ok(blob) => blob,
        Err(e) => return (Err(e.into()), None),
    };
    // The spec is valid (checked above) and the header goes to a buffer:
    // what can fail here is starting the compression threads.
    let encoder = match Encoder::new(blob, &options.compression) {
        Ok(encoder) => encoder,
        Err(e) => return (Err(LayerError::Thread(e)), None),
    };

    let buffers = if tee.is_some() { TEE_BUFFERS } else { BUFFERS };
    let (full_tx, full_rx) = bounded::<Msg>(IN_FLIGHT);
    let (free_tx, free_rx) = bounded::<Vec<u8>>(buffers);
    for _ in 1..buffers {
        // Cannot fail: the channel has room for every buffer. `vec![0; n]`
        // maps zero pages lazily, so a small layer touches little of this.
        let _ = free_tx.try_send(vec![0; CHUNK]);
    }

    let (produced, compressed, teed) = thread::scope(|s| {
        // The tee first: the compressor passes buffers on to it only if it
        // runs. It always drains the stream, so it never holds buffers back.
        let (tee_tx, tee_thread) = match tee {
            None => (None, None),
            Some(tee) => {
                let (tx, rx) = bounded::<Msg>(IN_FLIGHT);
                let mut stream = LayerStream {
                    chunks: rx,
                    free: free_tx.clone(),
                    current: None,
                    pos: 0,
                    ended: false,
                };
                let started = thread::Builder::new()
                    .name("berth-layer-tee".into())
                    .spawn_scoped(s, move || {
                        let out = catch_unwind(AssertUnwindSafe(|| tee(&mut stream)));
                        stream.drain();
                        out.ok()
                    });
                match started {
                    Ok(handle) => (Some(tx), Some(handle)),
                    Err(_) => (None, None),
                }
            }
        };
        let consumer = thread::Builder::new()
            .name("berth-layer-compress".into())
            .spawn_scoped(s, move || {
                compress_chunks(full_rx, free_tx, tee_tx, encoder, progress, &write_error)
            });
        let consumer = match consumer {
            Ok(handle) => handle,
            // The closure (and with it the tee's sender) is dropped: the
            // tee sees its stream fail and ends.
            Err(e) => {
                let teed = tee_thread.and_then(|t| t.join().ok().flatten());
                return (Err(Fail::Layer(LayerError::Thread(e))), None, teed);
            }
        };
        let sink = ChunkSink::new(full_tx, free_rx);
        let produced = produce(TarProducer::new(sink, options));
        // `produced` has dropped the sender: the consumer ends either way,
        // and then the tee.
        let compressed = consumer.join();
        let teed = tee_thread.and_then(|t| t.join().ok().flatten());
        (produced, Some(compressed), teed)
    });

    let (diff_id, uncompressed_size, blob) = match (produced, compressed) {
        (Err(Fail::Layer(e)), _) => return (Err(e), teed),
        (_, Some(Ok(Err(Fail::Layer(e))))) => return (Err(e), teed),
        (Ok((diff_id, size)), Some(Ok(Ok(blob)))) => (diff_id, size, blob),
        (_, Some(Err(_))) => return (Err(LayerError::Internal("compression thread")), teed),
        // One side reports the other stopped but neither says why.
        _ => return (Err(LayerError::Internal("pipeline")), teed),
    };
    let (digest, size) = match blob.commit() {
        Ok(committed) => committed,
        Err(e) => return (Err(e.into()), teed),
    };
    let layer = LayerBlob {
        descriptor: Descriptor::new(options.compression.kind.media_type(), digest, size),
        diff_id,
        uncompressed_size,
    };
    (Ok(layer), teed)
}

/// Why one side of the pipeline stopped.
#[derive(Debug)]
enum Fail {
    /// This side failed; the error to report.
    Layer(LayerError),
    /// The other side went away: report its error instead.
    Stopped,
}

impl From<LayerError> for Fail {
    fn from(e: LayerError) -> Fail {
        Fail::Layer(e)
    }
}

/// Producer -> compressor messages. `End` tells a complete stream from one
/// whose producer gave up (the channel closes without it).
enum Msg {
    Chunk(Vec<u8>, usize),
    End,
}

/// The compression side: drains chunks into the encoder, passes buffers on
/// to the tee (or back to the producer), and returns the finished (not yet
/// committed) blob.
fn compress_chunks(
    chunks: Receiver<Msg>,
    free: Sender<Vec<u8>>,
    mut tee: Option<Sender<Msg>>,
    mut encoder: Encoder<BlobWriter>,
    progress: &(dyn Fn(u64) + Sync),
    write_error: &(dyn Fn(io::Error) -> LayerError + Sync),
) -> Result<BlobWriter, Fail> {
    let mut done = 0u64;
    loop {
        match chunks.recv() {
            Ok(Msg::Chunk(buf, len)) => {
                encoder
                    .write_all(&buf[..len])
                    .map_err(|e| Fail::Layer(write_error(e)))?;
                done += len as u64;
                progress(done);
                let unused = match &tee {
                    Some(t) => match t.send(Msg::Chunk(buf, len)) {
                        Ok(()) => None,
                        // The tee is gone (it never is before the end,
                        // since it drains): stop feeding it.
                        Err(crossbeam_channel::SendError(msg)) => {
                            tee = None;
                            match msg {
                                Msg::Chunk(buf, _) => Some(buf),
                                Msg::End => None,
                            }
                        }
                    },
                    None => Some(buf),
                };
                if let Some(buf) = unused {
                    // The producer may have finished and dropped its receiver.
                    let _ = free.send(buf);
                }
            }
            Ok(Msg::End) => break,
            // Dropping `tee` without `End` tells it the stream failed.
            Err(_) => return Err(Fail::Stopped),
        }
    }
    let blob = encoder.finish().map_err(|e| Fail::Layer(write_error(e)))?;
    if let Some(t) = tee {
        let _ = t.send(Msg::End);
    }
    Ok(blob)
}

/// The producer's output: fills fixed-size buffers, hashes them (the diff
/// ID) and passes them on. Reading file content goes straight into the
/// buffer, without an intermediate copy.
struct ChunkSink {
    buf: Vec<u8>,
    filled: usize,
    full: Sender<Msg>,
    free: Receiver<Vec<u8>>,
    hasher: Hasher,
    total: u64,
}

impl ChunkSink {
    fn new(full: Sender<Msg>, free: Receiver<Vec<u8>>) -> ChunkSink {
        ChunkSink {
            buf: vec![0; CHUNK],
            filled: 0,
            full,
            free,
            hasher: Hasher::new(),
            total: 0,
        }
    }

    fn put(&mut self, mut data: &[u8]) -> Result<(), Fail> {
        while !data.is_empty() {
            if self.filled == CHUNK {
                self.send()?;
            }
            let n = (CHUNK - self.filled).min(data.len());
            self.buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
        }
        Ok(())
    }

    fn zeros(&mut self, mut n: usize) -> Result<(), Fail> {
        while n > 0 {
            if self.filled == CHUNK {
                self.send()?;
            }
            let k = (CHUNK - self.filled).min(n);
            self.buf[self.filled..self.filled + k].fill(0);
            self.filled += k;
            n -= k;
        }
        Ok(())
    }

    /// Copies exactly `len` bytes of `file` (at `path`, for errors).
    fn copy_file(&mut self, file: &mut dyn Read, path: &Path, mut len: u64) -> Result<(), Fail> {
        while len > 0 {
            if self.filled == CHUNK {
                self.send()?;
            }
            let want =
                usize::try_from(len).map_or(CHUNK - self.filled, |l| l.min(CHUNK - self.filled));
            match file.read(&mut self.buf[self.filled..self.filled + want]) {
                Ok(0) => {
                    return Err(Fail::Layer(LayerError::Changed {
                        path: path.to_path_buf(),
                        what: "the file got shorter while it was read",
                    }));
                }
                Ok(n) => {
                    self.filled += n;
                    len -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::Layer(io_error("read", path)(e))),
            }
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Fail> {
        self.hasher.update(&self.buf[..self.filled]);
        self.total += self.filled as u64;
        // Fails only if the compressor has stopped (and returned its buffers).
        let next = self.free.recv().map_err(|_| Fail::Stopped)?;
        let full = std::mem::replace(&mut self.buf, next);
        self.full
            .send(Msg::Chunk(full, self.filled))
            .map_err(|_| Fail::Stopped)?;
        self.filled = 0;
        Ok(())
    }

    /// Sends what is left and the end marker; returns the diff ID and size.
    fn finish(mut self) -> Result<(Digest, u64), Fail> {
        if self.filled > 0 {
            self.send()?;
        }
        self.full.send(Msg::End).map_err(|_| Fail::Stopped)?;
        Ok((self.hasher.finish(), self.total))
    }
}

/// A directory being walked: its path, its remaining children (sorted) and
/// the length of its tar name prefix (`a/b/`) in [`TarProducer::name`].
struct Level {
    path: PathBuf,
    children: std::vec::IntoIter<OsString>,
    prefix_len: usize,
}

/// Walks the tree and writes tar entries into the sink.
struct TarProducer<'a> {
    sink: ChunkSink,
    options: &'a LayerOptions,
    /// Tar name of the entry being written, built up component by component.
    name: Vec<u8>,
    /// (dev, ino) of multiply linked non-directories -> first tar name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

/// One tar entry's header fields.
struct Header<'a> {
    name: &'a [u8],
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    link: &'a [u8],
    dev: (u32, u32),
}

mod kind {
    pub const REGULAR: u8 = b'0';
    pub const HARDLINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIRECTORY: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const PAX: u8 = b'x';
}

type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

impl<'a> TarProducer<'a> {
    fn new(sink: ChunkSink, options: &'a LayerOptions) -> TarProducer<'a> {
        TarProducer {
            sink,
            options,
            name: Vec::with_capacity(256),
            links: HashMap::new(),
        }
    }

    fn run(mut self, root: &Path) -> Result<(Digest, u64), Fail> {
        self.walk(root)?;
        self.sink.zeros(2 * BLOCK)?;
        self.sink.finish()
    }

    fn run_tree(mut self, tree: &LayerTree) -> Result<(Digest, u64), Fail> {
        for (path, entry) in tree.iter() {
            self.tree_entry(path, entry)?;
        }
        self.sink.zeros(2 * BLOCK)?;
        self.sink.finish()
    }

    /// Writes one [`LayerTree`] entry. Errors name the content's source
    /// when it has one, else the path in the layer.
    fn tree_entry(&mut self, path: String, e: &TreeEntry) -> Result<(), Fail> {
        let mut name = path.into_bytes();
        let mtime = match self.options.source_date_epoch {
            Some(epoch) => e.mtime.min(epoch),
            None => e.mtime,
        };
        let xattrs: Xattrs = e
            .xattrs
            .iter()
            .filter(|(n, _)| !skip_xattr(n))
            .cloned()
            .collect();
        let mut header = Header {
            name: b"",
            kind: kind::REGULAR,
            mode: e.mode & 0o7777,
            uid: u64::from(e.uid),
            gid: u64::from(e.gid),
            size: 0,
            mtime,
            link: b"",
            dev: (0, 0),
        };
        let in_layer = PathBuf::from(OsString::from_vec(name.clone()));
        let link;
        match &e.kind {
            TreeKind::Dir => {
                name.push(b'/');
                header.kind = kind::DIRECTORY;
            }
            TreeKind::File(data) => {
                if let Some(key) = e.link_key {
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        header.name = &name;
                        header.kind = kind::HARDLINK;
                        header.link = &first;
                        return self.header(&header, &[], &in_layer);
                    }
                    self.links.insert(key, name.clone());
                }
                header.name = &name;
                return self.tree_file(data, header, &xattrs, &in_layer);
            }
            TreeKind::Symlink(target) => {
                link = target.as_os_str().as_bytes().to_vec();
                header.kind = kind::SYMLINK;
                header.link = &link;
            }
            TreeKind::CharDevice { rdev } | TreeKind::BlockDevice { rdev } => {
                header.kind = if matches!(e.kind, TreeKind::CharDevice { .. }) {
                    kind::CHAR
                } else {
                    kind::BLOCK
                };
                header.dev = (rustix::fs::major(*rdev), rustix::fs::minor(*rdev));
            }
            TreeKind::Fifo => header.kind = kind::FIFO,
        }
        header.name = &name;
        self.header(&header, &xattrs, &in_layer)
    }

    fn tree_file(
        &mut self,
        data: &FileData,
        mut header: Header,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        in_layer: &Path,
    ) -> Result<(), Fail> {
        match data {
            FileData::Bytes(bytes) => {
                header.size = bytes.len() as u64;
                self.header(&header, xattrs, in_layer)?;
                self.sink.put(bytes)?;
            }
            FileData::Path(path) => {
                let mut file = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(path)
                    .map_err(io_error("open", path))?;
                let opened = file.metadata().map_err(io_error("look at", path))?;
                if !opened.is_file() {
                    return Err(Fail::Layer(LayerError::Changed {
                        path: path.clone(),
                        what: "it is no longer a regular file",
                    }));
                }
                header.size = opened.len();
                self.header(&header, xattrs, path)?;
                self.sink.copy_file(&mut file, path, header.size)?;
            }
        }
        self.sink.zeros(padding(header.size))
    }

    /// Depth-first walk with an explicit stack, so a deep tree cannot
    /// overflow the caller's (possibly small) thread stack.
    fn walk(&mut self, root: &Path) -> Result<(), Fail> {
        let mut stack = vec![Level {
            path: root.to_path_buf(),
            children: list_dir(root)?.into_iter(),
            prefix_len: 0,
        }];
        while let Some(top) = stack.last_mut() {
            let Some(child) = top.children.next() else {
                stack.pop();
                continue;
            };
            let path = top.path.join(&child);
            self.name.truncate(top.prefix_len);
            self.name.extend_from_slice(child.as_bytes());
            let meta = fs::symlink_metadata(&path).map_err(io_error("look at", &path))?;
            if meta.is_dir() {
                self.directory(&path, &meta)?;
                let children = list_dir(&path)?.into_iter();
                stack.push(Level {
                    path,
                    children,
                    prefix_len: self.name.len(),
                });
            } else {
                self.non_directory(&path, &meta, child.as_bytes())?;
            }
        }
        Ok(())
    }

    fn mtime(&self, meta: &Metadata) -> i64 {
        let mtime = meta.mtime();
        match self.options.source_date_epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }

    /// Writes a directory entry (`self.name` gains its trailing slash) and,
    /// for an opaque overlay directory, the opaque marker.
    fn directory(&mut self, path: &Path, meta: &Metadata) -> Result<(), Fail> {
        let (xattrs, opaque) = read_xattrs(path, true)?;
        self.name.push(b'/');
        let mtime = self.mtime(meta);
        let name = std::mem::take(&mut self.name);
        let written = self.header(
            &Header {
                name: &name,
                kind: kind::DIRECTORY,
                mode: meta.mode() & 0o7777,
                uid: u64::from(meta.uid()),
                gid: u64::from(meta.gid()),
                size: 0,
                mtime,
                link: b"",
                dev: (0, 0),
            },
            &xattrs,
            path,
        );
        self.name = name;
        written?;
        if opaque && self.options.overlay_whiteouts {
            let mut marker = self.name.clone();
            marker.extend_from_slice(OPAQUE_MARKER);
            self.whiteout(&marker, mtime, path)?;
        }
        Ok(())
    }

    /// An empty regular file, mode 0, owned by 0:0, as BuildKit writes
    /// whiteouts; `mtime` is the clamped mtime of what it stands for.
    fn whiteout(&mut self, name: &[u8], mtime: i64, path: &Path) -> Result<(), Fail> {
        self.header(
            &Header {
                name,
                kind: kind::REGULAR,
                mode: 0,
                uid: 0,
                gid: 0,
                size: 0,
                mtime,
                link: b"",
                dev: (0, 0),
            },
            &[],
            path,
        )
    }

    fn non_directory(&mut self, path: &Path, meta: &Metadata, base: &[u8]) -> Result<(), Fail> {
        let ft = meta.file_type();
        let mtime = self.mtime(meta);
        if ft.is_socket() {
            return Ok(());
        }
        // Before hard-link handling: overlayfs may share one inode between
        // all whiteouts, which must not turn into links to each other.
        if ft.is_char_device() && meta.rdev() == 0 && self.options.overlay_whiteouts {
            let mut name = self.name[..self.name.len() - base.len()].to_vec();
            name.extend_from_slice(WHITEOUT_PREFIX);
            name.extend_from_slice(base);
            return self.whiteout(&name, mtime, path);
        }
        let name = std::mem::take(&mut self.name);
        let written = self.non_directory_named(path, meta, mtime, &name);
        self.name = name;
        written
    }

    fn non_directory_named(
        &mut self,
        path: &Path,
        meta: &Metadata,
        mtime: i64,
        name: &[u8],
    ) -> Result<(), Fail> {
        let mut header = Header {
            name,
            kind: kind::REGULAR,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            size: 0,
            mtime,
            link: b"",
            dev: (0, 0),
        };
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                header.kind = kind::HARDLINK;
                header.link = &first;
                return self.header(&header, &[], path);
            }
            self.links.insert(key, name.to_vec());
        }

        let ft = meta.file_type();
        if ft.is_file() {
            return self.regular(path, meta, header);
        }
        let target;
        if ft.is_symlink() {
            target = fs::read_link(path).map_err(io_error("read the symlink", path))?;
            header.kind = kind::SYMLINK;
            header.link = target.as_os_str().as_bytes();
        } else if ft.is_char_device() || ft.is_block_device() {
            header.kind = if ft.is_char_device() {
                kind::CHAR
            } else {
                kind::BLOCK
            };
            let rdev = meta.rdev();
            header.dev = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
        } else if ft.is_fifo() {
            header.kind = kind::FIFO;
        } else {
            // Not a type Linux has; nothing sensible to archive.
            return Ok(());
        }
        let (xattrs, _) = read_xattrs(path, false)?;
        self.header(&header, &xattrs, path)
    }

    fn regular(&mut self, path: &Path, meta: &Metadata, mut header: Header) -> Result<(), Fail> {
        // O_NOFOLLOW: never archive what a symlink swapped in points to;
        // O_NONBLOCK: never hang on a FIFO swapped in after the lstat.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(io_error("open", path))?;
        let opened = file.metadata().map_err(io_error("look at", path))?;
        if opened.dev() != meta.dev() || opened.ino() != meta.ino() {
            return Err(Fail::Layer(LayerError::Changed {
                path: path.to_path_buf(),
                what: "it was replaced by another file",
            }));
        }
        // The open file's own size is what the read below sees.
        header.size = opened.len();
        let (xattrs, _) = read_xattrs(path, false)?;
        self.header(&header, &xattrs, path)?;
        self.sink.copy_file(&mut file, path, header.size)?;
        self.sink.zeros(padding(header.size))
    }

    /// Encodes one header, preceded by a PAX extended header when needed.
    fn header(
        &mut self,
        h: &Header,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        path: &Path,
    ) -> Result<(), Fail> {
        let mut block = [0u8; BLOCK];
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();

        let name_ok = if h.name.is_ascii() && h.name.len() <= NAME_LEN {
            block[..h.name.len()].copy_from_slice(h.name);
            true
        } else if let Some((prefix, rest)) = split_ustar(h.name) {
            block[..rest.len()].copy_from_slice(rest);
            block[345..345 + prefix.len()].copy_from_slice(prefix);
            true
        } else {
            false
        };
        if !name_ok {
            pax.push((b"path".to_vec(), h.name.to_vec()));
            put_truncated_ascii(&mut block[..NAME_LEN], h.name);
        }
        if h.link.is_ascii() && h.link.len() <= NAME_LEN {
            block[157..157 + h.link.len()].copy_from_slice(h.link);
        } else {
            pax.push((b"linkpath".to_vec(), h.link.to_vec()));
            put_truncated_ascii(&mut block[157..157 + NAME_LEN], h.link);
        }

        put_octal(&mut block[100..108], u64::from(h.mode));
        for (range, value, key) in [(108..116, h.uid, "uid"), (116..124, h.gid, "gid")] {
            if !put_octal(&mut block[range], value) {
                pax.push((key.as_bytes().to_vec(), value.to_string().into_bytes()));
            }
        }
        if !put_octal(&mut block[124..136], h.size) {
            pax.push((b"size".to_vec(), h.size.to_string().into_bytes()));
        }
        let mtime_ok = put_octal(
            &mut block[136..148],
            u64::try_from(h.mtime).unwrap_or(u64::MAX),
        );
        if !mtime_ok {
            pax.push((b"mtime".to_vec(), h.mtime.to_string().into_bytes()));
        }
        block[156] = h.kind;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        // Linux device numbers fit (minor < 2^20); PAX has no field for
        // larger ones, so refuse rather than write something wrong.
        if !put_octal(&mut block[329..337], u64::from(h.dev.0))
            || !put_octal(&mut block[337..345], u64::from(h.dev.1))
        {
            return Err(Fail::Layer(LayerError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "device number {}:{} does not fit a tar header; remove the device node from the tree",
                    h.dev.0, h.dev.1
                ),
            }));
        }
        for (name, value) in xattrs {
            if name.contains(&b'=') {
                return Err(Fail::Layer(LayerError::Unsupported {
                    path: path.to_path_buf(),
                    reason: format!(
                        "its extended attribute {:?} has '=' in its name, which a PAX record cannot hold; remove the attribute (setfattr -x) to include the file",
                        String::from_utf8_lossy(name)
                    ),
                }));
            }
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax.push((key, value.clone()));
        }
        set_checksum(&mut block);

        if !pax.is_empty() {
            self.pax_header(h.name, &mut pax)?;
        }
        self.sink.put(&block)
    }

    /// Writes a PAX extended header (type `x`) with `records`, sorted by key
    /// so equal input gives equal bytes.
    fn pax_header(&mut self, name: &[u8], records: &mut [(Vec<u8>, Vec<u8>)]) -> Result<(), Fail> {
        records.sort_unstable();
        let mut data = Vec::new();
        for (key, value) in records.iter() {
            // "<len> <key>=<value>\n", where <len> counts its own digits.
            let base = key.len() + value.len() + 3;
            let mut len = base + decimal_digits(base);
            if decimal_digits(len) > decimal_digits(base) {
                len = base + decimal_digits(len);
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(key);
            data.push(b'=');
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        // Readers ignore the extended header's own name; this is the usual
        // `<dir>/PaxHeaders.0/<base>`, cut to fit.
        let trimmed = name.strip_suffix(b"/").unwrap_or(name);
        let split = trimmed
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        let mut pax_name = trimmed[..split].to_vec();
        pax_name.extend_from_slice(b"PaxHeaders.0/");
        pax_name.extend_from_slice(&trimmed[split..]);

        let mut block = [0u8; BLOCK];
        put_truncated_ascii(&mut block[..NAME_LEN], &pax_name);
        put_octal(&mut block[100..108], 0);
        put_octal(&mut block[108..116], 0);
        put_octal(&mut block[116..124], 0);
        put_octal(&mut block[124..136], data.len() as u64);
        put_octal(&mut block[136..148], 0);
        block[156] = kind::PAX;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        set_checksum(&mut block);
        self.sink.put(&block)?;
        self.sink.put(&data)?;
        self.sink.zeros(padding(data.len() as u64))
    }
}

/// The names in a directory, sorted by their bytes.
fn list_dir(path: &Path) -> Result<Vec<OsString>, Fail> {
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(io_error("list", path))? {
        names.push(entry.map_err(io_error("list", path))?.file_name());
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Extended attributes to archive, sorted by name, and whether an overlay
/// opaque attribute is set to `y` (looked for only when `dir`).
fn read_xattrs(path: &Path, dir: bool) -> Result<(Xattrs, bool), Fail> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok((Vec::new(), false)),
        Err(e) => return Err(io_error("list the extended attributes of", path)(e).into()),
    };
    let mut out = Vec::new();
    let mut opaque = false;
    for name in names {
        let bytes = name.as_bytes();
        let is_opaque_attr = dir && OPAQUE_XATTRS.contains(&bytes);
        if !is_opaque_attr && skip_xattr(bytes) {
            continue;
        }
        let value = match xattr::get(path, &name) {
            Ok(Some(value)) => value,
            // Removed since the listing: treat as never there.
            Ok(None) => continue,
            Err(e) => return Err(io_error("read an extended attribute of", path)(e).into()),
        };
        if is_opaque_attr {
            opaque |= value == b"y";
        } else {
            out.push((bytes.to_vec(), value));
        }
    }
    out.sort_unstable();
    Ok((out, opaque))
}

/// Attributes that describe the host rather than the image: overlayfs
/// bookkeeping and SELinux labels (the runtime assigns those).
fn skip_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
        || name == b"security.selinux"
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == libc::ENOTSUP || code == libc::EOPNOTSUPP)
}

/// Splits a name that is too long for the ustar name field into prefix and
/// name at a slash, if the parts fit (ASCII only, as ustar requires).
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_LEN || !name.is_ascii() {
        return None;
    }
    // A trailing slash (directory) must stay in the name part.
    let mut end = name.len().min(PREFIX_LEN + 1);
    if end == name.len() && name[end - 1] == b'/' {
        end -= 1;
    }
    let i = name[..end].iter().rposition(|&b| b == b'/')?;
    let rest = &name[i + 1..];
    if i == 0 || rest.is_empty() || rest.len() > NAME_LEN || i > PREFIX_LEN {
        return None;
    }
    Some((&name[..i], rest))
}

/// Writes `value` as zero-padded octal followed by a NUL. If it does not
/// fit, writes 0 instead (a PAX record carries the value; readers such as
/// tar-rs reject an empty field) and returns false.
fn put_octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let fits = digits >= 22 || value >> (3 * digits) == 0;
    let mut v = if fits { value } else { 0 };
    for slot in field[..digits].iter_mut().rev() {
        *slot = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    field[digits] = 0;
    fits
}

/// ustar string fields hold ASCII: drop other bytes and cut to fit. Used
/// only where a PAX record carries the real value.
fn put_truncated_ascii(field: &mut [u8], value: &[u8]) {
    for (slot, &b) in field.iter_mut().zip(value.iter().filter(|b| b.is_ascii())) {
        *slot = b;
    }
}

fn set_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    put_octal(&mut block[148..155], sum);
    block[155] = b' ';
}

fn padding(len: u64) -> usize {
    ((BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64) as usize
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields() {
        let mut f = [0xffu8; 8];
        assert!(put_octal(&mut f, 0o755));
        assert_eq!(&f, b"0000755\0");
        assert!(put_octal(&mut f, 0o7777777));
        assert!(!put_octal(&mut f, 0o10000000));
        assert_eq!(&f, b"0000000\0", "overflow writes 0, not an empty field");
        let mut size = [0u8; 12];
        assert!(put_octal(&mut size, (8 << 30) - 1));
        assert!(!put_octal(&mut size, 8 << 30));
    }

    #[test]
    fn ustar_split() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let (prefix, name) = split_ustar(long.as_bytes()).unwrap();
        assert_eq!(prefix.len(), 120);
        assert_eq!(name.len(), 90);
        // Directory names keep their slash in the name part.
        let dir = format!("{}/{}/", "d".repeat(120), "e".repeat(20));
        let (prefix, name) = split_ustar(dir.as_bytes()).unwrap();
        assert_eq!(prefix.len(), 120);
        assert_eq!(name, format!("{}/", "e".repeat(20)).as_bytes());
        // No usable slash, or parts too long.
        assert!(split_ustar("x".repeat(150).as_bytes()).is_none());
        assert!(split_ustar(format!("a/{}", "b".repeat(101)).as_bytes()).is_none());
        assert!(split_ustar(format!("{}/b", "a".repeat(156)).as_bytes()).is_none());
    }

    /// Encodes one header the way the producer does and returns the bytes.
    fn encode(header: &Header) -> Vec<u8> {
        let (full_tx, full_rx) = bounded(BUFFERS);
        let (free_tx, free_rx) = bounded(BUFFERS);
        for _ in 0..BUFFERS {
            free_tx.send(vec![0; CHUNK]).unwrap();
        }
        let options = LayerOptions::default();
        let mut tar = TarProducer::new(ChunkSink::new(full_tx, free_rx), &options);
        tar.header(header, &[], Path::new("x")).unwrap();
        tar.sink.finish().unwrap();
        let mut bytes = Vec::new();
        for msg in full_rx.try_iter() {
            if let Msg::Chunk(buf, len) = msg {
                bytes.extend_from_slice(&buf[..len]);
            }
        }
        bytes
    }

    #[test]
    fn pax_carries_what_ustar_cannot() {
        let bytes = encode(&Header {
            name: b"big",
            kind: kind::REGULAR,
            mode: 0o644,
            uid: 1 << 30,
            gid: 5,
            size: 9 << 30,
            mtime: -1,
            link: b"",
            dev: (0, 0),
        });
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.size(), 9 << 30);
        assert_eq!(entry.path_bytes().as_ref(), b"big");
        let records: Vec<(String, String)> = entry
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.key().unwrap().to_owned(), r.value().unwrap().to_owned())
            })
            .collect();
        let expected = [
            ("mtime", "-1"),
            ("size", "9663676416"),
            ("uid", "1073741824"),
        ];
        assert_eq!(records, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        // The ustar fields that overflowed hold 0; the others their value.
        // (Extended header, one block of records, then the main header.)
        let main = &bytes[2 * BLOCK..3 * BLOCK];
        assert_eq!(bytes[156], kind::PAX);
        assert_eq!(&main[..4], b"big\0");
        assert_eq!(&main[108..116], b"0000000\0");
        assert_eq!(&main[116..124], b"0000005\0");
        assert_eq!(&main[124..136], b"00000000000\0");
        assert_eq!(&main[136..148], b"00000000000\0");

        // Everything fits: no extended header at all.
        let bytes = encode(&Header {
            name: b"small",
            kind: kind::REGULAR,
            mode: 0o4755,
            uid: 0o7777777,
            gid: 0,
            size: (8 << 30) - 1,
            mtime: 0o77777777777,
            link: b"",
            dev: (0, 0),
        });
        assert_eq!(bytes.len(), BLOCK);
        assert_eq!(bytes[156], kind::REGULAR);
        assert_eq!(&bytes[100..108], b"0004755\0");
        assert_eq!(&bytes[257..265], b"ustar\x0000");
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for base in [5usize, 8, 9, 10, 98, 99, 100, 997] {
            let mut len = base + decimal_digits(base);
            if decimal_digits(len) > decimal_digits(base) {
                len = base + decimal_digits(len);
            }
            assert_eq!(len, base + decimal_digits(len), "base {base}");
        }
    }
}
