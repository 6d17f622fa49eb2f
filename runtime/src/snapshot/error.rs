//! Errors of the snapshot store.

use std::io;
use std::path::{Path, PathBuf};

use crate::layer::unpack::UnpackError;
use crate::store::{Digest, StoreError};

/// Everything that can go wrong while creating, listing or removing snapshots.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A filesystem call failed; `action` says what berth was doing.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The layer blob could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The layer blob could not be read or decompressed.
    #[error(
        "cannot read layer {layer}: {source}; the blob is corrupt or in an unsupported format: run 'berth prune' and pull or build the image again"
    )]
    Read {
        layer: Digest,
        #[source]
        source: io::Error,
    },

    /// The layer's tar could not be unpacked.
    #[error("cannot unpack layer {layer}: {source}")]
    Unpack {
        layer: Digest,
        #[source]
        source: UnpackError,
    },

    /// The tar stream of a layer being written could not be read (writing
    /// the layer failed).
    #[error("cannot read the layer being written: {source}")]
    ReadStream {
        #[source]
        source: io::Error,
    },

    /// The tar stream of a layer being written could not be unpacked.
    #[error("cannot unpack the layer being written: {source}")]
    UnpackStream {
        #[source]
        source: UnpackError,
    },

    /// What was unpacked while a layer was written is not that layer.
    #[error(
        "the snapshot unpacked while writing layer {expected} hashes to {actual}; nothing was kept. This is a bug in berth, please report it"
    )]
    StreamMismatch { expected: Digest, actual: Digest },

    /// The layer's uncompressed content is not what the image says.
    #[error(
        "layer {layer} does not match the image: its uncompressed content hashes to {actual}, but the image config lists diff ID {expected}; nothing was kept. The image is corrupt or was altered: pull or build it again"
    )]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
}

/// Attaches what berth was doing, and on which path, to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, SnapshotError>;
}

impl<T, E: Into<io::Error>> IoContext<T> for Result<T, E> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, SnapshotError> {
        self.map_err(|e| SnapshotError::Io {
            action,
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
}
