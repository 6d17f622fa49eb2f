//! The messages between [`Sandbox::run`](super::Sandbox::run) and the init.
//!
//! Parent to init: one JSON line on the init's stdin ([`InitMessage`]); the
//! pipe then stays open, and its closing (or any byte) means "cancel".
//! Init to parent: JSON lines ([`Report`]) on a dedicated status pipe, the
//! init's fd 3, close-on-exec in the command so it never sees it. Each line
//! is one `write`, and the init's processes write one after the other.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use super::spec::{ExitStatus, SandboxSpec};
use super::sys::describe;

/// The fd the status pipe has in the init.
pub(crate) const STATUS_FD: i32 = 3;
/// Environment variable giving the init its parent's pid, to detect a
/// parent that died before `PR_SET_PDEATHSIG` took effect.
pub(crate) const PARENT_PID_ENV: &str = "BERTH_SANDBOX_PARENT_PID";
/// More than any sane spec; a bound on what the init buffers.
pub(crate) const MAX_MESSAGE: u64 = 64 << 20;

/// What the parent sends the init.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitMessage {
    pub spec: SandboxSpec,
    /// Mount overlays with `mount(2)` and a `lowerdir=` list even when the
    /// kernel has `fsconfig` `lowerdir+` (to test that path).
    pub classic_overlay: bool,
}

/// What the init reports, in order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Report {
    /// The init is about to create this entry (an absolute, symlink-free
    /// path inside the container, as bytes) on the root overlay, as a mount
    /// point. Sent before creating, so a kill in between leaves no unknown
    /// trace.
    Creating { path: Vec<u8> },
    /// Setup failed; the init exits.
    Setup { step: String, message: String },
    /// The command ended.
    Exit(ExitStatus),
}

/// A setup failure inside the init, as the user will read it.
#[derive(Debug)]
pub(crate) struct SetupError {
    pub step: &'static str,
    pub message: String,
}

impl SetupError {
    pub fn new(step: &'static str, message: impl Into<String>) -> SetupError {
        SetupError {
            step,
            message: message.into(),
        }
    }
}

impl From<SetupError> for Report {
    fn from(e: SetupError) -> Report {
        Report::Setup {
            step: e.step.to_owned(),
            message: e.message,
        }
    }
}

/// Turns a system call's error into a [`SetupError`] saying what was being
/// done: `"{what}: {error}"`.
pub(crate) trait Step<T> {
    fn step(self, step: &'static str, what: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T, E: Into<io::Error>> Step<T> for Result<T, E> {
    fn step(self, step: &'static str, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::new(step, format!("{}: {}", what(), describe(&e.into()))))
    }
}

/// The init's end of the status pipe.
pub(crate) struct Reporter {
    fd: OwnedFd,
}

impl Reporter {
    /// Takes the inherited [`STATUS_FD`], making it close-on-exec.
    pub fn inherited() -> io::Result<Reporter> {
        // SAFETY: fcntl on a number only queries it; an fd that is not open
        // fails with EBADF and is not taken.
        if unsafe { libc::fcntl(STATUS_FD, libc::F_GETFD) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the fd is open (checked above) and nothing else in this
        // fresh process owns it: the parent passed it for us alone.
        let fd = unsafe { OwnedFd::from_raw_fd(STATUS_FD) };
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        Ok(Reporter { fd })
    }

    /// Writes one report as one line. Errors are returned, but callers
    /// mostly cannot do better than carry on: a parent that stopped reading
    /// is a parent that is gone, and PDEATHSIG handles that.
    pub fn send(&self, report: &Report) -> io::Result<()> {
        let mut line = serde_json::to_vec(report).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut rest = &line[..];
        while !rest.is_empty() {
            match rustix::io::write(&self.fd, rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Splits the status pipe's bytes into reports.
#[derive(Default)]
pub(crate) struct ReportReader {
    partial: Vec<u8>,
}

impl ReportReader {
    /// Adds bytes read from the pipe; returns the reports completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Report>, String> {
        self.partial.extend_from_slice(bytes);
        let mut reports = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            if line.is_empty() {
                continue;
            }
            let report = serde_json::from_slice(line)
                .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(line)))?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// At end of stream: a last line without its newline is an error.
    pub fn finish(&self) -> Result<(), String> {
        if self.partial.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "truncated report: {}",
                String::from_utf8_lossy(&self.partial)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_across_chunk_boundaries() {
        let reports = [
            Report::Creating {
                path: b"/etc/hosts".to_vec(),
            },
            Report::Exit(ExitStatus::Signal(9)),
        ];
        let mut bytes = Vec::new();
        for r in &reports {
            bytes.extend(serde_json::to_vec(r).unwrap());
            bytes.push(b'\n');
        }
        let mut reader = ReportReader::default();
        let mut got = Vec::new();
        for chunk in bytes.chunks(5) {
            got.extend(reader.feed(chunk).unwrap());
        }
        reader.finish().unwrap();
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], Report::Creating { path } if path == b"/etc/hosts"));
        assert!(matches!(got[1], Report::Exit(ExitStatus::Signal(9))));
    }

    #[test]
    fn a_truncated_line_is_an_error() {
        let mut reader = ReportReader::default();
        assert!(reader.feed(b"{\"exit\":").unwrap().is_empty());
        assert!(reader.finish().is_err());
        assert!(reader.feed(b"nonsense\n").is_err());
    }
}
