//! What one export contains: the blobs to copy, the `index.json` entries and
//! Docker's `manifest.json` and `repositories`, worked out (and the blobs
//! checked against the store) before anything is written, so that a missing
//! layer fails the export before a destination exists.

use std::collections::{BTreeMap, BTreeSet};

use berth_registry::reference::Reference;
use berth_runtime::image::Image;
use berth_runtime::store::{Descriptor, Digest, Store, StoreError, media};
use serde::Serialize;

use super::{CONTAINERD_NAME_ANNOTATION, ExportError};

/// One blob of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Blob {
    pub digest: Digest,
    pub size: u64,
    /// "manifest", "config" or "layer", for error messages.
    pub what: &'static str,
}

/// Everything an export writes.
#[derive(Debug)]
pub(super) struct Plan {
    /// Every blob once, sorted by digest (the archive's entry order).
    pub blobs: Vec<Blob>,
    /// The image's `index.json` entries: one per name, in the order given.
    pub index_entries: Vec<Descriptor>,
    /// Docker's `manifest.json`.
    pub docker_manifest: Vec<u8>,
    /// Docker's legacy `repositories` file.
    pub repositories: Vec<u8>,
}

/// A name in the forms the export files need.
struct Name {
    /// `docker.io/library/app:1`
    full: String,
    /// `1`; `None` for a digest-only name.
    tag: Option<String>,
    /// `app:1`
    familiar: String,
    /// `app`
    familiar_repository: String,
}

impl Name {
    fn of(reference: &Reference) -> Name {
        let r = reference.clone().with_default_tag();
        Name {
            full: r.to_string(),
            tag: r.tag().map(|t| t.to_string()),
            familiar: r.familiar().to_string(),
            familiar_repository: r.familiar_name().to_string(),
        }
    }
}

/// One image in Docker's `manifest.json`, keys in Docker's order.
#[derive(Serialize)]
struct DockerManifestEntry<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<&'a str>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// `blobs/sha256/<hex>`, always with `/` (tar paths and manifest.json).
pub(super) fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

impl Plan {
    pub(super) fn new(
        store: &Store,
        image: &Image,
        references: &[Reference],
    ) -> Result<Plan, ExportError> {
        let manifest = &image.manifest;
        let mut wanted = vec![
            Blob {
                digest: image.manifest_descriptor.digest,
                size: image.manifest_descriptor.size,
                what: "manifest",
            },
            Blob {
                digest: manifest.config.digest,
                size: manifest.config.size,
                what: "config",
            },
        ];
        wanted.extend(manifest.layers.iter().map(|l| Blob {
            digest: l.digest,
            size: l.size,
            what: "layer",
        }));
        // A manifest may list one layer twice (identical steps); it is one file.
        let mut seen = BTreeSet::new();
        wanted.retain(|b| seen.insert(b.digest));
        wanted.sort_by_key(|b| b.digest);
        for blob in &wanted {
            check_blob(store, blob)?;
        }

        let mut names: Vec<Name> = Vec::new();
        for reference in references {
            let name = Name::of(reference);
            if !names.iter().any(|n| n.full == name.full) {
                names.push(name);
            }
        }

        let index_entries = index_entries(&image.manifest_descriptor, &names);
        let docker_manifest = docker_manifest(image, &names)?;
        let repositories = repositories(image, &names)?;
        Ok(Plan {
            blobs: wanted,
            index_entries,
            docker_manifest,
            repositories,
        })
    }

    /// A complete `index.json` holding only this image's entries.
    pub(super) fn index_json(&self) -> Result<Vec<u8>, ExportError> {
        index_json_with(serde_json::Map::new(), self.index_values()?)
    }

    /// The image's `index.json` entries as JSON values.
    pub(super) fn index_values(&self) -> Result<Vec<serde_json::Value>, ExportError> {
        self.index_entries
            .iter()
            .map(|d| serde_json::to_value(d).map_err(json_err))
            .collect()
    }
}

