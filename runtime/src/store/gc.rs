//! Garbage collection: removing blobs no name needs.
//!
//! Owns the reachability walk (named descriptors and caller-given roots →
//! image indexes → manifests → config and layers) and the sweep of
//! `blobs/sha256/` and of stale `ingest/` temp files.
//!
//! The walk reads only the JSON fields it needs and never reads a blob whose
//! media type says it is a layer or config, so its cost follows the number of
//! manifests, not the size of the store. It errs towards keeping: a blob is
//! deleted only if nothing found points at it. A manifest or index that no
//! longer hashes to its digest is deleted (its children cannot be known, and
//! the error users see about it tells them to prune and pull again).
//!
//! gc holds the store lock, so names cannot change under it. Blob writes do
//! not take the lock: a blob another process has written but not yet named
//! can be collected unless [`GcOptions::grace`] covers it.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::Store;
use super::digest::Digest;
use super::error::{IoContext, Result, StoreError};
use super::fs::sync_dir;
use super::media::{is_leaf, is_manifest_or_index};

/// How gc decides what is garbage beyond reachability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// Unreachable blobs modified more recently than this are kept: they may
    /// belong to a build or pull in another process that has not named its
    /// image yet. Committing an already-stored blob refreshes its mtime.
    pub grace: Duration,
    /// Temp files in `ingest/` untouched for this long are removed: a live
    /// writer touches its file with every write.
    pub stale_ingest_after: Duration,
    /// Rehash every reachable blob and remove those whose content no longer
    /// matches (slow: reads the whole store).
    pub verify: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::ZERO,
            stale_ingest_after: Duration::from_secs(60 * 60),
            verify: false,
        }
    }
}

/// What a gc run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted, corrupt ones included.
    pub blobs_removed: u64,
    /// Of those, blobs deleted because their content did not match their digest.
    pub corrupt_removed: u64,
    /// Blobs left in place (reachable, or within the grace period).
    pub blobs_kept: u64,
    /// Stale temp files deleted from `ingest/`.
    pub temp_files_removed: u64,
    /// Bytes freed by all of the above.
    pub bytes_freed: u64,
    /// The deleted blobs' digests.
    pub removed: Vec<Digest>,
}

/// The fields of an image index or manifest that point at other blobs.
#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    manifests: Vec<Child>,
    #[serde(default)]
    config: Option<Child>,
    #[serde(default)]
    layers: Vec<Child>,
}

#[derive(Deserialize)]
struct Child {
    digest: String,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
}

/// What the walk learnt about one blob.
enum Visit {
    Children(Vec<(Digest, Option<String>)>),
    Corrupt,
}

impl Store {
    /// Removes every blob that no name in `index.json` and none of
    /// `extra_roots` (for instance build-cache records) reaches, and temp
    /// files abandoned in `ingest/` more than an hour ago. Uses
    /// [`GcOptions::default`]: no grace period, so run it only when no other
    /// berth process is writing to the store, or use [`gc_with`](Store::gc_with).
    pub fn gc(&self, extra_roots: &[Digest]) -> Result<GcReport> {
        self.gc_with(extra_roots, &GcOptions::default())
    }

    /// [`gc`](Store::gc) with explicit options.
    pub fn gc_with(&self, extra_roots: &[Digest], options: &GcOptions) -> Result<GcReport> {
        let _lock = self.lock()?;
        let index = self.read_index()?;

        let mut queue: Vec<(Digest, Option<String>)> = index
            .manifests
            .iter()
            .filter_map(|entry| {
                // Entries with another algorithm's digest point outside
                // blobs/sha256, which is all gc touches.
                let digest = Digest::parse(entry.get("digest")?.as_str()?).ok()?;
                let media_type = entry.get("mediaType").and_then(|m| m.as_str());
                Some((digest, media_type.map(str::to_owned)))
            })
            .collect();
        queue.extend(extra_roots.iter().map(|d| (*d, None)));

        let mut visited = HashSet::new();
        let mut reachable = HashSet::new();
        let mut corrupt = HashSet::new();
        while let Some((digest, media_type)) = queue.pop() {
            if !visited.insert(digest) {
                continue;
            }
            match self.visit(&digest, media_type.as_deref())? {
                Visit::Children(children) => {
                    reachable.insert(digest);
                    queue.extend(children);
                }
                Visit::Corrupt => {
                    corrupt.insert(digest);
                }
            }
        }
        if options.verify {
            for digest in &reachable {
                match self.verify_blob(digest) {
                    Ok(_) | Err(StoreError::BlobNotFound { .. }) => {}
                    Err(StoreError::CorruptBlob { .. }) => {
                        corrupt.insert(*digest);
                    }
                    Err(e) => return Err(e),
                }
            }
            reachable.retain(|d| !corrupt.contains(d));
        }

        let mut report = GcReport::default();
        self.sweep_blobs(&reachable, &corrupt, options.grace, &mut report)?;
        self.sweep_ingest(options.stale_ingest_after, &mut report)?;
        Ok(report)
    }

