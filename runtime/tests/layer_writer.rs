//! The layer writer against real trees: entry order and header fields, PAX
//! for long names and xattrs, overlay whiteouts, determinism, compression
//! media types and levels, errors that leave the store untouched, and
//! bounded memory on a large file.
//!
//! Runs as root (chown, mknod, trusted.* xattrs, capabilities, mounts).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod support;

use berth_runtime::layer::compress::{Compression, CompressionSpec};
use berth_runtime::layer::tree::{FileData, LayerTree, TreeEntry, TreeKind};
use berth_runtime::layer::writer::{
    LayerBlob, LayerError, LayerOptions, write_layer, write_layer_tree, write_layer_tree_teed,
};
use berth_runtime::store::{Digest, Store, media};
use filetime::FileTime;
use support::mirror;
use tempfile::TempDir;

const EMPTY_TAR_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

fn new_store() -> (TempDir, Store) {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

fn options(kind: Compression, epoch: Option<i64>) -> LayerOptions {
    LayerOptions {
        compression: CompressionSpec::new(kind, None).unwrap(),
        source_date_epoch: epoch,
        overlay_whiteouts: false,
    }
}

fn no_progress(_: u64) {}

fn write(store: &Store, root: &Path, opts: &LayerOptions) -> LayerBlob {
    write_layer(store, root, opts, &no_progress).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift): incompressible content.
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

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let rc = unsafe {
        libc::mknod(
            cstr(path).as_ptr(),
            kind | 0o644,
            libc::makedev(major, minor),
        )
    };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn mkfifo(path: &Path) {
    let rc = unsafe { libc::mkfifo(cstr(path).as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(path: &Path, secs: i64) {
    let t = FileTime::from_unix_time(secs, 123_456_789);
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

/// Sets the mtime of everything below `root` (children first, since adding
/// entries changes a directory's mtime).
fn set_all_mtimes(root: &Path, secs: i64) {
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            set_all_mtimes(&path, secs);
        }
        set_mtime(&path, secs);
    }
}

/// The blob's bytes, checked against its descriptor.
fn blob_bytes(store: &Store, blob: &LayerBlob) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .open_blob(&blob.descriptor.digest)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(Digest::of(&bytes), blob.descriptor.digest);
    assert_eq!(bytes.len() as u64, blob.descriptor.size);
    bytes
}

/// The uncompressed tar, checked against the diff ID and size.
fn tar_bytes(store: &Store, blob: &LayerBlob) -> Vec<u8> {
    let bytes = blob_bytes(store, blob);
    let mut tar = Vec::new();
    match blob.descriptor.media_type.as_str() {
        media::OCI_LAYER_TAR_GZIP => {
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut tar)
                .unwrap();
        }
        media::OCI_LAYER_TAR_ZSTD => {
            zstd::stream::read::Decoder::new(&bytes[..])
                .unwrap()
                .read_to_end(&mut tar)
                .unwrap();
        }
        media::OCI_LAYER_TAR => tar = bytes,
        other => panic!("unexpected media type {other}"),
    }
    assert_eq!(Digest::of(&tar), blob.diff_id);
    assert_eq!(tar.len() as u64, blob.uncompressed_size);
    assert_eq!(tar.len() % 512, 0);
    assert!(
        tar[tar.len() - 1024..].iter().all(|&b| b == 0),
        "no end blocks"
    );
    tar
}

/// One entry as a reader sees it (PAX records applied).
#[derive(Debug, Clone)]
struct Item {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    size: u64,
    link: Option<String>,
    dev: Option<(u32, u32)>,
    pax: Vec<(String, Vec<u8>)>,
    data: Vec<u8>,
}

fn read_items(tar: &[u8]) -> Vec<Item> {
    check_raw_headers(tar);
    let mut pax_records = pax_records_per_entry(tar).into_iter();
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        let kind = h.entry_type();
        let dev = (kind.is_character_special() || kind.is_block_special()).then(|| {
            (
                h.device_major().unwrap().unwrap(),
                h.device_minor().unwrap().unwrap(),
            )
        });
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push(Item {
            path: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
            kind,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            size: entry.size(),
            link: entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            dev,
            pax: pax_records.next().unwrap(),
            data,
        });
    }
    assert!(pax_records.next().is_none());
    out
}

/// The PAX records preceding each real entry, parsed by their length
/// prefix as POSIX specifies. (tar-rs splits records at newlines, which
/// breaks binary xattr values that contain one.)
fn pax_records_per_entry(tar: &[u8]) -> Vec<Vec<(String, Vec<u8>)>> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for entry in archive.entries().unwrap().raw(true) {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_pax_local_extensions() {
            out.push(std::mem::take(&mut pending));
            continue;
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let space = rest.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rest[..space])
                .unwrap()
                .parse()
                .unwrap();
            let record = &rest[space + 1..len];
            assert_eq!(rest[len - 1], b'\n', "record ends with a newline");
            let eq = record.iter().position(|&b| b == b'=').unwrap();
            let key = String::from_utf8(record[..eq].to_vec()).unwrap();
            pending.push((key, record[eq + 1..record.len() - 1].to_vec()));
            rest = &rest[len..];
        }
    }
    out
}

