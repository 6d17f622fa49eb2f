//! The command itself: its environment, finding its executable in `PATH`
//! (as Go's `exec.LookPath`, hence runc, does), starting it from PID 1 and
//! reaping every process until it exits.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::process::{Pid, WaitOptions};

use super::protocol::SetupError;
use super::spec::ExitStatus;
use super::sys::{cloexec_from, cstring, describe};

/// Used to look the command up when the environment has no `PATH`: the
/// default Docker puts in every image config.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command's environment: `env` plus `HOME` when it lacks one.
pub(crate) fn environment(env: &[String], home: &str) -> Vec<String> {
    let mut out = env.to_vec();
    if !env.iter().any(|e| e.split('=').next() == Some("HOME")) {
        out.push(format!("HOME={home}"));
    }
    out
}

/// The `PATH` of an environment (the last one wins, as in a shell).
pub(crate) fn path_var(env: &[String]) -> Option<&str> {
    env.iter().rev().find_map(|e| e.strip_prefix("PATH="))
}

/// Where `name` is: itself when it has a `/`, else the first `PATH` entry
/// holding an executable of that name (an empty entry is the current
/// directory). `is_executable` is asked about each candidate.
pub(crate) fn find_executable(
    name: &str,
    path: &str,
    is_executable: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(format!("exec {name:?}: executable file not found in $PATH"))
}

/// A regular file (symlinks followed) with an execute bit, as Go checks.
pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.is_dir() && m.permissions().mode() & 0o111 != 0)
}

/// What `execve` needs, prepared before forking.
pub(crate) struct Command {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// For messages: `args[0]` as given.
    name: String,
}

impl Command {
    pub fn new(program: &Path, args: &[String], env: &[String]) -> Result<Command, SetupError> {
        let bad =
            |e: io::Error| SetupError::new("exec", format!("exec {:?}: {}", args[0], describe(&e)));
        use std::os::unix::ffi::OsStrExt;
        Ok(Command {
            program: cstring(program.as_os_str().as_bytes()).map_err(bad)?,
            argv: args
                .iter()
                .map(|a| cstring(a.as_bytes()))
                .collect::<io::Result<_>>()
                .map_err(bad)?,
            envp: env
                .iter()
                .map(|e| cstring(e.as_bytes()))
                .collect::<io::Result<_>>()
                .map_err(bad)?,
            name: args[0].clone(),
        })
    }
}

/// Forks the command from PID 1 and reaps every child until the command
/// exits (orphans re-parent to PID 1: reaping them is its job). Returns how
/// the command ended. A failed `execve` is a setup error, told apart from
/// the command's own exit through a close-on-exec pipe.
pub(crate) fn run_and_reap(cmd: &Command) -> Result<ExitStatus, SetupError> {
    let fail =
        |what: &str, e: io::Error| SetupError::new("exec", format!("{what}: {}", describe(&e)));
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| fail("cannot create a pipe", e.into()))?;
    let argv = null_terminated(&cmd.argv);
    let envp = null_terminated(&cmd.envp);
    // SAFETY: PID 1 is single-threaded, so the child may run any code; it
    // only ever leaves through execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(fail("cannot fork the command", io::Error::last_os_error()));
    }
    if pid == 0 {
        let errno = exec_child(cmd, &argv, &envp);
        let bytes = errno.to_ne_bytes();
        let _ = rustix::io::write(&err_w, &bytes);
        // SAFETY: ends the child without running the parent's atexit code.
        unsafe { libc::_exit(127) };
    }
    drop(err_w);
    let child = Pid::from_raw(pid).ok_or_else(|| fail("fork", io::Error::other("pid 0")))?;
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(&err_r, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(fail("cannot read the exec status", e.into())),
        }
    }
    if got == buf.len() {
        let errno = i32::from_ne_bytes(buf);
        let _ = rustix::process::waitpid(Some(child), WaitOptions::empty());
        return Err(SetupError::new(
            "exec",
            format!(
                "exec {:?}: {}",
                cmd.name,
                describe(&io::Error::from_raw_os_error(errno))
            ),
        ));
    }
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid == child => {
                if let Some(code) = status.exit_status() {
                    return Ok(ExitStatus::Code(code));
                }
                if let Some(signal) = status.terminating_signal() {
                    return Ok(ExitStatus::Signal(signal));
                }
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(fail("cannot wait for the command", e.into())),
        }
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// In the forked child: a session of its own, default signal handling
/// (Rust ignores SIGPIPE, and ignored signals survive execve), no stray fds;
/// then execve. Returns the errno if anything fails.
fn exec_child(cmd: &Command, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> i32 {
    let _ = rustix::process::setsid();
    // SAFETY: resetting dispositions and the mask with valid arguments.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    if let Err(e) = cloexec_from(3) {
        return e.raw_os_error().unwrap_or(libc::EIO);
    }
    // SAFETY: program, argv and envp are NUL-terminated C strings and
    // null-terminated pointer arrays that outlive the call.
    unsafe { libc::execve(cmd.program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_added_only_when_missing() {
        let env = vec!["PATH=/bin".to_owned()];
        assert_eq!(environment(&env, "/root"), ["PATH=/bin", "HOME=/root"]);
        let env = vec!["HOME=/x".to_owned()];
        assert_eq!(environment(&env, "/root"), ["HOME=/x"]);
        let env = vec!["HOMEDIR=/x".to_owned()];
        assert_eq!(environment(&env, "/"), ["HOMEDIR=/x", "HOME=/"]);
    }

    #[test]
    fn path_lookup_order_and_errors() {
        let exists = |p: &Path| p == Path::new("/usr/bin/ls") || p == Path::new("/bin/ls");
        assert_eq!(
            find_executable("ls", "/sbin:/usr/bin:/bin", exists).unwrap(),
            Path::new("/usr/bin/ls")
        );
        assert_eq!(
            find_executable("./run.sh", "", |_| false).unwrap(),
            Path::new("./run.sh")
        );
        assert_eq!(
            find_executable("/nope", "/bin", |_| false).unwrap(),
            Path::new("/nope")
        );
        assert_eq!(
            find_executable("nosuchcmd", "/bin", exists).unwrap_err(),
            "exec \"nosuchcmd\": executable file not found in $PATH"
        );
        let cwd = |p: &Path| p == Path::new("./tool");
        assert_eq!(
            find_executable("tool", "/bin::", cwd).unwrap(),
            Path::new("./tool")
        );
    }

    #[test]
    fn last_path_wins() {
        let env = vec!["PATH=/a".to_owned(), "X=1".to_owned(), "PATH=/b".to_owned()];
        assert_eq!(path_var(&env), Some("/b"));
        assert_eq!(path_var(&[]), None);
    }
}
