//! `berth prune`: reclaiming space from what no named image needs.
//!
//! In order: build-cache records (stale ones, or with `all` every one), then
//! blobs (the store's gc, with the remaining records' layers as extra
//! roots), then snapshots whose layer neither a named image nor a record
//! uses, then leftovers of interrupted unpacks and builds.
//!
//! Another berth process may be building while prune runs: its new blobs
//! and snapshots are not named or recorded yet. Anything unreferenced that
//! was written in the last [`PRUNE_GRACE`] is therefore kept, and work
//! directories are only removed once [`STAGING_MAX_AGE`] old (and unlocked).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_runtime::image::{ImageConfig, Manifest};
use berth_runtime::snapshot::Snapshots;
use berth_runtime::store::{Descriptor, Digest, GcOptions, Store, StoreError};
use serde_json::Value;

use super::{ImagesError, is_index, is_manifest};
use crate::cache::BuildCache;

/// Unreferenced blobs and snapshots younger than this are kept: they may
/// belong to a build or pull still running in another process.
pub const PRUNE_GRACE: Duration = Duration::from_secs(10 * 60);

/// Unpack and staging directories (and temp blobs) untouched for this long
/// are leftovers of a crash, not work in progress.
pub const STAGING_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// How deep image indexes may nest before the walk stops looking.
const MAX_NESTING: usize = 4;

/// What to prune beyond garbage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also clear every build-cache record first, so that everything not
    /// used by a named image goes (the next build starts cold).
    pub all: bool,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub blobs_removed: usize,
    pub snapshots_removed: usize,
    pub cache_records_removed: usize,
    /// Blob, temp-file and snapshot bytes removed (snapshots counted by the
    /// size of their files, each hardlinked file once).
    pub bytes_freed: u64,
}

/// Prunes the store; see the module docs for what goes and what stays.
pub fn prune(store: &Store, options: &PruneOptions) -> Result<PruneReport, ImagesError> {
    let mut report = PruneReport::default();
    let cache = BuildCache::open(store)?;
    report.cache_records_removed = if options.all {
        cache.clear()?
    } else {
        cache.remove_stale(store)?
    };
    let records = cache.records()?;

    let roots: Vec<Digest> = records.iter().map(|r| r.layer.descriptor.digest).collect();
    let gc = store.gc_with(
        &roots,
        &GcOptions {
            grace: PRUNE_GRACE,
            stale_ingest_after: STAGING_MAX_AGE,
            ..GcOptions::default()
        },
    )?;
    report.blobs_removed = usize::try_from(gc.blobs_removed).unwrap_or(usize::MAX);
    report.bytes_freed = gc.bytes_freed;

    // Names are read after gc: an image named meanwhile keeps its snapshots.
    let mut wanted: HashSet<Digest> = records.iter().map(|r| r.layer.diff_id).collect();
    for (_, descriptor) in store.names()? {
        diff_ids(store, &descriptor, &mut wanted)?;
    }
    let snapshots = Snapshots::open(store)?;
    let now = SystemTime::now();
    for diff_id in snapshots.list()? {
        let path = snapshots.path(&diff_id);
        if wanted.contains(&diff_id) || is_recent(&path, now) {
            continue;
        }
        let size = tree_size(&path);
        if snapshots.remove(&diff_id)? {
            report.snapshots_removed += 1;
            report.bytes_freed = report.bytes_freed.saturating_add(size);
        }
    }
    // Indexes are small and not counted; they go with their layers.
    for diff_id in snapshots.indexed()? {
        if !wanted.contains(&diff_id) && !is_recent(&snapshots.index_path(&diff_id), now) {
            snapshots.remove_index(&diff_id)?;
        }
    }
    snapshots.clean_staging(STAGING_MAX_AGE)?;
    Ok(report)
}

/// Adds the diff IDs of every image `root` reaches (all platforms of an
/// index that are stored) to `out`. Images whose manifest or config is gone
/// or corrupt have none: they cannot run anyway.
fn diff_ids(
    store: &Store,
    root: &Descriptor,
    out: &mut HashSet<Digest>,
) -> Result<(), ImagesError> {
    let mut queue = vec![(root.digest, root.media_type.clone(), 0)];
    let mut seen = HashSet::new();
    while let Some((digest, media_type, depth)) = queue.pop() {
        if !seen.insert(digest) || depth > MAX_NESTING {
            continue;
        }
        if is_index(&media_type) {
            let Some(index) = tolerate(store.read_json::<Value>(&digest))? else {
                continue;
            };
            let children = index.get("manifests").and_then(Value::as_array);
            for child in children.into_iter().flatten() {
                if let Ok(child) = serde_json::from_value::<Descriptor>(child.clone()) {
                    queue.push((child.digest, child.media_type, depth + 1));
                }
            }
        } else if is_manifest(&media_type) {
            let Some(manifest) = tolerate(store.read_json::<Manifest>(&digest))? else {
                continue;
            };
            let config = store.read_json::<ImageConfig>(&manifest.config.digest);
            if let Some(config) = tolerate(config)? {
                out.extend(config.rootfs.diff_ids);
            }
        }
    }
    Ok(())
}

/// `Ok(None)` for a blob that is missing or not what it should be; other
/// errors (I/O) stop the prune rather than risk removing what is in use.
fn tolerate<T>(result: Result<T, StoreError>) -> Result<Option<T>, ImagesError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(
            StoreError::BlobNotFound { .. }
            | StoreError::CorruptBlob { .. }
            | StoreError::BadJson { .. }
            | StoreError::TooLarge { .. },
        ) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` was modified within [`PRUNE_GRACE`]; unknown counts as
/// recent, keeping being the safe side.
fn is_recent(path: &Path, now: SystemTime) -> bool {
    match fs::symlink_metadata(path).and_then(|m| m.modified()) {
        Ok(mtime) => now
            .duration_since(mtime)
            .map_or(true, |age| age < PRUNE_GRACE),
        Err(_) => true,
    }
}

/// Bytes of the regular files under `dir`, hardlinked files once. Best
/// effort (it is only reported): unreadable parts count as empty.
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut inodes = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file()
                && (meta.nlink() == 1 || inodes.insert((meta.dev(), meta.ino())))
            {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}
