//! The namespaced sandbox that runs a Dockerfile `RUN` step (and later a
//! composed container): a command on an overlay root, in its own mount, PID,
//! UTS, IPC and (optionally) network namespaces, as Docker's defaults would
//! run it.
//!
//! berth never forks inside its own multi-threaded process: [`Sandbox::run`]
//! re-executes a binary (berth itself) with [`INIT_ARG`], whose `main` hands
//! over to [`init_main`]. That fresh single-threaded init unshares the
//! namespaces and forks PID 1 of the new PID namespace, which mounts the
//! root, pivots into it, drops privileges and runs the command. Every mount
//! lives in the private mount namespace, so it disappears with it however
//! the sandbox ends; what the init had to create in the layer (mount points)
//! is reported back and removed from the upper directory afterwards.
//!
//! Modules, one kernel concern each:
//! - [`spec`]: what to run (the types callers fill in);
//! - [`error`]: what can go wrong;
//! - `parent`: the caller's side: spawning the init, live output, cancel;
//! - `protocol`: the messages between the caller and the init;
//! - `init`: the re-executed init: namespaces, PID 1, supervision;
//! - `pid1`: PID 1's setup sequence and the command's life;
//! - `overlay`: overlayfs mounts (new mount API, classic fallback);
//! - `mounts`: the standard filesystems, spec mounts, masked paths;
//! - `mountpoint`: creating mount points in the new root, recording traces;
//! - `traces`: removing those traces from the upper directory;
//! - `user`: `USER` resolution from the image's passwd and group files;
//! - `caps`: capability sets and dropping privileges;
//! - `exec`: `PATH` lookup, environment, exec and reaping;
//! - `net`: the loopback interface of a private network namespace;
//! - `sys`: small system-call helpers shared by the above.

mod caps;
pub mod error;
mod exec;
mod init;
mod mountpoint;
mod mounts;
mod net;
mod overlay;
mod parent;
mod pid1;
mod protocol;
pub mod spec;
mod sys;
mod traces;
mod user;

pub use error::SandboxError;
pub use init::init_main;
pub use parent::Sandbox;
pub use spec::{ExitStatus, Mount, Network, Rootfs, SandboxSpec, Stream};

/// `argv[1]` that makes a binary hand over to [`init_main`].
pub const INIT_ARG: &str = "__berth-sandbox-init";
