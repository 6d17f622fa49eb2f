//! Snapshots unpacked from a layer's tar stream while the layer is written
//! (`write_layer_tree_teed` + `Snapshots::unpack_stream`), as root: they
//! must be exactly what unpacking the stored blob gives (names, types,
//! modes, owners, mtimes, xattrs, symlinks, hardlinks, whiteouts, bytes),
//! follow the bytes written rather than the tree, keep nothing when the
//! layer or the check fails, and, with a reference snapshot, share only
//! the files that are identical.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

mod support;

use berth_runtime::layer::compress::{Compression, CompressionSpec};
use berth_runtime::layer::tree::{FileData, LayerTree, TreeEntry, TreeKind};
use berth_runtime::layer::unpack::{UnpackOptions, unpack_reusing};
use berth_runtime::layer::writer::{
    LayerBlob, LayerOptions, write_layer_tree, write_layer_tree_teed,
};
use berth_runtime::snapshot::{SnapshotError, Snapshots};
use berth_runtime::store::{Digest, Store};
use support::mirror;
use tempfile::TempDir;

fn new_store(tmp: &TempDir, name: &str) -> (Store, Snapshots) {
    let store = Store::open(&tmp.path().join(name)).unwrap();
    let snaps = Snapshots::open(&store).unwrap();
    (store, snaps)
}

fn options() -> LayerOptions {
    LayerOptions {
        compression: CompressionSpec::new(Compression::Gzip, None).unwrap(),
        source_date_epoch: None,
        overlay_whiteouts: false,
    }
}

/// Writes `tree` into `store` and unpacks it on the way (with `reference`);
/// returns the layer and the committed snapshot's path.
fn write_teed(
    store: &Store,
    snaps: &Snapshots,
    tree: &LayerTree,
    reference: Option<&Digest>,
) -> (LayerBlob, PathBuf, u64) {
    let (layer, unpacked) = write_layer_tree_teed(store, tree, &options(), &|_| {}, |tar| {
        snaps.unpack_stream(tar, reference)
    });
    let layer = layer.unwrap();
    let unpacked = unpacked.unwrap().unwrap();
    let reused = unpacked.reused();
    let path = unpacked.commit(&layer.diff_id).unwrap();
    assert_eq!(path, snaps.path(&layer.diff_id));
    assert!(snaps.contains(&layer.diff_id));
    (layer, path, reused)
}

/// The same layer written the ordinary way into another store, and its
/// snapshot unpacked from the blob.
fn write_then_ensure(store: &Store, snaps: &Snapshots, tree: &LayerTree) -> (LayerBlob, PathBuf) {
    let layer = write_layer_tree(store, tree, &options(), &|_| {}).unwrap();
    let path = snaps
        .ensure(store, &layer.descriptor, &layer.diff_id)
        .unwrap();
    (layer, path)
}

/// Everything about one entry that unpacking decides.
#[derive(Debug, PartialEq, Eq)]
struct Desc {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    /// (seconds, nanoseconds); not for the root or whiteouts, which get
    /// theirs when they are made, not from the layer.
    mtime: Option<(i64, i64)>,
    rdev: u64,
    content: Option<Digest>,
    target: Option<PathBuf>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The first path (in sorted order) of the tree with the same inode.
    same_as: Option<String>,
}

