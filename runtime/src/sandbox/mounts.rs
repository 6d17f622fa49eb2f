//! The container's filesystems besides its root: `/proc`, `/dev` (a tmpfs
//! with the host's basic devices bound in, `pts`, `shm`, `mqueue`), `/sys`,
//! `/etc/hosts` and `/etc/resolv.conf`, the spec's mounts, and Docker's
//! masked and read-only paths.
//!
//! Everything is built in two halves with the new mount API: [`prepare`]
//! runs before `pivot_root`, while host paths can still be reached, and
//! makes detached mounts; [`Prepared::attach`] runs after it and attaches
//! them at paths resolved inside the new root.
//!
//! Device access. berth has no device cgroup, so outside `insecure` mode
//! the root, `/dev` and every writable mount are `nodev`: the command can
//! still `mknod` (Docker's `CAP_MKNOD`) but not open what it made. The six
//! basic devices are bind mounts of the host's own nodes, which keep their
//! mount's permission to be opened. In `insecure` mode `/dev` also gets a
//! node for every host device, as BuildKit allows them all.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags};

use super::mountpoint::{Kind, MountPoints};
use super::overlay::{self, Layers};
use super::protocol::{SetupError, Step};
use super::spec::{Mount, Network, SandboxSpec};
use super::sys::mount_setattr;

/// Host devices every container gets.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Paths Docker hides (an empty read-only tmpfs for directories, `/dev/null`
/// for files), outside `insecure` mode.
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Paths Docker makes read-only, outside `insecure` mode.
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// `/dev` subdirectories that are filesystems of their own, not devices.
const DEV_SKIP: [&str; 4] = ["pts", "shm", "mqueue", "hugepages"];

/// A host device node to recreate in `/dev` (`insecure` mode).
struct HostDevice {
    /// Relative to `/dev`.
    path: PathBuf,
    mode: u32,
    rdev: u64,
    uid: u32,
    gid: u32,
}

