//! The snapshot store against a real filesystem (as root): unpacking layer
//! blobs once, verification against the diff ID, concurrency, staging,
//! removal and crash leftovers.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, SystemTime};

use berth_runtime::snapshot::{SnapshotError, Snapshots};
use berth_runtime::store::{Descriptor, Digest, Store, media};
use tempfile::TempDir;

fn new_store() -> (TempDir, Store) {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

/// A small layer tar: a file, a directory, a symlink and a whiteout.
fn layer_tar(content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if let Some(link) = link {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("etc/", tarkind::DIR, b"", None);
    add("etc/motd", tarkind::FILE, content.as_bytes(), None);
    add("etc/link", tarkind::SYMLINK, b"", Some("motd"));
    add("etc/.wh.removed", tarkind::FILE, b"", None);
    b.into_inner().unwrap()
}

mod tarkind {
    pub const DIR: tar::EntryType = tar::EntryType::Directory;
    pub const FILE: tar::EntryType = tar::EntryType::Regular;
    pub const SYMLINK: tar::EntryType = tar::EntryType::Symlink;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

/// Stores `blob` through `Store::writer`; returns its descriptor.
fn put_layer(store: &Store, blob: &[u8], media_type: &str) -> Descriptor {
    let mut w = store.writer(None).unwrap();
    w.write_all(blob).unwrap();
    let (digest, size) = w.commit().unwrap();
    Descriptor::new(media_type, digest, size)
}

/// A gzip layer in the store and its diff ID.
fn gzip_layer(store: &Store, content: &str) -> (Descriptor, Digest) {
    let tar = layer_tar(content);
    let diff_id = Digest::of(&tar);
    (
        put_layer(store, &gzip(&tar), media::OCI_LAYER_TAR_GZIP),
        diff_id,
    )
}

/// Names in `snapshots/`, sorted.
/// Names under `snapshots/`, boot markers left out (each snapshot has one).
fn entries(snaps: &Snapshots) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(snaps.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".boot-"))
        .collect();
    v.sort();
    v
}

fn check_layer(path: &Path, content: &str) {
    assert_eq!(fs::read_to_string(path.join("etc/motd")).unwrap(), content);
    assert_eq!(
        fs::read_link(path.join("etc/link")).unwrap(),
        Path::new("motd")
    );
    let wh = fs::symlink_metadata(path.join("etc/removed")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(!path.join("etc/.wh.removed").exists());
}

#[test]
fn ensure_unpacks_a_gzip_layer_once() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    assert_eq!(snaps.dir(), store.root().join("snapshots"));
    assert_eq!(
        fs::metadata(snaps.dir()).unwrap().mode() & 0o7777,
        0o700,
        "setuid binaries in snapshots stay out of other users' reach"
    );
    let (layer, diff_id) = gzip_layer(&store, "hello\n");
    assert!(!snaps.contains(&diff_id));

    let path = snaps.ensure(&store, &layer, &diff_id).unwrap();
    assert_eq!(path, store.root().join("snapshots").join(diff_id.hex()));
    assert_eq!(path, snaps.path(&diff_id));
    assert!(snaps.contains(&diff_id));
    check_layer(&path, "hello\n");
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(snaps.list().unwrap(), vec![diff_id]);

    // Idempotent: the same directory, not unpacked again.
    let ino = fs::metadata(&path).unwrap().ino();
    let motd_ino = fs::metadata(path.join("etc/motd")).unwrap().ino();
    assert_eq!(snaps.ensure(&store, &layer, &diff_id).unwrap(), path);
    assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
    assert_eq!(fs::metadata(path.join("etc/motd")).unwrap().ino(), motd_ino);
    // A second handle sees it too.
    let again = Snapshots::open(&store).unwrap();
    assert!(again.contains(&diff_id));
    // Only the snapshot and its lock file: no work directories left.
    assert_eq!(
        entries(&snaps),
        vec![format!(".lock-{}", diff_id.hex()), diff_id.hex()]
    );
    assert!(
        snaps
            .dir()
            .join(format!(".boot-{}", diff_id.hex()))
            .is_file()
    );
}

#[test]
fn the_snapshots_directory_is_the_top_of_independent_trees() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let dir = fs::File::open(snaps.dir()).unwrap();
    // Only filesystems with inode flags (ext4, where it matters) keep it.
    let Ok(flags) = rustix::fs::ioctl_getflags(&dir) else {
        return;
    };
    let Ok(()) = rustix::fs::ioctl_setflags(&dir, flags) else {
        return;
    };
    assert!(flags.contains(rustix::fs::IFlags::TOPDIR), "{flags:?}");
    // Opening again leaves it as it is.
    Snapshots::open(&store).unwrap();
    assert_eq!(rustix::fs::ioctl_getflags(&dir).unwrap(), flags);
}

