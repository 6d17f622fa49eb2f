//! The stat cache: content digests of context files, remembered with the
//! file's inode, size, mtime and ctime. A rebuild rehashes only files whose
//! stat changed; ctime catches content rewrites that restore the mtime.
//!
//! One file per context directory: `cache/stat/<sha256 of the context's
//! canonical path>.json`. Losing it only costs rehashing.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_runtime::store::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use super::records::BuildCache;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Entries {
    files: HashMap<String, (Stamp, Digest)>,
}

/// Remembered content digests for one context directory.
#[derive(Debug)]
pub struct StatCache {
    path: Option<PathBuf>,
    entries: Mutex<(Entries, bool)>,
}

impl StatCache {
    /// The stat cache for `context_dir`; empty when there is none yet or it
    /// cannot be read.
    pub fn load(cache: &BuildCache, context_dir: &Path) -> StatCache {
        let canonical = fs::canonicalize(context_dir).unwrap_or_else(|_| context_dir.to_path_buf());
        let name = Digest::of(canonical.as_os_str().as_encoded_bytes()).hex();
        let path = cache.dir().join("stat").join(format!("{name}.json"));
        let entries = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entries>(&b).ok())
            .unwrap_or_default();
        StatCache {
            path: Some(path),
            entries: Mutex::new((entries, false)),
        }
    }

    /// A stat cache that remembers nothing on disk (for `--no-cache`).
    pub fn ephemeral() -> StatCache {
        StatCache {
            path: None,
            entries: Mutex::new((Entries::default(), false)),
        }
    }

    /// The sha256 of the file at `host_path` (context-relative `rel`, stat
    /// `metadata`), from the cache when its stat is unchanged.
    pub fn digest(&self, rel: &str, host_path: &Path, metadata: &Metadata) -> io::Result<Digest> {
        let stamp = Stamp::of(metadata);
        if let Ok(guard) = self.entries.lock()
            && let Some((known, digest)) = guard.0.files.get(rel)
            && *known == stamp
        {
            return Ok(*digest);
        }
        let digest = hash_file(host_path)?;
        if let Ok(mut guard) = self.entries.lock() {
            guard.0.files.insert(rel.to_owned(), (stamp, digest));
            guard.1 = true;
        }
        Ok(digest)
    }

    /// Writes the cache back if it learned anything. Best effort: failing to
    /// save only costs rehashing next time.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let Ok(guard) = self.entries.lock() else {
            return;
        };
        if !guard.1 {
            return;
        }
        let Some(dir) = path.parent() else { return };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = path.with_extension("tmp");
        if let Ok(bytes) = serde_json::to_vec(&guard.0)
            && fs::write(&tmp, bytes).is_ok()
        {
            let _ = fs::rename(&tmp, path);
        }
    }
}

/// Streams a file through sha256.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}