/// Every header, extended ones included: ustar magic, no GNU extensions,
/// empty user and group names, valid checksums.
fn check_raw_headers(tar: &[u8]) {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap().raw(true) {
        let entry = entry.unwrap();
        let h = entry.header();
        let kind = h.entry_type();
        assert!(
            !kind.is_gnu_longname() && !kind.is_gnu_longlink() && !kind.is_gnu_sparse(),
            "GNU extension header {kind:?}"
        );
        assert!(h.as_ustar().is_some(), "not a ustar header: {h:?}");
        assert!(h.username_bytes().unwrap_or_default().is_empty());
        assert!(h.groupname_bytes().unwrap_or_default().is_empty());
    }
}

fn paths(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.path.as_str()).collect()
}

fn find<'a>(items: &'a [Item], path: &str) -> &'a Item {
    items
        .iter()
        .find(|i| i.path == path)
        .unwrap_or_else(|| panic!("no entry {path} in {:?}", paths(items)))
}

fn pax_keys(item: &Item) -> Vec<&str> {
    item.pax.iter().map(|(k, _)| k.as_str()).collect()
}

fn stored_files(store: &Store) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["blobs/sha256", "ingest"] {
        for entry in fs::read_dir(store.root().join(dir)).unwrap() {
            out.push(entry.unwrap().path());
        }
    }
    out
}

#[test]
fn entries_order_types_and_header_fields() {
    let src = TempDir::new().unwrap();
    let root = src.path();
    // Children sorted by bytes, depth first: "a/" and its children come
    // before "a-b" although '-' sorts before '/'; "B" before "a".
    fs::create_dir(root.join("a")).unwrap();
    fs::write(root.join("a/x"), b"in a").unwrap();
    fs::write(root.join("a-b"), b"dash").unwrap();
    fs::write(root.join("B"), b"upper").unwrap();
    fs::write(root.join("file"), b"hello\n").unwrap();
    chmod(&root.join("file"), 0o640);
    lchown(root.join("file"), Some(1234), Some(5678)).unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    chmod(&root.join("dir"), 0o750);
    lchown(root.join("dir"), Some(1000), Some(1001)).unwrap();
    fs::write(root.join("dir/suid"), b"#!/bin/sh\n").unwrap();
    chmod(&root.join("dir/suid"), 0o4755);
    fs::write(root.join("dir/sgid"), b"").unwrap();
    chmod(&root.join("dir/sgid"), 0o2711);
    fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    symlink("file", root.join("link")).unwrap();
    lchown(root.join("link"), Some(7), Some(8)).unwrap();
    symlink("../nowhere/at/all", root.join("dangling")).unwrap();
    // Hard links: the first path in walk order is the one written.
    fs::write(root.join("dir/hard1"), b"shared").unwrap();
    fs::hard_link(root.join("dir/hard1"), root.join("dir/hard2")).unwrap();
    fs::hard_link(root.join("dir/hard1"), root.join("hard0")).unwrap();
    mknod(&root.join("null"), libc::S_IFCHR, 1, 3);
    mknod(&root.join("loop"), libc::S_IFBLK, 7, 0);
    mkfifo(&root.join("pipe"));
    let _socket = UnixListener::bind(root.join("sock")).unwrap();
    set_all_mtimes(root, 1_600_000_000);
    set_mtime(&root.join("B"), 1_000_000_000);

    let (_s, store) = new_store();
    let blob = write(&store, root, &options(Compression::Gzip, None));
    let items = read_items(&tar_bytes(&store, &blob));
    assert_eq!(
        paths(&items),
        [
            "B",
            "a/",
            "a/x",
            "a-b",
            "dangling",
            "dir/",
            "dir/hard1",
            "dir/hard2",
            "dir/sgid",
            "dir/suid",
            "file",
            "hard0",
            "link",
            "loop",
            "null",
            "pipe",
            "sticky/",
        ]
    );

    let file = find(&items, "file");
    assert_eq!(file.kind, tar::EntryType::Regular);
    assert_eq!((file.mode, file.uid, file.gid), (0o640, 1234, 5678));
    assert_eq!((file.size, file.data.as_slice()), (6, &b"hello\n"[..]));
    assert_eq!(file.mtime, 1_600_000_000, "whole seconds");
    assert!(file.pax.is_empty(), "no atime/ctime or other records");
    assert_eq!(find(&items, "B").mtime, 1_000_000_000);

    let dir = find(&items, "dir/");
    assert_eq!(dir.kind, tar::EntryType::Directory);
    assert_eq!(
        (dir.mode, dir.uid, dir.gid, dir.size),
        (0o750, 1000, 1001, 0)
    );
    assert_eq!(find(&items, "dir/suid").mode, 0o4755);
    assert_eq!(find(&items, "dir/sgid").mode, 0o2711);
    assert_eq!(find(&items, "sticky/").mode, 0o1777);

    let link = find(&items, "link");
    assert_eq!(link.kind, tar::EntryType::Symlink);
    assert_eq!(link.link.as_deref(), Some("file"));
    assert_eq!((link.uid, link.gid, link.size), (7, 8, 0));
    assert_eq!(
        find(&items, "dangling").link.as_deref(),
        Some("../nowhere/at/all")
    );

    let first = find(&items, "dir/hard1");
    assert_eq!(first.kind, tar::EntryType::Regular);
    assert_eq!(first.data, b"shared");
    for name in ["dir/hard2", "hard0"] {
        let hard = find(&items, name);
        assert_eq!(hard.kind, tar::EntryType::Link, "{name}");
        assert_eq!(hard.link.as_deref(), Some("dir/hard1"), "{name}");
        assert_eq!(hard.size, 0, "{name}");
    }

    let null = find(&items, "null");
    assert_eq!(null.kind, tar::EntryType::Char);
    assert_eq!(null.dev, Some((1, 3)));
    let lp = find(&items, "loop");
    assert_eq!(lp.kind, tar::EntryType::Block);
    assert_eq!(lp.dev, Some((7, 0)));
    assert_eq!(find(&items, "pipe").kind, tar::EntryType::Fifo);
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let src = TempDir::new().unwrap();
    let root = src.path();
    fs::write(root.join("old"), b"o").unwrap();
    fs::write(root.join("new"), b"n").unwrap();
    fs::create_dir(root.join("d")).unwrap();
    symlink("new", root.join("s")).unwrap();
    set_all_mtimes(root, 2_000_000_000);
    set_mtime(&root.join("old"), 1_000_000_000);

    let (_s, store) = new_store();
    let epoch = 1_500_000_000;
    let blob = write(&store, root, &options(Compression::Zstd, Some(epoch)));
    let items = read_items(&tar_bytes(&store, &blob));
    assert_eq!(find(&items, "old").mtime, 1_000_000_000, "older stays");
    for path in ["new", "d/", "s"] {
        assert_eq!(find(&items, path).mtime, epoch as u64, "{path}");
    }
}