/// Describes every entry under `root`, by relative path (`""` for the root).
fn describe(root: &Path) -> BTreeMap<String, Desc> {
    let mut out = BTreeMap::new();
    let mut first: HashMap<(u64, u64), String> = HashMap::new();
    let mut todo = vec![root.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(dir) = todo.pop() {
        paths.push(dir.clone());
        if fs::symlink_metadata(&dir).unwrap().is_dir() {
            for e in fs::read_dir(&dir).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    paths.sort();
    for path in paths {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let m = fs::symlink_metadata(&path).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&path)
            .unwrap()
            .map(|n| {
                let v = xattr::get(&path, &n).unwrap().unwrap_or_default();
                (n.as_bytes().to_vec(), v)
            })
            .collect();
        xattrs.sort();
        let whiteout = ft.is_char_device() && m.rdev() == 0;
        let same_as = if ft.is_dir() {
            None
        } else {
            let f = first
                .entry((m.dev(), m.ino()))
                .or_insert_with(|| rel.clone());
            (f != &rel).then(|| f.clone())
        };
        out.insert(
            rel.clone(),
            Desc {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: (!(rel.is_empty() || whiteout)).then(|| (m.mtime(), m.mtime_nsec())),
                rdev: m.rdev(),
                content: ft.is_file().then(|| Digest::of(&fs::read(&path).unwrap())),
                target: ft.is_symlink().then(|| fs::read_link(&path).unwrap()),
                xattrs,
                same_as,
            },
        );
    }
    out
}

/// Compares two descriptions entry by entry, naming the first difference.
fn assert_same(a: &BTreeMap<String, Desc>, b: &BTreeMap<String, Desc>) {
    let keys = |m: &BTreeMap<String, Desc>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(a), keys(b));
    for (path, desc) in a {
        assert_eq!(desc, &b[path], "{path:?}");
    }
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn mkfifo(path: &Path) {
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(cstr(path).as_ptr(), 0o640) }, 0);
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtimes(root: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 0);
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            set_mtimes(&p, secs);
        }
        filetime::set_symlink_file_times(&p, t, t).unwrap();
    }
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Names under `snapshots/` that are work directories (`.unpack-`, `.stage-`).
fn work_dirs(snaps: &Snapshots) -> Vec<String> {
    fs::read_dir(snaps.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".unpack-") || n.starts_with(".stage-"))
        .collect()
}

#[test]
fn unpacked_while_writing_equals_unpacked_from_the_blob() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("d/sub")).unwrap();
    fs::create_dir_all(ctx.join("e")).unwrap();
    fs::create_dir_all(ctx.join("o")).unwrap();
    fs::write(ctx.join("d/big"), noise(700_000, 9)).unwrap();
    fs::write(ctx.join("d/small"), b"small\n").unwrap();
    fs::write(ctx.join("d/empty"), b"").unwrap();
    fs::write(ctx.join("d/suid"), b"#!/bin/sh\n").unwrap();
    chmod(&ctx.join("d/suid"), 0o4755);
    fs::write(ctx.join("d/attrs"), b"with xattrs").unwrap();
    xattr::set(ctx.join("d/attrs"), "user.one", b"1").unwrap();
    // (No newline: the tar crate cuts PAX records at newlines.)
    xattr::set(ctx.join("d/attrs"), "user.two", &[0, 255, b'=']).unwrap();
    fs::write(ctx.join("d/h1"), b"linked").unwrap();
    fs::hard_link(ctx.join("d/h1"), ctx.join("d/sub/h2")).unwrap();
    symlink("../d/small", ctx.join("e/link")).unwrap();
    symlink("/no/such/target", ctx.join("e/dangling")).unwrap();
    fs::write(ctx.join("d/.wh.gone"), b"").unwrap();
    fs::write(ctx.join("o/.wh..wh..opq"), b"").unwrap();
    fs::write(ctx.join("o/kept"), b"kept").unwrap();
    mkfifo(&ctx.join("e/fifo"));
    fs::write(ctx.join("e").join("n".repeat(130)), b"a long name").unwrap();
    lchown(ctx.join("e"), Some(5), Some(6)).unwrap();
    lchown(ctx.join("d/small"), Some(1000), Some(100)).unwrap();
    lchown(ctx.join("e/link"), Some(7), Some(8)).unwrap();
    chmod(&ctx.join("e"), 0o750);
    set_mtimes(&ctx, 1_600_000_000);
    filetime::set_file_mtime(
        ctx.join("d/big"),
        filetime::FileTime::from_unix_time(1_234_567_890, 0),
    )
    .unwrap();
    let mut tree = LayerTree::new();
    mirror(&ctx, &ctx, &mut tree);
    // Content from memory too, as heredocs have it.
    tree.insert(
        "d/heredoc",
        TreeEntry {
            kind: TreeKind::File(FileData::Bytes(b"inline\n".as_slice().into())),
            mode: 0o640,
            uid: 3,
            gid: 4,
            mtime: 1_700_000_000,
            xattrs: Vec::new(),
            link_key: None,
        },
    );

    let (store_a, snaps_a) = new_store(&tmp, "a");
    let (layer_a, teed) = {
        let (layer, path, reused) = write_teed(&store_a, &snaps_a, &tree, None);
        assert_eq!(reused, 0);
        (layer, path)
    };
    let (store_b, snaps_b) = new_store(&tmp, "b");
    let (layer_b, from_blob) = write_then_ensure(&store_b, &snaps_b, &tree);
    assert_eq!(layer_a, layer_b);

    let (a, b) = (describe(&teed), describe(&from_blob));
    assert_same(&a, &b);
    // What the comparison covered.
    assert_eq!(
        a["d/gone"].kind, "char",
        "whiteouts become overlay whiteouts"
    );
    assert!(!a.contains_key("d/.wh.gone"));
    assert!(
        a["o"]
            .xattrs
            .iter()
            .any(|(n, v)| n == b"trusted.overlay.opaque" && v == b"y")
    );
    assert_eq!(a["d/sub/h2"].same_as.as_deref(), Some("d/h1"));
    assert_eq!(a["d/suid"].mode, 0o4755);
    assert_eq!((a["e"].uid, a["e"].gid, a["e"].mode), (5, 6, 0o750));
    assert_eq!((a["e/link"].uid, a["e/link"].gid), (7, 8));
    assert_eq!(a["d/big"].mtime, Some((1_234_567_890, 0)));
    assert_eq!(a["d/attrs"].xattrs.len(), 2);
    assert_eq!(a["e/fifo"].kind, "fifo");
    assert_eq!(a["d/heredoc"].content, Some(Digest::of(b"inline\n")));
    assert!(work_dirs(&snaps_a).is_empty());
}

