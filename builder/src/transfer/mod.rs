//! Moving images between the local store and registries: `berth pull`
//! ([`pull`]), `berth push` ([`push`]), and FROM images that are not in the
//! store yet. The protocol is `berth-registry`'s; this module decides what
//! to move (platform selection, which blobs the other side lacks), moves
//! blobs on a few threads at once, and records where blobs came from so a
//! later push can mount them instead of uploading ([`sources`]).

pub mod pull;
pub mod push;
pub mod sources;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_registry::RegistryError;
use berth_registry::reference::ReferenceError;
use berth_runtime::store::StoreError;

pub use pull::{PullOptions, Pulled, pull};
pub use push::{PushedImage, push};

/// Blobs moved at once. Docker's defaults are 3 down and 5 up; past a few
/// streams one registry is rarely faster.
pub const PARALLEL_TRANSFERS: usize = 4;

/// What a pull or push can fail with. Each names the cause only; the CLI
/// puts the command and reference in front (`pull app:1: manifest unknown`).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no such image in the local store (build it with `berth build -t {name}`, or name an existing one with `berth tag`)"
    )]
    NotFound { name: String },
    #[error("no image for platform {wanted} (it has {available}; pass --platform to choose)")]
    NoPlatform { wanted: String, available: String },
    #[error("{what}: {reason}")]
    BadImage { what: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("cancelled")]
    Cancelled,
}

/// How one blob's transfer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// The other side had it already.
    Exists,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Being transferred.
    Started,
    /// Transferred.
    Done,
}

/// Something that happened during a pull or push.
#[derive(Debug, Clone)]
pub enum TransferEvent {
    /// The reference named this manifest (or index).
    Resolved { digest: String },
    /// A blob changed state.
    Blob {
        digest: String,
        size: u64,
        state: BlobState,
    },
    /// `n` more bytes went over the wire.
    Bytes { n: u64 },
    /// A transient failure; another attempt follows.
    Retrying { attempt: u32, error: String },
}

/// Receives transfer events, from several threads.
pub trait TransferProgress: Sync {
    fn event(&self, event: TransferEvent);
}

/// Discards every event.
pub struct Silent;
impl TransferProgress for Silent {
    fn event(&self, _event: TransferEvent) {}
}

/// Forwards the registry client's byte counts and retries as events.
pub(crate) struct Relay<'a>(pub &'a dyn TransferProgress);

impl berth_registry::Observer for Relay<'_> {
    fn bytes(&self, n: u64) {
        self.0.event(TransferEvent::Bytes { n });
    }
    fn retrying(&self, attempt: u32, error: &RegistryError) {
        self.0.event(TransferEvent::Retrying {
            attempt,
            error: error.to_string(),
        });
    }
}

/// Runs `work` on every item, `workers` at a time, and returns the first
/// error. After an error, items not yet started are skipped.
pub(crate) fn in_parallel<T: Sync>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> Result<(), TransferError> + Sync,
) -> Result<(), TransferError> {
    let queue: Mutex<VecDeque<&T>> = Mutex::new(items.iter().collect());
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<TransferError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(item) = next else { return };
                    if let Err(e) = work(item) {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock()
                            && slot.is_none()
                        {
                            *slot = Some(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}
