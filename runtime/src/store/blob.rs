//! Blobs: writing content into `blobs/sha256/` and reading it back.
//!
//! Owns the write path — stream into a temp file in `ingest/` while hashing,
//! check the digest, fsync, rename into place, fsync the directory — and the
//! read side: opening, sizing, verifying and removing blobs, and reading the
//! small JSON ones (manifests, indexes, configs) with a size cap.
//!
//! Memory never grows with blob size: writes go through a fixed buffer and
//! verification reads in fixed chunks. Only [`Store::read_small`] and
//! [`Store::read_json`] load a whole blob, and they refuse anything above
//! [`MAX_SMALL_BLOB`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use super::Store;
use super::digest::{Digest, Hasher};
use super::error::{IoContext, Result, StoreError};
use super::fs::{read_capped, sync_dir};

/// Largest blob [`Store::read_small`] loads: the 4 MiB manifest limit that
/// registries commonly enforce, which configs also stay well under.
pub const MAX_SMALL_BLOB: u64 = 4 << 20;

/// Buffer between callers' writes and the temp file: large enough that tiny
/// writes do not each become a syscall, fixed so memory does not grow.
const WRITE_BUFFER: usize = 256 * 1024;
/// Chunk size for streaming reads (verification).
const READ_CHUNK: usize = 64 * 1024;

/// Tells temp files of one process apart; the pid tells processes apart.
static INGEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A blob being written. Write the content through [`io::Write`], then call
/// [`commit`](BlobWriter::commit); dropping it without committing discards
/// the temp file and stores nothing.
#[derive(Debug)]
pub struct BlobWriter {
    /// `None` only once `commit` has taken it.
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    blobs_dir: PathBuf,
    hasher: Hasher,
    written: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
    /// Set once the temp file has been renamed, so `Drop` leaves it alone.
    renamed: bool,
    /// A resumable download's partial file survives an abandoned writer, so
    /// the next attempt (or the next process) continues after it.
    keep_partial: bool,
    /// The lock that makes one writer at a time own a resumable download.
    _lock: Option<File>,
}

impl BlobWriter {
    /// Also requires the content to be exactly `size` bytes: writes past it
    /// fail at once (a misbehaving source cannot fill the disk) and a short
    /// blob fails at commit.
    pub fn with_size(mut self, size: u64) -> BlobWriter {
        self.expected_size = Some(size);
        self
    }

