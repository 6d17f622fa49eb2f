//! OCI layout directory exports.
//!
//! A new directory is assembled under a temp name beside the destination and
//! renamed into place at the end. An existing OCI layout is added to: blobs
//! it lacks are added first, then `index.json` is replaced atomically, so
//! its entries never point at missing blobs. Entries for the same tag are
//! replaced (a tag names one image, as with `skopeo copy oci:DIR:TAG`);
//! entries and fields other tools wrote are kept as they were.
//!
//! Blobs are hardlinked from the store when it is on the same filesystem
//! (instant, no extra space; blobs are never modified in place, by berth or
//! by OCI tools), and copied otherwise, re-hashed on the way.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use berth_runtime::store::{IMAGE_LAYOUT_VERSION, Store, media};
use serde_json::{Map, Value};

use super::archive::Verifying;
use super::plan::{Blob, Plan, index_json_with};
use super::temp::{self, Temp};
use super::{ExportError, io_err};

/// Largest `index.json` of an existing layout berth reads.
const MAX_INDEX_BYTES: u64 = 64 << 20;
/// Largest `oci-layout` file berth reads.
const MAX_LAYOUT_BYTES: u64 = 64 << 10;

pub(super) fn write(store: &Store, plan: &Plan, dir: &Path) -> Result<(), ExportError> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return write_new(store, plan, dir),
        Err(e) => return Err(io_err("look at", dir)(e)),
    };
    if !meta.is_dir() {
        return Err(ExportError::NotALayout {
            path: dir.to_path_buf(),
        });
    }
    if dir.join("oci-layout").exists() {
        check_layout_file(&dir.join("oci-layout"))?;
        return populate(store, plan, dir);
    }
    let mut entries = fs::read_dir(dir).map_err(io_err("list", dir))?;
    if entries.next().is_some() {
        return Err(ExportError::NotALayout {
            path: dir.to_path_buf(),
        });
    }
    // An empty directory the user made: fill it, and empty it again if that fails.
    let result = populate(store, plan, dir);
    if result.is_err() {
        for name in ["blobs", "index.json", "oci-layout"] {
            let path = dir.join(name);
            // Best effort: the original error is what the user needs to see.
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
    result
}

/// Assembles the layout under a temp name beside `dir`, then renames it.
fn write_new(store: &Store, plan: &Plan, dir: &Path) -> Result<(), ExportError> {
    let parent = temp::parent_of(dir)?;
    let staging = Temp::dir(&parent, dir)?;
    populate(store, plan, staging.path())?;
    staging.persist(dir)?;
    temp::sync_dir(&parent)
}

/// Adds the plan's blobs and index entries to the layout at `root` (which
/// may be empty).
fn populate(store: &Store, plan: &Plan, root: &Path) -> Result<(), ExportError> {
    let blobs = root.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
    for blob in &plan.blobs {
        put_blob(store, blob, &blobs)?;
    }
    temp::sync_dir(&blobs)?;

    let layout = root.join("oci-layout");
    if !layout.exists() {
        let body = format!("{{\"imageLayoutVersion\":\"{IMAGE_LAYOUT_VERSION}\"}}");
        write_atomic(root, &layout, body.as_bytes())?;
    }
    let index = merged_index(&root.join("index.json"), plan)?;
    // Last: only now may the new entries point at the blobs.
    write_atomic(root, &root.join("index.json"), &index)
}

/// Puts one blob into `blobs` (the layout's `blobs/sha256`).
fn put_blob(store: &Store, blob: &Blob, blobs: &Path) -> Result<(), ExportError> {
    let dest = blobs.join(blob.digest.hex());
    match fs::symlink_metadata(&dest) {
        // Content-addressed: a file of the right size under this name is this blob.
        Ok(m) if m.is_file() && m.len() == blob.size => return Ok(()),
        Ok(_) => fs::remove_file(&dest).map_err(io_err("replace", &dest))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("look at", &dest)(e)),
    }
    let source = store.blob_path(&blob.digest);
    match fs::hard_link(&source, &dest) {
        Ok(()) => return Ok(()),
        // Another export put it there meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        // Another filesystem (EXDEV), or hardlinks not allowed here: copy.
        Err(_) => {}
    }
    let file = store.open_blob(&blob.digest)?;
    let (temp, out) = Temp::file(blobs, &dest)?;
    let mut reader = Verifying::new(file.take(blob.size));
    let mut writer = BufWriter::with_capacity(256 * 1024, out);
    if let Err(e) = io::copy(&mut reader, &mut writer) {
        return Err(match reader.read_failed {
            true => io_err("read", &source)(e),
            false => io_err("write", temp.path())(e),
        });
    }
    reader.check(blob, &source)?;
    let out = writer
        .into_inner()
        .map_err(|e| io_err("write", temp.path())(e.into_error()))?;
    out.sync_all().map_err(io_err("fsync", temp.path()))?;
    drop(out);
    temp.persist(&dest)
}

/// Replaces `dest` (in `dir`) with `bytes`: temp file, fsync, rename.
fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let (temp, mut file) = Temp::file(dir, dest)?;
    file.write_all(bytes)
        .map_err(io_err("write", temp.path()))?;
    file.sync_all().map_err(io_err("fsync", temp.path()))?;
    drop(file);
    temp.persist(dest)?;
    temp::sync_dir(dir)
}

fn read_capped(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ExportError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() as u64 > limit {
        return Err(ExportError::BadLayout {
            path: path.to_path_buf(),
            reason: format!("the file is larger than {limit} bytes"),
        });
    }
    Ok(Some(bytes))
}

fn check_layout_file(path: &Path) -> Result<(), ExportError> {
    let bad = |reason: String| ExportError::BadLayout {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = read_capped(path, MAX_LAYOUT_BYTES)?.unwrap_or_default();
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    match value.get("imageLayoutVersion").and_then(Value::as_str) {
        Some(IMAGE_LAYOUT_VERSION) => Ok(()),
        Some(other) => Err(bad(format!("imageLayoutVersion is {other:?}"))),
        None => Err(bad("it has no imageLayoutVersion".to_owned())),
    }
}

/// The layout's `index.json` with the plan's entries added: existing entries
/// for the same tags, or identical to a new one, make way for the new ones.
fn merged_index(path: &Path, plan: &Plan) -> Result<Vec<u8>, ExportError> {
    let bad = |reason: String| ExportError::BadLayout {
        path: path.to_path_buf(),
        reason,
    };
    let (mut fields, existing) = match read_capped(path, MAX_INDEX_BYTES)? {
        None => (Map::new(), Vec::new()),
        Some(bytes) => {
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
            let Value::Object(mut fields) = value else {
                return Err(bad("it is not a JSON object".to_owned()));
            };
            let existing = match fields.remove("manifests") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(entries)) => entries,
                Some(_) => return Err(bad("\"manifests\" is not an array".to_owned())),
            };
            (fields, existing)
        }
    };
    let new = plan.index_values()?;
    let new_tags: BTreeSet<&str> = new.iter().filter_map(ref_name).collect();
    let mut manifests: Vec<Value> = existing
        .into_iter()
        .filter(|old| {
            let retagged = ref_name(old).is_some_and(|t| new_tags.contains(t));
            !retagged && !new.contains(old)
        })
        .collect();
    manifests.extend(new);
    fields.remove("schemaVersion");
    index_json_with(fields, manifests)
}

fn ref_name(entry: &Value) -> Option<&str> {
    entry
        .get("annotations")?
        .get(media::REF_NAME_ANNOTATION)?
        .as_str()
}