#[test]
fn long_names_and_targets_use_pax_not_gnu() {
    let src = TempDir::new().unwrap();
    let root = src.path();
    // One 150-byte component: no slash to split at, so PAX `path`.
    let long_name = "n".repeat(150);
    fs::write(root.join(&long_name), b"long").unwrap();
    // 120-byte symlink target: PAX `linkpath`.
    let target = format!("{}/{}", "t".repeat(60), "u".repeat(59));
    assert_eq!(target.len(), 120);
    symlink(&target, root.join("sym")).unwrap();
    // A 152-byte path with slashes fits ustar's prefix + name: no PAX
    // (and "ddd.../" is exactly the 100 bytes the name field holds).
    let deep = format!("{}/{}", "d".repeat(99), "e".repeat(50));
    fs::create_dir_all(root.join(&deep)).unwrap();
    fs::write(root.join(&deep).join("f"), b"deep").unwrap();
    // A hard link whose first path is long: PAX `linkpath` too.
    fs::hard_link(root.join(&long_name), root.join("short")).unwrap();
    // Non-ASCII names are not ustar: PAX `path`, bytes kept.
    fs::write(root.join("caf\u{e9}"), b"utf8").unwrap();

    let (_s, store) = new_store();
    let blob = write(&store, root, &options(Compression::Uncompressed, None));
    let tar = tar_bytes(&store, &blob);
    let items = read_items(&tar);

    let long = find(&items, &long_name);
    assert_eq!(long.data, b"long");
    assert_eq!(pax_keys(long), ["path"]);
    let sym = find(&items, "sym");
    assert_eq!(sym.link.as_deref(), Some(target.as_str()));
    assert_eq!(pax_keys(sym), ["linkpath"]);
    let hard = find(&items, "short");
    assert_eq!(hard.kind, tar::EntryType::Link);
    assert_eq!(hard.link.as_deref(), Some(long_name.as_str()));
    let deep_file = find(&items, &format!("{deep}/f"));
    assert!(deep_file.pax.is_empty(), "{:?}", deep_file.pax);
    assert_eq!(deep_file.data, b"deep");
    let deep_dir = find(&items, &format!("{deep}/"));
    assert!(deep_dir.pax.is_empty());
    assert_eq!(pax_keys(find(&items, "caf\u{e9}")), ["path"]);

    // The extended headers are real PAX ('x') headers.
    let mut archive = tar::Archive::new(&tar[..]);
    let raw_kinds: Vec<_> = archive
        .entries()
        .unwrap()
        .raw(true)
        .map(|e| e.unwrap().header().entry_type())
        .collect();
    assert_eq!(
        raw_kinds
            .iter()
            .filter(|k| k.is_pax_local_extensions())
            .count(),
        4
    );
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    xattr::set(path, name, value)
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

#[test]
fn xattrs_become_sorted_pax_records_without_overlay_ones() {
    let src = TempDir::new().unwrap();
    let root = src.path();
    let f = root.join("f");
    fs::write(&f, b"x").unwrap();
    set_xattr(&f, "user.foo", b"bar");
    set_xattr(&f, "user.abc", b"\0binary\n=value");
    set_xattr(&f, "trusted.overlay.origin", b"\x00\xfb");
    set_xattr(&f, "user.overlay.redirect", b"/x");
    // A valid VFS_CAP_REVISION_2 value (cap_net_bind_service=ep).
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 10).to_le_bytes());
    set_xattr(&f, "security.capability", &cap);
    let cap = xattr::get(&f, "security.capability").unwrap().unwrap();
    // Without an SELinux policy the kernel may refuse the label: best effort.
    let selinux = xattr::set(&f, "security.selinux", b"system_u:object_r:x:s0").is_ok();
    fs::create_dir(root.join("d")).unwrap();
    set_xattr(&root.join("d"), "user.dir", b"1");
    set_xattr(&root.join("d"), "trusted.overlay.opaque", b"y");

    let (_s, store) = new_store();
    let blob = write(&store, root, &options(Compression::Gzip, None));
    let items = read_items(&tar_bytes(&store, &blob));
    let file = find(&items, "f");
    assert_eq!(
        file.pax,
        [
            ("SCHILY.xattr.security.capability".to_owned(), cap),
            (
                "SCHILY.xattr.user.abc".to_owned(),
                b"\0binary\n=value".to_vec()
            ),
            ("SCHILY.xattr.user.foo".to_owned(), b"bar".to_vec()),
        ],
        "selinux label was set: {selinux}"
    );
    let dir = find(&items, "d/");
    assert_eq!(pax_keys(dir), ["SCHILY.xattr.user.dir"]);
    // Without overlay_whiteouts the opaque directory gets no marker.
    assert_eq!(paths(&items), ["d/", "f"]);
}