    /// Bytes accepted so far (for progress reports), including what a
    /// resumed download already held.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Throws away everything written so far and starts the blob again.
    pub fn restart(&mut self) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already finished"))?;
        file.flush()?;
        file.get_mut().set_len(0)?;
        file.get_mut().seek(SeekFrom::Start(0))?;
        self.hasher = Hasher::new();
        self.written = 0;
        Ok(())
    }

    /// Finishes the blob: checks digest (and size, if announced), fsyncs, and
    /// moves it to `blobs/sha256/<hex>`. Returns its digest and size.
    ///
    /// On a mismatch nothing is kept: the temp file is removed and the error
    /// names both digests. If the blob is already stored (another writer got
    /// there first) the temp file is dropped and the stored one is used.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        // Content that fails its checks must not be resumed either.
        self.keep_partial = false;
        let Some(buffered) = self.file.take() else {
            // Unreachable through the public API: `commit` consumes the writer.
            return Err(StoreError::io(
                "finish",
                &self.temp,
                io::Error::other("blob writer already finished"),
            ));
        };
        let file = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .at("write", &self.temp)?;
        let digest = std::mem::take(&mut self.hasher).finish();
        if let Some(expected) = self.expected_size.filter(|&s| s != self.written) {
            return Err(StoreError::SizeMismatch {
                digest: self.expected,
                expected,
                actual: self.written,
            });
        }
        if let Some(expected) = self.expected.filter(|&e| e != digest) {
            return Err(StoreError::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        // Content must be on disk before its name is: otherwise a crash
        // could leave a complete-looking name over missing data.
        file.sync_all().at("fsync", &self.temp)?;
        drop(file);

        let dest = self.blobs_dir.join(digest.hex());
        if dest.try_exists().at("look at", &dest)? {
            // Same name, same content. Refresh its mtime so a concurrent gc
            // with a grace period sees it as just written. Best effort: a
            // failure only narrows that window, it loses no data.
            let _ = File::open(&dest).and_then(|f| f.set_modified(SystemTime::now()));
            return Ok((digest, self.written));
        }
        fs::rename(&self.temp, &dest).at("move blob into place at", &dest)?;
        self.renamed = true;
        sync_dir(&self.blobs_dir)?;
        Ok((digest, self.written))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already finished"))?;
        if let Some(limit) = self.expected_size
            && self.written.saturating_add(buf.len() as u64) > limit
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob is longer than the {limit} bytes announced"),
            ));
        }
        let n = file.write(buf)?;
        // Hash exactly what was accepted: a short write leaves the rest to the caller.
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        drop(self.file.take());
        // An empty partial file is worth nothing to resume.
        if !self.renamed && (!self.keep_partial || self.written == 0) {
            // Nothing useful can be done about a failure here; gc removes
            // stale ingest files later.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Store {
    /// Starts writing a blob. With `expected`, [`BlobWriter::commit`] refuses
    /// content that hashes to anything else.
    pub fn writer(&self, expected: Option<Digest>) -> Result<BlobWriter> {
        let ingest = self.ingest_dir();
        let pid = std::process::id();
        let mut attempt = 0;
        let (file, temp) = loop {
            let seq = INGEST_SEQ.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let temp = ingest.join(format!("{pid}-{seq}-{nanos:09}.part"));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(f) => break (f, temp),
                // A dead process with our pid may have left this name behind.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(e).at("create temp file", &temp),
            }
        };
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            temp,
            blobs_dir: self.blobs_dir(),
            hasher: Hasher::new(),
            written: 0,
            expected,
            expected_size: None,
            renamed: false,
            keep_partial: false,
            _lock: None,
        })
    }

    /// Starts or resumes writing the blob `digest` under a fixed name in
    /// `ingest/`: what an interrupted download left there is kept (and
    /// rehashed), and [`BlobWriter::bytes_written`] says where to continue.
    /// Waits while another writer (thread or process) resumes the same
    /// blob; check [`has_blob`](Store::has_blob) afterwards, that writer
    /// may have finished it.
    pub fn resumable_writer(&self, digest: &Digest) -> Result<BlobWriter> {
        let ingest = self.ingest_dir();
        let lock_path = ingest.join(format!("{}.lock", digest.hex()));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .at("open lock file", &lock_path)?;
        loop {
            match rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io::Error::from(e)).at("lock", &lock_path),
            }
        }
        let temp = ingest.join(format!("{}.partial", digest.hex()));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&temp)
            .at("open", &temp)?;
        let mut hasher = Hasher::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; READ_CHUNK];
        file.seek(SeekFrom::Start(0)).at("read", &temp)?;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).at("read", &temp),
            };
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            temp,
            blobs_dir: self.blobs_dir(),
            hasher,
            written,
            expected: Some(*digest),
            expected_size: None,
            renamed: false,
            keep_partial: true,
            _lock: Some(lock),
        })
    }

    /// Stores a small blob held in memory (a manifest, config or index).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let mut w = self.writer(None)?;
        w.write_all(bytes).at("write", &w.temp)?;
        Ok(w.commit()?.0)
    }

    /// Whether the blob is stored.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        path.try_exists().at("look at", &path)
    }

    /// The stored blob's size in bytes.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::BlobNotFound {
                digest: *digest,
                path,
            }),
            Err(e) => Err(e).at("look at", &path),
        }
    }

    /// Opens the blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::BlobNotFound {
                digest: *digest,
                path,
            }),
            Err(e) => Err(e).at("open", &path),
        }
    }

    /// Deletes the blob; `Ok(false)` if it was not there. Does not check
    /// whether a name still needs it: that is [`gc`](Store::gc)'s job.
    pub fn remove_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.blobs_dir())?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).at("remove", &path),
        }
    }

    /// Rehashes the stored blob, streaming, and returns its size; a blob whose
    /// content no longer matches its name is a [`StoreError::CorruptBlob`].
    pub fn verify_blob(&self, digest: &Digest) -> Result<u64> {
        let mut file = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).at("read", &path),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let actual = hasher.finish();
        if actual != *digest {
            return Err(StoreError::CorruptBlob {
                digest: *digest,
                actual,
            });
        }
        Ok(size)
    }

    /// Reads a whole blob of at most [`MAX_SMALL_BLOB`] bytes, checking that
    /// it hashes to its digest (cheap at this size, and it keeps a corrupt
    /// manifest from being trusted).
    pub fn read_small(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut file = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let too_large = |size| StoreError::TooLarge {
            digest: *digest,
            size,
            limit: MAX_SMALL_BLOB,
        };
        let size = file.metadata().at("look at", &path)?.len();
        if size > MAX_SMALL_BLOB {
            return Err(too_large(size));
        }
        // The cap holds even if the file grew after the size check.
        let bytes = read_capped(&mut file, MAX_SMALL_BLOB)
            .at("read", &path)?
            .ok_or_else(|| too_large(MAX_SMALL_BLOB + 1))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::CorruptBlob {
                digest: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads a small blob (see [`read_small`](Store::read_small)) and parses it as JSON.
    pub fn read_json<T: DeserializeOwned>(&self, digest: &Digest) -> Result<T> {
        let bytes = self.read_small(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadJson {
            digest: *digest,
            source,
        })
    }
}
