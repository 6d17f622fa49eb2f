//! Local image management: the library behind `berth images`, `tag`,
//! `rmi`, `inspect` and `prune`.
//!
//! Images are the names in the store's `index.json`, stored in full
//! normalised form (`docker.io/library/app:1`) and shown in familiar form
//! (`app:1`). An image's ID is its config digest, as with Docker's classic
//! image store, so two names for the same content share an ID.
//!
//! A user's NAME|ID is resolved the way Docker does it: a full ID
//! (`sha256:<64 hex>`, or the 64 hex digits alone) is an ID; anything else
//! is first looked up as a name (default tag `latest`), and failing that, a
//! string of at least [`MIN_ID_PREFIX`] hex digits (optionally after
//! `sha256:`) is an ID prefix.
//!
//! Submodules, one command each, plus the formatting shared with the CLI:
//! - `list`: [`list`] and [`ImageSummary`];
//! - `tag`: [`tag`];
//! - `remove`: [`remove`] (untag, then delete manifest and config blobs
//!   nothing else names; layers stay for [`prune`]);
//! - `inspect`: [`inspect`], Docker's `image inspect` shape;
//! - `prune`: [`prune`], garbage collection of blobs, snapshots and cache records;
//! - `display`: RFC 3339 times, "3 days ago", "12.3MB" and short IDs.

mod display;
mod inspect;
mod list;
mod prune;
mod remove;
mod tag;

use berth_registry::reference::{Reference, ReferenceError};
use berth_runtime::image::{Image, load_image};
use berth_runtime::snapshot::SnapshotError;
use berth_runtime::store::{Descriptor, Digest, Store, StoreError, media};

use crate::cache::CacheError;

pub use display::{created_at, human_since, human_size, parse_rfc3339, short_id, unix_now};
pub use inspect::inspect;
pub use list::{ImageSummary, list};
pub use prune::{PRUNE_GRACE, PruneOptions, PruneReport, STAGING_MAX_AGE, prune};
pub use remove::remove;
pub use tag::tag;

/// Fewest hex digits accepted as an image-ID prefix: shorter ones collide
/// with names too often (`berth rmi abc` should not delete by accident).
pub const MIN_ID_PREFIX: usize = 4;

/// Why an image command failed. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// No image has this name or ID.
    #[error("no such image: {name} (see 'berth images')")]
    NotFound { name: String },

    /// The name is not a valid image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// An ID prefix matches more than one image.
    #[error(
        "image ID prefix {prefix} is ambiguous: it matches {}; give more digits of the ID",
        .ids.iter().map(short_id).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousId { prefix: String, ids: Vec<Digest> },

    /// `rmi ID` of an image named in several repositories, without force.
    #[error(
        "unable to delete {} (must be forced): image is referenced in multiple repositories ({}); remove it by name, or use -f to untag all of them and delete it",
        short_id(.id),
        .names.join(", ")
    )]
    MultipleRepositories { id: Digest, names: Vec<String> },

    /// `tag` with a target that is a digest reference.
    #[error(
        "cannot tag an image as {target}: a digest names content, not a tag; give a target such as app:1"
    )]
    DigestTarget { target: String },

    /// The store failed (I/O, a missing or corrupt blob, a bad index).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The build cache records could not be read or removed.
    #[error(transparent)]
    Cache(#[from] CacheError),

    /// The snapshot store could not be listed or cleaned.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// One name of `index.json`, with the image it names loaded.
#[derive(Debug)]
pub(crate) struct Entry {
    /// As stored: `docker.io/library/app:1`.
    pub name: String,
    /// `None` for names other tools wrote that are no image reference.
    pub reference: Option<Reference>,
    /// What the name points at (a manifest, or an index).
    pub descriptor: Descriptor,
    /// The image, or why it cannot be read (a blob pruned or corrupt).
    pub image: Result<Image, StoreError>,
}

impl Entry {
    /// The image ID: the config digest, or for an image that cannot be
    /// read, the digest its name points at (so it can still be listed and
    /// removed by ID).
    pub fn id(&self) -> Digest {
        match &self.image {
            Ok(image) => image.config_digest,
            Err(_) => self.descriptor.digest,
        }
    }

    /// `app:1`, or the stored name when it is no reference.
    pub fn familiar(&self) -> String {
        match &self.reference {
            Some(r) => r.familiar(),
            None => self.name.clone(),
        }
    }

    /// `app`, or the stored name when it is no reference.
    pub fn repository(&self) -> String {
        match &self.reference {
            Some(r) => r.familiar_name(),
            None => self.name.clone(),
        }
    }
}

/// Every name in the store, with its image loaded.
pub(crate) fn entries(store: &Store) -> Result<Vec<Entry>, ImagesError> {
    Ok(store
        .names()?
        .into_iter()
        .map(|(name, descriptor)| Entry {
            reference: Reference::parse(&name).ok(),
            image: load(store, &descriptor),
            name,
            descriptor,
        })
        .collect())
}

/// The platform berth runs containers for: this machine's, in OCI terms.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

/// Loads the image `desc` names; a multi-platform index resolves to this
/// machine's platform, else to its first entry.
pub(crate) fn load(store: &Store, desc: &Descriptor) -> Result<Image, StoreError> {
    if is_index(&desc.media_type)
        && let Ok(image) = load_image(store, desc, Some(host_platform()))
    {
        return Ok(image);
    }
    load_image(store, desc, None)
}

/// Whether blobs of this type are image indexes (multi-platform images).
pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == media::OCI_IMAGE_INDEX || media_type == media::DOCKER_MANIFEST_LIST
}

