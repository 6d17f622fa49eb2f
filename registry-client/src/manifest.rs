//! Manifests and indexes: fetching them by tag or digest (checking what a
//! digest promised) and putting them under a tag.

use sha2::{Digest as _, Sha256};

use crate::auth::Scope;
use crate::client::{Client, repo_url};
use crate::error::RegistryError;
use crate::transport::errors::refusal;
use crate::transport::{Call, Payload};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Manifests bigger than this are refused (registries cap them at 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl FetchedManifest {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    let sum = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in sum {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl Client {
    /// Fetches the manifest or index `reference` (a tag or a digest) names
    /// in `repository` on `host`. By digest, the content must hash to it.
    pub fn fetch_manifest(
        &self,
        host: &str,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/manifests/{reference}", repo_url(self, host, repository));
        let scope = Scope::pull(repository);
        let accept = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", ");
        let fetched = self.transport.retry.run(
            self.cancel_flag(),
            |_, _| {},
            |_| {
                let call = Call::new("GET", url.clone()).header("Accept", accept.clone());
                let mut resp = self.transport.execute(host, &scope, &call)?;
                if resp.status().as_u16() != 200 {
                    return Err(refusal(&mut resp, false));
                }
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_MANIFEST)
                    .read_to_vec()
                    .map_err(|e| match e {
                        ureq::Error::BodyExceedsLimit(_) => RegistryError::InvalidResponse {
                            host: host.to_owned(),
                            reason: format!(
                                "manifest {reference} is larger than {MAX_MANIFEST} bytes"
                            ),
                        },
                        other => crate::transport::errors::classify(host, other),
                    })?;
                let header_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
                Ok((header_type, body))
            },
        )?;
        let (header_type, bytes) = fetched;
        let digest = sha256_digest(&bytes);
        if reference.contains(':') && reference != digest {
            return Err(RegistryError::DigestMismatch {
                expected: reference.to_owned(),
                actual: digest,
            });
        }
        let media_type = media_type_of(&bytes)
            .or(header_type.filter(|t| t.contains("manifest") || t.contains("index")))
            .ok_or_else(|| RegistryError::InvalidResponse {
                host: host.to_owned(),
                reason: format!("{reference} is not an image manifest or index (no media type)"),
            })?;
        Ok(FetchedManifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// Puts a manifest or index under `reference` (a tag, or its digest).
    /// Returns its digest, checked against what the registry computed.
    pub fn put_manifest(
        &self,
        host: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let url = format!("{}/manifests/{reference}", repo_url(self, host, repository));
        let scope = Scope::push(repository);
        let digest = sha256_digest(bytes);
        let theirs = self.transport.retry.run(
            self.cancel_flag(),
            |_, _| {},
            |_| {
                let call = Call::new("PUT", url.clone())
                    .header("Content-Type", media_type)
                    .payload(Payload::Bytes(bytes));
                let mut resp = self.transport.execute(host, &scope, &call)?;
                let status = resp.status().as_u16();
                if status != 201 && status != 200 {
                    return Err(refusal(&mut resp, true));
                }
                Ok(resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned))
            },
        )?;
        if let Some(theirs) = theirs.filter(|t| t.starts_with("sha256:") && *t != digest) {
            return Err(RegistryError::DigestMismatch {
                expected: digest,
                actual: theirs,
            });
        }
        Ok(digest)
    }
}

/// The `mediaType` a manifest declares, or what its shape says it is
/// (OCI made the field optional).
fn media_type_of(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(t) = v.get("mediaType").and_then(|t| t.as_str()) {
        return Some(t.to_owned());
    }
    if v.get("manifests").is_some() {
        Some(OCI_INDEX.to_owned())
    } else if v.get("config").is_some() && v.get("layers").is_some() {
        Some(OCI_MANIFEST.to_owned())
    } else {
        None
    }
}
