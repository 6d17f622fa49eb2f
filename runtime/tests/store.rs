//! The local content store against a real filesystem: layout, blob writes,
//! names, crash leftovers, concurrency and garbage collection.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, SystemTime};

use berth_runtime::store::{
    Descriptor, Digest, GcOptions, MAX_SMALL_BLOB, Platform, Store, StoreError, media,
};
use serde_json::{Value, json};
use tempfile::TempDir;

fn new_store() -> (TempDir, Store) {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

/// Deterministic pseudo-random bytes (xorshift), so big blobs do not compress
/// or repeat in ways that could hide an off-by-one in chunk handling.
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

fn ingest_files(store: &Store) -> Vec<PathBuf> {
    fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn blob_files(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn read_json_file(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// A one-file ustar archive: a real (uncompressed) layer.
fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let s = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    };
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field read as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(s.as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

struct Image {
    manifest: Descriptor,
    config: Digest,
    layer: Digest,
}

/// Writes a minimal but real OCI image: one tar layer, its config, its manifest.
fn write_image(store: &Store, tag: &str) -> Image {
    let layer_bytes = tar_with_file("hello.txt", format!("hello from {tag}\n").as_bytes());
    let mut w = store.writer(None).unwrap();
    w.write_all(&layer_bytes).unwrap();
    let (layer, layer_size) = w.commit().unwrap();

    let config_bytes = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]},
        "history": [{"created_by": format!("test {tag}")}],
    }))
    .unwrap();
    let config = store.put_bytes(&config_bytes).unwrap();

    let manifest_bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_IMAGE_MANIFEST,
        "config": {"mediaType": media::OCI_IMAGE_CONFIG, "digest": config.to_string(), "size": config_bytes.len()},
        "layers": [{"mediaType": media::OCI_LAYER_TAR, "digest": layer.to_string(), "size": layer_size}],
    }))
    .unwrap();
    let manifest = store.put_bytes(&manifest_bytes).unwrap();
    let mut desc = Descriptor::new(
        media::OCI_IMAGE_MANIFEST,
        manifest,
        manifest_bytes.len() as u64,
    );
    desc.platform = Some(Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        os_version: None,
        os_features: vec![],
        variant: None,
        features: vec![],
    });
    Image {
        manifest: desc,
        config,
        layer,
    }
}

#[test]
fn new_store_is_an_oci_layout() {
    let (_dir, store) = new_store();
    let root = store.root();
    assert_eq!(
        read_json_file(&root.join("oci-layout")),
        json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = read_json_file(&root.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["manifests"], json!([]));
    assert!(root.join("blobs/sha256").is_dir());
    assert!(root.join("ingest").is_dir());

    // Named images are index entries carrying the ref.name annotation.
    let img = write_image(&store, "a");
    store
        .set_name("localhost:5000/app:1", img.manifest.clone())
        .unwrap();
    let index = read_json_file(&root.join("index.json"));
    let entry = &index["manifests"][0];
    assert_eq!(entry["mediaType"], media::OCI_IMAGE_MANIFEST);
    assert_eq!(entry["digest"], img.manifest.digest.to_string());
    assert_eq!(entry["size"], img.manifest.size);
    assert_eq!(entry["platform"]["architecture"], "amd64");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "localhost:5000/app:1"
    );
    // Every blob sits at blobs/sha256/<hex> and hashes to its name.
    for name in blob_files(&store) {
        let bytes = fs::read(root.join("blobs/sha256").join(&name)).unwrap();
        assert_eq!(Digest::of(&bytes).hex(), name);
    }
}

