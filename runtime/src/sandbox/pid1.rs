//! PID 1 of the new PID namespace: mounts the root and everything on it,
//! pivots into it, becomes the command's user, then starts the command and
//! reaps until it exits. Its exit code is the command's (128 + signal for a
//! signal); the exact [`ExitStatus`] goes through the status pipe.
//!
//! The command is PID 1's child (PID 2 for the first), not PID 1 itself:
//! PID 1 stays ours, to reap orphans and to report. It is made
//! non-dumpable so that the command, even as root, cannot reach berth's
//! binary or fds through `/proc/1`.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::mount::UnmountFlags;
use rustix::process::{Resource, Rlimit, Signal};

use super::caps;
use super::exec;
use super::init::parent_alive;
use super::mountpoint::{Kind, MountPoints};
use super::mounts;
use super::net;
use super::overlay::{self, Layers};
use super::protocol::{InitMessage, Report, Reporter, SetupError, Step};
use super::spec::{ExitStatus, Network, Rootfs};
use super::sys::describe;
use super::user;

/// What the command's open-files soft limit is raised to (as Docker's
/// default `nofile` of 1048576), never above the inherited hard limit.
const NOFILE: u64 = 1 << 20;

/// Runs PID 1 to the end; never returns.
pub(crate) fn main(message: &InitMessage, reporter: &Reporter, alive: OwnedFd) -> ! {
    let code = match run(message, reporter, &alive) {
        Ok(status) => {
            let _ = reporter.send(&Report::Exit(status));
            status.shell_code()
        }
        Err(e) => {
            let _ = reporter.send(&Report::from(e));
            125
        }
    };
    // SAFETY: ends this forked process without running the init's
    // destructors or atexit handlers twice.
    unsafe { libc::_exit(code) }
}

fn run(
    message: &InitMessage,
    reporter: &Reporter,
    alive: &OwnedFd,
) -> Result<ExitStatus, SetupError> {
    stay_with_parent(alive)?;
    hide_from_command()?;
    // fd 0 is the parent's spec pipe: the command must not hold it.
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step("init", || "open /dev/null".into())?;
    // SAFETY: fd 0 is replaced by /dev/null; nothing else in this process
    // owns fd 0 afterwards.
    if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) } < 0 {
        return Err(std::io::Error::last_os_error()).step("init", || "redirect stdin".into());
    }
    drop(null);

    let spec = &message.spec;
    let Rootfs::Overlay { lower, upper, work } = &spec.rootfs;
    let layers = Layers {
        lower,
        upper_work: Some((upper, work)),
        readonly: false,
        nodev: !spec.insecure,
    };
    // The root is mounted over its own upper directory, which the overlay
    // has already resolved: no extra directory on the host.
    overlay::mount_at(&layers, upper, message.classic_overlay)?;
    let last_cap = caps::last_cap().step("capabilities", || "read cap_last_cap".into())?;
    let prepared = mounts::prepare(spec, message.classic_overlay)?;
    if matches!(spec.network, Network::None) {
        net::loopback_up().step("network", || "bring up the loopback interface".into())?;
    }
    if !spec.hostname.is_empty() {
        rustix::system::sethostname(spec.hostname.as_bytes()).step("hostname", || {
            format!("set the hostname to {:?}", spec.hostname)
        })?;
    }
    pivot_into(upper)?;

    let points = MountPoints::new(reporter).step("mount", || "inspect the new root".into())?;
    prepared.attach(&points)?;
    let cwd = points.ensure(&spec.cwd, Kind::Dir, false).step("cwd", || {
        format!("create the working directory {}", spec.cwd)
    })?;
    rustix::process::chdir(&cwd).step("cwd", || {
        format!("change to the working directory {}", spec.cwd)
    })?;

    let user = user::lookup(&spec.user).map_err(|m| SetupError::new("user", m))?;
    raise_nofile().step("rlimit", || "raise the open files limit".into())?;
    caps::drop_privileges(&user, spec.insecure, last_cap).map_err(|e| {
        SetupError::new(
            "user",
            format!(
                "cannot {} for user {:?}: {}",
                e.what,
                spec.user,
                describe(&e.error)
            ),
        )
    })?;
    // Changing credentials cleared PDEATHSIG (and may reset dumpable).
    stay_with_parent(alive)?;
    hide_from_command()?;

    let env = exec::environment(&spec.env, &user.home);
    let path_var = exec::path_var(&env).unwrap_or(exec::DEFAULT_PATH);
    let program = exec::find_executable(&spec.args[0], path_var, exec::is_executable)
        .map_err(|m| SetupError::new("exec", m))?;
    let command = exec::Command::new(&program, &spec.args, &env)?;
    exec::run_and_reap(&command)
}

/// Dies with the init, and checks it is not dead already.
fn stay_with_parent(alive: &OwnedFd) -> Result<(), SetupError> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .step("init", || "set the parent death signal".into())?;
    if !parent_alive(alive) {
        return Err(SetupError::new("init", "the sandbox init exited"));
    }
    Ok(())
}

fn hide_from_command() -> Result<(), SetupError> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step("init", || "make PID 1 not dumpable".into())
}

/// Makes `root` the root: `pivot_root(".", ".")` stacks the old root on
/// top of the new one, and a lazy unmount takes it off, so that no
/// directory for the old root is needed in the image.
fn pivot_into(root: &Path) -> Result<(), SetupError> {
    let what = || format!("pivot_root into {}", root.display());
    rustix::process::chdir(root).step("pivot_root", what)?;
    rustix::process::pivot_root(".", ".").step("pivot_root", what)?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).step("pivot_root", what)?;
    rustix::process::chdir("/").step("pivot_root", what)
}

/// Raises the soft `RLIMIT_NOFILE` towards [`NOFILE`], up to the hard limit.
fn raise_nofile() -> std::io::Result<()> {
    let limit = rustix::process::getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let soft = NOFILE.min(hard);
    if limit.current.is_some_and(|current| current >= soft) {
        return Ok(());
    }
    rustix::process::setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum: limit.maximum,
        },
    )?;
    Ok(())
}
