//! Image names: the `index.json` of the OCI layout.
//!
//! Owns the descriptor types and every read and update of `index.json`. Each
//! name is one entry of the index, an OCI descriptor of the image's manifest
//! (or image index) carrying the name in its
//! `org.opencontainers.image.ref.name` annotation, exactly as given: reference
//! normalisation belongs to the registry client.
//!
//! Updates hold the store lock for the whole read-modify-write and replace the
//! file atomically (temp file, fsync, rename, fsync directory), so readers,
//! which take no lock, always see a complete index. Entries and fields berth
//! does not understand (written by other OCI tools) are kept as they were.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Store;
use super::digest::Digest;
use super::error::{IoContext, Result, StoreError};
use super::fs::{read_capped, write_atomic};
use super::layout::INDEX_FILE;
use super::media::{OCI_IMAGE_INDEX, REF_NAME_ANNOTATION};

/// Largest `index.json` berth reads: about 100,000 names, far beyond any
/// real store, while a corrupted or hostile file cannot exhaust memory.
const MAX_INDEX_BYTES: u64 = 64 << 20;

/// An OCI content descriptor: what a blob is, its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields berth does not interpret (`urls`, `artifactType`, `data`, …),
    /// kept so that rewriting a descriptor never loses them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// The image name this descriptor carries in `index.json`, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

/// The platform an image manifest is for (OCI `platform` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// `index.json` as read from disk. Entries stay raw JSON so that ones berth
/// cannot parse (another tool's, another digest algorithm's) survive rewrites.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexFile {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    pub(crate) manifests: Vec<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl IndexFile {
    pub(crate) fn empty() -> IndexFile {
        IndexFile {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_INDEX.to_owned()),
            manifests: Vec::new(),
            extra: Map::new(),
        }
    }

    pub(crate) fn read(path: &Path) -> Result<IndexFile> {
        let bad = |reason: String| StoreError::BadIndex {
            path: path.to_path_buf(),
            reason,
        };
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(bad("the file is missing".into()));
            }
            Err(e) => return Err(e).at("open", path),
        };
        let bytes = read_capped(&mut f, MAX_INDEX_BYTES)
            .at("read", path)?
            .ok_or_else(|| bad(format!("larger than {MAX_INDEX_BYTES} bytes")))?;
        let index: IndexFile =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        if index.schema_version != 2 {
            return Err(bad(format!(
                "schemaVersion is {}, not 2",
                index.schema_version
            )));
        }
        if let Some(mt) = index
            .media_type
            .as_deref()
            .filter(|mt| *mt != OCI_IMAGE_INDEX)
        {
            return Err(bad(format!("mediaType is {mt:?}")));
        }
        Ok(index)
    }

    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec(self).map_err(|e| StoreError::BadIndex {
            path: PathBuf::from(INDEX_FILE),
            reason: format!("cannot serialise: {e}"),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Position of every entry named `name`.
    fn positions(&self, name: &str) -> Vec<usize> {
        (0..self.manifests.len())
            .filter(|&i| entry_name(&self.manifests[i]) == Some(name))
            .collect()
    }
}

/// The `org.opencontainers.image.ref.name` of a raw index entry.
fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("annotations")?.get(REF_NAME_ANNOTATION)?.as_str()
}

fn check_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(StoreError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > 4096 {
        return invalid("it is longer than 4096 bytes");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("it contains whitespace or control characters");
    }
    Ok(())
}

impl Store {
    fn index_path(&self) -> PathBuf {
        self.root().join(INDEX_FILE)
    }

    /// Reads `index.json` as it is now. Takes no lock: updates are atomic renames.
    pub(crate) fn read_index(&self) -> Result<IndexFile> {
        IndexFile::read(&self.index_path())
    }

