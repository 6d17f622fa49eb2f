//! Image exporters: OCI directory, OCI tar and `docker load` tar, written
//! from small images made directly in a temp store.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_builder::export::{ExportError, ExportTarget, export_image};
use berth_registry::reference::Reference;
use berth_runtime::image::{ContainerConfig, Image, ImageConfig, Manifest, RootFs, load_image};
use berth_runtime::store::{Descriptor, Digest, Store, media};
use serde_json::Value;
use tempfile::TempDir;

/// A temp store and the directory exports go to.
struct Fixture {
    _dir: TempDir,
    store: Store,
    out: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store")).expect("open store");
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("create out dir");
    Fixture {
        _dir: dir,
        store,
        out,
    }
}

/// An uncompressed layer tar holding `files`.
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        builder
            .append_data(&mut h, path, content.as_bytes())
            .expect("append");
    }
    builder.into_inner().expect("finish tar")
}

/// Writes an image with `layers` into the store, names it `name` (full
/// form), and loads it back.
fn put_image(store: &Store, name: &str, layers: &[Vec<u8>], cmd: &str) -> Image {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for bytes in layers {
        let digest = store.put_bytes(bytes).expect("put layer");
        descriptors.push(Descriptor::new(
            media::OCI_LAYER_TAR,
            digest,
            bytes.len() as u64,
        ));
        diff_ids.push(digest);
    }
    let config = ImageConfig {
        created: Some("2024-05-01T12:00:00Z".to_owned()),
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        config: ContainerConfig {
            cmd: Some(vec![cmd.to_owned()]),
            ..ContainerConfig::default()
        },
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids,
        },
        ..ImageConfig::default()
    };
    let config_bytes = serde_json::to_vec(&config).expect("config json");
    let config_digest = store.put_bytes(&config_bytes).expect("put config");
    let manifest = Manifest::oci(
        Descriptor::new(
            media::OCI_IMAGE_CONFIG,
            config_digest,
            config_bytes.len() as u64,
        ),
        descriptors,
    );
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_digest = store.put_bytes(&manifest_bytes).expect("put manifest");
    let desc = Descriptor::new(
        media::OCI_IMAGE_MANIFEST,
        manifest_digest,
        manifest_bytes.len() as u64,
    );
    store.set_name(name, desc.clone()).expect("name image");
    load_image(store, &desc, None).expect("load image")
}

fn simple_image(store: &Store, name: &str, marker: &str) -> Image {
    put_image(
        store,
        name,
        &[
            layer(&[("etc/os-release", "ID=test\n")]),
            layer(&[("app/run.sh", marker)]),
        ],
        marker,
    )
}

fn refs(names: &[&str]) -> Vec<Reference> {
    names
        .iter()
        .map(|n| Reference::parse(n).expect("reference"))
        .collect()
}

fn json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Every digest the image consists of.
fn image_blobs(image: &Image) -> Vec<Digest> {
    let mut all = vec![image.manifest_descriptor.digest, image.config_digest];
    all.extend(image.manifest.layers.iter().map(|l| l.digest));
    all
}

/// A tar's entries: path -> (header, content).
fn read_tar(bytes: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let header = entry.header().clone();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("read entry");
        out.push((path, header, content));
    }
    out
}

/// Names of the files in `dir` (to check no temp files were left).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn oci_dir_has_layout_index_and_hardlinked_blobs() {
    let f = fixture();
    let image = simple_image(&f.store, "docker.io/library/app:1", "one");
    let dest = f.out.join("nested/layout");
    export_image(
        &f.store,
        &image,
        &refs(&["app:1", "app"]),
        &ExportTarget::OciDir(dest.clone()),
    )
    .expect("export");

    assert_eq!(
        fs::read_to_string(dest.join("oci-layout")).expect("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = json(&dest.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], media::OCI_IMAGE_INDEX);
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 2, "{index}");
    let want = [
        ("1", "docker.io/library/app:1"),
        ("latest", "docker.io/library/app:latest"),
    ];
    for (entry, (tag, full)) in entries.iter().zip(want) {
        assert_eq!(
            entry["digest"],
            image.manifest_descriptor.digest.to_string()
        );
        assert_eq!(entry["mediaType"], media::OCI_IMAGE_MANIFEST);
        assert_eq!(entry["size"], image.manifest_descriptor.size);
        assert_eq!(entry["annotations"][media::REF_NAME_ANNOTATION], tag);
        assert_eq!(entry["annotations"]["io.containerd.image.name"], full);
    }

    let mut blobs = listing(&dest.join("blobs/sha256"));
    let mut expected: Vec<String> = image_blobs(&image).iter().map(Digest::hex).collect();
    expected.sort();
    blobs.sort();
    assert_eq!(blobs, expected, "exactly the image's blobs, no temp files");
    for digest in image_blobs(&image) {
        let exported = dest.join(digest.relative_path());
        let stored = f.store.blob_path(&digest);
        assert_eq!(
            fs::read(&exported).expect("blob"),
            fs::read(&stored).expect("stored")
        );
        // Same filesystem: a hardlink, not a copy.
        assert_eq!(
            fs::metadata(&exported).expect("meta").ino(),
            fs::metadata(&stored).expect("meta").ino()
        );
    }
    // Nothing left beside the destination.
    assert_eq!(listing(&f.out.join("nested")), vec!["layout"]);
}

