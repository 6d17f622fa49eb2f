//! `berth images`, `tag`, `inspect`, `rmi` and `prune`, run as a user runs
//! them, against a temp store whose images the tests write directly.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use berth_builder::cache::{BuildCache, CacheKey, CacheRecord, LayerRef};
use berth_builder::export::{ExportTarget, export_image};
use berth_builder::images::human_size;
use berth_registry::reference::Reference;
use berth_runtime::image::{ContainerConfig, ImageConfig, Manifest, RootFs, load_image};
use berth_runtime::store::{Descriptor, Digest, Store, media};
use serde_json::Value;
use tempfile::TempDir;

/// A temp `BERTH_ROOT`.
struct Env {
    dir: TempDir,
    store: Store,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("root")).expect("open store");
        Env { dir, store }
    }

    fn root(&self) -> &Path {
        self.store.root()
    }

    /// Runs berth with `args`; returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::cargo_bin("berth")
            .expect("the berth binary is built by cargo test")
            .env("BERTH_ROOT", self.root())
            .args(args)
            .output()
            .expect("run berth");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs berth and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "berth {args:?} failed:\n{stderr}");
        stdout
    }

    /// Runs berth and expects exit status 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let (code, _, stderr) = self.run(args);
        assert_eq!(code, 1, "berth {args:?} should fail; stderr:\n{stderr}");
        stderr
    }
}

/// The digests of an image written by [`put_image`].
#[derive(Debug, Clone)]
struct TestImage {
    manifest: Descriptor,
    config: Digest,
    layers: Vec<Digest>,
    size: u64,
}

impl TestImage {
    fn short_id(&self) -> String {
        self.config.hex()[..12].to_owned()
    }
}

/// A one-file uncompressed tar (ustar), written by hand so the test needs
/// no tar library.
fn layer_tar(name: &str, content: &str) -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    }
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content.as_bytes());
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// The config blob of a test image: what its digest (the image ID) is made of.
fn config_bytes(created: &str, marker: &str, diff_ids: Vec<Digest>) -> Vec<u8> {
    let config = ImageConfig {
        created: Some(created.to_owned()),
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        config: ContainerConfig {
            cmd: Some(vec!["/bin/run".to_owned(), marker.to_owned()]),
            ..ContainerConfig::default()
        },
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids,
        },
        ..ImageConfig::default()
    };
    serde_json::to_vec(&config).expect("config json")
}

/// The layers every test image has: a shared base and one of its own.
fn layers_for(marker: &str) -> Vec<Vec<u8>> {
    vec![
        layer_tar("etc/os-release", "ID=test\n"),
        layer_tar("app/marker", marker),
    ]
}

/// Writes an image into the store directly and names it `names` (familiar
/// forms, stored normalised as berth does).
fn put_image(store: &Store, names: &[&str], created: &str, marker: &str) -> TestImage {
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for bytes in layers_for(marker) {
        let digest = store.put_bytes(&bytes).expect("put layer");
        descriptors.push(Descriptor::new(
            media::OCI_LAYER_TAR,
            digest,
            bytes.len() as u64,
        ));
        layers.push(digest);
    }
    let config = config_bytes(created, marker, layers.clone());
    let config_digest = store.put_bytes(&config).expect("put config");
    let size = config.len() as u64 + descriptors.iter().map(|d| d.size).sum::<u64>();
    let manifest = Manifest::oci(
        Descriptor::new(media::OCI_IMAGE_CONFIG, config_digest, config.len() as u64),
        descriptors,
    );
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_digest = store.put_bytes(&manifest_bytes).expect("put manifest");
    let desc = Descriptor::new(
        media::OCI_IMAGE_MANIFEST,
        manifest_digest,
        manifest_bytes.len() as u64,
    );
    for name in names {
        let full = Reference::parse(name)
            .expect("reference")
            .with_default_tag()
            .to_string();
        store.set_name(&full, desc.clone()).expect("name image");
    }
    TestImage {
        manifest: desc,
        config: config_digest,
        layers,
        size,
    }
}

/// Sets a file's or directory's mtime `age` in the past.
fn backdate(path: &Path, age: Duration) {
    let when = SystemTime::now() - age;
    File::open(path)
        .and_then(|f| f.set_modified(when))
        .unwrap_or_else(|e| panic!("backdate {}: {e}", path.display()));
}

