//! The build engine: runs a Dockerfile's stages against a context and the
//! local store and assembles the image.
//!
//! BuildKit's layering, in-process: the front end ([`crate::dockerfile`])
//! gives typed stages; [`graph`] decides which stages the target needs and
//! in what order; [`stage`] dispatches each instruction (metadata steps
//! change the config, [`copy`] steps produce layers); [`crate::cache`]
//! answers steps it has seen; [`assemble`] writes the config and manifest.
//! Independent stages build concurrently, one thread each.

mod assemble;
mod copy;
mod error;
mod fetch;
mod graph;
mod ownership;
pub mod platform;
mod run;
mod session;
mod stage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use berth_registry::reference::Reference;
use berth_runtime::image::Image;
use berth_runtime::layer::compress::CompressionSpec;
use berth_runtime::store::{Digest, Store};

pub use error::BuildError;
pub use platform::Platform;
pub use run::SecretSource;

use crate::progress::Progress;

/// Everything a build needs besides the store.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The build context directory.
    pub context_dir: PathBuf,
    /// The Dockerfile's bytes.
    pub dockerfile: Vec<u8>,
    /// Where the Dockerfile is (for `<Dockerfile>.dockerignore`); `None`
    /// when it came from stdin.
    pub dockerfile_path: Option<PathBuf>,
    /// `--build-arg NAME=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE`; the last stage when `None`.
    pub target: Option<String>,
    /// `--platform`; the host's when `None`.
    pub platform: Option<Platform>,
    /// `--no-cache`: build every step anew (results are still cached).
    pub no_cache: bool,
    /// `--no-cache-filter STAGE`: stages to build anew.
    pub no_cache_filter: Vec<String>,
    /// `--label KEY=VALUE` for the final image.
    pub labels: BTreeMap<String, String>,
    pub compression: CompressionSpec,
    /// `SOURCE_DATE_EPOCH`: timestamps in the image and its layers are
    /// clamped to it, for reproducible builds.
    pub source_date_epoch: Option<i64>,
    /// `-t NAME`: names given to the image in the store.
    pub tags: Vec<Reference>,
    /// The program RUN steps re-execute as their sandbox's init (berth
    /// itself); RUN fails without it.
    pub init_exe: Option<PathBuf>,
    /// `--secret id=ID,src=FILE|env=VAR`, by id.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--allow security.insecure`: RUN --security=insecure may run.
    pub allow_insecure: bool,
    /// Set (by a signal handler, say) to stop the build: running steps are
    /// killed, and the build returns [`BuildError::Cancelled`].
    pub cancel: Arc<AtomicBool>,
    /// Pulls FROM and `--from` images the store lacks; without it they
    /// must be in the store already.
    pub registry: Option<Arc<berth_registry::Client>>,
    /// `--pull`: fetch every FROM image from its registry even when the
    /// store has it, so a moved tag is followed.
    pub pull: bool,
}

impl BuildOptions {
    /// Options for building `context_dir` with `dockerfile`, defaults for
    /// everything else.
    pub fn new(context_dir: PathBuf, dockerfile: Vec<u8>) -> BuildOptions {
        BuildOptions {
            context_dir,
            dockerfile,
            dockerfile_path: None,
            build_args: BTreeMap::new(),
            target: None,
            platform: None,
            no_cache: false,
            no_cache_filter: Vec::new(),
            labels: BTreeMap::new(),
            compression: CompressionSpec::default(),
            source_date_epoch: None,
            tags: Vec::new(),
            init_exe: None,
            secrets: BTreeMap::new(),
            allow_insecure: false,
            cancel: Arc::new(AtomicBool::new(false)),
            registry: None,
            pull: false,
        }
    }
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The image as stored (manifest, config).
    pub image: Image,
    /// The image ID: the config's digest, as Docker reports it.
    pub id: Digest,
    /// Layers of the final image, bottom first, with their snapshots'
    /// diff IDs (for `--output type=local`).
    pub layers: Vec<crate::cache::LayerRef>,
}

/// Builds the image `options` describe into `store`, reporting progress to
/// `progress`. Nothing is named unless `options.tags` says so; a failed
/// build names nothing and leaves only complete blobs behind.
pub fn build(
    store: &Store,
    options: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildOutcome, BuildError> {
    session::Session::run(store, options, progress)
}

/// The merged root filesystem of a built image, written into `dest` (which
/// must exist and be empty): `--output type=local`.
pub fn export_rootfs(
    store: &Store,
    layers: &[crate::cache::LayerRef],
    dest: &std::path::Path,
) -> Result<(), BuildError> {
    let fs = session::rootfs_of(store, layers)?;
    fs.flatten_into(dest)
        .map_err(|e| BuildError::Output(format!("cannot write the root filesystem: {e}")))
}
