//! `berth push`: sends a stored image to the registry its name points at.
//! Blobs go first, several at once, each skipped when the registry has it,
//! mounted when another repository there is known to have it, or streamed
//! from the store as it is (layers are stored compressed at build time, so
//! nothing is recompressed); manifests follow, children before the index
//! that lists them, and the tag last.

use berth_registry::Client;
use berth_registry::reference::Reference;
use berth_registry::upload::Pushed;
use berth_runtime::store::{Descriptor, Digest, Store, media};
use serde::Deserialize;

use super::{
    BlobState, PARALLEL_TRANSFERS, Relay, TransferError, TransferEvent, TransferProgress,
    in_parallel, sources,
};

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The tag pushed.
    pub tag: String,
    /// The digest of the manifest (or index) now under that tag.
    pub digest: Digest,
    pub size: u64,
    /// Blobs uploaded, mounted from another repository, and already there.
    pub uploaded: usize,
    pub mounted: usize,
    pub existed: usize,
}

#[derive(Deserialize)]
struct Listed {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct Children {
    #[serde(default)]
    config: Option<Listed>,
    #[serde(default)]
    layers: Vec<Listed>,
    #[serde(default)]
    manifests: Vec<Listed>,
}

/// Pushes the image stored as `reference` (a tag is required; `latest`
/// when none is given).
pub fn push(
    store: &Store,
    client: &Client,
    reference: &Reference,
    progress: &dyn TransferProgress,
) -> Result<PushedImage, TransferError> {
    if reference.tag().is_none() && reference.digest().is_some() {
        return Err(TransferError::Unsupported(
            "push needs a tag, not only a digest (name the image with `berth tag` first)".into(),
        ));
    }
    let reference = reference.clone().with_default_tag();
    let name = reference.to_string();
    let top = store
        .resolve(&name)?
        .ok_or_else(|| TransferError::NotFound {
            name: reference.familiar(),
        })?;
    let host = reference.registry();
    let repository = reference.repository();
    let tag = reference
        .tag()
        .unwrap_or(berth_registry::reference::DEFAULT_TAG);

    // Manifests in the order they must reach the registry, and the blobs
    // they list.
    let mut manifests: Vec<Descriptor> = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    collect(store, &top, &mut manifests, &mut blobs, 0)?;
    blobs.sort_by_key(|b| b.digest.hex());
    blobs.dedup_by(|a, b| a.digest == b.digest);

    let counts = std::sync::Mutex::new((0usize, 0usize, 0usize));
    let relay = Relay(progress);
    in_parallel(&blobs, PARALLEL_TRANSFERS, |blob| {
        let digest = blob.digest.to_string();
        let path = store.blob_path(&blob.digest);
        let size = store.blob_size(&blob.digest)?;
        progress.event(TransferEvent::Blob {
            digest: digest.clone(),
            size,
            state: BlobState::Started,
        });
        let from = sources::mount_source(store, &blob.digest, host, repository);
        let how = client.push_blob(
            host,
            repository,
            &digest,
            size,
            &path,
            from.as_deref(),
            &relay,
        )?;
        sources::record(store, &blob.digest, host, repository);
        let state = match how {
            Pushed::Existed => BlobState::Exists,
            Pushed::Mounted => BlobState::Mounted,
            Pushed::Uploaded => BlobState::Done,
        };
        if let Ok(mut c) = counts.lock() {
            match how {
                Pushed::Uploaded => c.0 += 1,
                Pushed::Mounted => c.1 += 1,
                Pushed::Existed => c.2 += 1,
            }
        }
        progress.event(TransferEvent::Blob {
            digest,
            size,
            state,
        });
        Ok(())
    })?;

    for m in &manifests {
        let bytes = store.read_small(&m.digest)?;
        let is_top = m.digest == top.digest;
        let target = if is_top {
            tag.to_owned()
        } else {
            m.digest.to_string()
        };
        let media_type = media_type_of(m, &bytes);
        let digest = client.put_manifest(host, repository, &target, &media_type, &bytes)?;
        if digest != m.digest.to_string() {
            return Err(TransferError::BadImage {
                what: format!("manifest {}", m.digest),
                reason: format!("the registry stored it as {digest}"),
            });
        }
    }
    let (uploaded, mounted, existed) = counts.into_inner().unwrap_or_default();
    Ok(PushedImage {
        tag: name,
        digest: top.digest,
        size: top.size,
        uploaded,
        mounted,
        existed,
    })
}

/// Walks an index or manifest: manifests in push order (children first),
/// and every config and layer. Children of an index that are not in the
/// store (platforms never pulled) cannot be pushed and are an error.
fn collect(
    store: &Store,
    desc: &Descriptor,
    manifests: &mut Vec<Descriptor>,
    blobs: &mut Vec<Descriptor>,
    depth: usize,
) -> Result<(), TransferError> {
    if depth > 4 {
        return Err(TransferError::BadImage {
            what: format!("image index {}", desc.digest),
            reason: "indexes nest too deeply".into(),
        });
    }
    let bytes = store.read_small(&desc.digest)?;
    let children: Children =
        serde_json::from_slice(&bytes).map_err(|e| TransferError::BadImage {
            what: format!("manifest {}", desc.digest),
            reason: e.to_string(),
        })?;
    for child in &children.manifests {
        let d = parse(&child.digest, desc)?;
        if !store.has_blob(&d)? {
            return Err(TransferError::BadImage {
                what: format!("image index {}", desc.digest),
                reason: format!(
                    "its manifest {d} is not in the local store (pull all its platforms first)"
                ),
            });
        }
        collect(
            store,
            &Descriptor::new(child.media_type.clone(), d, child.size),
            manifests,
            blobs,
            depth + 1,
        )?;
    }
    for blob in children.config.iter().chain(&children.layers) {
        let d = parse(&blob.digest, desc)?;
        if !store.has_blob(&d)? {
            return Err(TransferError::BadImage {
                what: format!("manifest {}", desc.digest),
                reason: format!(
                    "its blob {d} is not in the local store (rebuild or pull the image)"
                ),
            });
        }
        blobs.push(Descriptor::new(blob.media_type.clone(), d, blob.size));
    }
    manifests.push(desc.clone());
    Ok(())
}

fn parse(text: &str, parent: &Descriptor) -> Result<Digest, TransferError> {
    Digest::parse(text).map_err(|e| TransferError::BadImage {
        what: format!("manifest {}", parent.digest),
        reason: format!("digest {text:?}: {e}"),
    })
}

/// The media type to send a manifest with: its descriptor's, else the one
/// it declares, else OCI's.
fn media_type_of(desc: &Descriptor, bytes: &[u8]) -> String {
    if !desc.media_type.is_empty() {
        return desc.media_type.clone();
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| media::OCI_IMAGE_MANIFEST.to_owned())
}