const HOUR: Duration = Duration::from_secs(3600);

/// The rows of a table, split at the header's column starts.
fn table(stdout: &str) -> Vec<HashMap<String, String>> {
    let mut lines = stdout.lines();
    let header = lines.next().expect("header line");
    let names = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
    let starts: Vec<usize> = names
        .iter()
        .map(|n| header.find(n).expect("column in header"))
        .collect();
    lines
        .map(|line| {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let end = starts
                        .get(i + 1)
                        .copied()
                        .unwrap_or(line.len())
                        .min(line.len());
                    let cell = line.get(starts[i]..end).unwrap_or("").trim();
                    (name.to_string(), cell.to_owned())
                })
                .collect()
        })
        .collect()
}

#[test]
fn images_lists_a_table_newest_first() {
    let env = Env::new();
    let app = put_image(&env.store, &["app:1"], "2024-01-01T00:00:00Z", "app");
    let other = put_image(
        &env.store,
        &["registry.example:5000/team/other"],
        "2024-06-01T08:30:00+02:00",
        "other",
    );
    let stdout = env.ok(&["images"]);
    // Docker's layout: each column as wide as its widest cell plus three.
    let header = format!("{:<35}{:<10}{:<15}CREATED", "REPOSITORY", "TAG", "IMAGE ID");
    assert!(stdout.starts_with(&header), "{stdout}");
    let rows = table(&stdout);
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0]["REPOSITORY"], "registry.example:5000/team/other");
    assert_eq!(rows[0]["TAG"], "latest");
    assert_eq!(rows[0]["IMAGE ID"], other.short_id());
    assert_eq!(rows[1]["REPOSITORY"], "app");
    assert_eq!(rows[1]["TAG"], "1");
    assert_eq!(rows[1]["IMAGE ID"], app.short_id());
    assert_eq!(rows[1]["SIZE"], human_size(app.size));
    assert!(rows[1]["SIZE"].ends_with("kB"), "{stdout}");
    for row in &rows {
        assert!(row["CREATED"].ends_with(" ago"), "{stdout}");
    }

    // An empty store prints just the header.
    let empty = Env::new();
    assert_eq!(
        empty.ok(&["images"]),
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    );
}

#[test]
fn images_json_quiet_and_filter() {
    let env = Env::new();
    let app = put_image(
        &env.store,
        &["app:1", "app:latest"],
        "2024-01-01T00:00:00Z",
        "app",
    );
    let other = put_image(&env.store, &["other:2"], "2024-01-02T00:00:00Z", "other");

    let stdout = env.ok(&["images", "--format", "json"]);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let first = lines[0].as_object().expect("object");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "CreatedSince",
            "ID",
            "Repository",
            "Size",
            "Tag"
        ]
    );
    assert_eq!(lines[0]["Repository"], "other");
    assert_eq!(lines[0]["Tag"], "2");
    assert_eq!(lines[0]["ID"], other.short_id());
    assert_eq!(lines[0]["CreatedAt"], "2024-01-02 00:00:00 +0000 UTC");
    assert_eq!(lines[0]["Size"], human_size(other.size));
    assert!(
        lines[0]["CreatedSince"]
            .as_str()
            .is_some_and(|s| s.ends_with(" ago"))
    );

    // -q: each ID once, newest first.
    assert_eq!(
        env.ok(&["images", "-q"]),
        format!("{}\n{}\n", other.short_id(), app.short_id())
    );
    assert_eq!(
        env.ok(&["images", "-q", "--no-trunc", "app:1"]),
        format!("{}\n", app.config)
    );
    // A repository filter, with or without tag.
    let rows = table(&env.ok(&["images", "app"]));
    let tags: Vec<&str> = rows.iter().map(|r| r["TAG"].as_str()).collect();
    assert_eq!(tags, ["1", "latest"]);
    assert_eq!(table(&env.ok(&["images", "app:latest"])).len(), 1);
    assert!(table(&env.ok(&["images", "nothing"])).is_empty());
    let stderr = env.fails(&["images", "Bad:Name"]);
    assert!(stderr.contains("invalid reference format"), "{stderr}");
}