#[test]
fn open_checks_what_is_already_there() {
    let dir = TempDir::new().unwrap();
    // An empty existing directory becomes a store; reopening works.
    Store::open(dir.path()).unwrap();
    Store::open(dir.path()).unwrap();

    // Someone else's directory is left alone.
    let foreign = dir.path().join("home");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let err = Store::open(&foreign).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("home"), "{err}");
    assert!(!foreign.join("blobs").exists());

    // An unknown layout version is refused, naming the file.
    let odd = dir.path().join("odd");
    fs::create_dir(&odd).unwrap();
    fs::write(odd.join("oci-layout"), r#"{"imageLayoutVersion":"9.9"}"#).unwrap();
    let err = Store::open(&odd).unwrap_err();
    assert!(err.to_string().contains("oci-layout"), "{err}");
    assert!(err.to_string().contains("9.9"), "{err}");

    // An existing OCI layout without berth's extras is adopted as is.
    let other = dir.path().join("other");
    fs::create_dir_all(other.join("blobs/sha256")).unwrap();
    fs::write(
        other.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(
        other.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let store = Store::open(&other).unwrap();
    assert!(store.names().unwrap().is_empty());
}

#[test]
fn concurrent_first_opens_agree() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("root");
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (root, barrier) = (root.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                Store::open(&root).map(|_| ())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(read_json_file(&root.join("index.json"))["schemaVersion"], 2);

    // Leftovers a first open never makes (blobs without oci-layout) are foreign.
    let half = dir.path().join("half");
    fs::create_dir_all(half.join("blobs")).unwrap();
    let err = Store::open(&half).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
}

#[test]
fn big_blob_round_trips_in_small_chunks() {
    let (_dir, store) = new_store();
    let data = noise(6 * 1024 * 1024 + 123, 7);
    let expected = Digest::of(&data);
    let mut w = store
        .writer(Some(expected))
        .unwrap()
        .with_size(data.len() as u64);
    for chunk in data.chunks(4093) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.bytes_written(), data.len() as u64);
    let (digest, size) = w.commit().unwrap();
    assert_eq!(digest, expected);
    assert_eq!(size, data.len() as u64);

    assert!(store.has_blob(&digest).unwrap());
    assert_eq!(store.blob_size(&digest).unwrap(), size);
    assert_eq!(
        store.blob_path(&digest),
        store.root().join("blobs/sha256").join(digest.hex())
    );
    let mut back = Vec::new();
    store
        .open_blob(&digest)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "content differs after the round trip");
    assert_eq!(store.verify_blob(&digest).unwrap(), size);
    assert!(ingest_files(&store).is_empty());

    // Too big to be read whole.
    let err = store.read_small(&digest).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
}

#[test]
fn digest_mismatch_keeps_nothing() {
    let (_dir, store) = new_store();
    let claimed = Digest::of(b"what the registry announced");
    let mut w = store.writer(Some(claimed)).unwrap();
    w.write_all(b"what it actually sent").unwrap();
    let err = w.commit().unwrap_err();
    let actual = Digest::of(b"what it actually sent");
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&claimed.to_string()), "{msg}");
    assert!(msg.contains(&actual.to_string()), "{msg}");
    assert!(!store.has_blob(&actual).unwrap());
    assert!(!store.has_blob(&claimed).unwrap());
    assert!(blob_files(&store).is_empty());
    assert!(ingest_files(&store).is_empty());
}

