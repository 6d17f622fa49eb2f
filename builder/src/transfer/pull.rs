//! `berth pull`: resolves a reference to one platform's image manifest,
//! downloads what the store lacks (config and layers, several at once,
//! each streamed into the store, resumed after interruptions and checked
//! against its digest), then names the image.

use berth_registry::Client;
use berth_registry::download::BlobSink;
use berth_registry::manifest::FetchedManifest;
use berth_registry::reference::Reference;
use berth_runtime::store::{BlobWriter, Descriptor, Digest, Store, media};
use serde::Deserialize;

use super::{
    BlobState, PARALLEL_TRANSFERS, Relay, TransferError, TransferEvent, TransferProgress,
    in_parallel, sources,
};
use crate::build::Platform;

/// What to pull besides the reference.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to choose from a multi-platform image; the host's when
    /// `None`.
    pub platform: Option<Platform>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name the image is stored under (`host/repo:tag`).
    pub name: String,
    /// The digest the reference resolved to (an index's, for a
    /// multi-platform image): what `name@digest` pins.
    pub digest: String,
    /// The stored image manifest.
    pub manifest: Descriptor,
    /// Blobs downloaded, and blobs the store had already.
    pub downloaded: usize,
    pub present: usize,
}

#[derive(Deserialize)]
struct WireDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<WirePlatform>,
}

#[derive(Deserialize)]
struct WirePlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct WireIndex {
    #[serde(default)]
    manifests: Vec<WireDescriptor>,
}

#[derive(Deserialize)]
struct WireManifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    config: Option<WireDescriptor>,
    #[serde(default)]
    layers: Vec<WireDescriptor>,
}

/// Pulls `reference` into `store`.
pub fn pull(
    store: &Store,
    client: &Client,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn TransferProgress,
) -> Result<Pulled, TransferError> {
    let reference = if reference.digest().is_some() {
        reference.clone()
    } else {
        reference.clone().with_default_tag()
    };
    let host = reference.registry();
    let repository = reference.repository();
    let target = reference
        .digest()
        .or(reference.tag())
        .unwrap_or(berth_registry::reference::DEFAULT_TAG);
    let top = client.fetch_manifest(host, repository, target)?;
    progress.event(TransferEvent::Resolved {
        digest: top.digest.clone(),
    });
    let chosen = if top.is_index() {
        let wanted = options.platform.clone().unwrap_or_else(Platform::host);
        let entry = choose_platform(&top, &wanted)?;
        client.fetch_manifest(host, repository, &entry)?
    } else {
        top.clone()
    };
    let parsed: WireManifest =
        serde_json::from_slice(&chosen.bytes).map_err(|e| TransferError::BadImage {
            what: format!("manifest {}", chosen.digest),
            reason: e.to_string(),
        })?;
    if parsed.schema_version == 1 || chosen.media_type.contains("distribution.manifest.v1") {
        return Err(TransferError::Unsupported(format!(
            "{} uses the Docker schema 1 manifest format, which berth does not read (push it again with a current Docker)",
            reference.familiar()
        )));
    }
    let config = parsed.config.ok_or_else(|| TransferError::BadImage {
        what: format!("manifest {}", chosen.digest),
        reason: "it has no config".into(),
    })?;
    let mut blobs = vec![config];
    blobs.extend(parsed.layers);
    let mut wanted = Vec::new();
    let mut present = 0;
    for blob in &blobs {
        let digest = parse_digest(&blob.digest, &chosen.digest)?;
        if store.has_blob(&digest)? {
            present += 1;
            progress.event(TransferEvent::Blob {
                digest: blob.digest.clone(),
                size: blob.size,
                state: BlobState::Exists,
            });
        } else {
            wanted.push((digest, blob));
        }
    }
    let relay = Relay(progress);
    in_parallel(&wanted, PARALLEL_TRANSFERS, |(digest, blob)| {
        progress.event(TransferEvent::Blob {
            digest: blob.digest.clone(),
            size: blob.size,
            state: BlobState::Started,
        });
        let mut writer = store.resumable_writer(digest)?.with_size(blob.size);
        if !store.has_blob(digest)? {
            let mut sink = StoreSink(&mut writer);
            client.fetch_blob(
                host,
                repository,
                &blob.digest,
                Some(blob.size),
                &mut sink,
                &relay,
            )?;
            writer.commit()?;
        }
        sources::record(store, digest, host, repository);
        progress.event(TransferEvent::Blob {
            digest: blob.digest.clone(),
            size: blob.size,
            state: BlobState::Done,
        });
        Ok(())
    })?;
    // The manifest last: a name never points at an image with missing blobs.
    let manifest_digest = store.put_bytes(&chosen.bytes)?;
    let media_type = if chosen.media_type.is_empty() {
        media::OCI_IMAGE_MANIFEST.to_owned()
    } else {
        chosen.media_type.clone()
    };
    let descriptor = Descriptor::new(media_type, manifest_digest, chosen.bytes.len() as u64);
    let name = reference.to_string();
    store.set_name(&name, descriptor.clone())?;
    Ok(Pulled {
        name,
        digest: top.digest,
        manifest: descriptor,
        downloaded: wanted.len(),
        present,
    })
}

/// The digest of the index entry for `wanted`: same OS and architecture,
/// and the variant when one is asked for (an entry without one matches).
fn choose_platform(index: &FetchedManifest, wanted: &Platform) -> Result<String, TransferError> {
    let parsed: WireIndex =
        serde_json::from_slice(&index.bytes).map_err(|e| TransferError::BadImage {
            what: format!("image index {}", index.digest),
            reason: e.to_string(),
        })?;
    let images: Vec<&WireDescriptor> = parsed
        .manifests
        .iter()
        .filter(|m| m.media_type.is_empty() || !m.media_type.contains("index"))
        .collect();
    let fits = |m: &&&WireDescriptor, exact_variant: bool| {
        let Some(p) = &m.platform else { return false };
        p.os == wanted.os
            && p.architecture == wanted.architecture
            && match (&wanted.variant, &p.variant) {
                (Some(w), Some(v)) => w == v,
                (Some(_), None) => !exact_variant,
                (None, _) => true,
            }
    };
    let found = images
        .iter()
        .find(|m| fits(m, true))
        .or_else(|| images.iter().find(|m| fits(m, false)));
    match found {
        Some(m) => Ok(m.digest.clone()),
        None => {
            let available: Vec<String> = images
                .iter()
                .filter_map(|m| m.platform.as_ref())
                .filter(|p| p.os != "unknown")
                .map(|p| match &p.variant {
                    Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                    None => format!("{}/{}", p.os, p.architecture),
                })
                .collect();
            Err(TransferError::NoPlatform {
                wanted: wanted.to_string(),
                available: if available.is_empty() {
                    "no platforms".into()
                } else {
                    available.join(", ")
                },
            })
        }
    }
}

fn parse_digest(text: &str, manifest: &str) -> Result<Digest, TransferError> {
    Digest::parse(text).map_err(|e| TransferError::BadImage {
        what: format!("manifest {manifest}"),
        reason: format!("blob digest {text:?}: {e}"),
    })
}

/// The store's resumable blob writer as a download's destination.
struct StoreSink<'a>(&'a mut BlobWriter);

impl BlobSink for StoreSink<'_> {
    fn offset(&self) -> u64 {
        self.0.bytes_written()
    }
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(self.0, data)
    }
    fn restart(&mut self) -> std::io::Result<()> {
        self.0.restart()
    }
}