#[test]
fn a_snapshot_from_another_boot_is_unpacked_again() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let (layer, diff_id) = gzip_layer(&store, "hello\n");
    let path = snaps.ensure(&store, &layer, &diff_id).unwrap();
    // As if written before a machine crash: data may be missing.
    fs::write(path.join("etc/motd"), "").unwrap();
    let marker = snaps.dir().join(format!(".boot-{}", diff_id.hex()));
    fs::write(&marker, "00000000-0000-0000-0000-000000000000").unwrap();
    assert!(!snaps.contains(&diff_id), "not trusted after a reboot");
    let again = snaps.ensure(&store, &layer, &diff_id).unwrap();
    check_layer(&again, "hello\n");
    assert!(snaps.contains(&diff_id));
    // Removing a snapshot removes its marker too.
    assert!(snaps.remove(&diff_id).unwrap());
    assert!(!marker.exists());
}

#[test]
fn ensure_handles_every_layer_compression() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let tar = layer_tar("plain\n");
    let diff_id = Digest::of(&tar);
    let plain = put_layer(&store, &tar, media::OCI_LAYER_TAR);
    check_layer(&snaps.ensure(&store, &plain, &diff_id).unwrap(), "plain\n");

    let tar = layer_tar("zstd\n");
    let diff_id = Digest::of(&tar);
    let zst = put_layer(
        &store,
        &zstd::encode_all(&tar[..], 3).unwrap(),
        media::OCI_LAYER_TAR_ZSTD,
    );
    check_layer(&snaps.ensure(&store, &zst, &diff_id).unwrap(), "zstd\n");

    // Mislabelled: gzip bytes under the uncompressed media type still work.
    let tar = layer_tar("mislabelled\n");
    let diff_id = Digest::of(&tar);
    let odd = put_layer(&store, &gzip(&tar), media::OCI_LAYER_TAR);
    check_layer(
        &snaps.ensure(&store, &odd, &diff_id).unwrap(),
        "mislabelled\n",
    );
    assert_eq!(snaps.list().unwrap().len(), 3);
}

#[test]
fn diff_id_covers_trailing_padding() {
    // Writers pad tars to a record size after the end-of-archive blocks;
    // the diff ID is over all of it.
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let mut tar = layer_tar("padded\n");
    tar.resize(tar.len() + 10 * 512 + 7, 0);
    let diff_id = Digest::of(&tar);
    let layer = put_layer(&store, &gzip(&tar), media::OCI_LAYER_TAR_GZIP);
    check_layer(&snaps.ensure(&store, &layer, &diff_id).unwrap(), "padded\n");
}

#[test]
fn concurrent_ensure_unpacks_one_snapshot() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let (layer, diff_id) = gzip_layer(&store, "shared\n");
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (store, layer, barrier) = (store.clone(), layer.clone(), Arc::clone(&barrier));
            // Separate handles, as separate processes would have.
            let snaps = Snapshots::open(&store).unwrap();
            thread::spawn(move || {
                barrier.wait();
                snaps.ensure(&store, &layer, &diff_id)
            })
        })
        .collect();
    let paths: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert!(paths.iter().all(|p| *p == paths[0]), "{paths:?}");
    check_layer(&paths[0], "shared\n");
    assert_eq!(snaps.list().unwrap(), vec![diff_id]);
    assert_eq!(
        entries(&snaps),
        vec![format!(".lock-{}", diff_id.hex()), diff_id.hex()]
    );
}