/// Detached mounts, ready to be attached in the new root.
pub(crate) struct Prepared {
    proc_: OwnedFd,
    sys: OwnedFd,
    dev: OwnedFd,
    pts: OwnedFd,
    shm: OwnedFd,
    mqueue: Option<OwnedFd>,
    devices: Vec<(&'static str, OwnedFd)>,
    host_devices: Vec<HostDevice>,
    hosts: Option<OwnedFd>,
    resolv: Option<OwnedFd>,
    extra: Vec<(String, Kind, OwnedFd)>,
    insecure: bool,
}

/// Builds every mount the container needs except its root. Runs in PID 1
/// (`/proc` must belong to the new PID namespace), before `pivot_root`.
pub(crate) fn prepare(spec: &SandboxSpec, classic_overlay: bool) -> Result<Prepared, SetupError> {
    let insecure = spec.insecure;
    let nodev = if insecure {
        MountAttrFlags::empty()
    } else {
        MountAttrFlags::MOUNT_ATTR_NODEV
    };
    let hidden = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;

    let proc_ = new_fs("proc", &[], hidden).step("mount", || "mount proc".into())?;
    let mut sys_attrs = hidden;
    if !insecure {
        sys_attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    let sys = match new_fs("sysfs", &[], sys_attrs) {
        Ok(sys) => sys,
        // sysfs shows the mounter's network namespace: the kernel may
        // refuse a new instance for berth's own; the host's is the same.
        Err(_) if matches!(spec.network, Network::Host) => clone_tree(Path::new("/sys"), true)
            .and_then(|sys| {
                mount_setattr(sys.as_fd(), sys_attrs, true)?;
                Ok(sys)
            })
            .step("mount", || {
                "bind the host's /sys (sysfs was refused)".into()
            })?,
        Err(e) => return Err(e).step("mount", || "mount sysfs".into()),
    };
    let dev = new_fs(
        "tmpfs",
        &[("mode", "755"), ("size", "65536k")],
        MountAttrFlags::MOUNT_ATTR_NOSUID | nodev,
    )
    .step("mount", || "mount a tmpfs for /dev".into())?;
    let pts = new_fs(
        "devpts",
        &[("ptmxmode", "0666"), ("mode", "0620"), ("gid", "5")],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
    .step("mount", || "mount devpts".into())?;
    let shm = new_fs("tmpfs", &[("mode", "1777"), ("size", "64m")], hidden)
        .step("mount", || "mount a tmpfs for /dev/shm".into())?;
    // Optional, as in runc: a kernel without POSIX message queues is fine.
    let mqueue = new_fs("mqueue", &[], hidden).ok();

    let mut devices = Vec::new();
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        match clone_tree(&host, false) {
            Ok(mnt) => devices.push((name, mnt)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).step("mount", || format!("bind the host's {}", host.display()));
            }
        }
    }
    let host_devices = if insecure {
        let mut found = Vec::new();
        list_host_devices(Path::new("/dev"), Path::new(""), &mut found)
            .step("mount", || "list the host's devices".into())?;
        found
    } else {
        Vec::new()
    };

    let bind_file = |source: &Option<PathBuf>| -> Result<Option<OwnedFd>, SetupError> {
        let Some(source) = source else {
            return Ok(None);
        };
        clone_tree(source, false)
            .and_then(|mnt| {
                let attrs = MountAttrFlags::MOUNT_ATTR_RDONLY | hidden;
                mount_setattr(mnt.as_fd(), attrs, false)?;
                Ok(mnt)
            })
            .map(Some)
            .step("mount", || format!("bind {}", source.display()))
    };
    let hosts = bind_file(&spec.hosts_file)?;
    let resolv = bind_file(&spec.resolv_conf)?;

    let mut extra = Vec::new();
    for mount in &spec.mounts {
        let target = mount.target().to_owned();
        let (kind, mnt) = prepare_mount(mount, insecure, classic_overlay)?;
        extra.push((target, kind, mnt));
    }

    Ok(Prepared {
        proc_,
        sys,
        dev,
        pts,
        shm,
        mqueue,
        devices,
        host_devices,
        hosts,
        resolv,
        extra,
        insecure,
    })
}

fn prepare_mount(
    mount: &Mount,
    insecure: bool,
    classic_overlay: bool,
) -> Result<(Kind, OwnedFd), SetupError> {
    let nodev = if insecure {
        MountAttrFlags::empty()
    } else {
        MountAttrFlags::MOUNT_ATTR_NODEV
    };
    match mount {
        Mount::Bind {
            source,
            target,
            readonly,
        } => {
            let what = || format!("bind {} on {target}", source.display());
            let meta = fs::metadata(source).step("mount", what)?;
            let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
            let mnt = clone_tree(source, true).step("mount", what)?;
            let mut attrs = nodev;
            if *readonly {
                attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
            }
            if !attrs.is_empty() {
                mount_setattr(mnt.as_fd(), attrs, true).step("mount", what)?;
            }
            Ok((kind, mnt))
        }
        Mount::Tmpfs { target, size, mode } => {
            let size = size.map(|s| s.to_string());
            let mode = mode.map(|m| format!("{m:o}"));
            let mut options = Vec::new();
            if let Some(size) = &size {
                options.push(("size", size.as_str()));
            }
            if let Some(mode) = &mode {
                options.push(("mode", mode.as_str()));
            }
            let mnt = new_fs("tmpfs", &options, MountAttrFlags::MOUNT_ATTR_NOSUID | nodev)
                .step("mount", || format!("mount a tmpfs on {target}"))?;
            Ok((Kind::Dir, mnt))
        }
        Mount::Overlay {
            lower,
            target,
            scratch,
        } => {
            let what = || format!("mount an overlay on {target}");
            let mnt = match scratch {
                Some(dir) => {
                    let (upper, work) = (dir.join("upper"), dir.join("work"));
                    for d in [dir, &upper, &work] {
                        match fs::create_dir(d) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                            Err(e) => {
                                return Err(e).step("mount", || format!("create {}", d.display()));
                            }
                        }
                    }
                    let layers = Layers {
                        lower,
                        upper_work: Some((&upper, &work)),
                        readonly: false,
                        nodev: !insecure,
                    };
                    overlay::mount_detached(&layers, classic_overlay)?
                }
                // overlayfs wants two layers without an upper; one layer
                // read-only is a read-only bind.
                None if lower.len() == 1 => clone_tree(&lower[0], true)
                    .and_then(|mnt| {
                        let attrs = MountAttrFlags::MOUNT_ATTR_RDONLY | nodev;
                        mount_setattr(mnt.as_fd(), attrs, true)?;
                        Ok(mnt)
                    })
                    .step("mount", what)?,
                None => {
                    let layers = Layers {
                        lower,
                        upper_work: None,
                        readonly: true,
                        nodev: !insecure,
                    };
                    overlay::mount_detached(&layers, classic_overlay)?
                }
            };
            Ok((Kind::Dir, mnt))
        }
    }
}

impl Prepared {
    /// Attaches everything in the new root (after `pivot_root`), creating
    /// mount points as needed; those on the root overlay are reported.
    pub fn attach(self, points: &MountPoints<'_>) -> Result<(), SetupError> {
        let at = |target: &str, kind: Kind| {
            points
                .ensure(target, kind, true)
                .step("mount", || format!("create the mount point {target}"))
        };
        attach(&self.proc_, &at("/proc", Kind::Dir)?)?;

        let dev = at("/dev", Kind::Dir)?;
        attach(&self.dev, &dev)?;
        self.populate_dev(&dev)?;

        attach(&self.sys, &at("/sys", Kind::Dir)?)?;
        if !self.insecure {
            mask_and_protect()?;
        }
        if let Some(hosts) = &self.hosts {
            attach(hosts, &at("/etc/hosts", Kind::File)?)?;
        }
        if let Some(resolv) = &self.resolv {
            attach(resolv, &at("/etc/resolv.conf", Kind::File)?)?;
        }
        for (target, kind, mnt) in &self.extra {
            attach(mnt, &at(target, *kind)?)?;
        }
        Ok(())
    }

