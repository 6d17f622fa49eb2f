//! Build progress as events. The builder never prints: it sends
//! [`BuildEvent`]s to a [`Progress`] sink, and the CLI renders them (a TTY
//! view, plain lines, or JSON lines).

use std::time::Duration;

use serde::Serialize;

/// Identifies one step (vertex) of a build for the lifetime of the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StepId(pub usize);

/// Something that happened during a build.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// A step began. `name` is what the user sees, e.g.
    /// `[build 2/4] COPY src/ /app/src/` or `load build context`.
    Started { step: StepId, name: String },
    /// A step was answered from the build cache; `Done` follows.
    Cached { step: StepId },
    /// Bytes processed so far by a running step (context hashed, layer
    /// written); may be sent many times.
    Bytes { step: StepId, bytes: u64 },
    /// A line of output from a step.
    Log { step: StepId, line: String },
    /// A step finished successfully.
    Done {
        step: StepId,
        #[serde(serialize_with = "seconds")]
        duration: Duration,
        bytes: u64,
    },
    /// A step failed with this message.
    Failed { step: StepId, message: String },
    /// A note not tied to a step (a warning, the image ID at the end).
    Message { text: String },
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Receives build events. Called from several threads when stages build
/// concurrently.
pub trait Progress: Send + Sync {
    fn event(&self, event: BuildEvent);
}

/// Discards every event.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: BuildEvent) {}
}
