//! Errors of a sandbox run. A command that fails is not one of them: it is
//! an [`ExitStatus`](super::ExitStatus).

use std::io;
use std::path::PathBuf;

/// Why a sandbox could not run its command to completion.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The spec cannot be run as given (empty argv, relative paths, ...).
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),

    /// Preparing the container failed inside the init: a mount, the user,
    /// the executable, ... `message` is meant for the user as is (for
    /// example `exec "foo": executable file not found in $PATH`); `step`
    /// names the stage (`mount`, `user`, `exec`, ...).
    #[error("{message}")]
    Setup { step: String, message: String },

    /// The init process could not be started.
    #[error("cannot start the sandbox init: {0}")]
    Spawn(#[source] io::Error),

    /// The run was cancelled; every process of the sandbox is gone.
    #[error("cancelled")]
    Cancelled,

    /// Talking to the init, or preparing for it, failed on berth's side.
    #[error("sandbox: cannot {action}: {source}")]
    Io {
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// The init sent something berth does not understand.
    #[error("sandbox init sent an invalid report: {0}")]
    Protocol(String),

    /// The init ended without saying how the command ended.
    #[error("the sandbox init ended ({status}) without reporting how the command ended")]
    InitDied { status: std::process::ExitStatus },

    /// An entry the sandbox created in the upper directory (a mount point)
    /// could not be removed after the run.
    #[error("cannot remove {} (a mount point the sandbox created) from the layer: {source}", path.display())]
    Cleanup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
