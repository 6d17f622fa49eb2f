//! `berth inspect`: an image's details in the shape of `docker image
//! inspect`, plus the manifest and the descriptor its name points at.

use berth_runtime::store::{Store, StoreError, media};
use serde_json::{Value, json};

use super::list::image_size;
use super::{ImagesError, entries, select};

/// What `docker image inspect` would print for `name_or_id` (one element of
/// its array): `Id`, `RepoTags` (every name of the image, familiar form),
/// `RepoDigests` (empty: berth does not record registry digests yet),
/// `Created`, `Author`, `Architecture`, `Os`, `Variant`/`OsVersion` when set,
/// `Config` (the config blob's, Docker key names), `RootFS`, `Size` (config
/// and layer blobs, as stored), `History`, and berth's additions `Manifest`
/// (the image manifest) and `Descriptor` (what the name points at).
pub fn inspect(store: &Store, name_or_id: &str) -> Result<Value, ImagesError> {
    let mut entries = entries(store)?;
    let selection = select(&entries, name_or_id)?;
    let Some(&position) = selection.positions.first() else {
        return Err(ImagesError::NotFound {
            name: name_or_id.to_owned(),
        });
    };
    let id = entries[position].id();
    let repo_tags: Vec<String> = entries
        .iter()
        .filter(|e| e.id() == id)
        .map(|e| e.familiar())
        .collect();
    let entry = entries.swap_remove(position);
    let image = entry.image?;
    let config = &image.config;

    let mut descriptor = entry.descriptor;
    descriptor.annotations.remove(media::REF_NAME_ANNOTATION);
    let mut out = json!({
        "Id": id.to_string(),
        "RepoTags": repo_tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": config.extra.get("comment").cloned().unwrap_or_else(|| json!("")),
        // Docker shows the zero time for images without one.
        "Created": config.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": to_value(&config.config)?,
        "Architecture": config.architecture,
        "Os": config.os,
        "Size": image_size(&image),
        "RootFS": {
            "Type": config.rootfs.kind,
            "Layers": config.rootfs.diff_ids,
        },
        "History": to_value(&config.history)?,
        "Manifest": to_value(&image.manifest)?,
        "Descriptor": to_value(&descriptor)?,
    });
    if let Value::Object(fields) = &mut out {
        if let Some(variant) = &config.variant {
            fields.insert("Variant".into(), json!(variant));
        }
        if let Some(os_version) = &config.os_version {
            fields.insert("OsVersion".into(), json!(os_version));
        }
    }
    Ok(out)
}

/// The image model as a JSON value. The model types serialise to plain
/// JSON, so this does not fail for them; it is reported rather than a panic
/// if it ever does.
fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ImagesError> {
    serde_json::to_value(value).map_err(|e| {
        ImagesError::Store(StoreError::BadImage {
            what: "the image".to_owned(),
            reason: format!("cannot be shown as JSON: {e}"),
        })
    })
}