#[test]
fn announced_size_is_enforced() {
    let (_dir, store) = new_store();
    let mut w = store.writer(None).unwrap().with_size(3);
    assert!(w.write_all(b"four").is_err());
    drop(w);

    let mut w = store.writer(None).unwrap().with_size(10);
    w.write_all(b"four").unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SizeMismatch {
                expected: 10,
                actual: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(blob_files(&store).is_empty());
    assert!(ingest_files(&store).is_empty());
}

#[test]
fn dropping_a_writer_leaves_no_temp_file() {
    let (_dir, store) = new_store();
    let mut w = store.writer(None).unwrap();
    w.write_all(&noise(300_000, 3)).unwrap();
    w.flush().unwrap();
    assert_eq!(ingest_files(&store).len(), 1);
    drop(w);
    assert!(ingest_files(&store).is_empty());
    assert!(blob_files(&store).is_empty());
}

#[test]
fn concurrent_writers_of_the_same_content_both_succeed() {
    let (_dir, store) = new_store();
    let data = Arc::new(noise(1024 * 1024, 11));
    let expected = Digest::of(&data);
    let n = 4;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (store, data, barrier) = (store.clone(), data.clone(), barrier.clone());
            thread::spawn(move || {
                let mut w = store.writer(Some(expected)).unwrap();
                for chunk in data.chunks(8191) {
                    w.write_all(chunk).unwrap();
                }
                barrier.wait();
                w.commit()
            })
        })
        .collect();
    for h in handles {
        let (digest, size) = h.join().unwrap().unwrap();
        assert_eq!(digest, expected);
        assert_eq!(size, data.len() as u64);
    }
    assert_eq!(blob_files(&store), vec![expected.hex()]);
    assert!(ingest_files(&store).is_empty());
    store.verify_blob(&expected).unwrap();
}

#[test]
fn small_blobs_and_json() {
    let (_dir, store) = new_store();
    let bytes = br#"{"schemaVersion":2,"layers":[]}"#;
    let d = store.put_bytes(bytes).unwrap();
    assert_eq!(d, Digest::of(bytes));
    assert_eq!(store.read_small(&d).unwrap(), bytes);
    let v: Value = store.read_json(&d).unwrap();
    assert_eq!(v["schemaVersion"], 2);
    // Writing the same bytes again is a no-op that still succeeds.
    assert_eq!(store.put_bytes(bytes).unwrap(), d);

    let not_json = store.put_bytes(b"\x1f\x8b binary").unwrap();
    let err = store.read_json::<Value>(&not_json).unwrap_err();
    assert!(err.to_string().contains(&not_json.to_string()), "{err}");

    let at_limit = store
        .put_bytes(&vec![b' '; MAX_SMALL_BLOB as usize])
        .unwrap();
    assert_eq!(
        store.read_small(&at_limit).unwrap().len() as u64,
        MAX_SMALL_BLOB
    );

    assert!(store.remove_blob(&d).unwrap());
    assert!(!store.remove_blob(&d).unwrap());
    assert!(!store.has_blob(&d).unwrap());
    let err = store.open_blob(&d).unwrap_err();
    assert!(matches!(err, StoreError::BlobNotFound { .. }), "{err}");
    assert!(err.to_string().contains(&d.to_string()), "{err}");
    assert!(store.blob_size(&d).is_err());
}

#[test]
fn corruption_is_detected_and_named() {
    let (_dir, store) = new_store();
    let d = store.put_bytes(b"{\"config\":{}}").unwrap();
    fs::write(store.blob_path(&d), b"{\"config\":{}} tampered").unwrap();
    let actual = Digest::of(b"{\"config\":{}} tampered");
    for err in [
        store.verify_blob(&d).unwrap_err(),
        store.read_small(&d).unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(matches!(err, StoreError::CorruptBlob { .. }), "{msg}");
        assert!(
            msg.contains(&d.to_string()) && msg.contains(&actual.to_string()),
            "{msg}"
        );
        assert!(msg.contains("berth prune"), "{msg}");
    }
}