    /// Runs `change` on `index.json` under the store lock and writes the
    /// result back atomically if `change` says it changed anything.
    fn update_index<R>(
        &self,
        change: impl FnOnce(&mut IndexFile) -> Result<(R, bool)>,
    ) -> Result<R> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let (out, changed) = change(&mut index)?;
        if changed {
            write_atomic(self.root(), INDEX_FILE, &index.to_bytes()?)?;
        }
        Ok(out)
    }

    /// Every named image, in `index.json` order. Entries berth cannot parse
    /// (for instance another digest algorithm's) are left out.
    pub fn names(&self) -> Result<Vec<(String, Descriptor)>> {
        let index = self.read_index()?;
        Ok(index
            .manifests
            .into_iter()
            .filter_map(|entry| {
                let name = entry_name(&entry)?.to_owned();
                let desc = serde_json::from_value::<Descriptor>(entry).ok()?;
                Some((name, desc))
            })
            .collect())
    }

    /// The descriptor named `name`, if there is one.
    pub fn resolve(&self, name: &str) -> Result<Option<Descriptor>> {
        let index = self.read_index()?;
        let Some(entry) = index.manifests.iter().find(|e| entry_name(e) == Some(name)) else {
            return Ok(None);
        };
        serde_json::from_value(entry.clone())
            .map(Some)
            .map_err(|e| StoreError::BadEntry {
                name: name.to_owned(),
                path: self.index_path(),
                reason: e.to_string(),
            })
    }

    /// Points `name` at `desc` (replacing what it named before, which is
    /// returned) and records it in `index.json`.
    ///
    /// The blob `desc` points at must already be in the store with the
    /// announced size: a name never points at nothing, and because this check
    /// runs under the lock that gc holds, gc cannot remove the blob between
    /// the check and the update.
    pub fn set_name(&self, name: &str, desc: Descriptor) -> Result<Option<Descriptor>> {
        check_name(name)?;
        let mut desc = desc;
        desc.annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), name.to_owned());
        let entry = serde_json::to_value(&desc).map_err(|e| StoreError::DanglingName {
            name: name.to_owned(),
            reason: format!("the descriptor cannot be serialised: {e}"),
        })?;
        self.update_index(|index| {
            match self.blob_size(&desc.digest) {
                Ok(size) if size == desc.size => {}
                Ok(size) => {
                    return Err(StoreError::DanglingName {
                        name: name.to_owned(),
                        reason: format!(
                            "the descriptor says {} is {} bytes but the stored blob is {size}",
                            desc.digest, desc.size
                        ),
                    });
                }
                Err(StoreError::BlobNotFound { .. }) => {
                    return Err(StoreError::DanglingName {
                        name: name.to_owned(),
                        reason: format!("blob {} is not in the store", desc.digest),
                    });
                }
                Err(e) => return Err(e),
            }
            let positions = index.positions(name);
            let previous = positions
                .first()
                .and_then(|&i| serde_json::from_value(index.manifests[i].clone()).ok());
            match positions.split_first() {
                // Keep the name where it was so `names()` order is stable;
                // drop duplicates another tool may have written.
                Some((&first, rest)) => {
                    index.manifests[first] = entry;
                    for &i in rest.iter().rev() {
                        index.manifests.remove(i);
                    }
                }
                None => index.manifests.push(entry),
            }
            Ok((previous, true))
        })
    }

    /// Removes `name` from `index.json`, returning what it named. The blobs
    /// stay until [`gc`](Store::gc) finds nothing else uses them.
    pub fn remove_name(&self, name: &str) -> Result<Option<Descriptor>> {
        self.update_index(|index| {
            let positions = index.positions(name);
            let previous = positions
                .first()
                .and_then(|&i| serde_json::from_value(index.manifests[i].clone()).ok());
            for &i in positions.iter().rev() {
                index.manifests.remove(i);
            }
            Ok((previous, !positions.is_empty()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_keeps_unknown_fields() {
        let json = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size":0,"platform":{"architecture":"arm64","os":"linux","variant":"v8","os.version":"x"},
            "urls":["https://example.invalid/x"],"artifactType":"a/b"}"#;
        let d: Descriptor = serde_json::from_str(json).unwrap();
        assert_eq!(d.platform.as_ref().unwrap().variant.as_deref(), Some("v8"));
        assert_eq!(
            d.platform.as_ref().unwrap().os_version.as_deref(),
            Some("x")
        );
        let back = serde_json::to_value(&d).unwrap();
        assert_eq!(back["artifactType"], "a/b");
        assert_eq!(back["urls"][0], "https://example.invalid/x");
        assert_eq!(back["platform"]["os.version"], "x");
        assert!(back.get("annotations").is_none());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("app:latest").is_ok());
        assert!(check_name("localhost:5000/app:1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a\nb").is_err());
    }

    #[test]
    fn empty_index_is_an_oci_index() {
        let v: Value = serde_json::from_slice(&IndexFile::empty().to_bytes().unwrap()).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], OCI_IMAGE_INDEX);
        assert_eq!(v["manifests"], Value::Array(vec![]));
    }
}
