//! The image manifest (OCI, also reading Docker schema 2) and loading a named
//! image's manifest and config from the store.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::ImageConfig;
use crate::store::{Descriptor, Digest, Result, Store, StoreError, media};

/// An image manifest: one config and the layers, bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Manifest {
    /// An OCI manifest for `config` and `layers`.
    pub fn oci(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_IMAGE_MANIFEST.to_owned()),
            config,
            layers,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

/// An image read from the store: where its manifest is, the manifest, and
/// its config.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_descriptor: Descriptor,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
}

/// Reads the image whose manifest `desc` describes. An index (a
/// multi-platform image) is resolved to the entry for `platform`
/// (`(os, architecture)`), or its only/first entry when `platform` is `None`.
pub fn load_image(
    store: &Store,
    desc: &Descriptor,
    platform: Option<(&str, &str)>,
) -> Result<Image> {
    let mut desc = desc.clone();
    // Indexes may nest (an index pointing at an index); a few levels is plenty.
    for _ in 0..4 {
        if desc.media_type == media::OCI_IMAGE_INDEX
            || desc.media_type == media::DOCKER_MANIFEST_LIST
        {
            let index: Value = store.read_json(&desc.digest)?;
            let entries: Vec<Descriptor> = index
                .get("manifests")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| StoreError::BadImage {
                    what: format!("image index {}", desc.digest),
                    reason: e.to_string(),
                })?
                .unwrap_or_default();
            let chosen = entries
                .iter()
                .find(|d| match (platform, &d.platform) {
                    (Some((os, arch)), Some(p)) => p.os == os && p.architecture == arch,
                    (None, _) => true,
                    _ => false,
                })
                .cloned();
            desc = chosen.ok_or_else(|| StoreError::BadImage {
                what: format!("image index {}", desc.digest),
                reason: match platform {
                    Some((os, arch)) => format!("no manifest for platform {os}/{arch}"),
                    None => "it lists no manifests".to_owned(),
                },
            })?;
            continue;
        }
        let manifest: Manifest = store.read_json(&desc.digest)?;
        let config: ImageConfig = store.read_json(&manifest.config.digest)?;
        return Ok(Image {
            manifest_descriptor: desc,
            config_digest: manifest.config.digest,
            manifest,
            config,
        });
    }
    Err(StoreError::BadImage {
        what: format!("image index {}", desc.digest),
        reason: "indexes nest too deeply".to_owned(),
    })
}
