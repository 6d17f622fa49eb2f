//! The on-disk shape of the store: an OCI image layout.
//!
//! Owns where the store lives ([`default_root`]), the names of the files and
//! directories inside it, and creating or checking them when a
//! [`Store`](super::Store) is opened:
//!
//! ```text
//! <root>/oci-layout        {"imageLayoutVersion":"1.0.0"}
//! <root>/index.json        image names -> manifest descriptors (an OCI image index)
//! <root>/blobs/sha256/     content, one file per digest
//! <root>/ingest/           blobs being written (same filesystem, so rename is atomic)
//! <root>/store.lock        advisory lock for index.json updates and gc
//! ```
//!
//! `skopeo`, `umoci` and `crane` ignore the extra `ingest/` and `store.lock`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{IoContext, Result, StoreError};
use super::fs::{ensure_dir, read_capped, write_atomic};
use super::index;
use super::lock::StoreLock;

pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const BLOBS_DIR: &str = "blobs";
pub const INGEST_DIR: &str = "ingest";
pub const LOCK_FILE: &str = "store.lock";
/// The only OCI image layout version there is.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";

/// Entries that may sit in a directory with no `oci-layout` without making it
/// "someone else's non-empty directory": our own lock and half-written layout
/// file (a crashed first open), and the `lost+found` of a dedicated
/// filesystem mounted at the root.
const ALLOWED_IN_NEW_ROOT: &[&str] = &[LOCK_FILE, "oci-layout.tmp", "lost+found"];

/// What another process's first open, running right now, may also have
/// created: tolerated by the check made before taking the lock.
const BEING_CREATED: &[&str] = &[OCI_LAYOUT_FILE, BLOBS_DIR, INGEST_DIR, INDEX_FILE];

/// The store directory berth uses when none is given: `$BERTH_ROOT`, else
/// `/var/lib/berth` for root, else `$XDG_DATA_HOME/berth`, else
/// `~/.local/share/berth`.
pub fn default_root() -> Result<PathBuf> {
    let is_root = rustix::process::geteuid().is_root();
    default_root_from(|name| std::env::var_os(name), is_root)
}

/// [`default_root`] with the environment and euid passed in, for tests.
pub(crate) fn default_root_from(
    var: impl Fn(&str) -> Option<OsString>,
    is_root: bool,
) -> Result<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(root) = set("BERTH_ROOT") {
        return Ok(PathBuf::from(root));
    }
    if is_root {
        return Ok(PathBuf::from("/var/lib/berth"));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(data) = set("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(data.join("berth"));
    }
    if let Some(home) = set("HOME") {
        return Ok(PathBuf::from(home).join(".local/share/berth"));
    }
    Err(StoreError::NoDefaultRoot)
}

/// Creates the layout under `root` if it is missing, or checks an existing
/// one, and clears what a crash may have left behind.
pub(crate) fn init(root: &Path) -> Result<()> {
    ensure_dir(root)?;
    let layout_file = root.join(OCI_LAYOUT_FILE);
    // Checked before locking so that no lock file is left in a foreign
    // directory; leniently, as another process may be creating the store.
    if !exists(&layout_file)? {
        refuse_foreign_dir(root, BEING_CREATED)?;
    }
    // Two processes may open a new store at once: create it under the lock.
    let _lock = StoreLock::acquire(&root.join(LOCK_FILE))?;

    if exists(&layout_file)? {
        check_layout_file(&layout_file)?;
    } else {
        // Under the lock, and with no oci-layout (which is written first),
        // nobody is creating the store: now anything else is foreign.
        refuse_foreign_dir(root, &[])?;
        let body = format!("{{\"imageLayoutVersion\":\"{IMAGE_LAYOUT_VERSION}\"}}");
        write_atomic(root, OCI_LAYOUT_FILE, body.as_bytes())?;
    }
    ensure_dir(&root.join(BLOBS_DIR).join(super::digest::SHA256))?;
    ensure_dir(&root.join(INGEST_DIR))?;

    let index_path = root.join(INDEX_FILE);
    if exists(&index_path)? {
        // Fail at open, with the path, rather than on the first name lookup.
        index::IndexFile::read(&index_path)?;
    } else {
        write_atomic(root, INDEX_FILE, &index::IndexFile::empty().to_bytes()?)?;
    }
    // index.json is replaced by rename, so a leftover temp file is only an
    // update that crashed before its rename: the old index.json is intact.
    let stale = root.join(format!("{INDEX_FILE}.tmp"));
    match fs::remove_file(&stale) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at("remove", &stale),
        _ => Ok(()),
    }
}

fn exists(path: &Path) -> Result<bool> {
    path.try_exists().at("look at", path)
}

/// Refuses to turn a directory that already holds unrelated files into a
/// store: a mistyped BERTH_ROOT must not scatter blobs over someone's data.
fn refuse_foreign_dir(root: &Path, also_allowed: &[&str]) -> Result<()> {
    for entry in fs::read_dir(root).at("list", root)? {
        let entry = entry.at("list", root)?;
        let name = entry.file_name();
        let allowed = |list: &[&str]| list.iter().any(|a| name == *a);
        if !allowed(ALLOWED_IN_NEW_ROOT) && !allowed(also_allowed) {
            return Err(StoreError::NotAStore {
                path: root.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn check_layout_file(path: &Path) -> Result<()> {
    #[derive(Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        image_layout_version: String,
    }
    let bad = |reason: String| StoreError::BadLayout {
        path: path.to_path_buf(),
        reason,
    };
    let mut f = File::open(path).at("open", path)?;
    let bytes = read_capped(&mut f, 64 * 1024)
        .at("read", path)?
        .ok_or_else(|| bad("the file is too large".into()))?;
    let layout: Layout =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if layout.image_layout_version != IMAGE_LAYOUT_VERSION {
        return Err(bad(format!(
            "imageLayoutVersion is {:?}",
            layout.image_layout_version
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn root_for(vars: &[(&str, &str)], is_root: bool) -> Result<PathBuf> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        default_root_from(|k| map.get(k).cloned(), is_root)
    }

    #[test]
    fn default_root_order() {
        let all = [
            ("BERTH_ROOT", "/srv/berth"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(root_for(&all, true).unwrap(), PathBuf::from("/srv/berth"));
        assert_eq!(
            root_for(&all[1..], true).unwrap(),
            PathBuf::from("/var/lib/berth")
        );
        assert_eq!(
            root_for(&all[1..], false).unwrap(),
            PathBuf::from("/x/berth")
        );
        assert_eq!(
            root_for(&all[2..], false).unwrap(),
            PathBuf::from("/home/u/.local/share/berth")
        );
        // Empty and relative values do not count.
        let odd = [("BERTH_ROOT", ""), ("XDG_DATA_HOME", "rel"), ("HOME", "/h")];
        assert_eq!(
            root_for(&odd, false).unwrap(),
            PathBuf::from("/h/.local/share/berth")
        );
        assert!(matches!(
            root_for(&[], false),
            Err(StoreError::NoDefaultRoot)
        ));
    }
}
