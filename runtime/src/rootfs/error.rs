//! Errors of the merged layer view.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong reading or flattening a chain of layers.
/// `path` is an in-image path for lookups, a host path for I/O.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A filesystem call on a layer (or the destination) failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The in-image path does not exist.
    #[error("{path} does not exist in the image")]
    NotFound { path: String },

    /// The in-image path is not a directory where one is needed.
    #[error("{path} is not a directory in the image")]
    NotADirectory { path: String },

    /// The in-image path is not a regular file where one is needed.
    #[error("{path} is not a regular file in the image")]
    NotAFile { path: String },

    /// A file read whole is larger than the caller allows.
    #[error("{path} in the image is {size} bytes, more than the {limit} bytes berth reads from it")]
    TooLarge { path: String, size: u64, limit: u64 },

    /// Resolving the path followed too many symlinks.
    #[error(
        "too many levels of symbolic links resolving {path} in the image (more than 255): the image has a symlink loop there"
    )]
    SymlinkLoop { path: String },

    /// `flatten_into` was given a directory that already holds files.
    #[error(
        "{} is not empty: choose an empty or new directory as the output destination",
        path.display()
    )]
    DestNotEmpty { path: PathBuf },
}

/// Attaches what berth was doing, and on which path, to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, RootfsError>;
}

impl<T, E: Into<io::Error>> IoContext<T> for Result<T, E> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, RootfsError> {
        self.map_err(|e| RootfsError::Io {
            action,
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
}
