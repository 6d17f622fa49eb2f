//! Capabilities and the switch to the command's user: Docker's default
//! capability set (or everything, `--security=insecure`), the ids and
//! groups from [`ExecUser`], and `no_new_privs`.
//!
//! Order matters: the bounding set is reduced while the init still has
//! `CAP_SETPCAP`; ids change next (for a non-root uid the kernel then
//! clears the permitted and effective sets, so such a user ends with none,
//! as in Docker); then the remaining sets are set exactly.

use std::fs;
use std::io;

use rustix::thread::{CapabilitySet, CapabilitySets};

use super::user::ExecUser;

/// Docker's default capabilities (moby's `oci/caps/defaults.go`), by number.
pub(crate) const DOCKER_DEFAULT: [(u32, &str); 14] = [
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (3, "CAP_FOWNER"),
    (4, "CAP_FSETID"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (8, "CAP_SETPCAP"),
    (10, "CAP_NET_BIND_SERVICE"),
    (13, "CAP_NET_RAW"),
    (18, "CAP_SYS_CHROOT"),
    (27, "CAP_MKNOD"),
    (29, "CAP_AUDIT_WRITE"),
    (31, "CAP_SETFCAP"),
];

/// The bit mask of a list of capability numbers.
pub(crate) fn mask_of(caps: impl IntoIterator<Item = u32>) -> u64 {
    caps.into_iter()
        .filter(|&c| c < 64)
        .fold(0, |mask, c| mask | 1 << c)
}

/// Every capability the running kernel knows.
pub(crate) fn all_mask(last_cap: u32) -> u64 {
    mask_of(0..=last_cap)
}

/// The capabilities to keep: Docker's default set, or all of them.
pub(crate) fn keep_mask(insecure: bool, last_cap: u32) -> u64 {
    if insecure {
        all_mask(last_cap)
    } else {
        mask_of(DOCKER_DEFAULT.map(|(c, _)| c)) & all_mask(last_cap)
    }
}

/// The capabilities to drop from the bounding set, in order.
pub(crate) fn bounding_drops(keep: u64, last_cap: u32) -> impl Iterator<Item = u32> {
    (0..=last_cap.min(63)).filter(move |&c| keep & (1 << c) == 0)
}

/// The highest capability number of the running kernel.
pub(crate) fn last_cap() -> io::Result<u32> {
    let text = fs::read_to_string("/proc/sys/kernel/cap_last_cap")?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("unexpected cap_last_cap {text:?}")))
}

/// A step of [`drop_privileges`] that failed, and how.
pub(crate) struct CredError {
    pub what: &'static str,
    pub error: io::Error,
}

fn check(what: &'static str, ret: libc::c_int) -> Result<(), CredError> {
    if ret < 0 {
        return Err(CredError {
            what,
            error: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Becomes `user` with the capabilities `keep` allows (none for non-root).
pub(crate) fn drop_privileges(
    user: &ExecUser,
    insecure: bool,
    last_cap: u32,
) -> Result<(), CredError> {
    let keep = keep_mask(insecure, last_cap);
    for cap in bounding_drops(keep, last_cap) {
        // SAFETY: prctl with integer arguments only.
        check("drop capabilities from the bounding set", unsafe {
            libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0)
        })?;
    }
    // SAFETY: as above.
    check("clear the ambient capabilities", unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    // SAFETY: the pointer and length describe `user.groups`.
    check("set the supplementary groups", unsafe {
        libc::setgroups(user.groups.len(), user.groups.as_ptr())
    })?;
    // SAFETY: plain id system calls (the process is single-threaded).
    check("set the group id", unsafe { libc::setgid(user.gid) })?;
    // SAFETY: as above.
    check("set the user id", unsafe { libc::setuid(user.uid) })?;
    let current = rustix::thread::capabilities(None).map_err(|e| CredError {
        what: "read the capabilities",
        error: e.into(),
    })?;
    // Root keeps `keep` (what the kernel left of it); anyone else already
    // lost everything in setuid, and inheritable stays empty as in Docker.
    let kept = if user.uid == 0 {
        current.permitted & CapabilitySet::from_bits_retain(keep)
    } else {
        CapabilitySet::empty()
    };
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: kept,
            permitted: kept,
            inheritable: CapabilitySet::empty(),
        },
    )
    .map_err(|e| CredError {
        what: "set the capabilities",
        error: e.into(),
    })?;
    rustix::thread::set_no_new_privs(true).map_err(|e| CredError {
        what: "set no_new_privs",
        error: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask() {
        assert_eq!(keep_mask(false, 40), 0x0000_0000_a804_25fb);
        assert_eq!(DOCKER_DEFAULT.len(), 14);
    }

    #[test]
    fn insecure_keeps_everything_the_kernel_has() {
        assert_eq!(keep_mask(true, 40), 0x1ff_ffff_ffff);
        assert_eq!(keep_mask(true, 37), 0x3f_ffff_ffff);
        // An old kernel without the higher numbers.
        assert_eq!(keep_mask(false, 30), 0x2804_25fb);
    }

    #[test]
    fn drops_are_the_complement() {
        let drops: Vec<u32> = bounding_drops(keep_mask(false, 40), 40).collect();
        assert_eq!(drops.len(), 41 - 14);
        assert!(drops.contains(&21)); // CAP_SYS_ADMIN
        assert!(!drops.contains(&0));
        assert_eq!(bounding_drops(all_mask(40), 40).count(), 0);
    }
}