    /// Finds the blobs `digest` points at. Missing blobs have none (a pulled
    /// multi-platform index usually lacks most platforms' manifests).
    fn visit(&self, digest: &Digest, media_type: Option<&str>) -> Result<Visit> {
        let leaf = Ok(Visit::Children(Vec::new()));
        let known_node = media_type.is_some_and(is_manifest_or_index);
        if media_type.is_some_and(is_leaf) && !known_node {
            return leaf;
        }
        if !known_node {
            // Unknown type (a caller's root, an artifact's config): only a
            // small blob can be a manifest worth reading.
            match self.blob_size(digest) {
                Ok(size) if size <= super::MAX_SMALL_BLOB => {}
                Ok(_) | Err(StoreError::BlobNotFound { .. }) => return leaf,
                Err(e) => return Err(e),
            }
        }
        let bytes = match self.read_small(digest) {
            Ok(bytes) => bytes,
            Err(StoreError::CorruptBlob { .. }) => return Ok(Visit::Corrupt),
            // Too large to be a manifest, or gone: keep it, it has no children we can know.
            Err(StoreError::BlobNotFound { .. } | StoreError::TooLarge { .. }) => return leaf,
            Err(e) => return Err(e),
        };
        let Ok(node) = serde_json::from_slice::<Node>(&bytes) else {
            return leaf;
        };
        let children = node
            .manifests
            .into_iter()
            .chain(node.config)
            .chain(node.layers)
            .filter_map(|c| Some((Digest::parse(&c.digest).ok()?, c.media_type)))
            .collect();
        Ok(Visit::Children(children))
    }

    fn sweep_blobs(
        &self,
        reachable: &HashSet<Digest>,
        corrupt: &HashSet<Digest>,
        grace: Duration,
        report: &mut GcReport,
    ) -> Result<()> {
        let dir = self.blobs_dir();
        let now = SystemTime::now();
        for entry in fs::read_dir(&dir).at("list", &dir)? {
            let entry = entry.at("list", &dir)?;
            let path = entry.path();
            // Files berth did not name after a digest are not its to delete.
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            if reachable.contains(&digest) {
                report.blobs_kept += 1;
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at("look at", &path),
            };
            let is_corrupt = corrupt.contains(&digest);
            if !is_corrupt && grace > Duration::ZERO && is_recent(&meta, now, grace) {
                report.blobs_kept += 1;
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at("remove", &path),
            }
            report.blobs_removed += 1;
            report.corrupt_removed += u64::from(is_corrupt);
            report.bytes_freed += meta.len();
            report.removed.push(digest);
        }
        if report.blobs_removed > 0 {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    fn sweep_ingest(&self, max_age: Duration, report: &mut GcReport) -> Result<()> {
        let dir = self.ingest_dir();
        let now = SystemTime::now();
        for entry in fs::read_dir(&dir).at("list", &dir)? {
            let entry = entry.at("list", &dir)?;
            let path = entry.path();
            let meta = match entry.metadata() {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at("look at", &path),
            };
            if is_recent(&meta, now, max_age) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    report.temp_files_removed += 1;
                    report.bytes_freed += meta.len();
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at("remove", &path),
            }
        }
        Ok(())
    }
}

/// Whether the file was modified less than `window` ago. A timestamp in the
/// future (clock changes) counts as recent: keeping is the safe side.
fn is_recent(meta: &fs::Metadata, now: SystemTime, window: Duration) -> bool {
    match meta.modified() {
        Ok(mtime) => match now.duration_since(mtime) {
            Ok(age) => age < window,
            Err(_) => true,
        },
        Err(_) => true,
    }
}
