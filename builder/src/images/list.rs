//! `berth images`: one summary per name in the store, newest first.

use berth_registry::reference::Reference;
use berth_runtime::image::Image;
use berth_runtime::store::{Digest, Store};

use super::{ImagesError, entries, parse_rfc3339};

/// One row of `berth images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The name; `None` for a name another tool wrote that is no reference.
    pub reference: Option<Reference>,
    /// The image ID: the config digest (for an image whose manifest or
    /// config is missing, the digest its name points at).
    pub id: Digest,
    /// What the name points at: the manifest, or a multi-platform index.
    pub manifest: Digest,
    /// The config's `created`, RFC 3339, as stored.
    pub created: Option<String>,
    /// Bytes of the config and layer blobs (layers compressed, as stored);
    /// 0 for an image that cannot be read.
    pub size: u64,
}

impl ImageSummary {
    /// Whether the row belongs to `filter`'s repository (and tag, if
    /// `filter` has one): `berth images app`, `berth images app:1`.
    pub fn matches(&self, filter: &Reference) -> bool {
        self.reference.as_ref().is_some_and(|r| {
            r.name() == filter.name() && filter.tag().is_none_or(|t| r.tag() == Some(t))
        })
    }
}

/// The config and layer blobs' sizes, as the manifest records them.
pub(crate) fn image_size(image: &Image) -> u64 {
    image
        .manifest
        .layers
        .iter()
        .fold(image.manifest.config.size, |sum, l| {
            sum.saturating_add(l.size)
        })
}

/// Every named image, newest first (by the config's `created`; images
/// without one last), then by name.
pub fn list(store: &Store) -> Result<Vec<ImageSummary>, ImagesError> {
    let mut rows: Vec<(Option<i64>, String, ImageSummary)> = entries(store)?
        .into_iter()
        .map(|entry| {
            let (created, size) = match &entry.image {
                Ok(image) => (image.config.created.clone(), image_size(image)),
                Err(_) => (None, 0),
            };
            let summary = ImageSummary {
                id: entry.id(),
                manifest: entry.descriptor.digest,
                created,
                size,
                reference: entry.reference,
            };
            let when = summary.created.as_deref().and_then(parse_rfc3339);
            (when, entry.name, summary)
        })
        .collect();
    // Newest first; `None` sorts before every `Some`, so reversing the time
    // comparison puts undated images last.
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(rows.into_iter().map(|(_, _, summary)| summary).collect())
}