#[test]
fn a_snapshot_follows_the_bytes_written_not_the_tree() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("f"), b"old").unwrap();
    fs::write(ctx.join("g"), noise(300_000, 1)).unwrap();
    let mut tree = LayerTree::new();
    mirror(&ctx, &ctx, &mut tree);
    // The context changes after the layout, before the layer is written.
    fs::write(ctx.join("f"), b"new and longer").unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(ctx.join("g"))
        .unwrap()
        .write_all(b"appended")
        .unwrap();

    let (store_a, snaps_a) = new_store(&tmp, "a");
    let (layer_a, teed, _) = write_teed(&store_a, &snaps_a, &tree, None);
    let (store_b, snaps_b) = new_store(&tmp, "b");
    let (layer_b, from_blob) = write_then_ensure(&store_b, &snaps_b, &tree);
    assert_eq!(layer_a, layer_b);
    assert_same(&describe(&teed), &describe(&from_blob));
    assert_eq!(fs::read(teed.join("f")).unwrap(), b"new and longer");

    // A source that stops being a regular file fails the layer: no
    // snapshot, no work directory left.
    fs::remove_file(ctx.join("g")).unwrap();
    mkfifo(&ctx.join("g"));
    let before = snaps_a.list().unwrap();
    let (layer, unpacked) = write_layer_tree_teed(&store_a, &tree, &options(), &|_| {}, |tar| {
        snaps_a.unpack_stream(tar, None)
    });
    assert!(layer.is_err());
    assert!(matches!(
        unpacked,
        Some(Err(
            SnapshotError::UnpackStream { .. } | SnapshotError::ReadStream { .. }
        ))
    ));
    assert_eq!(snaps_a.list().unwrap(), before);
    assert!(work_dirs(&snaps_a).is_empty());
}

