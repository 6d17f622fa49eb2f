//! An in-memory layer: the entries a layer will hold and where each file's
//! content comes from, without a copy of the files on disk.
//!
//! COPY and ADD build their layers this way: the tree names the build
//! context's own files as content, [`write_layer_tree`](super::write_layer_tree)
//! streams them straight into the tar, and the tree then answers metadata
//! questions about the layer (does `/app` exist, its mode and owner) until a
//! step needs the layer on disk and its snapshot is unpacked from the blob.
//!
//! Entries are kept in tar order: depth first, each directory's children
//! sorted by name bytes, the order the directory walker writes too.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, Cursor, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Extended attributes as (name, value) pairs, sorted by name.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a regular file's content is read from when the layer is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileData {
    /// A file on the host (in the build context, a download, another layer's snapshot).
    Path(PathBuf),
    /// Content held in memory (heredocs).
    Bytes(Arc<[u8]>),
}

impl FileData {
    /// Opens the content for reading; a host path is never followed if it
    /// has become a symlink.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            FileData::Path(p) => Ok(Box::new(
                File::options()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(p)?,
            )),
            FileData::Bytes(b) => Ok(Box::new(Cursor::new(Arc::clone(b)))),
        }
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeKind {
    Dir,
    File(FileData),
    Symlink(PathBuf),
    CharDevice { rdev: u64 },
    BlockDevice { rdev: u64 },
    Fifo,
}

/// One entry of a [`LayerTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub kind: TreeKind,
    /// Permission bits, with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Xattrs,
    /// The (device, inode) of a source file with several links: entries
    /// that share one become hard links to the first of them in the tar.
    pub link_key: Option<(u64, u64)>,
}

impl TreeEntry {
    /// A directory owned by root, mode 0755, mtime 0: what an in-memory
    /// layer's root (which has no entry) is taken to be.
    pub fn root_dir() -> TreeEntry {
        TreeEntry {
            kind: TreeKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Vec::new(),
            link_key: None,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, TreeKind::Dir)
    }
}

/// A layer's entries by path. Paths are relative to the layer root, `/`
/// separated, without `.` or `..` components; the root itself has no entry.
#[derive(Debug, Clone, Default)]
pub struct LayerTree {
    /// Keyed by the path with `/` turned into NUL, which no name contains:
    /// the map's byte order is then exactly the depth-first, sorted tar order.
    entries: BTreeMap<Vec<u8>, TreeEntry>,
}

fn key_of(path: &str) -> Vec<u8> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("\0")
        .into_bytes()
}

fn path_of(key: &[u8]) -> String {
    // Keys are built from `&str` paths, so they are UTF-8.
    String::from_utf8_lossy(key).replace('\0', "/")
}

impl LayerTree {
    pub fn new() -> LayerTree {
        LayerTree::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&TreeEntry> {
        self.entries.get(&key_of(path))
    }

    /// Puts `entry` at `path`, replacing what was there; a directory that
    /// is replaced by a non-directory (or the reverse) loses its contents,
    /// as when a file is copied over a directory.
    pub fn insert(&mut self, path: &str, entry: TreeEntry) {
        let key = key_of(path);
        if key.is_empty() {
            return;
        }
        let was_dir = self.entries.get(&key).is_some_and(TreeEntry::is_dir);
        if was_dir && !entry.is_dir() {
            self.remove_below(&key);
        }
        self.entries.insert(key, entry);
    }

    /// Removes `path` and everything below it.
    pub fn remove(&mut self, path: &str) {
        let key = key_of(path);
        self.entries.remove(&key);
        self.remove_below(&key);
    }

    fn remove_below(&mut self, key: &[u8]) {
        let below: Vec<Vec<u8>> = self.descendants(key).map(|(k, _)| k.clone()).collect();
        for k in below {
            self.entries.remove(&k);
        }
    }

    fn descendants(&self, key: &[u8]) -> impl Iterator<Item = (&Vec<u8>, &TreeEntry)> + use<'_> {
        let mut start = key.to_vec();
        if !start.is_empty() {
            start.push(0);
        }
        let prefix = start.clone();
        self.entries
            .range(start..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }

    /// The direct children of the directory `path` (`""` for the root),
    /// sorted by name bytes.
    pub fn children<'t>(
        &'t self,
        path: &str,
    ) -> impl Iterator<Item = (&'t str, &'t TreeEntry)> + 't {
        let key = key_of(path);
        let skip = if key.is_empty() { 0 } else { key.len() + 1 };
        self.descendants(&key).filter_map(move |(k, e)| {
            let rest = &k[skip..];
            (!rest.contains(&0))
                .then(|| std::str::from_utf8(rest).ok())
                .flatten()
                .map(|name| (name, e))
        })
    }

    /// Whether two entries share a `link_key`: the layer's tar then has a
    /// hardlink entry.
    pub fn has_hardlinks(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .values()
            .filter_map(|e| e.link_key)
            .any(|key| !seen.insert(key))
    }

    /// Every entry with its path, in tar order.
    pub fn iter(&self) -> impl Iterator<Item = (String, &TreeEntry)> + '_ {
        self.entries.iter().map(|(k, e)| (path_of(k), e))
    }
}