#[test]
fn names_survive_reopening() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("root");
    let store = Store::open(&root).unwrap();
    let a = write_image(&store, "a");
    let b = write_image(&store, "b");
    assert_eq!(
        store.set_name("app:latest", a.manifest.clone()).unwrap(),
        None
    );
    store
        .set_name("localhost:5000/app:1", b.manifest.clone())
        .unwrap();
    store.set_name("app:old", a.manifest.clone()).unwrap();

    let store = Store::open(&root).unwrap();
    let names: Vec<String> = store.names().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["app:latest", "localhost:5000/app:1", "app:old"]);
    let resolved = store.resolve("localhost:5000/app:1").unwrap().unwrap();
    assert_eq!(resolved.digest, b.manifest.digest);
    assert_eq!(resolved.size, b.manifest.size);
    assert_eq!(resolved.platform, b.manifest.platform);
    assert_eq!(resolved.ref_name(), Some("localhost:5000/app:1"));
    assert_eq!(store.resolve("app").unwrap(), None);

    // Re-pointing a name keeps its place and returns what it named.
    let previous = store.set_name("app:latest", b.manifest.clone()).unwrap();
    assert_eq!(previous.map(|d| d.digest), Some(a.manifest.digest));
    assert_eq!(store.names().unwrap()[0].0, "app:latest");
    assert_eq!(
        store.resolve("app:latest").unwrap().unwrap().digest,
        b.manifest.digest
    );

    let removed = store.remove_name("app:old").unwrap();
    assert_eq!(removed.map(|d| d.digest), Some(a.manifest.digest));
    assert_eq!(store.remove_name("app:old").unwrap(), None);

    let store = Store::open(&root).unwrap();
    assert_eq!(store.resolve("app:old").unwrap(), None);
    assert_eq!(store.names().unwrap().len(), 2);
}

#[test]
fn names_must_point_at_stored_blobs() {
    let (_dir, store) = new_store();
    let missing = Descriptor::new(media::OCI_IMAGE_MANIFEST, Digest::of(b"nothing"), 7);
    let err = store.set_name("app:1", missing).unwrap_err();
    assert!(matches!(err, StoreError::DanglingName { .. }), "{err}");

    let img = write_image(&store, "x");
    let mut wrong_size = img.manifest.clone();
    wrong_size.size += 1;
    let err = store.set_name("app:1", wrong_size).unwrap_err();
    assert!(err.to_string().contains("bytes"), "{err}");

    let err = store.set_name("app 1", img.manifest.clone()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidName { .. }), "{err}");
    assert!(store.names().unwrap().is_empty());
}

#[test]
fn a_crash_mid_update_leaves_a_valid_index() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("root");
    let store = Store::open(&root).unwrap();
    let img = write_image(&store, "a");
    store.set_name("app:1", img.manifest.clone()).unwrap();
    // A process died after writing half of its new index, before the rename.
    fs::write(root.join("index.json.tmp"), br#"{"schemaVersion":2,"manif"#).unwrap();

    let store = Store::open(&root).unwrap();
    assert!(!root.join("index.json.tmp").exists());
    assert_eq!(read_json_file(&root.join("index.json"))["schemaVersion"], 2);
    assert_eq!(
        store.resolve("app:1").unwrap().map(|d| d.digest),
        Some(img.manifest.digest)
    );
    store.set_name("app:2", img.manifest).unwrap();
    assert_eq!(store.names().unwrap().len(), 2);
}

#[test]
fn a_broken_index_is_reported_with_its_path() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("root");
    Store::open(&root).unwrap();
    fs::write(root.join("index.json"), "{not json").unwrap();
    let err = Store::open(&root).unwrap_err();
    assert!(matches!(err, StoreError::BadIndex { .. }), "{err}");
    assert!(err.to_string().contains("index.json"), "{err}");
}