#[test]
fn oci_dir_without_names_has_one_plain_entry() {
    let f = fixture();
    let image = simple_image(&f.store, "docker.io/library/app:1", "one");
    let dest = f.out.join("plain");
    export_image(&f.store, &image, &[], &ExportTarget::OciDir(dest.clone())).expect("export");
    let index = json(&dest.join("index.json"));
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1);
    assert!(entries[0].get("annotations").is_none(), "{index}");
}

#[test]
fn oci_dir_adds_to_an_existing_layout() {
    let f = fixture();
    let one = simple_image(&f.store, "docker.io/library/app:1", "one");
    let two = simple_image(&f.store, "docker.io/library/app:2", "two");
    let dest = f.out.join("layout");
    export_image(
        &f.store,
        &one,
        &refs(&["app:1"]),
        &ExportTarget::OciDir(dest.clone()),
    )
    .expect("first export");

    // Another tool's entry and fields must survive.
    let mut index = json(&dest.join("index.json"));
    index["annotations"] = serde_json::json!({"org.example.note": "kept"});
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(serde_json::json!({
            "mediaType": media::OCI_IMAGE_MANIFEST,
            "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "size": 1,
            "annotations": {"org.opencontainers.image.ref.name": "foreign"},
            "urls": ["https://example.invalid/x"]
        }));
    fs::write(dest.join("index.json"), index.to_string()).expect("rewrite index");

    export_image(
        &f.store,
        &two,
        &refs(&["app:2"]),
        &ExportTarget::OciDir(dest.clone()),
    )
    .expect("second export");
    let tags = |index: &Value| -> BTreeMap<String, String> {
        index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|e| {
                (
                    e["annotations"][media::REF_NAME_ANNOTATION]
                        .as_str()
                        .expect("ref name")
                        .to_owned(),
                    e["digest"].as_str().expect("digest").to_owned(),
                )
            })
            .collect()
    };
    let index = json(&dest.join("index.json"));
    let found = tags(&index);
    assert_eq!(found.len(), 3, "{index}");
    assert_eq!(found["1"], one.manifest_descriptor.digest.to_string());
    assert_eq!(found["2"], two.manifest_descriptor.digest.to_string());
    assert_eq!(index["annotations"]["org.example.note"], "kept");
    let foreign = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|e| e["annotations"][media::REF_NAME_ANNOTATION] == "foreign")
        })
        .expect("foreign entry kept");
    assert_eq!(foreign["urls"][0], "https://example.invalid/x");

    // Re-exporting under an existing tag moves the tag.
    export_image(
        &f.store,
        &two,
        &refs(&["app:1"]),
        &ExportTarget::OciDir(dest.clone()),
    )
    .expect("third export");
    let index = json(&dest.join("index.json"));
    let found = tags(&index);
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(3),
        "{index}"
    );
    assert_eq!(found["1"], two.manifest_descriptor.digest.to_string());
    // The first image's blobs stay: other tools may still reference them.
    for digest in image_blobs(&one) {
        assert!(dest.join(digest.relative_path()).is_file());
    }
    // Exporting the same thing again changes nothing.
    let before = fs::read(dest.join("index.json")).expect("index");
    export_image(
        &f.store,
        &two,
        &refs(&["app:1"]),
        &ExportTarget::OciDir(dest.clone()),
    )
    .expect("fourth export");
    assert_eq!(fs::read(dest.join("index.json")).expect("index"), before);
}