/// One line of a saved index: an entry without its content.
#[derive(Serialize, Deserialize)]
struct IndexLine {
    path: String,
    /// `d`, `f`, `l`, `c`, `b` or `p`.
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    rdev: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    xattrs: Xattrs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link_key: Option<(u64, u64)>,
}

/// The first line of a saved index. The count lets a reader tell a
/// complete index from one a machine crash cut short.
#[derive(Serialize, Deserialize)]
struct IndexHeader {
    berth_layer_index: u32,
    entries: usize,
}

const INDEX_VERSION: u32 = 1;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LayerTree {
    /// Writes the tree's metadata, one JSON object per line: what a later
    /// build needs to answer questions about the layer (paths, kinds,
    /// owners, modes, link targets) without unpacking it. File content is
    /// not saved.
    pub fn write_index(&self, out: &mut dyn Write) -> io::Result<()> {
        let header = IndexHeader {
            berth_layer_index: INDEX_VERSION,
            entries: self.len(),
        };
        serde_json::to_writer(&mut *out, &header)?;
        out.write_all(b"\n")?;
        for (path, e) in self.iter() {
            let (kind, target, rdev) = match &e.kind {
                TreeKind::Dir => ('d', None, 0),
                TreeKind::File(_) => ('f', None, 0),
                TreeKind::Symlink(t) => ('l', Some(t.as_os_str().as_bytes().to_vec()), 0),
                TreeKind::CharDevice { rdev } => ('c', None, *rdev),
                TreeKind::BlockDevice { rdev } => ('b', None, *rdev),
                TreeKind::Fifo => ('p', None, 0),
            };
            let line = IndexLine {
                path,
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
                target,
                rdev,
                xattrs: e.xattrs.clone(),
                link_key: e.link_key,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Reads an index written by [`write_index`](Self::write_index). Files
    /// name `content_root/<path>` as their content: where they will be once
    /// the layer is unpacked there. An index of another version, or cut
    /// short, is an error.
    pub fn read_index(input: &mut dyn BufRead, content_root: &Path) -> io::Result<LayerTree> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let mut lines = input.lines();
        let header: IndexHeader = match lines.next() {
            Some(line) => serde_json::from_str(&line?)?,
            None => return Err(invalid("empty layer index")),
        };
        if header.berth_layer_index != INDEX_VERSION {
            return Err(invalid("layer index of another version"));
        }
        let mut tree = LayerTree::new();
        let mut count = 0;
        for line in lines {
            count += 1;
            let line: IndexLine = serde_json::from_str(&line?)?;
            let kind = match line.kind {
                'd' => TreeKind::Dir,
                'f' => TreeKind::File(FileData::Path(content_root.join(&line.path))),
                'l' => TreeKind::Symlink(PathBuf::from(std::ffi::OsString::from_vec(
                    line.target.unwrap_or_default(),
                ))),
                'c' => TreeKind::CharDevice { rdev: line.rdev },
                'b' => TreeKind::BlockDevice { rdev: line.rdev },
                'p' => TreeKind::Fifo,
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown entry kind {other:?} in a layer index"),
                    ));
                }
            };
            tree.insert(
                &line.path,
                TreeEntry {
                    kind,
                    mode: line.mode,
                    uid: line.uid,
                    gid: line.gid,
                    mtime: line.mtime,
                    xattrs: line.xattrs,
                    link_key: line.link_key,
                },
            );
        }
        if count != header.entries || tree.len() != count {
            return Err(invalid("incomplete layer index"));
        }
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> TreeEntry {
        TreeEntry::root_dir()
    }

    fn file(text: &str) -> TreeEntry {
        TreeEntry {
            kind: TreeKind::File(FileData::Bytes(Arc::from(text.as_bytes()))),
            mode: 0o644,
            ..dir()
        }
    }

    #[test]
    fn tar_order_is_depth_first_and_sorted() {
        let mut t = LayerTree::new();
        for p in ["a-c", "a/b", "a", "b", "a/b/z", "a/a", "/a/b/y/"] {
            t.insert(p, if p.ends_with('c') { file("x") } else { dir() });
        }
        let order: Vec<String> = t.iter().map(|(p, _)| p).collect();
        assert_eq!(order, ["a", "a/a", "a/b", "a/b/y", "a/b/z", "a-c", "b"]);
        assert!(!t.has_hardlinks());
        let kids: Vec<&str> = t.children("a").map(|(n, _)| n).collect();
        assert_eq!(kids, ["a", "b"]);
        let top: Vec<&str> = t.children("/").map(|(n, _)| n).collect();
        assert_eq!(top, ["a", "a-c", "b"]);
    }

    #[test]
    fn a_file_over_a_directory_drops_its_contents() {
        let mut t = LayerTree::new();
        t.insert("d", dir());
        t.insert("d/x", file("1"));
        t.insert("d-x", file("2"));
        t.insert("d", file("3"));
        assert_eq!(t.len(), 2);
        assert!(t.get("d/x").is_none());
        assert!(t.get("d-x").is_some());
        t.insert("e", dir());
        t.insert("e/f", dir());
        t.insert("e/f/g", file("4"));
        t.remove("e/f");
        assert!(t.get("e").is_some());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn an_index_keeps_everything_but_content() {
        let mut t = LayerTree::new();
        t.insert("app", dir());
        t.insert("app/x", file("content"));
        t.insert(
            "app/l",
            TreeEntry {
                kind: TreeKind::Symlink(PathBuf::from("../x y")),
                xattrs: vec![(b"user.a".to_vec(), vec![0, 10, 255])],
                link_key: Some((1, 2)),
                ..dir()
            },
        );
        t.insert(
            "dev",
            TreeEntry {
                kind: TreeKind::CharDevice { rdev: 259 },
                ..dir()
            },
        );
        assert!(!t.has_hardlinks(), "one file with a link key links nothing");
        let mut saved = Vec::new();
        t.write_index(&mut saved).unwrap();
        let back = LayerTree::read_index(&mut saved.as_slice(), Path::new("/snap")).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back.get("app/l"), t.get("app/l"));
        assert_eq!(back.get("dev"), t.get("dev"));
        assert_eq!(
            back.get("app/x").unwrap().kind,
            TreeKind::File(FileData::Path(PathBuf::from("/snap/app/x")))
        );
        assert!(LayerTree::read_index(&mut &b"{\"path\":"[..], Path::new("/")).is_err());
        // Cut after a whole line: the header's count tells.
        let text = String::from_utf8(saved).unwrap();
        let cut: Vec<&str> = text.lines().take(3).collect();
        let cut = cut.join("\n");
        assert!(LayerTree::read_index(&mut cut.as_bytes(), Path::new("/")).is_err());
    }

    #[test]
    fn content_opens_from_memory_and_disk() {
        let mut s = String::new();
        FileData::Bytes(Arc::from(&b"hi"[..]))
            .open()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hi");
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), "disk").unwrap();
        s.clear();
        FileData::Path(tmp.path().to_path_buf())
            .open()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "disk");
    }
}