    fn populate_dev(&self, dev: &Path) -> Result<(), SetupError> {
        for (name, mnt) in &self.devices {
            let node = dev.join(name);
            fs::File::create(&node).step("mount", || format!("create {}", node.display()))?;
            attach(mnt, &node)?;
        }
        let links = [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ];
        for (name, target) in links {
            let link = dev.join(name);
            symlink(target, &link)
                .step("mount", || format!("create the symlink {}", link.display()))?;
        }
        let mut subdirs = vec![("pts", &self.pts), ("shm", &self.shm)];
        if let Some(mqueue) = &self.mqueue {
            subdirs.push(("mqueue", mqueue));
        }
        for (name, mnt) in subdirs {
            let dir = dev.join(name);
            fs::create_dir(&dir).step("mount", || format!("create {}", dir.display()))?;
            attach(mnt, &dir)?;
        }
        for device in &self.host_devices {
            make_node(dev, device).step("mount", || {
                format!("create the device {}", dev.join(&device.path).display())
            })?;
        }
        Ok(())
    }
}

/// Docker's masked and read-only paths; those the kernel lacks are skipped.
fn mask_and_protect() -> Result<(), SetupError> {
    for path in MASKED.map(Path::new) {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).step("mount", || format!("mask {}", path.display())),
        };
        let mask = if meta.is_dir() {
            new_fs("tmpfs", &[], MountAttrFlags::MOUNT_ATTR_RDONLY)
        } else {
            clone_tree(Path::new("/dev/null"), false)
        };
        let mask = mask.step("mount", || format!("mask {}", path.display()))?;
        attach(&mask, path)?;
    }
    for path in READONLY.map(Path::new) {
        let mnt = match clone_tree(path, true) {
            Ok(mnt) => mnt,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).step("mount", || format!("protect {}", path.display())),
        };
        let attrs = MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC;
        mount_setattr(mnt.as_fd(), attrs, true)
            .step("mount", || format!("make {} read-only", path.display()))?;
        attach(&mnt, path)?;
    }
    Ok(())
}

/// A new filesystem instance, as a detached mount.
fn new_fs(fstype: &str, options: &[(&str, &str)], attrs: MountAttrFlags) -> io::Result<OwnedFd> {
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (key, value) in options {
        rustix::mount::fsconfig_set_string(fs.as_fd(), *key, *value)?;
    }
    rustix::mount::fsconfig_create(fs.as_fd())?;
    Ok(rustix::mount::fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        attrs,
    )?)
}

/// A detached copy of the mount at `source` (a bind mount), with the
/// mounts below it when `recursive`.
fn clone_tree(source: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(rustix::mount::open_tree(CWD, source, flags)?)
}

/// Attaches a detached mount at `target` (resolved: no symlinks).
fn attach(mnt: &OwnedFd, target: &Path) -> Result<(), SetupError> {
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .step("mount", || format!("mount on {}", target.display()))
}

/// Collects device nodes under `root/rel`, one directory level deep.
fn list_host_devices(root: &Path, rel: &Path, out: &mut Vec<HostDevice>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        let path = rel.join(&name);
        let meta = entry.metadata()?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let skip = DEV_SKIP.iter().any(|s| name == *s);
            if rel.as_os_str().is_empty() && !skip {
                list_host_devices(root, &path, out)?;
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            out.push(HostDevice {
                path,
                mode: meta.mode(),
                rdev: meta.rdev(),
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
    }
    Ok(())
}

/// Recreates a host device under `dev`, unless something is there already
/// (the bound basic devices).
fn make_node(dev: &Path, device: &HostDevice) -> io::Result<()> {
    let path = dev.join(&device.path);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file_type = if device.mode & libc::S_IFMT == libc::S_IFBLK {
        rustix::fs::FileType::BlockDevice
    } else {
        rustix::fs::FileType::CharacterDevice
    };
    match rustix::fs::mknodat(
        CWD,
        &path,
        file_type,
        rustix::fs::Mode::from_raw_mode(device.mode & 0o7777),
        device.rdev,
    ) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    rustix::fs::chmod(&path, rustix::fs::Mode::from_raw_mode(device.mode & 0o7777))?;
    rustix::fs::chown(
        &path,
        Some(rustix::fs::Uid::from_raw(device.uid)),
        Some(rustix::fs::Gid::from_raw(device.gid)),
    )?;
    Ok(())
}