#[test]
fn overlay_whiteouts_are_translated_when_asked() {
    let src = TempDir::new().unwrap();
    let root = src.path();
    fs::create_dir(root.join("etc")).unwrap();
    mknod(&root.join("etc/gone"), libc::S_IFCHR, 0, 0);
    lchown(root.join("etc/gone"), Some(33), Some(33)).unwrap();
    // Overlayfs may share one inode among whiteouts: still whiteouts, not links.
    fs::hard_link(root.join("etc/gone"), root.join("etc/gone2")).unwrap();
    mknod(&root.join("etc/tty"), libc::S_IFCHR, 5, 0);
    fs::create_dir(root.join("opaque")).unwrap();
    fs::write(root.join("opaque/.hidden"), b"h").unwrap();
    fs::write(root.join("opaque/keep"), b"k").unwrap();
    set_xattr(&root.join("opaque"), "trusted.overlay.opaque", b"y");
    set_xattr(&root.join("opaque"), "user.keep", b"v");
    fs::create_dir(root.join("userns")).unwrap();
    set_xattr(&root.join("userns"), "user.overlay.opaque", b"y");
    // "x" marks a directory holding whiteouts for a lower layer, not opacity.
    fs::create_dir(root.join("xdir")).unwrap();
    set_xattr(&root.join("xdir"), "trusted.overlay.opaque", b"x");
    set_all_mtimes(root, 1_700_000_000);

    let (_s, store) = new_store();
    let mut opts = options(Compression::Zstd, Some(1_650_000_000));
    opts.overlay_whiteouts = true;
    let blob = write(&store, root, &opts);
    let items = read_items(&tar_bytes(&store, &blob));
    assert_eq!(
        paths(&items),
        [
            "etc/",
            "etc/.wh.gone",
            "etc/.wh.gone2",
            "etc/tty",
            "opaque/",
            "opaque/.wh..wh..opq",
            "opaque/.hidden",
            "opaque/keep",
            "userns/",
            "userns/.wh..wh..opq",
            "xdir/",
        ]
    );
    for path in [
        "etc/.wh.gone",
        "etc/.wh.gone2",
        "opaque/.wh..wh..opq",
        "userns/.wh..wh..opq",
    ] {
        let w = find(&items, path);
        assert_eq!(w.kind, tar::EntryType::Regular, "{path}");
        assert_eq!((w.mode, w.uid, w.gid, w.size), (0, 0, 0, 0), "{path}");
        assert_eq!(w.mtime, 1_650_000_000, "{path}");
        assert!(w.pax.is_empty(), "{path}");
    }
    assert_eq!(find(&items, "etc/tty").dev, Some((5, 0)));
    assert_eq!(
        pax_keys(find(&items, "opaque/")),
        ["SCHILY.xattr.user.keep"]
    );
    assert!(find(&items, "xdir/").pax.is_empty());

    // Without the option the upper directory is archived as it is.
    opts.overlay_whiteouts = false;
    let blob = write(&store, root, &opts);
    let items = read_items(&tar_bytes(&store, &blob));
    assert_eq!(
        paths(&items),
        [
            "etc/",
            "etc/gone",
            "etc/gone2",
            "etc/tty",
            "opaque/",
            "opaque/.hidden",
            "opaque/keep",
            "userns/",
            "xdir/",
        ]
    );
    let gone = find(&items, "etc/gone");
    assert_eq!(gone.kind, tar::EntryType::Char);
    assert_eq!((gone.dev, gone.uid), (Some((0, 0)), 33));
    assert_eq!(find(&items, "etc/gone2").kind, tar::EntryType::Link);
}