#[test]
fn concurrent_name_updates_are_not_lost() {
    let (_dir, store) = new_store();
    let img = write_image(&store, "a");
    let threads = 6;
    let per_thread = 8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            // A separate handle per thread, as separate processes would have.
            let store = Store::open(store.root()).unwrap();
            let desc = img.manifest.clone();
            thread::spawn(move || {
                for i in 0..per_thread {
                    store
                        .set_name(&format!("app:{t}-{i}"), desc.clone())
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.names().unwrap().len(), threads * per_thread);
}

#[test]
fn entries_from_other_tools_are_kept() {
    let (_dir, store) = new_store();
    let img = write_image(&store, "a");
    let foreign = json!({
        "schemaVersion": 2,
        "annotations": {"made.by": "another tool"},
        "manifests": [
            {"mediaType": media::OCI_IMAGE_MANIFEST, "digest": img.manifest.digest.to_string(),
             "size": img.manifest.size, "urls": ["https://example.invalid/"]},
            {"mediaType": media::OCI_IMAGE_MANIFEST, "digest": format!("sha512:{}", "ab".repeat(64)),
             "size": 1, "annotations": {"org.opencontainers.image.ref.name": "weird:1"}}
        ]
    });
    fs::write(
        store.root().join("index.json"),
        serde_json::to_vec(&foreign).unwrap(),
    )
    .unwrap();
    // The sha512 entry cannot be used, and says so, but does not break the rest.
    assert!(store.names().unwrap().is_empty());
    let err = store.resolve("weird:1").unwrap_err();
    assert!(matches!(err, StoreError::BadEntry { .. }), "{err}");

    store.set_name("app:1", img.manifest.clone()).unwrap();
    let index = read_json_file(&store.root().join("index.json"));
    assert_eq!(index["annotations"]["made.by"], "another tool");
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["urls"][0], "https://example.invalid/");
    assert_eq!(
        entries[1]["annotations"]["org.opencontainers.image.ref.name"],
        "weird:1"
    );
}

#[test]
fn gc_keeps_what_names_reach_and_removes_the_rest() {
    let (_dir, store) = new_store();
    let named = write_image(&store, "named");
    let dropped = write_image(&store, "dropped");
    let rooted = write_image(&store, "rooted");
    let in_index = write_image(&store, "in-index");
    store.set_name("app:1", named.manifest.clone()).unwrap();

    // A multi-platform image index whose arm64 manifest was never pulled.
    let index_bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_IMAGE_INDEX,
        "manifests": [
            {"mediaType": media::OCI_IMAGE_MANIFEST, "digest": in_index.manifest.digest.to_string(),
             "size": in_index.manifest.size, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": media::OCI_IMAGE_MANIFEST, "digest": Digest::of(b"arm64").to_string(),
             "size": 5, "platform": {"architecture": "arm64", "os": "linux"}},
        ]
    }))
    .unwrap();
    let index_digest = store.put_bytes(&index_bytes).unwrap();
    store
        .set_name(
            "multi:1",
            Descriptor::new(
                media::OCI_IMAGE_INDEX,
                index_digest,
                index_bytes.len() as u64,
            ),
        )
        .unwrap();

    // Not berth's: no digest name.
    fs::write(store.root().join("blobs/sha256/README"), "keep me").unwrap();
    // An abandoned temp file from two hours ago, and a live one.
    let stale = store.root().join("ingest/123-0-000000000.part");
    fs::write(&stale, vec![0u8; 1000]).unwrap();
    File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    let mut live = store.writer(None).unwrap();
    live.write_all(b"in progress").unwrap();
    live.flush().unwrap();

    let dropped_bytes: u64 = [dropped.manifest.digest, dropped.config, dropped.layer]
        .iter()
        .map(|d| store.blob_size(d).unwrap())
        .sum();
    let report = store.gc(&[rooted.manifest.digest]).unwrap();

    for img in [&named, &rooted, &in_index] {
        for d in [img.manifest.digest, img.config, img.layer] {
            assert!(store.has_blob(&d).unwrap(), "{d} should be kept");
        }
    }
    assert!(store.has_blob(&index_digest).unwrap());
    for d in [dropped.manifest.digest, dropped.config, dropped.layer] {
        assert!(!store.has_blob(&d).unwrap(), "{d} should be removed");
    }
    assert_eq!(report.blobs_removed, 3);
    assert_eq!(report.corrupt_removed, 0);
    assert_eq!(report.blobs_kept, 10);
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(report.bytes_freed, dropped_bytes + 1000);
    let mut removed = report.removed.clone();
    removed.sort();
    let mut want = vec![dropped.manifest.digest, dropped.config, dropped.layer];
    want.sort();
    assert_eq!(removed, want);

    assert!(store.root().join("blobs/sha256/README").exists());
    assert!(!stale.exists());
    assert_eq!(ingest_files(&store).len(), 1);
    live.commit().unwrap();

    // Removing the name frees the image on the next run.
    store.remove_name("app:1").unwrap();
    let report = store.gc(&[]).unwrap();
    assert_eq!(report.blobs_removed, 3 + 3 + 1); // named, rooted, the live blob
    assert!(store.resolve("multi:1").unwrap().is_some());
    assert!(store.has_blob(&in_index.layer).unwrap());
}