#[test]
fn a_wrong_diff_id_keeps_nothing() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let (layer, real) = gzip_layer(&store, "content\n");
    let claimed = Digest::of(b"something else");
    let err = snaps.ensure(&store, &layer, &claimed).unwrap_err();
    match &err {
        SnapshotError::DiffIdMismatch {
            layer: l,
            expected,
            actual,
        } => {
            assert_eq!(*l, layer.digest);
            assert_eq!(*expected, claimed);
            assert_eq!(*actual, real);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&layer.digest.to_string()), "{msg}");
    assert!(!snaps.contains(&claimed));
    assert!(!snaps.contains(&real));
    assert!(snaps.list().unwrap().is_empty());
    assert!(
        entries(&snaps).iter().all(|n| n.starts_with(".lock-")),
        "{:?}",
        entries(&snaps)
    );
}

#[test]
fn a_corrupt_or_missing_blob_keeps_nothing() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let tar = layer_tar("x\n");
    let diff_id = Digest::of(&tar);
    // Valid gzip header, then garbage.
    let mut bad = gzip(&tar);
    let mid = bad.len() / 2;
    for b in &mut bad[20..mid] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let layer = put_layer(&store, &bad, media::OCI_LAYER_TAR_GZIP);
    let err = snaps.ensure(&store, &layer, &diff_id).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::Unpack { .. } | SnapshotError::Read { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&layer.digest.to_string()), "{err}");
    assert!(!snaps.contains(&diff_id));

    // A tar that is not gzip but garbage from the start.
    let junk = put_layer(&store, &[0x42; 4096], media::OCI_LAYER_TAR);
    assert!(snaps.ensure(&store, &junk, &diff_id).is_err());

    let missing = Descriptor::new(media::OCI_LAYER_TAR_GZIP, Digest::of(b"nope"), 4);
    let err = snaps.ensure(&store, &missing, &diff_id).unwrap_err();
    assert!(matches!(err, SnapshotError::Store(_)), "{err:?}");
    assert!(snaps.list().unwrap().is_empty());
    assert!(entries(&snaps).iter().all(|n| n.starts_with(".lock-")));
}

#[test]
fn staging_commits_or_vanishes() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();

    let staging = snaps.stage().unwrap();
    let dir = staging.path().to_path_buf();
    assert_eq!(dir.parent().unwrap(), snaps.dir(), "same filesystem");
    assert!(
        dir.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".stage-")
    );
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    assert!(snaps.list().unwrap().is_empty(), "staging is not listed");
    fs::write(dir.join("built"), "yes").unwrap();
    let id = Digest::of(b"built layer");
    let path = staging.commit(&id).unwrap();
    assert_eq!(path, snaps.path(&id));
    assert_eq!(fs::read_to_string(path.join("built")).unwrap(), "yes");
    assert!(!dir.exists());
    assert_eq!(snaps.list().unwrap(), vec![id]);

    // Dropped without commit: removed with its content.
    let staging = snaps.stage().unwrap();
    let dir = staging.path().to_path_buf();
    fs::create_dir_all(dir.join("a/b")).unwrap();
    fs::write(dir.join("a/b/c"), "c").unwrap();
    drop(staging);
    assert!(!dir.exists());

    // Committing a layer that exists keeps the existing snapshot.
    let staging = snaps.stage().unwrap();
    fs::write(staging.path().join("built"), "again").unwrap();
    let dir = staging.path().to_path_buf();
    assert_eq!(staging.commit(&id).unwrap(), path);
    assert_eq!(fs::read_to_string(path.join("built")).unwrap(), "yes");
    assert!(!dir.exists());
    assert_eq!(entries(&snaps), vec![id.hex()]);
}

