//! Errors of the local content store.
//!
//! Every message names the file or digest involved and, where the user can do
//! something about it, what to do: the CLI prints these as they are.

use std::io;
use std::path::{Path, PathBuf};

use super::digest::{Digest, DigestError};

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the local content store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem call failed; `action` says what berth was doing.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A digest string was malformed or used an unsupported algorithm.
    #[error(transparent)]
    Digest(#[from] DigestError),

    /// No store directory could be chosen from the environment.
    #[error(
        "cannot choose a store directory: neither BERTH_ROOT, XDG_DATA_HOME nor HOME is set; set BERTH_ROOT to a directory berth may use"
    )]
    NoDefaultRoot,

    /// The root exists and holds other files, but is not an OCI layout.
    #[error(
        "{} is not empty and is not a berth store (it has no oci-layout file): point BERTH_ROOT at an empty directory or an existing OCI image layout",
        path.display()
    )]
    NotAStore { path: PathBuf },

    /// The `oci-layout` file is unreadable or names a version berth does not know.
    #[error(
        "{} is not an OCI image layout berth can use ({reason}): expected {{\"imageLayoutVersion\":\"1.0.0\"}}",
        path.display()
    )]
    BadLayout { path: PathBuf, reason: String },

    /// `index.json` is not a valid OCI image index.
    #[error(
        "{} is not a valid OCI image index ({reason}): restore it from a backup, or move it away to start with no image names (blobs are kept)",
        path.display()
    )]
    BadIndex { path: PathBuf, reason: String },

    /// A blob that should be in the store is not.
    #[error("blob {digest} is not in the store ({}): pull or build the image again", path.display())]
    BlobNotFound { digest: Digest, path: PathBuf },

    /// A stored blob no longer hashes to its name.
    #[error(
        "blob {digest} is corrupt (content hashes to {actual}): run 'berth prune' to drop it and pull or build again"
    )]
    CorruptBlob { digest: Digest, actual: Digest },

    /// Content written to a [`BlobWriter`](super::BlobWriter) did not hash to the expected digest.
    #[error(
        "content does not match its digest: expected {expected}, got {actual}; nothing was stored (the source sent different bytes than it announced: retry, or check the source)"
    )]
    DigestMismatch { expected: Digest, actual: Digest },

    /// Content written to a [`BlobWriter`](super::BlobWriter) had another size than announced.
    #[error(
        "content has the wrong size: expected {expected} bytes, got {actual}{}; nothing was stored",
        digest.as_ref().map(|d| format!(" for {d}")).unwrap_or_default()
    )]
    SizeMismatch {
        digest: Option<Digest>,
        expected: u64,
        actual: u64,
    },

    /// A blob read as JSON is larger than small-JSON reads allow.
    #[error(
        "blob {digest} is {size} bytes, more than the {limit} bytes allowed for a manifest, index or config: it is not one"
    )]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },

    /// A blob read as JSON does not parse into the requested type.
    #[error("blob {digest} is not the JSON document expected here: {source}")]
    BadJson {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },

    /// An image name given to `set_name`/`remove_name` is unusable.
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// A name in `index.json` points at an entry berth cannot use.
    #[error(
        "the entry for {name:?} in {} is not usable ({reason}): name the image again with 'berth tag' or pull it again",
        path.display()
    )]
    BadEntry {
        name: String,
        path: PathBuf,
        reason: String,
    },

    /// `set_name` was given a descriptor whose blob is missing or has another size.
    #[error("cannot name {name:?}: {reason}; write the manifest into the store before naming it")]
    DanglingName { name: String, reason: String },

    /// An image's manifest or index cannot be used as an image.
    #[error("{what} is not a usable image: {reason}")]
    BadImage { what: String, reason: String },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Attaches what berth was doing, and on which path, to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| StoreError::io(action, path, e))
    }
}
