//! Cache records on disk: `<store>/cache/records/<key-hex>.json`, one small
//! JSON file per step that produced a layer. A record is written atomically
//! (temp file + rename) after its layer blob is committed, so a record never
//! points at a blob that was not fully written; a record whose blob has since
//! been pruned is treated as a miss.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_runtime::store::{Descriptor, Digest, Store};
use serde::{Deserialize, Serialize};

use super::CacheKey;

/// A layer a step produced: the blob and its uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// What a cached step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub layer: LayerRef,
    /// RFC 3339 time the layer was first built; reused on cache hits so a
    /// fully cached rebuild yields the same image digest.
    pub created: String,
}

/// Cache records failed to read or write.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> CacheError + use<'a> {
    move |source| CacheError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The cache records of one store.
#[derive(Debug, Clone)]
pub struct BuildCache {
    records: PathBuf,
}

impl BuildCache {
    /// The cache under `store`'s root (`cache/records/`), created if missing.
    pub fn open(store: &Store) -> Result<BuildCache, CacheError> {
        let records = store.root().join("cache").join("records");
        fs::create_dir_all(&records).map_err(io_err("create", &records))?;
        Ok(BuildCache { records })
    }

    /// The cache directory (`<store>/cache`), where other cache state lives.
    pub fn dir(&self) -> &Path {
        self.records.parent().unwrap_or(&self.records)
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.records.join(format!("{}.json", key.hex()))
    }

    /// The record for `key`, if there is one whose layer blob is still in
    /// `store`. Unreadable or stale records count as misses: the step is
    /// simply rebuilt and the record rewritten.
    pub fn get(&self, store: &Store, key: &CacheKey) -> Option<CacheRecord> {
        let bytes = fs::read(self.path(key)).ok()?;
        let record: CacheRecord = serde_json::from_slice(&bytes).ok()?;
        let present = store.has_blob(&record.layer.descriptor.digest).ok()?;
        present.then_some(record)
    }

    /// Stores `record` under `key`, replacing any older one atomically.
    pub fn put(&self, key: &CacheKey, record: &CacheRecord) -> Result<(), CacheError> {
        let path = self.path(key);
        let tmp = self.records.join(format!(".{}.tmp", key.hex()));
        let bytes = serde_json::to_vec(record).map_err(|e| CacheError::Io {
            action: "encode",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))
    }

    /// Every record, for prune: which layers and snapshots the cache keeps.
    pub fn records(&self) -> Result<Vec<CacheRecord>, CacheError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.records).map_err(io_err("read", &self.records))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.records))?;
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(".json") {
                continue;
            }
            // A record that does not parse keeps nothing alive.
            if let Ok(bytes) = fs::read(entry.path())
                && let Ok(record) = serde_json::from_slice::<CacheRecord>(&bytes)
            {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Removes every record, and the stat caches beside them; returns how
    /// many records there were.
    pub fn clear(&self) -> Result<usize, CacheError> {
        let mut removed = 0;
        let entries = fs::read_dir(&self.records).map_err(io_err("read", &self.records))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.records))?;
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            removed += 1;
        }
        let stat = self.dir().join("stat");
        match fs::remove_dir_all(&stat) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &stat)(e));
            }
            _ => {}
        }
        Ok(removed)
    }

    /// Removes records whose layer blob is no longer in `store`.
    pub fn remove_stale(&self, store: &Store) -> Result<usize, CacheError> {
        let mut removed = 0;
        let entries = fs::read_dir(&self.records).map_err(io_err("read", &self.records))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.records))?;
            let path = entry.path();
            let keep = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<CacheRecord>(&b).ok())
                .is_some_and(|r| store.has_blob(&r.layer.descriptor.digest).unwrap_or(false));
            if !keep {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
