//! Where blobs are known to live: for each blob, the registry repositories
//! it was pulled from or pushed to (`<root>/distribution/sha256/<hex>`, one
//! `host/repository` per line). A push asks the registry to mount a blob
//! from one of these instead of uploading it again.
//!
//! The record is a hint: a stale line only costs a refused mount, after
//! which the blob is uploaded. Lines are appended with single `write`s to
//! an `O_APPEND` file, so concurrent berth processes do not interleave.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use berth_runtime::store::{Digest, Store};

fn record_path(store: &Store, digest: &Digest) -> PathBuf {
    store
        .root()
        .join("distribution")
        .join(digest.algorithm())
        .join(digest.hex())
}

/// Notes that `host/repository` has `digest`. Best effort: a failure to
/// record costs only a future upload.
pub fn record(store: &Store, digest: &Digest, host: &str, repository: &str) {
    let path = record_path(store, digest);
    let line = format!("{host}/{repository}\n");
    if known(store, digest)
        .iter()
        .any(|l| l.as_str() == line.trim_end())
    {
        return;
    }
    let _ = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
        f.write_all(line.as_bytes())
    })();
}

/// Every `host/repository` known to have `digest`.
pub fn known(store: &Store, digest: &Digest) -> Vec<String> {
    fs::read_to_string(record_path(store, digest))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A repository on `host`, other than `repository`, known to have `digest`.
pub fn mount_source(
    store: &Store,
    digest: &Digest,
    host: &str,
    repository: &str,
) -> Option<String> {
    known(store, digest).into_iter().find_map(|line| {
        let (h, repo) = line.split_once('/')?;
        (h == host && repo != repository).then(|| repo.to_owned())
    })
}
