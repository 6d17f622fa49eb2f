//! Image exporters: writing one image from the local store out in a form
//! other tools load.
//!
//! Three targets ([`ExportTarget`]):
//! - an OCI image layout directory (`skopeo copy oci:DIR:TAG …`,
//!   `umoci --image DIR:TAG`), added to if it already holds a layout;
//! - the same layout streamed into a tar archive (`oci-archive:`);
//! - a tar that `docker load` accepts: the OCI layout plus Docker's
//!   `manifest.json` and `repositories`.
//!
//! Submodules, one concern each:
//! - `plan`: what an export contains — the blobs, `index.json` entries,
//!   Docker's `manifest.json` and `repositories` — checked against the store
//!   before anything is written;
//! - `dir`: the OCI directory writer (hardlinks from the store, else copies);
//! - `archive`: the deterministic tar writer (to a file or standard output).
//!
//! Guarantees: memory does not grow with layer size (blobs are streamed);
//! a failed export leaves no destination file behind (tars go to a temp file
//! beside the destination and are renamed at the end; a new OCI directory is
//! assembled under a temp name); copied blobs are re-hashed on the way, so a
//! corrupt store blob fails the export instead of producing a broken image.

mod archive;
mod dir;
mod plan;
mod temp;

use std::io;
use std::path::{Path, PathBuf};

use berth_registry::reference::Reference;
use berth_runtime::image::Image;
use berth_runtime::store::{Digest, Store, StoreError};

/// Annotation containerd (and Docker's containerd image store) reads for an
/// image's full name in an OCI layout's `index.json`.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// Where, and in which format, an image is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTarget {
    /// An OCI image layout directory, created or added to.
    OciDir(PathBuf),
    /// An OCI image layout in a tar archive; `-` is standard output.
    OciTar(PathBuf),
    /// A `docker load` archive; `-` is standard output.
    DockerTar(PathBuf),
}

impl ExportTarget {
    /// The destination path (`-` for standard output).
    pub fn path(&self) -> &Path {
        match self {
            ExportTarget::OciDir(p) | ExportTarget::OciTar(p) | ExportTarget::DockerTar(p) => p,
        }
    }
}

/// Why an export failed. Nothing is left at the destination when one is
/// returned, except blobs already added to an existing OCI layout (complete,
/// content-addressed files that its `index.json` does not mention yet).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A filesystem call failed; `action` says what berth was doing.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Reading the image from the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A blob the image's manifest lists is not in the store.
    #[error("the image's {what} {digest} is not in the store: pull or build the image again")]
    MissingBlob { what: &'static str, digest: Digest },

    /// A stored blob has another size than the manifest says.
    #[error(
        "the image's {what} {digest} is {actual} bytes in the store but the manifest says {expected}: run 'berth prune', then pull or build the image again"
    )]
    SizeMismatch {
        what: &'static str,
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    /// A stored blob no longer hashes to its digest.
    #[error(
        "blob {digest} in the store is corrupt (its content hashes to {actual}): run 'berth prune', then pull or build the image again"
    )]
    CorruptBlob { digest: Digest, actual: Digest },

    /// The destination directory holds something other than an OCI layout.
    #[error(
        "{} exists and is not an OCI image layout (it has no oci-layout file): export into a new or empty directory, or into an existing OCI layout",
        path.display()
    )]
    NotALayout { path: PathBuf },

    /// The destination's OCI layout files cannot be used.
    #[error("{} is not an OCI image layout berth can add to ({reason})", path.display())]
    BadLayout { path: PathBuf, reason: String },

    /// A tar destination names a directory.
    #[error(
        "{} is a directory: give a file name for the archive, or export as an OCI directory",
        path.display()
    )]
    DestIsDirectory { path: PathBuf },

    /// A tar destination of `-` while standard output is a terminal.
    #[error(
        "refusing to write a tar archive to a terminal: redirect standard output to a file or pipe, or give a file name"
    )]
    StdoutIsTerminal,
}

pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ExportError {
    let path = path.to_path_buf();
    move |source| ExportError::Io {
        action,
        path,
        source,
    }
}

/// Writes `image` (already in `store`) to `target`, named `names` there.
///
/// Names are given in full; the first one is the image's primary name. In an
/// OCI layout each name gets an `index.json` entry whose
/// `org.opencontainers.image.ref.name` is the tag (what `skopeo oci:DIR:TAG`
/// and `umoci --image DIR:TAG` look up) and whose `io.containerd.image.name`
/// is the full name (what `docker load` and `ctr import` name the image).
/// With no names the image gets one entry without annotations. In a Docker
/// archive the tagged names become `RepoTags`, in familiar form (`app:1`).
///
/// Layers are written as stored (still compressed): `docker load`,
/// `skopeo` and `umoci` decompress them.
pub fn export_image(
    store: &Store,
    image: &Image,
    names: &[Reference],
    target: &ExportTarget,
) -> Result<(), ExportError> {
    let plan = plan::Plan::new(store, image, names)?;
    match target {
        ExportTarget::OciDir(dir) => dir::write(store, &plan, dir),
        ExportTarget::OciTar(dest) => archive::write(store, &plan, dest, archive::Flavour::Oci),
        ExportTarget::DockerTar(dest) => {
            archive::write(store, &plan, dest, archive::Flavour::Docker)
        }
    }
}
