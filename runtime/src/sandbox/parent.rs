//! The caller's side of a run: spawning the init (fork+exec through
//! `std::process::Command`, the only way berth forks), feeding it the spec,
//! delivering output live, cancelling, collecting the reports, and removing
//! the init's traces from the layer once the namespace is gone.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use super::protocol::{InitMessage, PARENT_PID_ENV, Report, ReportReader, STATUS_FD};
use super::spec::{self, ExitStatus, Rootfs, SandboxSpec, Stream};
use super::{INIT_ARG, SandboxError, traces};

/// How often `cancel` is looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a cancelled init gets to kill and reap PID 1 before it is
/// killed itself (its PID 1 then dies of PDEATHSIG).
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How long output may keep flowing after the init exited. Nothing outside
/// the dead namespace holds the pipes, so this only guards against hangs.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs commands in namespaced sandboxes. Cheap to clone; holds no state
/// between runs.
#[derive(Debug, Clone)]
pub struct Sandbox {
    init_exe: PathBuf,
    classic_overlay: bool,
}

impl Sandbox {
    /// `init_exe`: the program to re-execute as the init: a binary whose
    /// `main` calls [`init_main`](super::init_main) when `argv[1]` is
    /// [`INIT_ARG`] (berth itself: `std::env::current_exe()`).
    pub fn new(init_exe: PathBuf) -> Sandbox {
        Sandbox {
            init_exe,
            classic_overlay: false,
        }
    }

    /// Mounts overlays the pre-6.8 way (`mount(2)` with relative paths)
    /// even where `fsconfig` `lowerdir+` works. For tests of that path.
    #[doc(hidden)]
    pub fn with_classic_overlay_mount(mut self, classic: bool) -> Sandbox {
        self.classic_overlay = classic;
        self
    }

    /// Runs the spec to completion. Output is delivered live, in chunks as
    /// it arrives, to `on_output` (called on this thread). `cancel` is
    /// polled every 50 ms: when it becomes true the whole sandbox is
    /// killed, and `Err(Cancelled)` comes back once every process of it is
    /// gone. A command that fails is `Ok`, with its status.
    pub fn run(
        &self,
        spec: &SandboxSpec,
        on_output: &mut (dyn FnMut(Stream, &[u8]) + Send),
        cancel: &AtomicBool,
    ) -> Result<ExitStatus, SandboxError> {
        let mut spec = spec::checked(spec)?;
        let Rootfs::Overlay { lower, upper, work } = &mut spec.rootfs;
        let image_lower = lower.clone();
        let upper = upper.clone();
        let empty = if lower.is_empty() {
            let empty = EmptyLower::create(work)?;
            *lower = vec![empty.path.clone()];
            Some(empty)
        } else {
            None
        };
        let message = InitMessage {
            spec,
            classic_overlay: self.classic_overlay,
        };
        let mut line = serde_json::to_vec(&message)
            .map_err(|e| SandboxError::InvalidSpec(format!("cannot encode the spec: {e}")))?;
        line.push(b'\n');

        let outcome = self.execute(&line, on_output, cancel);
        // The namespace is gone once the init is reaped (or was never
        // started): the upper directory can be edited again.
        let cleanup = match &outcome {
            Ok(outcome) => traces::remove(&upper, &image_lower, &outcome.created),
            Err(_) => Ok(()),
        };
        drop(empty);
        let outcome = outcome?;
        if outcome.cancelled {
            return Err(SandboxError::Cancelled);
        }
        if let Some(problem) = outcome.protocol_error {
            return Err(SandboxError::Protocol(problem));
        }
        if let Some((step, message)) = outcome.setup {
            return Err(SandboxError::Setup { step, message });
        }
        let status = outcome.exit.ok_or(SandboxError::InitDied {
            status: outcome.init_status,
        })?;
        cleanup?;
        Ok(status)
    }

