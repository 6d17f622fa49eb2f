//! What a sandbox runs: the spec a caller fills in, and how a run ends.
//! Also owns checking a spec before anything is started.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SandboxError;

/// Everything one sandboxed command needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub rootfs: Rootfs,
    /// argv; `args[0]` without a `/` is looked up in the `PATH` of `env`
    /// inside the new root (like runc). Must not be empty.
    pub args: Vec<String>,
    /// `KEY=VALUE`; `HOME` is added from the user's passwd entry (or `/`)
    /// when missing, as Docker does.
    pub env: Vec<String>,
    /// Absolute path inside the container; created (0755, owned by root) if
    /// missing, as BuildKit does. Empty means `/`.
    pub cwd: String,
    /// Docker `USER` syntax: `""`, `name`, `uid`, `name:group`, `uid:gid`;
    /// `""` is root. Resolved inside the new root from its `/etc/passwd` and
    /// `/etc/group`.
    pub user: String,
    /// Set in the new UTS namespace; empty keeps the inherited one.
    pub hostname: String,
    pub network: Network,
    /// Extra mounts, applied in order after the standard ones.
    pub mounts: Vec<Mount>,
    /// Host file bound read-only at `/etc/hosts`.
    pub hosts_file: Option<PathBuf>,
    /// Host file bound read-only at `/etc/resolv.conf`.
    pub resolv_conf: Option<PathBuf>,
    /// `--security=insecure`: all capabilities, `/sys` read-write, host
    /// devices allowed. `false` is Docker's default capability set.
    pub insecure: bool,
}

/// The container's root filesystem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rootfs {
    /// overlayfs: `lower[0]` is the TOP layer (overlay's own order). `lower`
    /// may be empty (`FROM scratch`): an empty sibling directory of `work`
    /// (`<work>-empty`) stands in for it during the run.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
}

/// Which network namespace the command sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Network {
    /// berth's own network namespace.
    Host,
    /// A new network namespace with only `lo`, brought up.
    None,
}

/// A mount added on top of the standard ones. Targets are absolute paths
/// inside the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Mount {
    /// A host file or directory (recursively).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A fresh tmpfs; `size` in bytes, `mode` the root directory's mode.
    Tmpfs {
        target: String,
        size: Option<u64>,
        mode: Option<u32>,
    },
    /// A read-only overlay of directories (another stage's layers, top
    /// first), or writable with a throwaway upper when `scratch` is
    /// `Some(dir)` (changes discarded: the caller deletes `dir`).
    Overlay {
        lower: Vec<PathBuf>,
        target: String,
        scratch: Option<PathBuf>,
    },
}

impl Mount {
    pub fn target(&self) -> &str {
        match self {
            Mount::Bind { target, .. }
            | Mount::Tmpfs { target, .. }
            | Mount::Overlay { target, .. } => target,
        }
    }
}

/// Which output stream a chunk of the command's output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// What a shell would show as `$?`: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signal(signal) => 128 + signal,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// Checks what the kernel would otherwise reject late and obscurely, and
/// makes host paths absolute (the init changes directory while mounting).
pub(crate) fn checked(spec: &SandboxSpec) -> Result<SandboxSpec, SandboxError> {
    let invalid = |what: String| Err(SandboxError::InvalidSpec(what));
    let mut spec = spec.clone();
    if spec.args.first().is_none_or(|arg0| arg0.is_empty()) {
        return invalid("no command to run (empty argv)".into());
    }
    if spec.cwd.is_empty() {
        spec.cwd = "/".into();
    }
    if !spec.cwd.starts_with('/') {
        return invalid(format!(
            "working directory {:?} is not an absolute path",
            spec.cwd
        ));
    }
    if spec.hostname.len() > 64 {
        return invalid(format!(
            "hostname {:?} is longer than 64 bytes",
            spec.hostname
        ));
    }
    let strings = spec
        .args
        .iter()
        .chain(&spec.env)
        .chain([&spec.cwd, &spec.user, &spec.hostname]);
    for s in strings {
        if s.contains('\0') {
            return invalid(format!("{s:?} contains a NUL byte"));
        }
    }
    let Rootfs::Overlay { lower, upper, work } = &mut spec.rootfs;
    for path in lower.iter_mut().chain([upper, work]) {
        *path = absolute(path)?;
    }
    if let Some(path) = &mut spec.hosts_file {
        *path = absolute(path)?;
    }
    if let Some(path) = &mut spec.resolv_conf {
        *path = absolute(path)?;
    }
    for mount in &mut spec.mounts {
        let target = mount.target().to_owned();
        if !target.starts_with('/') || target.contains('\0') {
            return invalid(format!("mount target {target:?} is not an absolute path"));
        }
        if target.split('/').all(|c| c.is_empty() || c == ".") {
            return invalid(format!("mount target {target:?} is the container's root"));
        }
        match mount {
            Mount::Bind { source, .. } => *source = absolute(source)?,
            Mount::Tmpfs { .. } => {}
            Mount::Overlay { lower, scratch, .. } => {
                if lower.is_empty() {
                    return invalid(format!("overlay mount on {target} has no layers"));
                }
                for path in lower.iter_mut().chain(scratch) {
                    *path = absolute(path)?;
                }
            }
        }
    }
    Ok(spec)
}

fn absolute(path: &Path) -> Result<PathBuf, SandboxError> {
    std::path::absolute(path).map_err(|e| {
        SandboxError::InvalidSpec(format!("cannot make {} absolute: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            rootfs: Rootfs::Overlay {
                lower: vec!["/l".into()],
                upper: "/u".into(),
                work: "/w".into(),
            },
            args: vec!["true".into()],
            env: vec![],
            cwd: String::new(),
            user: String::new(),
            hostname: String::new(),
            network: Network::Host,
            mounts: vec![],
            hosts_file: None,
            resolv_conf: None,
            insecure: false,
        }
    }

    #[test]
    fn empty_cwd_is_root_and_relative_cwd_is_rejected() {
        assert_eq!(checked(&spec()).unwrap().cwd, "/");
        let mut s = spec();
        s.cwd = "app".into();
        assert!(matches!(checked(&s), Err(SandboxError::InvalidSpec(_))));
    }

    #[test]
    fn empty_args_and_root_targets_are_rejected() {
        let mut s = spec();
        s.args.clear();
        assert!(checked(&s).is_err());
        let mut s = spec();
        s.mounts.push(Mount::Tmpfs {
            target: "/./".into(),
            size: None,
            mode: None,
        });
        assert!(checked(&s).is_err());
    }

    #[test]
    fn shell_codes() {
        assert_eq!(ExitStatus::Code(3).shell_code(), 3);
        assert_eq!(ExitStatus::Signal(9).shell_code(), 137);
    }
}