#[test]
fn oci_dir_refuses_a_directory_that_is_no_layout() {
    let f = fixture();
    let image = simple_image(&f.store, "docker.io/library/app:1", "one");
    let dest = f.out.join("photos");
    fs::create_dir(&dest).expect("mkdir");
    fs::write(dest.join("holiday.jpg"), b"jpeg").expect("write");
    let err = export_image(
        &f.store,
        &image,
        &refs(&["app:1"]),
        &ExportTarget::OciDir(dest.clone()),
    )
    .expect_err("must refuse");
    assert!(matches!(err, ExportError::NotALayout { .. }), "{err}");
    assert!(err.to_string().contains("not an OCI image layout"), "{err}");
    assert_eq!(listing(&dest), vec!["holiday.jpg"]);

    // An empty directory is fine.
    let empty = f.out.join("empty");
    fs::create_dir(&empty).expect("mkdir");
    export_image(
        &f.store,
        &image,
        &refs(&["app:1"]),
        &ExportTarget::OciDir(empty.clone()),
    )
    .expect("export into empty dir");
    assert_eq!(listing(&empty), vec!["blobs", "index.json", "oci-layout"]);
}

#[test]
fn oci_tar_is_the_layout_sorted_and_deterministic() {
    let f = fixture();
    let image = simple_image(&f.store, "docker.io/library/app:1", "one");
    let a = f.out.join("a.tar");
    let b = f.out.join("b.tar");
    for dest in [&a, &b] {
        export_image(
            &f.store,
            &image,
            &refs(&["app:1"]),
            &ExportTarget::OciTar(dest.clone()),
        )
        .expect("export");
    }
    let bytes = fs::read(&a).expect("read tar");
    assert_eq!(
        bytes,
        fs::read(&b).expect("read tar"),
        "two exports, same bytes"
    );

    let entries = read_tar(&bytes);
    let paths: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries in sorted order");
    let mut expected = vec!["blobs/".to_owned(), "blobs/sha256/".to_owned()];
    let mut blob_paths: Vec<String> = image_blobs(&image)
        .iter()
        .map(|d| format!("blobs/sha256/{}", d.hex()))
        .collect();
    blob_paths.sort();
    expected.extend(blob_paths);
    expected.extend(["index.json".to_owned(), "oci-layout".to_owned()]);
    assert_eq!(paths, expected);

    for (path, header, content) in &entries {
        assert_eq!(header.mtime().expect("mtime"), 0, "{path}");
        assert_eq!(header.uid().expect("uid"), 0, "{path}");
        assert_eq!(header.gid().expect("gid"), 0, "{path}");
        if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let digest = Digest::from_hex(hex).expect("digest name");
            assert_eq!(Digest::of(content), digest, "blob content matches its name");
        }
    }
    let index: Value = serde_json::from_slice(&entries[entries.len() - 2].2).expect("index");
    assert_eq!(
        index["manifests"][0]["annotations"][media::REF_NAME_ANNOTATION],
        "1"
    );
    assert_eq!(
        listing(&f.out),
        vec!["a.tar", "b.tar"],
        "no temp files left"
    );
}

