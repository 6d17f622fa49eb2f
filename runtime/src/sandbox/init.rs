//! The re-executed init, outside the new PID namespace: it reads the spec,
//! unshares the namespaces, forks PID 1 and supervises it.
//!
//! Life and death: the init dies with berth (PDEATHSIG), PID 1 dies with
//! the init (PDEATHSIG again), and when PID 1 dies the kernel kills every
//! process left in its namespace. The mount namespace, and every mount in
//! it, goes away with its last process. A cancel (the spec pipe closing)
//! makes the init SIGKILL PID 1 and wait for it, which returns only once
//! the whole namespace is gone.

use std::io::{BufRead, Read};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::process::ExitCode;

use rustix::event::{PollFd, PollFlags};
use rustix::mount::MountPropagationFlags;
use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions};

use super::INIT_ARG;
use super::pid1;
use super::protocol::{
    InitMessage, MAX_MESSAGE, PARENT_PID_ENV, Report, Reporter, SetupError, Step,
};
use super::spec::Network;
use super::sys::cloexec_from;

/// The entry point of the re-executed init: a binary's `main` calls this
/// first thing, while single-threaded, when `argv[1]` is [`INIT_ARG`], and
/// returns what it returns. Everything it has to say goes through the
/// status pipe; stdout and stderr belong to the command.
pub fn init_main() -> ExitCode {
    let reporter = match Reporter::inherited() {
        Ok(reporter) => reporter,
        Err(e) => {
            eprintln!(
                "{INIT_ARG}: no status pipe on fd 3 ({e}): this is berth's internal sandbox entry point"
            );
            return ExitCode::from(125);
        }
    };
    match outer(&reporter) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = reporter.send(&Report::from(e));
            ExitCode::from(125)
        }
    }
}

fn outer(reporter: &Reporter) -> Result<u8, SetupError> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .step("init", || "set the parent death signal".into())?;
    // The parent may have died before that took effect.
    let parent = std::env::var(PARENT_PID_ENV).ok();
    let ppid = rustix::process::getppid().map_or(0, Pid::as_raw_pid);
    if parent.as_deref() != Some(&ppid.to_string()) {
        return Err(SetupError::new(
            "init",
            "berth exited before the sandbox started",
        ));
    }
    ensure_single_threaded()?;
    let message = read_message()?;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    // Keep the spec pipe (0), output (1, 2) and status pipe (3) only.
    cloexec_from(4).step("init", || "mark inherited files close-on-exec".into())?;

    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if matches!(message.spec.network, Network::None) {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare with namespace flags only; the process is
    // single-threaded (checked), so no other thread is affected.
    if unsafe { libc::unshare(flags) } < 0 {
        return Err(std::io::Error::last_os_error())
            .step("init", || "create the namespaces".into());
    }
    // Nothing mounted from here on may reach the host's namespace.
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .step("init", || "make / private".into())?;

    // PID 1 watches this pipe to catch the init dying before its own
    // PDEATHSIG took effect.
    let (alive_r, alive_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .step("init", || "create a pipe".into())?;
    // SAFETY: this process is single-threaded, so the child may run any
    // code; PID 1 never returns from `pid1::main`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).step("init", || "fork PID 1".into());
    }
    if pid == 0 {
        drop(alive_w);
        pid1::main(&message, reporter, alive_r);
    }
    drop(alive_r);
    let pid1 = Pid::from_raw(pid).ok_or_else(|| SetupError::new("init", "fork returned pid 0"))?;
    let code = supervise(pid1)?;
    drop(alive_w);
    Ok(code)
}

/// Waits for PID 1; a cancel from the parent (the spec pipe closing or
/// receiving anything) kills it first. Returns PID 1's exit code, or
/// 128 + the signal that killed it.
fn supervise(pid1: Pid) -> Result<u8, SetupError> {
    // PID 1 is this process's unreaped child: its pid cannot be reused, so
    // neither the pidfd nor the kill can hit another process.
    let pidfd = rustix::process::pidfd_open(pid1, PidfdFlags::empty())
        .step("init", || "open a pidfd for PID 1".into())?;
    // SAFETY: fd 0 stays open for the life of this process.
    let spec_pipe = unsafe { BorrowedFd::borrow_raw(0) };
    let mut killed = false;
    loop {
        let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
        if !killed {
            fds.push(PollFd::from_borrowed_fd(spec_pipe, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).step("init", || "wait for PID 1".into()),
        }
        let exited = !fds[0].revents().is_empty();
        let cancel = fds.get(1).is_some_and(|fd| !fd.revents().is_empty());
        if cancel && !killed {
            let _ = rustix::process::kill_process(pid1, Signal::KILL);
            killed = true;
        }
        if exited {
            break;
        }
    }
    let status = loop {
        match rustix::process::waitpid(Some(pid1), WaitOptions::empty()) {
            Ok(Some((_, status))) => break status,
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).step("init", || "reap PID 1".into()),
        }
    };
    Ok(match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => (128 + signal) as u8,
        (None, None) => 125,
    })
}

fn ensure_single_threaded() -> Result<(), SetupError> {
    let threads = std::fs::read_dir("/proc/self/task")
        .step("init", || "list this process's threads".into())?
        .count();
    if threads != 1 {
        return Err(SetupError::new(
            "init",
            format!(
                "the sandbox init runs {threads} threads: init_main must be called first thing in main"
            ),
        ));
    }
    Ok(())
}

fn read_message() -> Result<InitMessage, SetupError> {
    let mut line = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_MESSAGE)
        .read_until(b'\n', &mut line)
        .step("init", || "read the sandbox spec".into())?;
    if line.last() != Some(&b'\n') {
        return Err(SetupError::new("init", "the sandbox spec was cut short"));
    }
    serde_json::from_slice(&line)
        .map_err(|e| SetupError::new("init", format!("cannot parse the sandbox spec: {e}")))
}

/// PID 1's check that its parent, the init, is still there (after setting
/// PDEATHSIG, which only covers a death that comes later).
pub(crate) fn parent_alive(alive: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(alive, PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())) {
        Ok(_) => fds[0].revents().is_empty(),
        Err(_) => false,
    }
}