#[test]
fn tag_adds_names_by_name_or_id() {
    let env = Env::new();
    let app = put_image(&env.store, &["app:1"], "2024-01-01T00:00:00Z", "app");
    assert_eq!(env.ok(&["tag", "app:1", "app:2"]), "");
    assert_eq!(
        env.ok(&["tag", &app.config.hex()[..8], "registry.example/team/app"]),
        ""
    );
    assert_eq!(
        env.ok(&["tag", &format!("sha256:{}", app.short_id()), "app"]),
        ""
    );
    let rows = table(&env.ok(&["images"]));
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}", r["REPOSITORY"], r["TAG"]))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "app:1",
            "app:2",
            "app:latest",
            "registry.example/team/app:latest"
        ]
    );
    assert!(rows.iter().all(|r| r["IMAGE ID"] == app.short_id()));
    // Stored in full normalised form.
    assert_eq!(
        env.store
            .resolve("docker.io/library/app:2")
            .expect("resolve"),
        Some(app.manifest.clone()).map(|mut d| {
            d.annotations.insert(
                media::REF_NAME_ANNOTATION.to_owned(),
                "docker.io/library/app:2".to_owned(),
            );
            d
        })
    );

    // Tagging moves an existing name.
    let other = put_image(&env.store, &["other:1"], "2024-01-01T00:00:00Z", "other");
    env.ok(&["tag", "other:1", "app:2"]);
    let rows = table(&env.ok(&["images", "app:2"]));
    assert_eq!(rows[0]["IMAGE ID"], other.short_id());

    let stderr = env.fails(&["tag", "nope:1", "app:3"]);
    assert_eq!(
        stderr,
        "berth: no such image: nope:1 (see 'berth images')\n"
    );
    let stderr = env.fails(&["tag", "app:1", &format!("app@{}", app.manifest.digest)]);
    assert!(stderr.contains("digest"), "{stderr}");
    let stderr = env.fails(&["tag", "app:1", "App:3"]);
    assert!(stderr.contains("invalid reference format"), "{stderr}");
}

#[test]
fn inspect_prints_a_docker_like_array() {
    let env = Env::new();
    let app = put_image(
        &env.store,
        &["app:1", "app:latest"],
        "2024-01-01T00:00:00Z",
        "app",
    );
    let stdout = env.ok(&["inspect", "app:1"]);
    assert!(stdout.starts_with("[\n  {"), "pretty-printed: {stdout}");
    let value: Value = serde_json::from_str(&stdout).expect("JSON");
    let items = value.as_array().expect("array");
    assert_eq!(items.len(), 1);
    let image = &items[0];
    assert_eq!(image["Id"], app.config.to_string());
    assert_eq!(
        image["RepoTags"],
        serde_json::json!(["app:1", "app:latest"])
    );
    assert_eq!(image["RepoDigests"], serde_json::json!([]));
    assert_eq!(image["Created"], "2024-01-01T00:00:00Z");
    assert_eq!(image["Architecture"], "amd64");
    assert_eq!(image["Os"], "linux");
    assert_eq!(
        image["Config"]["Cmd"],
        serde_json::json!(["/bin/run", "app"])
    );
    assert_eq!(image["RootFS"]["Type"], "layers");
    let layers: Vec<String> = app.layers.iter().map(Digest::to_string).collect();
    assert_eq!(image["RootFS"]["Layers"], serde_json::json!(layers));
    assert_eq!(image["Size"], app.size);
    assert_eq!(
        image["Manifest"]["config"]["digest"],
        app.config.to_string()
    );
    assert_eq!(
        image["Descriptor"]["digest"],
        app.manifest.digest.to_string()
    );
    assert_eq!(image["Descriptor"]["mediaType"], media::OCI_IMAGE_MANIFEST);

    // Several images, by ID and name; an unknown one is reported after the array.
    let (code, stdout, stderr) = env.run(&["inspect", &app.short_id(), "app", "nope"]);
    assert_eq!(code, 1);
    let value: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(value.as_array().map(Vec::len), Some(2));
    assert_eq!(stderr, "berth: no such image: nope (see 'berth images')\n");
}