    fn execute(
        &self,
        message: &[u8],
        on_output: &mut (dyn FnMut(Stream, &[u8]) + Send),
        cancel: &AtomicBool,
    ) -> Result<Outcome, SandboxError> {
        let io_err = |action| move |source: io::Error| SandboxError::Io { action, source };
        let (status_r, status_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| io_err("create the status pipe")(e.into()))?;
        // Keep the write end clear of the stdio numbers the child's std
        // setup overwrites before our pre_exec runs.
        let status_w: OwnedFd = if status_w.as_raw_fd() <= 2 {
            rustix::io::fcntl_dupfd_cloexec(&status_w, STATUS_FD + 1)
                .map_err(|e| io_err("create the status pipe")(e.into()))?
        } else {
            status_w
        };
        let raw_w = status_w.as_raw_fd();

        let mut command = Command::new(&self.init_exe);
        command
            .arg(INIT_ARG)
            .env_clear()
            .env(PARENT_PID_ENV, std::process::id().to_string())
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs between fork and exec and only calls
        // async-signal-safe fcntl/dup2 on fds it does not own.
        unsafe {
            command.pre_exec(move || {
                let ret = if raw_w == STATUS_FD {
                    libc::fcntl(raw_w, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw_w, STATUS_FD)
                };
                if ret < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(SandboxError::Spawn)?;
        drop(status_w);
        let mut running = Running {
            child,
            stdin: None,
            reaped: false,
        };
        let mut stdin = running.child.stdin.take();
        let stdout = running.child.stdout.take();
        let stderr = running.child.stderr.take();
        if let Some(pipe) = &mut stdin {
            // A write error means the init is already gone; its exit status
            // tells the rest.
            let _ = pipe.write_all(message).and_then(|()| pipe.flush());
        }
        running.stdin = stdin;

        let mut streams: Vec<(Source, OwnedFd)> = Vec::new();
        if let Some(out) = stdout {
            streams.push((Source::Output(Stream::Stdout), OwnedFd::from(out)));
        }
        if let Some(err) = stderr {
            streams.push((Source::Output(Stream::Stderr), OwnedFd::from(err)));
        }
        streams.push((Source::Status, status_r));

        let mut outcome = Outcome::default();
        let mut reader = ReportReader::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut kill_at = None;
        let mut exited_at = None;
        while !streams.is_empty() {
            let now = Instant::now();
            if !outcome.cancelled && cancel.load(Ordering::Relaxed) {
                outcome.cancelled = true;
                // Closing the spec pipe is the init's cue to kill PID 1.
                running.stdin = None;
                kill_at = Some(now + CANCEL_GRACE);
            }
            if kill_at.is_some_and(|at| now >= at) {
                let _ = running.child.kill();
                kill_at = None;
            }
            if exited_at.is_none() {
                let exited = running
                    .child
                    .try_wait()
                    .map_err(io_err("wait for the sandbox init"))?;
                if exited.is_some() {
                    exited_at = Some(now);
                }
            }
            if exited_at.is_some_and(|at| now >= at + DRAIN_GRACE) {
                break;
            }

            let ready = poll_streams(&streams).map_err(io_err("wait for sandbox output"))?;
            let mut closed = Vec::new();
            for i in ready {
                let (source, fd) = &streams[i];
                match rustix::io::read(fd, &mut buf) {
                    Ok(0) => closed.push(i),
                    Ok(n) => match source {
                        Source::Output(stream) => on_output(*stream, &buf[..n]),
                        Source::Status => match reader.feed(&buf[..n]) {
                            Ok(reports) => outcome.take(reports),
                            Err(problem) => {
                                outcome.protocol_error.get_or_insert(problem);
                            }
                        },
                    },
                    Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                    Err(e) => return Err(io_err("read sandbox output")(e.into())),
                }
            }
            for i in closed.into_iter().rev() {
                let (source, _) = streams.remove(i);
                if matches!(source, Source::Status)
                    && let Err(problem) = reader.finish()
                {
                    outcome.protocol_error.get_or_insert(problem);
                }
            }
        }
        outcome.init_status = running
            .wait()
            .map_err(io_err("wait for the sandbox init"))?;
        Ok(outcome)
    }
}

/// Where a pipe's bytes go.
#[derive(Clone, Copy)]
enum Source {
    Output(Stream),
    Status,
}

/// Indices of the streams that are readable (or closed), waiting at most
/// [`POLL_INTERVAL`].
fn poll_streams(streams: &[(Source, OwnedFd)]) -> io::Result<Vec<usize>> {
    let fds: Vec<BorrowedFd<'_>> = streams.iter().map(|(_, fd)| fd.as_fd()).collect();
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
        .collect();
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: POLL_INTERVAL.as_nanos() as _,
    };
    match rustix::event::poll(&mut polls, Some(&timeout)) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    Ok(polls
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.revents().is_empty())
        .map(|(i, _)| i)
        .collect())
}

/// What the init reported, and how it ended.
#[derive(Default)]
struct Outcome {
    created: Vec<Vec<u8>>,
    setup: Option<(String, String)>,
    exit: Option<ExitStatus>,
    protocol_error: Option<String>,
    cancelled: bool,
    init_status: std::process::ExitStatus,
}

impl Outcome {
    fn take(&mut self, reports: Vec<Report>) {
        for report in reports {
            match report {
                Report::Creating { path } => self.created.push(path),
                Report::Setup { step, message } => {
                    self.setup.get_or_insert((step, message));
                }
                Report::Exit(status) => self.exit = Some(status),
            }
        }
    }
}

/// The init while it runs: if the run is abandoned (an error, or a panic in
/// `on_output`), it is killed and reaped rather than left behind.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    reaped: bool,
}

impl Running {
    fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        self.stdin = None;
        let status = self.child.wait()?;
        self.reaped = true;
        Ok(status)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            self.stdin = None;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The stand-in lower layer of a `FROM scratch` root: an empty directory
/// next to `work`, removed after the run.
struct EmptyLower {
    path: PathBuf,
}

impl EmptyLower {
    fn create(work: &Path) -> Result<EmptyLower, SandboxError> {
        let mut name = work
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "work".into());
        name.push("-empty");
        let path = work.with_file_name(name);
        match fs::create_dir(&path) {
            Ok(()) => {}
            // Left by a run that was killed; fine if still empty.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mut entries = fs::read_dir(&path).map_err(|source| SandboxError::Io {
                    action: "inspect the empty lower directory",
                    source,
                })?;
                if entries.next().is_some() {
                    return Err(SandboxError::Io {
                        action: "prepare the empty lower directory",
                        source: io::Error::other(format!("{} is not empty", path.display())),
                    });
                }
            }
            Err(source) => {
                return Err(SandboxError::Io {
                    action: "create the empty lower directory",
                    source,
                });
            }
        }
        Ok(EmptyLower { path })
    }
}

impl Drop for EmptyLower {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}
