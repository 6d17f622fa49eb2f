//! `berth rmi`: removing names, and the image's manifest and config once no
//! name is left for them.
//!
//! Layers are left for `berth prune`: the build cache shares them with other
//! images and rebuilds, and prune knows which ones are still wanted.

use std::collections::{BTreeSet, HashSet};

use berth_runtime::store::{Descriptor, Digest, Store, StoreError};
use serde_json::Value;

use super::{Entry, ImagesError, entries, is_index, is_manifest, select};

/// How deep image indexes may nest before the walk stops looking.
const MAX_NESTING: usize = 4;

/// Removes `name_or_id`, returning the lines Docker prints for it:
/// `Untagged: app:1` per name removed, then `Deleted: sha256:<id>` if the
/// image's manifest and config went too (they stay while another name
/// points at them).
///
/// A name removes just that name. An ID removes every name of the image;
/// when those names are in more than one repository that needs `force`
/// ([`ImagesError::MultipleRepositories`]), as with `docker rmi`.
pub fn remove(store: &Store, name_or_id: &str, force: bool) -> Result<Vec<String>, ImagesError> {
    let entries = entries(store)?;
    let selection = select(&entries, name_or_id)?;
    let targets: Vec<&Entry> = selection.positions.iter().map(|&i| &entries[i]).collect();
    let Some(first) = targets.first() else {
        return Err(ImagesError::NotFound {
            name: name_or_id.to_owned(),
        });
    };
    if !selection.by_name && !force {
        let repositories: BTreeSet<String> = targets.iter().map(|e| e.repository()).collect();
        if repositories.len() > 1 {
            return Err(ImagesError::MultipleRepositories {
                id: first.id(),
                names: targets.iter().map(|e| e.familiar()).collect(),
            });
        }
    }

    let mut lines = Vec::new();
    for target in &targets {
        // Another process may have removed it meanwhile: then say nothing.
        if store.remove_name(&target.name)?.is_some() {
            lines.push(format!("Untagged: {}", target.familiar()));
        }
    }

    // Read the names again, after the untagging, so that a name another
    // process added meanwhile still protects its blobs.
    let mut keep = HashSet::new();
    for (_, descriptor) in store.names()? {
        metadata_blobs(store, &descriptor, &mut keep)?;
    }
    let mut candidates = HashSet::new();
    for target in &targets {
        metadata_blobs(store, &target.descriptor, &mut candidates)?;
    }
    let mut deleted = HashSet::new();
    for digest in candidates.difference(&keep) {
        if store.remove_blob(digest)? {
            deleted.insert(*digest);
        }
    }
    let ids: BTreeSet<Digest> = targets.iter().map(|t| t.id()).collect();
    lines.extend(
        ids.iter()
            .filter(|id| deleted.contains(id))
            .map(|id| format!("Deleted: {id}")),
    );
    Ok(lines)
}

/// Adds to `out` the blobs that make up the image `root` names apart from
/// its layers: the index or manifest, child manifests, configs.
fn metadata_blobs(
    store: &Store,
    root: &Descriptor,
    out: &mut HashSet<Digest>,
) -> Result<(), ImagesError> {
    let mut queue = vec![(root.digest, root.media_type.clone(), 0)];
    while let Some((digest, media_type, depth)) = queue.pop() {
        if !out.insert(digest) || depth > MAX_NESTING {
            continue;
        }
        let index = is_index(&media_type);
        if !index && !is_manifest(&media_type) {
            continue;
        }
        let node: Value = match store.read_json(&digest) {
            Ok(node) => node,
            // Gone or unreadable: it has no children we can know of.
            Err(
                StoreError::BlobNotFound { .. }
                | StoreError::CorruptBlob { .. }
                | StoreError::BadJson { .. }
                | StoreError::TooLarge { .. },
            ) => continue,
            Err(e) => return Err(e.into()),
        };
        let children = if index {
            node.get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        } else {
            node.get("config").cloned().into_iter().collect()
        };
        for child in children {
            let Ok(child) = serde_json::from_value::<Descriptor>(child) else {
                continue;
            };
            queue.push((child.digest, child.media_type, depth + 1));
        }
    }
    Ok(())
}