#[test]
fn rmi_untags_then_deletes_manifest_and_config() {
    let env = Env::new();
    let app = put_image(
        &env.store,
        &["app:1", "app:2"],
        "2024-01-01T00:00:00Z",
        "app",
    );

    assert_eq!(env.ok(&["rmi", "app:2"]), "Untagged: app:2\n");
    assert!(env.store.has_blob(&app.manifest.digest).expect("has"));
    assert!(env.store.has_blob(&app.config).expect("has"));

    assert_eq!(
        env.ok(&["rmi", "app:1"]),
        format!("Untagged: app:1\nDeleted: {}\n", app.config)
    );
    assert!(!env.store.has_blob(&app.manifest.digest).expect("has"));
    assert!(!env.store.has_blob(&app.config).expect("has"));
    // Layers stay for prune (the build cache may share them).
    for layer in &app.layers {
        assert!(env.store.has_blob(layer).expect("has"));
    }
    assert!(table(&env.ok(&["images"])).is_empty());

    let stderr = env.fails(&["rmi", "app:1"]);
    assert_eq!(stderr, "berth: no such image: app:1 (see 'berth images')\n");
}

#[test]
fn rmi_by_id_needs_force_across_repositories() {
    let env = Env::new();
    // Several tags of one repository: an ID removes them all, as in Docker.
    let one = put_image(
        &env.store,
        &["app:1", "app:latest"],
        "2024-01-01T00:00:00Z",
        "one",
    );
    assert_eq!(
        env.ok(&["rmi", &one.short_id()]),
        format!(
            "Untagged: app:1\nUntagged: app:latest\nDeleted: {}\n",
            one.config
        )
    );

    // Names in two repositories: -f is needed.
    let two = put_image(&env.store, &["a:1", "b:1"], "2024-01-01T00:00:00Z", "two");
    let stderr = env.fails(&["rmi", &two.short_id()]);
    assert!(stderr.contains("must be forced"), "{stderr}");
    assert!(
        stderr.contains("referenced in multiple repositories (a:1, b:1)"),
        "{stderr}"
    );
    assert!(stderr.contains("-f"), "{stderr}");
    assert_eq!(table(&env.ok(&["images"])).len(), 2, "nothing was removed");
    assert_eq!(
        env.ok(&["rmi", "-f", &format!("sha256:{}", two.config.hex())]),
        format!("Untagged: a:1\nUntagged: b:1\nDeleted: {}\n", two.config)
    );
    // The shared base layer stays; the other names are unaffected.
    assert!(env.store.has_blob(&two.layers[0]).expect("has"));
}

#[test]
fn rmi_keeps_going_after_a_failure_and_rejects_ambiguous_ids() {
    let env = Env::new();
    put_image(&env.store, &["app:1"], "2024-01-01T00:00:00Z", "app");
    let (code, stdout, stderr) = env.run(&["rmi", "nope", "app:1"]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("Untagged: app:1\nDeleted: sha256:"),
        "{stdout}"
    );
    assert_eq!(stderr, "berth: no such image: nope (see 'berth images')\n");

    // Two images whose IDs share their first four hex digits.
    let base: Vec<Digest> = layers_for("x").iter().map(|l| Digest::of(l)).collect();
    let mut seen: HashMap<String, String> = HashMap::new();
    let (a, b) = (0..100_000)
        .find_map(|i| {
            let marker = format!("m{i}");
            let mut diff_ids = base.clone();
            diff_ids[1] = Digest::of(&layers_for(&marker)[1]);
            let id = Digest::of(&config_bytes("2024-01-01T00:00:00Z", &marker, diff_ids));
            let prefix = id.hex()[..4].to_owned();
            seen.insert(prefix, marker.clone())
                .map(|previous| (previous, marker))
        })
        .expect("a 4-digit prefix collision among 100000 IDs");
    let a = put_image(&env.store, &["a:1"], "2024-01-01T00:00:00Z", &a);
    let b = put_image(&env.store, &["b:1"], "2024-01-01T00:00:00Z", &b);
    let prefix = &a.config.hex()[..4];
    assert_eq!(prefix, &b.config.hex()[..4]);
    let stderr = env.fails(&["rmi", prefix]);
    assert!(stderr.contains("ambiguous"), "{stderr}");
    assert!(
        stderr.contains(&a.short_id()) && stderr.contains(&b.short_id()),
        "{stderr}"
    );
    // Too short to be an ID prefix: read as a name only.
    let stderr = env.fails(&["rmi", &prefix[..3]]);
    assert!(stderr.contains("no such image"), "{stderr}");
}