#[test]
fn remove_and_list() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let (l1, d1) = gzip_layer(&store, "one\n");
    let (l2, d2) = gzip_layer(&store, "two\n");
    snaps.ensure(&store, &l1, &d1).unwrap();
    snaps.ensure(&store, &l2, &d2).unwrap();
    let mut both = vec![d1, d2];
    both.sort();
    assert_eq!(snaps.list().unwrap(), both);
    // Foreign and odd names are not snapshots.
    fs::write(snaps.dir().join(Digest::of(b"a file").hex()), "").unwrap();
    fs::create_dir(snaps.dir().join("not-a-digest")).unwrap();
    assert_eq!(snaps.list().unwrap(), both);

    assert!(snaps.remove(&d1).unwrap());
    assert!(!snaps.contains(&d1));
    assert!(!snaps.remove(&d1).unwrap());
    assert_eq!(snaps.list().unwrap(), vec![d2]);
    assert!(
        !entries(&snaps).iter().any(|n| n.starts_with(".trash-")),
        "{:?}",
        entries(&snaps)
    );
    // It can be unpacked again afterwards.
    check_layer(&snaps.ensure(&store, &l1, &d1).unwrap(), "one\n");
}

fn age(path: &Path, by: Duration) {
    let t = filetime::FileTime::from_system_time(SystemTime::now() - by);
    filetime::set_file_mtime(path, t).unwrap();
}

#[test]
fn clean_staging_removes_only_stale_unheld_leftovers() {
    let (_tmp, store) = new_store();
    let snaps = Snapshots::open(&store).unwrap();
    let (layer, diff_id) = gzip_layer(&store, "kept\n");
    snaps.ensure(&store, &layer, &diff_id).unwrap();
    let hour = Duration::from_secs(3600);
    let day = Duration::from_secs(86400);

    // What crashed processes leave behind, a day old.
    let crashed = [
        ".stage-999999-0-000000001",
        ".unpack-999999-1-000000002",
        ".trash-999999-2-000000003",
    ];
    for name in crashed {
        let p = snaps.dir().join(name);
        fs::create_dir_all(p.join("usr/bin")).unwrap();
        fs::write(p.join("usr/bin/tool"), "t").unwrap();
        age(&p, day);
    }
    let stale_lock = snaps
        .dir()
        .join(format!(".lock-{}", Digest::of(b"gone").hex()));
    fs::write(&stale_lock, "").unwrap();
    age(&stale_lock, day);
    // The temporary file of an index or hint that was never renamed.
    let stale_tmp = snaps.dir().join(".stage-999999-5-000000006");
    fs::write(&stale_tmp, "{\"berth_layer_index\":1").unwrap();
    age(&stale_tmp, day);
    // A fresh leftover is kept: it may belong to a process just starting.
    let fresh = snaps.dir().join(".stage-999999-3-000000004");
    fs::create_dir(&fresh).unwrap();
    // A live staging directory, however old, is kept: its owner holds it.
    let live = snaps.stage().unwrap();
    fs::write(live.path().join("work"), "in progress").unwrap();
    age(live.path(), day);

    assert_eq!(snaps.list().unwrap(), vec![diff_id]);
    let removed = snaps.clean_staging(hour).unwrap();
    assert_eq!(removed, 5);
    for name in crashed {
        assert!(!snaps.dir().join(name).exists(), "{name}");
    }
    assert!(!stale_lock.exists());
    assert!(!stale_tmp.exists());
    assert!(fresh.exists());
    assert!(live.path().join("work").exists());
    assert!(snaps.contains(&diff_id), "snapshots are never touched");
    check_layer(&snaps.path(&diff_id), "kept\n");

    drop(live);
    assert_eq!(snaps.clean_staging(Duration::ZERO).unwrap(), 2); // fresh + the lock file
    assert_eq!(entries(&snaps), vec![diff_id.hex()]);
}