#[test]
fn docker_tar_has_manifest_json_and_repositories() {
    let f = fixture();
    let image = simple_image(&f.store, "docker.io/library/app:1", "one");
    let dest = f.out.join("docker.tar");
    export_image(
        &f.store,
        &image,
        &refs(&["app:1", "registry.example:5000/team/app:2"]),
        &ExportTarget::DockerTar(dest.clone()),
    )
    .expect("export");
    let entries = read_tar(&fs::read(&dest).expect("read tar"));
    let file = |name: &str| -> Value {
        let (_, _, content) = entries
            .iter()
            .find(|(p, _, _)| p == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        serde_json::from_slice(content).expect("json")
    };
    let manifest = file("manifest.json");
    let layers: Vec<String> = image
        .manifest
        .layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
        .collect();
    assert_eq!(
        manifest,
        serde_json::json!([{
            "Config": format!("blobs/sha256/{}", image.config_digest.hex()),
            "RepoTags": ["app:1", "registry.example:5000/team/app:2"],
            "Layers": layers,
        }])
    );
    let top = image.manifest.layers.last().expect("layer").digest.hex();
    assert_eq!(
        file("repositories"),
        serde_json::json!({"app": {"1": top}, "registry.example:5000/team/app": {"2": top}})
    );
    assert_eq!(file("oci-layout")["imageLayoutVersion"], "1.0.0");
    assert_eq!(
        file("index.json")["manifests"].as_array().map(Vec::len),
        Some(2)
    );
    // Layers and config are present, byte for byte as stored (still compressed, if they were).
    for digest in image_blobs(&image) {
        let path = format!("blobs/sha256/{}", digest.hex());
        let (_, _, content) = entries
            .iter()
            .find(|(p, _, _)| *p == path)
            .expect("blob entry");
        assert_eq!(
            *content,
            fs::read(f.store.blob_path(&digest)).expect("stored")
        );
    }
}

#[test]
fn failed_exports_leave_no_destination() {
    let f = fixture();
    let image = simple_image(&f.store, "docker.io/library/app:1", "one");
    let layer = image.manifest.layers[1].digest;

    // A layer that was pruned from the store.
    let saved = fs::read(f.store.blob_path(&layer)).expect("read layer");
    f.store.remove_blob(&layer).expect("remove layer");
    for target in [
        ExportTarget::OciDir(f.out.join("dir")),
        ExportTarget::OciTar(f.out.join("oci.tar")),
        ExportTarget::DockerTar(f.out.join("docker.tar")),
    ] {
        let err = export_image(&f.store, &image, &refs(&["app:1"]), &target)
            .expect_err("missing layer must fail");
        assert!(
            matches!(err, ExportError::MissingBlob { digest, what: "layer" } if digest == layer),
            "{err}"
        );
        assert!(
            err.to_string().contains("pull or build the image again"),
            "{err}"
        );
    }
    assert!(listing(&f.out).is_empty(), "{:?}", listing(&f.out));

    // A layer whose content no longer matches its digest (same size): caught
    // while streaming, after the archive was partly written.
    let mut corrupt = saved.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    fs::write(f.store.blob_path(&layer), &corrupt).expect("write corrupt layer");
    for target in [
        ExportTarget::OciTar(f.out.join("oci.tar")),
        ExportTarget::DockerTar(f.out.join("docker.tar")),
    ] {
        let err = export_image(&f.store, &image, &refs(&["app:1"]), &target)
            .expect_err("corrupt layer must fail");
        assert!(matches!(err, ExportError::CorruptBlob { .. }), "{err}");
    }
    assert!(listing(&f.out).is_empty(), "{:?}", listing(&f.out));

    // A destination that cannot be created: its parent is a file.
    fs::write(f.store.blob_path(&layer), &saved).expect("restore layer");
    fs::write(f.out.join("file"), b"x").expect("write");
    for target in [
        ExportTarget::OciDir(f.out.join("file/dir")),
        ExportTarget::OciTar(f.out.join("file/oci.tar")),
    ] {
        let err =
            export_image(&f.store, &image, &refs(&["app:1"]), &target).expect_err("must fail");
        assert!(matches!(err, ExportError::Io { .. }), "{err}");
    }
    assert_eq!(listing(&f.out), vec!["file"]);

    // A tar destination that is a directory.
    fs::create_dir(f.out.join("adir")).expect("mkdir");
    let err = export_image(
        &f.store,
        &image,
        &refs(&["app:1"]),
        &ExportTarget::OciTar(f.out.join("adir")),
    )
    .expect_err("must fail");
    assert!(matches!(err, ExportError::DestIsDirectory { .. }), "{err}");
    assert!(listing(&f.out.join("adir")).is_empty());
}

/// Runs skopeo if installed; under CI a missing skopeo is a failure.
fn skopeo(args: &[&str]) -> Option<Value> {
    let output = match Command::new("skopeo").args(args).output() {
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
fn skopeo_reads_the_archives() {
    let f = fixture();
    let image = simple_image(&f.store, "docker.io/library/app:1", "one");
    let oci = f.out.join("oci.tar");
    let docker = f.out.join("docker.tar");
    export_image(
        &f.store,
        &image,
        &refs(&["app:1"]),
        &ExportTarget::OciTar(oci.clone()),
    )
    .expect("export oci");
    export_image(
        &f.store,
        &image,
        &refs(&["app:1"]),
        &ExportTarget::DockerTar(docker.clone()),
    )
    .expect("export docker");

    let oci_ref = format!("oci-archive:{}:1", oci.display());
    if let Some(info) = skopeo(&["inspect", &oci_ref]) {
        assert_eq!(info["Digest"], image.manifest_descriptor.digest.to_string());
        assert_eq!(info["Architecture"], "amd64");
        assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2));
    }
    let docker_ref = format!("docker-archive:{}", docker.display());
    if let Some(config) = skopeo(&["inspect", "--config", &docker_ref]) {
        assert_eq!(config["config"]["Cmd"][0], "one");
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().map(Vec::len),
            Some(2)
        );
    }
}