/// `index.json` bytes: `fields` holds the fields of an existing index to
/// keep, `manifests` the entries.
pub(super) fn index_json_with(
    mut fields: serde_json::Map<String, serde_json::Value>,
    manifests: Vec<serde_json::Value>,
) -> Result<Vec<u8>, ExportError> {
    /// Written with the conventional keys first; other fields follow.
    #[derive(Serialize)]
    struct Index<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        manifests: Vec<serde_json::Value>,
        #[serde(flatten)]
        extra: serde_json::Map<String, serde_json::Value>,
    }
    for key in ["schemaVersion", "mediaType", "manifests"] {
        fields.remove(key);
    }
    let index = Index {
        schema_version: 2,
        media_type: media::OCI_IMAGE_INDEX,
        manifests,
        extra: fields,
    };
    let mut bytes = serde_json::to_vec(&index).map_err(json_err)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn json_err(e: serde_json::Error) -> ExportError {
    // Serialising plain maps and strings cannot fail; report it as an I/O
    // error rather than panic if it ever does.
    ExportError::Io {
        action: "encode",
        path: "index.json".into(),
        source: std::io::Error::other(e),
    }
}

fn check_blob(store: &Store, blob: &Blob) -> Result<(), ExportError> {
    match store.blob_size(&blob.digest) {
        Ok(size) if size == blob.size => Ok(()),
        Ok(actual) => Err(ExportError::SizeMismatch {
            what: blob.what,
            digest: blob.digest,
            expected: blob.size,
            actual,
        }),
        Err(StoreError::BlobNotFound { .. }) => Err(ExportError::MissingBlob {
            what: blob.what,
            digest: blob.digest,
        }),
        Err(e) => Err(e.into()),
    }
}

fn index_entries(manifest: &Descriptor, names: &[Name]) -> Vec<Descriptor> {
    // A fresh descriptor: the store's copy carries the store's own name
    // annotation, which means nothing in another layout.
    let mut base = Descriptor::new(manifest.media_type.clone(), manifest.digest, manifest.size);
    base.platform = manifest.platform.clone();
    if names.is_empty() {
        return vec![base];
    }
    names
        .iter()
        .map(|name| {
            let mut d = base.clone();
            if let Some(tag) = &name.tag {
                d.annotations
                    .insert(media::REF_NAME_ANNOTATION.to_owned(), tag.clone());
            }
            d.annotations
                .insert(CONTAINERD_NAME_ANNOTATION.to_owned(), name.full.clone());
            d
        })
        .collect()
}

fn docker_manifest(image: &Image, names: &[Name]) -> Result<Vec<u8>, ExportError> {
    let entry = DockerManifestEntry {
        config: blob_path(&image.manifest.config.digest),
        // docker load can only tag with tags, not digests.
        repo_tags: names
            .iter()
            .filter(|n| n.tag.is_some())
            .map(|n| n.familiar.as_str())
            .collect(),
        layers: image
            .manifest
            .layers
            .iter()
            .map(|l| blob_path(&l.digest))
            .collect(),
    };
    let mut bytes = serde_json::to_vec(&[entry]).map_err(json_err)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The legacy `repositories` file: repository -> tag -> top layer (docker
/// reads it only for archives without `manifest.json`, but writes it, and
/// some tools still look for it).
fn repositories(image: &Image, names: &[Name]) -> Result<Vec<u8>, ExportError> {
    let top = image
        .manifest
        .layers
        .last()
        .map_or(image.manifest.config.digest, |l| l.digest)
        .hex();
    let mut repos: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for name in names {
        if let Some(tag) = &name.tag {
            repos
                .entry(name.familiar_repository.as_str())
                .or_default()
                .insert(tag.as_str(), top.as_str());
        }
    }
    let mut bytes = serde_json::to_vec(&repos).map_err(json_err)?;
    bytes.push(b'\n');
    Ok(bytes)
}