/// Whether blobs of this type are image manifests.
pub(crate) fn is_manifest(media_type: &str) -> bool {
    media_type == media::OCI_IMAGE_MANIFEST || media_type == media::DOCKER_MANIFEST
}

/// What a user's NAME|ID selected among the entries.
#[derive(Debug)]
pub(crate) struct Selection {
    /// Positions in the entries: one for a name, every name of the image
    /// for an ID (none for an unnamed image found by digest).
    pub positions: Vec<usize>,
    /// Whether the input was taken as a name rather than an ID.
    pub by_name: bool,
}

/// How an input may be read.
enum Query {
    /// A name only.
    Name(Reference),
    /// An ID (full or prefix) only.
    Id(String),
    /// A name if there is one, else an ID prefix.
    NameOrId(Reference, String),
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn parse_query(input: &str) -> Result<Query, ImagesError> {
    let not_found = || ImagesError::NotFound {
        name: input.to_owned(),
    };
    if let Some(hex) = input.strip_prefix("sha256:") {
        if hex.len() >= MIN_ID_PREFIX && hex.len() <= 64 && is_lower_hex(hex) {
            return Ok(Query::Id(hex.to_owned()));
        }
        return Err(not_found());
    }
    let hex_like = input.len() >= MIN_ID_PREFIX && input.len() <= 64 && is_lower_hex(input);
    if input.len() == 64 && hex_like {
        return Ok(Query::Id(input.to_owned()));
    }
    match Reference::parse(input) {
        Ok(r) if hex_like => Ok(Query::NameOrId(r.with_default_tag(), input.to_owned())),
        Ok(r) => Ok(Query::Name(r.with_default_tag())),
        Err(e) => Err(e.into()),
    }
}

/// Resolves `input` among `entries`.
pub(crate) fn select(entries: &[Entry], input: &str) -> Result<Selection, ImagesError> {
    let not_found = || ImagesError::NotFound {
        name: input.to_owned(),
    };
    let (reference, prefix) = match parse_query(input)? {
        Query::Name(r) => (Some(r), None),
        Query::Id(p) => (None, Some(p)),
        Query::NameOrId(r, p) => (Some(r), Some(p)),
    };
    if let Some(reference) = reference
        && let Some(positions) = select_name(entries, &reference)
    {
        return Ok(Selection {
            positions,
            by_name: true,
        });
    }
    let Some(prefix) = prefix else {
        return Err(not_found());
    };
    let mut ids: Vec<Digest> = entries
        .iter()
        .map(Entry::id)
        .filter(|id| id.hex().starts_with(&prefix))
        .collect();
    ids.sort();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(not_found()),
        [id] => Ok(Selection {
            positions: (0..entries.len())
                .filter(|&i| entries[i].id() == *id)
                .collect(),
            by_name: false,
        }),
        _ => Err(ImagesError::AmbiguousId { prefix, ids }),
    }
}

/// The entry a reference names: by its full name, or for `NAME@DIGEST`,
/// a name of that repository pointing at that digest.
fn select_name(entries: &[Entry], reference: &Reference) -> Option<Vec<usize>> {
    let full = reference.to_string();
    if let Some(i) = entries.iter().position(|e| e.name == full) {
        return Some(vec![i]);
    }
    let digest = reference.digest()?;
    entries
        .iter()
        .position(|e| {
            e.descriptor.digest.to_string() == digest
                && e.reference
                    .as_ref()
                    .is_some_and(|r| r.name() == reference.name())
        })
        .map(|i| vec![i])
}

/// The image `name_or_id` names: a reference (normalised, default tag
/// `latest`) or an image-ID prefix of at least [`MIN_ID_PREFIX`] hex digits,
/// with or without `sha256:`.
pub fn find(store: &Store, name_or_id: &str) -> Result<Image, ImagesError> {
    let mut entries = entries(store)?;
    let selection = select(&entries, name_or_id)?;
    let Some(&first) = selection.positions.first() else {
        return Err(ImagesError::NotFound {
            name: name_or_id.to_owned(),
        });
    };
    Ok(entries.swap_remove(first).image?)
}
