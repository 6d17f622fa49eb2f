//! The local content store: an OCI image layout on disk.
//!
//! One directory (see [`default_root`]) holds every blob berth has pulled or
//! built under `blobs/sha256/<hex>`, and the local image names in
//! `index.json`. It is a valid OCI image layout, so `skopeo`, `umoci` and
//! `crane` can read it directly.
//!
//! Guarantees:
//! - a blob appears under its name only complete, fsynced and verified
//!   against its digest ([`BlobWriter`]), so a crash never leaves half a blob;
//! - `index.json` is replaced atomically and updated under an advisory lock,
//!   so concurrent berth processes never lose each other's names and readers
//!   always see valid JSON;
//! - memory use does not depend on blob size.
//!
//! Modules, one concern each:
//! - [`digest`]: `sha256:<hex>` digests and the streaming hasher;
//! - `layout`: where the store lives and the files that make it an OCI layout;
//! - `blob`: writing, reading, verifying and removing blobs;
//! - `index`: image names in `index.json` and the descriptor types;
//! - `gc`: removing blobs no name or root reaches;
//! - [`media`]: the OCI media types the store acts on;
//! - `lock` and `fs`: the store lock and durable file operations;
//! - `error`: [`StoreError`].
//!
//! ```no_run
//! use std::io::Write;
//! use berth_runtime::store::{Descriptor, Store, media};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(&berth_runtime::store::default_root()?)?;
//! let mut w = store.writer(None)?;
//! w.write_all(b"layer bytes...")?;
//! let (layer, size) = w.commit()?;
//! // ... write config and manifest the same way, then name the manifest:
//! # let manifest = layer; let manifest_size = size;
//! store.set_name("app:latest", Descriptor::new(media::OCI_IMAGE_MANIFEST, manifest, manifest_size))?;
//! # Ok(()) }
//! ```

mod blob;
pub mod digest;
mod error;
mod fs;
mod gc;
mod index;
mod layout;
mod lock;
pub mod media;

use std::path::{Path, PathBuf};

pub use blob::{BlobWriter, MAX_SMALL_BLOB};
pub use digest::{Digest, DigestError, Hasher};
pub use error::{Result, StoreError};
pub use gc::{GcOptions, GcReport};
pub use index::{Descriptor, Platform};
pub use layout::{
    BLOBS_DIR, IMAGE_LAYOUT_VERSION, INDEX_FILE, INGEST_DIR, LOCK_FILE, OCI_LAYOUT_FILE,
    default_root,
};

use error::IoContext;
use lock::StoreLock;

/// A handle on one store directory. Cheap to clone; holds no open files, so
/// any number of handles and processes may use the same directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating it (and the directory) if missing.
    ///
    /// Refuses a non-empty directory that is not already an OCI layout, so a
    /// mistyped path does not fill someone's directory with blobs. Clears
    /// what an interrupted `index.json` update may have left behind.
    pub fn open(root: &Path) -> Result<Store> {
        // Absolute, so a later chdir of the process cannot move the store.
        let root = std::path::absolute(root).at("resolve the path", root)?;
        layout::init(&root)?;
        Ok(Store { root })
    }

    /// Opens the store at [`default_root`].
    pub fn open_default() -> Result<Store> {
        Store::open(&default_root()?)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it is stored).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.relative_path())
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS_DIR).join(digest::SHA256)
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join(INGEST_DIR)
    }

    /// Takes the store lock (see the `lock` module): held while alive.
    fn lock(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.root.join(LOCK_FILE))
    }
}