#[test]
fn prune_refuses_to_run_unconfirmed_without_a_terminal() {
    let env = Env::new();
    let stderr = env.fails(&["prune"]);
    assert!(
        stderr.contains("standard input is not a terminal"),
        "{stderr}"
    );
    assert!(stderr.contains("-f"), "{stderr}");
}

#[test]
fn prune_removes_unreferenced_blobs_and_keeps_named_images() {
    let env = Env::new();
    let app = put_image(&env.store, &["app:1"], "2024-01-01T00:00:00Z", "app");
    let old = env
        .store
        .put_bytes(b"an old blob nothing names")
        .expect("put");
    backdate(&env.store.blob_path(&old), HOUR);
    // Fresh: may belong to a build still running elsewhere.
    let fresh = env
        .store
        .put_bytes(b"a blob a running build wrote")
        .expect("put");
    // An untagged image's blobs, old.
    let gone = put_image(&env.store, &["gone:1"], "2024-01-01T00:00:00Z", "gone");
    env.ok(&["rmi", "gone:1"]);
    for layer in &gone.layers {
        backdate(&env.store.blob_path(layer), HOUR);
    }

    let stdout = env.ok(&["prune", "-f"]);
    // The old blob and the untagged image's own layer; the base layer is shared.
    let freed = 25 + layer_tar("app/marker", "gone").len() as u64;
    assert_eq!(
        stdout,
        format!(
            "Deleted blobs: 2, snapshots: 0, cache records: 0\nTotal reclaimed space: {}\n",
            human_size(freed)
        )
    );
    assert!(!env.store.has_blob(&old).expect("has"));
    assert!(!env.store.has_blob(&gone.layers[1]).expect("has"));
    assert!(env.store.has_blob(&fresh).expect("has"));
    for digest in [
        app.manifest.digest,
        app.config,
        app.layers[0],
        app.layers[1],
    ] {
        assert!(env.store.has_blob(&digest).expect("has"), "{digest}");
    }
    assert_eq!(table(&env.ok(&["images"])).len(), 1);
    // Nothing more to do.
    assert_eq!(
        env.ok(&["prune", "--force"]),
        "Deleted blobs: 0, snapshots: 0, cache records: 0\nTotal reclaimed space: 0B\n"
    );
}

#[test]
fn prune_keeps_build_cache_layers_until_all() {
    let env = Env::new();
    let cache = BuildCache::open(&env.store).expect("cache");
    let cached = layer_tar("cached/step", "output of a RUN step");
    let cached_digest = env.store.put_bytes(&cached).expect("put");
    backdate(&env.store.blob_path(&cached_digest), HOUR);
    let record = |digest: Digest, size: u64| CacheRecord {
        layer: LayerRef {
            descriptor: Descriptor::new(media::OCI_LAYER_TAR, digest, size),
            diff_id: digest,
        },
        created: "2024-01-01T00:00:00Z".to_owned(),
    };
    cache
        .put(
            &CacheKey(Digest::of(b"key 1")),
            &record(cached_digest, cached.len() as u64),
        )
        .expect("put record");
    // A record whose layer was removed behind the cache's back: stale.
    cache
        .put(
            &CacheKey(Digest::of(b"key 2")),
            &record(Digest::of(b"gone"), 4),
        )
        .expect("put record");

    assert_eq!(
        env.ok(&["prune", "-f"]),
        "Deleted blobs: 0, snapshots: 0, cache records: 1\nTotal reclaimed space: 0B\n"
    );
    assert!(env.store.has_blob(&cached_digest).expect("has"));
    assert_eq!(cache.records().expect("records").len(), 1);

    let stdout = env.ok(&["prune", "-a", "-f"]);
    assert_eq!(
        stdout,
        format!(
            "Deleted blobs: 1, snapshots: 0, cache records: 1\nTotal reclaimed space: {}\n",
            human_size(cached.len() as u64)
        )
    );
    assert!(!env.store.has_blob(&cached_digest).expect("has"));
    assert!(cache.records().expect("records").is_empty());
}

