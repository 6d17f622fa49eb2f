//! Unpacking tar streams against a real filesystem (as root): every entry
//! type and its metadata, replacement rules, confinement against hostile
//! archives, whiteout conversion, and each compression format.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_runtime::layer::decompress::{Format, decompress, detect, is_tar_archive};
use berth_runtime::layer::unpack::{UnpackError, UnpackOptions, UnpackStats, Whiteouts, unpack};
use tar::{EntryType, Header};
use tempfile::TempDir;

/// Builds archives entry by entry, writing names straight into the header so
/// that hostile names (`..`, absolute) can be produced too.
struct Tar {
    b: tar::Builder<Vec<u8>>,
}

struct E<'a> {
    name: &'a [u8],
    kind: EntryType,
    data: &'a [u8],
    link: Option<&'a [u8]>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
}

fn e(name: &str, kind: EntryType) -> E<'_> {
    E {
        name: name.as_bytes(),
        kind,
        data: b"",
        link: None,
        mode: if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        },
        uid: 0,
        gid: 0,
        mtime: 1_000_000_000,
        dev: (0, 0),
    }
}

impl Tar {
    fn new() -> Tar {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn add(&mut self, e: E<'_>) -> &mut Tar {
        let mut h = Header::new_ustar();
        assert!(e.name.len() <= 100, "use pax for long names");
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name);
        if let Some(link) = e.link {
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_device_major(e.dev.0).unwrap();
        h.set_device_minor(e.dev.1).unwrap();
        h.set_cksum();
        self.b.append(&h, e.data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.add(E {
            data,
            ..e(name, EntryType::Regular)
        })
    }

    fn dir(&mut self, name: &str) -> &mut Tar {
        self.add(e(name, EntryType::Directory))
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.add(E {
            link: Some(target.as_bytes()),
            mode: 0o777,
            ..e(name, EntryType::Symlink)
        })
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.add(E {
            link: Some(target.as_bytes()),
            ..e(name, EntryType::Link)
        })
    }

    fn pax(&mut self, exts: &[(&str, &[u8])]) -> &mut Tar {
        self.b.append_pax_extensions(exts.iter().copied()).unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

fn layer() -> UnpackOptions {
    UnpackOptions::layer()
}

fn keep_all() -> UnpackOptions {
    UnpackOptions {
        whiteouts: Whiteouts::Keep,
        same_owner: true,
        allow_devices: true,
    }
}

fn run(tar: &[u8], dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats, UnpackError> {
    unpack(tar, dest, opts)
}

fn lmeta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir`, relative, sorted (to check nothing else appeared).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let p = entry.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if entry.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn every_entry_type_with_its_metadata() {
    let tmp = TempDir::new().unwrap();
    let content = b"#!/bin/sh\necho hi\n";
    let tar = Tar::new()
        .add(E {
            mode: 0o750,
            uid: 1000,
            gid: 1001,
            mtime: 1_500_000_000,
            ..e("d/", EntryType::Directory)
        })
        .add(E {
            data: content,
            mode: 0o4755,
            uid: 1,
            gid: 2,
            mtime: 1_400_000_000,
            ..e("d/suid", EntryType::Regular)
        })
        .add(E {
            mode: 0o2711,
            ..e("d/sgid", EntryType::Regular)
        })
        .add(E {
            mode: 0o1777,
            ..e("tmp", EntryType::Directory)
        })
        .add(E {
            link: Some(b"d/suid"),
            uid: 5,
            gid: 6,
            mtime: 1_300_000_000,
            ..e("d/link", EntryType::Symlink)
        })
        .hardlink("d/hard", "d/suid")
        .add(E {
            mode: 0o640,
            uid: 7,
            mtime: 1_200_000_000,
            ..e("fifo", EntryType::Fifo)
        })
        .add(E {
            mode: 0o666,
            dev: (1, 3),
            ..e("null", EntryType::Char)
        })
        .add(E {
            mode: 0o660,
            dev: (7, 0),
            gid: 6,
            ..e("loop0", EntryType::Block)
        })
        .finish();
    let dest = tmp.path().join("out");
    fs::create_dir(&dest).unwrap();
    let stats = run(&tar, &dest, &keep_all()).unwrap();
    assert_eq!(stats.entries, 9);
    assert_eq!(stats.bytes, content.len() as u64);

    let d = lmeta(&dest.join("d"));
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o7777, 0o750);
    assert_eq!((d.uid(), d.gid()), (1000, 1001));
    // Set after its children were written.
    assert_eq!(d.mtime(), 1_500_000_000);

    let suid = lmeta(&dest.join("d/suid"));
    assert!(suid.is_file());
    assert_eq!(suid.mode() & 0o7777, 0o4755, "setuid survives chown");
    assert_eq!((suid.uid(), suid.gid()), (1, 2));
    assert_eq!(suid.mtime(), 1_400_000_000);
    assert_eq!(fs::read(dest.join("d/suid")).unwrap(), content);
    assert_eq!(suid.nlink(), 2);

    assert_eq!(lmeta(&dest.join("d/sgid")).mode() & 0o7777, 0o2711);
    assert_eq!(lmeta(&dest.join("tmp")).mode() & 0o7777, 0o1777);

    let link = lmeta(&dest.join("d/link"));
    assert!(link.file_type().is_symlink());
    assert_eq!(
        fs::read_link(dest.join("d/link")).unwrap(),
        Path::new("d/suid")
    );
    assert_eq!((link.uid(), link.gid()), (5, 6), "lchown, not chown");
    assert_eq!(link.mtime(), 1_300_000_000);
    // The target kept its own owner.
    assert_eq!(lmeta(&dest.join("d/suid")).uid(), 1);

    let hard = lmeta(&dest.join("d/hard"));
    assert_eq!(hard.ino(), suid.ino());

    let fifo = lmeta(&dest.join("fifo"));
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
    assert_eq!(fifo.uid(), 7);
    assert_eq!(fifo.mtime(), 1_200_000_000);

    let null = lmeta(&dest.join("null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);

    let blk = lmeta(&dest.join("loop0"));
    assert!(blk.file_type().is_block_device());
    assert_eq!(blk.rdev(), rustix::fs::makedev(7, 0));
    assert_eq!(blk.gid(), 6);
}

#[test]
fn without_same_owner_files_belong_to_the_caller() {
    let tmp = TempDir::new().unwrap();
    let tar = Tar::new()
        .add(E {
            uid: 1234,
            gid: 4321,
            mode: 0o4755,
            ..e("f", EntryType::Regular)
        })
        .finish();
    let opts = UnpackOptions {
        same_owner: false,
        ..keep_all()
    };
    run(&tar, tmp.path(), &opts).unwrap();
    let m = lmeta(&tmp.path().join("f"));
    assert_eq!((m.uid(), m.gid()), (0, 0));
    assert_eq!(m.mode() & 0o7777, 0o4755);
}

#[test]
fn pax_xattrs_long_names_and_precise_times() {
    let tmp = TempDir::new().unwrap();
    let long_dir = "d".repeat(120);
    let long_name = format!("{long_dir}/{}", "f".repeat(150));
    let long_target = format!("/{}", "t".repeat(200));
    let mut t = Tar::new();
    t.pax(&[
        ("SCHILY.xattr.user.color", b"blue"),
        ("SCHILY.xattr.trusted.berth", b"\x00\x01binary"),
        // Never taken from an archive: overlayfs would act on it.
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("mtime", b"1600000000.123456789"),
    ])
    .add(E {
        data: b"x",
        ..e("attrs", EntryType::Regular)
    });
    t.pax(&[("SCHILY.xattr.user.d", b"1")]).dir("xdir");
    t.pax(&[("path", long_name.as_bytes())])
        .file("placeholder", b"long");
    t.pax(&[("linkpath", long_target.as_bytes())])
        .symlink("longlink", "placeholder");
    t.pax(&[("linkpath", long_name.as_bytes())])
        .hardlink("hl", "placeholder");
    // GNU long names, as the tar crate writes them for a GNU header.
    let gnu_name = format!("gnu/{}", "g".repeat(130));
    let mut h = Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    h.set_entry_type(EntryType::Regular);
    t.b.append_data(&mut h, &gnu_name, &b"gnu"[..]).unwrap();
    let tar = t.finish();

    run(&tar, tmp.path(), &layer()).unwrap();
    let attrs = tmp.path().join("attrs");
    assert_eq!(
        xattr::get(&attrs, "user.color").unwrap().as_deref(),
        Some(&b"blue"[..])
    );
    assert_eq!(
        xattr::get(&attrs, "trusted.berth").unwrap().as_deref(),
        Some(&b"\x00\x01binary"[..])
    );
    assert_eq!(
        xattr::get(&attrs, "trusted.overlay.redirect").unwrap(),
        None
    );
    let m = lmeta(&attrs);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(
        xattr::get(tmp.path().join("xdir"), "user.d")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(fs::read(tmp.path().join(&long_name)).unwrap(), b"long");
    assert!(!tmp.path().join("placeholder").exists());
    assert_eq!(
        fs::read_link(tmp.path().join("longlink")).unwrap(),
        Path::new(&long_target)
    );
    assert_eq!(
        lmeta(&tmp.path().join("hl")).ino(),
        lmeta(&tmp.path().join(&long_name)).ino()
    );
    assert_eq!(fs::read(tmp.path().join(&gnu_name)).unwrap(), b"gnu");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tmp = TempDir::new().unwrap();
    let outside = TempDir::new().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, "untouched").unwrap();
    let victim_str = victim.to_str().unwrap();
    let tar = Tar::new()
        .file("f", b"first")
        .file("f", b"second")
        // file -> dir
        .file("x", b"file")
        .dir("x")
        .file("x/inside", b"i")
        // dir (with children) -> file
        .dir("y")
        .file("y/child", b"c")
        .file("y", b"now a file")
        // dir over dir merges, the new header's mode wins
        .dir("m")
        .file("m/a", b"a")
        .add(E {
            mode: 0o700,
            ..e("m", EntryType::Directory)
        })
        .file("m/b", b"b")
        // a symlink is replaced, never written through
        .symlink("s", victim_str)
        .file("s", b"replaced")
        // dir -> symlink
        .dir("z")
        .file("z/q", b"q")
        .symlink("z", "f")
        .finish();
    run(&tar, tmp.path(), &keep_all()).unwrap();
    let p = tmp.path();
    assert_eq!(fs::read(p.join("f")).unwrap(), b"second");
    assert_eq!(fs::read(p.join("x/inside")).unwrap(), b"i");
    assert_eq!(fs::read(p.join("y")).unwrap(), b"now a file");
    assert_eq!(fs::read(p.join("m/a")).unwrap(), b"a");
    assert_eq!(fs::read(p.join("m/b")).unwrap(), b"b");
    assert_eq!(lmeta(&p.join("m")).mode() & 0o7777, 0o700);
    assert!(lmeta(&p.join("s")).is_file());
    assert_eq!(fs::read(p.join("s")).unwrap(), b"replaced");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(lmeta(&p.join("z")).file_type().is_symlink());
}

#[test]
fn dotdot_is_refused_and_nothing_is_written_outside() {
    for name in ["../escape", "a/../../escape", "a/b/../../../escape", ".."] {
        let tmp = TempDir::new().unwrap();
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let tar = Tar::new().file(name, b"evil").finish();
        let err = run(&tar, &dest, &keep_all()).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Unsafe { entry, .. } if entry == name),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(".."), "{err}");
        assert_eq!(tree(tmp.path()), vec!["dest".to_string()], "{name}");
    }
}

#[test]
fn absolute_and_dot_paths_stay_inside() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let tar = Tar::new()
        .add(E {
            mode: 0o711,
            mtime: 1_111_111_111,
            ..e("./", EntryType::Directory)
        })
        .file("/abs/file", b"a")
        .file("./rel/file", b"r")
        .file("//double//slash", b"d")
        .finish();
    run(&tar, &dest, &keep_all()).unwrap();
    assert_eq!(fs::read(dest.join("abs/file")).unwrap(), b"a");
    assert_eq!(fs::read(dest.join("rel/file")).unwrap(), b"r");
    assert_eq!(fs::read(dest.join("double/slash")).unwrap(), b"d");
    // "./" describes the destination itself.
    let m = lmeta(&dest);
    assert_eq!(m.mode() & 0o7777, 0o711);
    assert_eq!(m.mtime(), 1_111_111_111);
    // Implicit parents are 0755.
    assert_eq!(lmeta(&dest.join("abs")).mode() & 0o7777, 0o755);
    assert_eq!(tree(tmp.path()).len(), 1 + 6);
}

#[test]
fn symlinked_parents_resolve_inside_the_destination() {
    let tmp = TempDir::new().unwrap();
    let outside = TempDir::new().unwrap();
    let out = outside.path().to_str().unwrap().to_owned();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let tar = Tar::new()
        // absolute symlink to a real directory outside
        .symlink("evil", &out)
        .file("evil/file", b"1")
        // relative symlink climbing above the root
        .symlink("up", "../../../../..")
        .file("up/file2", b"2")
        // a chain of symlinks
        .symlink("a", "b")
        .symlink("b", &out)
        .file("a/file3", b"3")
        // a symlink to a directory that exists inside: followed
        .dir("real")
        .symlink("alias", "/real")
        .file("alias/file4", b"4")
        // a dangling symlink: its target is created inside
        .symlink("dangling", "/nowhere/deeper")
        .file("dangling/file5", b"5")
        .finish();
    run(&tar, &dest, &keep_all()).unwrap();
    // Nothing outside.
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    let inner = dest.join(out.trim_start_matches('/'));
    assert_eq!(fs::read(inner.join("file")).unwrap(), b"1");
    assert_eq!(fs::read(inner.join("file3")).unwrap(), b"3");
    assert_eq!(fs::read(dest.join("file2")).unwrap(), b"2");
    assert_eq!(fs::read(dest.join("real/file4")).unwrap(), b"4");
    assert_eq!(fs::read(dest.join("nowhere/deeper/file5")).unwrap(), b"5");
    // The symlinks themselves are stored as they were.
    assert_eq!(fs::read_link(dest.join("evil")).unwrap(), Path::new(&out));
    // The temp dir holding dest got nothing else either.
    assert_eq!(
        tree(tmp.path())
            .iter()
            .filter(|p| !p.starts_with("dest"))
            .count(),
        0
    );
}

#[test]
fn symlink_loops_in_parents_are_errors() {
    let tmp = TempDir::new().unwrap();
    let tar = Tar::new()
        .symlink("l1", "l2")
        .symlink("l2", "l1")
        .file("l1/x", b"x")
        .finish();
    let err = run(&tar, tmp.path(), &keep_all()).unwrap_err();
    assert!(
        matches!(&err, UnpackError::Io { entry, .. } if entry == "l1/x"),
        "{err:?}"
    );
}

#[test]
fn a_file_used_as_a_directory_is_an_error() {
    let tmp = TempDir::new().unwrap();
    let tar = Tar::new().file("f", b"x").file("f/y", b"y").finish();
    let err = run(&tar, tmp.path(), &keep_all()).unwrap_err();
    assert!(err.to_string().contains("\"f/y\""), "{err}");
}

#[test]
fn hardlinks_must_point_inside() {
    let outside = TempDir::new().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, "s").unwrap();
    let out = outside.path().to_str().unwrap().to_owned();

    // `..` in the target is refused outright.
    let tmp = TempDir::new().unwrap();
    let tar = Tar::new().hardlink("h", "../secret").finish();
    let err = run(&tar, tmp.path(), &keep_all()).unwrap_err();
    assert!(matches!(err, UnpackError::Unsafe { .. }), "{err:?}");

    // An absolute target means the destination's own file: missing here.
    let tar = Tar::new().hardlink("h", &format!("{out}/secret")).finish();
    let err = run(&tar, tmp.path(), &keep_all()).unwrap_err();
    assert!(matches!(err, UnpackError::InvalidEntry { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    // Through a symlink pointing outside: resolved inside, so missing too.
    let tar = Tar::new()
        .symlink("l", &out)
        .hardlink("h", "l/secret")
        .finish();
    let err = run(&tar, tmp.path(), &keep_all()).unwrap_err();
    assert!(matches!(err, UnpackError::InvalidEntry { .. }), "{err:?}");

    // A final-component symlink target is linked itself, not followed.
    let tar = Tar::new()
        .symlink("s", &format!("{out}/secret"))
        .hardlink("h2", "s")
        .finish();
    run(&tar, tmp.path(), &keep_all()).unwrap();
    assert!(lmeta(&tmp.path().join("h2")).file_type().is_symlink());

    assert_eq!(lmeta(&secret).nlink(), 1);
    assert_eq!(fs::read_to_string(&secret).unwrap(), "s");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);

    // Inside, with a symlinked directory on the way, it works.
    let tmp = TempDir::new().unwrap();
    let tar = Tar::new()
        .dir("real")
        .file("real/f", b"f")
        .symlink("alias", "real")
        .hardlink("h", "alias/f")
        .finish();
    run(&tar, tmp.path(), &keep_all()).unwrap();
    assert_eq!(
        lmeta(&tmp.path().join("h")).ino(),
        lmeta(&tmp.path().join("real/f")).ino()
    );
}

#[test]
fn devices_only_where_allowed() {
    for kind in [EntryType::Char, EntryType::Block] {
        let tmp = TempDir::new().unwrap();
        let tar = Tar::new()
            .add(E {
                dev: (1, 3),
                ..e("dev/thing", kind)
            })
            .finish();
        for opts in [UnpackOptions::default(), {
            UnpackOptions {
                allow_devices: false,
                ..layer()
            }
        }] {
            let err = run(&tar, tmp.path(), &opts).unwrap_err();
            assert!(
                matches!(&err, UnpackError::DeviceNotAllowed { entry, .. } if entry == "dev/thing"),
                "{err:?}"
            );
            assert!(!tmp.path().join("dev/thing").exists());
        }
        run(&tar, tmp.path(), &keep_all()).unwrap();
        assert_eq!(
            lmeta(&tmp.path().join("dev/thing")).rdev(),
            rustix::fs::makedev(1, 3)
        );
    }
    // A 0/0 character device is an overlay whiteout: fine for layers.
    let tmp = TempDir::new().unwrap();
    let tar = Tar::new()
        .add(E {
            mode: 0,
            ..e("wh", EntryType::Char)
        })
        .finish();
    let opts = UnpackOptions {
        allow_devices: false,
        ..layer()
    };
    run(&tar, tmp.path(), &opts).unwrap();
    assert!(lmeta(&tmp.path().join("wh")).file_type().is_char_device());
    assert!(matches!(
        run(&tar, tmp.path(), &UnpackOptions::default()),
        Err(UnpackError::DeviceNotAllowed { .. })
    ));
}

fn whiteout_tar() -> Vec<u8> {
    Tar::new()
        .dir("dir")
        .file("dir/keep", b"k")
        .file("dir/.wh..wh..opq", b"")
        .file("gone", b"earlier in the same layer")
        .file(".wh.gone", b"")
        .file("sub/.wh.x", b"")
        .file(".wh.never-existed", b"")
        .file(".wh..wh.plnk/123.456", b"aufs bookkeeping")
        .file(".wh..wh..opq", b"")
        .finish()
}

#[test]
fn overlay_whiteouts_become_devices_and_xattrs() {
    let tmp = TempDir::new().unwrap();
    let stats = run(&whiteout_tar(), tmp.path(), &layer()).unwrap();
    assert_eq!(stats.entries, 9);
    let p = tmp.path();
    for name in ["gone", "sub/x", "never-existed"] {
        let m = lmeta(&p.join(name));
        assert!(m.file_type().is_char_device(), "{name}");
        assert_eq!(m.rdev(), 0, "{name}");
        assert_eq!(m.mode() & 0o7777, 0, "{name}");
        assert_eq!((m.uid(), m.gid()), (0, 0), "{name}");
    }
    assert_eq!(
        xattr::get(p.join("dir"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        xattr::get(p, "trusted.overlay.opaque").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(fs::read(p.join("dir/keep")).unwrap(), b"k");
    let all = tree(p);
    assert!(
        all.iter().all(|n| !n.contains(".wh.")),
        "no .wh. file lands on disk: {all:?}"
    );
    assert_eq!(
        all,
        vec!["dir", "dir/keep", "gone", "never-existed", "sub", "sub/x"]
    );
}

#[test]
fn kept_whiteouts_are_plain_files() {
    let tmp = TempDir::new().unwrap();
    run(&whiteout_tar(), tmp.path(), &UnpackOptions::default()).unwrap();
    let p = tmp.path();
    for name in [
        "dir/.wh..wh..opq",
        ".wh.gone",
        "sub/.wh.x",
        ".wh..wh.plnk/123.456",
        ".wh..wh..opq",
    ] {
        assert!(lmeta(&p.join(name)).is_file(), "{name}");
    }
    assert!(lmeta(&p.join("gone")).is_file());
    assert_eq!(
        xattr::get(p.join("dir"), "trusted.overlay.opaque").unwrap(),
        None
    );
}

fn sample_tar() -> Vec<u8> {
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    Tar::new()
        .dir("etc")
        .file("etc/hostname", b"box\n")
        .file("big", &big)
        .symlink("link", "etc/hostname")
        .finish()
}

fn check_sample(dir: &Path) {
    assert_eq!(fs::read(dir.join("etc/hostname")).unwrap(), b"box\n");
    let big = fs::read(dir.join("big")).unwrap();
    assert_eq!(big.len(), 1_000_000);
    assert!(
        big.iter()
            .enumerate()
            .all(|(i, &b)| b == (i as u32 * 7 % 251) as u8)
    );
    assert_eq!(
        fs::read_link(dir.join("link")).unwrap(),
        Path::new("etc/hostname")
    );
}

fn compress(format: Format, data: &[u8]) -> Vec<u8> {
    match format {
        Format::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Format::Zstd => zstd::encode_all(data, 3).unwrap(),
        Format::Bzip2 => {
            let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Format::Xz => {
            let mut w = liblzma::write::XzEncoder::new(Vec::new(), 1);
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Format::Plain => data.to_vec(),
    }
}

#[test]
fn every_compression_format_decodes_and_unpacks() {
    let tar = sample_tar();
    for format in [
        Format::Gzip,
        Format::Zstd,
        Format::Bzip2,
        Format::Xz,
        Format::Plain,
    ] {
        let blob = compress(format, &tar);
        assert_eq!(detect(&blob), format);
        let (found, mut reader) = decompress(std::io::Cursor::new(blob.clone())).unwrap();
        assert_eq!(found, format);
        let mut decoded = Vec::new();
        reader.read_to_end(&mut decoded).unwrap();
        assert!(decoded == tar, "{format} round trip");

        let tmp = TempDir::new().unwrap();
        let (_, reader) = decompress(std::io::Cursor::new(blob.clone())).unwrap();
        let stats = run_reader(reader, tmp.path());
        assert_eq!(stats.bytes, 1_000_000 + 4);
        check_sample(tmp.path());

        let file = tmp.path().join("archive");
        fs::write(&file, &blob).unwrap();
        assert!(is_tar_archive(&file).unwrap(), "{format}");
    }
}

fn run_reader(reader: impl Read, dest: &Path) -> UnpackStats {
    unpack(reader, dest, &keep_all()).unwrap()
}

#[test]
fn concatenated_gzip_members_are_one_stream() {
    let tar = sample_tar();
    let (a, b) = tar.split_at(300_001);
    let mut blob = compress(Format::Gzip, a);
    blob.extend(compress(Format::Gzip, b));
    let (_, mut reader) = decompress(std::io::Cursor::new(blob)).unwrap();
    let mut decoded = Vec::new();
    reader.read_to_end(&mut decoded).unwrap();
    assert!(decoded == tar);
}

#[test]
fn is_tar_archive_follows_add_rules() {
    let tmp = TempDir::new().unwrap();
    let p = |n: &str| tmp.path().join(n);
    fs::write(
        p("text"),
        "just some text, long enough to not be short ".repeat(20),
    )
    .unwrap();
    fs::write(p("empty"), "").unwrap();
    fs::write(
        p("text.gz"),
        compress(Format::Gzip, "text ".repeat(200).as_bytes()),
    )
    .unwrap();
    let tar = sample_tar();
    let gz = compress(Format::Gzip, &tar);
    fs::write(p("truncated.gz"), &gz[..6]).unwrap();
    fs::write(p("short.tar"), &tar[..300]).unwrap();
    let mut corrupt = tar.clone();
    corrupt[0] ^= 0x55; // breaks the first header's checksum
    fs::write(p("bad-checksum.tar"), corrupt).unwrap();
    fs::write(p("zeros"), vec![0u8; 1024]).unwrap();
    fs::write(p("fake.gz"), b"\x1f\x8bthis is not gzip at all........").unwrap();
    for name in [
        "text",
        "empty",
        "text.gz",
        "truncated.gz",
        "short.tar",
        "bad-checksum.tar",
        "zeros",
        "fake.gz",
    ] {
        assert!(!is_tar_archive(&p(name)).unwrap(), "{name}");
    }
    fs::write(p("ok.tar"), &tar).unwrap();
    assert!(is_tar_archive(&p("ok.tar")).unwrap());
    assert!(is_tar_archive(&p("missing")).is_err());
    assert!(
        is_tar_archive(tmp.path()).is_err(),
        "a directory cannot be read"
    );
}

#[test]
fn corrupt_and_truncated_archives_are_errors() {
    let tar = sample_tar();
    let tmp = TempDir::new().unwrap();
    // Cut in the middle of "big"'s content.
    let err = run(&tar[..500_000], tmp.path(), &keep_all()).unwrap_err();
    assert!(
        matches!(&err, UnpackError::Archive { entry: Some(e), .. } if e == "big"),
        "{err:?}"
    );
    let mut corrupt = tar.clone();
    corrupt[1536 + 100] ^= 0xff; // "big"'s header, mode field
    let tmp = TempDir::new().unwrap();
    let err = run(&corrupt, tmp.path(), &keep_all()).unwrap_err();
    assert!(matches!(err, UnpackError::Archive { .. }), "{err:?}");
}

#[test]
fn destination_must_exist() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("missing");
    let err = run(&sample_tar(), &missing, &keep_all()).unwrap_err();
    assert!(matches!(err, UnpackError::Destination { .. }));
    assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");
}

#[test]
fn non_utf8_names_survive() {
    let tmp = TempDir::new().unwrap();
    let name = b"caf\xe9";
    let tar = Tar::new()
        .add(E {
            name,
            data: b"latin1",
            ..e("", EntryType::Regular)
        })
        .finish();
    run(&tar, tmp.path(), &keep_all()).unwrap();
    assert_eq!(
        fs::read(tmp.path().join(OsStr::from_bytes(name))).unwrap(),
        b"latin1"
    );
}