#[test]
fn a_stream_that_is_not_the_layer_keeps_nothing() {
    let tmp = TempDir::new().unwrap();
    let (store, snaps) = new_store(&tmp, "a");
    let mut tree = LayerTree::new();
    tree.insert(
        "x",
        TreeEntry {
            kind: TreeKind::File(FileData::Bytes(b"x".as_slice().into())),
            ..TreeEntry::root_dir()
        },
    );
    let (layer, unpacked) = write_layer_tree_teed(&store, &tree, &options(), &|_| {}, |tar| {
        snaps.unpack_stream(tar, None)
    });
    let layer = layer.unwrap();
    let unpacked = unpacked.unwrap().unwrap();
    let wrong = Digest::of(b"another layer");
    let err = unpacked.commit(&wrong).unwrap_err();
    assert!(
        matches!(err, SnapshotError::StreamMismatch { expected, actual } if expected == wrong && actual == layer.diff_id),
        "{err}"
    );
    assert!(snaps.list().unwrap().is_empty());
    assert!(work_dirs(&snaps).is_empty());
}

#[test]
fn unchanged_files_are_linked_from_the_reference() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("src/a")).unwrap();
    fs::create_dir_all(ctx.join("src/b")).unwrap();
    for i in 0..30 {
        let dir = if i % 2 == 0 { "a" } else { "b" };
        fs::write(ctx.join(format!("src/{dir}/f{i}")), format!("file {i}\n")).unwrap();
    }
    fs::write(ctx.join("src/big"), noise(700_000, 5)).unwrap();
    fs::write(ctx.join("src/tail"), vec![b'a'; 1000]).unwrap();
    fs::write(ctx.join("src/mode"), b"mode").unwrap();
    fs::write(ctx.join("src/attr"), b"attr").unwrap();
    xattr::set(ctx.join("src/attr"), "user.v", b"1").unwrap();
    fs::write(ctx.join("src/owner"), b"owner").unwrap();
    set_mtimes(&ctx, 1_600_000_000);
    let mut tree = LayerTree::new();
    mirror(&ctx, &ctx, &mut tree);
    let (store, snaps) = new_store(&tmp, "a");
    let (first, s1, reused) = write_teed(&store, &snaps, &tree, None);
    assert_eq!(reused, 0);
    let s1_before = describe(&s1);

    // One byte in the middle of the big file (so a prefix matches), the
    // last byte of another, a mode, an xattr and an owner change; one file
    // goes, one comes.
    let mut big = noise(700_000, 5);
    big[400_000] ^= 1;
    fs::write(ctx.join("src/big"), big).unwrap();
    let mut tail = vec![b'a'; 1000];
    tail[999] = b'b';
    fs::write(ctx.join("src/tail"), tail).unwrap();
    chmod(&ctx.join("src/mode"), 0o600);
    xattr::set(ctx.join("src/attr"), "user.v", b"2").unwrap();
    lchown(ctx.join("src/owner"), Some(1), Some(1)).unwrap();
    fs::remove_file(ctx.join("src/a/f0")).unwrap();
    fs::write(ctx.join("src/a/new"), b"new\n").unwrap();
    set_mtimes(&ctx, 1_600_000_000);
    let mut tree2 = LayerTree::new();
    mirror(&ctx, &ctx, &mut tree2);

    let (second, s2, reused) = write_teed(&store, &snaps, &tree2, Some(&first.diff_id));
    assert_eq!(reused, 29, "the 29 small files left unchanged");
    let (store_b, snaps_b) = new_store(&tmp, "b");
    let (layer_b, from_blob) = write_then_ensure(&store_b, &snaps_b, &tree2);
    assert_eq!(second, layer_b);
    assert_same(&describe(&s2), &describe(&from_blob));
    // The reference is untouched.
    assert_same(&describe(&s1), &s1_before);

    let ino = |root: &Path, rel: &str| fs::metadata(root.join(rel)).unwrap().ino();
    assert_eq!(ino(&s1, "src/b/f1"), ino(&s2, "src/b/f1"));
    assert_eq!(ino(&s1, "src/a/f2"), ino(&s2, "src/a/f2"));
    for changed in ["src/big", "src/tail", "src/mode", "src/attr", "src/owner"] {
        assert_ne!(ino(&s1, changed), ino(&s2, changed), "{changed}");
    }
}

