//! Tar exports: the OCI layout (and for Docker, `manifest.json` and
//! `repositories`) streamed into one archive.
//!
//! Archives are deterministic — entries sorted by path, mode 0644/0755,
//! owner 0:0, mtime 0, no user or group names — so exporting the same image
//! twice gives identical bytes. Blobs are streamed from the store through a
//! hasher with a fixed buffer, never loaded whole.

use std::fs;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use berth_runtime::store::{Digest, Hasher, IMAGE_LAYOUT_VERSION, Store};

use super::plan::{Blob, Plan, blob_path};
use super::temp::{self, Temp};
use super::{ExportError, io_err};

/// Output buffer: large enough that tar's 512-byte headers and padding do
/// not each become a syscall.
const BUFFER: usize = 256 * 1024;

/// Which archive layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavour {
    /// An OCI image layout.
    Oci,
    /// An OCI image layout plus what `docker load` reads.
    Docker,
}

/// Writes the archive to `dest`, or to standard output for `-`.
pub(super) fn write(
    store: &Store,
    plan: &Plan,
    dest: &Path,
    flavour: Flavour,
) -> Result<(), ExportError> {
    if dest == Path::new("-") {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            return Err(ExportError::StdoutIsTerminal);
        }
        let shown = Path::new("standard output");
        let mut out = BufWriter::with_capacity(BUFFER, stdout.lock());
        write_archive(store, plan, flavour, &mut out, shown)?;
        return out.flush().map_err(io_err("write to", shown));
    }

    if dest.is_dir() {
        return Err(ExportError::DestIsDirectory {
            path: dest.to_path_buf(),
        });
    }
    let parent = temp::parent_of(dest)?;
    let (temp, file) = Temp::file(&parent, dest)?;
    let mut out = BufWriter::with_capacity(BUFFER, file);
    write_archive(store, plan, flavour, &mut out, dest)?;
    let file = out
        .into_inner()
        .map_err(|e| io_err("write", temp.path())(e.into_error()))?;
    // The archive must be on disk before its name is.
    file.sync_all().map_err(io_err("fsync", temp.path()))?;
    drop(file);
    temp.persist(dest)?;
    temp::sync_dir(&parent)
}

fn write_archive(
    store: &Store,
    plan: &Plan,
    flavour: Flavour,
    out: &mut dyn Write,
    dest: &Path,
) -> Result<(), ExportError> {
    let mut tar = tar::Builder::new(Gate {
        inner: out,
        closed: false,
    });
    let result = append_all(store, plan, flavour, &mut tar, dest);
    if result.is_err() {
        // The builder finishes the archive when dropped: keep it from
        // appending an end-of-archive marker that would make a truncated
        // stream on standard output look complete.
        tar.get_mut().closed = true;
        return result;
    }
    tar.into_inner().map_err(io_err("write", dest))?;
    Ok(())
}

type Tar<'a> = tar::Builder<Gate<'a>>;

fn append_all(
    store: &Store,
    plan: &Plan,
    flavour: Flavour,
    tar: &mut Tar<'_>,
    dest: &Path,
) -> Result<(), ExportError> {
    let write_err = |e| io_err("write", dest)(e);
    // In sorted path order: blobs/…, index.json, manifest.json, oci-layout,
    // repositories.
    append_dir(tar, "blobs/").map_err(write_err)?;
    append_dir(tar, "blobs/sha256/").map_err(write_err)?;
    for blob in &plan.blobs {
        append_blob(store, tar, blob, dest)?;
    }
    append_file(tar, "index.json", &plan.index_json()?).map_err(write_err)?;
    if flavour == Flavour::Docker {
        append_file(tar, "manifest.json", &plan.docker_manifest).map_err(write_err)?;
    }
    let layout = format!("{{\"imageLayoutVersion\":\"{IMAGE_LAYOUT_VERSION}\"}}");
    append_file(tar, "oci-layout", layout.as_bytes()).map_err(write_err)?;
    if flavour == Flavour::Docker {
        append_file(tar, "repositories", &plan.repositories).map_err(write_err)?;
    }
    Ok(())
}

/// The archive's output, which can be closed so nothing more reaches it.
struct Gate<'a> {
    inner: &'a mut dyn Write,
    closed: bool,
}

impl Write for Gate<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Err(io::Error::other("export abandoned"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.inner.flush()
    }
}

/// A header with everything that could vary between runs fixed.
fn header(path: &str, size: u64, kind: tar::EntryType) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

fn append_dir(tar: &mut Tar<'_>, path: &str) -> io::Result<()> {
    tar.append(&header(path, 0, tar::EntryType::Directory)?, io::empty())
}

fn append_file(tar: &mut Tar<'_>, path: &str, data: &[u8]) -> io::Result<()> {
    let h = header(path, data.len() as u64, tar::EntryType::Regular)?;
    tar.append(&h, data)
}

fn append_blob(
    store: &Store,
    tar: &mut Tar<'_>,
    blob: &Blob,
    dest: &Path,
) -> Result<(), ExportError> {
    let source = store.blob_path(&blob.digest);
    let file = store.open_blob(&blob.digest)?;
    let h = header(&blob_path(&blob.digest), blob.size, tar::EntryType::Regular)
        .map_err(io_err("write", dest))?;
    // Never read past the announced size: the header is already written.
    let mut reader = Verifying::new(file.take(blob.size));
    if let Err(e) = tar.append(&h, &mut reader) {
        return Err(match reader.read_failed {
            true => io_err("read", &source)(e),
            false => io_err("write", dest)(e),
        });
    }
    reader.check(blob, &source)
}

/// Hashes and counts what passes through, and remembers whether a read (as
/// opposed to the archive's write) failed.
pub(super) struct Verifying<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
    pub(super) read_failed: bool,
}

impl<R: Read> Verifying<R> {
    pub(super) fn new(inner: R) -> Self {
        Verifying {
            inner,
            hasher: Hasher::new(),
            count: 0,
            read_failed: false,
        }
    }

    /// Fails unless exactly the blob's bytes went through.
    pub(super) fn check(self, blob: &Blob, source: &Path) -> Result<(), ExportError> {
        if self.count != blob.size {
            // The file changed size since the plan checked it.
            return Err(ExportError::SizeMismatch {
                what: blob.what,
                digest: blob.digest,
                expected: blob.size,
                actual: fs::metadata(source).map_or(self.count, |m| m.len()),
            });
        }
        let actual: Digest = self.hasher.finish();
        if actual != blob.digest {
            return Err(ExportError::CorruptBlob {
                digest: blob.digest,
                actual,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for Verifying<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.read_failed = true;
                }
                Err(e)
            }
        }
    }
}