#[test]
fn gc_grace_period_keeps_fresh_blobs() {
    let (_dir, store) = new_store();
    let fresh = store.put_bytes(b"just written, not yet named").unwrap();
    let options = GcOptions {
        grace: Duration::from_secs(600),
        ..GcOptions::default()
    };
    let report = store.gc_with(&[], &options).unwrap();
    assert_eq!((report.blobs_removed, report.blobs_kept), (0, 1));
    assert!(store.has_blob(&fresh).unwrap());

    File::open(store.blob_path(&fresh))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let report = store.gc_with(&[], &options).unwrap();
    assert_eq!(report.blobs_removed, 1);
}

#[test]
fn gc_drops_corrupt_manifests_and_with_verify_corrupt_layers() {
    let (_dir, store) = new_store();
    let a = write_image(&store, "a");
    let b = write_image(&store, "b");
    store.set_name("a:1", a.manifest.clone()).unwrap();
    store.set_name("b:1", b.manifest.clone()).unwrap();

    // a's manifest rots: it and everything only it reached go.
    fs::write(store.blob_path(&a.manifest.digest), b"{}").unwrap();
    // b's layer rots: only a verifying gc notices.
    fs::write(store.blob_path(&b.layer), b"rotten").unwrap();

    let report = store.gc(&[]).unwrap();
    assert_eq!(report.corrupt_removed, 1);
    assert_eq!(report.blobs_removed, 3);
    assert!(!store.has_blob(&a.manifest.digest).unwrap());
    assert!(!store.has_blob(&a.layer).unwrap());
    assert!(store.has_blob(&b.layer).unwrap());

    let options = GcOptions {
        verify: true,
        ..GcOptions::default()
    };
    let report = store.gc_with(&[], &options).unwrap();
    assert_eq!((report.blobs_removed, report.corrupt_removed), (1, 1));
    assert_eq!(report.removed, vec![b.layer]);
    // The name stays, and using it says what to do.
    let desc = store.resolve("b:1").unwrap().unwrap();
    assert_eq!(desc.digest, b.manifest.digest);
    let err = store.open_blob(&b.layer).unwrap_err();
    assert!(err.to_string().contains("pull or build"), "{err}");
}

/// Reads the store with skopeo and umoci. CI installs both (.ci/run); a
/// developer machine without them skips, but CI never does.
#[test]
fn other_oci_tools_read_the_store() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let (_dir, store) = new_store();
    let img = write_image(&store, "interop");
    store.set_name("app:1", img.manifest.clone()).unwrap();
    let root = store.root().to_str().unwrap().to_owned();
    let mut ran = false;

    if have("skopeo") {
        ran = true;
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", &format!("oci:{root}:app:1")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(Digest::of(&out.stdout), img.manifest.digest);
        let out = Command::new("skopeo")
            .args(["inspect", "--config", "--raw", &format!("oci:{root}:app:1")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(Digest::of(&out.stdout), img.config);
    }
    if have("umoci") {
        ran = true;
        let out = Command::new("umoci")
            .args(["ls", "--layout", &root])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("app:1"));
    }
    if std::env::var_os("CI").is_some() {
        assert!(
            have("skopeo") && have("umoci"),
            "CI must install skopeo and umoci (see .ci/run)"
        );
    }
    if !ran {
        eprintln!("skipped: neither skopeo nor umoci is installed (apt-get install skopeo umoci)");
    }
}
