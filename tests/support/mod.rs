//! Shared helpers for the end-to-end tests: a private store per test, a
//! busybox root filesystem, and reading images back out of the store
//! independently of berth's own code (so tests check berth, not itself).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

pub mod fault_proxy;
pub mod registry;
pub mod token_registry;

/// A temp dir holding a store (`root/`) and whatever the test writes.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `berth ARGS` with this env's store.
    pub fn berth(&self) -> Command {
        let mut c = Command::cargo_bin("berth").expect("berth binary");
        c.env("BERTH_ROOT", self.root())
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }

    /// Writes files (`path` → content) under `rel`.
    pub fn write(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let base = self.path(rel);
        for (p, content) in files {
            let f = base.join(p);
            fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            fs::write(&f, content).expect("write");
        }
        base
    }

    /// Runs a build and returns (status ok, stdout, stderr).
    pub fn build(&self, args: &[&str]) -> (bool, String, String) {
        let out = self
            .berth()
            .arg("build")
            .args(["--progress", "plain"])
            .args(args)
            .output()
            .expect("run berth");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Builds and panics with the output on failure.
    pub fn build_ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.build(args);
        assert!(ok, "build failed:\nstdout: {stdout}\nstderr: {stderr}");
        stderr
    }

    pub fn image(&self, name: &str) -> StoredImage {
        StoredImage::load(&self.root(), name)
    }
}

/// Makes a busybox root filesystem in `dir` with fixtures/make-rootfs.sh.
pub fn make_rootfs(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/make-rootfs.sh");
    let status = Command::new("sh")
        .arg(script)
        .arg(dir)
        .status()
        .expect("run make-rootfs.sh");
    assert!(
        status.success(),
        "make-rootfs.sh failed (is busybox-static installed?)"
    );
}

/// An image read straight from the OCI layout.
pub struct StoredImage {
    pub root: PathBuf,
    pub manifest_digest: String,
    pub manifest: serde_json::Value,
    pub config: serde_json::Value,
}

pub fn blob_path(root: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    root.join("blobs/sha256").join(hex)
}

impl StoredImage {
    /// The image named `name` (full form, e.g. `docker.io/library/t:latest`).
    pub fn load(root: &Path, name: &str) -> StoredImage {
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(root.join("index.json")).expect("index.json"))
                .expect("index json");
        let desc = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .unwrap_or_else(|| panic!("no image named {name} in {index}"))
            .clone();
        let manifest_digest = desc["digest"].as_str().expect("digest").to_owned();
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(blob_path(root, &manifest_digest)).expect("manifest"))
                .expect("manifest json");
        let config: serde_json::Value = serde_json::from_slice(
            &fs::read(blob_path(
                root,
                manifest["config"]["digest"].as_str().expect("cfg"),
            ))
            .expect("config"),
        )
        .expect("config json");
        StoredImage {
            root: root.to_path_buf(),
            manifest_digest,
            manifest,
            config,
        }
    }

    pub fn layer_digests(&self) -> Vec<String> {
        self.manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("digest").to_owned())
            .collect()
    }

    /// The entries of layer `i`, in tar order: (path, type byte, mode, uid, gid).
    pub fn layer_entries(&self, i: usize) -> Vec<(String, u8, u32, u64, u64)> {
        let digest = &self.layer_digests()[i];
        let mut archive = tar::Archive::new(open_layer(&blob_path(&self.root, digest)));
        let mut out = Vec::new();
        for e in archive.entries().expect("entries") {
            let e = e.expect("entry");
            let h = e.header();
            out.push((
                e.path().expect("path").to_string_lossy().into_owned(),
                h.entry_type().as_byte(),
                h.mode().expect("mode"),
                h.uid().expect("uid"),
                h.gid().expect("gid"),
            ));
        }
        out
    }

    /// Applies every layer, whiteouts included, into a fresh directory.
    pub fn merged(&self, into: &Path) -> Merged {
        fs::create_dir_all(into).expect("mkdir");
        for digest in self.layer_digests() {
            apply_layer(&blob_path(&self.root, &digest), into);
        }
        Merged(into.to_path_buf())
    }

    /// Applies layer `i` alone into a fresh directory.
    pub fn layer_into(&self, i: usize, into: &Path) {
        fs::create_dir_all(into).expect("mkdir");
        apply_layer(&blob_path(&self.root, &self.layer_digests()[i]), into);
    }

    /// The diff ID of layer `i`, as hex.
    pub fn diff_id_hex(&self, i: usize) -> String {
        self.config["rootfs"]["diff_ids"][i]
            .as_str()
            .and_then(|d| d.strip_prefix("sha256:"))
            .expect("diff id")
            .to_owned()
    }

    pub fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().expect("str").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn open_layer(path: &Path) -> Box<dyn Read> {
    let mut f = fs::File::open(path).expect("open layer");
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).expect("read");
    drop(f);
    let f = fs::File::open(path).expect("open layer");
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(f).expect("zstd"))
    } else {
        Box::new(f)
    }
}

/// Applies one layer with OCI whiteout rules (a test-side implementation,
/// independent of berth's unpacker).
fn apply_layer(path: &Path, root: &Path) {
    let mut archive = tar::Archive::new(open_layer(path));
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        // Components drop a directory's trailing slash, which would make
        // the lookup below fail (ENOTDIR) where a directory replaces a file.
        let rel: PathBuf = e.path().expect("path").components().collect();
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = root.join(rel.parent().unwrap_or(Path::new("")));
        if name == ".wh..wh..opq" {
            for child in fs::read_dir(&parent).expect("read_dir") {
                let p = child.expect("child").path();
                if p.is_dir() && !p.is_symlink() {
                    fs::remove_dir_all(&p).expect("rm");
                } else {
                    fs::remove_file(&p).expect("rm");
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let p = parent.join(hidden);
            if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p).expect("rm");
            } else {
                let _ = fs::remove_file(&p);
            }
            continue;
        }
        let dest = root.join(&rel);
        if let Ok(m) = fs::symlink_metadata(&dest)
            && !(m.is_dir() && e.header().entry_type().is_dir())
        {
            if m.is_dir() {
                fs::remove_dir_all(&dest).expect("rm");
            } else {
                fs::remove_file(&dest).expect("rm");
            }
        }
        e.unpack_in(root).expect("unpack");
    }
}

/// A merged root filesystem on disk.
pub struct Merged(pub PathBuf);

impl Merged {
    pub fn read(&self, p: &str) -> String {
        fs::read_to_string(self.0.join(p.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("read {p}: {e}"))
    }

    pub fn exists(&self, p: &str) -> bool {
        fs::symlink_metadata(self.0.join(p.trim_start_matches('/'))).is_ok()
    }

    /// (mode & 0o7777, uid, gid)
    pub fn stat(&self, p: &str) -> (u32, u32, u32) {
        let m = fs::symlink_metadata(self.0.join(p.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("stat {p}: {e}"));
        (m.permissions().mode() & 0o7777, m.uid(), m.gid())
    }

    pub fn link(&self, p: &str) -> String {
        fs::read_link(self.0.join(p.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("readlink {p}: {e}"))
            .to_string_lossy()
            .into_owned()
    }

    /// Every path below the root, sorted, `/`-prefixed.
    pub fn list(&self) -> Vec<String> {
        let mut out = BTreeMap::new();
        walk(&self.0, &self.0, &mut out);
        out.into_keys().collect()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, ()>) {
    for e in fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        let rel = format!("/{}", p.strip_prefix(root).expect("prefix").display());
        out.insert(rel, ());
        if p.is_dir() && !p.is_symlink() {
            walk(root, &p, out);
        }
    }
}