/// A reference file and a tar whose entries match it.
fn reference_and_tar(with_link: bool) -> (TempDir, PathBuf, Vec<u8>) {
    let tmp = TempDir::new().unwrap();
    let reference = tmp.path().join("ref");
    fs::create_dir(&reference).unwrap();
    fs::write(reference.join("f"), b"same").unwrap();
    chmod(&reference.join("f"), 0o644);
    lchown(reference.join("f"), Some(0), Some(0)).unwrap();
    filetime::set_file_mtime(
        reference.join("f"),
        filetime::FileTime::from_unix_time(1_600_000_000, 0),
    )
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("f").unwrap();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    b.append(&h, &b"same"[..]).unwrap();
    if with_link {
        let mut h = tar::Header::new_ustar();
        h.set_path("g").unwrap();
        h.set_entry_type(tar::EntryType::Link);
        h.set_link_name("f").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
    }
    (tmp, reference, b.into_inner().unwrap())
}

#[test]
fn a_hardlink_to_a_shared_file_is_refused() {
    let (tmp, reference, tar) = reference_and_tar(false);
    let dest = tmp.path().join("one");
    fs::create_dir(&dest).unwrap();
    let stats = unpack_reusing(&tar[..], &dest, &UnpackOptions::layer(), &reference).unwrap();
    assert_eq!(stats.reused, 1);
    assert_eq!(
        fs::metadata(dest.join("f")).unwrap().ino(),
        fs::metadata(reference.join("f")).unwrap().ino()
    );

    // A second name for a shared inode would make it reachable at two
    // paths: refused, so the caller unpacks without a reference.
    let (tmp, reference, tar) = reference_and_tar(true);
    let dest = tmp.path().join("two");
    fs::create_dir(&dest).unwrap();
    let err = unpack_reusing(&tar[..], &dest, &UnpackOptions::layer(), &reference).unwrap_err();
    assert!(err.to_string().contains("reference"), "{err}");

    // Without owners from the archive nothing is reused.
    let (tmp, reference, tar) = reference_and_tar(false);
    let dest = tmp.path().join("three");
    fs::create_dir(&dest).unwrap();
    let stats = unpack_reusing(&tar[..], &dest, &UnpackOptions::default(), &reference).unwrap();
    assert_eq!(stats.reused, 0);
}

#[test]
fn lineage_hints_name_only_snapshots_that_exist() {
    let tmp = TempDir::new().unwrap();
    let (store, snaps) = new_store(&tmp, "a");
    let site = Digest::of(b"COPY src/ /app/src/");
    assert_eq!(snaps.line(&site), None);
    let mut tree = LayerTree::new();
    tree.insert("d", TreeEntry::root_dir());
    let (layer, _, _) = write_teed(&store, &snaps, &tree, None);
    snaps.set_line(&site, &layer.diff_id).unwrap();
    assert_eq!(snaps.line(&site), Some(layer.diff_id));
    // Hints are not snapshots.
    assert_eq!(snaps.list().unwrap(), vec![layer.diff_id]);

    snaps.remove(&layer.diff_id).unwrap();
    assert_eq!(snaps.line(&site), None);
    let hints = || {
        fs::read_dir(snaps.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".line-")
            })
            .count()
    };
    assert_eq!(hints(), 1);
    snaps
        .clean_staging(std::time::Duration::from_secs(3600))
        .unwrap();
    assert_eq!(
        hints(),
        0,
        "a hint to a removed snapshot goes, whatever its age"
    );
}