#[test]
fn prune_removes_snapshots_nothing_uses() {
    let env = Env::new();
    let app = put_image(&env.store, &["app:1"], "2024-01-01T00:00:00Z", "app");
    let snapshots = env.root().join("snapshots");
    let make = |diff_id: &Digest, age: Duration| -> PathBuf {
        let dir = snapshots.join(diff_id.hex());
        fs::create_dir_all(dir.join("etc")).expect("mkdir");
        fs::write(dir.join("etc/data"), vec![b'x'; 3000]).expect("write");
        backdate(&dir, age);
        dir
    };
    let used = make(&app.layers[1], HOUR);
    let unused = make(&Digest::of(b"unused layer"), HOUR);
    let fresh = make(&Digest::of(b"layer of a running build"), Duration::ZERO);
    let leftover = snapshots.join(".unpack-crashed");
    fs::create_dir_all(&leftover).expect("mkdir");
    backdate(&leftover, 2 * HOUR);
    // Saved layer indexes go with their layers.
    let index = |diff_id: &Digest| -> PathBuf {
        let path = snapshots.join(format!(".index-{}", diff_id.hex()));
        fs::write(&path, "{}\n").expect("write");
        backdate(&path, HOUR);
        path
    };
    let used_index = index(&app.layers[0]);
    let unused_index = index(&Digest::of(b"unused index"));

    assert_eq!(
        env.ok(&["prune", "-f"]),
        "Deleted blobs: 0, snapshots: 1, cache records: 0\nTotal reclaimed space: 3kB\n"
    );
    assert!(used.is_dir());
    assert!(!unused.exists());
    assert!(fresh.is_dir());
    assert!(!leftover.exists());
    assert!(used_index.exists());
    assert!(!unused_index.exists());
}

/// Runs skopeo if installed; under CI a missing skopeo is a failure.
fn skopeo(args: &[&str]) -> Option<Value> {
    let output = match StdCommand::new("skopeo").args(args).output() {
        Ok(output) => output,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping skopeo check: {e}");
            return None;
        }
        Err(e) => panic!("skopeo is required under CI: {e}"),
    };
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("skopeo prints JSON"))
}

#[test]
fn skopeo_reads_an_exported_oci_dir_and_the_store() {
    let env = Env::new();
    let app = put_image(&env.store, &["app:1"], "2024-01-01T00:00:00Z", "app");
    let image = load_image(&env.store, &app.manifest, None).expect("load");
    let dest = env.dir.path().join("layout");
    let names = [Reference::parse("app:1").expect("reference")];
    export_image(
        &env.store,
        &image,
        &names,
        &ExportTarget::OciDir(dest.clone()),
    )
    .expect("export");

    let exported = format!("oci:{}:1", dest.display());
    let stored = format!("oci:{}:docker.io/library/app:1", env.root().display());
    for reference in [exported, stored] {
        if let Some(info) = skopeo(&["inspect", &reference]) {
            assert_eq!(
                info["Digest"],
                app.manifest.digest.to_string(),
                "{reference}"
            );
            assert_eq!(info["Architecture"], "amd64");
            let layers: Vec<String> = app.layers.iter().map(Digest::to_string).collect();
            assert_eq!(info["Layers"], serde_json::json!(layers));
        }
    }
}

#[test]
fn a_broken_image_is_still_listed_and_removable() {
    let env = Env::new();
    let app = put_image(&env.store, &["app:1"], "2024-01-01T00:00:00Z", "app");
    // Its config was deleted behind berth's back.
    env.store.remove_blob(&app.config).expect("remove config");

    let rows = table(&env.ok(&["images"]));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["REPOSITORY"], "app");
    assert_eq!(rows[0]["IMAGE ID"], &app.manifest.digest.hex()[..12]);
    assert_eq!(rows[0]["CREATED"], "N/A");
    assert_eq!(rows[0]["SIZE"], "0B");

    let stderr = env.fails(&["inspect", "app:1"]);
    assert!(stderr.contains("pull or build the image again"), "{stderr}");

    assert_eq!(
        env.ok(&["rmi", "app:1"]),
        format!("Untagged: app:1\nDeleted: {}\n", app.manifest.digest)
    );
    assert!(table(&env.ok(&["images"])).is_empty());
}
