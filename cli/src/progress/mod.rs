//! Rendering of build progress on stderr.
//!
//! The builder library never prints: it reports [`BuildEvent`]s through the
//! [`Progress`] trait. This module owns turning those events into what the
//! user sees, in one of the `--progress` modes:
//!
//! - `tty`: live lines redrawn in place (indicatif), one per step;
//! - `plain`: one line per event, `#N`-prefixed like BuildKit's plain mode;
//! - `rawjson`: one JSON object per event, for machines;
//! - `quiet`: nothing but failures;
//! - `auto`: `tty` when stderr is a terminal, else `plain`.
//!
//! Every renderer writes to stderr only: stdout belongs to data the user may
//! pipe (the image ID of `-q`, `--output -`). Write errors on stderr are
//! ignored, so a closed stderr never fails or panics a build.
//!
//! Events arrive concurrently from several build threads; every renderer
//! serialises them behind one lock so that output lines never mix.
//!
//! [`BuildEvent`]: berth_builder::progress::BuildEvent

mod format;
mod plain;
mod quiet;
mod rawjson;
mod throttle;
pub mod transfer;
mod tty;

use std::io::{self, IsTerminal};
use std::sync::{Mutex, MutexGuard, PoisonError};

use berth_builder::progress::Progress;

pub use plain::PlainRenderer;
pub use quiet::QuietRenderer;
pub use rawjson::RawJsonRenderer;
pub use tty::TtyRenderer;

/// How build progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// `tty` when stderr is a terminal, `plain` otherwise.
    Auto,
    /// Live, redrawn lines: a spinner per running step and its last log lines.
    Tty,
    /// One line per event, prefixed with the step number (`#3 ...`).
    Plain,
    /// One JSON object per event and line, with a `time` field.
    Rawjson,
    /// Nothing but failures.
    Quiet,
}

/// A [`Progress`] sink that draws on stderr.
pub trait Renderer: Progress {
    /// Flushes output and leaves the display in its final state. Call once at
    /// the end of the build, whether it succeeded or failed; later events are
    /// still accepted but a `tty` view no longer redraws live lines.
    fn finish(&self);
}

/// Makes the renderer for `mode`, drawing on stderr.
///
/// `Tty` falls back to `Plain` when stderr cannot show live lines (not a
/// terminal, or `TERM=dumb`): indicatif would otherwise hide everything and
/// the user would see no progress at all.
pub fn renderer(mode: ProgressMode) -> Box<dyn Renderer> {
    match mode {
        ProgressMode::Auto if io::stderr().is_terminal() => tty_or_plain(),
        ProgressMode::Auto | ProgressMode::Plain => Box::new(PlainRenderer::new(stderr())),
        ProgressMode::Tty => tty_or_plain(),
        ProgressMode::Rawjson => Box::new(RawJsonRenderer::new(stderr())),
        ProgressMode::Quiet => Box::new(QuietRenderer::new(stderr())),
    }
}

fn tty_or_plain() -> Box<dyn Renderer> {
    match TtyRenderer::stderr() {
        Some(tty) => Box::new(tty),
        None => Box::new(PlainRenderer::new(stderr())),
    }
}

/// Unbuffered stderr: each line is handed to the OS in one `write`, so lines
/// from berth never interleave mid-line with other writers of the same fd.
fn stderr() -> Box<dyn io::Write + Send> {
    Box::new(io::stderr())
}

/// Locks `m` even if a thread panicked while holding it: progress output is
/// best effort and must not turn one panic into a cascade of them.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
