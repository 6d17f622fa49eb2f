//! OCI media types and annotation keys the store needs to know.
//!
//! Only what the store acts on: which blobs are indexes or manifests (their
//! children must be kept alive by gc) and the annotation that names an image.

/// The annotation that carries an image's name in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

pub const OCI_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Whether blobs of this type list other blobs (image indexes and manifests).
pub fn is_manifest_or_index(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_IMAGE_INDEX | OCI_IMAGE_MANIFEST | DOCKER_MANIFEST_LIST | DOCKER_MANIFEST
    )
}

/// Whether blobs of this type are known leaves: layers and configs, which
/// never reference other blobs, so gc need not read them.
pub fn is_leaf(media_type: &str) -> bool {
    media_type.contains(".layer.")
        || media_type.contains(".config.")
        || media_type.contains(".image.rootfs.")
        || media_type.ends_with(".container.image.v1+json")
}