#[test]
fn empty_tree_is_the_canonical_empty_tar() {
    let src = TempDir::new().unwrap();
    let (_s, store) = new_store();
    for (kind, media_type) in [
        (Compression::Gzip, media::OCI_LAYER_TAR_GZIP),
        (Compression::Zstd, media::OCI_LAYER_TAR_ZSTD),
        (Compression::Uncompressed, media::OCI_LAYER_TAR),
    ] {
        assert_eq!(kind.media_type(), media_type);
        let blob = write(&store, src.path(), &options(kind, None));
        assert_eq!(blob.diff_id.to_string(), EMPTY_TAR_DIFF_ID, "{kind}");
        assert_eq!(blob.uncompressed_size, 1024);
        assert_eq!(blob.descriptor.media_type, media_type);
        let tar = tar_bytes(&store, &blob);
        assert_eq!(tar, vec![0u8; 1024]);
        if kind == Compression::Uncompressed {
            assert_eq!(blob.descriptor.digest, blob.diff_id);
        }
    }
}

/// A tree with the same content each call, created in a different order
/// (so inode numbers and directory order differ) with the given mtime.
fn make_tree(root: &Path, reverse: bool, mtime: i64) {
    let mut names: Vec<usize> = (0..40).collect();
    if reverse {
        names.reverse();
    }
    fs::create_dir(root.join("src")).unwrap();
    for i in &names {
        let text = format!("fn f{i}() {{ println!(\"{i}\"); }}\n").repeat(50 + i * 7);
        fs::write(root.join(format!("src/m{i}.rs")), text).unwrap();
    }
    // Several chunks (256 KiB) of incompressible and compressible data.
    fs::write(root.join("blob.bin"), noise(1_500_000, 7)).unwrap();
    fs::write(root.join("zeros"), vec![0u8; 700_000]).unwrap();
    fs::hard_link(root.join("blob.bin"), root.join("blob.link")).unwrap();
    symlink("src/m1.rs", root.join("main.rs")).unwrap();
    set_all_mtimes(root, mtime);
}

#[test]
fn same_tree_gives_same_digests() {
    let a = TempDir::new().unwrap();
    let b = TempDir::new().unwrap();
    make_tree(a.path(), false, 1_700_000_000);
    make_tree(b.path(), true, 1_800_000_000);
    let epoch = Some(1_600_000_000);
    let (_s, store) = new_store();
    for kind in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        let opts = options(kind, epoch);
        let first = write(&store, a.path(), &opts);
        let second = write(&store, b.path(), &opts);
        assert_eq!(first, second, "{kind}");
        // Writing a blob the store already has is fine and changes nothing.
        assert_eq!(write(&store, a.path(), &opts), first, "{kind}");
        let items = read_items(&tar_bytes(&store, &first));
        assert_eq!(items.len(), 45, "{kind}");
        assert_eq!(find(&items, "blob.bin").data, noise(1_500_000, 7));
    }
    // Without the epoch the differing mtimes show.
    let opts = options(Compression::Uncompressed, None);
    assert_ne!(
        write(&store, a.path(), &opts).diff_id,
        write(&store, b.path(), &opts).diff_id
    );
}

