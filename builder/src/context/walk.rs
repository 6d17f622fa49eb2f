//! Walking the context directory: what the builder receives.
//!
//! Owns the list of entries sent for a build: never follows a symlink (a
//! link is sent as a link, whatever it points at), skips what the ignore
//! rules exclude without reading it, still descends into an excluded
//! directory when an exception could re-include something below it, and
//! then sends that directory too, as BuildKit's fsutil does. Every included
//! regular file is opened once, so an unreadable one fails the walk up
//! front with its name instead of half-way through a build.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::ContextError;
use super::ignore::IgnoreRules;

/// What an entry is; symlinks are reported, not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link and its target exactly as stored (may be absolute,
    /// dangling, or point outside the context: it is never followed).
    Symlink {
        target: PathBuf,
    },
    /// A FIFO, socket or device node. Sent as metadata only; never opened
    /// (opening a FIFO would block the walk).
    Other,
}

/// One entry of the build context.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// Relative to the context root, `/`-separated, no leading `./`.
    pub rel_path: String,
    pub kind: EntryKind,
    /// `lstat` of the entry (the link itself for a symlink).
    pub metadata: Metadata,
}

/// Lists the context under `context_dir` that `rules` let through, sorted
/// bytewise by `rel_path`. The root itself is not listed. A directory is
/// listed when it is included, or when anything below it is.
///
/// The rules apply to the Dockerfile and the ignore file like any other
/// file: when excluded they are not in the list (and `COPY` cannot see
/// them), but the builder still reads them, separately, as BuildKit does.
pub fn walk(context_dir: &Path, rules: &IgnoreRules) -> Result<Vec<ContextEntry>, ContextError> {
    // The root may itself be a symlink to a directory: that one is followed,
    // as `docker build ./link` does.
    match fs::metadata(context_dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(ContextError::BadContext {
                path: context_dir.to_path_buf(),
                problem: "is not a directory (give the directory that holds the files to build)"
                    .to_string(),
            });
        }
        Err(e) => {
            return Err(ContextError::BadContext {
                path: context_dir.to_path_buf(),
                problem: format!(
                    "cannot be opened: {} (check the path given to berth build)",
                    super::error::os_message(&e)
                ),
            });
        }
    }

    let mut out: Vec<ContextEntry> = Vec::new();
    // Excluded directories walked only for their exceptions; each is sent
    // only if something below it is.
    let mut held: BTreeMap<String, ContextEntry> = BTreeMap::new();
    // (relative path, whether the directory itself is excluded)
    let mut stack: Vec<(String, bool)> = vec![(String::new(), false)];

    while let Some((dir_rel, dir_excluded)) = stack.pop() {
        let dir_host = host_path(context_dir, &dir_rel);
        let names = match list_dir(&dir_host) {
            Ok(names) => names,
            // An excluded directory is only a maybe; fsutil skips it too
            // when it cannot be read.
            Err(_) if dir_excluded => continue,
            Err(source) => {
                return Err(ContextError::Unreadable {
                    what: "directory",
                    rel_path: display_or_root(&dir_rel),
                    source,
                });
            }
        };
        for name in names {
            let lossy = name.to_string_lossy();
            let rel = if dir_rel.is_empty() {
                lossy.to_string()
            } else {
                format!("{dir_rel}/{lossy}")
            };
            let host = dir_host.join(&name);
            let meta = match fs::symlink_metadata(&host) {
                Ok(meta) => meta,
                Err(source) => {
                    if rules.is_excluded(&rel, false) {
                        continue;
                    }
                    return Err(ContextError::Unreadable {
                        what: "file",
                        rel_path: rel,
                        source,
                    });
                }
            };
            let file_type = meta.file_type();
            let is_dir = file_type.is_dir();
            let excluded = rules.is_excluded(&rel, is_dir);
            if excluded && !(is_dir && rules.may_include_below(&rel)) {
                continue;
            }
            // Only now, with the entry known to be sent (or walked), does a
            // name that is not UTF-8 matter.
            if name.to_str().is_none() {
                return Err(ContextError::NonUtf8Name {
                    path: PathBuf::from(&rel_os(&dir_rel, &name)),
                });
            }
            let kind = if is_dir {
                EntryKind::Dir
            } else if file_type.is_symlink() {
                let target = fs::read_link(&host).map_err(|source| ContextError::Unreadable {
                    what: "symlink",
                    rel_path: rel.clone(),
                    source,
                })?;
                EntryKind::Symlink { target }
            } else if file_type.is_file() {
                // Opening proves the builder will be able to read it later.
                if let Err(source) = File::open(&host) {
                    return Err(ContextError::Unreadable {
                        what: "file",
                        rel_path: rel,
                        source,
                    });
                }
                EntryKind::File
            } else {
                EntryKind::Other
            };
            let entry = ContextEntry {
                rel_path: rel.clone(),
                kind,
                metadata: meta,
            };
            if is_dir {
                stack.push((rel.clone(), excluded));
            }
            if excluded {
                held.insert(rel, entry);
            } else {
                release_parents(&rel, &mut held, &mut out);
                out.push(entry);
            }
        }
    }

    out.sort_by(|a, b| a.rel_path.as_bytes().cmp(b.rel_path.as_bytes()));
    Ok(out)
}

/// Sends the held (excluded) directories above an included entry.
fn release_parents(
    rel: &str,
    held: &mut BTreeMap<String, ContextEntry>,
    out: &mut Vec<ContextEntry>,
) {
    if held.is_empty() {
        return;
    }
    let mut end = rel.len();
    while let Some(i) = rel[..end].rfind('/') {
        if let Some(dir) = held.remove(&rel[..i]) {
            out.push(dir);
        }
        end = i;
    }
}

/// Names in a directory, sorted bytewise so that errors and order never
/// depend on the filesystem's listing order.
fn list_dir(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn host_path(root: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

fn rel_os(dir_rel: &str, name: &OsString) -> OsString {
    let mut path = OsString::from(dir_rel);
    if !dir_rel.is_empty() {
        path.push("/");
    }
    path.push(name);
    path
}

fn display_or_root(rel: &str) -> String {
    if rel.is_empty() {
        ".".to_string()
    } else {
        rel.to_string()
    }
}