#[test]
fn compression_levels_and_progress() {
    let src = TempDir::new().unwrap();
    make_tree(src.path(), false, 1_700_000_000);
    let (_s, store) = new_store();
    let mut diff_ids = Vec::new();
    for (kind, level) in [
        (Compression::Gzip, Some(0)),
        (Compression::Gzip, Some(9)),
        (Compression::Zstd, Some(1)),
        (Compression::Zstd, Some(19)),
        (Compression::Uncompressed, None),
    ] {
        let opts = LayerOptions {
            compression: CompressionSpec::new(kind, level).unwrap(),
            ..LayerOptions::default()
        };
        let seen = Mutex::new(Vec::new());
        let blob = write_layer(&store, src.path(), &opts, &|n| {
            seen.lock().unwrap().push(n);
        })
        .unwrap();
        assert_eq!(blob.descriptor.media_type, kind.media_type());
        tar_bytes(&store, &blob);
        let seen = seen.into_inner().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen.last().copied(), Some(blob.uncompressed_size));
        assert!(seen.len() > 5, "one call per chunk: {seen:?}");
        diff_ids.push(blob.diff_id);
    }
    assert!(diff_ids.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn compression_settings_are_checked_with_helpful_messages() {
    let err = Compression::parse("lz4").unwrap_err().to_string();
    assert!(
        err.contains("\"lz4\"") && err.contains("gzip, zstd, uncompressed"),
        "{err}"
    );
    assert_eq!(Compression::parse("zstd").unwrap(), Compression::Zstd);
    for kind in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        assert_eq!(Compression::parse(kind.name()).unwrap(), kind);
    }

    let err = CompressionSpec::new(Compression::Gzip, Some(10)).unwrap_err();
    assert!(matches!(err, LayerError::InvalidLevel { level: 10, .. }));
    assert!(
        err.to_string().contains("gzip") && err.to_string().contains("0 to 9"),
        "{err}"
    );
    for level in [0, 23, -1] {
        let err = CompressionSpec::new(Compression::Zstd, Some(level))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 to 22"), "{err}");
    }
    let err = CompressionSpec::new(Compression::Uncompressed, Some(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no compression level"), "{err}");

    assert_eq!(CompressionSpec::default().kind, Compression::Gzip);
    assert_eq!(
        CompressionSpec::new(Compression::Zstd, None)
            .unwrap()
            .level(),
        3
    );
    assert_eq!(
        CompressionSpec::new(Compression::Gzip, Some(6))
            .unwrap()
            .level(),
        6
    );

    // The fields are public; write_layer checks them again.
    let src = TempDir::new().unwrap();
    let (_s, store) = new_store();
    let opts = LayerOptions {
        compression: CompressionSpec {
            kind: Compression::Gzip,
            level: Some(42),
        },
        ..LayerOptions::default()
    };
    let err = write_layer(&store, src.path(), &opts, &no_progress).unwrap_err();
    assert!(
        matches!(err, LayerError::InvalidLevel { level: 42, .. }),
        "{err}"
    );
    assert!(stored_files(&store).is_empty());
}

#[test]
fn root_must_be_a_directory() {
    let src = TempDir::new().unwrap();
    let file = src.path().join("file");
    fs::write(&file, b"x").unwrap();
    let (_s, store) = new_store();
    let err = write_layer(&store, &file, &LayerOptions::default(), &no_progress).unwrap_err();
    assert!(matches!(err, LayerError::NotADirectory { .. }));
    assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    let missing = src.path().join("missing");
    let err = write_layer(&store, &missing, &LayerOptions::default(), &no_progress).unwrap_err();
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
    assert!(stored_files(&store).is_empty());
}

/// Linux capability sets (capget/capset, version 3).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the calling thread
/// only (capabilities are per thread), so file modes apply to root.
fn drop_dac_capabilities() {
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !((1 << 1) | (1 << 2));
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn unreadable_file_fails_naming_it_and_stores_nothing() {
    let src = TempDir::new().unwrap();
    let root = src.path();
    // Enough content before it that the compressor has already written to
    // the blob's temp file when the error comes.
    fs::write(root.join("a-first"), noise(2_000_000, 3)).unwrap();
    fs::create_dir(root.join("sub")).unwrap();
    let secret = root.join("sub/secret");
    fs::write(&secret, b"no").unwrap();
    chmod(&secret, 0o000);
    fs::write(root.join("z-last"), b"after").unwrap();
    let (_s, store) = new_store();

    let result = std::thread::scope(|s| {
        s.spawn(|| {
            drop_dac_capabilities();
            write_layer(&store, root, &LayerOptions::default(), &no_progress)
        })
        .join()
        .unwrap()
    });
    let err = result.unwrap_err();
    assert!(
        matches!(err, LayerError::Io { action: "open", .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&*secret.to_string_lossy()), "{msg}");
    assert!(msg.contains("ermission denied"), "{msg}");
    assert!(
        stored_files(&store).is_empty(),
        "{:?}",
        stored_files(&store)
    );
}

/// A small tmpfs, unmounted (lazily) on drop.
struct SmallFs {
    dir: TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> std::io::Result<SmallFs> {
        let dir = TempDir::new()?;
        let target = cstr(dir.path());
        let opts = CString::new(format!("size={size}")).unwrap();
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SmallFs { dir })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        unsafe { libc::umount2(cstr(self.dir.path()).as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn full_disk_fails_and_stores_nothing() {
    let small = SmallFs::mount("512k").expect("mount a tmpfs (tests run as root)");
    let store = Store::open(&small.dir.path().join("store")).unwrap();
    let src = TempDir::new().unwrap();
    fs::write(src.path().join("big"), noise(4_000_000, 11)).unwrap();
    for kind in [
        Compression::Uncompressed,
        Compression::Gzip,
        Compression::Zstd,
    ] {
        let err = write_layer(&store, src.path(), &options(kind, None), &no_progress)
            .expect_err("a 4 MB layer cannot fit in 512 KiB");
        let msg = err.to_string();
        assert!(msg.contains("No space left"), "{kind}: {msg}");
        assert!(
            msg.contains(&*store.root().to_string_lossy()),
            "{kind}: {msg}"
        );
        assert!(stored_files(&store).is_empty(), "{kind}");
    }
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const MEMORY_CHILD_ENV: &str = "BERTH_LAYER_WRITER_MEMORY_CHILD";

/// Runs in a child process (see `large_file_memory_stays_flat`) so that
/// no other test's allocations count against it.
#[test]
#[ignore = "run by large_file_memory_stays_flat in its own process"]
fn large_file_memory_child() {
    let Some(size) = std::env::var_os(MEMORY_CHILD_ENV) else {
        return;
    };
    let size: u64 = size.to_str().unwrap().parse().unwrap();
    let src = TempDir::new().unwrap();
    // Sparse: costs no disk, reads as zeros.
    File::create(src.path().join("big"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let (_s, store) = new_store();
    let opts = LayerOptions {
        compression: CompressionSpec::new(Compression::Zstd, Some(1)).unwrap(),
        ..LayerOptions::default()
    };
    // Warm up on a few MiB: thread stacks, allocator arenas and every
    // buffer zstd keeps per job are then in place.
    let warm = TempDir::new().unwrap();
    fs::write(warm.path().join("data"), noise(8 << 20, 5)).unwrap();
    write(&store, warm.path(), &opts);
    let before = vm_hwm_kib();
    let blob = write(&store, src.path(), &opts);
    let after = vm_hwm_kib();
    assert!(blob.uncompressed_size > size);
    println!("peak RSS growth: {} KiB", after - before);
}

#[test]
fn large_file_memory_stays_flat() {
    // 1 GiB; the child runs a debug build, where hashing is slowest.
    let size = 1u64 << 30;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "large_file_memory_child",
            "--ignored",
            "--nocapture",
        ])
        .env(MEMORY_CHILD_ENV, size.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let growth: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak RSS growth: "))
        .and_then(|l| l.strip_suffix(" KiB"))
        .unwrap_or_else(|| panic!("no figure in child output:\n{stdout}"))
        .parse()
        .unwrap();
    eprintln!("writing a 1 GiB file raised peak RSS by {growth} KiB");
    assert!(growth < 16 * 1024, "peak RSS grew by {growth} KiB");
}

#[test]
fn a_layer_tree_writes_the_same_tar_as_the_directory_it_describes() {
    let src = TempDir::new().unwrap();
    let root = src.path();
    fs::create_dir_all(root.join("a/deep")).unwrap();
    fs::write(root.join("a/deep/x"), noise(300_000, 7)).unwrap();
    fs::write(root.join("a-b"), b"dash").unwrap();
    fs::write(root.join("B"), b"upper").unwrap();
    chmod(&root.join("B"), 0o4751);
    lchown(root.join("B"), Some(1234), Some(5678)).unwrap();
    fs::hard_link(root.join("a-b"), root.join("a/hard")).unwrap();
    symlink("../a-b", root.join("a/link")).unwrap();
    let long = "n".repeat(120);
    fs::write(root.join(&long), b"long name").unwrap();
    symlink("t".repeat(130), root.join("longlink")).unwrap();
    set_xattr(&root.join("a-b"), "user.note", b"value\nwith newline");
    mknod(&root.join("null"), libc::S_IFCHR, 1, 3);
    mknod(&root.join("loop"), libc::S_IFBLK, 7, 0);
    mkfifo(&root.join("pipe"));
    set_all_mtimes(root, 1_600_000_000);

    let mut tree = LayerTree::new();
    mirror(root, root, &mut tree);
    let (_s, store) = new_store();
    for epoch in [None, Some(1_500_000_000)] {
        let opts = options(Compression::Gzip, epoch);
        let from_dir = write(&store, root, &opts);
        let from_tree = write_layer_tree(&store, &tree, &opts, &no_progress).unwrap();
        assert_eq!(from_dir.diff_id, from_tree.diff_id);
        assert_eq!(from_dir.descriptor, from_tree.descriptor);
    }

    // In-memory content is written like a file with the same bytes.
    let mut bytes_tree = tree.clone();
    let entry = bytes_tree.get("B").unwrap().clone();
    bytes_tree.insert(
        "B",
        TreeEntry {
            kind: TreeKind::File(FileData::Bytes(b"upper".as_slice().into())),
            ..entry
        },
    );
    let opts = options(Compression::Uncompressed, None);
    assert_eq!(
        write_layer_tree(&store, &bytes_tree, &opts, &no_progress)
            .unwrap()
            .diff_id,
        write(&store, root, &opts).diff_id
    );

    // A source that stopped being a regular file fails the layer, naming it.
    fs::remove_file(root.join("a/deep/x")).unwrap();
    symlink("/etc/passwd", root.join("a/deep/x")).unwrap();
    let before = stored_files(&store);
    let err = write_layer_tree(&store, &tree, &opts, &no_progress).unwrap_err();
    assert!(err.to_string().contains("a/deep/x"), "{err}");
    assert_eq!(stored_files(&store), before);
}

/// A tree with content larger than the writer's 256 KiB buffers, small
/// files and a PAX-named entry, mirrored from `root`.
fn tee_tree(root: &Path) -> LayerTree {
    fs::create_dir_all(root.join("d/e")).unwrap();
    fs::write(root.join("d/big"), noise(700_000, 3)).unwrap();
    for i in 0..50 {
        fs::write(root.join(format!("d/e/f{i}")), format!("file {i}\n")).unwrap();
    }
    fs::write(root.join("n".repeat(120)), b"long").unwrap();
    set_all_mtimes(root, 1_600_000_000);
    let mut tree = LayerTree::new();
    mirror(root, root, &mut tree);
    tree
}

#[test]
fn a_tee_reads_exactly_the_tar_the_diff_id_covers() {
    let src = TempDir::new().unwrap();
    let tree = tee_tree(src.path());
    let (_s, store) = new_store();
    let opts = options(Compression::Gzip, None);
    let (blob, seen) = write_layer_tree_teed(&store, &tree, &opts, &no_progress, |tar| {
        let mut bytes = Vec::new();
        tar.read_to_end(&mut bytes).map(|_| bytes)
    });
    let blob = blob.unwrap();
    let seen = seen
        .expect("the tee ran")
        .expect("the stream ended cleanly");
    assert_eq!(Digest::of(&seen), blob.diff_id);
    assert_eq!(seen.len() as u64, blob.uncompressed_size);
    assert_eq!(seen, tar_bytes(&store, &blob));
    // The tee changes nothing about the blob.
    let plain = write_layer_tree(&store, &tree, &opts, &no_progress).unwrap();
    assert_eq!(plain, blob);
}

#[test]
fn a_tee_that_stops_early_or_panics_does_not_hold_up_the_layer() {
    let src = TempDir::new().unwrap();
    let tree = tee_tree(src.path());
    let (_s, store) = new_store();
    let opts = options(Compression::Zstd, None);
    let plain = write_layer_tree(&store, &tree, &opts, &no_progress).unwrap();

    let (blob, read) = write_layer_tree_teed(&store, &tree, &opts, &no_progress, |tar| {
        let mut head = [0u8; 10];
        tar.read_exact(&mut head).map(|()| head)
    });
    assert_eq!(blob.unwrap(), plain);
    assert!(read.unwrap().is_ok());

    let (blob, nothing) = write_layer_tree_teed(&store, &tree, &opts, &no_progress, |tar| {
        let mut head = [0u8; 10];
        let _ = tar.read(&mut head);
        panic!("a tee that fails hard");
    });
    assert_eq!(blob.unwrap(), plain);
    assert!(nothing.is_none());
}

#[test]
fn a_failed_layer_fails_its_tee_instead_of_ending_it() {
    let src = TempDir::new().unwrap();
    let tree = tee_tree(src.path());
    // The last file of the tree stops being a regular file.
    let victim = src.path().join("n".repeat(120));
    fs::remove_file(&victim).unwrap();
    symlink("/etc/passwd", &victim).unwrap();
    let (_s, store) = new_store();
    let before = stored_files(&store);
    let opts = options(Compression::Gzip, None);
    let (blob, read) = write_layer_tree_teed(&store, &tree, &opts, &no_progress, |tar| {
        let mut bytes = Vec::new();
        tar.read_to_end(&mut bytes)
    });
    assert!(blob.unwrap_err().to_string().contains("nnnn"));
    let err = read.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(stored_files(&store), before);
}
